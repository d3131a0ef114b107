"""The origination's posting rules (books/origination.py): what the upfront payment is made of, the entries of a
capture, a refund (the upfront payment's parts given back in order, cumulatively), the dealer's share, Stripe's fees
and payouts — each balanced and valid under the chart of accounts."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from books.chart import load_chart
from books.entries import Entry
from books.entries import check
from books.origination import DEALERS
from books.origination import DEPOSITS
from books.origination import FEES
from books.origination import INSURERS
from books.origination import LESSEES
from books.origination import PROCESSOR_FEES
from books.origination import REFUND_ORDER
from books.origination import STRIPE
from books.origination import UNAPPLIED
from books.origination import UpfrontParts
from books.origination import captured
from books.origination import dealer_share_paid
from books.origination import deposit_kept
from books.origination import payout
from books.origination import processor_fee
from books.origination import refund_slices
from books.origination import refundable_once_commenced
from books.origination import refunded
from books.origination import upfront_parts

DAY = date(2026, 12, 7)


def plan(*, down: str = "30000.00", fees: str = "1500.00", financed: bool = False, timing: str = "advance",
         first: str = "4321.09") -> dict[str, Any]:
    return {"choice": {"extras_financed": financed, "timing": timing},
            "quote": {"down_payment": down, "credit_fees": fees, "timing": timing,
                      "schedule": [{"period": 1, "payment": first}, {"period": 2, "payment": "4300.00"}]}}


def sides(item: Entry | None) -> dict[str, int]:
    """Account → debit − credit of an entry (checked against the chart first)."""
    assert item is not None
    check(load_chart(), item)
    out: dict[str, int] = {}
    for line in item.lines:
        out[line.account] = out.get(line.account, 0) + line.debit - line.credit
    return out


def test_the_upfront_payment_is_the_down_payment_fees_premiums_and_the_first_rent_in_advance() -> None:
    # 30,000 down + 1,500 fees + 4,321.09 first rent + 2,000.55 premiums (the rest)
    parts = upfront_parts(plan(), 3_782_164)
    assert parts == UpfrontParts(down_payment=3_000_000, fees=150_000, premiums=200_055, first_rent=432_109)
    assert parts.total == 3_782_164
    # extras financed: no fees or premiums upfront; rents in arrears: no first rent
    assert upfront_parts(plan(financed=True, timing="arrears"), 3_000_000) == UpfrontParts(down_payment=3_000_000)
    # a plan that does not fit the amount never makes parts beyond it (the parts always add up to the amount)
    odd = upfront_parts(plan(), 100)
    assert odd == UpfrontParts(down_payment=100) and odd.total == 100
    assert upfront_parts({}, 5_000) == UpfrontParts(premiums=5_000)


def test_captures_post_the_clearing_account_against_what_each_part_is() -> None:
    parts = UpfrontParts(down_payment=3_000_000, fees=150_000, premiums=200_055, first_rent=432_109)
    upfront = captured("p1", "upfront", parts.total, DAY, parts=parts, dealer_id="d1", application_id="a1")
    assert upfront is not None and upfront.key == "payment:p1:captured" and upfront.kind == "upfront_captured"
    assert sides(upfront) == {STRIPE: 3_782_164, DEALERS: -3_000_000, FEES: -150_000, INSURERS: -200_055,
                              UNAPPLIED: -432_109}
    assert all(line.dealer_id == "d1" for line in upfront.lines)
    assert sides(captured("p2", "deposit", 900_000, DAY)) == {STRIPE: 900_000, DEPOSITS: -900_000}
    assert sides(captured("p3", "hold", 12_345, DAY)) == {STRIPE: 12_345, DEPOSITS: -12_345}
    assert captured("p4", "deposit", 0, DAY) is None  # nothing moved, nothing posted
    with pytest.raises(ValueError):
        captured("p5", "upfront", 10, DAY, parts=UpfrontParts(down_payment=9))
    with pytest.raises(ValueError):
        captured("p6", "rent", 10, DAY)


def test_a_refund_gives_back_the_lessor_s_parts_first_and_the_dealer_s_last() -> None:
    parts = UpfrontParts(down_payment=1_000, fees=100, premiums=50, first_rent=200)
    assert refund_slices(parts, 0, 120) == {"fees": 100, "premiums": 20, "first_rent": 0, "down_payment": 0}
    assert refund_slices(parts, 120, 400) == {"fees": 0, "premiums": 30, "first_rent": 200, "down_payment": 170}
    first = refunded("refund:r1", "upfront", 120, DAY, parts=parts)
    assert sides(first) == {FEES: 100, INSURERS: 20, STRIPE: -120}
    assert sides(refunded("refund:r2", "upfront", 400, DAY, before=120, parts=parts)) == {
        INSURERS: 30, UNAPPLIED: 200, DEALERS: 170, STRIPE: -400}
    assert sides(refunded("refund:r3", "deposit", 77, DAY)) == {DEPOSITS: 77, STRIPE: -77}
    with pytest.raises(ValueError):
        refund_slices(parts, 1_000, 351)  # beyond what was captured
    with pytest.raises(ValueError):
        refunded("refund:r4", "upfront", 1, DAY)  # the parts are needed


@given(st.lists(st.integers(0, 5_000), min_size=4, max_size=4), st.lists(st.integers(1, 3_000), max_size=6))
def test_refunds_in_any_amounts_give_back_each_part_at_most_once(sizes: list[int], amounts: list[int]) -> None:
    parts = UpfrontParts(*sizes)
    given_back = dict.fromkeys(REFUND_ORDER, 0)
    before = 0
    for amount in amounts:
        if before + amount > parts.total:
            break
        for name, fen in refund_slices(parts, before, amount).items():
            given_back[name] += fen
        before += amount
    assert sum(given_back.values()) == before
    assert all(given_back[name] <= parts.part(name) for name in REFUND_ORDER)
    # what is given back is the first parts in order: a later part only once the earlier ones are all given back
    names = list(REFUND_ORDER)
    for i, name in enumerate(names[1:], 1):
        if given_back[name]:
            assert all(given_back[n] == parts.part(n) for n in names[:i])


def test_the_dealer_s_share_stripe_s_fees_and_payouts() -> None:
    assert sides(dealer_share_paid("p1", 3_000_000, DAY, dealer_id="d1", transfer_id="tr_1")) == {
        DEALERS: 3_000_000, STRIPE: -3_000_000}
    fee = processor_fee("txn_1", 320, DAY)
    assert fee is not None and fee.key == "fee:txn_1"
    assert sides(fee) == {PROCESSOR_FEES: 320, STRIPE: -320}
    assert sides(processor_fee("txn_2", -30, DAY)) == {PROCESSOR_FEES: -30, STRIPE: 30}  # a fee given back
    assert processor_fee("txn_3", 0, DAY) is None
    assert sides(payout("txn_4", 500_000, DAY)) == {"Assets:Bank:Collections": 500_000, STRIPE: -500_000}


def test_a_deduction_at_closing_is_kept_from_the_deposit_as_fees_and_a_hold_captured_for_it_too() -> None:
    """Ops' closing of a lease with no lease in servicing keeps the deduction out of the deposit: it leaves the
    lessee's deposit for Income:Other:Fees (no receivable was booked for what it covers); the part of it a live hold
    pays is credited to fees on capture, the rest of such a capture stays the lessee's deposit."""
    kept = deposit_kept("app-1", 12_345, DAY, dealer_id="d-1", reason="未付租金")
    assert kept is not None and kept.key == "deduction:app-1" and kept.dealer_id == "d-1"
    assert sides(kept) == {DEPOSITS: 12_345, FEES: -12_345}
    assert deposit_kept("app-1", 0, DAY) is None
    assert sides(captured("p-1", "hold", 5_000, DAY, kept=3_000)) == {STRIPE: 5_000, FEES: -3_000, DEPOSITS: -2_000}
    assert sides(captured("p-1", "hold", 5_000, DAY, kept=9_000)) == {STRIPE: 5_000, FEES: -5_000}
    with pytest.raises(ValueError):
        captured("p-1", "deposit", 5_000, DAY, kept=1)


def test_once_the_lease_applied_the_first_rent_a_refund_outside_reaching_it_is_owed_by_the_lessee() -> None:
    """After the commencement the first rent is no longer in Unapplied (rent 1 paid at signing took it): a refund made
    outside Leaseline that reaches it is a sum the lessee owes back, Assets:Receivable:Lessees — never a debit of
    Unapplied, which would go negative."""
    parts = UpfrontParts(down_payment=30_000, fees=1_500, premiums=2_000, first_rent=4_000)
    assert sides(refunded("r", "upfront", 4_000, DAY, before=1_000, parts=parts, commenced=True)) == {
        FEES: 500, INSURERS: 2_000, LESSEES: 1_500, STRIPE: -4_000}
    assert sides(refunded("r", "upfront", 4_000, DAY, before=1_000, parts=parts)) == {
        FEES: 500, INSURERS: 2_000, UNAPPLIED: 1_500, STRIPE: -4_000}
    assert refundable_once_commenced(parts) == 3_500  # the fees and premiums only
    assert refundable_once_commenced(UpfrontParts(down_payment=30_000, fees=1_500)) == 31_500  # in arrears: all
