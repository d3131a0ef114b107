"""Credit reporting in the database (issue 18 §7, migration 0022): what the daily close of business's hook records in
each batch's transaction — the notice before an overdue report (once per lease and month, a ``servicing.credit_notice``
job each) and, on the first close of a month, the month just ended's report (one row, one ``servicing.credit_report``
job under a queueing lock) — and what the report's task reads (each lease's instalments and movements up to the month
end, its applicant's encrypted answers) and records. The rules are :mod:`servicing.credit_report`'s; the use cases
bff/servicing/credit_reports.py's. Money in integer fen, as infra/servicing.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import time
from typing import Any

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from infra.db.engine import Database
from infra.db.models import ApplicationRow
from infra.db.models import CollectionMandateRow
from infra.db.models import CreditReportNoticeRow
from infra.db.models import CreditReportRow
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingMovementRow
from infra.jobs import Job
from infra.jobs import defer_in
from infra.jobs import defer_jobs
from infra.servicing import ACTIVE
from infra.servicing import LATE
from infra.servicing import PAID
from infra.servicing import SETTLED
from infra.servicing import UNPAID
from infra.servicing import WAIVED
from infra.servicing import BatchEvents
from infra.servicing import any_of
from servicing.arrears import send_at
from servicing.credit_report import InstalmentFacts
from servicing.credit_report import LeaseFacts
from servicing.credit_report import Movement
from servicing.credit_report import Period
from servicing.credit_report import notice_day
from servicing.credit_report import period_ended_by

#: the tasks (bff/worker.py) and their queue
REPORT_TASK, NOTICE_TASK, QUEUE = "servicing.credit_report", "servicing.credit_notice", "servicing"
#: a month's report: ``unavailable`` — the bureau did not answer (it may have received the file: the next try, under
#: the same key, gets its receipt); ``failed`` — it refused the file whole (nothing received)
QUEUED, BUILT, SUBMITTED, FAILED, UNAVAILABLE = "queued", "built", "submitted", "failed", "unavailable"
#: a notice: ``sending`` — claimed by the job texting it (a worker killed meanwhile leaves it so: never texted twice)
SENT, SKIPPED, REFUSED, SENDING = "sent", "skipped", "refused", "sending"
#: leases read per round trip when a month's file is built
CHUNK = 1000
#: instalment states with nothing left to pay (a settlement's replaced rents: ``settled``)
CLOSED_STATES = (PAID, WAIVED, SETTLED)



@dataclass(frozen=True)
class LeaseToReport:
    """A lease's facts for a month's record, with whose it is (the application's encrypted answers hold the name and
    the ID number) and whether its lessee was told of the month's overdue report."""

    lease_id: str
    application_id: str
    draft_enc: str
    customer_name: str
    facts: LeaseFacts
    noticed: bool


@dataclass(frozen=True)
class NoticeDue:
    id: int
    status: str
    period: str
    lease_id: str
    lease_active: bool
    dealer_id: str
    application_id: str
    overdue_now: int
    language: str


@dataclass(frozen=True)
class Report:
    period: str
    as_of: date
    status: str
    record_count: int
    status_counts: dict[str, int]
    withheld: int
    file_sha256: str | None
    batch_no: str | None
    accepted: int
    rejected: int
    errors: list[dict[str, str]]
    detail: str
    attempts: int
    created_at: datetime
    submitted_at: datetime | None


@dataclass(frozen=True)
class NoticeLine:
    lease_id: str
    contract_number: str
    customer_name: str
    business_date: date
    overdue_amount: int
    status: str
    detail: str
    sent_at: datetime | None


def _report(row: CreditReportRow) -> Report:
    return Report(row.period, row.as_of, row.status, row.record_count, json.loads(row.status_counts or "{}"),
                  row.withheld, row.file_sha256, row.batch_no, row.accepted, row.rejected,
                  json.loads(row.errors or "[]"), row.detail, row.attempts, row.created_at, row.submitted_at)


class SqlCreditReports:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the close of business's hook (in the batch's transaction) ------------------------------------------------
    def on_close(self, events: BatchEvents, window: tuple[time, time], now: datetime) -> None:
        """In ``events.session``: on a period's notice day, the notices of the batch's leases with a rent overdue
        (once per lease and period); on the first close of a month, the month just ended's report (once)."""
        session, day = events.session, events.business_date
        period = Period.of(day)
        if events.lease_ids and day == notice_day(period):
            late = session.execute(
                select(InstalmentRow.lease_id, func.sum(UNPAID)).where(
                    InstalmentRow.lease_id == any_of(list(events.lease_ids)), LATE, InstalmentRow.overdue_since <= day)
                .group_by(InstalmentRow.lease_id).order_by(InstalmentRow.lease_id)).all()
            if late:
                created = session.execute(insert(CreditReportNoticeRow).values([
                    {"lease_id": lease_id, "period": str(period), "business_date": day, "overdue_amount": int(amount),
                     "status": QUEUED, "detail": "", "created_at": now} for lease_id, amount in late])
                    .on_conflict_do_nothing(index_elements=["lease_id", "period"])
                    .returning(CreditReportNoticeRow.id)).scalars().all()
                at = send_at(now, *window)  # the batch's notices deferred by one statement
                defer_jobs(session, [Job(NOTICE_TASK, {"notice_id": notice_id}, QUEUE, at=at)
                                     for notice_id in sorted(created)])
        ended = period_ended_by(day)
        if ended is not None:
            self._ask(session, ended, now)
        self._again(session, period)

    def _again(self, session: Any, before: Period) -> int:
        """Every month before ``before`` whose report is not submitted — the bureau away longer than the worker's
        retries, a crash — deferred again (under its queueing lock: none while a job of the month waits or runs), so
        each close tries it until it is submitted. The number deferred."""
        months = session.execute(text(
            "SELECT c.period FROM credit_reports c WHERE c.status <> :submitted AND c.period < :before "
            "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.queueing_lock = :task || ':' || c.period "
            "AND j.status = 'todo') "  # procrastinate's unique index of the waiting jobs' queueing locks
            "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.queueing_lock = :task || ':' || c.period "
            "AND j.status = 'doing') ORDER BY c.period"),  # the running jobs: a handful
            {"submitted": SUBMITTED, "before": str(before), "task": REPORT_TASK}).scalars().all()
        return defer_jobs(session, [Job(REPORT_TASK, {"period": month}, QUEUE, queueing_lock=f"{REPORT_TASK}:{month}")
                                    for month in months]) if months else 0

    def _ask(self, session: Any, period: Period, now: datetime) -> bool:
        """The report of ``period`` asked for once: its row and its job (False: asked before)."""
        made = session.execute(insert(CreditReportRow).values(
            period=str(period), as_of=period.last, status=QUEUED, created_at=now)
            .on_conflict_do_nothing(index_elements=["period"]).returning(CreditReportRow.period)).scalar_one_or_none()
        if made is not None:
            defer_in(session, REPORT_TASK, {"period": str(period)}, queue=QUEUE,
                     queueing_lock=f"{REPORT_TASK}:{period}")
        return made is not None

    # -- the notice's task ------------------------------------------------------------------------------------------
    def notice(self, notice_id: int) -> NoticeDue | None:
        with self.db.session() as session:
            found = session.execute(select(CreditReportNoticeRow, LeaseRow)
                                    .join(LeaseRow, LeaseRow.id == CreditReportNoticeRow.lease_id)
                                    .where(CreditReportNoticeRow.id == notice_id)).one_or_none()
            if found is None:
                return None
            notice, lease = found
            overdue = session.execute(select(func.coalesce(func.sum(UNPAID), 0)).where(
                InstalmentRow.lease_id == lease.id, LATE)).scalar_one()
            language = session.execute(
                select(CollectionMandateRow.language).where(CollectionMandateRow.application_id == lease.application_id)
                .order_by(CollectionMandateRow.created_at.desc()).limit(1)).scalar_one_or_none()
            return NoticeDue(notice.id, notice.status, notice.period, lease.id, lease.status == ACTIVE,
                             lease.dealer_id, lease.application_id, int(overdue), language or "zh")

    def claim_notice(self, notice_id: int) -> bool:
        """Whether this caller is the one to text the notice (``queued`` → ``sending``, once)."""
        with self.db.session() as session:
            return session.execute(update(CreditReportNoticeRow).where(
                CreditReportNoticeRow.id == notice_id, CreditReportNoticeRow.status == QUEUED).values(
                status=SENDING).returning(CreditReportNoticeRow.id)).scalar_one_or_none() is not None

    def release_notice(self, notice_id: int) -> None:
        """The text could not be sent: queued again, for the job's retry."""
        with self.db.session() as session:
            session.execute(update(CreditReportNoticeRow).where(
                CreditReportNoticeRow.id == notice_id, CreditReportNoticeRow.status == SENDING).values(status=QUEUED))

    def finish_notice(self, notice_id: int, status: str, detail: str, now: datetime) -> bool:
        """Record what became of a queued (or claimed) notice; False when it was neither any more."""
        with self.db.session() as session:
            done = session.execute(update(CreditReportNoticeRow).where(
                CreditReportNoticeRow.id == notice_id, CreditReportNoticeRow.status.in_((QUEUED, SENDING))).values(
                status=status, detail=detail[:255], sent_at=now if status == SENT else None))
            return bool(getattr(done, "rowcount", 0))

    # -- the report's task ------------------------------------------------------------------------------------------
    def ask(self, period: Period, now: datetime) -> None:
        """The report of ``period``'s row, made when missing (by hand: ``leaseline servicing credit-report``), without
        a job (the caller runs it)."""
        with self.db.session() as session:
            session.execute(insert(CreditReportRow).values(
                period=str(period), as_of=period.last, status=QUEUED, created_at=now)
                .on_conflict_do_nothing(index_elements=["period"]))

    def report(self, period: str) -> Report | None:
        with self.db.session() as session:
            row = session.get(CreditReportRow, period)
            return _report(row) if row is not None else None

    def reports(self, limit: int = 60) -> list[Report]:
        with self.db.session() as session:
            return [_report(r) for r in session.scalars(select(CreditReportRow)
                                                        .order_by(CreditReportRow.period.desc()).limit(limit))]

    def leases(self, period: Period, chunk: int = CHUNK) -> Iterator[list[LeaseToReport]]:
        """The leases a record of ``period`` may be due for — started by its last day, and in force at its start or
        closed (settled, ended) in it or later — ``chunk`` at a time in id order, with their instalments and the
        movements dated up to the month's last day."""
        first, last = period.first, period.last
        # the day a lease closed: settled early (its settlement day), else ended by its end of term (the day the close
        # ended it, which may be months after the term's end: infra/end_of_term.py), else the term's end
        closed_on = func.coalesce(LeaseRow.settled_on, EndOfTermRow.ended_on, LeaseRow.ends_on)
        after = ""
        while True:
            with self.db.session() as session:
                rows = session.execute(
                    select(LeaseRow, ApplicationRow.draft_enc, ApplicationRow.customer_name, closed_on)
                    .join(ApplicationRow, ApplicationRow.id == LeaseRow.application_id)
                    .outerjoin(EndOfTermRow, EndOfTermRow.lease_id == LeaseRow.id)
                    .where(LeaseRow.starts_on <= last, LeaseRow.id > after,
                           or_(LeaseRow.status == ACTIVE, closed_on >= first))
                    .order_by(LeaseRow.id).limit(chunk)).all()
                if not rows:
                    return
                ids = [lease.id for lease, _, _, _ in rows]
                noticed = set(session.scalars(select(CreditReportNoticeRow.lease_id).where(
                    CreditReportNoticeRow.lease_id.in_(ids), CreditReportNoticeRow.period == str(period),
                    CreditReportNoticeRow.status == SENT)))
                moves: dict[int, list[Movement]] = {}
                own: dict[str, list[Movement]] = {}
                for m in session.scalars(select(ServicingMovementRow).where(
                        ServicingMovementRow.lease_id.in_(ids), ServicingMovementRow.value_date <= last)):
                    move = Movement(m.value_date, m.kind, m.principal, m.interest, m.penalty)
                    if m.instalment_id is not None:
                        moves.setdefault(m.instalment_id, []).append(move)
                    else:
                        own.setdefault(m.lease_id, []).append(move)
                moved = dict(session.execute(
                    select(ServicingMovementRow.instalment_id,
                           func.sum(ServicingMovementRow.principal + ServicingMovementRow.interest))
                    .where(ServicingMovementRow.lease_id.in_(ids), ServicingMovementRow.instalment_id.is_not(None))
                    .group_by(ServicingMovementRow.instalment_id)).all())
                rents: dict[str, list[InstalmentFacts]] = {}
                for i in session.scalars(select(InstalmentRow).where(InstalmentRow.lease_id.in_(ids))
                                         .order_by(InstalmentRow.lease_id, InstalmentRow.number)):
                    listed = moves.get(i.id, [])
                    # what is no longer owed without a movement of its own (a settlement's interest not yet due, kept
                    # in ``waived``): the movements' unpaid rent beyond the instalment's, dated when it was closed
                    owed = 0 if i.state in CLOSED_STATES else max(0, i.amount - i.paid_principal - i.paid_interest)
                    gap = i.amount + int(moved.get(i.id) or 0) - owed
                    on = i.settled_on or i.due_on
                    if gap > 0 and on <= last:
                        listed = [*listed, Movement(on, "waiver", 0, -gap, 0)]
                    rents.setdefault(i.lease_id, []).append(InstalmentFacts(
                        i.number, i.due_on, i.amount, i.principal, i.overdue_since, tuple(listed)))
            yield [LeaseToReport(
                lease.id, lease.application_id, draft_enc or "", name or "",
                LeaseFacts(lease.contract_number, lease.starts_on, lease.ends_on, lease.financed_amount, lease.status,
                           None if lease.status == ACTIVE else closed,
                           tuple(rents.get(lease.id, ())), tuple(own.get(lease.id, ()))), lease.id in noticed)
                for lease, draft_enc, name, closed in rows]
            after = ids[-1]

    def begin(self, period: str) -> Report | None:
        """Count an attempt at ``period``'s report (None: no such report)."""
        with self.db.session() as session:
            row = session.get(CreditReportRow, period, with_for_update=True)
            if row is None:
                return None
            if row.status != SUBMITTED:
                row.attempts += 1
            session.flush()
            return _report(row)

    def record_built(self, period: str, record_count: int, status_counts: dict[str, int], withheld: int, sha256: str,
                     now: datetime) -> None:
        """The file about to be submitted. After a try the bureau may have received (``built``: stopped before its
        answer; ``unavailable``), the first build's hash and counts are kept: the bureau answers the same key with the
        receipt of the file it received first, whatever this build holds; after a file refused whole, this one's."""
        kept = and_(CreditReportRow.status.in_((BUILT, UNAVAILABLE)), CreditReportRow.file_sha256.is_not(None))

        def first(column: Any, value: Any) -> Any:
            return case((kept, column), else_=value)

        with self.db.session() as session:
            session.execute(update(CreditReportRow).where(
                CreditReportRow.period == period, CreditReportRow.status != SUBMITTED).values(
                status=BUILT, record_count=first(CreditReportRow.record_count, record_count),
                status_counts=first(CreditReportRow.status_counts, json.dumps(status_counts, sort_keys=True)),
                withheld=first(CreditReportRow.withheld, withheld),
                file_sha256=first(CreditReportRow.file_sha256, sha256), built_at=first(CreditReportRow.built_at, now),
                detail=""))

    def record_submitted(self, period: str, batch_no: str, accepted: int, errors: Sequence[dict[str, str]],
                         now: datetime) -> bool:
        """The bureau's receipt, once (False: recorded before)."""
        with self.db.session() as session:
            done = session.execute(update(CreditReportRow).where(
                CreditReportRow.period == period, CreditReportRow.status != SUBMITTED).values(
                status=SUBMITTED, batch_no=batch_no[:64], accepted=accepted, rejected=len(errors),
                errors=json.dumps(list(errors), ensure_ascii=False), submitted_at=now, detail=""))
            return bool(getattr(done, "rowcount", 0))

    def record_failed(self, period: str, detail: str) -> None:
        """The bureau refused the file whole."""
        with self.db.session() as session:
            session.execute(update(CreditReportRow).where(
                CreditReportRow.period == period, CreditReportRow.status != SUBMITTED).values(
                status=FAILED, detail=detail[:255]))

    def record_unavailable(self, period: str, detail: str) -> None:
        """The bureau did not answer: the month stays unreported, and says why (ops' page), until a try is answered."""
        with self.db.session() as session:
            session.execute(update(CreditReportRow).where(
                CreditReportRow.period == period, CreditReportRow.status != SUBMITTED).values(
                status=UNAVAILABLE, detail=detail[:255]))

    def notices(self, period: str, limit: int = 500) -> list[NoticeLine]:
        """The notices of ``period`` (the customers' names as the application shows them: the page masks them)."""
        with self.db.session() as session:
            return [NoticeLine(n.lease_id, number, name or "", n.business_date, n.overdue_amount, n.status, n.detail,
                               n.sent_at)
                    for n, number, name in session.execute(
                        select(CreditReportNoticeRow, LeaseRow.contract_number, ApplicationRow.customer_name)
                        .join(LeaseRow, LeaseRow.id == CreditReportNoticeRow.lease_id)
                        .join(ApplicationRow, ApplicationRow.id == LeaseRow.application_id)
                        .where(CreditReportNoticeRow.period == period)
                        .order_by(CreditReportNoticeRow.id).limit(limit))]
