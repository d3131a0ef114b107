"""servicing.penalty: late charges (逾期违约金, 罚息) day by day (issue 18 §4) — worked by hand across 29 February,
with grace days, on the rent or its principal, a rate a day or a year (ACT/360, ACT/365), within the cap the contract
law work set (plans.policy: the contract rate and 365 days of the charge within 24 % a year); and the daily close's
property: the days' charges add up to the once-rounded total."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from plans.contract_terms import contract_terms
from plans.policy import load_policy
from plans.product import PlanChoice
from plans.product import Vehicle
from plans.product import load_product
from servicing.penalty import PenaltyTerms
from servicing.penalty import accrued_penalty
from servicing.penalty import penalty_between
from servicing.penalty import penalty_for_day

D = Decimal
DUE = date(2028, 2, 29)  # a leap day
RENT, PRINCIPAL = D("3400.22"), D("3300.22")  # rent 1 of the hand-worked lease, and its principal
DAILY = PenaltyTerms(rate=D("0.0005"))


def day(n: int) -> date:
    """The n-th day after the due date."""
    return DUE + timedelta(days=n)


def charges(terms: PenaltyTerms, first: int, last: int, due_on: date = DUE, rent: Decimal = RENT) -> list[Decimal]:
    return [penalty_for_day(day(n), due_on=due_on, unpaid_rent=rent, unpaid_principal=PRINCIPAL, terms=terms)
            for n in range(first, last + 1)]


def test_a_rate_a_day_from_the_day_after_the_due_date_worked_by_hand() -> None:
    # 3,400.22 × 0.0005 = 1.70011 a day; 10 days: 17.0011 → 17.00
    assert penalty_for_day(DUE, due_on=DUE, unpaid_rent=RENT, unpaid_principal=PRINCIPAL, terms=DAILY) == 0
    days = charges(DAILY, 1, 10)
    assert days[0] == D("1.70") and sum(days) == D("17.00")
    assert penalty_between(day(1), day(11), due_on=DUE, unpaid_rent=RENT, unpaid_principal=PRINCIPAL,
                           terms=DAILY) == D("17.00")
    # on the principal: 3,300.22 × 0.0005 × 10 = 16.5011 → 16.50
    on_principal = PenaltyTerms(rate=D("0.0005"), base="principal")
    assert sum(charges(on_principal, 1, 10)) == D("16.50")


def test_29_february_is_a_day_overdue() -> None:
    # due 28 Feb: in 2028 the 1st of March is the second day overdue, in 2027 the first
    for due, days in ((date(2028, 2, 28), 2), (date(2027, 2, 28), 1)):
        accrued = accrued_penalty(due.replace(month=3, day=1), due_on=due, unpaid_rent=RENT,
                                  unpaid_principal=PRINCIPAL, terms=DAILY)
        assert accrued == (RENT * D("0.0005") * days).quantize(D("0.01"))  # 3.40 / 1.70


def test_grace_days_are_free_or_charged_back_once_exceeded() -> None:
    grace = PenaltyTerms(rate=D("0.0005"), grace_days=3)
    # days 1–3 free; days 4–10 charged: 3,400.22 × 0.0005 × 7 = 11.90077 → 11.90
    days = charges(grace, 1, 10)
    assert days[:3] == [0, 0, 0] and days[3] == D("1.70") and sum(days) == D("11.90")
    back = PenaltyTerms(rate=D("0.0005"), grace_days=3, back_to_due=True)
    # paid within the grace: nothing; on day 4 the four days at once: 6.80044 → 6.80; through day 10: 17.00
    days = charges(back, 1, 10)
    assert days[:3] == [0, 0, 0] and days[3] == D("6.80") and sum(days) == D("17.00")


@pytest.mark.parametrize("terms", [PenaltyTerms(rate=D("0.18"), day_count="ACT/360"),
                                   PenaltyTerms(rate=D("0.1825"), day_count="ACT/365")])
def test_an_annual_rate_for_the_actual_days(terms: PenaltyTerms) -> None:
    # 18 % / 360 = 18.25 % / 365 = 0.05 % a day: the same 17.00 over 10 days
    assert terms.daily_rate == D("0.0005")
    assert sum(charges(terms, 1, 10)) == D("17.00")


def test_the_cap_on_the_cost_of_default_lowers_the_daily_rate_as_the_contract_does() -> None:
    policy, product = load_policy(), load_product()
    for card in product.rates.values():
        for rate in card.values():
            terms = PenaltyTerms(rate=product.late_fee_daily_rate, nominal_rate=rate, cost_cap=policy.default_cost_cap)
            assert terms.daily_rate == policy.late_fee_daily_rate(product.late_fee_daily_rate, rate)
            assert rate + terms.daily_rate * 365 <= policy.default_cost_cap
    # 9.99 %: 0.0383 % a day, not 0.05 %; 10 days on 3,400.22: 13.0228426 → 13.02
    capped = PenaltyTerms(rate=D("0.0005"), nominal_rate=D("0.0999"), cost_cap=D("0.24"))
    assert capped.daily_rate == D("0.000383") and sum(charges(capped, 1, 10)) == D("13.02")
    # an annual rate above the room: (24 % − 5.99 %) / 365 = 0.0493424… → 0.000493 a day
    annual = PenaltyTerms(rate=D("0.20"), day_count="ACT/360", nominal_rate=D("0.0599"), cost_cap=D("0.24"))
    assert annual.daily_rate == D("0.000493")
    none_left = PenaltyTerms(rate=D("0.0005"), nominal_rate=D("0.25"), cost_cap=D("0.24"))
    assert none_left.daily_rate == 0 and sum(charges(none_left, 1, 30)) == 0


def test_the_terms_a_contract_states() -> None:
    product, policy = load_product(), load_policy()
    vehicle = Vehicle("v", "BYD", "Han", "汉", "Han", D("200000"))
    plan = product.evaluate(vehicle, PlanChoice(D("0.2"), 60, frozenset({"ctpl"})), policy)
    terms = PenaltyTerms.from_contract(contract_terms(plan.quote, product, policy, date(2027, 1, 31))["plan"],
                                       grace_days=2)
    assert terms.daily_rate == policy.late_fee_daily_rate(product.late_fee_daily_rate, plan.quote.request.annual_rate)
    assert (terms.cost_cap, terms.grace_days, terms.base) == (D("0.24"), 2, "overdue_rent")
    old = PenaltyTerms.from_contract({"late_fee_daily_rate": "0.0005", "nominal_rate": "0.0999"})
    assert old.cost_cap is None and old.daily_rate == D("0.0005")  # a contract from before the cap: as it states


@pytest.mark.parametrize("bad", [dict(rate=D("-0.0001")), dict(rate=D("0.0005"), day_count="30/360"),
                                 dict(rate=D("0.0005"), base="interest"), dict(rate=D("0.0005"), grace_days=32)])
def test_bad_terms_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PenaltyTerms(**bad)  # type: ignore[arg-type]


def test_bad_figures_are_refused() -> None:
    with pytest.raises(ValueError):
        penalty_for_day(day(1), due_on=DUE, unpaid_rent=RENT, unpaid_principal=RENT + 1, terms=DAILY)
    with pytest.raises(ValueError):
        penalty_between(day(5), day(4), due_on=DUE, unpaid_rent=RENT, unpaid_principal=PRINCIPAL, terms=DAILY)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5_000_000).map(lambda c: D(c).scaleb(-2)), st.integers(0, 1000).map(lambda m: D(m).scaleb(-6)),
       st.integers(0, 10), st.booleans(), st.integers(-5, 120), st.integers(0, 60), st.integers(0, 60))
def test_the_days_add_up_to_the_once_rounded_total(rent: Decimal, rate: Decimal, grace: int, back: bool,
                                                   start: int, first: int, second: int) -> None:
    terms = PenaltyTerms(rate=rate, grace_days=grace, back_to_due=back)
    a, b, c = day(start), day(start + first), day(start + first + second)

    def between(x: date, y: date) -> Decimal:
        return penalty_between(x, y, due_on=DUE, unpaid_rent=rent, unpaid_principal=D(0), terms=terms)
    assert between(a, b) + between(b, c) == between(a, c)
    days = [between(a + timedelta(days=i), a + timedelta(days=i + 1)) for i in range((c - a).days)]
    assert all(x >= 0 for x in days) and sum(days, D(0)) == between(a, c)
    # from the due date, the total is rounded once: rent × rate × days charged, half-up
    overdue = max(0, (c - DUE).days - 1)
    charged = 0 if overdue <= grace else overdue if back else overdue - grace
    assert between(min(DUE, c), c) == (rent * rate * charged).quantize(D("0.01"), rounding="ROUND_HALF_UP")
