"""A partial prepayment (部分提前还款) and the schedule after it, both ways the customer may choose.

On a rent date, after K rents, the lessee pays ``prepayment`` towards the principal outstanding (the schedule's
balance after row K). What remains is amortised again at the contract rate, with the same timing and the residual
(the final rent, 尾付租金) unchanged, by plans.quote's own rule (:func:`plans.quote.level_rent`,
:func:`plans.quote.build_schedule`: level rents to the fen, the last one absorbing the rounding):

- **shorter term** (缩短期限): the same rent, as few rents as pay the balance down to the residual — the last one
  smaller — and the residual due at the new, earlier end of the term;
- **lower rent** (减少月供): the same number of rents left, a lower level rent.

:func:`prepayment_options` computes both so the customer sees both before choosing. A fee on the prepaid amount, if
the product states one, is the caller's to add: it does not change the schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from plans.money import ZERO
from plans.money import fen
from plans.quote import ScheduleRow
from plans.quote import Timing
from plans.quote import build_schedule
from plans.quote import level_rent

Option = Literal["shorter_term", "lower_rent"]


@dataclass(frozen=True)
class Reamortisation:
    """The lease after a prepayment, one way. ``rents_paid`` counts the lease's rents (a re-amortised schedule's
    rows go on from the old ones' periods); ``schedule`` holds the rents left, numbered on from ``rents_paid`` + 1;
    ``term`` is the lease's new term (rents paid + rents left); ``interest_saved`` the interest of the rents the old
    schedule had left less that of the new."""

    option: Option
    rents_paid: int
    prepayment: Decimal
    balance_before: Decimal
    balance_after: Decimal
    rent: Decimal
    last_payment: Decimal
    term: int
    schedule: tuple[ScheduleRow, ...]
    interest_saved: Decimal

    @property
    def rents_left(self) -> int:
        return len(self.schedule)


@dataclass(frozen=True)
class PrepaymentOptions:
    """Both ways, side by side."""

    shorter_term: Reamortisation
    lower_rent: Reamortisation


#: the least principal a prepayment leaves above the residual for each rent left (less would re-amortise to rents of
#: nothing: settle early instead)
LEAST_A_RENT = Decimal("1.00")

def _numbered(rows: Sequence[ScheduleRow], after: int) -> tuple[ScheduleRow, ...]:
    return tuple(ScheduleRow(after + row.period, row.payment, row.interest, row.principal, row.balance) for row in rows)


def prepayment_options(schedule: Sequence[ScheduleRow], opening_balance: Decimal, residual: Decimal,
                       annual_rate: Decimal, timing: Timing, *, paid: int, prepayment: Decimal) -> PrepaymentOptions:
    """Both re-amortisations of ``schedule`` (a quote's, whose ``opening_balance`` is its financed amount, or one
    made here, whose opening balance is its ``balance_after``) when ``prepayment`` is paid after ``paid`` of its
    rents (0 ≤ paid < its rents). The schedule's first row is its level rent, kept by the shorter term.

    Raises :class:`ValueError` for a prepayment that is not a positive amount to the fen, or that leaves less than
    :data:`LEAST_A_RENT` of principal above the residual for each rent left: so little is an early settlement
    (:mod:`servicing.settlement`) — re-amortised, its rents would round to nothing."""
    if not 0 <= paid < len(schedule):
        raise ValueError(f"rents paid must be from 0 to {len(schedule) - 1}: a prepayment needs a rent left")
    if prepayment <= 0 or prepayment != fen(prepayment):
        raise ValueError("the prepayment must be an amount to the fen above 0")
    before = opening_balance if paid == 0 else schedule[paid - 1].balance
    after = before - prepayment
    left = len(schedule) - paid
    if after - residual < LEAST_A_RENT * left:
        raise ValueError(f"the prepayment must leave at least {LEAST_A_RENT} a rent left ({left}) above the residual "
                         f"{residual}: at most {before - residual - LEAST_A_RENT * left}")
    old_interest = sum((row.interest for row in schedule[paid:]), ZERO)
    first = schedule[0].period - 1  # the rows' periods are numbered on from this

    def option(name: Option, rows: tuple[ScheduleRow, ...], rent: Decimal) -> Reamortisation:
        done = first + paid
        return Reamortisation(name, done, prepayment, before, after, rent, rows[-1].payment, done + len(rows),
                              _numbered(rows, done), old_interest - sum((r.interest for r in rows), ZERO))

    lower = fen(level_rent(after, residual, left, annual_rate, timing))
    if lower <= 0:
        raise ValueError("the prepayment leaves no rent to pay")
    rent = schedule[0].payment

    def last_payment(count: int) -> Decimal:
        return build_schedule(after, residual, count, annual_rate, timing, rent)[-1].payment

    # the fewest rents whose last is at most the rent: the last payment falls as rents are added (each full rent
    # repays more than the interest), so a bisection finds it; none within the rents left (a last row enlarged by
    # rounding): as many as before
    low, high = 1, left
    while low < high:
        middle = (low + high) // 2
        if last_payment(middle) <= rent:
            high = middle
        else:
            low = middle + 1
    shorter = build_schedule(after, residual, low, annual_rate, timing, rent)
    return PrepaymentOptions(
        shorter_term=option("shorter_term", shorter, rent),
        lower_rent=option("lower_rent", build_schedule(after, residual, left, annual_rate, timing, lower), lower))
