"""Decision-table tests for the risk rules (risk/rules.py) under policy v1, and the snapshot parser."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from risk.config import policy_path
from risk.providers import Gathered
from risk.providers import facts
from risk.providers import persona
from risk.providers import sandbox_providers
from risk.rules import REASONS
from risk.rules import History
from risk.rules import ModelView
from risk.rules import PolicyError
from risk.rules import ProviderFacts
from risk.rules import Rates
from risk.rules import evaluate
from risk.rules import load_policy
from risk.rules import policy_from_dict
from risk.snapshot import SnapshotInvalid
from risk.snapshot import parse_snapshot
from tests.common.risk import PERSONA_DIGITS
from tests.common.risk import id_number
from tests.common.risk import snapshot

POLICY = load_policy(policy_path("v1"))
LOW, GREY, HIGH = ModelView(620, 0.20), ModelView(540, 0.47), ModelView(480, 0.60)


@dataclasses.dataclass
class Contribution:
    feature: str
    bin_label: str
    points: float
    reason_code: str
    text_zh: str
    text_en: str
    points_below_best: float = 10.0


def decide(*, model: ModelView = LOW, facts_: ProviderFacts | None = None, history: History | None = None,
           policy: Any = POLICY, **overrides: Any) -> Any:
    snap = parse_snapshot(snapshot(**overrides))
    return evaluate(snap, model, facts_ or ProviderFacts(), history or History(), policy)


def codes(decision: Any) -> list[str]:
    return [r.code for r in decision.reasons]


def test_clean_application_is_approved_automatically() -> None:
    d = decide()
    assert (d.outcome, d.tier, codes(d), d.conditions) == ("approve", 0, ["AUTO_APPROVE"], ())


@pytest.mark.parametrize(("status", "outcome", "code"), [
    ("kyc_passed", "approve", "AUTO_APPROVE"),
    ("kyc_review", "refer", "KYC_REVIEW"),
    ("kyc_failed", "decline", "KYC_FAILED"),
])
def test_kyc_knock_out(status: str, outcome: str, code: str) -> None:
    d = decide(kyc={"status": status, "face_distance": None, "liveness": None, "manual": True})
    assert d.outcome == outcome and code in codes(d)


def test_kyc_failed_can_refer_by_policy() -> None:
    policy = dataclasses.replace(POLICY, kyc_failed="refer")
    d = decide(policy=policy, kyc={"status": "kyc_failed", "face_distance": None, "liveness": None, "manual": False})
    assert (d.outcome, d.tier, codes(d)) == ("refer", 1, ["KYC_FAILED"])


@pytest.mark.parametrize(("age", "term", "outcome", "code"), [
    (17, 36, "decline", "AGE_BELOW_MIN"),
    (18, 36, "approve", "AUTO_APPROVE"),
    (59, 72, "approve", "AUTO_APPROVE"),   # 59 + 6 = 65: allowed
    (60, 72, "decline", "AGE_AT_END"),     # 66 at the end of the term
    (62, 37, "decline", "AGE_AT_END"),     # 37 months count as 4 years: 66
    (62, 36, "approve", "AUTO_APPROVE"),
])
def test_age_knock_outs(age: int, term: int, outcome: str, code: str) -> None:
    d = decide(applicant__age=age, plan__term=term)
    assert d.outcome == outcome and code in codes(d)


@pytest.mark.parametrize(("found", "code"), [
    (ProviderFacts(judicial_hit=True), "JUDICIAL_DISHONEST"),
    (ProviderFacts(gray_list_hit=True), "GRAY_LIST"),
    (ProviderFacts(worst_dpd_24m=90), "BUREAU_SEVERE_DELINQUENCY"),
])
def test_data_knock_outs_decline(found: ProviderFacts, code: str) -> None:
    d = decide(facts_=found)
    assert (d.outcome, d.tier, codes(d)) == ("decline", 0, [code])


@pytest.mark.parametrize(("found", "tier", "code"), [
    (ProviderFacts(worst_dpd_24m=89), 1, "BUREAU_DELINQUENCY"),
    (ProviderFacts(worst_dpd_24m=30), 1, "BUREAU_DELINQUENCY"),
    (ProviderFacts(thin_file=True), 1, "THIN_FILE"),
    (ProviderFacts(inquiries_24h=6), 2, "MULTI_LENDING"),
    (ProviderFacts(unavailable=("bureau",)), 1, "PROVIDER_UNAVAILABLE"),
    (ProviderFacts(verified_income=Decimal("15000.00")), 1, "INCOME_UNVERIFIED"),
])
def test_data_findings_refer(found: ProviderFacts, tier: int, code: str) -> None:
    d = decide(facts_=found)
    assert (d.outcome, d.tier, codes(d)) == ("refer", tier, [code])


@pytest.mark.parametrize("found", [ProviderFacts(worst_dpd_24m=29), ProviderFacts(inquiries_24h=5),
                                   ProviderFacts(verified_income=Decimal("16800.00"))])
def test_data_findings_below_thresholds_pass(found: ProviderFacts) -> None:
    assert decide(facts_=found).outcome == "approve"


def test_unavailable_provider_reason_names_it() -> None:
    d = decide(facts_=ProviderFacts(unavailable=("bureau", "tax")))
    assert "bureau, tax" in d.reasons[0].text_en and "bureau, tax" in d.reasons[0].text_zh


# --- affordability: rent 5,410.60 a month ------------------------------------------------------------------

@pytest.mark.parametrize(("income", "repayments", "outcome", "code"), [
    ("28000.00", "0.00", "approve", None),                 # RTI 19%
    ("15459.00", "0.00", "approve", None),                 # RTI 35.0%: at the condition threshold
    ("13000.00", "0.00", "approve", "HIGHER_DOWN_PAYMENT"),  # RTI 41.6%
    ("9800.00", "0.00", "decline", "AFFORD_RTI"),          # RTI 55.2%
    ("28000.00", "10000.00", "approve", "HIGHER_DOWN_PAYMENT"),  # DSR 55.0%+: condition
    ("28000.00", "16000.00", "decline", "AFFORD_DSR"),     # DSR 76.5%
    ("2999.00", "0.00", "decline", "INCOME_BELOW_MIN"),
])
def test_affordability(income: str, repayments: str, outcome: str, code: str | None) -> None:
    d = decide(applicant__monthly_income=income, applicant__monthly_repayments=repayments)
    assert d.outcome == outcome
    if outcome == "decline":
        assert code in codes(d)
    elif code:
        assert [c.code for c in d.conditions] == [code] and "AFFORD_CONDITION" in codes(d)
    else:
        assert d.conditions == ()


def test_higher_down_payment_condition_brings_rent_within_threshold() -> None:
    d = decide(applicant__monthly_income="13000.00")
    cond = d.conditions[0].as_dict()
    assert cond["max_monthly_payment"] == "4550.00"  # 35% of 13,000
    # financed 175,840 scaled by 4,550 / 5,410.60 needs ≥ 27,972 more down, rounded up to ¥1,000
    assert Decimal(cond["min_down_payment"]) == Decimal("43960.00") + Decimal("28000")
    assert cond["text_zh"] and cond["text_en"]


def test_verified_income_drives_affordability() -> None:
    d = decide(facts_=ProviderFacts(verified_income=Decimal("9000.00")))
    assert d.outcome == "decline" and codes(d) == ["AFFORD_RTI"]  # a decline shows the decline reasons only


# --- fraud, velocity, exposure ------------------------------------------------------------------------------

@pytest.mark.parametrize(("history", "code"), [
    (History(same_id=4), "VELOCITY_ID"),
    (History(same_mobile=4), "VELOCITY_MOBILE"),
    (History(same_device=6), "VELOCITY_DEVICE"),
    (History(live_same_dealer=2), "MULTI_VEHICLE"),
    (History(customer_exposure=Decimal("700000")), "EXPOSURE_CUSTOMER"),
    (History(dealer_exposure=Decimal("199900000")), "EXPOSURE_DEALER"),
])
def test_fraud_velocity_and_exposure_refer_to_tier_2(history: History, code: str) -> None:
    d = decide(history=history)
    assert (d.outcome, d.tier, codes(d)) == ("refer", 2, [code])


@pytest.mark.parametrize("history", [History(same_id=3), History(same_mobile=3), History(same_device=5),
                                     History(live_same_dealer=1), History(customer_exposure=Decimal("600000"))])
def test_velocity_and_exposure_at_the_limit_pass(history: History) -> None:
    assert decide(history=history).outcome == "approve"


def test_mobile_velocity_needs_a_mobile() -> None:
    data = snapshot()
    del data["applicant"]["mobile"]
    d = evaluate(parse_snapshot(data), LOW, ProviderFacts(), History(same_mobile=10), POLICY)
    assert d.outcome == "approve"


# --- dealer-level monitoring ----------------------------------------------------------------------------------

PORTFOLIO = Rates(assessed=1000, approved=600, fraud=50)  # 60 % approved, 5 % fraud signals


@pytest.mark.parametrize(("dealer", "code"), [
    (Rates(assessed=40, approved=35, fraud=2), "DEALER_APPROVAL_DRIFT"),   # 87.5 % vs 60 %
    (Rates(assessed=40, approved=24, fraud=7), "DEALER_FRAUD_RATE"),       # 17.5 % vs 5 %
])
def test_a_drifting_dealer_is_referred_to_tier_2(dealer: Rates, code: str) -> None:
    d = decide(history=History(dealer=dealer, portfolio=PORTFOLIO))
    assert (d.outcome, d.tier) == ("refer", 2) and codes(d) == [code]
    assert d.base_outcome == "approve"  # the rate is measured before this rule: referring does not reset it
    text = d.reasons[0].text_zh
    assert "7 天" in text and "%" in text


@pytest.mark.parametrize("dealer", [
    Rates(assessed=40, approved=34, fraud=2),   # 85 % approval: 25 points above, not more
    Rates(assessed=40, approved=24, fraud=6),   # 15 % fraud: 10 points above, not more
    Rates(assessed=29, approved=29, fraud=29),  # too few assessments to judge
    Rates(),
])
def test_dealer_within_the_drift_or_too_small_passes(dealer: Rates) -> None:
    d = decide(history=History(dealer=dealer, portfolio=PORTFOLIO))
    assert (d.outcome, codes(d)) == ("approve", ["AUTO_APPROVE"])


def test_dealer_rules_do_not_soften_a_decline() -> None:
    d = decide(model=HIGH, history=History(dealer=Rates(40, 40, 40), portfolio=PORTFOLIO))
    assert d.outcome == "decline" and not {"DEALER_APPROVAL_DRIFT", "DEALER_FRAUD_RATE"} & set(codes(d))


@pytest.mark.parametrize(("history", "facts_", "signal"), [
    (History(same_id=4), None, True),
    (History(live_same_dealer=2), None, True),
    (History(), ProviderFacts(gray_list_hit=True), True),
    (History(), ProviderFacts(verified_income=Decimal("1000")), True),
    (History(), ProviderFacts(thin_file=True), False),
    (History(), None, False),
])
def test_fraud_signal_is_recorded_for_dealer_monitoring(history: History, facts_: ProviderFacts | None,
                                                        signal: bool) -> None:
    assert decide(history=history, facts_=facts_).fraud_signal is signal


# --- model bands, tiers, deposit-free -----------------------------------------------------------------------

@pytest.mark.parametrize(("pd", "outcome", "tier"), [
    (0.05, "approve", 0), (0.43, "approve", 0), (0.44, "refer", 1), (0.50, "refer", 1), (0.51, "decline", 0),
    (0.95, "decline", 0),
])
def test_model_bands(pd: float, outcome: str, tier: int) -> None:
    d = decide(model=ModelView(500, pd))
    assert (d.outcome, d.tier, d.band) == (outcome, tier, outcome)


def test_model_reasons_are_the_worst_contributions() -> None:
    worst = [Contribution(f"f{i}", "b", -i, f"R0{i}", f"理由{i}", f"reason {i}", 10 - i) for i in range(1, 6)]
    best = Contribution("g", "b", 30, "R99", "最佳", "best", 0.0)
    d = decide(model=ModelView(480, 0.6, (*worst, best)))
    assert codes(d) == ["MODEL_HIGH_RISK", "R01", "R02", "R03"]


@pytest.mark.parametrize(("financed", "tier"), [("300000.00", 1), ("300000.01", 2)])
def test_refer_tier_by_financed_amount(financed: str, tier: int) -> None:
    d = decide(model=GREY, vehicle__price="500000.00", plan__financed_amount=financed,
               applicant__monthly_income="60000.00")
    assert (d.outcome, d.tier) == ("refer", tier)
    assert ("LARGE_AMOUNT" in codes(d)) == (tier == 2)


def test_conflicting_signals_go_to_tier_2() -> None:
    d = decide(facts_=ProviderFacts(thin_file=True, worst_dpd_24m=40))  # model approves, two rules refer
    assert (d.outcome, d.tier) == ("refer", 2) and "CONFLICTING_SIGNALS" in codes(d)


def test_a_decline_wins_over_referrals() -> None:
    d = decide(model=GREY, facts_=ProviderFacts(judicial_hit=True, thin_file=True))
    assert d.outcome == "decline" and d.tier == 0 and "JUDICIAL_DISHONEST" in codes(d)


@pytest.mark.parametrize(("pd", "deposit_free", "condition"), [
    (0.30, True, False), (0.31, True, True), (0.31, False, False), (0.05, True, False),
])
def test_deposit_free_only_below_pd_threshold(pd: float, deposit_free: bool, condition: bool) -> None:
    d = decide(model=ModelView(600, pd), plan__deposit_free=deposit_free)
    assert d.outcome == "approve"
    assert ("DEPOSIT_REQUIRED" in [c.code for c in d.conditions]) == condition


def test_every_reason_text_is_bilingual() -> None:
    for code, (zh, en) in REASONS.items():
        assert zh and en and code.isupper()


def test_policy_rejects_inverted_bands() -> None:
    import tomllib

    data = tomllib.loads(policy_path("v1").read_text(encoding="utf-8"))
    data["bands"]["approve_max_pd"] = 0.9
    with pytest.raises(PolicyError, match="bands"):
        policy_from_dict(data)
    del data["bands"]
    with pytest.raises(PolicyError, match="missing"):
        policy_from_dict(data)


# --- sandbox personas → findings ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("clean_file", ProviderFacts(verified_income=Decimal("28000.00"))),
    ("thin_file", ProviderFacts(thin_file=True, verified_income=Decimal("28000.00"))),
    ("delinquent", ProviderFacts(worst_dpd_24m=120, verified_income=Decimal("28000.00"))),
    ("past_arrears", ProviderFacts(worst_dpd_24m=45, verified_income=Decimal("28000.00"))),
    ("judicial_hit", ProviderFacts(judicial_hit=True, verified_income=Decimal("28000.00"))),
    ("gray_list", ProviderFacts(gray_list_hit=True, verified_income=Decimal("28000.00"))),
    ("high_velocity", ProviderFacts(inquiries_24h=8, verified_income=Decimal("28000.00"))),
    ("income_mismatch", ProviderFacts(verified_income=Decimal("11200.00"))),
])
def test_sandbox_personas(name: str, expected: ProviderFacts) -> None:
    from risk.providers import Subject

    number = id_number(name)
    assert persona(number) == name
    subject = Subject(number, "hash", "王小明", Decimal("28000.00"))
    answers = {p.name: p.fetch(subject) for p in sandbox_providers() if p.name != "bureau" or name != "slow_bureau"}
    assert all(a["sandbox"] is True for a in answers.values())
    found = facts(Gathered(answers, (), tuple(answers)))
    expected_inquiries = 0 if name == "thin_file" else expected.inquiries_24h or 1
    assert found == dataclasses.replace(expected, inquiries_24h=expected_inquiries)


def test_persona_digits_cover_every_sandbox_persona() -> None:
    from risk.providers import PERSONAS

    assert set(PERSONA_DIGITS) == {*PERSONAS.values(), "clean_file"}


# --- snapshot parsing ---------------------------------------------------------------------------------------

def test_partial_snapshot_lists_every_missing_field() -> None:
    data = snapshot()
    del data["applicant"]["monthly_income"], data["plan"]["term"], data["kyc"]
    data["vehicle"]["price"] = 219800.5
    with pytest.raises(SnapshotInvalid) as caught:
        parse_snapshot(data)
    assert {(e.field, e.code) for e in caught.value.errors} == {
        ("applicant.monthly_income", "required"), ("plan.term", "required"), ("kyc", "required"),
        ("vehicle.price", "money_format")}


@pytest.mark.parametrize(("key", "value", "field"), [
    ("applicant__id_number", "12345", "applicant.id_number"),
    ("applicant__age", "36", "applicant.age"),
    ("applicant__employment", "pirate", "applicant.employment"),
    ("applicant__monthly_income", "0.00", "applicant.monthly_income"),
    ("plan__deposit_free", "yes", "plan.deposit_free"),
    ("plan__apr", "abc", "plan.apr"),
    ("plan__down_payment", "-1.00", "plan.down_payment"),
    ("plan__monthly_payment", "1.005", "plan.monthly_payment"),
    ("kyc__face_distance", "near", "kyc.face_distance"),
    ("device", [], "device"),
])
def test_bad_fields(key: str, value: Any, field: str) -> None:
    with pytest.raises(SnapshotInvalid) as caught:
        parse_snapshot(snapshot(**{key: value}))
    assert [e.field for e in caught.value.errors] == [field]
    assert all(e.text_zh and e.text_en for e in caught.value.errors)


def test_unknown_fields_are_ignored() -> None:
    data = snapshot(extra={"nested": [1, 2]})
    data["applicant"]["favourite_colour"] = "red"
    assert parse_snapshot(data).as_dict()["applicant"].keys() == snapshot()["applicant"].keys()
