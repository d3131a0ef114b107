"""Application states and what each one waits for.

    draft ──submit──► submitted ──face check passes──► kyc_passed ──► (risk: next issue)
                          │  └──face review / 3rd failed attempt / counter verification──► kyc_review
                          └── a failed face check stays in submitted (another attempt, new challenge)
    kyc_review ──staff decide──► kyc_passed | kyc_failed
    kyc_passed ──sent to the risk service──► risk_pending ──► approved | declined | referred
    risk_pending stays while the risk service is unreachable; it is sent again until it answers
    referred ──risk officers decide──► approved | declined | counter_offer
    an approval with conditions (higher down payment, deposit instead of 免押) ──► counter_offer as well
    counter_offer ──the customer (or staff with them) accepts──► approved on the re-priced plan
                  └─declines──► withdrawn
    approved ──contract requested──► contract_pending ──draft generated──► contract_ready ──customer signs──► signed
    contract_pending stays while the contract service is unreachable; it is requested again until it answers
    signed ──every payment secured (upfront and deposit paid, or the 免押 hold placed)──► ready_for_delivery
    ready_for_delivery ──the dealer confirms the handover (交车): the term starts──► delivered
    delivered ──at the term's end, ops close it in good standing (结清)──► closed (the deposit is then refunded
    and a hold released by the settle job: bff/payments/machine.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: every state, in the journey's order: those after ``risk_pending`` all come after the credit decision
STATUSES = ("draft", "submitted", "kyc_review", "kyc_passed", "kyc_failed", "risk_pending", "approved",
            "declined", "referred", "counter_offer", "withdrawn", "contract_pending", "contract_ready", "signed",
            "ready_for_delivery", "delivered", "closed")
#: states in which the application has evidence records: the evidence log is written from the credit decision
#: on, whichever way it went (its first entries are the consents; bff/applications/contracts.py queue_evidence)
HAS_EVIDENCE = frozenset(STATUSES[STATUSES.index("risk_pending") + 1:])
EDITABLE = ("draft",)
#: states in which the dealer's staff may still give or correct the car's facts (VIN, new or used, engine number):
#: until the contract is generated from them (issue 17 §5; a contract waiting for them stays contract_pending)
VEHICLE_EDITABLE = ("draft", "submitted", "kyc_review", "kyc_passed", "risk_pending", "approved", "referred",
                    "counter_offer", "contract_pending")
#: states in which an application holds its car (walk-through finding 6: one VIN was leased twice): past the draft
#: and not ended (withdrawn, declined, failed its identity check, or closed). The vehicle step refuses a VIN one of
#: them has (bff/applications/services.py ``_save_vehicle``); a draft does not hold it: it may be left unfinished
HOLDS_VEHICLE = tuple(s for s in STATUSES if s not in ("draft", "withdrawn", "declined", "kyc_failed", "closed"))


def vehicle_editable(status: str, contract: Mapping[str, Any], attempts: int) -> bool:
    """Whether the dealer's staff may give or correct the car's facts now (issue 17 §5): before the contract is
    requested, and in ``contract_pending`` only while the contract waits for them — its last attempt answered
    ``vehicle_details`` and no attempt has begun since (``attempts`` counts those begun: infra/applications.py
    begin_contract_attempt; each answer records the attempt it is of: bff/applications/contracts.py send). Never
    while an attempt drafts the contract from them, nor once it waits for something else or exists: the contract
    would state other facts than the application's. An answer recorded before attempts were recorded is the last."""
    if status not in VEHICLE_EDITABLE:
        return False
    if status != "contract_pending":
        return True
    return contract.get("error") == "vehicle_details" and contract.get("attempt", attempts) == attempts


#: states in which a selfie / face check may be taken (after submission, before a decision)
FACE_ALLOWED = ("submitted",)
MAX_FACE_ATTEMPTS = 3
#: the consents asked for before any ID image or face is captured (bff/applications/consent.toml); the personal
#: information notice and the credit bureau authorisation (征信授权) are needed to apply online, face recognition is
#: optional (the counter check instead)
CONSENT_PURPOSES = ("sensitive_pi", "credit_reporting", "face_recognition")
REQUIRED_CONSENTS = ("sensitive_pi", "credit_reporting")
#: the optional consent offered at signing: the vehicle's trip data (the GPS position the lease needs is a term of
#: the contract, its §10, not a consent: PIPL art. 13(1)(2)); withdrawable at any time
SIGNING_CONSENTS = ("vehicle_telemetry",)
#: consents the person withdraws at once, on their page (bff/privacy): the lease does not need what they allow (face
#: recognition: the counter check remains; the vehicle's trip data: the lease goes on without it)
WITHDRAWABLE = ("face_recognition", *SIGNING_CONSENTS)

