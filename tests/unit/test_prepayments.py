"""A partial prepayment's rules and figures on the stored rows (infra/prepayments.py), without a database: what it
starts from (the rents fallen due, all paid; arrears first; a rent paid ahead in part refuses it), the amount's bounds
(¥1,000 at least; less than the principal less the final rent), and both re-amortisations written back as the booking
writes them — the new principal adds up to the outstanding less the amount, to the fen, each row's interest is the
contract rate's on the balance (reckoned here independently), the lower rent and the number of rents left are
numpy-financial's, and the settlement quote the lease page counts afterwards (bff/servicing/lease_page.py ``dated``)
starts from the balance the prepayment left. The interest of the days between the date the balance is valued at and the
day of the prepayment (a line added to the payment in arrears, a credit off it in advance or when rents were paid ahead)
is checked against hand-worked figures."""

from __future__ import annotations

import math
from datetime import date
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any

import numpy_financial as npf
import pytest

from bff.servicing.lease_page import dated
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.prepayments import LOWER_RENT
from infra.prepayments import MINIMUM
from infra.prepayments import SHORTER_TERM
from infra.prepayments import PrepaymentRefused
from infra.prepayments import accrued_adjustment
from infra.prepayments import check_amount
from infra.prepayments import prepayment_basis
from infra.prepayments import preview_of
from infra.prepayments import reamortised
from infra.prepayments import valid_until
from infra.servicing import lease_plan
from plans.timeline import add_months
from servicing.settlement import settlement_quote_on
from tests.integration.test_servicing_close import record

RATE = Decimal("0.0599")
START = date(2028, 1, 31)  # month ends: 29 February among the due dates


def lease_of(timing: str = "arrears", residual_ratio: str = "0.3",
             term: int = 36) -> tuple[LeaseRow, list[InstalmentRow]]:
    plan = lease_plan(record(START, term=term, timing=timing, residual_ratio=residual_ratio))
    lease = LeaseRow(id="l-1", starts_on=plan.starts_on, ends_on=plan.ends_on, term=term, timing=timing,
                     financed_amount=int(Decimal(plan.terms["financed_amount"]) * 100),
                     residual=int(Decimal(plan.terms["residual"]) * 100),
                     monthly_payment=int(Decimal(plan.terms["monthly_payment"]) * 100), nominal_rate=RATE,
                     settlement_day_count="ACT/360", status="active")
    rows = [InstalmentRow(id=i.number, number=i.number, kind=i.kind, due_on=i.due_on, amount=i.amount,
                          principal=i.principal, interest=i.interest, state="pending", paid_principal=0,
                          paid_interest=0, paid_penalty=0, waived=0, penalty_accrued=0) for i in plan.instalments]
    return lease, rows


def pay_through(rows: list[InstalmentRow], k: int) -> None:
    for r in rows:
        if r.kind == "rent" and r.number <= k:
            r.state, r.paid_principal, r.paid_interest = "paid", r.principal, r.interest


def rewritten(lease: LeaseRow, rows: list[InstalmentRow], preview: dict[str, Any],
              option: str) -> tuple[LeaseRow, list[InstalmentRow]]:
    """The rows as the booking leaves them (infra/prepayments.py ``_rewrite``), from the preview the customer saw."""
    chosen = preview[option]
    new = {r["number"]: r for r in chosen["schedule"]}
    k = preview["after_number"]
    out = []
    for r in rows:
        if r.kind == "rent" and r.number > k and r.number not in new:
            continue
        if r.number in new and r.kind == "rent":
            r = InstalmentRow(**{**{c: getattr(r, c) for c in ("id", "number", "kind", "due_on", "state",
                                                                "paid_principal", "paid_interest", "paid_penalty",
                                                                "waived", "penalty_accrued")},
                                 "amount": new[r.number]["payment"], "principal": new[r.number]["principal"],
                                 "interest": new[r.number]["interest"]})
        out.append(r)
    after = LeaseRow(**{c: getattr(lease, c) for c in ("id", "starts_on", "timing", "financed_amount", "residual",
                                                        "monthly_payment", "nominal_rate", "status")},
                     term=chosen["term"], ends_on=date.fromisoformat(chosen["ends_on"]))
    return after, out


def interest(base: int) -> int:
    """A month's interest at the contract rate on ``base`` fen, half-up to the fen (the contract's schedule)."""
    return int((Decimal(base) * RATE / 12).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_both_options_reconcile_follow_the_rate_and_match_numpy_financial(timing: str) -> None:
    lease, rows = lease_of(timing)
    today = add_months(START, 12) + timedelta(days=3)  # rents 1…12 (arrears) or 1…13 (advance) fallen due
    k = 12 if timing == "arrears" else 13
    pay_through(rows, k)
    basis = prepayment_basis(lease, rows, today)
    assert basis.after_number == k and valid_until(basis) == today  # the interest line counts to the day
    # the balance after rent k counted forward from the financed amount, as the contract's schedule does
    assert basis.balance == lease.financed_amount - sum(r.principal for r in rows if r.kind == "rent" and r.number <= k)
    amount = 3_000_000  # ¥30,000
    shorter, lower = reamortised(lease, basis, amount)
    preview = preview_of(lease, basis, shorter, lower)
    r, when = float(RATE) / 12, "begin" if timing == "advance" else "end"
    after, left = basis.balance - amount, 36 - k
    pmt = -npf.pmt(r, left, after / 100, -lease.residual / 100, when=when)
    assert abs(preview[LOWER_RENT]["rent"] / 100 - pmt) <= 0.005 + 1e-6
    nper = npf.nper(r, -lease.monthly_payment / 100, after / 100, -lease.residual / 100, when=when)
    assert preview[SHORTER_TERM]["rents_left"] == math.ceil(nper) < left
    assert preview[SHORTER_TERM]["rent"] == lease.monthly_payment and preview[LOWER_RENT]["term"] == 36
    for option in (SHORTER_TERM, LOWER_RENT):
        o = preview[option]
        assert o["interest_saved"] > 0
        new_lease, new_rows = rewritten(lease, rows, preview, option)
        later = [x for x in new_rows if x.number > k]
        # the new principal (the final rent's included) is the outstanding less the amount, to the fen
        assert sum(x.principal for x in later) == basis.balance - amount
        assert all(x.amount == x.principal + x.interest for x in later)
        balance = basis.balance - amount
        for x in [x for x in later if x.kind == "rent"][:-1]:  # each rent's interest at the contract rate
            assert x.interest == interest(balance - x.amount if timing == "advance" else balance)
            balance -= x.principal
        if timing == "arrears":
            assert later[-2].interest == interest(balance)  # the last rent's too
        assert [x.number for x in later if x.kind == "rent"] == list(range(k + 1, o["term"] + 1))
        # the lease page's settlement quote a week later starts from the balance the prepayment left
        on = today + timedelta(days=7)
        q = settlement_quote_on(dated(new_lease, new_rows), on)
        expected = basis.balance - amount
        if timing == "advance":  # rent k paid at the start of its period: the balance after it less its interest
            expected -= rows[k - 1].interest
        assert q.rents_paid == k and q.outstanding_principal == Decimal(expected) / 100
        assert dated(new_lease, new_rows).instalments[-1].balance == Decimal(lease.residual) / 100
    assert preview[SHORTER_TERM]["ends_on"] == add_months(START, preview[SHORTER_TERM]["term"]).isoformat()


def test_the_amount_s_bounds() -> None:
    lease, rows = lease_of(residual_ratio="0.3")
    pay_through(rows, 12)
    basis = prepayment_basis(lease, rows, add_months(START, 12))
    with pytest.raises(PrepaymentRefused) as small:
        check_amount(basis, MINIMUM - 1)
    assert small.value.error.code == "too_small" and "1,000.00" in small.value.error.text_zh
    check_amount(basis, MINIMUM)
    check_amount(basis, basis.balance - lease.residual - 1)  # the most: a fen short of the principal less the balloon
    for too_much in (basis.balance - lease.residual, basis.balance, basis.balance + 1):
        with pytest.raises(PrepaymentRefused) as large:
            check_amount(basis, too_much)
        assert large.value.error.code == "too_large" and large.value.status == 422


def test_arrears_first_paid_ahead_and_the_last_rent() -> None:
    lease, rows = lease_of()
    today = add_months(START, 3)  # rent 3 falls due today
    pay_through(rows, 2)
    with pytest.raises(PrepaymentRefused) as arrears:  # rent 3 due today, unpaid
        prepayment_basis(lease, rows, today)
    assert arrears.value.error.code == "arrears" and arrears.value.status == 409
    pay_through(rows, 4)  # rent 3 paid, and rent 4 paid ahead in full: done too
    assert prepayment_basis(lease, rows, today).after_number == 4
    rows[2].penalty_accrued = 500  # a late charge unpaid: arrears
    with pytest.raises(PrepaymentRefused):
        prepayment_basis(lease, rows, today)
    rows[2].paid_penalty = 500
    rows[4].paid_interest = 100  # rent 5 paid ahead in part
    with pytest.raises(PrepaymentRefused) as ahead:
        prepayment_basis(lease, rows, today)
    assert ahead.value.error.code == "paid_ahead"
    rows.append(InstalmentRow(id=99, number=38, kind="purchase_price", due_on=lease.ends_on, amount=10_000,
                              principal=10_000, interest=0, state="pending", paid_principal=0, paid_interest=0,
                              paid_penalty=0, waived=0, penalty_accrued=0))
    rows[4].paid_interest = 0
    with pytest.raises(PrepaymentRefused) as chosen:  # the end of the term chosen: its instalment added
        prepayment_basis(lease, rows, today)
    assert chosen.value.error.code == "end_of_term"
    _, rows = lease_of()
    pay_through(rows, 36)
    with pytest.raises(PrepaymentRefused) as none_left:
        prepayment_basis(lease, rows, add_months(START, 36))
    assert none_left.value.error.code == "no_rent_left"


@pytest.mark.parametrize(("timing", "k", "days_after", "adjustment", "interest_from"), [
    # arrears, rent 12 due 2029-01-31, prepaid 2029-02-27: ¥30,000 × 5.99% × 27 / 360 = ¥134.775 → ¥134.78 to pay
    ("arrears", 12, 27, 13_478, date(2029, 1, 31)),
    # advance, rent 13 paid 2029-01-31 for the month to 2029-02-28 (its interest on the ¥30,000 too), prepaid
    # 2029-02-02: 26 days of it given back, ¥30,000 × 5.99% × 26 / 360 = ¥129.7833… → ¥129.78 off the payment
    ("advance", 13, 2, -12_978, date(2029, 2, 28)),
])
def test_the_days_since_the_balance_s_date_bear_interest_on_the_amount_prepaid(
        timing: str, k: int, days_after: int, adjustment: int, interest_from: date) -> None:
    lease, rows = lease_of(timing)
    pay_through(rows, k)
    today = rows[k - 1].due_on + timedelta(days=days_after)
    basis = prepayment_basis(lease, rows, today)
    assert basis.after_number == k and basis.interest_from == interest_from
    amount = 3_000_000
    assert accrued_adjustment(lease, basis, amount) == adjustment
    preview = preview_of(lease, basis, *reamortised(lease, basis, amount))
    assert preview["accrued_interest"] == adjustment and preview["total"] == amount + adjustment
    assert preview["interest_from"] == interest_from.isoformat()
    assert preview["interest_days"] == (today - interest_from).days
    # the new schedules are unchanged by it: the line is paid (or given back) with the prepayment itself
    assert preview["balance_after"] == basis.balance - amount
    # on the balance's own date there is nothing to count
    same_day = prepayment_basis(lease, rows, interest_from) if timing == "arrears" else None
    if same_day is not None:
        assert accrued_adjustment(lease, same_day, amount) == 0


def test_a_rent_paid_ahead_moves_the_balance_s_date_and_gives_the_interest_back() -> None:
    # arrears: rents 1…12 fallen due and paid, rent 13 (due 2029-02-28) paid ahead in full on 2029-02-10: the basis is
    # after rent 13, valued on its due date, 18 days ahead: ¥30,000 × 5.99% × −18 / 360 = −¥89.85
    lease, rows = lease_of("arrears")
    pay_through(rows, 13)
    basis = prepayment_basis(lease, rows, date(2029, 2, 10))
    assert basis.after_number == 13 and basis.interest_from == date(2029, 2, 28)
    assert accrued_adjustment(lease, basis, 3_000_000) == -8_985


def test_before_the_first_rent_the_interest_counts_from_the_start() -> None:
    # arrears, nothing fallen due yet: the balance is the financed amount on the lease's first day, 2028-01-31;
    # prepaid 2028-02-10: ¥10,000 × 5.99% × 10 / 360 = ¥16.6388… → ¥16.64
    lease, rows = lease_of("arrears")
    basis = prepayment_basis(lease, rows, date(2028, 2, 10))
    assert basis.after_number == 0 and basis.interest_from == START
    assert accrued_adjustment(lease, basis, 1_000_000) == 1_664
