"""Core guarantees of the lease maths: the PBOC worked example, reconciliation, and generator == exact quote."""

from __future__ import annotations

from decimal import Decimal

import numpy_financial as npf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from bff.demo import demo_vehicles
from plans.apr import effective_rate
from plans.apr import irr
from plans.apr import nominal_apr
from plans.generator import evaluate_matrix
from plans.policy import load_policy
from plans.product import load_product
from plans.quote import Charge
from plans.quote import QuoteRequest
from plans.quote import quote


def test_pboc_2021_no3_worked_example() -> None:
    flows = [Decimal("99000")] + [Decimal("-8833.30")] * 12
    monthly = irr(flows)
    assert f"{nominal_apr(monthly) * 100:.2f}" == "12.80"
    assert f"{effective_rate(monthly) * 100:.2f}" == "13.58"


@settings(max_examples=150, deadline=None)
@given(
    price=st.integers(min_value=30_000, max_value=2_000_000),
    down_pct=st.integers(min_value=0, max_value=60),
    term=st.sampled_from([12, 18, 24, 36, 48, 60]),
    rate_bp=st.integers(min_value=0, max_value=2400),
    residual_pct=st.integers(min_value=0, max_value=30),
    advance=st.booleans(),
    fee=st.integers(min_value=0, max_value=5000),
    fee_financed=st.booleans(),
    deposit_pct=st.sampled_from([0, 5, 10]),
)
def test_quote_matches_numpy_financial_and_reconciles(
    price: int, down_pct: int, term: int, rate_bp: int, residual_pct: int, advance: bool, fee: int,
    fee_financed: bool, deposit_pct: int,
) -> None:
    request = QuoteRequest(
        price=Decimal(price), down_payment=Decimal(price * down_pct) / 100, term=term,
        annual_rate=Decimal(rate_bp).scaleb(-4), residual_ratio=Decimal(residual_pct) / 100,
        timing="advance" if advance else "arrears",
        fees=(Charge("service", Decimal(fee), fee_financed),), deposit_ratio=Decimal(deposit_pct) / 100,
    )
    q = quote(request)
    pv, b, r = float(q.financed_amount), float(q.residual), rate_bp / 120000
    reference = -npf.pmt(r, term, pv, -b, when="begin" if advance else "end") if r else (pv - b) / term
    assert abs(float(q.monthly_payment) - reference) <= 0.005 + 1e-9
    assert sum(row.principal for row in q.schedule) + q.residual == q.financed_amount
    assert q.schedule[-1].balance == q.residual
    assert all(row.payment == row.interest + row.principal for row in q.schedule)
    assert all(row.payment == q.monthly_payment for row in q.schedule[:-1])
    expected = npf.irr([float(f.amount) for f in q.cash_flows])
    assert abs(float(q.apr) - expected * 12) <= 2e-6


def test_generator_agrees_with_the_exact_quote_to_the_fen() -> None:
    product, policy = load_product(), load_policy()
    picked = [v for v in demo_vehicles() if v.id in ("byd-han-ev", "used-toyota-corolla-2022", "foton-aumark-truck")]
    assert len(picked) == 3
    for vehicle in picked:
        m = evaluate_matrix(vehicle, product, policy)
        for i in range(0, m.size, 7):  # a fixed stride keeps it quick and deterministic
            if not m.valid[i]:
                continue
            s = m.summary(i)
            exact = product.evaluate(vehicle, s.choice, policy)
            q = exact.quote
            assert (s.monthly_payment, s.last_payment, s.apr, s.total_payable, s.due_at_signing) == (
                q.monthly_payment, q.last_payment, q.apr, q.total_payable, q.due_at_signing)
            assert s.total_cost_of_credit == q.total_cost_of_credit
            assert bool(m.allowed[i]) == exact.allowed


def test_generator_skips_combinations_with_no_net_credit() -> None:
    """A ¥2,000 vehicle: fees and the deposit exceed what is financed for many combinations."""
    from plans.generator import generate
    from plans.policy import Category
    from plans.product import Vehicle

    tiny = Vehicle("tiny", "X", "Y", "小车", "Tiny", Decimal("2000"), Category("new", "personal", "nev"))
    plans, evaluated, matched = generate(tiny, load_product(), load_policy(), limit=None)
    assert evaluated == 3888 and matched == len(plans)
    for plan in plans:
        assert product_quote_equals(tiny, plan)


def product_quote_equals(vehicle: object, plan: object) -> bool:
    product, policy = load_product(), load_policy()
    exact = product.evaluate(vehicle, plan.choice, policy)  # type: ignore[arg-type, attr-defined]
    return exact.allowed and exact.quote.monthly_payment == plan.monthly_payment  # type: ignore[attr-defined]
