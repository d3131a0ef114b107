"""Arrears (issue 18 §4), pure: days past due, the buckets M1/M2/M3, and which rents the daily close of business texts
about, and when a text may go.

**Days past due** of a lease on a business date: counted from its oldest unpaid overdue rent, whose first overdue day
(the calendar day after its last day to pay: the due day, moved to the next business day, plus the contract's grace)
is day 1. A rent due on a Sunday in a holiday and paid on the next business day is never past due.

**Buckets**: M1 1–30 days past due, M2 31–60, M3 over 60 (M3+: the collateral team is told).

**Reminders** go out the day after the close that defers them (the close of date B runs once B has ended in
Beijing): the text day is B + 1. A text *N days before the due date* is deferred by the close of ``due − N − 1``; a
text *n days after the rent became overdue* (the day after: n = 1, a week after: n = 7) by the close of its
``overdue_since + n − 1`` (its n-th overdue day), so that it arrives on ``overdue_since + n``.

**When**: never at night. A text deferred outside the policy's window (09:00–20:00 in Beijing by default) waits for the
window's next opening; inside it, it goes at once.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

M1, M2, M3 = "M1", "M2", "M3"
#: the buckets, in order of gravity, each with its last day past due (M3: no end)
BUCKETS = (M1, M2, M3)
_LAST_DAY = ((30, M1), (60, M2))
SHANGHAI = ZoneInfo("Asia/Shanghai")
ONE_DAY = timedelta(days=1)


def days_past_due(overdue_since: date, on: date) -> int:
    """Days past due on ``on`` of a rent overdue since ``overdue_since`` (its first overdue day is 1; 0 before)."""
    return max(0, (on - overdue_since).days + 1)


def bucket(days: int) -> str | None:
    """The bucket of ``days`` past due: M1 1–30, M2 31–60, M3 over 60; None when not past due."""
    if days <= 0:
        return None
    for last, name in _LAST_DAY:
        if days <= last:
            return name
    return M3


def gravity(name: str | None) -> int:
    """A bucket's rank (0: none, 1: M1 … 3: M3), for sorting."""
    return BUCKETS.index(name) + 1 if name in BUCKETS else 0


def due_date_reminded(business_date: date, days_before: int) -> date:
    """The due date whose rents the close of ``business_date`` reminds about ``days_before`` days ahead: the text
    arrives on ``business_date + 1``, ``days_before`` days before it."""
    return business_date + ONE_DAY + timedelta(days=days_before)


def overdue_since_reminded(business_date: date, days_after: int) -> date:
    """The first overdue day of the rents the close of ``business_date`` texts ``days_after`` days after they became
    overdue (the text arrives on ``business_date + 1``)."""
    return business_date + ONE_DAY - timedelta(days=days_after)


def overdue_kind(days_after: int) -> str:
    """A reminder's kind for ``days_after`` days after the rent became overdue (``overdue_1``, ``overdue_7``)."""
    return f"overdue_{days_after}"


def send_at(now: datetime, opens: time, closes: time, zone: ZoneInfo = SHANGHAI) -> datetime | None:
    """When a text deferred at ``now`` (aware) may go: None (at once) within ``opens``–``closes`` local time, else the
    next opening (today's before it, tomorrow's after the close), as an aware UTC-comparable datetime."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if opens >= closes:
        raise ValueError("the window must open before it closes")
    local = now.astimezone(zone)
    if opens <= local.time() < closes:
        return None
    day = local.date() if local.time() < opens else local.date() + ONE_DAY
    return datetime.combine(day, opens, tzinfo=zone)
