"""servicing.reamortise: a partial prepayment (issue 18 §5) — a shorter term with the same rent or a lower rent over
the same term, the residual unchanged — worked by hand, and against numpy-financial (``npf.pmt`` for the lower rent,
``npf.nper`` for the number of rents left) for both timings with a balloon."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import HealthCheck
from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from plans.quote import Quote
from plans.quote import QuoteRequest
from plans.quote import Timing
from plans.quote import quote
from servicing.reamortise import LEAST_A_RENT
from servicing.reamortise import Reamortisation
from servicing.reamortise import prepayment_options

D = Decimal


def check_reconciles(option: Reamortisation, residual: Decimal) -> None:
    rows = option.schedule
    assert [r.period for r in rows] == list(range(option.rents_paid + 1, option.term + 1))
    assert rows[-1].balance == residual
    assert option.balance_after == option.balance_before - option.prepayment
    assert sum(r.principal for r in rows) + residual == option.balance_after
    assert all(r.payment == r.principal + r.interest for r in rows)
    assert all(r.payment == option.rent for r in rows[:-1]) and option.last_payment == rows[-1].payment > 0


def test_a_small_lease_worked_by_hand() -> None:
    # ¥10,000, 3 months at 1 % a month, in arrears: rents 3,400.22; balance after rent 1: 6,699.78
    q = quote(QuoteRequest(price=D("10000.00"), down_payment=D("0.00"), term=3, annual_rate=D("0.12")))
    o = prepayment_options(q.schedule, q.financed_amount, q.residual, D("0.12"), "arrears", paid=1,
                           prepayment=D("3400.00"))
    # 3,299.78 left. Shorter: one rent of 3,299.78 + 33.00 (32.9978) = 3,332.78 ≤ 3,400.22 — the lease ends at 2
    short = o.shorter_term
    assert (short.term, short.rents_left, short.rent, short.last_payment) == (2, 1, D("3400.22"), D("3332.78"))
    # Lower: two rents, 3,299.78 × 0.01 / (1 − 1.01^−2) = 1,674.6834… → 1,674.68
    #   row 2: interest 33.00, principal 1,641.68, balance 1,658.10; row 3: interest 16.581 → 16.58, rent 1,674.68
    low = o.lower_rent
    assert (low.term, low.rent) == (3, D("1674.68"))
    assert [(r.period, r.interest, r.balance) for r in low.schedule] == [
        (2, D("33.00"), D("1658.10")), (3, D("16.58"), D("0.00"))]
    # the interest the old rows 2 and 3 had (67.00 + 33.67 = 100.67) less the new
    assert short.interest_saved == D("100.67") - D("33.00") and low.interest_saved == D("100.67") - D("49.58")
    for option in (short, low):
        check_reconciles(option, D("0.00"))


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_against_numpy_financial_with_a_balloon(timing: Timing) -> None:
    q = quote(QuoteRequest(price=D("200000"), down_payment=D("40000"), term=36, annual_rate=D("0.0599"),
                           residual_ratio=D("0.30"), timing=timing))
    r, when = 0.0599 / 12, "begin" if timing == "advance" else "end"
    o = prepayment_options(q.schedule, q.financed_amount, q.residual, D("0.0599"), timing, paid=12,
                           prepayment=D("30000.00"))
    after = q.schedule[11].balance - D("30000.00")
    assert o.lower_rent.balance_after == o.shorter_term.balance_after == after
    pmt = float(-npf.pmt(r, 24, float(after), -60000.0, when=when))
    assert abs(float(o.lower_rent.rent) - pmt) <= 0.005 + 1e-6 and o.lower_rent.term == 36
    nper = float(npf.nper(r, -float(q.monthly_payment), float(after), -60000.0, when=when))
    assert o.shorter_term.rents_left == math.ceil(nper) < 24 and o.shorter_term.rent == q.monthly_payment
    for option in (o.shorter_term, o.lower_rent):
        check_reconciles(option, q.residual)
        assert option.interest_saved > 0
    # a prepayment of that principal after a re-amortisation: the new schedule is amortised again the same way
    again = prepayment_options(o.lower_rent.schedule, o.lower_rent.balance_after, q.residual, D("0.0599"), timing,
                               paid=6, prepayment=D("10000.00"))
    assert again.lower_rent.term == 36 and again.lower_rent.schedule[0].period == 19
    check_reconciles(again.lower_rent, q.residual)


@st.composite
def leases(draw: st.DrawFn) -> Quote:
    price = D(draw(st.integers(5_000_000, 100_000_000))).scaleb(-2)
    return quote(QuoteRequest(
        price=price, down_payment=(price * D(draw(st.integers(0, 50))) / 100).quantize(D("0.01")),
        term=draw(st.integers(12, 60)), annual_rate=D(draw(st.integers(1, 2400))).scaleb(-4),
        residual_ratio=D(draw(st.sampled_from([0, 10, 30, 40]))) / 100,
        timing=draw(st.sampled_from(["arrears", "advance"]))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leases(), st.data())
def test_both_options_reconcile_and_match_numpy_financial(q: Quote, data: st.DataObject) -> None:
    req = q.request
    paid = data.draw(st.integers(0, req.term - 1), label="paid")
    before = q.financed_amount if paid == 0 else q.schedule[paid - 1].balance
    # at least ¥1 a rent left above the residual (LEAST_A_RENT): a fen more is an early settlement, not this
    room = int((before - q.residual - LEAST_A_RENT * (req.term - paid)) * 100)
    assume(room >= 1)
    with pytest.raises(ValueError, match="at least 1.00 a rent"):
        prepayment_options(q.schedule, q.financed_amount, q.residual, req.annual_rate, req.timing, paid=paid,
                           prepayment=D(room + 1).scaleb(-2))
    prepayment = D(data.draw(st.integers(1, room), label="prepayment fen")).scaleb(-2)
    o = prepayment_options(q.schedule, q.financed_amount, q.residual, req.annual_rate, req.timing, paid=paid,
                           prepayment=prepayment)
    for option in (o.shorter_term, o.lower_rent):
        check_reconciles(option, q.residual)
    r, when = float(req.annual_rate) / 12, "begin" if req.timing == "advance" else "end"
    after, left = float(before - prepayment), req.term - paid
    pmt = float(-npf.pmt(r, left, after, -float(q.residual), when=when))
    assert abs(float(o.lower_rent.rent) - pmt) <= 0.005 + 1e-6
    assert o.lower_rent.rents_left == left and o.shorter_term.rents_left <= left
    nper = float(npf.nper(r, -float(q.monthly_payment), after, -float(q.residual), when=when))
    if abs(nper - round(nper)) > 1e-4:  # away from a whole number, where a fen of rounding decides
        assert o.shorter_term.rents_left == min(left, math.ceil(nper))


@pytest.mark.parametrize(("paid", "prepayment"), [(1, D("0")), (1, D("-5.00")), (1, D("0.001")), (3, D("10.00")),
                                                   (1, D("6699.78")), (-1, D("10.00"))])
def test_bad_prepayments_are_refused(paid: int, prepayment: Decimal) -> None:
    q = quote(QuoteRequest(price=D("10000.00"), down_payment=D("0.00"), term=3, annual_rate=D("0.12")))
    with pytest.raises(ValueError):
        prepayment_options(q.schedule, q.financed_amount, q.residual, D("0.12"), "arrears", paid=paid,
                           prepayment=prepayment)
