"""A stored settlement quote's validity and refund (infra/settlements.py ``Quote``): payable on its business dates up
to the end of its settlement day, only while on offer; a negative amount due is a refund of its opposite."""

from __future__ import annotations

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
