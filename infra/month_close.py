"""The month close of the books with four eyes (issue 19 §4, migration 0034): one ops user asks for a month's close, a
different one approves it, and the month is locked (its ``ledger_periods`` row): nothing is booked in it any more, and
an event dated in it is booked on the first day of the next open month with its own date kept (infra/books.py
``post``, and the database's trigger of migration 0034).

**Which month.** The months close in order: the next is the month after the last closed one (none closed yet: the month
of the journal's first entry). It may close once it has ended on the business date (the close of business has
finished its last day) and when nothing blocks it (:func:`check`): the trial balance at its last day balanced, the lease
sub-ledger reconciling there (infra/books_reconcile.py ``lease_differences``), and its finance income posted: the
month's recognition, were it run now, would post nothing (:func:`income_unposted`, by infra/finance_income.py's own
functions: a job cancelled, failed for good or never deferred does not let a month close without its income), and no
``books.finance_income`` job of the month is waiting, running or failed (it would post when it runs).

**When the checks run.** They read the whole portfolio (14–20 s at 10,000 leases, minutes at 100,000), so never on a
page's GET nor in a web request of their own: ops ask for them (:meth:`MonthClose.ask_check`: the marker
``books.close_check_asked`` and the job ``books.close_check`` in one transaction, the request answered at once; none
queued while one waits or runs), and a worker runs them (:meth:`MonthClose.run_check`, audited ``books.close_checked``
with what they found; run again, it keeps no second result). Asking for the close and approving it run them in their
own request, as they decide on what they find (kept with the request). The page shows the newest findings, with their
time and who asked (:meth:`MonthClose.overview`), and the check asked for while it waits or runs, or when its job
ended without a result (failed: the jobs page has its error).

**Four eyes.** The approver is never the requester: refused here (:class:`OwnApproval`) and by the database (CHECK on
both tables). The requester may withdraw a request still pending. Each step is an audit event (``books.close_*``) in
the step's own transaction; an approval refused to its requester is audited too (``denied``).

**No posting slips in, and none waits for the checks.** The approval reads where the journal stands (its
:func:`watermark`, the last entry's id, under a SHARE lock on ``journal_entries`` held only for that read: it waits for
the postings in flight, so every entry up to the watermark is committed), runs the checks without a lock, then takes
SHARE on ``journal_entries`` for its own transaction and checks again only what was posted since the watermark
(:func:`recheck`: the trial balance by the entries after it, the lease sub-ledger and the finance income of the leases
they touch, the jobs): postings in flight commit first and count; postings after it wait for the close to commit
(then the trigger books them in the next month)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from books.reports import first_day
from books.reports import last_day
from books.reports import month_of
from books.reports import next_month
from books.vat import load_tax_policy
from infra.books import last_closed_month
from infra.books_reconcile import LeaseDifference
from infra.books_reconcile import lease_differences
from infra.db.engine import Database
from infra.db.models import AuditEventRow
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseRow
from infra.db.models import LedgerCloseRequestRow
from infra.db.models import LedgerPeriodRow
from infra.db.models import UserRow
from infra.db.models import utcnow
from infra.finance_income import BATCH as INCOME_BATCH
from infra.finance_income import SETTLED_LEASE
from infra.finance_income import TASK as INCOME_TASK
from infra.finance_income import income_key
from infra.finance_income import month_entry
from infra.finance_income import prepaid
from infra.finance_income import recognised
from infra.finance_income import schedules
from infra.jobs import Job
from infra.jobs import defer_jobs
from infra.servicing import any_of
from infra.servicing import current_business_date

PENDING, APPROVED, WITHDRAWN = "pending", "approved", "withdrawn"
#: the advisory lock a request takes on its month (with the month: ``close_request:YYYY-MM``), and the unique index of
#: a month's pending request (migration 0034)
REQUEST_LOCK, PENDING_INDEX = "close_request", "uq_ledger_close_requests_pending"
#: the audit action of checks run (by ops, or refusing a request or an approval): the page's newest checks
CHECKED = "books.close_checked"
#: what the approval takes to read its watermark, and for its own transaction
LOCK_JOURNAL = "LOCK TABLE journal_entries IN SHARE MODE"
#: differences listed in a check (the count is always whole)
SHOWN_DIFFERENCES = 20
#: the finance-income job's states in which the month's income is not (all) posted yet
INCOME_OPEN = ("todo", "doing", "failed")
#: the close checks ops ask for on /books, run by a worker (bff/worker.py): the task (also its queueing lock and its
#: procrastinate lock: one waits, one runs, at a time), its queue, and the audit action of the ask (the job's marker)
CHECK_TASK, CHECK_QUEUE, CHECK_ASKED = "books.close_check", "servicing", "books.close_check_asked"


@dataclass(frozen=True)
class Blocker:
    """What stops a month's close: ``code`` (not_next, closed, not_ended, unbalanced, differences, income_unposted,
    income_pending, empty) and its figures, for the page's wording."""

    code: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """A month's close checks at its last day: the sums of every debit and credit booked through it (fen: equal when
    the journal balances), the trial balance's closing totals there (``balance_debit``, ``balance_credit``: each
    account netted, the debit balances and the credit balances, as the trial balance report shows them; None in a
    check kept before they were), the lease sub-ledger's differences (their count, and the first
    :data:`SHOWN_DIFFERENCES`: lease, account, ledger, schedule in fen) and what blocks the close (nothing: it may
    close). ``nets``: each account's closing balance (debit-positive), for :func:`recheck`; not kept."""

    month: date
    today: date
    total_debit: int
    total_credit: int
    difference_count: int
    differences: tuple[dict[str, Any], ...]
    blockers: tuple[Blocker, ...]
    balance_debit: int | None = None
    balance_credit: int | None = None
    nets: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.blockers

    def as_dict(self) -> dict[str, Any]:
        return {"month": month_of(self.month), "business_date": self.today.isoformat(),
                "total_debit": self.total_debit, "total_credit": self.total_credit,
                "balance_debit": self.balance_debit, "balance_credit": self.balance_credit,
                "difference_count": self.difference_count, "differences": list(self.differences),
                "blockers": [{"code": b.code, **b.detail} for b in self.blockers]}

    @classmethod
    def from_dict(cls, found: dict[str, Any]) -> Check:
        """A check as :meth:`as_dict` kept it (with a request, in an audit event)."""
        balances = [found.get(k) for k in ("balance_debit", "balance_credit")]
        return cls(first_day(found["month"]), date.fromisoformat(found["business_date"]), int(found["total_debit"]),
                   int(found["total_credit"]), int(found["difference_count"]), tuple(found["differences"]),
                   tuple(Blocker(b["code"], {k: v for k, v in b.items() if k != "code"}) for b in found["blockers"]),
                   *(int(b) if b is not None else None for b in balances))


@dataclass(frozen=True)
class CloseRequest:
    id: int
    month: date
    status: str
    requested_by: str
    requested_by_label: str
    requested_at: datetime
    checks: dict[str, Any]
    decided_by: str | None
    decided_by_label: str | None
    decided_at: datetime | None


@dataclass(frozen=True)
class ClosedMonth:
    month: date
    closed_at: datetime
    closed_by: str  # the requester's name (or id when the user is gone)
    approved_by: str


@dataclass(frozen=True)
class CheckJob:
    """A close check ops asked for: ``state`` its job's (``todo`` waiting, ``doing`` running, ``ended`` ended without
    its result: failed, cancelled or aborted — the jobs page says why), when and by whom it was asked (its marker)."""

    state: str
    asked_at: datetime
    asked_by: str
    marker: int

    @property
    def open(self) -> bool:
        """Waiting or running: asking again queues none."""
        return self.state in ("todo", "doing")


@dataclass(frozen=True)
class Overview:
    """The books' periods as ops see them: the business date, the last closed month, the next month to close and its
    checks — the newest run (by a check ops asked for, or with a request: ``checked_at``, ``checked_by``), or None when
    none was run for it —, the requests waiting for approval, the months closed (newest first), and the check ops asked
    for that has not given its result (``check_job``: waiting, running, or ended without one after the newest run)."""

    today: date
    last_closed: date | None
    next_month: date | None
    check: Check | None
    pending: tuple[CloseRequest, ...]
    closed: tuple[ClosedMonth, ...]
    checked_at: datetime | None = None
    checked_by: str | None = None
    check_job: CheckJob | None = None


class CloseRefused(Exception):
    """The close cannot be asked for or approved now: ``code`` says why (the check's blockers, when they are why)."""

    def __init__(self, code: str, message: str, check: Check | None = None) -> None:
        super().__init__(message)
        self.code, self.check = code, check


def _pending(month: date, who: str) -> CloseRefused:
    return CloseRefused("pending", f"the close of {month_of(month)} was asked for already, by {who}: it waits for "
                                   "another user's approval")


class OwnApproval(CloseRefused):
    """The requester tried to approve their own request (four eyes)."""


def next_to_close(session: Session) -> date | None:
    """The first day of the month that closes next: the one after the last closed, else the month of the journal's
    first booked entry; None when the journal is empty and nothing is closed."""
    closed = last_closed_month(session)
    if closed is not None:
        return next_month(closed)
    first = session.execute(select(func.min(JournalEntryRow.booked_on))).scalar_one()
    return first.replace(day=1) if first is not None else None


def watermark(session: Session) -> int:
    """The id of the journal's last entry (0: none)."""
    return int(session.execute(select(func.coalesce(func.max(JournalEntryRow.id), 0))).scalar_one())


def _order(session: Session, month: date, today: date) -> list[Blocker]:
    """What the calendar says: closed already, not the next month, nothing booked, not ended on ``today``."""
    end, blockers = last_day(month), []
    closed = last_closed_month(session)
    upcoming = next_to_close(session)
    if closed is not None and month <= closed:
        blockers.append(Blocker("closed", {"month": month_of(month)}))
    elif upcoming is None:
        blockers.append(Blocker("empty"))
    elif month != upcoming:
        blockers.append(Blocker("not_next", {"next": month_of(upcoming)}))
    if today <= end:
        blockers.append(Blocker("not_ended", {"ends": end.isoformat(), "business_date": today.isoformat()}))
    return blockers


def _movements(session: Session, end: date, *, after: int = 0, through: int | None = None
               ) -> dict[str, tuple[int, int]]:
    """Each account's debits and credits (fen) in the entries booked by ``end`` whose id is above ``after`` (and at
    most ``through``)."""
    query = (select(JournalLineRow.account, func.sum(JournalLineRow.debit), func.sum(JournalLineRow.credit))
             .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
             .where(JournalEntryRow.booked_on <= end, JournalEntryRow.id > after).group_by(JournalLineRow.account))
    if through is not None:
        query = query.where(JournalEntryRow.id <= through)
    return {str(account): (int(debit), int(credit)) for account, debit, credit in session.execute(query)}


@dataclass(frozen=True)
class _Totals:
    """The journal's figures through a month end: every debit and credit posted (fen), each account's net balance."""

    debit: int
    credit: int
    nets: dict[str, int]

    @classmethod
    def of(cls, moves: dict[str, tuple[int, int]], before: _Totals | None = None) -> _Totals:
        """``moves`` (account → debits, credits), added to ``before``'s figures when given."""
        debit, credit, nets = (before.debit, before.credit, dict(before.nets)) if before else (0, 0, {})
        for account, (d, c) in moves.items():
            debit, credit = debit + d, credit + c
            nets[account] = nets.get(account, 0) + d - c
        return cls(debit, credit, nets)


def _ledger(session: Session, month: date, today: date, totals: _Totals,
            lease_ids: Sequence[str] | None = None) -> tuple[list[Blocker], list[LeaseDifference]]:
    """The blockers of the ledger's figures: the journal unbalanced (the trial balance's closing totals differ), the
    lease sub-ledger's differences at the month end, the month's finance income unposted (of ``lease_ids`` only, when
    given), a finance-income job open."""
    end, blockers = last_day(month), []
    if totals.debit != totals.credit:
        balance_debit, balance_credit = _balances(totals)
        blockers.append(Blocker("unbalanced", {"total_debit": totals.debit, "total_credit": totals.credit,
                                               "balance_debit": balance_debit, "balance_credit": balance_credit}))
    found = lease_differences(session, lease_ids, on=end)
    if found:
        blockers.append(Blocker("differences", {"count": len(found)}))
    if today > end:  # recognise_month refuses a month not ended: nothing to compare before
        unposted = income_unposted(session, month, lease_ids)
        if unposted.leases:
            blockers.append(Blocker("income_unposted", {"leases": unposted.leases, "amount": unposted.amount,
                                                        "more": unposted.more}))
    jobs = session.execute(text(
        "SELECT status::text, count(*) FROM procrastinate_jobs WHERE task_name = :task AND args ->> 'month' = :month "
        "AND status::text = ANY(:open) GROUP BY status"),
        {"task": INCOME_TASK, "month": month_of(month), "open": list(INCOME_OPEN)}).all()
    if jobs:
        blockers.append(Blocker("income_pending", {"jobs": {state: int(n) for state, n in jobs}}))
    return blockers, found


def _balances(totals: _Totals) -> tuple[int, int]:
    """The trial balance's closing totals: the debit balances' sum and the credit balances' (fen)."""
    return sum(max(n, 0) for n in totals.nets.values()), sum(max(-n, 0) for n in totals.nets.values())


def _check(month: date, today: date, totals: _Totals, found: list[LeaseDifference], blockers: list[Blocker]) -> Check:
    shown = tuple({"lease_id": d.lease_id, "account": d.account, "ledger": d.ledger, "schedule": d.schedule}
                  for d in found[:SHOWN_DIFFERENCES])
    return Check(month, today, totals.debit, totals.credit, len(found), shown, tuple(blockers), *_balances(totals),
                 nets=totals.nets)


def check(session: Session, month: date, today: date, *, through: int | None = None) -> Check:
    """The close checks of ``month`` (its first day) at ``today`` (the business date), read in ``session``: the whole
    portfolio. ``through``: the trial balance of the entries up to that id only (the approval's :func:`watermark`,
    from which :func:`recheck` adds what came after)."""
    totals = _Totals.of(_movements(session, last_day(month), through=through))
    blockers, found = _ledger(session, month, today, totals)
    return _check(month, today, totals, found, _order(session, month, today) + blockers)


def recheck(session: Session, month: date, today: date, first: Check, mark: int) -> Check:
    """The checks of ``month`` again after ``first`` (run with nothing blocking, its trial balance through entry
    ``mark``), by what was posted since: the calendar again, the trial balance as ``first``'s plus the entries after
    ``mark``, the lease sub-ledger and the finance income of the leases those entries touch (the others are as
    ``first`` found them), the jobs. Run under the SHARE lock: a few statements, not the portfolio's."""
    if not first.ok:
        raise ValueError("recheck: the first check found blockers")
    if first.total_debit and not first.nets:
        raise ValueError("recheck: the first check's balances are not at hand (one kept, not run)")
    end = last_day(month)
    totals = _Totals.of(_movements(session, end, after=mark), _Totals(first.total_debit, first.total_credit,
                                                                        first.nets))
    touched = sorted(set(session.scalars(
        select(JournalEntryRow.lease_id).where(JournalEntryRow.id > mark, JournalEntryRow.lease_id.is_not(None))))
        | set(session.scalars(select(JournalLineRow.lease_id).where(JournalLineRow.entry_id > mark,
                                                                    JournalLineRow.lease_id.is_not(None)))))
    blockers, found = _ledger(session, month, today, totals, [str(t) for t in touched])
    return _check(month, today, totals, found, _order(session, month, today) + blockers)


@dataclass(frozen=True)
class Unposted:
    """What the month's finance income recognition would still post if it ran now: the leases it would give an entry
    and their fen — of the leases read: ``more`` when the reading stopped at the first batch that found some (others
    may follow)."""

    leases: int
    amount: int
    more: bool = False


def income_unposted(session: Session, month: date, lease_ids: Sequence[str] | None = None, *,
                    batch: int = INCOME_BATCH, whole: bool = False) -> Unposted:
    """What infra/finance_income.py ``recognise_month`` would post for ``month`` (its first day) if it ran now, by its
    own functions (``schedules``, ``recognised``, ``prepaid``, ``month_entry``) on the leases it walks (commenced by the
    month end, a settled one excepted) — of ``lease_ids`` only when given. A lease whose entry of the month is booked
    already would get nothing (``income_key``: the job posts a key once) and its schedule is not read: when the month
    is recognised, only the leases whose schedule was wholly recognised before are. It stops after the first batch
    that finds income to post (``more``: a month never recognised costs one batch's schedules, not the portfolio's)
    unless ``whole``. Read-only, no lock (the job takes the leases' income locks to post)."""
    label, end = month_of(month), last_day(month)
    policy = load_tax_policy()
    leases = amount = 0
    last = ""
    while True:
        query = select(LeaseRow.id).where(LeaseRow.starts_on <= end, LeaseRow.status != SETTLED_LEASE,
                                          LeaseRow.id > last)
        if lease_ids is not None:
            query = query.where(LeaseRow.id == any_of(list(lease_ids)))
        ids = list(session.scalars(query.order_by(LeaseRow.id).limit(batch)))
        if not ids:
            return Unposted(leases, amount)
        if leases and not whole:
            return Unposted(leases, amount, more=True)
        last = ids[-1]
        keys = {income_key(i, label): i for i in ids}
        booked = set(session.scalars(select(JournalEntryRow.key).where(JournalEntryRow.key == any_of(list(keys)))))
        open_ids = [i for key, i in keys.items() if key not in booked]
        if not open_ids:
            continue
        found = list(session.scalars(select(LeaseRow).where(LeaseRow.id == any_of(open_ids))))
        spreads, before, others = (schedules(session, found, policy), recognised(session, open_ids),
                                   prepaid(session, open_ids))
        for lease in found:
            item, _difference = month_entry(lease, spreads[lease.id], label, before.get(lease.id, 0),
                                            others.get(lease.id, ()))
            if item is not None:
                leases, amount = leases + 1, amount + item.total


def _last_check(session: Session, month: date,
                pending: Sequence[CloseRequest]) -> tuple[Check | None, datetime | None, str | None]:
    """The newest checks run for ``month``: those kept with its pending request, or the latest ``books.close_checked``
    audit event (one row by the action's index), whichever is newer; with when and by whom."""
    found: tuple[Check | None, datetime | None, str | None] = (None, None, None)
    for r in pending:
        if r.month == month and r.checks:
            found = (Check.from_dict(r.checks), r.requested_at, r.requested_by_label)
    event = session.scalars(select(AuditEventRow).where(
        AuditEventRow.action == CHECKED, AuditEventRow.target == f"ledger_period:{month_of(month)}")
        .order_by(AuditEventRow.id.desc()).limit(1)).first()
    if event is not None and (found[1] is None or event.at > found[1]):
        found = (Check.from_dict(json.loads(event.details)), event.at, event.actor_label)
    return found


#: the close-check job waiting or running (by procrastinate's partial indexes on its queueing lock and its lock), with
#: the id of its marker
_OPEN_CHECK = text("SELECT status::text, (args ->> 'asked')::bigint FROM procrastinate_jobs "
                   "WHERE task_name = :task AND ((queueing_lock = :task AND status = 'todo') "
                   "OR (lock = :task AND status = 'doing')) ORDER BY id DESC LIMIT 1")


def _marker(session: Session, marker_id: int | None = None) -> AuditEventRow | None:
    """A close check's marker (its ask): ``marker_id``'s, else the newest."""
    query = select(AuditEventRow).where(AuditEventRow.action == CHECK_ASKED)
    if marker_id is not None:
        return session.scalars(query.where(AuditEventRow.id == marker_id)).first()
    return session.scalars(query.order_by(AuditEventRow.id.desc()).limit(1)).first()


def _result_kept(session: Session, marker_id: int) -> bool:
    """Whether the check asked by ``marker_id`` kept its result (a ``books.close_checked`` event naming it)."""
    return session.scalars(select(AuditEventRow.id).where(
        AuditEventRow.action == CHECKED,
        text("CAST(audit_events.details AS jsonb) ->> 'asked' = :asked").bindparams(asked=str(marker_id)))
        .limit(1)).first() is not None


def _open_check(session: Session) -> CheckJob | None:
    """The close check waiting or running, by its job (a job without its marker, deferred by hand: asked now, by
    nobody named)."""
    found = session.execute(_OPEN_CHECK, {"task": CHECK_TASK}).first()
    if found is None:
        return None
    marker = _marker(session, found[1]) if found[1] is not None else None
    if marker is None:
        return CheckJob(found[0], utcnow(), "", 0)
    return CheckJob(found[0], marker.at, marker.actor_label, marker.id)


def _check_job(session: Session, checked_at: datetime | None) -> CheckJob | None:
    """The close check ops asked for that has not given its result: its job waiting or running, else the newest ask
    whose job ended without one (when it is newer than ``checked_at``, the newest findings shown)."""
    under_way = _open_check(session)
    if under_way is not None:
        return under_way
    marker = _marker(session)
    if marker is None or (checked_at is not None and marker.at <= checked_at) or _result_kept(session, marker.id):
        return None
    return CheckJob("ended", marker.at, marker.actor_label, marker.id)


def _request(row: LedgerCloseRequestRow) -> CloseRequest:
    return CloseRequest(row.id, row.month, row.status, row.requested_by, row.requested_by_label, row.requested_at,
                        json.loads(row.checks or "{}"), row.decided_by, row.decided_by_label, row.decided_at)


def _audit(session: Session, action: str, outcome: str, actor_id: str, actor_label: str, month: date,
           details: dict[str, Any], client: tuple[str, str], now: datetime) -> None:
    """The audit event of a step, in the step's transaction (infra/audit.py's table; who, what, from where)."""
    session.add(AuditEventRow(at=now, action=action, outcome=outcome, actor_id=actor_id,
                              actor_label=actor_label[:254], dealer_id=None, target=f"ledger_period:{month_of(month)}",
                              ip=client[0][:64], user_agent=client[1][:255],
                              details=json.dumps(details, ensure_ascii=False)))


class _Raced(Exception):
    """A close check queued by another way while ours was (the jobs page's retry): ours is undone."""

    def __init__(self, job: CheckJob) -> None:
        super().__init__("a close check is under way")
        self.job = job


class MonthClose:
    """The month close's use cases: :meth:`overview`, :meth:`ask_check` (and :meth:`run_check`, its job),
    :meth:`request`, :meth:`approve`, :meth:`withdraw`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def overview(self, *, closed_limit: int = 24, fresh: bool = False) -> Overview:
        """Where the books' periods stand now (one read), the next month with the newest checks run for it (kept with
        its pending request, or run by :meth:`run_check`) — the checks run now when ``fresh`` (the command's) —, and the
        check ops asked for that has not given its result."""
        with self.db.session() as session:
            today = current_business_date(session)
            upcoming = next_to_close(session)
            pending = tuple(_request(r) for r in session.scalars(
                select(LedgerCloseRequestRow).where(LedgerCloseRequestRow.status == PENDING)
                .order_by(LedgerCloseRequestRow.month)))
            periods = list(session.scalars(select(LedgerPeriodRow).order_by(LedgerPeriodRow.month.desc())
                                           .limit(closed_limit)))
            ids = {p.closed_by for p in periods} | {p.approved_by for p in periods}
            names = dict(session.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(ids))).all())
            closed = tuple(ClosedMonth(p.month, p.closed_at, names.get(p.closed_by, p.closed_by),
                                       names.get(p.approved_by, p.approved_by)) for p in periods)
            found, at, by = None, None, None
            if upcoming is not None and fresh:
                found = check(session, upcoming, today)
            elif upcoming is not None:
                found, at, by = _last_check(session, upcoming, pending)
            return Overview(today, last_closed_month(session), upcoming, found, pending, closed, at, by,
                            _check_job(session, at))

    def ask_check(self, *, actor_id: str, actor_label: str, now: datetime,
                  client: tuple[str, str] = ("", "")) -> tuple[bool, CheckJob]:
        """Ask for the next month's checks (ops' "Check now"): the marker (audit ``books.close_check_asked``) and the
        job that runs them (``books.close_check``, :meth:`run_check`) in one transaction, the answer at once. Returns
        (True, the check queued), or (False, the check waiting or running already: none is queued — two clicks at once
        wait for each other on an advisory lock, and procrastinate's queueing lock stands behind it)."""
        try:
            with self.db.transaction() as session:
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": CHECK_TASK})
                under_way = _open_check(session)
                if under_way is not None:
                    return False, under_way
                upcoming = next_to_close(session)
                marker = AuditEventRow(at=now, action=CHECK_ASKED, outcome="success", actor_id=actor_id,
                                       actor_label=actor_label[:254], dealer_id=None,
                                       target=f"ledger_period:{month_of(upcoming) if upcoming else ''}",
                                       ip=client[0][:64], user_agent=client[1][:255], details="{}")
                session.add(marker)
                session.flush()
                defer_jobs(session, [Job(CHECK_TASK, {"asked": marker.id}, CHECK_QUEUE, queueing_lock=CHECK_TASK,
                                         lock=CHECK_TASK)])
                queued = _open_check(session)
                if queued is None or queued.marker != marker.id:  # one queued meanwhile without the lock (a retry)
                    raise _Raced(queued or CheckJob("todo", now, "", 0))
                return True, queued
        except _Raced as raced:  # the marker rolled back with it
            return False, raced.job

    def run_check(self, asked: int) -> Check | None:
        """The ``books.close_check`` job: the next month's checks (the whole portfolio, no lock), their findings kept
        as the month's newest (``books.close_checked``, by whom ``asked`` names: the marker); None when there is no
        month to close. Run again (a retry, its worker died after it kept them), it keeps none a second time."""
        with self.db.session() as session:
            marker = _marker(session, asked)
            if marker is None or _result_kept(session, asked):
                return None
            upcoming = next_to_close(session)
            found = check(session, upcoming, current_business_date(session)) if upcoming is not None else None
        if found is not None:
            with self.db.transaction() as session:
                _audit(session, CHECKED, "success" if found.ok else "failure", marker.actor_id or "",
                       marker.actor_label, found.month, {**found.as_dict(), "asked": asked},
                       (marker.ip, marker.user_agent), utcnow())
        return found

    def _checked(self, found: Check, actor_id: str, actor_label: str, now: datetime,
                 client: tuple[str, str]) -> None:
        """Keep a check's findings as the month's newest (an audit event of its own transaction)."""
        with self.db.transaction() as session:
            _audit(session, CHECKED, "success" if found.ok else "failure", actor_id, actor_label, found.month,
                   found.as_dict(), client, now)

    def request(self, month: date, *, actor_id: str, actor_label: str, now: datetime,
                client: tuple[str, str] = ("", "")) -> CloseRequest:
        """Ask for ``month``'s close (its first day) as ``actor_id``: refused (:class:`CloseRefused`) while a request
        for it waits already (``pending``) or while its checks find a blocker (``blocked``). Two at once: the month's
        advisory lock makes the second wait for the first and find its request (and should a pending row come from
        elsewhere, its unique index's refusal is ``pending`` too, never an error)."""
        try:
            with self.db.transaction() as session:
                # two requests at once: the second waits here, then sees the first's (committed) pending request
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                {"key": f"{REQUEST_LOCK}:{month_of(month)}"})
                waiting = session.scalars(select(LedgerCloseRequestRow).where(
                    LedgerCloseRequestRow.month == month, LedgerCloseRequestRow.status == PENDING)).first()
                if waiting is not None:
                    raise _pending(month, waiting.requested_by_label)
                found = check(session, month, current_business_date(session))
                if not found.ok:
                    raise CloseRefused("blocked", f"{month_of(month)} cannot close yet", found)
                row = LedgerCloseRequestRow(month=month, status=PENDING, requested_by=actor_id,
                                            requested_by_label=actor_label[:254], requested_at=now,
                                            checks=json.dumps(found.as_dict(), ensure_ascii=False))
                session.add(row)
                session.flush()
                _audit(session, "books.close_requested", "success", actor_id, actor_label, month,
                       {"request": row.id, **found.as_dict()}, client, now)
                return _request(row)
        except IntegrityError as exc:
            # a pending request written without the lock (another program, by hand) won the month's unique index
            if PENDING_INDEX not in str(exc.orig):
                raise
            raise _pending(month, "another user") from None
        except CloseRefused as exc:
            if exc.check is not None:  # what blocked it: the month's newest checks
                self._checked(exc.check, actor_id, actor_label, now, client)
            raise

    def approve(self, month: date, request_id: int, *, actor_id: str, actor_label: str, now: datetime,
                client: tuple[str, str] = ("", "")) -> CloseRequest:
        """Approve request ``request_id`` of ``month`` as ``actor_id`` and lock the month: refused to its requester
        (:class:`OwnApproval`, audited ``denied``), when it is not the month's pending request (``gone``), or when the
        checks, run again now, find a blocker (``blocked``; the request stays pending). The checks run without a lock
        from a :func:`watermark`, then what was posted since is checked again under SHARE on ``journal_entries``
        (:func:`recheck`; see the module's docstring)."""
        with self.db.transaction() as session:
            row = session.scalars(select(LedgerCloseRequestRow).where(
                LedgerCloseRequestRow.id == request_id, LedgerCloseRequestRow.month == month)).first()
            if row is None or row.status != PENDING:
                raise CloseRefused("gone", f"no request to close {month_of(month)} waits for approval")
            if row.requested_by == actor_id:
                refusal = OwnApproval("own", f"you asked for the close of {month_of(month)}: another user approves it")
            else:
                refusal = None
        if refusal is not None:  # audited in a transaction of its own: the refusal changes nothing else
            with self.db.transaction() as session:
                _audit(session, "books.close_approved", "denied", actor_id, actor_label, month,
                       {"request": request_id, "reason": "own request"}, client, now)
            raise refusal
        with self.db.transaction() as session:  # the postings in flight commit: every entry up to the mark counts
            session.execute(text(LOCK_JOURNAL))
            mark = watermark(session)
        with self.db.session() as session:
            first = check(session, month, current_business_date(session), through=mark)
        if not first.ok:
            self._checked(first, actor_id, actor_label, now, client)
            raise CloseRefused("blocked", f"{month_of(month)} cannot close now", first)
        try:
            return self._close(month, request_id, first, mark, actor_id=actor_id, actor_label=actor_label, now=now,
                               client=client)
        except CloseRefused as exc:
            if exc.check is not None:
                self._checked(exc.check, actor_id, actor_label, now, client)
            raise

    def _close(self, month: date, request_id: int, first: Check, mark: int, *, actor_id: str, actor_label: str,
               now: datetime, client: tuple[str, str]) -> CloseRequest:
        """The approval's transaction: SHARE on the journal, what was posted after ``mark`` checked, the month
        locked."""
        with self.db.transaction() as session:
            session.execute(text(LOCK_JOURNAL))
            row = session.scalars(select(LedgerCloseRequestRow).where(
                LedgerCloseRequestRow.id == request_id).with_for_update()).one()
            if row.status != PENDING:
                raise CloseRefused("gone", f"no request to close {month_of(month)} waits for approval")
            found = recheck(session, month, current_business_date(session), first, mark)
            if not found.ok:
                raise CloseRefused("blocked", f"{month_of(month)} cannot close now", found)
            session.add(LedgerPeriodRow(month=month, closed_at=now, closed_by=row.requested_by,
                                        approved_by=actor_id))
            row.status, row.decided_by, row.decided_by_label, row.decided_at = (APPROVED, actor_id,
                                                                                actor_label[:254], now)
            session.flush()
            _audit(session, "books.close_approved", "success", actor_id, actor_label, month,
                   {"request": row.id, "requested_by": row.requested_by, **found.as_dict()}, client, now)
            return _request(row)

    def withdraw(self, month: date, request_id: int, *, actor_id: str, actor_label: str, now: datetime,
                 client: tuple[str, str] = ("", "")) -> CloseRequest:
        """Withdraw request ``request_id`` of ``month``: its requester only (``not_yours``), while it is pending."""
        with self.db.transaction() as session:
            row = session.scalars(select(LedgerCloseRequestRow).where(
                LedgerCloseRequestRow.id == request_id, LedgerCloseRequestRow.month == month)
                .with_for_update()).first()
            if row is None or row.status != PENDING:
                raise CloseRefused("gone", f"no request to close {month_of(month)} waits for approval")
            if row.requested_by != actor_id:
                raise CloseRefused("not_yours", "only its requester withdraws a request")
            row.status, row.decided_by, row.decided_by_label, row.decided_at = (WITHDRAWN, actor_id,
                                                                                actor_label[:254], now)
            session.flush()
            _audit(session, "books.close_withdrawn", "success", actor_id, actor_label, month, {"request": row.id},
                   client, now)
            return _request(row)

