"""The schedule as a live receivable: each rent of a quote with its due date, from the term's start (起租日, the day
of the signed handover record) on the lease's calendar (plans.timeline: Asia/Shanghai days, month ends clamped).

The amounts are the quote's rows unchanged (principal, interest, the balance after the rent), so every figure the
servicing derives — a settlement's outstanding principal, a re-amortised schedule — is the one the contract's
annex shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from plans.quote import Quote
from plans.quote import Timing
from plans.timeline import timeline


@dataclass(frozen=True)
class Instalment:
    """Rent ``period`` (1…n), due on ``due_on``: its amount split as the schedule splits it, and the schedule's
    balance after it (at the end of its period)."""

    period: int
    due_on: date
    payment: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal


@dataclass(frozen=True)
class DatedSchedule:
    """A lease's rents with their dates and what the maths needs besides: the term runs from ``starts_on`` to
    ``ends_on``, when the residual (the final rent, 尾付租金) falls due."""

    starts_on: date
    ends_on: date
    timing: Timing
    annual_rate: Decimal
    financed_amount: Decimal
    residual: Decimal
    instalments: tuple[Instalment, ...]

    def rents_due(self, on: date) -> int:
        """How many rents fall due on or before ``on``."""
        return sum(1 for i in self.instalments if i.due_on <= on)


def dated_schedule(q: Quote, starts_on: date) -> DatedSchedule:
    """The rents of ``q`` for a term starting on ``starts_on``: rent k due k months after the start in arrears,
    k − 1 months after in advance (plans.timeline), the residual at the end of the term."""
    request = q.request
    dates = timeline(starts_on, request.term, request.timing)
    return DatedSchedule(
        starts_on=starts_on, ends_on=dates.ends_on, timing=request.timing, annual_rate=request.annual_rate,
        financed_amount=q.financed_amount, residual=q.residual,
        instalments=tuple(Instalment(row.period, due_on, row.payment, row.principal, row.interest, row.balance)
                          for row, due_on in zip(q.schedule, dates.rent_dates, strict=True)))
