"""A stored settlement quote's validity and refund (infra/settlements.py ``Quote``): payable on its business dates up
to the end of its settlement day, only while on offer; a negative amount due is a refund of its opposite."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from infra.settlements import Quote


def _quote(amount_due: int, status: str = "offered") -> Quote:
    return Quote("q", "l", date(2027, 2, 26), date(2027, 3, 5), date(2027, 3, 5), amount_due, 1_000_000, status,
                 "customer", None, None, {"lines": []})


def test_a_quote_is_payable_to_the_end_of_its_day_while_on_offer() -> None:
    q = _quote(15_000_000)
    assert q.valid_on(date(2027, 2, 26)) and q.valid_on(date(2027, 3, 5)) and not q.valid_on(date(2027, 3, 6))
    assert not _quote(15_000_000, "expired").valid_on(date(2027, 3, 1))
    assert not _quote(15_000_000, "superseded").valid_on(date(2027, 3, 1))


def test_a_negative_amount_due_is_the_refund() -> None:
    assert _quote(-12_345).refund == 12_345 and _quote(0).refund == 0 and _quote(1).refund == 0


def test_a_paid_quote_refunds_the_late_charges_it_did_not_book() -> None:
    """Paid ¥1,000.00 for a quote whose late charges were ¥30.00; only ¥12.00 were owed when it was paid: it settled
    ¥982.00, ¥18.00 of the payment is given back, the deposit is kept whole. A quote the deposit covered: its refund
    grows by the charges not owed."""
    paid = replace(_quote(100_000, "paid"), penalties=3_000, penalties_booked=1_200)
    assert (paid.charges, paid.amount_settled, paid.payment_refund, paid.refund) == (1_200, 98_200, 1_800, 0)
    covered = replace(_quote(-500, "paid"), penalties=3_000, penalties_booked=0)
    assert (covered.charges, covered.amount_settled, covered.payment_refund, covered.refund) == (0, -3_500, 0, 3_500)
    # charges not owed beyond what was paid: all of the payment back, and the deposit's surplus
    over = replace(_quote(1_000, "paid"), penalties=3_000, penalties_booked=0)
    assert (over.payment_refund, over.refund) == (1_000, 2_000)
    # not paid yet (or paid before the charges booked were kept): the quote's own figures
    offered = replace(_quote(100_000), penalties=3_000)
    assert (offered.charges, offered.amount_settled, offered.payment_refund) == (3_000, 100_000, 0)
