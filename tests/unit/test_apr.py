"""plans.apr: the IRR-based APR of PBOC announcement 2021 No. 3, checked against numpy_financial.irr."""

from __future__ import annotations

from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from plans.apr import NoSolution
from plans.apr import effective_rate
from plans.apr import irr
from plans.apr import nominal_apr
from plans.quote import Charge
from plans.quote import QuoteRequest
from plans.quote import quote


def percent_2dp(rate: Decimal) -> str:
    """A rate fraction as a percentage to 2 decimals, half-up (how the example is published)."""
    return f"{(rate * 100).quantize(Decimal('0.01'), rounding='ROUND_HALF_UP')}"


# ------------------------------------------------------------------------------ PBOC 2021 No. 3


PBOC_FLOWS = [Decimal("99000")] + [Decimal("-8833.30")] * 12  # 100,000 received, 1,000 fee paid upfront


def test_pboc_worked_example_from_flows() -> None:
    monthly = irr(PBOC_FLOWS)
    assert percent_2dp(nominal_apr(monthly)) == "12.80"
    assert percent_2dp(effective_rate(monthly)) == "13.58"
    reference = float(npf.irr([float(v) for v in PBOC_FLOWS]))
    assert abs(monthly - reference) < 1e-10
    assert nominal_apr(monthly) == Decimal("0.128038")
    assert effective_rate(monthly) == Decimal("0.135826")


# No 4-decimal rate gives a rent of exactly 8,833.30 on 100,000 over 12 months (0.1089 → 8,833.04,
# 0.1090 → 8,833.50), so the rate card cannot express the example; a 6-decimal rate can: 0.108957 gives
# the level rent 8,833.30 (and a last rent of 8,833.32 that absorbs the rounding).
PBOC_RATE = Decimal("0.108957")


def test_pboc_worked_example_through_quote() -> None:
    q = quote(QuoteRequest(price=Decimal(100000), down_payment=Decimal(0), term=12, annual_rate=PBOC_RATE,
                           fees=(Charge("service", Decimal(1000), financed=False),)))
    assert q.monthly_payment == Decimal("8833.30")
    assert all(row.payment == Decimal("8833.30") for row in q.schedule[:-1])
    assert abs(q.last_payment - Decimal("8833.30")) <= Decimal("0.05")
    assert q.cash_flows[0].amount == Decimal("99000.00")
    assert percent_2dp(q.apr) == "12.80"
    assert percent_2dp(q.effective_annual_rate) == "13.58"
    # The fee makes the APR exceed the contract rate.
    assert q.apr > PBOC_RATE
    assert q.total_cost_of_credit == q.total_interest + Decimal(1000)


def test_no_four_decimal_rate_gives_the_example_rent() -> None:
    rents = {
        Decimal(bp).scaleb(-4): quote(QuoteRequest(price=Decimal(100000), down_payment=Decimal(0), term=12,
                                                   annual_rate=Decimal(bp).scaleb(-4))).monthly_payment
        for bp in (1088, 1089, 1090, 1091)
    }
    assert Decimal("8833.30") not in rents.values()
    assert rents[Decimal("0.1089")] < Decimal("8833.30") < rents[Decimal("0.1090")]


# ------------------------------------------------------------------------------------ the solver


def test_numpy_financial_docstring_example() -> None:
    assert round(irr([-100, 39, 59, 55, 20]), 5) == 0.28095
    assert irr([-100, 39, 59, 55, 20]) == pytest.approx(float(npf.irr([-100, 39, 59, 55, 20])), abs=1e-12)


def test_zero_rate() -> None:
    assert irr([Decimal(1200)] + [Decimal(-100)] * 12) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("flows", [[100, 10, 10], [-100, -10], [0, 0, 0], [], [5]])
def test_no_sign_change_has_no_solution(flows: list[int]) -> None:
    with pytest.raises(NoSolution):
        irr(flows)


def test_newton_failure_falls_back_to_bisection() -> None:
    # A guess far outside the domain must still find the root.
    flows = [Decimal(10000)] + [Decimal(-900)] * 12
    assert irr(flows, guess=50.0) == pytest.approx(float(npf.irr([float(f) for f in flows])), abs=1e-10)


@pytest.mark.parametrize(
    ("monthly", "nominal", "effective"),
    [
        (0.005, "0.060000", "0.061678"),
        (0.0, "0.000000", "0.000000"),
        (0.01, "0.120000", "0.126825"),
        # Half-up at the 6th decimal: 0.0000000416667 × 12 = 0.0000005 → 0.000001.
        (0.5e-6 / 12 + 1e-15, "0.000001", "0.000001"),
    ],
)
def test_nominal_and_effective(monthly: float, nominal: str, effective: str) -> None:
    assert nominal_apr(monthly) == Decimal(nominal)
    assert effective_rate(monthly) == Decimal(effective)


@settings(max_examples=200, deadline=None)
@given(
    principal=st.integers(1_000, 5_000_000),
    term=st.integers(1, 120),
    monthly_bp=st.integers(0, 400),  # 0 – 4% a month
    upfront_bp=st.integers(0, 500),  # fee up to 5% of the principal
    balloon_pct=st.integers(0, 60),
)
def test_irr_agrees_with_numpy_financial(principal: int, term: int, monthly_bp: int, upfront_bp: int,
                                         balloon_pct: int) -> None:
    rate = monthly_bp / 10000
    balloon = principal * balloon_pct / 100
    rent = round(float(-npf.pmt(rate, term, principal, -balloon)), 2)
    flows = [principal * (1 - upfront_bp / 10000)] + [-rent] * term
    flows[-1] -= balloon
    reference = float(npf.irr(flows))
    monthly = irr([Decimal(repr(f)) for f in flows])
    assert abs(monthly - reference) < 1e-9
    assert abs(float(nominal_apr(monthly)) - 12 * reference) <= 1e-6
    assert abs(float(effective_rate(monthly)) - ((1 + reference) ** 12 - 1)) <= 1e-6


def test_irr_of_flows_with_two_sign_changes() -> None:
    # The customer flows of the reverse quote for vw-magotan at a 1,500 budget over 12 months.
    flows = [Decimal("4422.93")] + [Decimal("-1500.00")] * 11 + [Decimal("8495.01")]
    # Two roots (about -0.0864 and +0.2934 a month); the APR is the one above the contract rate.
    monthly = irr(flows, floor=0.0399 / 12 - 0.001)
    npv = sum(float(v) / (1 + monthly) ** t for t, v in enumerate(flows))
    assert abs(npv) < 1e-6
    assert monthly > 0.0399 / 12
