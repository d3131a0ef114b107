"""Finance income of a lease, month by month (issue 19 §1), pure: what the monthly recognition posts
(``income:<lease>:<YYYY-MM>``, infra/finance_income.py: Dr Assets:LeaseReceivable:Unearned / Cr Income:Lease:Interest).

**The figure posted: the schedule's interest, spread by day.** Each rent's interest (the schedule's interest column,
in fen) is earned evenly over the days of the period it is charged for:

- in arrears, from the previous rent's due date (the term's start for rent 1) to the rent's own due date: the rent pays
  the interest of the month behind it;
- in advance, from the rent's due date to the next rent's (the term's end for the last): plans/quote.py
  ``build_schedule`` charges rent k the interest of the month ahead, on the balance after rent k (rent 1, paid at
  signing, carries the first month's interest). BOOKS_DESIGN.md's single rule ("previous due date to its due date")
  holds in arrears only: taken in advance it would earn each rent's interest a month before the balance bears it,
  and rent 1's over no days at all.

A period's days are ``[from, to)``: the first day bears interest, the last does not (a rent in arrears is fully earned
by the end of the day before it falls due). The cumulative interest through the end of a month end D is the exact sum
(fractions.Fraction, never a float) of each period's interest × its days up to D ÷ its days, **rounded half-up once**;
a month's income is that rounded cumulative figure less what was recognised before (``recognised``), so the months
add up exactly to Σ interest, to the fen, whatever the periods' lengths.

**Net of VAT** (issue 19 §3). Rents are VAT-inclusive: what the lessor earns of a rent's interest I is I less the
VAT it carries (books/vat.py ``rent_tax``: tax_on_interest, the interest's share of the rent's tax, under the rule in
force on its due date). The spread earns each rent's **net interest** (:attr:`Rent.net_interest`), and the unearned
income holds exactly that (the commencement's VAT entry debits Unearned with Σ tax_on_interest: books/lease.py); a
rent given without its tax (``tax_on_interest`` 0) is spread gross, as before VAT.

**The schedule as it is now.** A partial prepayment rewrites the rents after it in place (new interest) and cancels a
shorter term's rents (amounts zeroed): the spread is always of the current schedule. A month never takes back what was
recognised before (never negative; a prepayment's own posting reverses income its re-amortisation no longer holds:
books/prepayment.py) and never recognises more than the schedule holds (Σ interest). A settled lease's replaced
rents are passed with no interest (the interest waived or given back is never recognised: the settlement recognises
what is left of the rents it keeps, on its day).

**The effective-interest figure, shown beside it.** CAS 21 recognises finance income by the effective-interest method
at the rate implicit in the lease: the monthly IRR of −(net investment) at the start and the rents (and any other
receipt, e.g. a prepaid principal) on their dates (plans/apr.py ``irr``), the balance carried from flow to flow at
that rate, each stretch's interest spread over its days as above and rounded once per month end. **Net of VAT**, as
the spread: each rent's flow is its amount less its tax (:attr:`Rent.net_amount`) and the net investment the rents'
principal less its tax (the car's price without the input VAT the lessor recovers), so the method spreads the same
Σ net interest. For a direct lease every flow is the gross one scaled by 1/(1+τ) (but for each rent's rounding), so
the implicit rate stays the contract's; a sale-and-leaseback (tax on the interest only) would show a lower one. With
no fees and no initial direct costs the net investment is the financed amount (net of its VAT) and the two figures
differ only by the schedule's own rounding to the fen (and the VAT's, one fen a rent at most). Where they differ the
difference is reported with each month (:class:`MonthIncome` ``difference``), never hidden; the schedule's figure is
what is posted (it is what the receivable's unearned income holds, to the fen).

Penalty interest (罚息) is not finance income here: it is recognised when collected (the receipt's posting), never
accrued by the close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from fractions import Fraction

from books.accounts import INTEREST
from books.accounts import UNEARNED
from books.entries import Entry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from plans.apr import NoSolution
from plans.apr import irr
from plans.timeline import add_months
from plans.timeline import months_between

ONE_DAY = timedelta(days=1)
ARREARS, ADVANCE = "arrears", "advance"
#: the kind of every entry that moves schedule interest between Unearned and Income: what a lease recognised is read
#: by it (infra/finance_income.py ``recognised``)
FINANCE_INCOME = "finance_income"


def income_entry(key: str, day: date, amount: int, memo: str, *, lease_id: str, dealer_id: str) -> Entry | None:
    """Finance income recognised (``amount`` > 0: Dr Unearned / Cr Interest) or taken back (< 0: the other way round)
    on ``day``; None when ``amount`` is 0."""
    return entry(key, FINANCE_INCOME, day, [debit(UNEARNED, amount), credit(INTEREST, amount)], memo,
                 lease_id=lease_id, dealer_id=dealer_id)


@dataclass(frozen=True)
class Rent:
    """One instalment of the current schedule: its due date, its amount and its interest, in fen (a cancelled or a
    settled rent: interest 0; the final rent, the purchase price: interest 0), with the VAT they carry (books/vat.py
    ``rent_tax``: ``tax`` of the amount, ``tax_on_interest`` of the interest; 0 where none is given)."""

    due_on: date
    interest: int
    amount: int = 0
    tax: int = 0
    tax_on_interest: int = 0

    @property
    def net_interest(self) -> int:
        """The interest without its VAT: the lessor's finance income (what the spread earns)."""
        return self.interest - self.tax_on_interest

    @property
    def net_amount(self) -> int:
        """The rent without its VAT: the lessor's own receipt (the effective-interest method's flow)."""
        return self.amount - self.tax


@dataclass(frozen=True)
class LeaseSchedule:
    """What the spread needs of a lease: its term (``starts_on`` to ``ends_on``), its timing and its rents."""

    starts_on: date
    ends_on: date
    timing: str
    rents: tuple[Rent, ...]

    @property
    def interest(self) -> int:
        """Σ interest the schedule holds, net of its VAT (fen): all the income the spread ever recognises."""
        return sum(r.net_interest for r in self.rents)


@dataclass(frozen=True)
class Period:
    """A stretch of days ``[starts_on, ends_on)`` and the interest earned evenly over it (exact: a fraction of fen for
    the effective figure)."""

    starts_on: date
    ends_on: date
    interest: Fraction | int


@dataclass(frozen=True)
class MonthIncome:
    """A month's finance income (fen): the schedule's spread (``amount``, what is posted), the effective-interest
    figure and their ``difference`` (effective − schedule), each cumulative rounded once at the month end."""

    month: str  # YYYY-MM
    amount: int
    effective: int
    difference: int


def month_end(month: str) -> date:
    """The last day of ``month`` (YYYY-MM); ValueError for anything else."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise ValueError(f"{month!r} is not a month (YYYY-MM)") from None
    if len(month) != 7:
        raise ValueError(f"{month!r} is not a month (YYYY-MM)")
    return add_months(first, 1) - ONE_DAY


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def periods(schedule: LeaseSchedule) -> list[Period]:
    """Each rent's interest with the days it is earned over (see the module's docstring), in date order."""
    dues = sorted(schedule.rents, key=lambda r: r.due_on)
    dates = sorted({r.due_on for r in dues})
    following = dict(zip(dates, dates[1:], strict=False))
    preceding = dict(zip(dates[1:], dates, strict=False))
    out: list[Period] = []
    for rent in dues:
        if not rent.net_interest:
            continue
        if schedule.timing == ADVANCE:
            start, end = rent.due_on, max(following.get(rent.due_on, schedule.ends_on), rent.due_on)
        else:
            start, end = min(preceding.get(rent.due_on, schedule.starts_on), rent.due_on), rent.due_on
        out.append(Period(start, end, rent.net_interest))
    return out


def accrued(spread: Sequence[Period], through: date) -> Fraction:
    """The exact interest earned by the end of the day ``through`` (a period of no days: all of it from its day). A
    period wholly before counts whole, one wholly after not at all: only a period the day falls in is divided."""
    whole: Fraction | int = 0
    part = Fraction(0)
    stop = through + ONE_DAY
    for p in spread:
        if p.ends_on <= stop if p.ends_on > p.starts_on else p.starts_on <= through:
            whole += p.interest
        elif p.starts_on < stop and p.ends_on > p.starts_on:
            part += Fraction(p.interest * (stop - p.starts_on).days) / (p.ends_on - p.starts_on).days
    return whole + part


def half_up(value: Fraction) -> int:
    """``value`` rounded half-up to a whole fen (half away from zero)."""
    if value < 0:
        return -half_up(-value)
    return int(value + Fraction(1, 2))


def recognised_through(schedule: LeaseSchedule, through: date) -> int:
    """The schedule's interest earned by the end of ``through``, rounded once (fen), never above Σ interest."""
    return min(half_up(accrued(periods(schedule), through)), schedule.interest)


def month_income(schedule: LeaseSchedule, month: str, recognised: int) -> int:
    """The finance income to post for ``month`` (fen): the interest earned through its last day, rounded once, less
    ``recognised`` (what earlier months and adjustments recognised, net) — never negative, never beyond what the
    schedule holds."""
    return max(0, recognised_through(schedule, month_end(month)) - recognised)


# -- the effective-interest figure ----------------------------------------------------------------------------------
def month_index(starts_on: date, day: date) -> float:
    """Months from ``starts_on`` to ``day``: whole months as plans.timeline counts them, and the days beyond as a
    fraction of the next month's days (a rent's due date is a whole number)."""
    guess = (day.year - starts_on.year) * 12 + day.month - starts_on.month
    if day.day == starts_on.day or add_months(starts_on, guess) == day:  # a rent's date: whole months
        return float(guess)
    whole = months_between(starts_on, day)
    at, after = add_months(starts_on, whole), add_months(starts_on, whole + 1)
    return whole + (day - at).days / (after - at).days


def implicit_rate(schedule: LeaseSchedule, net_investment: int,
                  others: Sequence[tuple[date, int]] = ()) -> float:
    """The monthly rate implicit in the lease: the IRR of −``net_investment`` at the start and each rent's amount (and
    ``others``: other receipts, e.g. a prepaid principal, fen) on its date. Raises plans.apr.NoSolution."""
    flows: dict[float, float] = {0.0: -float(net_investment)}
    for day, amount in [(r.due_on, r.net_amount) for r in schedule.rents if r.net_amount] + list(others):
        t = month_index(schedule.starts_on, day)
        flows[t] = flows.get(t, 0.0) + float(amount)
    if any(t != int(t) for t in flows):  # a flow between rent dates: solved on fractional months
        return _irr_uneven(flows)
    values: list[float] = [0.0] * (int(max(flows)) + 1)
    for t, flow in flows.items():
        values[int(t)] -= flow  # the lessee's side (credit received, rents paid): the sign plans.apr solves
    rate = irr(values, guess=0.005)
    if not -0.5 < rate < 1:
        rate = irr(values, floor=-0.5)
    return rate


def _irr_uneven(flows: dict[float, float]) -> float:
    def npv(rate: float) -> float:
        return float(sum(v / (1 + rate) ** t for t, v in flows.items()))

    low, high = -0.5, 1.0
    if npv(low) * npv(high) > 0:
        raise NoSolution("no implicit rate")
    for _ in range(200):
        mid = (low + high) / 2
        if (npv(mid) > 0) == (npv(low) > 0):
            low = mid
        else:
            high = mid
    return (low + high) / 2


def effective_periods(schedule: LeaseSchedule, net_investment: int, rate: float,
                      others: Sequence[tuple[date, int]] = ()) -> list[Period]:
    """The effective-interest method's stretches: the balance (the net investment, less each receipt) carried from
    one flow's date to the next at ``rate`` a month; each stretch's interest (to a millionth of a fen: a rate is
    solved in floating point, plans/apr.py) earned over its days."""
    moves: dict[date, int] = {}
    for day, amount in [(r.due_on, r.net_amount) for r in schedule.rents] + list(others):
        moves[day] = moves.get(day, 0) + amount
    balance = float(net_investment - moves.pop(schedule.starts_on, 0))
    out: list[Period] = []
    at, t_at = schedule.starts_on, 0.0
    for day in sorted(moves):
        t = month_index(schedule.starts_on, day)
        interest = balance * ((1 + rate) ** (t - t_at) - 1)
        out.append(Period(at, day, Fraction(round(interest * 1_000_000), 1_000_000)))
        balance += interest - moves[day]
        at, t_at = day, t
    return out


def _effective_spread(schedule: LeaseSchedule, net_investment: int | None,
                      others: Sequence[tuple[date, int]]) -> list[Period] | None:
    """The effective-interest method's stretches (``net_investment`` None: Σ net amount − Σ net interest of the rents,
    the schedule's own principal net of its VAT); None when the rents have no amounts or the flows no implicit
    rate."""
    if not any(r.net_amount for r in schedule.rents):
        return None
    invest = sum(r.net_amount for r in schedule.rents) - schedule.interest if net_investment is None \
        else net_investment
    try:
        return effective_periods(schedule, invest, implicit_rate(schedule, invest, others), others)
    except NoSolution:
        return None


def effective_through(schedule: LeaseSchedule, *through: date, net_investment: int | None = None,
                      others: Sequence[tuple[date, int]] = ()) -> tuple[int, ...] | None:
    """The effective-interest figure earned by the end of each day of ``through``, each rounded once (fen); None when
    the flows have no implicit rate (``net_investment`` None: Σ net amount − Σ net interest of the rents)."""
    spread = _effective_spread(schedule, net_investment, others)
    if spread is None:
        return None
    return tuple(half_up(accrued(spread, day)) for day in through)


def monthly_income(schedule: LeaseSchedule, net_investment: int | None = None,
                   others: Sequence[tuple[date, int]] = ()) -> list[MonthIncome]:
    """Every month of the lease from its start to its last period's end: the schedule's spread, the effective-interest
    figure (``net_investment`` fen; None: Σ net amount − Σ net interest of the rents, the schedule's own principal
    net of its VAT) and the difference. The amounts add up to Σ net interest exactly."""
    spread = periods(schedule)
    if not spread:
        return []
    effective = _effective_spread(schedule, net_investment, others)
    last = max(p.ends_on - ONE_DAY if p.ends_on > p.starts_on else p.starts_on for p in spread)
    month, out = month_of(schedule.starts_on), []
    before = before_eff = 0
    while True:
        end = month_end(month)
        now = min(half_up(accrued(spread, end)), schedule.interest)
        now_eff = half_up(accrued(effective, end)) if effective else now
        out.append(MonthIncome(month, now - before, now_eff - before_eff, (now_eff - before_eff) - (now - before)))
        before, before_eff = now, now_eff
        if end >= last:
            return out
        month = month_of(end + ONE_DAY)
