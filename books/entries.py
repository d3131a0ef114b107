"""Journal entries, pure: lines of integer fen, each on one side, checked against the chart before anything is
posted. An entry is keyed by the event that causes it (``key``): the database posts a key once, so a replayed webhook
or job posts nothing twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import date

from books.chart import Chart
from books.chart import ChartError

#: the longest key the journal stores (migration 0029)
KEY_LENGTH = 160


class UnpostableEntry(ValueError):
    """An entry that must not be posted: unbalanced, an unknown account, a negative or fractional amount, no lines.
    Its whole transaction fails with it (never a half-booked event); the message says what is wrong."""


@dataclass(frozen=True)
class Line:
    account: str
    debit: int = 0  # fen
    credit: int = 0  # fen
    lease_id: str | None = None
    dealer_id: str | None = None


@dataclass(frozen=True)
class Entry:
    key: str
    kind: str  # the money event: lease_commenced, rent_collected, finance_income, …
    value_date: date  # the event's business date (Asia/Shanghai)
    lines: tuple[Line, ...]
    memo: str = ""
    lease_id: str | None = None
    dealer_id: str | None = None
    reverses_key: str | None = field(default=None)

    @property
    def total(self) -> int:
        return sum(line.debit for line in self.lines)


def debit(account: str, fen: int, *, lease_id: str | None = None, dealer_id: str | None = None) -> Line:
    return Line(account, debit=fen, lease_id=lease_id, dealer_id=dealer_id)


def credit(account: str, fen: int, *, lease_id: str | None = None, dealer_id: str | None = None) -> Line:
    return Line(account, credit=fen, lease_id=lease_id, dealer_id=dealer_id)


def entry(key: str, kind: str, value_date: date, lines: Iterable[Line], memo: str = "", *,
          lease_id: str | None = None, dealer_id: str | None = None) -> Entry | None:
    """An entry of ``lines`` without their zero amounts, a negative amount moved to the other side; None when nothing
    is left (an event that moved no money posts nothing). Each line takes the entry's lease and dealer unless it names
    its own."""
    kept: list[Line] = []
    for line in lines:
        if isinstance(line.debit, bool) or isinstance(line.credit, bool) or not isinstance(line.debit, int) \
                or not isinstance(line.credit, int):
            raise UnpostableEntry(f"{key}: {line.account} amounts must be whole fen")
        net = line.debit - line.credit
        if net == 0:
            continue
        kept.append(Line(line.account, max(net, 0), max(-net, 0), line.lease_id or lease_id,
                         line.dealer_id or dealer_id))
    if not kept:
        return None
    return Entry(key, kind, value_date, tuple(kept), memo, lease_id, dealer_id)


def check(chart: Chart, item: Entry) -> None:
    """Raise :class:`UnpostableEntry` unless ``item`` can be posted under ``chart``: a key, at least two lines, each on
    one side with a positive whole-fen amount in an account of the chart, debits equal to credits."""
    if not item.key or len(item.key) > KEY_LENGTH:
        raise UnpostableEntry(f"an entry needs a key of 1–{KEY_LENGTH} characters: {item.key!r}")
    if len(item.lines) < 2:
        raise UnpostableEntry(f"{item.key}: an entry needs at least two lines")
    for line in item.lines:
        try:
            chart.account(line.account)
        except ChartError as error:
            raise UnpostableEntry(f"{item.key}: {error}") from None
        amounts = (line.debit, line.credit)
        if any(isinstance(a, bool) or not isinstance(a, int) or a < 0 for a in amounts) or (line.debit > 0) == (
                line.credit > 0):
            raise UnpostableEntry(f"{item.key}: {line.account} needs one positive amount in fen, on one side")
    debits, credits = sum(line.debit for line in item.lines), sum(line.credit for line in item.lines)
    if debits != credits:
        raise UnpostableEntry(f"{item.key}: debits {debits} fen ≠ credits {credits} fen")


def reversal(original: Entry, key: str, value_date: date, memo: str) -> Entry:
    """The entry that undoes ``original`` (a correction is a reversal, never an edit): every line on the other
    side."""
    return Entry(key, original.kind, value_date,
                 tuple(Line(line.account, line.credit, line.debit, line.lease_id, line.dealer_id)
                       for line in original.lines), memo, original.lease_id, original.dealer_id, original.key)
