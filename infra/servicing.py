"""The lease in force in the database (issue 18 §0–§2): the lease and its instalments created with the signed handover
record, the business date every process reads, the business calendar ops load, and the daily close of business's
batches. The maths is :mod:`servicing`'s (pure); the use case that drives a close is bff/servicing/close.py.

Money is integer fen here. A movement's amounts are signed changes of what the instalment owes: + a late charge
accrued, − a payment (or the rent paid at signing, a waiver). What was left unpaid of a rent at the end of a day is
its amount plus the principal and interest of its movements dated that day or before: the day's late charge runs on
it (a payment counts for the day it is made on, in part as in full).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import any_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from books import lease as books_lease
from books.lease import Scheduled
from books.lease import structure_of
from infra.books import post
from infra.db.engine import Database
from infra.db.models import BusinessCalendarRow
from infra.db.models import BusinessDateRow
from infra.db.models import CloseRunRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingMovementRow
from infra.invoicing import rents_paid
from infra.vat_points import LeaseOfBatch
from infra.vat_points import commencement_vat
from infra.vat_points import falling_due
from infra.vat_points import lease_structure
from infra.vat_points import paid_ahead
from plans.timeline import timeline
from servicing.calendar import BusinessCalendar
from servicing.calendar import CalendarDay
from servicing.calendar import calendar_of
from servicing.penalty import PenaltyTerms
from servicing.penalty import penalty_between

PENDING, DUE, PARTLY_PAID, PAID, OVERDUE, WAIVED = "pending", "due", "partly_paid", "paid", "overdue", "waived"
#: an instalment an early settlement replaced (infra/settlements.py): its principal repaid by the settlement, its
#: interest not yet paid no longer owed (``waived``); nothing is left to pay of it
SETTLED = "settled"
#: a rent a partial prepayment's shorter term no longer needs (infra/prepayments.py): kept, never deleted (a collection
#: attempt, a reminder or a movement may name it), its amounts zeroed and its number negated (the final rent takes the
#: number); nothing is owed of it, and it is in none of the states a close, a collection or a reminder looks at
CANCELLED = "cancelled"
STATES = (PENDING, DUE, PARTLY_PAID, PAID, OVERDUE, WAIVED, SETTLED, CANCELLED)
#: the states of an instalment with something left to pay
OPEN = (DUE, PARTLY_PAID, OVERDUE)
#: what is left to pay of an instalment's rent (fen), and the instalments still unpaid after their last day — what
#: makes a lease past due (arrears, reminders, credit reports). Said in the words of the partial index
#: ``ix_instalments_late`` (migration 0028), so that the planner sees it applies
UNPAID = InstalmentRow.amount - InstalmentRow.paid_principal - InstalmentRow.paid_interest
LATE = and_(InstalmentRow.overdue_since.is_not(None), InstalmentRow.state.not_in((PAID, WAIVED, SETTLED)), UNPAID > 0)
RENT, FINAL_RENT = "rent", "final_rent"
ACTIVE = "active"
RUNNING, DONE = "running", "done"
ONE_DAY = timedelta(days=1)


def to_fen(value: object) -> int:
    """A money string of the contract service ("1234.56") as integer fen, exactly (refused with more decimals)."""
    amount = Decimal(str(value)) * 100
    if amount != amount.to_integral_value():
        raise ValueError(f"{value!r} is not an amount in fen")
    return int(amount)


def yuan(fen: int) -> Decimal:
    return Decimal(fen) / 100


def current_business_date(session: Session, *, lock: bool = False) -> date:
    """The business date as ``session`` reads it (``lock``: FOR UPDATE, held to the end of its transaction)."""
    query = select(BusinessDateRow.current).where(BusinessDateRow.id == 1)
    return session.execute(query.with_for_update() if lock else query).scalar_one()


def load_business_calendar(session: Session) -> BusinessCalendar:
    """The business calendar with the days ops loaded, as ``session`` reads them."""
    return calendar_of(CalendarDay(r.day, r.kind, r.name) for r in session.scalars(select(BusinessCalendarRow)))


# -- the lease as the handover record states it --------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedInstalment:
    number: int
    kind: str
    due_on: date
    amount: int
    principal: int
    interest: int


@dataclass(frozen=True)
class LeasePlan:
    """What the signed handover record fixes of a lease in force: its dates, its servicing terms (frozen from the
    contract) and each instalment."""

    contract_id: str
    contract_number: str
    record_id: str
    sha256: str
    starts_on: date
    ends_on: date
    terms: Mapping[str, Any]
    instalments: tuple[PlannedInstalment, ...]

    @property
    def term(self) -> int:
        return int(self.terms["term"])

    @property
    def timing(self) -> str:
        return str(self.terms["timing"])


def lease_plan(record: Mapping[str, Any]) -> LeasePlan:
    """The lease the signed handover ``record`` (the contract service's answer) fixes. Raises ValueError when it is
    unreadable or does not reconcile: a record without its servicing terms, a rent that is not its principal plus its
    interest, principal that does not add up to the financed amount, or (dated from the handover) a due date other
    than the lease's calendar gives (plans.timeline: Asia/Shanghai days, month ends clamped)."""
    try:
        servicing = record["servicing"]
        terms, split = dict(servicing["terms"]), {int(r["period"]): r for r in servicing["amortisation"]}
        starts_on, ends_on = date.fromisoformat(str(record["starts_on"])), date.fromisoformat(str(record["ends_on"]))
        term, timing = int(terms["term"]), str(terms["timing"])
        rents: list[PlannedInstalment] = []
        for row in record["schedule"]:
            period = int(row["period"])
            principal, interest = to_fen(split[period]["principal"]), to_fen(split[period]["interest"])
            rents.append(PlannedInstalment(period, RENT, date.fromisoformat(str(row["due_date"])),
                                           to_fen(row["payment"]), principal, interest))
        financed, residual = to_fen(terms["financed_amount"]), to_fen(terms["residual"])
        final = record.get("final_rent")
        for name in ("late_fee_daily_rate", "nominal_rate"):
            Decimal(str(terms[name]))
        es = terms["early_settlement"]
        Decimal(str(es["fee_rate"]))
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"the handover record's servicing terms are unreadable ({type(exc).__name__}: {exc})"
                         ) from None
    if timing not in ("arrears", "advance") or [r.number for r in rents] != list(range(1, term + 1)):
        raise ValueError(f"the record's schedule is not rents 1…{term}")
    if sorted(split) != list(range(1, term + 1)):
        raise ValueError("the record's principal and interest are not those of rents 1…term")
    for r in rents:
        if r.amount != r.principal + r.interest or r.principal < 0 or r.interest < 0:
            raise ValueError(f"rent {r.number} is not its principal plus its interest")
    if sum(r.principal for r in rents) + residual != financed:
        raise ValueError("the rents' principal and the final rent do not add up to the financed amount")
    if record.get("dated_from", "handover") == "handover":
        dates = timeline(starts_on, term, timing)  # type: ignore[arg-type]
        if tuple(r.due_on for r in rents) != dates.rent_dates or ends_on != dates.ends_on:
            raise ValueError("the record's dates are not the lease's calendar from its commencement date")
    instalments = tuple(rents)
    if residual > 0:
        if not final or to_fen(final["amount"]) != residual or str(final["due_date"]) != ends_on.isoformat():
            raise ValueError("the record's final rent is not the contract's residual due at the term's end")
        instalments += (PlannedInstalment(term + 1, FINAL_RENT, ends_on, residual, residual, 0),)
    return LeasePlan(str(record.get("contract_id", "")), str(record.get("contract_number", "")),
                     str(record.get("id", "")), str(record.get("sha256", "")), starts_on, ends_on, terms, instalments)


# -- what the close of business reports ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchEvents:
    """What one batch of a close changed, given to the close's hooks inside the batch's transaction (``session``), so
    that the work they cause (reminders, collections: issue 18 §4) is deferred with the change, or not at all."""

    business_date: date
    session: Session
    lease_ids: tuple[str, ...]
    became_due: tuple[int, ...]  # instalment ids
    became_overdue: tuple[int, ...]
    penalties: Mapping[int, int] = field(default_factory=dict)  # instalment id → fen accrued by this close


CloseHook = Callable[[BatchEvents], None]


@dataclass(frozen=True)
class CloseRun:
    business_date: date
    status: str
    runs: int
    batches: int
    leases: int
    marked_due: int
    marked_overdue: int
    penalty: int
    started_at: datetime
    finished_at: datetime | None


class NotTheBusinessDate(Exception):
    """A close asked for a date other than the business date (and not already closed)."""

    def __init__(self, asked: date, current: date) -> None:
        super().__init__(f"the business date is {current.isoformat()}: {asked.isoformat()} cannot be closed now")
        self.asked, self.current = asked, current


class SqlServicing:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the lease in force ------------------------------------------------------------------------------------
    def open_lease(self, session: Session, application_id: str, dealer_id: str, plan: LeasePlan,
                   now: datetime) -> str | None:
        """Create the lease in force and its instalments in ``session`` (the transaction that records the signed
        handover record); None when the application has its lease already (signing again creates none). A rent paid
        at signing (rent 1 in advance: the amounts due at signing include it) is paid on the commencement date. The
        commencement and that rent post in the same transaction (books/lease.py, keys ``lease:<id>:commenced`` and
        ``lease:<id>:paid_at_signing``), with the VAT its rents carry (``lease:<id>:vat``: infra/vat_points.py) and
        the tax point of a rent due on the start (rent 1 in advance, ``vat:<instalment>``; the others' are the close's
        of their due dates)."""
        terms = plan.terms
        es = terms["early_settlement"]
        cap = terms.get("default_cost_cap")
        lease_id = str(uuid.uuid4())
        created = session.execute(insert(LeaseRow).values(
            id=lease_id, application_id=application_id, dealer_id=dealer_id, contract_id=plan.contract_id[:64],
            contract_number=plan.contract_number[:64], handover_record_id=plan.record_id[:64],
            handover_sha256=plan.sha256[:64], starts_on=plan.starts_on, ends_on=plan.ends_on, term=plan.term,
            timing=plan.timing, financed_amount=to_fen(terms["financed_amount"]), residual=to_fen(terms["residual"]),
            monthly_payment=to_fen(terms.get("monthly_payment", "0")), deposit=to_fen(terms.get("deposit", "0")),
            nominal_rate=Decimal(str(terms["nominal_rate"])),
            late_fee_daily_rate=Decimal(str(terms["late_fee_daily_rate"])),
            late_fee_base=str(terms.get("late_fee_base", "overdue_amount"))[:16],
            grace_days=int(terms.get("grace_days", 0)), default_cost_cap=None if cap is None else Decimal(str(cap)),
            settlement_any_day=bool(es.get("any_day", False)), settlement_fee_rate=Decimal(str(es["fee_rate"])),
            settlement_day_count=str(es.get("day_count", "ACT/360"))[:8],
            settlement_notice_working_days=int(es.get("notice_working_days", 0)),
            terms_source=str(terms.get("source", "contract"))[:8],
            terms=json.dumps(terms, ensure_ascii=False, sort_keys=True), status=ACTIVE, closed_through=None,
            created_at=now).on_conflict_do_nothing(index_elements=["application_id"]).returning(LeaseRow.id)
        ).scalar_one_or_none()
        if created is None:
            return None
        paid_at_signing = plan.timing == "advance"
        rows = []
        for i in plan.instalments:
            paid = paid_at_signing and i.kind == RENT and i.number == 1
            rows.append(InstalmentRow(
                lease_id=lease_id, number=i.number, kind=i.kind, due_on=i.due_on, amount=i.amount,
                principal=i.principal, interest=i.interest, state=PAID if paid else PENDING,
                paid_principal=i.principal if paid else 0, paid_interest=i.interest if paid else 0, paid_penalty=0,
                waived=0, penalty_accrued=0, settled_on=plan.starts_on if paid else None, updated_at=now))
        session.add_all(rows)
        session.flush()
        for row in rows:
            if row.state == PAID:
                session.add(ServicingMovementRow(
                    lease_id=lease_id, instalment_id=row.id, kind="paid_at_signing", value_date=plan.starts_on,
                    principal=-row.principal, interest=-row.interest, penalty=0,
                    key=f"paid_at_signing:{lease_id}:{row.number}", booked_at=now,
                    note="首期租金随签约应付款项支付 rent 1 paid at signing"))
        session.flush()
        schedule = [Scheduled(i.kind, i.amount, i.principal, i.interest) for i in plan.instalments]
        signing = sum(row.amount for row in rows if row.state == PAID)
        # rent 1 paid at signing was received with the upfront payment: its tax point the day that was captured (预收款)
        # when before the start (the capture's entry's value date), else the start
        received = min(_upfront_received(session, application_id) or plan.starts_on, plan.starts_on)
        post(session, [books_lease.commenced(lease_id, dealer_id, plan.starts_on, schedule),
                       *commencement_vat(lease_id, dealer_id, plan.starts_on, structure_of(terms),
                                         [(r.id, r.kind, r.due_on, r.amount, r.interest) for r in rows],
                                         received_on=received),
                       books_lease.paid_at_signing(lease_id, dealer_id, plan.starts_on, signing)], now)
        lease = session.get(LeaseRow, lease_id)  # rent 1 paid at signing: its e-invoice asked for (infra/invoicing.py)
        rents_paid(session, lease, [row for row in rows if row.state == PAID], received_on=received, now=now)
        _pay_off_refinanced(session, application_id, lease_id, dealer_id, plan.starts_on, now)
        return lease_id

    def lease(self, application_id: str) -> tuple[LeaseRow, list[InstalmentRow]] | None:
        """The application's lease in force and its instalments (detached rows), or None."""
        with self.db.session() as session:
            lease = session.scalars(select(LeaseRow).where(LeaseRow.application_id == application_id)).one_or_none()
            if lease is None:
                return None
            rows = list(session.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease.id)
                                        .order_by(InstalmentRow.number)))
            return lease, rows

    def movements(self, lease_id: str) -> list[ServicingMovementRow]:
        with self.db.session() as session:
            return list(session.scalars(select(ServicingMovementRow).where(ServicingMovementRow.lease_id == lease_id)
                                        .order_by(ServicingMovementRow.id)))

    # -- the business date ---------------------------------------------------------------------------------------
    def business_date(self) -> date:
        """The business date: the day whose close of business runs next (migration 0017 set it to its day)."""
        with self.db.session() as session:
            return current_business_date(session)

    def start_business_date(self, day: date, now: datetime) -> None:
        """Set the business date, for a database whose servicing has not begun (no close run yet): a demo's or a
        test's start. Refused (ValueError) once a date has been closed: from then on only a close moves it."""
        with self.db.session() as session:
            if session.execute(select(func.count()).select_from(CloseRunRow)).scalar_one():
                raise ValueError("dates have been closed already: only the close of business moves the business date")
            session.execute(update(BusinessDateRow).where(BusinessDateRow.id == 1).values(current=day, updated_at=now))

    # -- the calendar ----------------------------------------------------------------------------------------------
    def calendar(self) -> BusinessCalendar:
        """The business calendar with the days ops loaded."""
        with self.db.session() as session:
            return load_business_calendar(session)

    def load_calendar(self, days: Sequence[CalendarDay], source: str, now: datetime) -> int:
        """Load a published calendar's days (replacing those of the same years that ops loaded before: the file is
        the year's calendar); the number of days stored."""
        years = sorted({d.day.year for d in days})
        with self.db.session() as session:
            for year in years:
                session.execute(delete(BusinessCalendarRow).where(
                    BusinessCalendarRow.day >= date(year, 1, 1), BusinessCalendarRow.day <= date(year, 12, 31)))
            session.add_all(BusinessCalendarRow(day=d.day, kind=d.kind, name=d.name[:64], source=source[:255],
                                                loaded_at=now) for d in days)
        return len(days)

    # -- the close of business -------------------------------------------------------------------------------------
    def close_run(self, day: date) -> CloseRun | None:
        with self.db.session() as session:
            row = session.get(CloseRunRow, day)
            return _run(row) if row is not None else None

    def begin_close(self, day: date, now: datetime) -> CloseRun:
        """Start (or resume) the close of ``day``: its run, unchanged when it is done already. Raises
        :class:`NotTheBusinessDate` for a date that is not the business date and was not closed."""
        with self.db.session() as session:
            current = current_business_date(session, lock=True)
            row = session.get(CloseRunRow, day, with_for_update=True)
            if row is not None and row.status == DONE:
                return _run(row)
            if day != current:
                raise NotTheBusinessDate(day, current)
            if row is None:
                row = CloseRunRow(business_date=day, status=RUNNING, started_at=now, runs=1, batches=0, leases=0,
                                  marked_due=0, marked_overdue=0, penalty=0)
                session.add(row)
            else:
                row.runs += 1
            session.flush()
            return _run(row)

    def close_batch(self, day: date, calendar: BusinessCalendar, size: int, now: datetime,
                    hooks: Sequence[CloseHook] = ()) -> int:
        """Close ``day`` for the next ``size`` active leases not yet closed through it, in one transaction with the
        progress marker (each lease's ``closed_through`` and the run's counters); the number of leases closed (0: none
        left that another run does not hold). Leases another run holds are skipped (``SKIP LOCKED``), never closed
        twice; a batch that fails leaves nothing of itself.

        Set-based: one scan of the batch's open instalments, the changes by id (an UPDATE … FROM a list), the late
        charges booked by one INSERT … SELECT, the tax points of the rents falling due (from the rows read already)
        by one post (infra/vat_points.py); the calendar is asked once per distinct due date and grace. The leases
        are taken in ``id`` order after the run's marker (the last lease of its last batch), then from the start for
        any left behind (held by a run that failed)."""
        with self.db.session() as session:
            # short statements over a few thousand rows: compiling them (JIT) costs more than it saves
            session.execute(text("SET LOCAL jit = off"))
            leases = _lock_leases(session, day, size)
            if not leases:
                return 0
            ids = [lease.id for lease in leases]
            grace = {lease.id: lease.grace_days for lease in leases}
            open_rows = session.execute(select(
                InstalmentRow.id, InstalmentRow.lease_id, InstalmentRow.state, InstalmentRow.due_on,
                InstalmentRow.kind, InstalmentRow.amount, InstalmentRow.interest).where(
                InstalmentRow.lease_id == any_of(ids), InstalmentRow.state.in_((PENDING, DUE, PARTLY_PAID, OVERDUE)),
                InstalmentRow.due_on <= day)).all()
            became_due = _mark_due(session, [r.id for r in open_rows if r.state == PENDING], now)
            now_due = set(became_due)
            paused = _awaiting_return(session, [r.id for r in open_rows if r.kind == FINAL_RENT])
            became_overdue = _mark_overdue(session, [
                (r.id, r.due_on, grace[r.lease_id]) for r in open_rows
                if r.due_on < day and r.id not in paused and (r.state in (DUE, PARTLY_PAID) or r.id in now_due)],
                day, calendar, now)
            penalties = _accrue_penalties(session, leases, [
                r.id for r in open_rows if r.state == OVERDUE and r.id not in paused] + list(became_overdue), day, now)
            # the VAT of the rents whose tax point (their due date) came since each lease was last closed
            batch = {lease.id: LeaseOfBatch(lease.id, lease.dealer_id, lease.closed_through, lease.terms)
                     for lease in leases}
            post(session, falling_due(batch, [(r.id, r.lease_id, r.kind, r.due_on, r.amount, r.interest)
                                              for r in open_rows]), now)
            for hook in hooks:
                hook(BatchEvents(day, session, tuple(ids), became_due, became_overdue, penalties))
            session.execute(update(LeaseRow).where(LeaseRow.id == any_of(ids)).values(closed_through=day))
            session.execute(update(CloseRunRow).where(CloseRunRow.business_date == day).values(
                batches=CloseRunRow.batches + 1, leases=CloseRunRow.leases + len(ids),
                marked_due=CloseRunRow.marked_due + len(became_due),
                marked_overdue=CloseRunRow.marked_overdue + len(became_overdue),
                penalty=CloseRunRow.penalty + sum(penalties.values()), last_lease_id=ids[-1]))
            return len(ids)

    def finish_close(self, day: date, now: datetime) -> bool:
        """Mark the close of ``day`` done and move the business date to the next day, once every active lease is
        closed through it; False while some are not (another run still holds them: it finishes the date). Locks in
        :meth:`begin_close`'s order — the business date, then the run — so that two runs at once (the worker's and
        ``leaseline servicing close``) never wait for each other in a cycle."""
        with self.db.session() as session:
            current_business_date(session, lock=True)
            row = session.get(CloseRunRow, day, with_for_update=True)
            if row is None:
                return False
            if row.status == DONE:
                return True
            left = session.execute(select(func.count()).select_from(LeaseRow).where(
                LeaseRow.status == ACTIVE, or_(LeaseRow.closed_through.is_(None), LeaseRow.closed_through < day))
            ).scalar_one()
            if left:
                return False
            row.status, row.finished_at = DONE, now
            session.execute(update(BusinessDateRow).where(BusinessDateRow.id == 1, BusinessDateRow.current == day)
                            .values(current=day + ONE_DAY, updated_at=now))
            if (day + ONE_DAY).day == 1:  # a month's last day closed: its finance income (infra/finance_income.py)
                from infra.finance_income import defer_month

                defer_month(session, f"{day.year:04d}-{day.month:02d}")
            return True


def _upfront_received(session: Session, application_id: str) -> date | None:
    """The day the application's upfront payment was received: the value date of its capture's entry
    (``payment:<id>:captured``, infra/payments_store.py), the earliest of them; None when none was posted (a lease
    opened without a payment through Leaseline)."""
    found = session.execute(text(
        "SELECT MIN(j.value_date) FROM payments p JOIN journal_entries j ON j.key = :prefix || p.id || :suffix "
        "WHERE p.application_id = :app AND p.kind = 'upfront'"),
        {"app": application_id, "prefix": "payment:", "suffix": ":captured"}).scalar()
    return found if isinstance(found, date) else None


def _pay_off_refinanced(session: Session, application_id: str, lease_id: str, dealer_id: str, day: date,
                        now: datetime) -> None:
    """The lease ``application_id`` refinances (``end_of_term.refinance_application_id``; issue 18 §6), its final rent
    paid off by the new lease's funding, in the transaction that opens the new lease (``lease_id``, of ``dealer_id``):
    what is left of it (late charge, interest, principal) paid on ``day`` (the new lease's start) with one
    ``refinanced`` movement keyed by the old lease (once), and its posting (books/lease.py ``refinanced``). The close's
    end-of-term hook then ends the old lease (infra/end_of_term.py ``_end``) once nothing of it is open, settling its
    deposit. Nothing when no active lease is refinanced by it or its final rent is paid already."""
    found = session.execute(text(
        "SELECT l.id, l.dealer_id, l.terms, l.closed_through FROM end_of_term e JOIN leases l ON l.id = e.lease_id "
        "WHERE e.refinance_application_id = :app AND e.option = 'refinance' AND l.status = :active FOR UPDATE OF l"),
        {"app": application_id, "active": ACTIVE}).one_or_none()
    if found is None:
        return
    old, old_dealer, old_terms, old_closed = found
    key = f"refinanced:{old}"
    if session.execute(select(ServicingMovementRow.id).where(ServicingMovementRow.key == key)).first() is not None:
        return
    for row in session.scalars(select(InstalmentRow).where(
            InstalmentRow.lease_id == old, InstalmentRow.kind == FINAL_RENT,
            InstalmentRow.state.in_((*OPEN, PENDING))).with_for_update()):
        penalty = max(0, row.penalty_accrued - row.paid_penalty)
        interest, principal = max(0, row.interest - row.paid_interest), max(0, row.principal - row.paid_principal)
        row.paid_penalty += penalty
        row.paid_interest, row.paid_principal = row.interest, row.principal
        row.state, row.settled_on, row.updated_at = PAID, day, now
        session.add(ServicingMovementRow(
            lease_id=old, instalment_id=row.id, kind="refinanced", value_date=day, principal=-principal,
            interest=-interest, penalty=-penalty, key=key, booked_at=now,
            note=f"尾付租金由再融资申请 {application_id} 付清 the final rent paid off by the refinancing"))
        session.flush()
        paid_off = books_lease.refinanced(old, old_dealer, lease_id, dealer_id, day, principal=principal,
                                          interest=interest, penalty=penalty, structure=lease_structure(old_terms))
        # received in full before the close passed its due date: its tax point today (infra/vat_points.py)
        post(session, [paid_off, *paid_ahead(old, old_dealer, old_closed, old_terms, day,
                                             [(row.id, row.kind, row.due_on, row.amount, row.interest)])], now)
        old_lease = session.get(LeaseRow, old)  # its e-invoice asked for (infra/invoicing.py), as a receipt's is
        assert old_lease is not None
        rents_paid(session, old_lease, [row], received_on=day, now=now)
        return


def _run(row: CloseRunRow) -> CloseRun:
    return CloseRun(row.business_date, row.status, row.runs, row.batches, row.leases, row.marked_due,
                    row.marked_overdue, row.penalty, row.started_at, row.finished_at)


def any_of(values: Sequence[str] | Sequence[int]) -> Any:
    """``= ANY(:array)``: one parameter for a batch's ids, not one per id (thousands to send, parse and plan)."""
    kind = BigInteger() if values and isinstance(values[0], int) else String()
    return any_(bindparam(None, list(values), type_=ARRAY(kind)))


def _lock_leases(session: Session, day: date, size: int) -> list[Row[Any]]:
    """The next ``size`` active leases not closed through ``day`` that no other run holds, locked, in ``id`` order:
    after the run's marker first (each batch starts where the last ended, not at the first lease), then from the
    start (a lease left behind by a run that failed, or skipped while another held it)."""
    marker = select(CloseRunRow.last_lease_id).where(CloseRunRow.business_date == day).scalar_subquery()
    query = (select(LeaseRow.id, LeaseRow.grace_days, LeaseRow.late_fee_daily_rate, LeaseRow.late_fee_base,
                    LeaseRow.nominal_rate, LeaseRow.default_cost_cap, LeaseRow.dealer_id, LeaseRow.closed_through,
                    LeaseRow.terms)
             .where(LeaseRow.status == ACTIVE, or_(LeaseRow.closed_through.is_(None), LeaseRow.closed_through < day))
             .order_by(LeaseRow.id).limit(size).with_for_update(skip_locked=True))
    leases = list(session.execute(query.where(LeaseRow.id > func.coalesce(marker, ""))))
    return leases or list(session.execute(query))


def _mark_due(session: Session, instalment_ids: Sequence[int], now: datetime) -> tuple[int, ...]:
    """Rents not yet due whose due day has come: due (partly paid when something was paid ahead)."""
    if not instalment_ids:
        return ()
    moved = session.execute(
        update(InstalmentRow).where(InstalmentRow.id == any_of(instalment_ids), InstalmentRow.state == PENDING)
        .values(state=case((InstalmentRow.paid_principal + InstalmentRow.paid_interest > 0, PARTLY_PAID), else_=DUE),
                updated_at=now)
        .returning(InstalmentRow.id))
    return tuple(sorted(moved.scalars()))


def _awaiting_return(session: Session, final_rents: Sequence[int]) -> set[int]:
    """Those of ``final_rents`` whose lessee chose to return the car and whose inspection is not recorded yet
    (end_of_term, infra/end_of_term.py): the car stands for the final rent, which neither falls overdue nor accrues a
    late charge meanwhile (a return late to be inspected is flagged to ops: the end-of-term desk). One statement, only
    when the batch has final rents due and open: a batch without asks nothing more."""
    if not final_rents:
        return set()
    return set(session.execute(text(
        "SELECT i.id FROM instalments i JOIN end_of_term e ON e.lease_id = i.lease_id "
        "WHERE i.id = ANY(:ids) AND e.option = 'return' AND e.status = 'chosen'"),
        {"ids": list(final_rents)}).scalars())


def _mark_overdue(session: Session, candidates: Sequence[tuple[int, date, int]], day: date,
                  calendar: BusinessCalendar, now: datetime) -> tuple[int, ...]:
    """Rents still unpaid after their last day (:meth:`BusinessCalendar.last_day_to_pay`: the due day or the next
    business day, plus the contract's grace in business days): overdue from the calendar day after it.
    ``candidates``: the due and partly paid rents due before ``day`` (id, due day, the lease's grace)."""
    first: dict[tuple[date, int], date] = {}
    by_start: dict[date, list[int]] = {}
    for inst_id, due_on, grace in candidates:
        if (due_on, grace) not in first:
            first[due_on, grace] = calendar.last_day_to_pay(due_on, grace) + ONE_DAY
        if first[due_on, grace] <= day:
            by_start.setdefault(first[due_on, grace], []).append(inst_id)
    if not by_start:
        return ()
    starts = [(inst_id, on) for on, listed in by_start.items() for inst_id in listed]
    marked = session.execute(text(
        "UPDATE instalments AS i SET state = :overdue, overdue_since = s.first_overdue, updated_at = :now "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:starts AS date[])) AS s(id, first_overdue) "
        "WHERE i.id = s.id AND i.state IN (:due, :partly_paid) RETURNING i.id"),
        {"overdue": OVERDUE, "due": DUE, "partly_paid": PARTLY_PAID, "now": now,
         "ids": [i for i, _ in starts], "starts": [on for _, on in starts]})
    return tuple(sorted(marked.scalars()))


def penalty_terms(lease: LeaseRow) -> PenaltyTerms:
    """The late-charge terms of ``lease`` as its contract states them, for :mod:`servicing.penalty`: a rate a day on
    the overdue amount (or its principal), within the cost cap the contract states. The grace is applied by the
    calendar (business days) before the first day charged, so none is given here."""
    return PenaltyTerms(rate=lease.late_fee_daily_rate, day_count="daily",
                        base="principal" if lease.late_fee_base == "principal" else "overdue_rent", grace_days=0,
                        nominal_rate=lease.nominal_rate, cost_cap=lease.default_cost_cap)


def _accrue_penalties(session: Session, leases: Sequence[Any], overdue_ids: Sequence[int], day: date,
                      now: datetime) -> dict[int, int]:
    """The late charge of every overdue instalment (of ``overdue_ids``, in the batch's ``leases``) for each day from
    the first not yet accrued through ``day``, on what was left unpaid at the end of that day (movements dated that
    day or before: a payment counts for its day), posted as one movement per instalment and close (its key: booked
    once). ``{instalment id: fen}``.

    Set-based: the instalments and their movements read by two statements, the charges booked by one INSERT … SELECT
    and added by one UPDATE; each charge computed by :func:`late_charge` (servicing.penalty's figures, to the fen)."""
    if not overdue_ids:
        return {}
    overdue = session.execute(select(
        InstalmentRow.id, InstalmentRow.lease_id, InstalmentRow.amount, InstalmentRow.principal,
        InstalmentRow.overdue_since, InstalmentRow.penalty_through).where(
        InstalmentRow.id == any_of(overdue_ids), InstalmentRow.state == OVERDUE,
        or_(InstalmentRow.penalty_through.is_(None), InstalmentRow.penalty_through < day))).all()
    if not overdue:
        return {}
    changes: dict[int, list[tuple[date, int, int]]] = {}
    for inst_id, value_date, principal, interest in session.execute(
            select(ServicingMovementRow.instalment_id, ServicingMovementRow.value_date, ServicingMovementRow.principal,
                   ServicingMovementRow.interest)
            .where(ServicingMovementRow.instalment_id == any_of([i.id for i in overdue]),
                   or_(ServicingMovementRow.principal != 0, ServicingMovementRow.interest != 0))):
        changes.setdefault(inst_id, []).append((value_date, principal, interest))
    terms = {lease.id: penalty_terms(lease) for lease in leases}
    charges: list[tuple[int, str, int, date]] = []
    for inst in overdue:
        start = max(inst.overdue_since, inst.penalty_through + ONE_DAY if inst.penalty_through else inst.overdue_since)
        charges.append((inst.id, inst.lease_id, late_charge(inst.amount, inst.principal, changes.get(inst.id, []),
                                                            inst.overdue_since, start, day, terms[inst.lease_id]),
                         start))
    booked: dict[int, int] = {}
    owed = [c for c in charges if c[2]]
    if owed:
        booked = {int(i): int(a) for i, a in session.execute(text(
            "INSERT INTO servicing_movements (lease_id, instalment_id, kind, value_date, principal, interest, penalty, "
            "key, reference, note, booked_at) "
            "SELECT c.lease_id, c.id, 'late_charge', :day, 0, 0, c.amount, c.key, NULL, c.note, :now "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:lease_ids AS varchar[]), CAST(:amounts AS bigint[]), "
            "CAST(:keys AS varchar[]), CAST(:notes AS varchar[])) AS c(id, lease_id, amount, key, note) "
            "ON CONFLICT (key) DO NOTHING RETURNING instalment_id, penalty"),
            {"day": day, "now": now, "ids": [c[0] for c in owed], "lease_ids": [c[1] for c in owed],
             "amounts": [c[2] for c in owed], "keys": [f"late_charge:{c[0]}:{day.isoformat()}" for c in owed],
             "notes": [f"逾期违约金 late charge {c[3].isoformat()}–{day.isoformat()}" for c in owed]})}
    # a charge already booked under its key (by an earlier close of this day) leaves the instalment as it is
    accrued = [(inst_id, booked.get(inst_id, 0)) for inst_id, _, amount, _ in charges
               if not amount or inst_id in booked]
    session.execute(text(
        "UPDATE instalments AS i SET penalty_accrued = i.penalty_accrued + c.amount, penalty_through = :day, "
        "updated_at = :now FROM unnest(CAST(:ids AS bigint[]), CAST(:amounts AS bigint[])) AS c(id, amount) "
        "WHERE i.id = c.id"),
        {"day": day, "now": now, "ids": [i for i, _ in accrued], "amounts": [a for _, a in accrued]})
    return booked


def late_charge(amount: int, principal: int, changes: Iterable[tuple[date, int, int]], overdue_since: date,
                start: date, through: date, terms: PenaltyTerms) -> int:
    """The late charge of an instalment of ``amount`` (``principal`` of it) overdue since ``overdue_since``, for the
    days ``start`` … ``through``, in fen: each day on what was left unpaid at its end, stretch by stretch of the same
    unpaid amount (``changes``: its movements' value date, principal and interest; one dated d changes what is unpaid
    from d on — a payment counts for the day it is made on, a partial one as a full one, which leaves nothing to
    charge that day), by :func:`servicing.penalty`'s rounding (each stretch the difference of the once-rounded
    accrued charge)."""
    last_day = overdue_since - ONE_DAY  # the last day it could be paid: the charge counts from the day after
    listed = sorted(changes)
    cuts = sorted({d for d, _, _ in listed if start < d <= through})
    total = Decimal(0)
    bounds = [start, *cuts, through + ONE_DAY]
    for begin, end in zip(bounds, bounds[1:], strict=False):
        unpaid_rent = amount + sum(p + i for d, p, i in listed if d <= begin)
        unpaid_principal = principal + sum(p for d, p, _ in listed if d <= begin)
        if unpaid_rent <= 0:
            continue
        total += penalty_between(begin, end, due_on=last_day, unpaid_rent=yuan(unpaid_rent),
                                 unpaid_principal=yuan(max(0, min(unpaid_principal, unpaid_rent))), terms=terms)
    return to_fen(total)
