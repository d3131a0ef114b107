"""Application states and what each one waits for.

    draft ──submit──► submitted ──face check passes──► kyc_passed ──► (risk: next issue)
                          │  └──face review / 3rd failed attempt / counter verification──► kyc_review
                          └── a failed face check stays in submitted (another attempt, new challenge)
    kyc_review ──staff decide──► kyc_passed | kyc_failed
    kyc_passed ──sent to the risk service──► risk_pending ──► approved | declined | referred
    risk_pending stays while the risk service is unreachable; it is sent again until it answers
    referred ──risk officers decide──► approved | declined | counter_offer
"""

from __future__ import annotations

STATUSES = ("draft", "submitted", "kyc_review", "kyc_passed", "kyc_failed", "risk_pending", "approved",
            "declined", "referred", "counter_offer")
EDITABLE = ("draft",)
#: states in which a selfie / face check may be taken (after submission, before a decision)
FACE_ALLOWED = ("submitted",)
MAX_FACE_ATTEMPTS = 3
CONSENT_PURPOSES = ("sensitive_pi", "face_recognition")


def waiting_for(status: str, face_attempts: int = 0) -> str:
    """What the application waits for, as a code the templates translate."""
    return {
        "draft": "customer_details",
        "submitted": "face_check" if face_attempts == 0 else "face_retry",
        "kyc_review": "staff_review",
        "kyc_passed": "risk_assessment",
        "kyc_failed": "nothing",
        "risk_pending": "risk_assessment",
        "approved": "contract",
        "declined": "nothing",
        "referred": "risk_officer",
        "counter_offer": "customer_answer",
    }[status]
