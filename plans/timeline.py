"""The lease's calendar: when each rent, the balloon and the term fall due (Asia/Shanghai calendar days).

One timeline for the schedule, the APR and the contract (issue 16): the quote (plans.quote) prices rent k at
month k (in arrears) or k − 1 (in advance) and the balloon (尾款) at month n, the end of the term, where the
schedule's balance has grown back to it; the contract states the same dates, read from here. The term runs n
months from its start (起租日): a rent due on a day the month does not have falls on its last day (31 January
+ 1 month: 28 or 29 February), each date counted from the start, never from the previous one (which would drift
to the 28th for good).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from plans.quote import Timing


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day when it is shorter (31 Jan + 1 → 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_between(start: date, later: date) -> int:
    """Whole months from ``start`` to ``later`` as :func:`add_months` counts them (its inverse)."""
    months = (later.year - start.year) * 12 + later.month - start.month
    if add_months(start, months) > later:
        months -= 1
    return months


@dataclass(frozen=True)
class Timeline:
    starts_on: date
    rent_dates: tuple[date, ...]  # rent k (1…n) due on rent_dates[k − 1]
    ends_on: date  # the term's last day: the balloon and the deposit's refund fall due here

    @property
    def balloon_due(self) -> date:
        return self.ends_on


def timeline(starts_on: date, term: int, timing: Timing) -> Timeline:
    """Rent k due k − 1 months after the start in advance (the first at the start), k months after in arrears;
    the balloon at the end of the term, n months after the start, in both."""
    first = 0 if timing == "advance" else 1
    return Timeline(starts_on, tuple(add_months(starts_on, k - 1 + first) for k in range(1, term + 1)),
                    add_months(starts_on, term))
