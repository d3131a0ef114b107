"""The books' reports (issue 19 §4), pure: the trial balance at a date, the income statement by month, the portfolio
receivable's ageing, the VAT summary for the monthly return and the dealer's statement (分账对账单), from figures the
ledger and the lease sub-ledger give (infra/books_reports.py reads them), every amount integer fen, shown as yuan with
two decimals (:func:`yuan`, exact: no float anywhere).

Each report says how it ties to the trial balance at its date, so a reader can check it there:

- the income statement's months, from the first booked, add up to the income and expense accounts' balances;
- the ageing's total is the lease payments receivable (Assets:LeaseReceivable:Payments) of the instalments, beside
  the ledger's balance of it and their difference (nil when the lease sub-ledger reconciles);
- the VAT summary's months add up to the balance of Liabilities:Tax:VAT:Output (output VAT), and of the input VAT;
- a dealer's statement runs from its opening to its closing balance of Liabilities:Payable:Dealers for that dealer, and
  the dealers' closing balances add up to the account's balance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal

from books.accounts import DEALERS
from books.accounts import FEES
from books.accounts import RECEIVABLE
from books.accounts import VAT_INPUT  # 应交税费—应交增值税（进项税额）
from books.accounts import VAT_OUTPUT  # 应交税费—应交增值税（销项税额）
from books.beancount import amount as yuan
from books.chart import Chart

__all__ = ["VAT_INPUT", "VAT_OUTPUT", "yuan"]

INCOME, EXPENSES = "Income:", "Expenses:"


# -- months -----------------------------------------------------------------------------------------------------------
#: the years the books' dates are taken from (a report's day, a month to close): far beyond any lease, and within them
#: a month's next month and last day can always be computed (9999-12's next would be year 10000: no ``date``)
FIRST_YEAR, LAST_YEAR = 2000, 2999


def in_books_years(day: date) -> bool:
    """Whether ``day`` falls in :data:`FIRST_YEAR` to :data:`LAST_YEAR`."""
    return FIRST_YEAR <= day.year <= LAST_YEAR


def month_of(day: date) -> str:
    """``day``'s month as ``YYYY-MM``."""
    return f"{day.year:04d}-{day.month:02d}"


def first_day(month: str) -> date:
    """The first day of ``YYYY-MM`` (ValueError when it is not a month, ASCII digits, of :data:`FIRST_YEAR` to
    :data:`LAST_YEAR`)."""
    year, _, number = month.partition("-")
    if len(year) != 4 or len(number) != 2 or not (year + number).isascii() or not (year + number).isdigit():
        raise ValueError(f"{month!r} is not a month (YYYY-MM)")
    first = date(int(year), int(number), 1)
    if not in_books_years(first):
        raise ValueError(f"{month!r} is not a month of {FIRST_YEAR} to {LAST_YEAR}")
    return first


def next_month(first: date) -> date:
    """The first day of the month after ``first``'s."""
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def last_day(first: date) -> date:
    """The last day of ``first``'s month."""
    return next_month(first.replace(day=1)) - timedelta(days=1)


def months_between(start: str, end: str) -> tuple[str, ...]:
    """``start`` to ``end`` (``YYYY-MM``, both included; empty when ``end`` is before ``start``)."""
    out, day, stop = [], first_day(start), first_day(end)
    while day <= stop:
        out.append(month_of(day))
        day = next_month(day)
    return tuple(out)


# -- trial balance ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountLine:
    """An account's closing balance: in its debit or credit column, and signed debit-positive (fen)."""

    account: str
    code: str
    zh: str
    en: str
    debit: int
    credit: int

    @property
    def balance(self) -> int:
        return self.debit - self.credit


@dataclass(frozen=True)
class TrialBalance:
    on: date
    lines: tuple[AccountLine, ...]

    @property
    def total_debit(self) -> int:
        return sum(line.debit for line in self.lines)

    @property
    def total_credit(self) -> int:
        return sum(line.credit for line in self.lines)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit

    def balance(self, account: str) -> int:
        """``account``'s balance, debit-positive (0 when it has no line)."""
        return sum(line.balance for line in self.lines if line.account == account)


def _names(chart: Chart, account: str) -> tuple[str, str, str]:
    found = chart.accounts.get(account)
    return (found.code, found.zh, found.en) if found is not None else ("", account, account)


def trial_balance(chart: Chart, balances: Mapping[str, int], on: date) -> TrialBalance:
    """Each account of ``balances`` (account → closing balance at the end of ``on``, fen, debit-positive) in the chart's
    order, its balance in the debit column or the credit column."""
    order = {name: i for i, name in enumerate(chart.accounts)}
    lines = []
    for account in sorted(balances, key=lambda name: (order.get(name, len(order)), name)):
        fen = balances[account]
        lines.append(AccountLine(account, *_names(chart, account), max(fen, 0), max(-fen, 0)))
    return TrialBalance(on, tuple(lines))


# -- income statement -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncomeLine:
    """An income or expense account's figure each month (fen: income credit-positive, an expense debit-positive)."""

    account: str
    code: str
    zh: str
    en: str
    months: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.months)


@dataclass(frozen=True)
class IncomeStatement:
    months: tuple[str, ...]
    income: tuple[IncomeLine, ...]
    expenses: tuple[IncomeLine, ...]

    @property
    def total_income(self) -> tuple[int, ...]:
        return tuple(sum(line.months[i] for line in self.income) for i in range(len(self.months)))

    @property
    def total_expenses(self) -> tuple[int, ...]:
        return tuple(sum(line.months[i] for line in self.expenses) for i in range(len(self.months)))

    @property
    def net(self) -> tuple[int, ...]:
        return tuple(i - e for i, e in zip(self.total_income, self.total_expenses, strict=True))

    @property
    def net_total(self) -> int:
        return sum(self.net)


def income_statement(chart: Chart, movements: Mapping[tuple[str, str], int], months: Sequence[str]) -> IncomeStatement:
    """The income statement of ``months`` from ``movements`` ((``YYYY-MM``, account) → the month's net movement,
    fen, debit-positive, by the month the entries are booked in): every Income and Expenses account of the chart, and
    any other that moved."""
    order = {name: i for i, name in enumerate(chart.accounts)}
    accounts = {a for a in chart.accounts if a.startswith((INCOME, EXPENSES))}
    accounts |= {a for (_m, a) in movements if a.startswith((INCOME, EXPENSES))}
    income: list[IncomeLine] = []
    expenses: list[IncomeLine] = []
    for account in sorted(accounts, key=lambda name: (order.get(name, len(order)), name)):
        sign = -1 if account.startswith(INCOME) else 1
        line = IncomeLine(account, *_names(chart, account),
                          tuple(sign * movements.get((m, account), 0) for m in months))
        (income if sign < 0 else expenses).append(line)
    return IncomeStatement(tuple(months), tuple(income), tuple(expenses))


# -- ageing -----------------------------------------------------------------------------------------------------------
#: the ageing's buckets: not past due, then days past due 1–30, 31–60, 61–90, over 90
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
_BUCKET_ENDS = ((0, "current"), (30, "1-30"), (60, "31-60"), (90, "61-90"))


def bucket_of(days_past_due: int) -> str:
    """The ageing bucket of an amount ``days_past_due`` days past due (0 or less: current)."""
    for end, name in _BUCKET_ENDS:
        if days_past_due <= end:
            return name
    return "90+"


@dataclass(frozen=True)
class Outstanding:
    """What an instalment still owed of the lease payments at the report's date (fen), its days past due then, and
    whose it is (lease, dealer)."""

    lease_id: str
    dealer_id: str
    days_past_due: int
    amount: int


@dataclass(frozen=True)
class AgeingRow:
    """One row of the ageing (the portfolio, or a dealer's leases): fen by bucket, in :data:`BUCKETS`' order."""

    key: str
    buckets: tuple[int, ...]
    leases: int

    @property
    def total(self) -> int:
        return sum(self.buckets)


@dataclass(frozen=True)
class Ageing:
    on: date
    total: AgeingRow
    dealers: tuple[AgeingRow, ...]
    #: the ledger's Assets:LeaseReceivable:Payments at the end of ``on`` (fen, debit-positive)
    ledger: int

    @property
    def difference(self) -> int:
        """The instalments' total less the ledger's: nil when the lease sub-ledger reconciles."""
        return self.total.total - self.ledger


def ageing(items: Iterable[Outstanding], on: date, ledger: int) -> Ageing:
    """The receivable by bucket at ``on``, for the portfolio and for each dealer (by dealer id), with the ledger's
    receivable beside it. A lease counts in a bucket's lease count once, in its worst bucket."""
    by_dealer: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
    worst: dict[tuple[str, str], int] = {}
    for item in items:
        if item.amount == 0:
            continue
        index = BUCKETS.index(bucket_of(item.days_past_due))
        by_dealer[item.dealer_id][index] += item.amount
        key = (item.dealer_id, item.lease_id)
        worst[key] = max(worst.get(key, 0), index)
    leases: dict[str, int] = defaultdict(int)
    for dealer_id, _lease in worst:
        leases[dealer_id] += 1
    dealers = tuple(AgeingRow(d, tuple(by_dealer[d]), leases[d]) for d in sorted(by_dealer))
    total = AgeingRow("total", tuple(sum(row.buckets[i] for row in dealers) for i in range(len(BUCKETS))),
                      sum(leases.values()))
    return Ageing(on, total, dealers, ledger)


def receivable_of(balances: Mapping[str, int]) -> int:
    """The lease payments receivable in a trial balance's ``balances`` (debit-positive)."""
    return balances.get(RECEIVABLE, 0)


# -- VAT --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VatMovement:
    """A VAT line's net movement (fen): output VAT credit-positive, input VAT debit-positive, with the rate of the tax
    where the entry tells it (None: not told), the month the entry is booked in, and the taxable amount (销售额, fen,
    signed as the tax) where the entry tells what the tax was charged on (None: not told)."""

    month: str
    account: str
    rate: Decimal | None
    amount: int
    base: int | None = None


#: the VAT rates a line's rate is identified among, tried in this order: today's 13%, 9% and 6%, the 5% and 3% of the
#: simplified method, then the rates before April 2019 (17% → 16% from May 2018; 11% → 10%)
VAT_RATES = tuple(Decimal(r) for r in ("0.13", "0.09", "0.06", "0.05", "0.03", "0.16", "0.17", "0.10", "0.11"))


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def identify(tax: int, *, gross: Iterable[int] = (), net: Iterable[int] = ()) -> tuple[Decimal, int] | None:
    """The rate of :data:`VAT_RATES` that gives exactly ``tax`` fen on one of the bases its entry tells — an amount
    with the tax in it (``gross``: tax = gross × r / (1 + r), rounded half up once, as books/vat.py taxes a rent or a
    lump sum) or without (``net``: tax = net × r) — and that base without its tax (the taxable amount: gross − tax, or
    net); None when none does (the summary lists it as not identified, never guessed)."""
    if tax <= 0:
        return None
    grosses, nets = [g for g in gross if g > 0], [n for n in net if n > 0]
    for rate in VAT_RATES:
        for g in grosses:
            if _half_up(Decimal(g) * rate / (1 + rate)) == tax:
                return rate, g - tax
        for n in nets:
            if _half_up(Decimal(n) * rate) == tax:
                return rate, n
    return None


def identify_rate(tax: int, *, gross: Iterable[int] = (), net: Iterable[int] = ()) -> Decimal | None:
    """The rate :func:`identify` finds (None: none)."""
    found = identify(tax, gross=gross, net=net)
    return found[0] if found is not None else None


@dataclass(frozen=True)
class VatRow:
    """A month's output VAT at a rate (fen), the taxable amount its lines' entries tell (销售额), and the VAT of its
    lines whose entries tell no taxable amount (a settlement moving the replaced rents' pending VAT, a sum of taxes
    each rounded): their amount is not made up from the tax."""

    month: str
    rate: Decimal | None
    output: int
    base: int = 0
    untold: int = 0


@dataclass(frozen=True)
class VatMonth:
    month: str
    output: int
    input: int

    @property
    def payable(self) -> int:
        """Output less input VAT: what the month's return declares before any carried-forward credit."""
        return self.output - self.input


@dataclass(frozen=True)
class VatSummary:
    months: tuple[VatMonth, ...]
    by_rate: tuple[VatRow, ...]

    @property
    def output(self) -> int:
        return sum(m.output for m in self.months)

    @property
    def input(self) -> int:
        return sum(m.input for m in self.months)


def vat_summary(movements: Iterable[VatMovement], months: Sequence[str]) -> VatSummary:
    """Output VAT by month and by rate (with the taxable amount told, and the VAT of the lines telling none), input VAT
    by month, for ``months`` (each listed, nil or not)."""
    output: dict[str, int] = defaultdict(int)
    inputs: dict[str, int] = defaultdict(int)
    rates: dict[tuple[str, Decimal | None], list[int]] = defaultdict(lambda: [0, 0, 0])  # output, base, untold
    for m in movements:
        if m.account == VAT_OUTPUT:
            output[m.month] += m.amount
            row = rates[(m.month, m.rate)]
            row[0] += m.amount
            if m.base is None:
                row[2] += m.amount
            else:
                row[1] += m.base
        elif m.account == VAT_INPUT:
            inputs[m.month] += m.amount
    rows = tuple(VatRow(month, rate, fen, base, untold) for (month, rate), (fen, base, untold) in
                 sorted(rates.items(), key=lambda item: (item[0][0], item[0][1] is None, item[0][1] or 0)))
    return VatSummary(tuple(VatMonth(m, output[m], inputs[m]) for m in months),
                      tuple(row for row in rows if row.month in months))


# -- the dealer's statement -------------------------------------------------------------------------------------------
#: what a movement of the dealers payable is, by the entry's kind (books/lease.py, books/origination.py); anything else
#: is ``other``
DEALER_MOVES = {
    "lease_commenced": "car_financed",  # the lessor owes the dealer the car's price (the financed amount)
    "dealer_funded": "car_paid",  # the bank paid it (放款)
    "upfront_captured": "down_payment",  # the customer's down payment, collected for the dealer
    "dealer_share_paid": "share_transferred",  # the down payment's share sent to the dealer (分账, Stripe Connect)
    "payment_refunded": "refunded",  # a down payment given back to the customer
    "refinanced": "refinanced",
}
MOVE_KINDS = ("car_financed", "car_paid", "down_payment", "share_transferred", "refunded", "refinanced", "other")


@dataclass(frozen=True)
class DealerLine:
    """A journal line of the dealer's: its entry's booked day and own date, its key and kind, the lease's contract
    number (or the application's, before the lease), the account and its amounts (fen)."""

    booked_on: date
    value_date: date
    key: str
    kind: str
    reference: str
    account: str
    debit: int
    credit: int


@dataclass(frozen=True)
class StatementMove:
    """A movement of what the lessor owes the dealer (fen, + owed more, − paid or taken back) and the balance after."""

    booked_on: date
    value_date: date
    reference: str
    move: str
    amount: int
    balance: int
    key: str


@dataclass(frozen=True)
class StatementLease:
    """One lease's (or application's) figures in the period (fen); ``balance``: what the lessor owes the dealer for it
    at the statement's end, all periods."""

    reference: str
    moves: Mapping[str, int]
    fees: int
    balance: int


@dataclass(frozen=True)
class DealerStatement:
    dealer_id: str
    start: date
    end: date
    opening: int
    moves: tuple[StatementMove, ...]
    leases: tuple[StatementLease, ...]
    #: the fees the lessor collected on the dealer's leases in the period (Income:Other:Fees: the lessor's own)
    fees: int

    @property
    def closing(self) -> int:
        return self.opening + sum(m.amount for m in self.moves)

    def total(self, move: str) -> int:
        return sum(m.amount for m in self.moves if m.move == move)


def dealer_statement(dealer_id: str, lines: Iterable[DealerLine], start: date, end: date) -> DealerStatement:
    """The statement of ``dealer_id`` from ``start`` to ``end`` (booked days, both included) from every line of the
    dealer's booked through ``end`` (earlier ones make the opening balance): Liabilities:Payable:Dealers,
    credit-positive (what the lessor owes the dealer), and the fees on the dealer's leases."""
    ordered = sorted(lines, key=lambda li: (li.booked_on, li.key, li.account))
    opening = 0
    balance_by_ref: dict[str, int] = defaultdict(int)
    moves_by_ref: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    fees_by_ref: dict[str, int] = defaultdict(int)
    moves: list[StatementMove] = []
    fees = running = 0
    for li in ordered:
        if li.booked_on > end:
            continue
        net = li.credit - li.debit
        if li.account == DEALERS:
            balance_by_ref[li.reference] += net
            running += net
            if li.booked_on < start:
                opening += net
                continue
            move = DEALER_MOVES.get(li.kind, "other")
            moves_by_ref[li.reference][move] += net
            moves.append(StatementMove(li.booked_on, li.value_date, li.reference, move, net, running, li.key))
        elif li.account == FEES and li.booked_on >= start:
            fees += net
            fees_by_ref[li.reference] += net
    refs = sorted(set(moves_by_ref) | set(fees_by_ref))
    leases = tuple(StatementLease(ref, dict(moves_by_ref.get(ref, {})), fees_by_ref.get(ref, 0), balance_by_ref[ref])
                   for ref in refs)
    return DealerStatement(dealer_id, start, end, opening, tuple(moves), leases, fees)
