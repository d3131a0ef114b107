"""books.lease: the lease's own postings, pure — each entry's lines to the fen, balanced and accepted by the chart,
keyed by our records, nothing for an event that moved no money, and what does not add up refused."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from books.chart import load_chart
from books.entries import Entry
from books.entries import Line
from books.entries import UnpostableEntry
from books.entries import check
from books.lease import BANK
from books.lease import DEALERS
from books.lease import LATE_CHARGES
from books.lease import OTHER_RECEIVABLE
from books.lease import RECEIVABLE
from books.lease import STRIPE_CLEARING
from books.lease import UNAPPLIED
from books.lease import UNEARNED
from books.lease import VAT_OUTPUT
from books.lease import Applied
from books.lease import Scheduled
from books.lease import cash_account
from books.lease import collected_outside
from books.lease import commenced
from books.lease import paid_at_signing
from books.lease import receipt
from books.lease import refinanced
from books.lease import surplus_refunded

DAY = date(2026, 3, 15)


def lines(item: Entry | None) -> set[tuple[str, int, int, str | None, str | None]]:
    assert item is not None
    check(load_chart(), item)
    return {(li.account, li.debit, li.credit, li.lease_id, li.dealer_id) for li in item.lines}


def test_commencement_books_the_payments_receivable_against_unearned_income_and_the_dealer() -> None:
    schedule = [Scheduled("rent", 1_000_00, 900_00, 100_00), Scheduled("rent", 1_000_00, 950_50, 49_50),
                Scheduled("final_rent", 5_000_00, 5_000_00, 0)]
    made = commenced("L1", "D1", DAY, schedule)
    assert made is not None and made.key == "lease:L1:commenced" and made.value_date == DAY
    assert made.kind == "lease_commenced" and made.lease_id == "L1" and made.dealer_id == "D1"
    assert lines(made) == {(RECEIVABLE, 7_000_00, 0, "L1", "D1"), (UNEARNED, 0, 149_50, "L1", "D1"),
                           (DEALERS, 0, 6_850_50, "L1", "D1")}


def test_commencement_counts_only_lease_payments_and_refuses_a_rent_that_is_not_its_parts() -> None:
    made = commenced("L1", "D1", DAY, [Scheduled("rent", 100, 90, 10), Scheduled("purchase_price", 500, 500, 0)])
    assert lines(made) == {(RECEIVABLE, 100, 0, "L1", "D1"), (UNEARNED, 0, 10, "L1", "D1"),
                           (DEALERS, 0, 90, "L1", "D1")}
    with pytest.raises(UnpostableEntry, match="not its principal"):
        commenced("L1", "D1", DAY, [Scheduled("rent", 100, 90, 9)])
    assert commenced("L1", "D1", DAY, []) is None


def test_a_receipt_splits_what_it_paid_by_part_and_keeps_the_rest_to_refund() -> None:
    applied = [Applied("rent", 800, 150, 25), Applied("rent", 200, 0, 0), Applied("purchase_price", 300, 0, 0)]
    made = receipt("R1", "L1", "D1", source="direct_debit", value_date=DAY, amount=1_500, applied=applied, surplus=25)
    assert made is not None and made.key == "receipt:R1" and made.kind == "rent_collected"
    assert lines(made) == {(BANK, 1_500, 0, "L1", "D1"), (RECEIVABLE, 0, 1_150, "L1", "D1"),
                           (OTHER_RECEIVABLE, 0, 300, "L1", "D1"), (LATE_CHARGES, 0, 22, "L1", "D1"),
                           (VAT_OUTPUT, 0, 3, "L1", "D1"), (UNAPPLIED, 0, 25, "L1", "D1")}
    # the late charge is income net of its VAT (13% in 2026): 25 × 13 / 113 = 2.88 → 3 fen of output VAT


def test_a_payment_for_a_settlement_or_a_closed_lease_lands_in_unapplied() -> None:
    held = receipt("R2", "L1", "D1", source="stripe", value_date=DAY, amount=9_000, held=8_800, surplus=200)
    assert lines(held) == {(STRIPE_CLEARING, 9_000, 0, "L1", "D1"), (UNAPPLIED, 0, 9_000, "L1", "D1")}
    closed = receipt("R3", "L1", "D1", source="stripe", value_date=DAY, amount=700, surplus=700)
    assert lines(closed) == {(STRIPE_CLEARING, 700, 0, "L1", "D1"), (UNAPPLIED, 0, 700, "L1", "D1")}


def test_a_receipt_that_does_not_add_up_or_comes_from_nowhere_is_refused() -> None:
    with pytest.raises(UnpostableEntry, match="1000 fen received"):
        receipt("R", "L", "D", source="stripe", value_date=DAY, amount=1_000, applied=[Applied("rent", 900, 0, 0)])
    with pytest.raises(UnpostableEntry, match="negative"):
        receipt("R", "L", "D", source="stripe", value_date=DAY, amount=0, applied=[Applied("rent", 5, -5, 0)])
    with pytest.raises(UnpostableEntry, match="no account"):
        receipt("R", "L", "D", source="cash", value_date=DAY, amount=10, surplus=10)
    assert cash_account("stripe") == STRIPE_CLEARING and cash_account("direct_debit") == BANK


def test_a_surplus_refunded_leaves_unapplied_by_the_way_it_came() -> None:
    made = surplus_refunded("R1", "L1", "D1", source="stripe", value_date=DAY, surplus=25)
    assert made is not None and made.key == "receipt:R1:refund" and made.kind == "surplus_refunded"
    assert lines(made) == {(UNAPPLIED, 25, 0, "L1", "D1"), (STRIPE_CLEARING, 0, 25, "L1", "D1")}
    assert surplus_refunded("R1", "L1", "D1", source="stripe", value_date=DAY, surplus=0) is None


def test_rent_paid_at_signing_and_rents_collected_outside() -> None:
    signing = paid_at_signing("L1", "D1", DAY, 3_456_78)
    assert signing is not None and signing.key == "lease:L1:paid_at_signing"
    assert lines(signing) == {(UNAPPLIED, 3_456_78, 0, "L1", "D1"), (RECEIVABLE, 0, 3_456_78, "L1", "D1")}
    outside = collected_outside("L1", "D1", 3, date(2025, 6, 30), 3_000_00, 456_78)
    assert outside is not None and outside.key == "collected_outside:L1:3" and outside.value_date == date(2025, 6, 30)
    assert lines(outside) == {(BANK, 3_456_78, 0, "L1", "D1"), (RECEIVABLE, 0, 3_456_78, "L1", "D1")}


def test_a_refinancing_pays_the_old_final_rent_off_with_the_new_lease_funding() -> None:
    made = refinanced("OLD", "D1", "NEW", "D2", DAY, principal=40_000_00, interest=0, penalty=19_72)
    assert made is not None and made.key == "lease:OLD:refinanced" and made.lease_id == "OLD"
    assert lines(made) == {(DEALERS, 40_019_72, 0, "NEW", "D2"), (RECEIVABLE, 0, 40_000_00, "OLD", "D1"),
                           (LATE_CHARGES, 0, 17_45, "OLD", "D1"), (VAT_OUTPUT, 0, 2_27, "OLD", "D1")}
    # the late charge paid off is income net of its VAT: 1972 × 13 / 113 = 226.87 → 227 fen
    assert refinanced("OLD", "D1", "NEW", "D2", DAY, principal=0, interest=0, penalty=0) is None


fen = st.integers(min_value=0, max_value=10**11)


@given(st.lists(st.tuples(st.sampled_from(["rent", "final_rent", "purchase_price"]), fen, fen, fen), max_size=8),
       fen, fen, st.sampled_from(["stripe", "direct_debit"]))
def test_every_receipt_balances_to_the_fen(parts: list[tuple[str, int, int, int]], held: int, surplus: int,
                                           source: str) -> None:
    applied = [Applied(*p) for p in parts]
    amount = sum(p + i + pen for _, p, i, pen in parts) + held + surplus
    made = receipt("R", "L", "D", source=source, value_date=DAY, amount=amount, applied=applied, held=held,
                   surplus=surplus)
    if amount == 0:
        assert made is None
        return
    assert made is not None
    check(load_chart(), made)
    assert made.total == amount
    assert all(isinstance(li, Line) and (li.debit > 0) != (li.credit > 0) for li in made.lines)


def test_the_dealer_paid_for_the_car_settles_the_lease_s_dealer_payable_from_the_disbursements_account() -> None:
    from books.lease import DISBURSEMENTS
    from books.lease import dealer_funded

    made = dealer_funded("L1", "D1", DAY, 6_850_50, reference="BANK-0042")
    assert made is not None and made.key == "dealer_funding:L1" and made.kind == "dealer_funded"
    assert made.value_date == DAY and made.lease_id == "L1" and "BANK-0042" in made.memo
    assert lines(made) == {(DEALERS, 6_850_50, 0, "L1", "D1"), (DISBURSEMENTS, 0, 6_850_50, "L1", "D1")}
    assert dealer_funded("L1", "D1", DAY, 0) is None  # nothing owed for the car: nothing paid
    with pytest.raises(UnpostableEntry, match="negative"):
        dealer_funded("L1", "D1", DAY, -1)


def test_a_rent_collected_outside_may_be_dated_the_day_it_was_paid() -> None:
    made = collected_outside("L1", "D1", 3, DAY, 900, 100, paid_on=date(2026, 3, 13))
    assert made is not None and made.key == "collected_outside:L1:3" and made.value_date == date(2026, 3, 13)
    assert lines(made) == {(BANK, 1_000, 0, "L1", "D1"), (RECEIVABLE, 0, 1_000, "L1", "D1")}
