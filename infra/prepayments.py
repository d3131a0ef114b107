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

**The interest of the days in between** (:func:`accrued_adjustment`): the re-amortisation applies the amount to the
balance after rent K, a value on one date (``Basis.interest_from``): rent K's due date in arrears (the lease's start
before any rent), rent K + 1's in advance (rent K paid its month's interest ahead, on a balance the amount was still
part of). The amount is paid on the business date, not on that date: A × the contract rate × (business date −
that date) / the days of the lease's settlement day count (ACT/360: 《人民币利率管理规定》 art. 20, as the early
settlement counts), half-up to the fen once. Positive (arrears: the days since rent K, during which the amount still
bore interest that no rent charges any longer) it is a line added to the payment; negative (advance, or a rent paid
ahead: interest already paid on the amount for days after it is repaid) a credit off it. It is stored on the offer
(``accrued_interest``) and shown; the payment is the amount plus it (``Prepayment.total``).

The offer holds for the business date it was counted on (:func:`valid_until`): the interest line changes every day.
A payment started that day is applied with these figures even when the bank confirms it later (the customer pays
what was shown, never an amount recounted behind their back, and a payment that crosses midnight is not refunded
for a day's interest); a payment started later needs a new request. A new request supersedes the lease's offer still
open (one ``offered`` per lease: the unique index). No offer is made (409) while a payment of a rent after K (or of
the final rent) is under way (:func:`_under_way`): the schedule it pays is about to change.

**Paying it** (bff/servicing/prepay.py): the customer's choice is recorded (:meth:`SqlPrepayments.choose`), then a
payment whose attempt names the prepayment (``purpose`` prepayment, ``subject_id``) is made;
:meth:`infra.collections.SqlCollections.book` books it under the lease's row lock and calls :func:`book_prepayment`.

**Applying it** (:func:`book_prepayment`): only an offer of that lease still open (or past its validity when the
payment was started within it), paid exactly its total (the amount and the interest line), on a lease whose rents
after K are as they were (none has fallen due, none paid, no payment of one under way) and whose re-amortisation
gives the figures the customer saw. Then, in the booking's transaction: the rents after K are rewritten in place
(amount, principal, interest); a shorter term's rents it no longer needs are **cancelled, never deleted** — a
collection attempt, a reminder or a movement may name them (foreign keys) —: state ``cancelled``
(infra/servicing.py ``CANCELLED``), amounts zeroed (nothing is owed of them, and every sum over a lease's instalments
stays right; what they were is in the prepayment's ``schedule``, ``cancelled``), number negated (−n: the number is
free for the final rent under the unique (lease, number)); the final rent (the residual, unchanged) moves to the new
end of the term — its number stays term + 1 —; the lease's term, end and rent follow; the servicing movements
(``prepayment``, principal −amount, and ``prepayment_interest``, interest −the interest line, no instalment: neither
is in any rent, keys ``prepayment:<id>`` and ``prepayment:<id>:interest``); the schedule as applied stored on the
prepayment (``schedule``, JSON: what the schedule annex states, :func:`applied_schedule`); the prepayment ``applied``;
and the ``servicing.prepaid`` job (the schedule annex signed by the contract service, the evidence log, the customer's
text) deferred with it; and its postings (issue 19, books/prepayment.py): ``prepayment:<id>`` — the payment out of
Liabilities:Unapplied:Lessees (the receipt put it there), the principal and the interest the re-amortisation drops off
the receivable, that interest out of unearned income, the interest line as finance income — and, when the months
recognised more than the new schedule holds, ``income:<lease>:prepayment:<id>`` reversing it. Anything else applies
nothing: the whole payment is refunded as a surplus (infra/collections.py), and an offer that no longer holds is marked
expired.

**VAT** (issue 19 §3, books/prepayment.py): a lease without its commencement VAT (opened before VAT was posted) has it
brought in first (infra/vat_catchup.py ``ensure``). The interest line is income net of the VAT it includes (the rule in
force on the day, for the lease's structure), Output the tax; and ``prepayment:<id>:vat`` moves the pending VAT to the
new schedule: the tax of the rents after K and of the final rent as they were (each under the rule of its due date)
against their tax as they are — rewritten, cancelled (none), the final rent on its new date —, the principal's share of
the difference to Output (the principal prepaid is paid on the day), the interest's back to Unearned.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from books.accounts import VAT_OUTPUT
from books.income import ONE_DAY
from books.income import recognised_through
from books.prepayment import Prepaid
from books.prepayment import prepaid as prepaid_entries
from books.vat import load_tax_policy
from infra.books import post
from infra.collections import owed_of
from infra.db.engine import Database
from infra.db.models import CollectionAttemptRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import PrepaymentRow
from infra.db.models import ServicingMovementRow
from infra.finance_income import lock_leases
from infra.finance_income import recognised
from infra.finance_income import schedules
from infra.invoicing import prepayment_paid
from infra.jobs import Job
from infra.servicing import ACTIVE
from infra.servicing import CANCELLED
from infra.servicing import FINAL_RENT
from infra.servicing import PAID
from infra.servicing import RENT
from infra.servicing import WAIVED
from infra.servicing import current_business_date
from infra.servicing import to_fen
from infra.servicing import yuan
from infra.vat_catchup import ensure as ensure_vat
from infra.vat_catchup import instalment_tax
from infra.vat_catchup import structure
from plans.errors import FieldError
from plans.quote import ScheduleRow
from plans.timeline import add_months
from servicing.reamortise import Reamortisation
from servicing.reamortise import prepayment_options
from servicing.settlement import accrued_interest

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
#: an attempt whose result is still to come (infra/collections.py: not FINAL); a ``created`` one only counts on the
#: business date it was started (a Payment Element's intent the customer never confirmed would block for good)
WAITING, STARTED = ("processing", "requires_action"), "created"


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
    residual) and their stored rows; ``interest_from``: the date that balance is valued at (see the module's
    docstring)."""

    business_date: date
    after_number: int
    balance: int
    residual: int
    rows: tuple[ScheduleRow, ...]
    rents_after: tuple[InstalmentRow, ...]
    interest_from: date

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
    instalments = [i for i in instalments if i.state != CANCELLED]  # an earlier shorter term's: nothing of the lease
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
    if lease.timing == "advance":  # rent K paid its month's interest ahead: the balance is rent K + 1's
        interest_from = after[0].due_on
    else:  # in arrears the balance after rent K is its due date's (the lease's start before any rent)
        interest_from = rents[done - 1].due_on if done else lease.starts_on
    return Basis(business_date, done, balance, lease.residual, tuple(rows), tuple(after), interest_from)


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


def accrued_adjustment(lease: LeaseRow, basis: Basis, amount: int) -> int:
    """The interest of ``amount`` fen for the days from ``basis.interest_from`` to its business date, signed fen (see
    the module's docstring): A × the contract rate × days / the days of the lease's settlement day count, half-up to
    the fen once (:func:`servicing.settlement.accrued_interest`'s rounding, as an early settlement counts it);
    negative — a credit — when the date is ahead."""
    days = (basis.business_date - basis.interest_from).days
    year = int(lease.settlement_day_count.split("/")[1])  # ACT/360 | ACT/365 (plans/product.py EarlySettlement)
    interest = to_fen(accrued_interest(yuan(amount), lease.nominal_rate, abs(days), year))
    return interest if days >= 0 else -interest


def valid_until(basis: Basis) -> date:
    """The last day the offer holds: its business date (the interest line counts to the day)."""
    return basis.business_date


def _ends_on(lease: LeaseRow, term: int) -> date:
    """The end of a term of ``term`` months on the lease's calendar (plans.timeline: months from its start; a lease
    not dated that way: its end moved by the months dropped)."""
    if term == lease.term:
        return lease.ends_on
    if lease.ends_on == add_months(lease.starts_on, lease.term):
        return add_months(lease.starts_on, term)
    return add_months(lease.ends_on, term - lease.term)


def preview_of(lease: LeaseRow, basis: Basis, shorter: Reamortisation, lower: Reamortisation) -> dict[str, Any]:
    """Both options as the customer sees them (fen, ISO dates): the interest line (:func:`accrued_adjustment`, with
    the date and days it counts) and the total to pay, the old schedule's rent, term and interest left, and per option
    its rent, last payment, term, end, interest saved and every new row."""
    due = {i.number: i.due_on for i in basis.rents_after}

    def option(o: Reamortisation) -> dict[str, Any]:
        return {"rent": to_fen(o.rent), "last_payment": to_fen(o.last_payment), "term": o.term,
                "rents_left": o.rents_left, "ends_on": _ends_on(lease, o.term).isoformat(),
                "interest_saved": to_fen(o.interest_saved),
                "schedule": [{"number": r.period, "due_on": due[r.period].isoformat(), "payment": to_fen(r.payment),
                              "principal": to_fen(r.principal), "interest": to_fen(r.interest),
                              "balance": to_fen(r.balance)} for r in o.schedule]}

    amount = to_fen(shorter.prepayment)
    adjustment = accrued_adjustment(lease, basis, amount)
    return {"after_number": basis.after_number, "balance_before": basis.balance,
            "balance_after": to_fen(shorter.balance_after), "residual": basis.residual,
            "accrued_interest": adjustment, "total": amount + adjustment,
            "interest_from": basis.interest_from.isoformat(),
            "interest_days": (basis.business_date - basis.interest_from).days,
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
    #: the interest of the days since the balance's date, signed fen (a credit when negative)
    accrued_interest: int = 0

    @property
    def total(self) -> int:
        """What the customer pays (fen): the amount and the interest line (less the credit)."""
        return self.amount + self.accrued_interest

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
                      row.applied_at, today, row.accrued_interest)


def _instalments(session: Session, lease_id: str, *, lock: bool = False) -> list[InstalmentRow]:
    query = select(InstalmentRow).where(InstalmentRow.lease_id == lease_id).order_by(InstalmentRow.number)
    return list(session.scalars(query.with_for_update() if lock else query))


def _under_way(session: Session, lease_id: str, instalments: Sequence[InstalmentRow], basis: Basis,
               day: date) -> InstalmentRow | None:
    """The instalment after rent K (a rent, or the final rent) that a payment still waiting for its result targets
    (processing, waiting for the customer's bank, or created on the business date ``day``), if any: the prepayment
    would change (or cancel) what that payment pays."""
    after = {i.id: i for i in instalments if i.state != CANCELLED and (
        i.kind == FINAL_RENT or (i.kind == RENT and i.number > basis.after_number))}
    if not after:
        return None
    found = session.scalars(select(CollectionAttemptRow.instalment_id).where(
        CollectionAttemptRow.lease_id == lease_id, CollectionAttemptRow.instalment_id.in_(list(after)),
        or_(CollectionAttemptRow.status.in_(WAITING), and_(CollectionAttemptRow.status == STARTED,
                                                           CollectionAttemptRow.business_date >= day))
    ).order_by(CollectionAttemptRow.created_at).limit(1)).first()
    return after[found] if found is not None else None


def _basis_now(session: Session, lease: LeaseRow, day: date, *,
               lock: bool = False) -> tuple[Basis, list[InstalmentRow]]:
    """:func:`prepayment_basis` on the stored rows, and (409) none while a payment of an instalment after rent K is
    under way (:func:`_under_way`)."""
    instalments = _instalments(session, lease.id, lock=lock)
    basis = prepayment_basis(lease, instalments, day)
    paying = _under_way(session, lease.id, instalments, basis, day)
    if paying is not None:
        zh, en = ("尾付租金", "the final rent") if paying.kind == FINAL_RENT else (
            f"第 {paying.number} 期租金", f"rent {paying.number}")
        raise _refused("amount", "under_way", f"{zh}的一笔付款正在处理中，请待其完成后再申请提前还款",
                       f"A payment of {en} is under way: ask again once it has gone through", 409)
    return basis, instalments


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
            basis, _ = _basis_now(session, lease, day)
            shorter, lower = reamortised(lease, basis, amount)
            preview = preview_of(lease, basis, shorter, lower)
            session.execute(update(PrepaymentRow).where(
                PrepaymentRow.lease_id == lease_id, PrepaymentRow.status == OFFERED).values(
                status=case((PrepaymentRow.valid_until < day, EXPIRED), else_=SUPERSEDED)))
            row = PrepaymentRow(
                id=str(uuid.uuid4()), lease_id=lease_id, business_date=day, valid_until=valid_until(basis),
                amount=amount, option="", after_number=basis.after_number, new_term=0, new_rent=0,
                preview=json.dumps(preview, sort_keys=True), status=OFFERED, requested_by=requested_by[:64],
                attempt_id=None, created_at=now, applied_at=None, accrued_interest=preview["accrued_interest"])
            session.add(row)
            session.flush()
            return _prepayment(row, day)

    def basis(self, lease: LeaseRow) -> Basis:
        """Where a prepayment of ``lease`` would start from on the business date; :class:`PrepaymentRefused` when
        none may be asked now."""
        with self.db.session() as session:
            return _basis_now(session, lease, current_business_date(session))[0]

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
    the whole payment (the amount and the interest line), or 0 when it applies nothing (the whole payment is then
    refunded as a surplus). See the module's docstring for the checks and the changes."""
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
    total = row.amount + row.accrued_interest
    if amount != total or attempt.amount != total:
        return refuse(f"{amount} fen paid for {total}")
    if row.option not in OPTIONS:
        return refuse("no option chosen")
    try:
        basis, instalments = _basis_now(session, lease, day, lock=True)
        # the figures as counted on the offer's day: a payment started within it is applied with them (the interest
        # line is not counted again)
        basis = replace(basis, business_date=row.business_date)
        shorter, lower = reamortised(lease, basis, row.amount)
    except PrepaymentRefused as exc:
        return refuse(exc.error.code, stale=True)
    preview = json.loads(row.preview)
    if basis.after_number != row.after_number or preview_of(lease, basis, shorter, lower) != preview:
        return refuse("the lease changed since the offer", stale=True)
    chosen = shorter if row.option == SHORTER_TERM else lower
    final = next((i for i in instalments if i.kind == FINAL_RENT and i.state != CANCELLED), None)
    row.schedule = json.dumps(applied_schedule(lease, basis, chosen, row.accrued_interest, final), sort_keys=True)
    ensure_vat(session, lease, now)  # a lease opened before VAT was posted: its rents' VAT in Pending first
    policy, kind = load_tax_policy(), structure(lease)
    moved = [*basis.rents_after, *([final] if final is not None else [])]  # their VAT waits in Pending
    vat_before = tuple(instalment_tax(policy, kind, i) for i in moved)
    dropped = sum(i.interest for i in basis.rents_after)
    _rewrite(session, lease, basis, chosen, day, now)
    dropped -= sum(i.interest for i in basis.rents_after)
    if final is not None:
        session.refresh(final)  # moved to the new end of the term by an UPDATE
    vat_after = tuple(instalment_tax(policy, kind, i) for i in moved)
    note = f"部分提前还款 partial prepayment after rent {row.after_number}, {row.option}"
    session.add(ServicingMovementRow(
        lease_id=lease.id, instalment_id=None, kind="prepayment", value_date=day, principal=-row.amount, interest=0,
        penalty=0, key=f"prepayment:{row.id}", reference=(reference or "")[:64] or None, booked_at=now,
        note=f"{note}: {row.amount} fen"))
    if row.accrued_interest:
        session.add(ServicingMovementRow(
            lease_id=lease.id, instalment_id=None, kind="prepayment_interest", value_date=day, principal=0,
            interest=-row.accrued_interest, penalty=0, key=f"prepayment:{row.id}:interest",
            reference=(reference or "")[:64] or None, booked_at=now,
            note=f"{note}: {'应计利息 accrued' if row.accrued_interest > 0 else '已付利息退还 credited'} interest "
                 f"since {basis.interest_from.isoformat()}, {row.accrued_interest} fen"[:255]))
    session.execute(update(PrepaymentRow).where(PrepaymentRow.lease_id == lease.id, PrepaymentRow.status == OFFERED,
                                                PrepaymentRow.id != row.id).values(status=SUPERSEDED))
    row.status, row.applied_at, row.attempt_id = APPLIED, now, attempt.id
    row.new_term, row.new_rent = chosen.term, to_fen(chosen.rent)
    session.flush()
    lock_leases(session, [lease.id])  # what the lease recognised, read after any income run on it (finance_income)
    schedule = schedules(session, [lease])[lease.id]
    excess = recognised(session, [lease.id]).get(lease.id, 0) - recognised_through(schedule,
                                                                                   day.replace(day=1) - ONE_DAY)
    entries = prepaid_entries(Prepaid(row.id, lease.id, lease.dealer_id, day, row.amount, row.accrued_interest,
                                      dropped, max(0, excess), rule=policy.rule(kind, day), before=vat_before,
                                      after=vat_after))
    post(session, entries, now)
    # its e-invoice asked for (infra/invoicing.py), carrying the output VAT its entries posted, to the fen
    prepayment_paid(session, lease, row.id, principal=row.amount, interest=row.accrued_interest,
                    tax=sum(li.credit - li.debit for e in entries for li in e.lines if li.account == VAT_OUTPUT),
                    paid_on=day, now=now)
    Job(TASK, {"lease_id": lease.id, "prepayment_id": row.id}, QUEUE,
        queueing_lock=f"{TASK}:{row.id}").defer(session)
    return total


def applied_schedule(lease: LeaseRow, basis: Basis, chosen: Reamortisation, adjustment: int,
                     final: InstalmentRow | None) -> dict[str, Any]:
    """The schedule a prepayment applies, as it applies it (stored on the prepayment, ``schedule``; the schedule annex
    states it): the day and the amount, the interest line, the balance before and after, each new row after rent K
    (due date, rent, principal, interest, the principal outstanding after it) with the final rent last, and the rents a
    shorter term cancels as they were (fen, ISO dates)."""
    due = {i.number: i.due_on for i in basis.rents_after}
    amount = to_fen(chosen.prepayment)
    balance = basis.balance - amount
    rows = []
    for r in chosen.schedule:
        balance -= to_fen(r.principal)
        rows.append({"number": r.period, "due_on": due[r.period].isoformat(), "amount": to_fen(r.payment),
                     "principal": to_fen(r.principal), "interest": to_fen(r.interest), "balance": balance,
                     "final": False})
    if final is not None:
        balance -= final.principal
        rows.append({"number": chosen.term + 1, "due_on": _ends_on(lease, chosen.term).isoformat(),
                     "amount": final.amount, "principal": final.principal, "interest": final.interest,
                     "balance": balance, "final": True})
    new = {r.period for r in chosen.schedule}
    return {"effective_on": basis.business_date.isoformat(), "amount": amount, "accrued_interest": adjustment,
            "interest_from": basis.interest_from.isoformat(), "option": chosen.option,
            "after_number": basis.after_number, "balance_before": basis.balance,
            "balance_after": basis.balance - amount, "rows": rows,
            "cancelled": [{"number": i.number, "due_on": i.due_on.isoformat(), "amount": i.amount,
                           "principal": i.principal, "interest": i.interest}
                          for i in basis.rents_after if i.number not in new]}


def _rewrite(session: Session, lease: LeaseRow, basis: Basis, chosen: Reamortisation, day: date,
             now: datetime) -> None:
    """The rents after K as ``chosen`` amortises them, in place; a shorter term's rents no longer needed cancelled (see
    the module's docstring: kept, zeroed, their numbers negated) and its final rent moved to the new end; the lease's
    term, end and rent."""
    new = {r.period: r for r in chosen.schedule}
    for inst in basis.rents_after:
        if inst.number in new:
            r = new[inst.number]
            inst.amount, inst.principal, inst.interest = to_fen(r.payment), to_fen(r.principal), to_fen(r.interest)
        else:
            inst.state, inst.number, inst.settled_on = CANCELLED, -inst.number, day
            inst.amount = inst.principal = inst.interest = 0
        inst.updated_at = now
    session.flush()  # the numbers the final rent may take are free now
    ends_on = _ends_on(lease, chosen.term)
    session.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease.id, InstalmentRow.kind == FINAL_RENT,
                                                InstalmentRow.state != CANCELLED).values(
        number=chosen.term + 1, due_on=ends_on, updated_at=now))
    lease.term, lease.ends_on = chosen.term, ends_on
    if chosen.option == LOWER_RENT:
        lease.monthly_payment = to_fen(chosen.rent)
    session.flush()
