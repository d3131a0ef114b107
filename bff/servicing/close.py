"""The daily close of business (issue 18 §2): one idempotent job per business date.

The business date (``business_date``, one row every process reads: ``leaseline servicing date``) is the calendar day
whose close runs next. Its close, for every active lease, in batches of :data:`BATCH` leases, each batch one
transaction with its progress marker (infra/servicing.py ``close_batch``):

1. rents whose due day has come turn ``due``;
2. rents still unpaid after their last day turn ``overdue`` — the last day is the due day, or the next business day
   when the due day is a weekend day or an official holiday (servicing/calendar.py: China's calendar, the days ops
   loaded, beyond both Monday–Friday), plus the contract's grace in business days (0 in every contract so far:
   the late charge runs 自逾期之日起); overdue from the calendar day after it;
3. the late charge (逾期违约金) accrues for each calendar day an instalment is overdue, at the contract's daily rate on
   what was left unpaid at the end of the day — a payment counts for the day it is made on, in part as in full
   (servicing.penalty: rounded half-up once on the accrued total);
4. the hooks run in the batch's transaction with what changed (:class:`infra.servicing.BatchEvents`): reminders and
   collections (issue 18 §4) attach here, so the texts they defer go out with the change or not at all. None is
   registered yet: nothing is sent.

Only when every active lease is closed through the date is the run ``done`` and the business date moved to the next
calendar day (every calendar day is closed: the late charge runs on calendar days). Running a date again changes
nothing: a done run is reported as it was; a run killed midway resumes with the leases not yet closed through the date
(a batch that failed left nothing of itself; each late charge is also keyed per instalment and date). Two runs at once
share the leases (``SKIP LOCKED``) and the last to finish moves the date.

The worker's ``servicing.close`` periodic task closes each business date whose day has ended in Asia/Shanghai;
``leaseline servicing close --date D`` runs (or replays) one date by hand, ``--until D`` rolls a demo day by day. A
day that has not ended (:func:`has_ended`) is closed by hand only outside production, or with ``--demo``: closing it
would mark its rents late, and charge for them, before their day is over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from bff.payments.common import utc_now
from infra.servicing import DONE
from infra.servicing import CloseHook
from infra.servicing import CloseRun
from infra.servicing import NotTheBusinessDate
from infra.servicing import SqlServicing

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: leases per transaction: small enough that a batch holds its locks briefly, large enough to amortise the round trips
BATCH = 500
#: the most dates one ``--until`` rolls (ten years: a demo, not a typo that runs for hours)
MAX_ROLL_DAYS = 3660

__all__ = ["BATCH", "CloseOfBusiness", "CloseOutcome", "NotTheBusinessDate", "has_ended"]


def has_ended(day: date, now: datetime) -> bool:
    """Whether the calendar day ``day`` has ended in Asia/Shanghai at ``now`` (aware): its close may run."""
    return day < now.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class CloseOutcome:
    """A close of ``business_date``: ``already`` when it was done before this call (nothing changed); ``done`` when
    it is complete (False: another run still holds some leases); the run's counters."""

    business_date: date
    already: bool
    done: bool
    run: CloseRun


class CloseOfBusiness:
    def __init__(self, repo: SqlServicing, *, batch_size: int = BATCH, clock: Callable[[], datetime] = utc_now,
                 hooks: Sequence[CloseHook] = ()) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.repo, self.batch_size, self.clock, self.hooks = repo, batch_size, clock, tuple(hooks)

    def business_date(self) -> date:
        return self.repo.business_date()

    def close(self, day: date) -> CloseOutcome:
        """Run (or resume, or replay) the close of ``day``. Raises :class:`NotTheBusinessDate` for a date that is
        neither the business date nor closed already."""
        run = self.repo.begin_close(day, self.clock())
        if run.status == DONE:
            return CloseOutcome(day, True, True, run)
        calendar = self.repo.calendar()
        while self.repo.close_batch(day, calendar, self.batch_size, self.clock(), self.hooks):
            pass
        done = self.repo.finish_close(day, self.clock())
        final = self.repo.close_run(day)
        assert final is not None
        log.info("close of business %s: %s (%s leases in %s batches, %s due, %s overdue, late charges %s fen)",
                 day.isoformat(), "done" if done else "left to another run", final.leases, final.batches,
                 final.marked_due, final.marked_overdue, final.penalty)
        return CloseOutcome(day, False, done, final)

    def close_until(self, last: date) -> list[CloseOutcome]:
        """Close every date from the business date through ``last``, one after the other (a demo rolled forward)."""
        outcomes: list[CloseOutcome] = []
        day = self.business_date()
        if (last - day).days >= MAX_ROLL_DAYS:
            raise ValueError(f"at most {MAX_ROLL_DAYS} days at a time")
        while day <= last:
            outcome = self.close(day)
            outcomes.append(outcome)
            if not outcome.done:  # another run holds leases of this date: it moves the date on
                break
            day += timedelta(days=1)
        return outcomes

    def close_due(self) -> list[CloseOutcome]:
        """The periodic task: close each business date whose day has ended in Asia/Shanghai (the business date never
        runs ahead of the wall clock here; ``--until`` may take it further, and this then waits for the clock)."""
        today = self.clock().astimezone(SHANGHAI).date()
        business = self.business_date()
        if business >= today:
            return []
        return self.close_until(today - timedelta(days=1))
