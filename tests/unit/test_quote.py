"""plans.quote (and plans.money): exact quotes checked against numpy_financial, an independent reference.

numpy_financial is used here only, never by the application: ``npf.pmt`` gives the level rent and
``npf.irr`` (polynomial roots, a different algorithm from the application's Newton/bisection) gives the
IRR of the quote's own cash flows.
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import numpy as np
import numpy_financial as npf
import pytest
from hypothesis import HealthCheck
from hypothesis import assume
from hypothesis import example
from hypothesis import given
from hypothesis import note
from hypothesis import settings
from hypothesis import strategies as st

from plans.money import fen
from plans.quote import Charge
from plans.quote import Quote
from plans.quote import QuoteRequest
from plans.quote import quote
from plans.quote import quote_as_dict

CENT = Decimal("0.01")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.005", "0.01"),
        ("2.675", "2.68"),  # the float 2.675 is 2.67499…; as a Decimal it is exact and rounds up
        ("2.665", "2.67"),
        ("0.004999999", "0.00"),
        ("1.994999", "1.99"),
        ("1.995", "2.00"),
        ("-0.005", "-0.01"),  # half-up is "half away from zero" for Decimal
        ("123456789.125", "123456789.13"),
        ("7", "7.00"),
    ],
)
def test_fen_rounds_half_up(raw: str, expected: str) -> None:
    value = fen(Decimal(raw))
    assert value == Decimal(expected)
    assert value.as_tuple().exponent == -2


@SETTINGS
@given(st.integers(min_value=-10**15, max_value=10**15), st.integers(min_value=3, max_value=9))
def test_fen_agrees_with_integer_half_up(units: int, places: int) -> None:
    value = Decimal(units).scaleb(-places)
    scale = 10 ** (places - 2)
    magnitude = (2 * abs(units) + scale) // (2 * scale)  # half away from zero, in integers
    assert fen(value) == Decimal(magnitude if units >= 0 else -magnitude).scaleb(-2)


# ------------------------------------------------------------------------------------- strategies


def _money(min_fen: int, max_fen: int) -> st.SearchStrategy[Decimal]:
    return st.integers(min_fen, max_fen).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def requests(draw: st.DrawFn) -> QuoteRequest:
    price = draw(_money(1_000_000, 300_000_000))  # ¥10k – ¥3M
    down = fen(price * Decimal(draw(st.integers(0, 60))) / 100) + draw(_money(0, 99))
    # Terms beyond the policy's 12–60 too; not 1 (an advance rent of the whole principal is no credit).
    term = draw(st.one_of(st.integers(12, 60), st.integers(2, 120)))
    # Mostly rate-card style rates (4 decimals), sometimes 6 decimals, sometimes exactly 0.
    annual_rate = draw(
        st.one_of(
            st.integers(0, 3000).map(lambda bp: Decimal(bp).scaleb(-4)),
            st.integers(0, 300_000).map(lambda micro: Decimal(micro).scaleb(-6)),
            st.just(Decimal(0)),
        )
    )
    residual_ratio = draw(st.one_of(st.just(Decimal(0)), st.integers(0, 60).map(lambda p: Decimal(p) / 100)))
    # Up to three fees and three premiums, each at most 2% of the price (a service fee is ~1%, a GPS
    # ¥1,200, CTPL ¥950, vehicle damage ~1.1%): realistic, so the customer always receives far more at
    # signing than the fees take (degenerate fee inputs are covered in test_inputs.py).
    charges = st.tuples(st.integers(0, 200), st.booleans())

    def build(prefix: str, drawn: list[tuple[int, bool]]) -> tuple[Charge, ...]:
        return tuple(Charge(f"{prefix}{i}", fen(price * Decimal(bp) / 10000), financed)
                     for i, (bp, financed) in enumerate(drawn))

    fees = build("fee", draw(st.lists(charges, max_size=3)))
    premiums = build("ins", draw(st.lists(charges, max_size=3)))
    deposit_ratio = draw(st.one_of(st.just(Decimal(0)), st.integers(0, 10).map(lambda p: Decimal(p) / 100)))
    request = QuoteRequest(
        price=price,
        down_payment=down,
        term=term,
        annual_rate=annual_rate,
        residual_ratio=residual_ratio,
        timing=draw(st.sampled_from(["arrears", "advance"])),
        fees=fees,
        premiums=premiums,
        deposit_ratio=deposit_ratio,
    )
    assume(request.principal > 0 and request.residual < request.principal)
    return request


def _sign_changes(values: list[float]) -> int:
    signs = [v > 0 for v in values if v != 0]
    return sum(1 for a, b in zip(signs, signs[1:], strict=False) if a != b)


def _reference_rent(q: Quote) -> float:
    req = q.request
    r = float(req.annual_rate) / 12
    return float(-npf.pmt(r, req.term, float(q.financed_amount), -float(q.residual),
                          when="begin" if req.timing == "advance" else "end"))


# --------------------------------------------------------------------------------- the properties


def check_rent_is_half_up_of_numpy_financial_pmt(q: Quote) -> None:
    reference = _reference_rent(q)
    cents = reference * 100
    near_half_fen = abs(cents - math.floor(cents) - 0.5) < 1e-4  # within 1e-6 CNY of a half-fen
    expected = Decimal(math.floor(cents + 0.5)).scaleb(-2)
    note(f"pmt={reference!r} rent={q.monthly_payment}")
    if near_half_fen:
        assert abs(q.monthly_payment - expected) <= CENT
    else:
        assert q.monthly_payment == expected


def check_principal_residual_deposit(q: Quote) -> None:
    request = q.request
    financed_fees = sum((c.amount for c in request.fees if c.financed), Decimal(0))
    financed_premiums = sum((c.amount for c in request.premiums if c.financed), Decimal(0))
    assert q.financed_amount == request.price - request.down_payment + financed_fees + financed_premiums
    assert q.residual == fen(request.residual_ratio * request.price)
    assert q.deposit == fen(request.deposit_ratio * request.price)


def check_schedule_reconciles_exactly(q: Quote) -> None:
    request = q.request
    rows = q.schedule
    assert [row.period for row in rows] == list(range(1, request.term + 1))
    assert sum(row.principal for row in rows) + q.residual == q.financed_amount
    assert rows[-1].balance == q.residual
    assert all(row.payment == row.interest + row.principal for row in rows)
    assert all(row.payment == q.monthly_payment for row in rows[:-1])
    assert q.last_payment == rows[-1].payment
    opening = q.financed_amount
    for row in rows:  # each balance is the previous one less the principal repaid
        assert row.balance == opening - row.principal
        opening = row.balance
    # Every amount is to the fen.
    for row in rows:
        for amount in (row.payment, row.interest, row.principal, row.balance):
            assert amount == amount.quantize(CENT)


def check_cash_flows(q: Quote) -> None:
    request = q.request
    n = request.term
    flows = [f.amount for f in q.cash_flows]
    assert [f.period for f in q.cash_flows] == list(range(n + 1))
    upfront_fees = sum((c.amount for c in request.fees if not c.financed), Decimal(0))
    financed_premiums = sum((c.amount for c in request.premiums if c.financed), Decimal(0))
    deposit, residual = q.deposit, q.residual
    advance = request.timing == "advance"
    first_rent = q.schedule[0].payment if advance else Decimal(0)
    assert flows[0] == request.price - request.down_payment + financed_premiums - upfront_fees - deposit - first_rent
    if advance:
        assert flows[1:n] == [-q.monthly_payment] * (n - 2) + [-q.last_payment]  # the last rent at n − 1
        assert flows[n] == -residual + deposit
    else:
        assert flows[1:n] == [-q.monthly_payment] * (n - 1)
        assert flows[n] == -q.last_payment - residual + deposit
    # Nothing is lost: the net of all flows is what the customer receives less everything paid.
    rents = sum((row.payment for row in q.schedule), Decimal(0))
    assert sum(flows) == (request.price - request.down_payment + financed_premiums - upfront_fees - rents - residual)


def check_totals(q: Quote) -> None:
    request = q.request
    fees_upfront = sum((c.amount for c in request.fees if not c.financed), Decimal(0))
    fees_financed = sum((c.amount for c in request.fees if c.financed), Decimal(0))
    premiums_upfront = sum((c.amount for c in request.premiums if not c.financed), Decimal(0))
    rents = sum((row.payment for row in q.schedule), Decimal(0))
    assert q.total_interest == sum((row.interest for row in q.schedule), Decimal(0))
    assert q.total_interest == rents + q.residual - q.financed_amount
    assert q.credit_fees == fees_upfront + fees_financed
    assert q.total_cost_of_credit == q.total_interest + fees_upfront + fees_financed
    assert q.total_payable == request.down_payment + fees_upfront + premiums_upfront + rents + q.residual
    first = q.schedule[0].payment if request.timing == "advance" else Decimal(0)
    assert q.due_at_signing == request.down_payment + fees_upfront + premiums_upfront + q.deposit + first


@SETTINGS
@given(requests())
def test_exact_figures(request: QuoteRequest) -> None:
    """Rent against npf.pmt, PV, the schedule, the cash flows and the totals, on one quote per example."""
    q = quote(request)
    check_rent_is_half_up_of_numpy_financial_pmt(q)
    check_principal_residual_deposit(q)
    check_schedule_reconciles_exactly(q)
    check_cash_flows(q)
    check_totals(q)


@SETTINGS
@given(requests())
@example(QuoteRequest(price=Decimal("10000.00"), down_payment=Decimal("0.00"), term=2, annual_rate=Decimal("0.0496"),
                      residual_ratio=Decimal("0"), timing="advance", fees=(), premiums=(), deposit_ratio=Decimal("0")))
@example(QuoteRequest(price=Decimal("10000.00"), down_payment=Decimal("5300.00"), term=12,
                      annual_rate=Decimal("0.0095"),
                      residual_ratio=Decimal("0"), timing="arrears", fees=(), premiums=(), deposit_ratio=Decimal("0")))
def test_apr_agrees_with_numpy_financial_irr(request: QuoteRequest) -> None:
    q = quote(request)
    values = [float(f.amount) for f in q.cash_flows]
    changes = _sign_changes(values)
    note(f"flows={values} sign changes={changes} apr={q.apr}")
    if changes == 1:
        # Descartes: exactly one IRR, so npf.irr (the root nearest zero) is the reference.
        reference = float(npf.irr(values))
    else:
        # A deposit refund above the last rent and balloon makes the final flow positive: two sign
        # changes, possibly two IRRs. The quote's must be one of them; npf.irr's pick (nearest to zero)
        # is not necessarily the lessee's rate, so compare with the real root nearest the quote's.
        roots = np.roots(values[::-1])
        real = roots[(roots.imag == 0) & (roots.real > 0)].real
        candidates = 1 / real - 1
        assert candidates.size, "the flows have no IRR at all"
        reference = float(candidates[np.argmin(np.abs(candidates * 12 - float(q.apr)))])
    assert math.isfinite(reference)
    assert abs(float(q.apr) - reference * 12) <= 1e-6
    assert abs(float(q.effective_annual_rate) - ((1 + reference) ** 12 - 1)) <= 1e-6
    # Fees and a deposit only add to the cost of credit: the APR is never below the contract rate, to
    # within the rounding of the rents to the fen: up to 0.005 a rent. A rent lower by δ lowers the monthly
    # rate by about 2δn / (P(n+1)) (the level annuity's PV moves with the rate over the mean term, (n+1)/2
    # months), i.e. the APR by about 24δ / P = 0.12 / P a year at most, where P is the credit actually
    # outstanding over the first period — the financed amount, less the first rent when rents are paid in
    # advance (a 2-month advance lease owes half its PV after day one). (An earlier bound of 0.06 / P forgot
    # the mean term's factor 2: ¥4,700 over 12 months at 0.95 % rounds its rent down by 0.0042 and
    # discloses 0.9484 %, 0.0016 points under the rate, within 0.12 / P = 0.0026.) A ¥5,400 lease at a
    # 0.0011 % rate pays no interest at all once its rents are rounded.
    outstanding = q.financed_amount - (q.schedule[0].payment if request.timing == "advance" else Decimal(0))
    rounding = Decimal("0.12") / max(outstanding, Decimal("1")) + Decimal("0.000001")
    assert q.apr >= request.annual_rate - rounding
    # 6 decimals, as disclosed.
    assert q.apr == q.apr.quantize(Decimal("0.000001"))
    assert q.effective_annual_rate == q.effective_annual_rate.quantize(Decimal("0.000001"))


@settings(max_examples=50, deadline=None)
@given(requests())
def test_quote_as_dict_round_trips_the_figures(request: QuoteRequest) -> None:
    q = quote(request)
    d = quote_as_dict(q)
    assert Decimal(str(d["monthly_payment"])) == q.monthly_payment
    assert Decimal(str(d["apr"])) == q.apr
    assert len(d["schedule"]) == request.term  # type: ignore[arg-type]
    assert len(d["cash_flows"]) == request.term + 1  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- fixed cases


def test_plain_arrears_example() -> None:
    # ¥100,000 over 36 months at 6%: the textbook annuity 3,042.19.
    q = quote(QuoteRequest(price=Decimal(100000), down_payment=Decimal(0), term=36, annual_rate=Decimal("0.06")))
    assert q.monthly_payment == Decimal("3042.19")
    assert q.apr == Decimal("0.060000")
    assert q.effective_annual_rate == Decimal("0.061678")
    assert q.due_at_signing == 0


def test_advance_with_balloon_and_deposit_example() -> None:
    request = QuoteRequest(
        price=Decimal(200000), down_payment=Decimal(40000), term=36, annual_rate=Decimal("0.0599"),
        residual_ratio=Decimal("0.30"), timing="advance",
        fees=(Charge("service", Decimal(2000), False), Charge("gps", Decimal(1200), True)),
        premiums=(Charge("ctpl", Decimal(950), True), Charge("damage", Decimal(2500), False)),
        deposit_ratio=Decimal("0.05"),
    )
    q = quote(request)
    assert q.financed_amount == Decimal("162150.00")
    assert q.residual == Decimal("60000.00")
    assert q.deposit == Decimal("10000.00")
    pmt = -npf.pmt(0.0599 / 12, 36, 162150.0, -60000.0, when="begin")
    assert q.monthly_payment == Decimal(repr(float(pmt))).quantize(CENT, rounding=decimal.ROUND_HALF_UP)
    assert q.cash_flows[0].amount == Decimal(200000 - 40000 + 950 - 2000 - 10000) - q.monthly_payment
    assert q.cash_flows[-1].amount == Decimal(-60000 + 10000)
    assert q.due_at_signing == Decimal(40000 + 2000 + 2500 + 10000) + q.monthly_payment


def test_zero_rate_is_straight_line() -> None:
    q = quote(QuoteRequest(price=Decimal(1000), down_payment=Decimal(0), term=3, annual_rate=Decimal(0)))
    assert q.monthly_payment == Decimal("333.33")
    assert q.last_payment == Decimal("333.34")
    assert q.total_interest == 0
    assert abs(q.apr) <= Decimal("0.000010")


def test_high_down_payment_with_deposit_still_quotes() -> None:
    # parse_quote_request accepts it: {"price": "100000", "down_payment": "82000", "term": "24",
    # "rate": "0.04", "deposit_ratio": "0.10"}. Flows: +8,000; -781.63 x 23; +9,218.xx at month 24.
    request = QuoteRequest(price=Decimal(100000), down_payment=Decimal(82000), term=24,
                           annual_rate=Decimal("0.04"), deposit_ratio=Decimal("0.10"))
    q = quote(request)
    values = [float(f.amount) for f in q.cash_flows]
    monthly = float(q.apr) / 12
    npv = sum(v / (1 + monthly) ** t for t, v in enumerate(values))
    assert abs(npv) < 1.0


def test_apr_is_not_below_the_contract_rate_with_a_large_deposit_refund() -> None:
    q = quote(QuoteRequest(price=Decimal(100000), down_payment=Decimal(93000), term=12,
                           annual_rate=Decimal("0.04"), deposit_ratio=Decimal("0.05")))
    assert q.apr >= q.request.annual_rate
