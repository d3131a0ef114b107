"""A partial prepayment (部分提前还款, issue 18 §5) in the database: offered, chosen, paid and applied.

**The offer** (:meth:`SqlPrepayments.offer`): the customer asks to pay ``amount`` fen off the principal. The basis is
the lease as it stands on the business date (:func:`prepayment_basis`; none once an end-of-term purchase or return
has added its instalment): K, the rents fallen due (due on or before the business date; and any rent after them
already paid ahead in full), every one of them paid with its late charges —
a lease in arrears pays its arrears first —, none of the rents after K paid in part, at least one rent left. The
principal outstanding after rent K is the residual plus the principal of the rents after K (the schedule's balance,
to the fen, before as after an earlier prepayment). The rules of the amount (:func:`check_amount`):

- at least :data:`MINIMUM` (¥1,000): neither the product file nor the policy states a minimum partial prepayment, so
  this module does (a product or policy value, once one exists, takes its place);
- to the fen, and less than that principal less the final rent (the residual stays: paying it all is an early
  settlement, 提前结清);

both re-amortisations are computed (:func:`servicing.reamortise.prepayment_options`, at the contract rate, with the
lease's timing) and kept as shown (``preview``, JSON, amounts in fen with each new schedule's rows and due dates).
The offer is valid until the day before rent K + 1 falls due (:func:`valid_until`): the figures count from rent K, and
once the next rent falls due they no longer hold. A new request supersedes the lease's offer still open (one
``offered`` per lease: the unique index).

**Paying it** (bff/servicing/prepay.py): the customer's choice is recorded (:meth:`SqlPrepayments.choose`), then a
payment whose attempt names the prepayment (``purpose`` prepayment, ``subject_id``) is made;
:meth:`infra.collections.SqlCollections.book` books it under the lease's row lock and calls :func:`book_prepayment`.

**Applying it** (:func:`book_prepayment`): only an offer of that lease still open (or past its validity when the
payment was started within it), of exactly the amount paid, on a lease whose rents after K are as they were (none has
fallen due, none paid) and whose re-amortisation gives the figures the customer saw. Then, in the booking's
transaction: the rents after K are rewritten in place (amount, principal, interest); a shorter term deletes the
rents it no longer needs (nothing was paid of them, nothing refers to them) and moves the final rent (the residual,
unchanged) to the new end of the term — its number stays term + 1 —; the lease's term, end and rent follow; one
servicing movement (``prepayment``, principal −amount, no instalment: the prepaid principal is in no rent, key
``prepayment:<id>``); the prepayment ``applied``; and the ``servicing.prepaid`` job (the schedule annex signed by the
contract service, the evidence log, the customer's text) deferred with it. Anything else applies nothing: the whole
amount is refunded as a surplus (infra/collections.py), and an offer that no longer holds is marked expired.

A simplification, in the customer's favour in arrears: the prepayment counts from rent K's due date (the model of
servicing.reamortise: a prepayment on a rent date), so the days since then bear no interest on the prepaid amount.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from infra.collections import Job
from infra.collections import owed_of
from infra.db.engine import Database
from infra.db.models import CollectionAttemptRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import PrepaymentRow
from infra.db.models import ServicingMovementRow
from infra.servicing import ACTIVE
from infra.servicing import FINAL_RENT
from infra.servicing import PAID
from infra.servicing import RENT
from infra.servicing import WAIVED
from infra.servicing import current_business_date
from infra.servicing import to_fen
from infra.servicing import yuan
from plans.errors import FieldError
from plans.quote import ScheduleRow
from plans.timeline import add_months
from servicing.reamortise import Reamortisation
from servicing.reamortise import prepayment_options

log = logging.getLogger(__name__)

#: the smallest partial prepayment, fen (¥1,000): no product or policy states one yet
MINIMUM = 100_000
SHORTER_TERM, LOWER_RENT = "shorter_term", "lower_rent"
OPTIONS = (SHORTER_TERM, LOWER_RENT)
OFFERED, APPLIED, SUPERSEDED, EXPIRED = "offered", "applied", "superseded", "expired"
#: the job that follows an applied prepayment (helper B's task: the schedule annex, the evidence log, the text), on
#: the servicing queue as the other servicing jobs (bff/servicing/collect.py ``QUEUE``)
TASK, QUEUE = "servicing.prepaid", "servicing"
#: the attempts that may still pay (a failed or canceled one never will)
LIVE = ("created", "processing", "requires_action", "succeeded")


class PrepaymentRefused(Exception):
    """A prepayment that cannot be offered (or chosen): why, as a field error (``amount`` or ``option``)."""

    def __init__(self, error: FieldError, status: int = 422) -> None:
        super().__init__(error.text_en)
        self.error, self.status = error, status


def _refused(field: str, code: str, zh: str, en: str, status: int = 422) -> PrepaymentRefused:
    return PrepaymentRefused(FieldError(field, code, zh, en), status)


def _cny(fen: int) -> str:
    return f"¥{yuan(fen):,.2f}"


# -- the maths on the stored rows (pure) -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Basis:
    """What a prepayment on ``business_date`` starts from: ``after_number`` (K) rents done, the principal outstanding
    after rent K (fen), the rents after K (their schedule rows, periods K + 1…, balances counted back from the
    residual) and their stored rows."""

    business_date: date
    after_number: int
    balance: int
    residual: int
    rows: tuple[ScheduleRow, ...]
    rents_after: tuple[InstalmentRow, ...]

    @property
    def maximum(self) -> int:
        """The most that may be prepaid (fen): the principal less the final rent, less a fen."""
        return self.balance - self.residual - 1


def prepayment_basis(lease: LeaseRow, instalments: Sequence[InstalmentRow], business_date: date) -> Basis:
    """The basis of a prepayment on ``business_date`` (see the module's docstring); :class:`PrepaymentRefused` (409)
    when none may be made now: the lease is not in force, something fallen due is unpaid (arrears first), a rent after
    them is paid in part, or no rent is left."""
    if lease.status != ACTIVE:
        raise _refused("amount", "closed", "这份租约已不在履行中", "This lease is no longer in force", 409)
    if any(i.kind not in (RENT, FINAL_RENT) for i in instalments):  # the end of term chosen (infra/end_of_term.py)
        raise _refused("amount", "end_of_term", "已选择期满处理方式，无法部分提前还款",
                       "The end of the term is chosen: a part of the principal can no longer be prepaid", 409)
    rents = sorted((i for i in instalments if i.kind == RENT), key=lambda i: i.number)
    done = sum(1 for i in rents if i.due_on <= business_date)
    while done < len(rents) and rents[done].state == PAID:  # paid ahead in full: done too
        done += 1
    if done >= len(rents):
        raise _refused("amount", "no_rent_left", "租金已全部到期，无法部分提前还款",
                       "Every rent has fallen due: nothing is left to prepay", 409)
    owed = [(i, owed_of(i)) for i in instalments if i.state != WAIVED]
    unpaid = sum(o.penalty + (o.interest + o.principal if i.due_on <= business_date or (
        i.kind == RENT and i.number <= done) else 0) for i, o in owed)
    if unpaid:
        raise _refused("amount", "arrears", f"请先支付已到期的款项 {_cny(unpaid)}，再申请提前还款",
                       f"Pay what is due first ({_cny(unpaid)}), then ask to prepay", 409)
    after = rents[done:]
    part = next((i for i in after if i.paid_principal or i.paid_interest), None)
    if part is not None:
        raise _refused("amount", "paid_ahead", f"第 {part.number} 期租金已提前支付一部分，请在其到期后再申请",
                       f"Part of rent {part.number} is paid ahead: ask again once it has fallen due", 409)
    balance = lease.residual + sum(i.principal for i in after)
    rows, left = [], balance
    for inst in after:
        left -= inst.principal
        rows.append(ScheduleRow(inst.number, yuan(inst.amount), yuan(inst.interest), yuan(inst.principal), yuan(left)))
    return Basis(business_date, done, balance, lease.residual, tuple(rows), tuple(after))


def check_amount(basis: Basis, amount: int) -> None:
    """:class:`PrepaymentRefused` (422, field ``amount``) unless ``amount`` fen may be prepaid on ``basis``."""
    if amount < MINIMUM:
        raise _refused("amount", "too_small", f"提前还款金额至少为 {_cny(MINIMUM)}",
                       f"Prepay at least {_cny(MINIMUM)}")
    if amount > basis.maximum:
        final = "（尾付租金除外）" if basis.residual else ""
        final_en = " (the final rent excepted)" if basis.residual else ""
        limit = _cny(basis.balance - basis.residual)
        raise _refused("amount", "too_large", f"提前还款金额须少于剩余本金{final} {limit}；全部还清请申请提前结清",
                       f"Prepay less than the principal outstanding{final_en}, {limit}; to pay it all, settle the "
                       "lease early")


def reamortised(lease: LeaseRow, basis: Basis, amount: int) -> tuple[Reamortisation, Reamortisation]:
    """Both re-amortisations (shorter term, lower rent) of ``amount`` fen prepaid on ``basis``, at the contract rate;
    :class:`PrepaymentRefused` for an amount the rules or the maths refuse."""
    check_amount(basis, amount)
    try:
        o = prepayment_options(basis.rows, yuan(basis.balance), yuan(basis.residual), lease.nominal_rate,
                               "advance" if lease.timing == "advance" else "arrears", paid=0,
                               prepayment=yuan(amount))
    except ValueError as exc:
        raise _refused("amount", "refused", "这一金额无法重新计算还款计划，请换一个金额",
                       f"The schedule cannot be re-amortised for this amount ({exc}): try another") from None
    return o.shorter_term, o.lower_rent


def valid_until(basis: Basis) -> date:
    """The last day the offer holds: the day before the next rent (K + 1) falls due."""
    return basis.rents_after[0].due_on - timedelta(days=1)


def _ends_on(lease: LeaseRow, term: int) -> date:
    """The end of a term of ``term`` months on the lease's calendar (plans.timeline: months from its start; a lease
    not dated that way: its end moved by the months dropped)."""
    if term == lease.term:
        return lease.ends_on
    if lease.ends_on == add_months(lease.starts_on, lease.term):
        return add_months(lease.starts_on, term)
    return add_months(lease.ends_on, term - lease.term)


def preview_of(lease: LeaseRow, basis: Basis, shorter: Reamortisation, lower: Reamortisation) -> dict[str, Any]:
    """Both options as the customer sees them (fen, ISO dates): the old schedule's rent, term and interest left, and
    per option its rent, last payment, term, end, interest saved and every new row."""
    due = {i.number: i.due_on for i in basis.rents_after}

    def option(o: Reamortisation) -> dict[str, Any]:
        return {"rent": to_fen(o.rent), "last_payment": to_fen(o.last_payment), "term": o.term,
                "rents_left": o.rents_left, "ends_on": _ends_on(lease, o.term).isoformat(),
                "interest_saved": to_fen(o.interest_saved),
                "schedule": [{"number": r.period, "due_on": due[r.period].isoformat(), "payment": to_fen(r.payment),
                              "principal": to_fen(r.principal), "interest": to_fen(r.interest),
                              "balance": to_fen(r.balance)} for r in o.schedule]}

    return {"after_number": basis.after_number, "balance_before": basis.balance,
            "balance_after": to_fen(shorter.balance_after), "residual": basis.residual,
            "old": {"rent": lease.monthly_payment, "term": lease.term, "ends_on": lease.ends_on.isoformat(),
                    "rents_left": len(basis.rows), "interest_left": sum(i.interest for i in basis.rents_after)},
            SHORTER_TERM: option(shorter), LOWER_RENT: option(lower)}


# -- the offer ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prepayment:
    id: str
    lease_id: str
    business_date: date
    valid_until: date
    amount: int
    option: str  # "" until the customer chooses
    after_number: int
    preview: dict[str, Any]
    status: str
    attempt_id: str | None
    created_at: datetime
    applied_at: datetime | None
    #: the business date it was read on
    today: date

    @property
    def open(self) -> bool:
        """Offered and within its validity: it may be chosen and paid."""
        return self.status == OFFERED and self.today <= self.valid_until

    @property
    def shown_status(self) -> str:
        return EXPIRED if self.status == OFFERED and not self.open else self.status


def _prepayment(row: PrepaymentRow, today: date) -> Prepayment:
    return Prepayment(row.id, row.lease_id, row.business_date, row.valid_until, row.amount, row.option,
                      row.after_number, json.loads(row.preview), row.status, row.attempt_id, row.created_at,
                      row.applied_at, today)


def _instalments(session: Session, lease_id: str, *, lock: bool = False) -> list[InstalmentRow]:
    query = select(InstalmentRow).where(InstalmentRow.lease_id == lease_id).order_by(InstalmentRow.number)
    return list(session.scalars(query.with_for_update() if lock else query))


class SqlPrepayments:
    def __init__(self, db: Database) -> None:
        self.db = db

    def offer(self, lease_id: str, amount: int, requested_by: str, now: datetime) -> Prepayment:
        """Offer a prepayment of ``amount`` fen (see the module's docstring), superseding the lease's open one;
        :class:`PrepaymentRefused` when the rules refuse it, LookupError for no such lease."""
        with self.db.transaction() as session:
            lease = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()
                                    ).scalar_one_or_none()
            if lease is None:
                raise LookupError(lease_id)
            day = current_business_date(session)
            basis = prepayment_basis(lease, _instalments(session, lease_id), day)
            shorter, lower = reamortised(lease, basis, amount)
            session.execute(update(PrepaymentRow).where(
                PrepaymentRow.lease_id == lease_id, PrepaymentRow.status == OFFERED).values(
                status=case((PrepaymentRow.valid_until < day, EXPIRED), else_=SUPERSEDED)))
            row = PrepaymentRow(
                id=str(uuid.uuid4()), lease_id=lease_id, business_date=day, valid_until=valid_until(basis),
                amount=amount, option="", after_number=basis.after_number, new_term=0, new_rent=0,
                preview=json.dumps(preview_of(lease, basis, shorter, lower), sort_keys=True), status=OFFERED,
                requested_by=requested_by[:64], attempt_id=None, created_at=now, applied_at=None)
            session.add(row)
            session.flush()
            return _prepayment(row, day)

    def basis(self, lease: LeaseRow) -> Basis:
        """Where a prepayment of ``lease`` would start from on the business date; :class:`PrepaymentRefused` when
        none may be asked now."""
        with self.db.session() as session:
            return prepayment_basis(lease, _instalments(session, lease.id), current_business_date(session))

    def get(self, lease_id: str, prepayment_id: str) -> Prepayment | None:
        """The lease's prepayment ``prepayment_id`` (None for another lease's, or none)."""
        with self.db.session() as session:
            row = session.get(PrepaymentRow, prepayment_id) if len(prepayment_id) <= 36 else None
            if row is None or row.lease_id != lease_id:
                return None
            return _prepayment(row, current_business_date(session))

    def choose(self, lease_id: str, prepayment_id: str, option: str) -> Prepayment:
        """Record the customer's choice on an open offer; :class:`PrepaymentRefused` for an option not offered (422),
        an offer no longer open or whose payment under way is for the other option (409); LookupError for none."""
        if option not in OPTIONS:
            raise _refused("option", "option", "请选择缩短期限或减少月供", "Choose a shorter term or a lower rent")
        with self.db.transaction() as session:
            row = session.get(PrepaymentRow, prepayment_id, with_for_update=True) if len(prepayment_id) <= 36 \
                else None
            if row is None or row.lease_id != lease_id:
                raise LookupError(prepayment_id)
            found = _prepayment(row, current_business_date(session))
            if not found.open:
                raise _refused("option", found.shown_status, "这份提前还款申请已失效，请重新申请",
                               "This prepayment request no longer holds: ask again", 409)
            if row.option and row.option != option and row.attempt_id is not None:
                attempt = session.get(CollectionAttemptRow, row.attempt_id)
                if attempt is not None and attempt.status in LIVE:
                    raise _refused("option", "under_way", "这笔提前还款的付款正在处理中，无法更改方式",
                                   "A payment of this prepayment is under way: the option cannot change now", 409)
            chosen = found.preview[option]
            row.option, row.new_term, row.new_rent = option, int(chosen["term"]), int(chosen["rent"])
            session.flush()
            return _prepayment(row, found.today)

    def attach(self, prepayment_id: str, attempt_id: str) -> None:
        """The payment started for an offer (the newest)."""
        with self.db.session() as session:
            session.execute(update(PrepaymentRow).where(PrepaymentRow.id == prepayment_id,
                                                        PrepaymentRow.status == OFFERED).values(attempt_id=attempt_id))


# -- applying a paid prepayment -------------------------------------------------------------------------------------
def book_prepayment(session: Session, lease: LeaseRow, attempt: CollectionAttemptRow, amount: int, day: date,
                    now: datetime, reference: str | None) -> int:
    """Apply the prepayment the ``attempt`` paid (``amount`` fen, booked on the business date ``day``) in
    :meth:`infra.collections.SqlCollections.book`'s transaction, which holds the lease's row lock: what it applied —
    its amount, or 0 when it applies nothing (the whole amount is then refunded as a surplus). See the module's
    docstring for the checks and the changes."""
    row = session.get(PrepaymentRow, attempt.subject_id, with_for_update=True) if attempt.subject_id else None

    def refuse(why: str, stale: bool = False) -> int:
        log.warning("prepayment %s of lease %s not applied (%s): %s fen refunded", attempt.subject_id, lease.id, why,
                    amount)
        if stale and row is not None and row.status == OFFERED:
            row.status = EXPIRED
        return 0

    if row is None or row.lease_id != lease.id:
        return refuse("not a prepayment of this lease")
    if row.status not in (OFFERED, EXPIRED) or attempt.business_date > row.valid_until:
        return refuse(f"{row.status}, valid until {row.valid_until}, paid from {attempt.business_date}")
    if amount != row.amount or attempt.amount != row.amount:
        return refuse(f"{amount} fen paid for {row.amount}")
    if row.option not in OPTIONS:
        return refuse("no option chosen")
    instalments = _instalments(session, lease.id, lock=True)
    try:
        basis = prepayment_basis(lease, instalments, day)
        shorter, lower = reamortised(lease, basis, amount)
    except PrepaymentRefused as exc:
        return refuse(exc.error.code, stale=True)
    preview = json.loads(row.preview)
    if basis.after_number != row.after_number or preview_of(lease, basis, shorter, lower) != preview:
        return refuse("the lease changed since the offer", stale=True)
    chosen = shorter if row.option == SHORTER_TERM else lower
    _rewrite(session, lease, basis, chosen, now)
    session.add(ServicingMovementRow(
        lease_id=lease.id, instalment_id=None, kind="prepayment", value_date=day, principal=-amount, interest=0,
        penalty=0, key=f"prepayment:{row.id}", reference=(reference or "")[:64] or None, booked_at=now,
        note=f"部分提前还款 partial prepayment after rent {row.after_number}, {row.option}: {amount} fen"))
    session.execute(update(PrepaymentRow).where(PrepaymentRow.lease_id == lease.id, PrepaymentRow.status == OFFERED,
                                                PrepaymentRow.id != row.id).values(status=SUPERSEDED))
    row.status, row.applied_at, row.attempt_id = APPLIED, now, attempt.id
    row.new_term, row.new_rent = chosen.term, to_fen(chosen.rent)
    session.flush()
    Job(TASK, {"lease_id": lease.id, "prepayment_id": row.id}, QUEUE,
        queueing_lock=f"{TASK}:{row.id}").defer(session)
    return amount


def _rewrite(session: Session, lease: LeaseRow, basis: Basis, chosen: Reamortisation, now: datetime) -> None:
    """The rents after K as ``chosen`` amortises them, in place; a shorter term's dropped rents deleted and its final
    rent moved to the new end; the lease's term, end and rent."""
    new = {r.period: r for r in chosen.schedule}
    for inst in basis.rents_after:
        if inst.number in new:
            r = new[inst.number]
            inst.amount, inst.principal, inst.interest = to_fen(r.payment), to_fen(r.principal), to_fen(r.interest)
            inst.updated_at = now
    dropped = [i.id for i in basis.rents_after if i.number not in new]
    if dropped:
        session.flush()
        session.execute(delete(InstalmentRow).where(InstalmentRow.id.in_(dropped)))
    ends_on = _ends_on(lease, chosen.term)
    session.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease.id,
                                                InstalmentRow.kind == FINAL_RENT).values(
        number=chosen.term + 1, due_on=ends_on, updated_at=now))
    lease.term, lease.ends_on = chosen.term, ends_on
    if chosen.option == LOWER_RENT:
        lease.monthly_payment = to_fen(chosen.rent)
    session.flush()

