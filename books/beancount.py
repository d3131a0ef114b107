"""The ledger as a Beancount file (issue 19 §5), pure: ``bean-check`` (the ``beancount`` package, v3) reads it and
checks it independently of our code — every transaction balances, every account is opened before it is used, and
each month's ``balance`` assertions hold.

What the file holds:
- ``option "operating_currency" "CNY"``; an ``open`` for each account of the chart, dated the first day anything was
  booked (or earlier), with its names as metadata (``zh``, ``en``) and the lessor's account code;
- every journal entry as a transaction dated the day it counts in the books (``booked_on``), its narration the kind of
  event and the memo, its key, value date, lease, dealer and (a reversal) the key it reverses as metadata, amounts
  in CNY with two decimals from integer fen (exact: no float anywhere) — a debit positive, a credit negative, as
  Beancount signs postings;
- ``balance`` assertions for each account at each month end, dated the first day after it (Beancount checks a
  balance at the start of its day), with the amounts the caller took from the sub-ledgers (each lease's schedule,
  Stripe's balance, each dealer's transfers), not from the journal: that is what makes ``bean-check`` a test of the
  general ledger. Each is exact to the fen (``~ 0.00``: Beancount would otherwise let a balance of two decimals be
  0.01 off). An account with no independent sub-ledger yet is asserted at the journal's own balance, and the
  file says so in a comment above it. Beancount's sign convention holds throughout: a balance is debit-positive, so a
  liability's or an income's credit balance is negative.

The summary mode (:func:`summary_entry`) writes one transaction per day and kind of event, one posting per account
(each day's entries of a kind netted by account: they balance together since each balances alone), for portfolios
whose full journal is too long to read through by eye or by ``bean-check`` in the machine's memory.

Everything is yielded line by line (:func:`render`): the caller streams the journal in and the file out."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR
from datetime import date
from datetime import timedelta

from books.chart import Chart
from books.entries import Entry
from books.entries import Line
from books.entries import entry

CURRENCY = "CNY"
#: the source of an assertion taken from the journal itself (no independent sub-ledger for that account yet)
JOURNAL = "journal"


@dataclass(frozen=True)
class Booked:
    """A journal entry and the day it counts in the books (the value date, or the first open day after a closed
    month: infra/books.py ``booked_on``)."""

    booked_on: date
    entry: Entry


@dataclass(frozen=True)
class Assertion:
    """An account's balance at the start of ``on`` (the first day after a month end), in fen, signed debit-positive
    as Beancount signs it (a liability's or an income's credit balance is negative); ``source`` names the sub-ledger
    it was taken from (:data:`JOURNAL`: the journal itself, said in a comment)."""

    on: date
    account: str
    fen: int
    source: str


def amount(fen: int) -> str:
    """``fen`` as yuan with two decimals, exactly: 123456 → ``1234.56``, -5 → ``-0.05``."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"


def quoted(text: str) -> str:
    """A Beancount string: backslashes and double quotes escaped, line breaks as spaces."""
    flat = " ".join(text.splitlines())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def assertion_days(first: date, through: date) -> list[date]:
    """The first day after each month end from ``first``'s month through ``through`` (a month whose last day is after
    ``through`` has not ended: no assertion for it)."""
    days: list[date] = []
    day = _next_month(first.replace(day=1))
    while day is not None and day - timedelta(days=1) <= through:
        days.append(day)
        day = _next_month(day)
    return days


def header(chart: Chart, opened_on: date, title: str = "Leaseline — the general ledger") -> Iterator[str]:
    """The options and an ``open`` for each account of ``chart`` on ``opened_on`` (the first booked day or earlier),
    its names and code as metadata."""
    yield f"; {title}: exported from the journal (chart of accounts {chart.version}, effective {chart.effective})."
    yield "; Check it with bean-check (pip install beancount); Fava opens it for a browser (pip install fava)."
    yield f"option \"title\" {quoted(title)}"
    yield f'option "operating_currency" "{CURRENCY}"'
    yield ""
    for account in chart.accounts.values():
        yield f"{opened_on.isoformat()} open {account.name} {CURRENCY}"
        yield f"  zh: {quoted(account.zh)}"
        yield f"  en: {quoted(account.en)}"
        yield f"  code: {quoted(account.code)}"
    yield ""


def transaction(booked: Booked) -> str:
    """The entry as a Beancount transaction (several lines, ending with a blank one)."""
    item = booked.entry
    narration = f"{item.kind}: {item.memo}" if item.memo else item.kind
    lines = [f"{booked.booked_on.isoformat()} * {quoted(narration)}",
             f"  key: {quoted(item.key)}",
             f"  value_date: {item.value_date.isoformat()}"]
    if item.lease_id:
        lines.append(f"  lease: {quoted(item.lease_id)}")
    if item.dealer_id:
        lines.append(f"  dealer: {quoted(item.dealer_id)}")
    if item.reverses_key:
        lines.append(f"  reverses: {quoted(item.reverses_key)}")
    lines.extend(f"  {line.account}  {amount(line.debit - line.credit)} {CURRENCY}" for line in item.lines)
    lines.append("")
    return "\n".join(lines)


def balance(assertion: Assertion) -> str:
    """A ``balance`` directive, exact to the fen (tolerance 0: Beancount's default for two decimals is ±0.01); one
    taken from the journal itself is preceded by a comment saying so."""
    directive = (f"{assertion.on.isoformat()} balance {assertion.account}  {amount(assertion.fen)} ~ 0.00 "
                 f"{CURRENCY}")
    if assertion.source == JOURNAL:
        return f"; {assertion.account}: the journal's own balance (no independent sub-ledger for it yet)\n{directive}"
    return f"{directive}\n  source: {quoted(assertion.source)}"


def summary_entry(on: date, kind: str, count: int, totals: Iterable[tuple[str, int, int]]) -> Booked | None:
    """The day's entries of one ``kind`` as one transaction: ``totals`` are (account, debits, credits) in fen, netted
    by account; None when they net to nothing."""
    made = entry(f"summary:{on.isoformat()}:{kind}", kind, on,
                 [Line(account, debits, credits) for account, debits, credits in totals],
                 f"{count} {'entry' if count == 1 else 'entries'} of the day")
    return Booked(on, made) if made is not None else None


def render(chart: Chart, opened_on: date, entries: Iterable[Booked], assertions: Iterable[Assertion],
           title: str = "Leaseline — the general ledger") -> Iterator[str]:
    """The whole file, line by line (each item one or more lines, without the final line break): the header, every
    transaction (full, or summaries from :func:`summary_entry`), then the balance assertions. Beancount orders
    directives by date itself."""
    yield from header(chart, opened_on, title)
    for booked in entries:
        yield transaction(booked)
    yield "; balances at each month end, checked at the start of the next day"
    for assertion in assertions:
        yield balance(assertion)


def _next_month(first: date) -> date | None:
    """The first day of the month after ``first``'s; None after December 9999 (no day left to date it)."""
    if (first.year, first.month) == (MAXYEAR, 12):
        return None
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)
