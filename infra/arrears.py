"""Arrears in the database (issue 18 §4, migration 0019): what the daily close of business's hook records in each
batch's transaction — the reminders it defers (one ``servicing.remind`` job each, once per lease, instalment and kind),
each lease's days past due and bucket, the M3 flag for the collateral team — and what the collections queue reads and
writes (ops' notes, outcomes and promise-to-pay dates). The rules (buckets, which rents are texted when) are
:mod:`servicing.arrears`'s; the use cases bff/servicing/arrears.py's. Money in integer fen, as infra/servicing.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from infra.db.engine import Database
from infra.db.models import ApplicationRow
from infra.db.models import ArrearsLogRow
from infra.db.models import CollateralFlagRow
from infra.db.models import CollectionMandateRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseArrearsRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingReminderRow
from infra.jobs import Job
from infra.jobs import defer_jobs
from infra.servicing import ACTIVE
from infra.servicing import DUE
from infra.servicing import LATE
from infra.servicing import PARTLY_PAID
from infra.servicing import PENDING
from infra.servicing import UNPAID
from infra.servicing import BatchEvents
from infra.servicing import any_of
from plans.policy import ReminderPolicy
from servicing.arrears import M3
from servicing.arrears import bucket
from servicing.arrears import days_past_due
from servicing.arrears import due_date_reminded
from servicing.arrears import overdue_kind
from servicing.arrears import overdue_since_reminded
from servicing.arrears import send_at

BEFORE_DUE = "before_due"
QUEUED, SENT, SKIPPED, REFUSED = "queued", "sent", "skipped", "refused"
#: the task that sends one reminder (bff/worker.py), and its queue
REMIND_TASK, REMIND_QUEUE = "servicing.remind", "servicing"
#: arrears_log kinds: what ops recorded, a bucket the close saw the lease enter (or leave: bucket NULL), the M3 flag
CONTACT, BUCKET, FLAG = "contact", "bucket", "flag"



@dataclass(frozen=True)
class ReminderDue:
    """A reminder to send, with what the text says as the database has it now."""

    id: int
    kind: str
    status: str
    business_date: date
    lease_id: str
    lease_active: bool
    dealer_id: str
    application_id: str
    number: int
    final_rent: bool
    state: str
    due_on: date
    overdue_since: date | None
    unpaid: int
    penalty: int
    language: str


@dataclass(frozen=True)
class QueueLine:
    """A lease in arrears on the collections queue."""

    lease_id: str
    application_id: str
    dealer_id: str
    contract_number: str
    customer_name: str
    mobile_masked: str
    as_of: date
    days_past_due: int
    bucket: str
    overdue_amount: int
    penalty_amount: int
    instalments_overdue: int
    flagged_at: datetime | None
    last_outcome: str | None
    last_contact_at: datetime | None
    promise_date: date | None


@dataclass(frozen=True)
class Arrears:
    """A lease's arrears as its last close of business (``as_of``) saw them: days past due (its oldest overdue rent's
    first overdue day is day 1), the bucket and since when, the rents overdue, what is unpaid of them and of their
    late charges, in fen."""

    as_of: date
    days_past_due: int
    bucket: str
    bucket_since: date
    instalments_overdue: int
    overdue_amount: int
    penalty_amount: int


@dataclass(frozen=True)
class LateInstalment:
    number: int
    final_rent: bool
    due_on: date
    overdue_since: date
    unpaid: int
    penalty: int


@dataclass(frozen=True)
class LogEntry:
    kind: str
    business_date: date
    at: datetime
    actor_label: str
    outcome: str | None
    note: str
    promise_date: date | None
    bucket: str | None


@dataclass(frozen=True)
class ReminderEntry:
    kind: str
    number: int
    final_rent: bool
    business_date: date
    status: str
    detail: str
    sent_at: datetime | None


@dataclass(frozen=True)
class Case:
    """One lease's collections page: the lease, its customer (the mobile masked), its arrears now (None: not in
    arrears), its late rents, the flag, the history and the reminders."""

    lease_id: str
    application_id: str
    dealer_id: str
    contract_number: str
    customer_name: str
    mobile_masked: str
    monthly_payment: int
    arrears: Arrears | None
    flagged_at: datetime | None
    late: tuple[LateInstalment, ...]
    log: tuple[LogEntry, ...]
    reminders: tuple[ReminderEntry, ...]


#: what a lease owes of late charges now (a correlated subquery on ``LeaseArrearsRow.lease_id``)
_LATE_CHARGES = (select(func.coalesce(func.sum(InstalmentRow.penalty_accrued - InstalmentRow.paid_penalty), 0))
                 .where(InstalmentRow.lease_id == LeaseArrearsRow.lease_id,
                        InstalmentRow.penalty_accrued > InstalmentRow.paid_penalty)
                 .correlate(LeaseArrearsRow).scalar_subquery())


def arrears_of(row: LeaseArrearsRow | None, closed_through: date | None, late_charges: int) -> Arrears | None:
    """A lease's arrears row read as of its last close (``closed_through``): the days past due on that date, with
    the late charges it owes."""
    if row is None or closed_through is None:
        return None
    return Arrears(closed_through, days_past_due(row.oldest_overdue_since, closed_through), row.bucket,
                   row.bucket_since, row.instalments_overdue, row.overdue_amount, late_charges)


class SqlArrears:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the close of business's hook (in the batch's transaction) ------------------------------------------------
    def on_close(self, events: BatchEvents, policy: ReminderPolicy, now: datetime) -> None:
        """Defer the batch's reminders and update its leases' arrears, in ``events.session`` (the batch's
        transaction: nothing of it stays when the batch fails; a date closed again runs no batch)."""
        if not events.lease_ids:
            return
        self._defer_reminders(events, policy, now)
        self._update_arrears(events, now)

    def _defer_reminders(self, events: BatchEvents, policy: ReminderPolicy, now: datetime) -> None:
        session, day, ids = events.session, events.business_date, list(events.lease_ids)
        wanted: dict[tuple[str, int], str] = {}
        if policy.before_due_days:
            for lease_id, inst_id in session.execute(select(InstalmentRow.lease_id, InstalmentRow.id).where(
                    InstalmentRow.lease_id == any_of(ids), InstalmentRow.due_on == due_date_reminded(day,
                                                                                               policy.before_due_days),
                    InstalmentRow.state.in_((PENDING, DUE, PARTLY_PAID)), UNPAID > 0)):
                wanted[(lease_id, inst_id)] = BEFORE_DUE
        overdue: dict[tuple[str, int], int] = {}
        if policy.after_overdue_days:
            first, last = min(policy.after_overdue_days), max(policy.after_overdue_days)
            for n in policy.after_overdue_days:
                on_its_day = InstalmentRow.overdue_since == overdue_since_reminded(day, n)
                if n == first and events.became_overdue:
                    # marked overdue late (a first close after a gap): its first text now, unless past the last one's
                    on_its_day = or_(on_its_day, and_(InstalmentRow.id.in_(events.became_overdue),
                                                      InstalmentRow.overdue_since >= overdue_since_reminded(day, last)))
                for lease_id, inst_id in session.execute(select(InstalmentRow.lease_id, InstalmentRow.id).where(
                        InstalmentRow.lease_id == any_of(ids), LATE, on_its_day)):
                    overdue[(lease_id, inst_id)] = max(n, overdue.get((lease_id, inst_id), 0))  # one text a day
        wanted.update({key: overdue_kind(n) for key, n in overdue.items()})
        if not wanted:
            return
        created = session.execute(insert(ServicingReminderRow).values([
            {"lease_id": lease_id, "instalment_id": inst_id, "kind": kind, "business_date": day, "status": QUEUED,
             "detail": "", "created_at": now} for (lease_id, inst_id), kind in sorted(wanted.items())])
            .on_conflict_do_nothing(index_elements=["lease_id", "instalment_id", "kind"])
            .returning(ServicingReminderRow.id)).scalars().all()
        at = send_at(now, policy.send_from, policy.send_until)
        defer_jobs(session, [Job(REMIND_TASK, {"reminder_id": reminder_id}, REMIND_QUEUE, at=at)
                             for reminder_id in sorted(created)])  # one statement for the batch

    def _update_arrears(self, events: BatchEvents, now: datetime) -> None:
        """The batch's leases' arrears rows, set-based and written only where they changed (a lease entered arrears
        or left it, changed bucket, or what is overdue changed): one upsert, one insert of the M3 flags (each lease
        flagged once, when it enters M3), one of the log lines, one delete for the leases out of arrears. The days
        past due and late charges, which change every day, are not stored (:func:`arrears_of`)."""
        session, day, ids = events.session, events.business_date, list(events.lease_ids)
        found = session.execute(
            select(InstalmentRow.lease_id, func.min(InstalmentRow.overdue_since), func.count(),
                   func.sum(UNPAID), LeaseRow.dealer_id)
            .join(LeaseRow, LeaseRow.id == InstalmentRow.lease_id)
            .where(InstalmentRow.lease_id == any_of(ids), LATE).group_by(InstalmentRow.lease_id, LeaseRow.dealer_id)
            .order_by(InstalmentRow.lease_id)).all()
        known = {lease_id: (dealer, was, since, oldest, count, amount)
                 for lease_id, dealer, was, since, oldest, count, amount in session.execute(
                     select(LeaseArrearsRow.lease_id, LeaseArrearsRow.dealer_id, LeaseArrearsRow.bucket,
                            LeaseArrearsRow.bucket_since, LeaseArrearsRow.oldest_overdue_since,
                            LeaseArrearsRow.instalments_overdue, LeaseArrearsRow.overdue_amount)
                     .where(LeaseArrearsRow.lease_id == any_of(ids)))}
        rows: list[dict[str, object]] = []
        log: list[dict[str, object]] = []
        flags: list[dict[str, object]] = []
        for lease_id, since, count, unpaid, dealer_id in found:
            dpd = days_past_due(since, day) if since is not None else 0
            now_in = bucket(dpd)
            if since is None or now_in is None:
                continue
            was = known.pop(lease_id, None)
            bucket_since = day if was is None or was[1] != now_in else was[2]
            if was is None or was[1] != now_in:
                log.append({"lease_id": lease_id, "kind": BUCKET, "bucket": now_in})
                if now_in == M3:
                    flags.append({"lease_id": lease_id, "dealer_id": dealer_id, "flagged_on": day, "flagged_at": now,
                                  "days_past_due": dpd})
            state = (dealer_id, now_in, bucket_since, since, int(count), int(unpaid))
            if state != was:
                rows.append({"lease_id": lease_id, "dealer_id": dealer_id, "bucket": now_in,
                             "bucket_since": bucket_since, "oldest_overdue_since": since,
                             "instalments_overdue": int(count), "overdue_amount": int(unpaid), "updated_at": now})
        if rows:
            upsert = insert(LeaseArrearsRow)  # executemany: SQLAlchemy sends the rows a thousand a statement
            session.execute(upsert.on_conflict_do_update(index_elements=["lease_id"], set_={
                name: upsert.excluded[name] for name in rows[0] if name != "lease_id"}), rows)
        if flags:
            flagged = session.execute(insert(CollateralFlagRow).on_conflict_do_nothing(index_elements=["lease_id"])
                                      .returning(CollateralFlagRow.lease_id), flags).scalars().all()
            log.extend({"lease_id": lease_id, "kind": FLAG, "bucket": M3} for lease_id in sorted(flagged))
        if known:  # out of arrears: paid (or waived) since the last close
            session.execute(delete(LeaseArrearsRow).where(LeaseArrearsRow.lease_id == any_of(sorted(known))))
            log.extend({"lease_id": lease_id, "kind": BUCKET, "bucket": None} for lease_id in sorted(known))
        if log:
            session.execute(insert(ArrearsLogRow), [
                {**line, "business_date": day, "at": now, "actor_label": "", "note": ""} for line in log])

    # -- the reminder's task ------------------------------------------------------------------------------------
    def reminder(self, reminder_id: int) -> ReminderDue | None:
        """A reminder with the figures its text states, as they are now (None: no such reminder)."""
        with self.db.session() as session:
            row = session.execute(
                select(ServicingReminderRow, InstalmentRow, LeaseRow)
                .join(InstalmentRow, InstalmentRow.id == ServicingReminderRow.instalment_id)
                .join(LeaseRow, LeaseRow.id == ServicingReminderRow.lease_id)
                .where(ServicingReminderRow.id == reminder_id)).one_or_none()
            if row is None:
                return None
            reminder, inst, lease = row
            language = session.execute(
                select(CollectionMandateRow.language).where(CollectionMandateRow.application_id == lease.application_id)
                .order_by(CollectionMandateRow.created_at.desc()).limit(1)).scalar_one_or_none()
            return ReminderDue(
                reminder.id, reminder.kind, reminder.status, reminder.business_date, lease.id, lease.status == ACTIVE,
                lease.dealer_id, lease.application_id, inst.number, inst.kind == "final_rent", inst.state, inst.due_on,
                inst.overdue_since, max(0, inst.amount - inst.paid_principal - inst.paid_interest),
                max(0, inst.penalty_accrued - inst.paid_penalty), language or "zh")

    def finish_reminder(self, reminder_id: int, status: str, detail: str, now: datetime) -> bool:
        """Record what became of a queued reminder (sent, skipped, refused); False when it was not queued any more."""
        with self.db.session() as session:
            done = session.execute(update(ServicingReminderRow).where(
                ServicingReminderRow.id == reminder_id, ServicingReminderRow.status == QUEUED).values(
                status=status, detail=detail[:255], sent_at=now if status == SENT else None))
            return bool(getattr(done, "rowcount", 0))

    # -- the collections queue ------------------------------------------------------------------------------------
    def queue(self, dealer_id: str | None, buckets: Sequence[str] = (), limit: int = 200) -> list[QueueLine]:
        """The active leases in arrears (of ``dealer_id``; None: every dealer's), the gravest bucket first, then the
        largest amount overdue."""
        last = (select(func.max(ArrearsLogRow.id).label("id")).where(ArrearsLogRow.kind == CONTACT)
                .group_by(ArrearsLogRow.lease_id).subquery())
        latest = (select(ArrearsLogRow.lease_id, ArrearsLogRow.outcome, ArrearsLogRow.at, ArrearsLogRow.promise_date)
                  .join(last, last.c.id == ArrearsLogRow.id).subquery())
        gravity = case((LeaseArrearsRow.bucket == "M3", 3), (LeaseArrearsRow.bucket == "M2", 2), else_=1)
        stmt = (select(LeaseArrearsRow, LeaseRow.application_id, LeaseRow.contract_number, LeaseRow.closed_through,
                       _LATE_CHARGES, ApplicationRow.customer_name, ApplicationRow.mobile_masked,
                       CollateralFlagRow.flagged_at, latest.c.outcome, latest.c.at, latest.c.promise_date)
                .join(LeaseRow, LeaseRow.id == LeaseArrearsRow.lease_id)
                .join(ApplicationRow, ApplicationRow.id == LeaseRow.application_id)
                .outerjoin(CollateralFlagRow, CollateralFlagRow.lease_id == LeaseArrearsRow.lease_id)
                .outerjoin(latest, latest.c.lease_id == LeaseArrearsRow.lease_id)
                .where(LeaseRow.status == ACTIVE)
                .order_by(gravity.desc(), LeaseArrearsRow.overdue_amount.desc(), LeaseArrearsRow.lease_id)
                .limit(limit))
        if dealer_id is not None:
            stmt = stmt.where(LeaseArrearsRow.dealer_id == dealer_id)
        if buckets:
            stmt = stmt.where(LeaseArrearsRow.bucket.in_(list(buckets)))
        with self.db.session() as session:
            return [QueueLine(a.lease_id, app_id, a.dealer_id, number, name or "", masked or "", closed,
                              days_past_due(a.oldest_overdue_since, closed), a.bucket, a.overdue_amount, int(charges),
                              a.instalments_overdue, flagged, outcome, at, promise)
                    for a, app_id, number, closed, charges, name, masked, flagged, outcome, at, promise
                    in session.execute(stmt)]

    def case(self, lease_id: str, dealer_id: str | None) -> Case | None:
        """One lease's collections page (None: no such lease, or another dealer's than ``dealer_id``)."""
        if len(lease_id) > 36:  # an id names its row exactly, never the one its first 36 characters name
            return None
        with self.db.session() as session:
            found = session.execute(select(LeaseRow, ApplicationRow.customer_name, ApplicationRow.mobile_masked)
                                    .join(ApplicationRow, ApplicationRow.id == LeaseRow.application_id)
                                    .where(LeaseRow.id == lease_id)).one_or_none()
            if found is None or (dealer_id is not None and found[0].dealer_id != dealer_id):
                return None
            lease, name, masked = found
            late = tuple(LateInstalment(i.number, i.kind == "final_rent", i.due_on, i.overdue_since or i.due_on,
                                        i.amount - i.paid_principal - i.paid_interest,
                                        max(0, i.penalty_accrued - i.paid_penalty))
                         for i in session.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease.id, LATE)
                                                  .order_by(InstalmentRow.number)))
            log = tuple(LogEntry(r.kind, r.business_date, r.at, r.actor_label, r.outcome, r.note, r.promise_date,
                                 r.bucket)
                        for r in session.scalars(select(ArrearsLogRow).where(ArrearsLogRow.lease_id == lease.id)
                                                 .order_by(ArrearsLogRow.id.desc()).limit(200)))
            reminders = tuple(ReminderEntry(r.kind, number, kind == "final_rent", r.business_date, r.status, r.detail,
                                            r.sent_at)
                              for r, number, kind in session.execute(
                                  select(ServicingReminderRow, InstalmentRow.number, InstalmentRow.kind)
                                  .join(InstalmentRow, InstalmentRow.id == ServicingReminderRow.instalment_id)
                                  .where(ServicingReminderRow.lease_id == lease.id)
                                  .order_by(ServicingReminderRow.id.desc()).limit(100)))
            charges = session.execute(select(func.coalesce(func.sum(
                InstalmentRow.penalty_accrued - InstalmentRow.paid_penalty), 0)).where(
                InstalmentRow.lease_id == lease.id, InstalmentRow.penalty_accrued > InstalmentRow.paid_penalty))
            return Case(lease.id, lease.application_id, lease.dealer_id, lease.contract_number, name or "",
                        masked or "", lease.monthly_payment,
                        arrears_of(session.get(LeaseArrearsRow, lease.id), lease.closed_through,
                                   int(charges.scalar_one())),
                        session.execute(select(CollateralFlagRow.flagged_at)
                                        .where(CollateralFlagRow.lease_id == lease.id)).scalar_one_or_none(),
                        late, log, reminders)

    def record_contact(self, lease_id: str, business_date: date, at: datetime, actor_id: str, actor_label: str,
                       outcome: str, note: str, promise_date: date | None) -> None:
        """What ops recorded of a contact with the customer (checked by the caller)."""
        with self.db.session() as session:
            session.add(ArrearsLogRow(lease_id=lease_id, kind=CONTACT, business_date=business_date, at=at,
                                      actor_id=actor_id, actor_label=actor_label[:128], outcome=outcome, note=note,
                                      promise_date=promise_date, bucket=None))
