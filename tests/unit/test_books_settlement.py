"""books/settlement.py, books/prepayment.py, books/end_of_term.py: each event's entries balance, post what the
design says on the accounts it names, and a fact that cannot balance is refused."""

from __future__ import annotations

from datetime import date

import pytest

from books.chart import load_chart
from books.end_of_term import car_returned
from books.end_of_term import charged
from books.end_of_term import deposit_applied
from books.entries import Entry
from books.entries import UnpostableEntry
from books.entries import check
from books.prepayment import Prepaid
from books.prepayment import prepaid
from books.settlement import Settled
from books.settlement import settled

DAY = date(2026, 12, 7)


def net(entries: list[Entry], account: str) -> int:
    """debit − credit of ``account`` over ``entries``."""
    return sum(li.debit - li.credit for e in entries for li in e.lines if li.account == account)


def facts(**changes: int) -> Settled:
    # arrears: rent 2 owes 100 principal + 20 interest, its charge 3; rents 3…: 5,000 principal, 400 interest waived
    # (50 of it paid ahead, given back); interest to the day 30, fee 150, deposit 1,000
    base = dict(amount_settled=120 + 3 + 4_950 + 30 + 150 - 50 - 1_000, held=120 + 3 + 4_950 + 30 + 150 - 50 - 1_000,
                deposit_offset=1_000, owed=120 + 4_950 + 350, interest_replaced=400, charges=3, accrued_interest=30,
                principal_difference=0, fee=150, kept_interest=220, recognised=200)
    base.update(changes)
    return Settled("q1", "l1", "d1", DAY, **base)  # type: ignore[arg-type]


def test_a_settlement_balances_and_leaves_nothing_unearned() -> None:
    entries = settled(facts())
    for e in entries:
        check(load_chart(), e)
    assert [e.key for e in entries] == ["settlement:q1", "income:l1:settlement:q1"]
    assert entries[1].kind == "finance_income"
    assert net(entries, "Assets:LeaseReceivable:Payments") == -(120 + 4_950 + 350)
    # unearned: the replaced rents' 400 out, and the kept rents' 20 not recognised yet recognised now
    assert net(entries, "Assets:LeaseReceivable:Unearned") == 400 + 20
    assert net(entries, "Income:Lease:Interest") == -(30 + 20)
    assert net(entries, "Income:Other:Fees") == -150 and net(entries, "Income:Lease:LateCharges") == -3
    assert net(entries, "Liabilities:Deposits:Lessees") == 1_000
    assert net(entries, "Liabilities:Unapplied:Lessees") == 4_203


def test_a_deposit_beyond_what_is_owed_keeps_only_what_is_owed_and_months_beyond_the_kept_rents_are_reversed() -> None:
    entries = settled(facts(amount_settled=-500, held=0, deposit_offset=6_703, kept_interest=180, recognised=200,
                            principal_difference=-10))
    assert net(entries, "Liabilities:Deposits:Lessees") == 6_203  # the 500 refunded stays a deposit to refund
    assert net(entries, "Income:Lease:Interest") == -30 + 10 + 20  # the principal difference and 20 reversed
    assert sum(e.total for e in entries) > 0
    with pytest.raises(UnpostableEntry):
        settled(facts(held=7))


def test_every_rent_paid_ahead_gives_back_beyond_the_deposit_into_unapplied_to_be_refunded() -> None:
    # nothing owed: the replaced rents' 400 of interest all paid ahead and given back, interest to the day 30, fee 150,
    # deposit 100: the settlement comes to −320, the deposit refunded whole and 220 more owed to the lessee
    entries = settled(facts(amount_settled=30 + 150 - 400 - 100, held=0, deposit_offset=100, owed=0, charges=0,
                            kept_interest=200, recognised=200))
    for e in entries:
        check(load_chart(), e)
    assert net(entries, "Liabilities:Deposits:Lessees") == 0  # none of it kept: all refunded by the settle job
    assert net(entries, "Liabilities:Unapplied:Lessees") == -220  # the rest, to be refunded to the lessee
    assert net(entries, "Assets:LeaseReceivable:Unearned") == 400
    # no deposit at all: the whole 220 given back is owed to the lessee
    entries = settled(facts(amount_settled=30 + 150 - 400, held=0, deposit_offset=0, owed=0, charges=0,
                            kept_interest=200, recognised=200))
    assert net(entries, "Liabilities:Unapplied:Lessees") == -220
    assert net(entries, "Liabilities:Deposits:Lessees") == 0


def test_a_prepayment_moves_principal_and_the_dropped_interest() -> None:
    entries = prepaid(Prepaid("p1", "l1", "d1", DAY, amount=2_000_000, accrued_interest=-1_234,
                              interest_dropped=150_000, excess=321))
    for e in entries:
        check(load_chart(), e)
    assert net(entries, "Liabilities:Unapplied:Lessees") == 2_000_000 - 1_234
    assert net(entries, "Assets:LeaseReceivable:Payments") == -(2_000_000 + 150_000)
    assert net(entries, "Assets:LeaseReceivable:Unearned") == 150_000 - 321
    assert net(entries, "Income:Lease:Interest") == 1_234 + 321
    assert [e.kind for e in entries] == ["prepayment", "finance_income"]
    assert len(prepaid(Prepaid("p2", "l1", "d1", DAY, amount=1, accrued_interest=0, interest_dropped=0))) == 1


def test_the_end_of_term_charges_and_the_deposit_applied() -> None:
    price = charged(9, "purchase_price", "l1", "d1", DAY, 10_000)
    assert price is not None and price.key == "charge:9"
    assert {(li.account, li.debit, li.credit) for li in price.lines} == {
        ("Assets:Receivable:Lessees", 10_000, 0), ("Income:Other:Fees", 0, 10_000)}
    final = deposit_applied("l1", "d1", 8, "final_rent", DAY, principal=900, interest=0, penalty=12)
    other = deposit_applied("l1", "d1", 9, "purchase_price", DAY, principal=100, interest=0, penalty=0)
    assert final is not None and other is not None
    assert net([final], "Assets:LeaseReceivable:Payments") == -900 and net([final], "Income:Lease:LateCharges") == -12
    assert net([other], "Assets:Receivable:Lessees") == -100
    assert deposit_applied("l1", "d1", 9, "rent", DAY, principal=0, interest=0, penalty=0) is None


def test_a_returned_car_takes_the_final_rent_off_the_receivable_and_the_income_it_had_earned_back() -> None:
    # the final rent: 40,000 principal and 300 interest left (50 paid); the months recognised 1,250 of the lease's
    # income, the kept schedule (the waived interest out) holds 1,100 through the return day: 150 reversed
    entries = car_returned("l1", "d1", 8, DAY, principal=40_000, interest=300, earned=1_100, recognised=1_250)
    for e in entries:
        check(load_chart(), e)
    assert [(e.key, e.kind) for e in entries] == [("car_returned:l1:8", "car_returned"),
                                                  ("income:l1:car_returned:8", "finance_income")]
    assert net(entries, "Assets:LeaseReceivable:Payments") == -(40_000 + 300)
    assert net(entries, "Assets:Vehicles:Returned") == 40_000  # the carrying amount: the principal
    assert net(entries, "Assets:LeaseReceivable:Unearned") == 300 - 150
    assert net(entries, "Income:Lease:Interest") == 150
    assert all(li.lease_id == "l1" and li.dealer_id == "d1" for e in entries for li in e.lines)
    # nothing recognised beyond the kept schedule: the income entry catches up to the day, or posts nothing
    assert [e.key for e in car_returned("l1", "d1", 8, DAY, principal=40_000, interest=0, earned=7,
                                        recognised=7)] == ["car_returned:l1:8"]
    assert net(car_returned("l1", "d1", 8, DAY, principal=1, interest=0, earned=9, recognised=7),
               "Income:Lease:Interest") == -2
    assert car_returned("l1", "d1", 8, DAY, principal=0, interest=0, earned=0, recognised=0) == []
