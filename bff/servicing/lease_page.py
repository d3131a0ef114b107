"""What the lease page shows (issue 18 §8): where the lease stands on the business date and an early-settlement quote.

Everything is read from the lease in force (infra/servicing.py): its instalments in fen with what was paid of each and
the late charges accrued by the close of business, and its terms frozen from the signed contract (the lease row's
columns, as :func:`infra.servicing.penalty_terms` reads them). The maths is :mod:`servicing`'s:

- the quote is :func:`servicing.settlement.settlement_quote_on` on the lease's dated schedule (its rents as stored;
  the balance after rent k is the financed amount less the principal of rents 1…k, as the contract's schedule counts
  it), with the early-settlement terms the contract states, the deposit held, the rents fallen due by the settlement
  date and unpaid (arrears), and the late charges unpaid — those the close accrued and those still to come through
  the settlement day if nothing is paid before it (servicing.penalty, on the calendar the close uses: a rent is late
  from the day after its last day to pay), so the amount is what settles the lease on that day at most — paid
  earlier, the settlement books the charges owed then and refunds the rest (infra/settlements.py); what was paid ahead
  of the rents due after the settlement date (the pay page offers the next rent ahead) is not charged again: its
  principal comes off the outstanding principal, its interest is given back on its own line;
- the settlement date: on or after the business date plus the notice the contract asks for, in working days (China's
  business calendar), and before the term's last day (then it is the end of the term, not early); an older contract
  that settles on rent days only takes a rent's due day. The quote is valid until the end of its settlement day
  (Asia/Shanghai): it counts the interest to that day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import timedelta

from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.servicing import FINAL_RENT
from infra.servicing import OVERDUE
from infra.servicing import RENT
from infra.servicing import SETTLED
from infra.servicing import WAIVED
from infra.servicing import yuan
from infra.settlements import late_charges_through
from plans.errors import FieldError
from plans.product import EarlySettlement
from servicing.calendar import BusinessCalendar
from servicing.instalments import DatedSchedule
from servicing.instalments import Instalment
from servicing.settlement import SettlementQuote
from servicing.settlement import settlement_quote_on

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Row:
    """One instalment as the page shows it, in fen: ``paid`` of its rent (principal and interest), ``owed`` what is
    left of it, the late charge accrued on it and what of that is unpaid."""

    number: int
    kind: str
    due_on: date
    amount: int
    principal: int
    interest: int
    paid: int
    owed: int
    penalty: int
    penalty_owed: int
    state: str

    @property
    def final(self) -> bool:
        return self.kind == FINAL_RENT


def row(inst: InstalmentRow) -> Row:
    paid = inst.paid_principal + inst.paid_interest
    waived = inst.state in (WAIVED, SETTLED)  # replaced by an early settlement: nothing left to pay
    return Row(inst.number, inst.kind, inst.due_on, inst.amount, inst.principal, inst.interest, paid,
               0 if waived else max(0, inst.amount - paid), inst.penalty_accrued,
               0 if waived else max(0, inst.penalty_accrued - inst.paid_penalty), inst.state)


@dataclass(frozen=True)
class Standing:
    """Where the lease stands on the business date: the rows, the rent overdue and the late charges unpaid, the
    next instalment to pay (not late yet) and what is owed now (late, due today or before, and the charges)."""

    rows: tuple[Row, ...]
    overdue: int
    late_charges: int
    next: Row | None
    due_now: int
    rents_paid: int
    #: what is owed now, instalment by instalment (overdue, fallen due by the business date, or a late charge unpaid)
    due_rows: tuple[Row, ...] = ()
    #: the next instalment not due yet: second to what is owed now on the lease page
    later: Row | None = None

    @property
    def owing(self) -> bool:
        return self.due_now > 0 or self.next is not None


def standing(instalments: Sequence[InstalmentRow], business_date: date) -> Standing:
    rows = tuple(row(i) for i in instalments)
    overdue = sum(r.owed for r in rows if r.state == OVERDUE)
    late = sum(r.penalty_owed for r in rows)
    upcoming = [r for r in rows if r.owed > 0 and r.state != OVERDUE]
    due_now = overdue + late + sum(r.owed for r in upcoming if r.due_on <= business_date)
    return Standing(rows, overdue, late, upcoming[0] if upcoming else None, due_now,
                    sum(1 for r in rows if r.owed == 0 and r.kind == RENT and r.paid > 0),
                    tuple(r for r in rows if r.penalty_owed or (r.owed and (r.state == OVERDUE
                                                                             or r.due_on <= business_date))),
                    next((r for r in upcoming if r.due_on > business_date), None))


# -- early settlement ----------------------------------------------------------------------------------------------
def settlement_terms(lease: LeaseRow) -> EarlySettlement:
    """The early-settlement terms the lease's contract states (frozen with it)."""
    return EarlySettlement(fee_rate=lease.settlement_fee_rate, day_count=lease.settlement_day_count,
                           notice_working_days=lease.settlement_notice_working_days)


def dated(lease: LeaseRow, instalments: Sequence[InstalmentRow]) -> DatedSchedule:
    """The lease's rents as :mod:`servicing` dates them, from the stored instalments: the balance after rent k is
    the residual plus the principal of the rents after k — the financed amount less the principal of rents 1…k, the
    schedule's own balance (it reconciles to the fen), and after a partial prepayment (infra/prepayments.py: the rents
    after it re-amortised, the prepaid principal in none of them) the balance it left; the balances of the rents
    before a prepayment, and the opening one, are counted net of it (a quote is for a day after it)."""
    rents = [i for i in instalments if i.kind == RENT]
    balance = opening = lease.residual + sum(i.principal for i in rents)
    dated_rents = []
    for inst in rents:
        balance -= inst.principal
        dated_rents.append(Instalment(inst.number, inst.due_on, yuan(inst.amount), yuan(inst.principal),
                                      yuan(inst.interest), yuan(balance)))
    return DatedSchedule(starts_on=lease.starts_on, ends_on=lease.ends_on,
                         timing="advance" if lease.timing == "advance" else "arrears",
                         annual_rate=lease.nominal_rate, financed_amount=yuan(opening),
                         residual=yuan(lease.residual), instalments=tuple(dated_rents))


@dataclass(frozen=True)
class SettlementDates:
    """The dates a settlement may be asked for: from ``earliest`` to ``latest``; on rent days only (``rent_days``)
    for an older contract. ``earliest`` is None when none is left before the term's end."""

    earliest: date | None
    latest: date
    rent_days: tuple[date, ...] | None

    def allows(self, day: date) -> bool:
        return (self.earliest is not None and self.earliest <= day <= self.latest
                and (self.rent_days is None or day in self.rent_days))


def settlement_dates(lease: LeaseRow, instalments: Sequence[InstalmentRow], business_date: date,
                     calendar: BusinessCalendar) -> SettlementDates:
    first = calendar.add_business_days(business_date, lease.settlement_notice_working_days)
    latest = lease.ends_on - ONE_DAY
    rent_days = None
    if not lease.settlement_any_day:
        rent_days = tuple(i.due_on for i in instalments if i.kind == RENT and first <= i.due_on <= latest)
        first = rent_days[0] if rent_days else latest + ONE_DAY
    return SettlementDates(first if first <= latest else None, latest, rent_days)


class DateRefused(Exception):
    """The settlement date asked for cannot be quoted: why, as a field error of ``settle_on``."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(error.text_en)
        self.error = error


def settlement_date(typed: str, dates: SettlementDates) -> date:
    """The date typed (YYYY-MM-DD, as a date input sends it), if a settlement may be asked for it."""
    try:
        day = date.fromisoformat(typed.strip())
    except ValueError:
        raise DateRefused(FieldError("settle_on", "date", "请选择一个日期（年-月-日）",
                                     "Choose a date (year-month-day)")) from None
    if dates.allows(day):
        return day
    if dates.earliest is None:
        raise DateRefused(FieldError("settle_on", "too_late", "租期即将结束，已无法提前结清",
                                     "The term is about to end: it can no longer be settled early"))
    first, last = dates.earliest.isoformat(), dates.latest.isoformat()
    if dates.rent_days is not None and day <= dates.latest:
        raise DateRefused(FieldError("settle_on", "rent_day", f"合同约定仅可在租金到期日结清，最早为 {first}",
                                     f"The contract settles on a rent's due date only: the first is {first}"))
    raise DateRefused(FieldError("settle_on", "range", f"结清日期须在 {first} 至 {last} 之间",
                                 f"The settlement date must be from {first} to {last}"))


def late_charges_to_come(lease: LeaseRow, instalments: Sequence[InstalmentRow], on: date,
                         calendar: BusinessCalendar) -> int:
    """The late charges not yet accrued that the rents due by ``on`` will have accrued by the end of ``on`` if
    nothing is paid before (fen): :func:`infra.settlements.late_charges_through`. A quote counts them as the most that
    may be owed while it is payable; the settlement books those owed on the day it is paid (infra/settlements.py
    ``charges_owed``) and refunds the rest."""
    return late_charges_through(lease, instalments, on, calendar)


def quote(lease: LeaseRow, instalments: Sequence[InstalmentRow], on: date,
          calendar: BusinessCalendar) -> SettlementQuote:
    """The early-settlement quote for ``on`` (:func:`servicing.settlement.settlement_quote_on`): the rents fallen due
    by then and unpaid in arrears; the late charges unpaid and to come through ``on``; what was paid ahead of the
    instalments due after ``on`` (principal and interest); the deposit held."""
    arrears = sum(row(i).owed for i in instalments if i.kind == RENT and i.due_on <= on)
    penalties = sum(row(i).penalty_owed for i in instalments) + late_charges_to_come(lease, instalments, on, calendar)
    ahead = [i for i in instalments if i.due_on > on]
    return settlement_quote_on(dated(lease, instalments), on, terms=settlement_terms(lease),
                               deposit=yuan(lease.deposit), arrears=yuan(arrears), penalties=yuan(penalties),
                               paid_ahead_principal=yuan(sum(i.paid_principal for i in ahead)),
                               paid_ahead_interest=yuan(sum(i.paid_interest for i in ahead)))

