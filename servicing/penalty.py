"""Late charges (逾期违约金, 罚息) on an overdue instalment, accrued day by day.

As a contract states them (contract_text.html 第八条; plans.contract_terms): from the day after the due date
(自逾期之日起) to the day it is paid, on the overdue amount, at a rate a day (``late_fee_daily_rate``) — or an annual
rate divided by 360 or 365 for the actual days (``day_count`` "ACT/360", "ACT/365"). Two choices a product may make
besides: the base is the unpaid rent (default) or only its unpaid principal, and ``grace_days`` after the due date
are free — unless the payment comes later still and ``back_to_due`` charges them too (a bank card's rule).

The cap (contract-law issue, plans.policy): the contract rate and 365 days of the late charge together stay within
the policy's ``default_cost_cap`` (24 % a year, 法发〔2017〕22号 art. 2) — the daily rate is lowered to fit, by the
rule :meth:`plans.policy.Policy.late_fee_daily_rate` states the contract's rate with (rounded down to a millionth a
day), so a contract already within the cap is charged exactly its stated rate.

Rounding once: the charge accrued on an instalment from the due date to a day is ``base × daily rate × days
charged``, half-up to the fen; a day's charge (:func:`penalty_for_day`) and a stretch's (:func:`penalty_between`)
are differences of that accrued amount, so a daily close's postings add up, to the fen, to the once-rounded total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from decimal import ROUND_DOWN
from decimal import Decimal
from typing import Literal

from plans.money import CONTEXT
from plans.money import ZERO
from plans.money import fen

Base = Literal["overdue_rent", "principal"]
#: "daily": ``rate`` is a rate a day; "ACT/360", "ACT/365": an annual rate for the actual days
DAY_COUNTS = ("daily", "ACT/360", "ACT/365")
#: the most grace a product may give (a month); beyond that the rent is not late in any useful sense
MAX_GRACE_DAYS = 31
MILLIONTH = Decimal("0.000001")


@dataclass(frozen=True)
class PenaltyTerms:
    """A contract's late-charge terms. ``nominal_rate`` (the contract rate) and ``cost_cap`` (the policy's
    ``default_cost_cap``; None in contracts that do not state it) bound the daily rate."""

    rate: Decimal
    day_count: str = "daily"
    base: Base = "overdue_rent"
    grace_days: int = 0
    back_to_due: bool = False
    nominal_rate: Decimal = ZERO
    cost_cap: Decimal | None = None

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("the late-charge rate must not be negative")
        if self.day_count not in DAY_COUNTS:
            raise ValueError(f"day_count must be one of {', '.join(DAY_COUNTS)}")
        if self.base not in ("overdue_rent", "principal"):
            raise ValueError("base must be 'overdue_rent' or 'principal'")
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise ValueError(f"grace_days must be from 0 to {MAX_GRACE_DAYS}")

    @classmethod
    def from_contract(cls, plan: Mapping[str, object], *, base: Base = "overdue_rent", grace_days: int = 0,
                      back_to_due: bool = False) -> PenaltyTerms:
        """The terms of a contract's ``plan`` (plans.contract_terms: ``late_fee_daily_rate``, ``nominal_rate``,
        ``default_cost_cap`` or none: a rate a day), with the product's base, grace and ``back_to_due``."""
        cap = plan.get("default_cost_cap")
        return cls(rate=Decimal(str(plan["late_fee_daily_rate"])), nominal_rate=Decimal(str(plan["nominal_rate"])),
                   cost_cap=None if cap is None else Decimal(str(cap)), base=base, grace_days=grace_days,
                   back_to_due=back_to_due)

    @property
    def daily_rate(self) -> Decimal:
        """The rate charged a day: the stated one (an annual one divided by 360 or 365), within the cap."""
        stated = self.rate if self.day_count == "daily" else CONTEXT.divide(
            self.rate, Decimal(self.day_count.split("/")[1]))
        if self.cost_cap is None:
            return stated
        room = (self.cost_cap - self.nominal_rate) / Decimal(365)
        return ZERO if room <= 0 else min(stated, room.quantize(MILLIONTH, rounding=ROUND_DOWN))

    def days_charged(self, due_on: date, through: date) -> int:
        """The days charged for an instalment due on ``due_on`` and still unpaid at the end of ``through``:
        the overdue days after the grace (all of them past the grace with ``back_to_due``)."""
        overdue = max(0, (through - due_on).days)
        if overdue <= self.grace_days:
            return 0
        return overdue if self.back_to_due else overdue - self.grace_days


def base_amount(terms: PenaltyTerms, unpaid_rent: Decimal, unpaid_principal: Decimal) -> Decimal:
    """What the charge runs on: the unpaid rent, or only its unpaid principal, as the terms say."""
    if unpaid_principal > unpaid_rent or unpaid_principal < 0:
        raise ValueError("the unpaid principal must be from 0 to the unpaid rent")
    return unpaid_principal if terms.base == "principal" else unpaid_rent


def accrued_penalty(through: date, *, due_on: date, unpaid_rent: Decimal, unpaid_principal: Decimal,
                    terms: PenaltyTerms) -> Decimal:
    """The late charge accrued from the due date to the end of ``through``, on today's unpaid amount, half-up to
    the fen once."""
    days = terms.days_charged(due_on, through)
    base = base_amount(terms, unpaid_rent, unpaid_principal)
    return fen(CONTEXT.multiply(CONTEXT.multiply(base, terms.daily_rate), Decimal(days)))


def penalty_between(start: date, end: date, *, due_on: date, unpaid_rent: Decimal, unpaid_principal: Decimal,
                    terms: PenaltyTerms) -> Decimal:
    """The late charge for the days ``start`` … ``end`` − 1 (``end`` excluded, as ``range``), on an unpaid
    amount that stays the same over them. Stretches add up: ``between(a, b) + between(b, c) == between(a, c)``."""
    if end < start:
        raise ValueError("the end must not be before the start")

    def accrued(through: date) -> Decimal:
        return accrued_penalty(through, due_on=due_on, unpaid_rent=unpaid_rent, unpaid_principal=unpaid_principal,
                               terms=terms)
    one = timedelta(days=1)
    return accrued(end - one) - accrued(start - one)


def penalty_for_day(day: date, *, due_on: date, unpaid_rent: Decimal, unpaid_principal: Decimal,
                    terms: PenaltyTerms) -> Decimal:
    """The late charge for the day ``day`` (what the daily close posts for it)."""
    return penalty_between(day, day + timedelta(days=1), due_on=due_on, unpaid_rent=unpaid_rent,
                           unpaid_principal=unpaid_principal, terms=terms)
