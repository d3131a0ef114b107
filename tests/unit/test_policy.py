"""plans.policy: every refusal has a stable reason code and zh/en text; the default policy's rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bff.demo import demo_vehicles
from plans.policy import Category
from plans.policy import Policy
from plans.policy import Reason
from plans.policy import load_policy
from plans.product import PlanChoice
from plans.product import load_product

NEW_ICE = Category("new", "personal", "ice")
NEW_NEV = Category("new", "personal", "nev")
COMMERCIAL_ICE = Category("new", "commercial", "ice")
COMMERCIAL_NEV = Category("new", "commercial", "nev")
USED = Category("used", "personal", "ice")
USED_NEV = Category("used", "personal", "nev")
USED_COMMERCIAL = Category("used", "commercial", "ice")
CTPL = frozenset({"ctpl"})


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def check(policy: Policy, category: Category = NEW_ICE, **changes: object) -> tuple[Reason, ...]:
    plan: dict[str, object] = {
        "down_ratio": Decimal("0.30"), "term": 36, "residual_ratio": Decimal(0), "apr": Decimal("0.06"),
        "insurance": CTPL, "deposit_free": False,
    }
    plan.update(changes)
    reasons = policy.check(category, **plan)  # type: ignore[arg-type]
    for reason in reasons:
        assert reason.code and reason.text_zh.strip() and reason.text_en.strip()
        assert reason.text("zh-CN") == reason.text_zh
        assert reason.text("zh") == reason.text_zh
        assert reason.text("en") == reason.text_en
        assert reason.text_zh != reason.text_en
    return reasons


def codes(reasons: tuple[Reason, ...]) -> list[str]:
    return [r.code for r in reasons]


def test_default_policy_values(policy: Policy) -> None:
    assert policy.version
    assert (policy.min_term, policy.max_term, policy.used_max_term) == (12, 60, 36)
    assert policy.apr_cap == Decimal("0.24")
    assert policy.required_insurance == ("ctpl",)
    assert policy.deposit_free_conditions == ("new",)


def test_an_allowed_plan_has_no_reasons(policy: Policy) -> None:
    assert check(policy) == ()
    assert check(policy, USED, term=36, down_ratio=Decimal("0.30"), residual_ratio=Decimal("0.40")) == ()
    assert check(policy, NEW_NEV, down_ratio=Decimal("0.15"), term=60, residual_ratio=Decimal("0.25"),
                 apr=Decimal("0.24"), insurance=frozenset({"ctpl", "damage"}), deposit_free=True) == ()


@pytest.mark.parametrize(
    ("category", "floor"),
    [
        (NEW_ICE, "0.20"),
        (NEW_NEV, "0.15"),
        (COMMERCIAL_ICE, "0.30"),
        (COMMERCIAL_NEV, "0.25"),
        (USED, "0.30"),
        (USED_NEV, "0.30"),
        (USED_COMMERCIAL, "0.30"),
    ],
)
def test_down_payment_floor_by_category(policy: Policy, category: Category, floor: str) -> None:
    assert policy.min_down_ratio(category) == Decimal(floor)
    assert check(policy, category, down_ratio=Decimal(floor)) == ()
    below = check(policy, category, down_ratio=Decimal(floor) - Decimal("0.0001"))
    assert codes(below) == ["down_payment_below_minimum"]
    percent = f"{(Decimal(floor) * 100).normalize():f}%"
    assert percent in below[0].text_en and percent in below[0].text_zh
    assert codes(check(policy, category, down_ratio=Decimal(0))) == ["down_payment_below_minimum"]


@pytest.mark.parametrize("term", [12, 18, 24, 36])
def test_used_vehicles_up_to_36_months(policy: Policy, term: int) -> None:
    assert check(policy, USED, term=term) == ()


@pytest.mark.parametrize("term", [37, 48, 60])
def test_used_vehicles_not_beyond_36_months(policy: Policy, term: int) -> None:
    reasons = check(policy, USED, term=term)
    assert codes(reasons) == ["term_not_allowed"]
    assert "36" in reasons[0].text_en and "36" in reasons[0].text_zh


@pytest.mark.parametrize(("category", "term"), [(NEW_ICE, 6), (NEW_ICE, 11), (NEW_ICE, 61), (NEW_ICE, 72),
                                                (COMMERCIAL_ICE, 61), (USED, 6)])
def test_term_outside_the_policy(policy: Policy, category: Category, term: int) -> None:
    assert "term_not_allowed" in codes(check(policy, category, term=term))


@pytest.mark.parametrize("term", [12, 60])
def test_new_vehicles_12_to_60_months(policy: Policy, term: int) -> None:
    assert check(policy, NEW_ICE, term=term, residual_ratio=Decimal(0)) == ()


@pytest.mark.parametrize(
    ("term", "cap"),
    [(12, "0.60"), (18, "0.60"), (24, "0.50"), (30, "0.50"), (36, "0.40"), (48, "0.30"), (54, "0.30"),
     (60, "0.25")],
)
def test_residual_cap_by_term(policy: Policy, term: int, cap: str) -> None:
    assert policy.residual_cap(term) == Decimal(cap)
    assert check(policy, term=term, residual_ratio=Decimal(cap)) == ()
    above = check(policy, term=term, residual_ratio=Decimal(cap) + Decimal("0.0001"))
    assert codes(above) == ["residual_above_cap"]
    assert str(term) in above[0].text_en and str(term) in above[0].text_zh


def test_apr_cap(policy: Policy) -> None:
    assert check(policy, apr=Decimal("0.240000")) == ()
    reasons = check(policy, apr=Decimal("0.240001"))
    assert codes(reasons) == ["apr_above_cap"]
    assert "24%" in reasons[0].text_en and "24%" in reasons[0].text_zh


@pytest.mark.parametrize("insurance", [frozenset(), frozenset({"damage", "tpl_1m"}), {"seat"}])
def test_mandatory_insurance(policy: Policy, insurance: frozenset[str]) -> None:
    assert codes(check(policy, insurance=insurance)) == ["mandatory_insurance_missing"]


@pytest.mark.parametrize("category", [USED, USED_NEV, USED_COMMERCIAL])
def test_deposit_free_not_for_used(policy: Policy, category: Category) -> None:
    assert codes(check(policy, category, deposit_free=True)) == ["deposit_free_not_allowed"]
    assert check(policy, category, deposit_free=False) == ()


@pytest.mark.parametrize("category", [NEW_ICE, NEW_NEV, COMMERCIAL_ICE, COMMERCIAL_NEV])
def test_deposit_free_for_new(policy: Policy, category: Category) -> None:
    assert check(policy, category, deposit_free=True) == ()


def test_every_reason_at_once(policy: Policy) -> None:
    reasons = check(policy, USED, down_ratio=Decimal("0.10"), term=48, residual_ratio=Decimal("0.5"),
                    apr=Decimal("0.30"), insurance=frozenset(), deposit_free=True)
    assert codes(reasons) == [
        "down_payment_below_minimum", "term_not_allowed", "residual_above_cap", "apr_above_cap",
        "mandatory_insurance_missing", "deposit_free_not_allowed",
    ]
    assert len({r.text_en for r in reasons}) == len(reasons)
    assert len({r.text_zh for r in reasons}) == len(reasons)


def test_product_evaluate_applies_the_policy_to_a_used_vehicle(policy: Policy) -> None:
    product = load_product()
    used = next(v for v in demo_vehicles() if v.category.condition == "used")
    refused = product.evaluate(used, PlanChoice(down_ratio=Decimal("0.20"), term=48, insurance=frozenset({"damage"}),
                                                residual_ratio=Decimal("0.40"), deposit_free=True), policy)
    assert not refused.allowed
    assert codes(refused.reasons) == [
        "down_payment_below_minimum", "term_not_allowed", "residual_above_cap", "mandatory_insurance_missing",
        "deposit_free_not_allowed",
    ]
    assert refused.policy_version == policy.version
    allowed = product.evaluate(used, PlanChoice(down_ratio=Decimal("0.30"), term=36, insurance=CTPL), policy)
    assert allowed.allowed and allowed.reasons == ()
