"""servicing.settlement: early-settlement quotes (提前结清, issue 18 §5 and §9) against independent references —
numpy-financial's future value for the balance after K rents (both timings, with a balloon), integer arithmetic for
the accrued interest and the fee, and small leases worked by hand in the comments below."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from plans.product import EarlySettlement
from plans.product import load_product
from plans.quote import Quote
from plans.quote import QuoteRequest
from plans.quote import Timing
from plans.quote import quote
from servicing.instalments import dated_schedule
from servicing.settlement import accrued_interest
from servicing.settlement import settlement_quote
from servicing.settlement import settlement_quote_on

D = Decimal
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small_lease(timing: Timing = "arrears") -> Quote:
    """¥10,000 financed over 3 months at 12 % a year (1 % a month), no balloon."""
    return quote(QuoteRequest(price=D("10000.00"), down_payment=D("0.00"), term=3, annual_rate=D("0.12"),
                              timing=timing))


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, in integers (both positive)."""
    return (2 * numerator + denominator) // (2 * denominator)


def reference_interest(balance: Decimal, rate: Decimal, days: int, year: int = 360) -> Decimal:
    """balance × rate × days / year to the fen, in integers: balance in fen, the rate in millionths."""
    fen_, micro = int(balance * 100), int(rate * 1_000_000)
    return D(half_up(fen_ * micro * days, year * 1_000_000)).scaleb(-2)


def reference_balance(q: Quote, k: int) -> float:
    """The balance after k rents by numpy-financial: the future value of the financed amount less k of the quote's
    rents (paid at the start of each month in advance, at its end in arrears)."""
    r = float(q.request.annual_rate) / 12
    if r == 0:  # npf.fv divides by the rate before choosing the rate-0 branch (a RuntimeWarning)
        return float(q.financed_amount) - k * float(q.monthly_payment)
    when = "begin" if q.request.timing == "advance" else "end"
    return float(-npf.fv(r, k, -float(q.monthly_payment), float(q.financed_amount), when=when))


# --------------------------------------------------------------------------------------- worked by hand


def test_a_small_lease_worked_by_hand() -> None:
    # rent = 10,000 × 0.01 / (1 − 1.01^−3) = 3,400.2211… → 3,400.22
    # row 1: interest 100.00, principal 3,300.22, balance 6,699.78
    # row 2: interest 66.9978 → 67.00, principal 3,333.22, balance 3,366.56
    # row 3: interest 33.6656 → 33.67, rent 3,400.23 (absorbs the rounding), balance 0.00
    q = small_lease()
    assert [(r.payment, r.balance) for r in q.schedule] == [
        (D("3400.22"), D("6699.78")), (D("3400.22"), D("3366.56")), (D("3400.23"), D("0.00"))]
    # after rent 1, 10 days on, 3 % fee, a ¥500 deposit:
    #   interest 6,699.78 × 0.12 × 10 / 360 = 22.3326 → 22.33; fee 6,699.78 × 0.03 = 200.9934 → 200.99
    #   due 6,699.78 + 22.33 + 200.99 − 500.00 = 6,423.10
    s = settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=1, days=10, deposit=D("500.00"))
    assert (s.outstanding_principal, s.accrued_interest, s.early_settlement_fee, s.deposit_offset, s.amount_due) == (
        D("6699.78"), D("22.33"), D("200.99"), D("500.00"), D("6423.10"))
    assert [line.code for line in s.lines] == [
        "outstanding_principal", "accrued_interest", "early_settlement_fee", "deposit_offset"]
    assert sum(line.amount for line in s.lines) == s.amount_due
    interest = s.lines[1]
    assert (interest.label_zh, interest.label_en) == ("应计利息", "Accrued interest")
    assert interest.basis_en == "¥6,699.78 × 12% × 10 days ÷ 360" and "10 天 ÷ 360" in interest.basis_zh


def test_no_rent_paid_settles_the_financed_amount_and_the_last_rent_paid_has_no_fee() -> None:
    q = small_lease()
    start = settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=0, days=30)
    # 10,000 × 0.12 × 30 / 360 = 100.00 exactly; fee 300.00
    assert (start.outstanding_principal, start.accrued_interest, start.early_settlement_fee) == (
        D("10000.00"), D("100.00"), D("300.00"))
    deposit_line = start.as_dict()["lines"][-1]  # type: ignore[index]
    assert deposit_line["amount"] == "0.00" and deposit_line["basis_en"] == "deposit-free: no deposit"
    end = settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=3, days=0)
    assert (end.outstanding_principal, end.accrued_interest, end.early_settlement_fee, end.amount_due) == (
        D("0.00"), D("0.00"), D("0.00"), D("0.00"))
    assert end.lines[2].basis_en == "every rent paid: no fee"


def test_a_deposit_above_what_is_owed_is_refunded() -> None:
    # a 30 % balloon of ¥60,000 after the last rent, a ¥100,000 deposit (50 %): at the term, 15 days on,
    # 60,000 × 0.0599 × 15 / 360 = 149.75; no fee; due 60,149.75 − 100,000 = −39,850.25: a refund
    q = quote(QuoteRequest(price=D("200000"), down_payment=D("40000"), term=36, annual_rate=D("0.0599"),
                           residual_ratio=D("0.30"), deposit_ratio=D("0.5")))
    s = settlement_quote(q.schedule, q.financed_amount, D("0.0599"), paid=36, days=15, deposit=q.deposit)
    assert (s.outstanding_principal, s.accrued_interest, s.early_settlement_fee) == (
        D("60000.00"), D("149.75"), D("0.00"))
    assert s.amount_due == D("-39850.25") and s.refund == D("39850.25")
    assert s.as_dict()["amount_due"] == "-39850.25"


def test_arrears_and_penalties_are_added_and_explained() -> None:
    q = small_lease()
    s = settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=1, arrears=D("3400.22"),
                         penalties=D("17.00"))
    assert s.amount_due == D("6699.78") + D("200.99") + D("3400.22") + D("17.00")
    assert [line.code for line in s.lines][3:5] == ["arrears", "penalties"]
    with pytest.raises(ValueError):
        settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=1, arrears=D("0.001"))
    for paid, days in ((-1, 0), (4, 0), (1, -1)):
        with pytest.raises(ValueError):
            settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=paid, days=days)


# ------------------------------------------------------------------ numpy-financial, both timings, a balloon


@pytest.mark.parametrize("timing", ["arrears", "advance"])
@pytest.mark.parametrize("residual", ["0", "0.30"])
def test_the_outstanding_principal_is_the_balance_numpy_financial_finds(timing: Timing, residual: str) -> None:
    q = quote(QuoteRequest(price=D("200000"), down_payment=D("40000"), term=36, annual_rate=D("0.0599"),
                           residual_ratio=D(residual), timing=timing))
    r = 0.0599 / 12
    for k in range(0, 37):
        s = settlement_quote(q.schedule, q.financed_amount, D("0.0599"), paid=k)
        assert s.outstanding_principal == (q.financed_amount if k == 0 else q.schedule[k - 1].balance)
        # each row's interest is rounded to the fen: the balance drifts by at most half a fen a month, compounded
        drift = 0.005 * k * (1 + r) ** k + 1e-6
        if k < 36:
            assert abs(float(s.outstanding_principal) - reference_balance(q, k)) <= drift, k
    assert settlement_quote(q.schedule, q.financed_amount, D("0.0599"), paid=36).outstanding_principal == q.residual


@st.composite
def leases(draw: st.DrawFn) -> Quote:
    price = D(draw(st.integers(5_000_000, 100_000_000))).scaleb(-2)
    down = (price * D(draw(st.integers(0, 50))) / 100).quantize(D("0.01"))
    return quote(QuoteRequest(
        price=price, down_payment=down, term=draw(st.integers(12, 60)),
        annual_rate=D(draw(st.integers(0, 2400))).scaleb(-4),
        residual_ratio=D(draw(st.sampled_from([0, 10, 30, 40]))) / 100,
        timing=draw(st.sampled_from(["arrears", "advance"])),
        deposit_ratio=D(draw(st.sampled_from([0, 5, 20]))) / 100))


@SETTINGS
@given(leases(), st.data())
def test_every_line_against_an_independent_reference(q: Quote, data: st.DataObject) -> None:
    term = q.request.term
    k = data.draw(st.integers(0, term), label="paid")
    days = data.draw(st.integers(0, 30), label="days")
    fee_rate = D(data.draw(st.integers(0, 1000), label="fee bp")).scaleb(-4)
    rate = q.request.annual_rate
    s = settlement_quote(q.schedule, q.financed_amount, rate, paid=k, days=days,
                         terms=EarlySettlement(fee_rate=fee_rate), deposit=q.deposit)
    if k < term:
        r = float(rate) / 12
        assert abs(float(s.outstanding_principal) - reference_balance(q, k)) <= 0.005 * k * (1 + r) ** k + 1e-6
    assert s.accrued_interest == reference_interest(s.outstanding_principal, rate, days)
    fee = 0 if k == term else half_up(int(s.outstanding_principal * 100) * int(fee_rate * 10_000), 10_000)
    assert s.early_settlement_fee == D(fee).scaleb(-2)
    assert s.amount_due == s.outstanding_principal + s.accrued_interest + s.early_settlement_fee - q.deposit
    assert sum(line.amount for line in s.lines) == s.amount_due
    for key in ("outstanding_principal", "accrued_interest", "early_settlement_fee", "deposit_offset", "amount_due"):
        text = str(s.as_dict()[key])
        assert D(text) == getattr(s, key) and len(text.rpartition(".")[2]) == 2


def test_act_365_divides_by_365() -> None:
    # 36,500.00 × 0.10 × 10 / 365 = 100.00; / 360 it is 101.3888… → 101.39
    assert accrued_interest(D("36500.00"), D("0.10"), 10, 365) == D("100.00")
    assert accrued_interest(D("36500.00"), D("0.10"), 10) == D("101.39")
    assert accrued_interest(D("0.45"), D("0.10"), 36) == D("0.00")  # 0.0045: below half a fen
    assert accrued_interest(D("0.90"), D("0.10"), 20) == D("0.01")  # 0.005 exactly: half-up


# -------------------------------------------------------------------------------- on a calendar date


def test_on_a_date_in_arrears_interest_runs_from_the_last_rent_due_across_month_ends() -> None:
    q = small_lease()
    lease = dated_schedule(q, date(2028, 1, 31))  # rents due 29 Feb 2028 (a leap year), 31 Mar, 30 Apr
    assert [i.due_on for i in lease.instalments] == [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)]
    s = settlement_quote_on(lease, date(2028, 3, 15))
    # one rent due (29 Feb), 15 days on: 6,699.78 × 0.12 × 15 / 360 = 33.49945 → 33.50
    assert (s.rents_paid, s.days, s.interest_from, s.outstanding_principal, s.accrued_interest) == (
        1, 15, date(2028, 2, 29), D("6699.78"), D("33.50"))
    # on a rent's due date, in arrears, the quote counted in periods with D = 0
    on_due = settlement_quote_on(lease, date(2028, 3, 31))
    assert on_due.rents_paid == 2 and on_due.days == 0
    assert on_due.amount_due == settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=2).amount_due


@pytest.mark.parametrize(("start", "days"), [(date(2028, 2, 15), 28), (date(2027, 2, 15), 27)])
def test_before_the_first_rent_interest_runs_from_the_start_counting_29_february(start: date, days: int) -> None:
    q = small_lease()
    lease = dated_schedule(q, start)
    s = settlement_quote_on(lease, start.replace(month=3, day=14))
    assert (s.rents_paid, s.days, s.outstanding_principal) == (0, days, D("10000.00"))
    assert s.accrued_interest == reference_interest(D("10000.00"), D("0.12"), days)  # 93.33 / 90.00


def test_on_a_date_in_advance_the_principal_is_the_previous_balance_less_the_rent_paid() -> None:
    # advance: rent = 3,400.2211… / 1.01 = 3,366.5556… → 3,366.56
    # row 1: interest (10,000 − 3,366.56) × 0.01 = 66.3344 → 66.33, balance 6,699.77
    # row 2: interest (6,699.77 − 3,366.56) × 0.01 = 33.3321 → 33.33, balance 3,366.54
    q = small_lease("advance")
    assert [(r.payment, r.interest, r.balance) for r in q.schedule[:2]] == [
        (D("3366.56"), D("66.33"), D("6699.77")), (D("3366.56"), D("33.33"), D("3366.54"))]
    lease = dated_schedule(q, date(2028, 1, 31))  # rents due 31 Jan, 29 Feb, 31 Mar; the term ends 30 Apr
    s = settlement_quote_on(lease, date(2028, 3, 10))
    # rent 2 paid on 29 Feb: 6,699.77 − 3,366.56 = 3,333.21; 10 days: 3,333.21 × 0.12 × 10 / 360 = 11.1107 → 11.11
    # fee 3,333.21 × 0.03 = 99.9963 → 100.00; due 3,444.32
    assert (s.rents_paid, s.days, s.outstanding_principal, s.accrued_interest, s.early_settlement_fee) == (
        2, 10, D("3333.21"), D("11.11"), D("100.00"))
    assert s.amount_due == D("3444.32")
    assert "less rent 2" in s.lines[0].basis_en
    # on the start the first rent is due already
    first = settlement_quote_on(lease, date(2028, 1, 31))
    assert (first.rents_paid, first.days, first.outstanding_principal) == (1, 0, D("10000.00") - D("3366.56"))
    assert first.lines[0].basis_en == "the financed amount less rent 1 of ¥3,366.56"


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_the_last_day_of_the_term_has_no_fee_and_dates_outside_the_term_are_refused(timing: Timing) -> None:
    q = quote(QuoteRequest(price=D("100000"), down_payment=D("20000"), term=12, annual_rate=D("0.0499"),
                           residual_ratio=D("0.40"), timing=timing, deposit_ratio=D("0.05")))
    lease = dated_schedule(q, date(2027, 12, 31))
    assert lease.ends_on == date(2028, 12, 31)
    s = settlement_quote_on(lease, lease.ends_on, deposit=q.deposit)
    assert s.rents_paid == 12 and s.early_settlement_fee == 0
    if timing == "arrears":
        assert (s.days, s.outstanding_principal) == (0, q.residual)
    else:  # the last rent paid on 30 Nov: the residual less its last month's interest, then 31 days of interest
        assert s.days == 31 and s.outstanding_principal == q.residual - q.schedule[-1].interest
    for outside in (lease.starts_on - timedelta(days=1), lease.ends_on + timedelta(days=1)):
        with pytest.raises(ValueError):
            settlement_quote_on(lease, outside)


def test_the_product_s_terms_are_the_defaults() -> None:
    terms = load_product().early_settlement
    q = small_lease()
    s = settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=1, terms=terms)
    assert s.terms.fee_rate == D("0.03") and s.terms.days_in_year == 360
    assert s == settlement_quote(q.schedule, q.financed_amount, D("0.12"), paid=1)
