"""Early settlement (提前结清, issue 18 §5) in the database: the quote the customer asked for, paying it, the lease
closing.

- :func:`offer` stores a quote (:class:`servicing.settlement.SettlementQuote`, counted by bff/servicing/lease_page.py
  ``quote``) as ``settlement_quotes`` (migration 0021): each line in fen, the whole quote as JSON, payable until the
  end of its settlement day (``valid_until`` = ``settles_on``, Asia/Shanghai), ``offered``. A new request supersedes the
  lease's quote on offer, in the same transaction, under the lease's row lock (one offered quote per lease). None once
  the lessee has chosen what happens at the end of the term (an ``end_of_term`` row, infra/end_of_term.py: the purchase
  price or the return's charges are instalments a settlement does not count, a returned car offsets the final rent the
  quote would charge): the end of the term is settled on its own page.
- :func:`expire` — the close of business's hook (:func:`close_hook`, registered by bff/servicing/close.py): the quotes
  of a batch's leases whose day has ended turn ``expired``, by one UPDATE per batch; run again it changes nothing.
- :func:`book_settlement` — called by :meth:`infra.collections.SqlCollections.book` (its transaction, the lease's row
  lock held) for a payment whose attempt pays a settlement quote; :func:`settle_without_payment` for a quote the deposit
  covers (nothing to pay: the customer confirms). Both close the lease by :func:`_settle`.

What the settlement books, each movement keyed ``settlement:<quote>:<part>`` (booked once), signed as payments are
(negative: what the settlement's money paid — the customer's payment and the deposit offset):

- each instalment touched, one movement: a rent due on or before the settlement date (the quote's arrears) is paid —
  its principal, interest and late charge —, state ``paid``; an instalment due after it (and the final rent) is
  replaced: its principal is repaid (the quote's outstanding principal), its interest not yet paid is no longer owed
  (kept in the instalment's ``waived``), state ``settled`` (infra/servicing.py);
- the lease's own lines (``instalment_id`` NULL): the interest accrued to the settlement date, the early-settlement
  fee (in ``penalty``: a charge), the late charges owed and not accrued yet, the difference between the quote's
  principal and the replaced instalments' (rent K's interest for a lease paid in advance), the interest paid ahead
  given back (positive), and the deposit offset (positive: paid from the deposit, not by the customer).

**Late charges.** The quote counts them through its settlement day — the most the lease may owe while the quote is
payable — and that figure stays what is paid. The settlement books only those owed on the business date it is paid
(:func:`charges_owed`): the charges the closes accrued that are still unpaid (a hand payment after the quote may have
paid some of them) and those of the days before the payment's day not accrued yet, never beyond the settlement day; a
rent paid with the settlement by its last day to pay is never late. The rest of the quote's late charges is not
applied: :meth:`infra.collections.SqlCollections.book` refunds what a payment did not apply as its surplus (or, with
nothing paid, the deposit's refund grows by it). Charges owed above the quote's (not within its validity) book nothing.
What was booked is kept on the quote (``penalties_booked``, migration 0025): the settled page and the certificate
state it, and the amount settled (:attr:`Quote.amount_settled`: the amount due less the charges not owed).

So the movements add up to the amount settled, negated, to the fen: without the deposit's line to the amount settled
plus the deposit offset. The lease turns ``settled`` (``settled_on`` the settlement date: the quote's, which the credit
report closes the account on), the quote ``paid`` (``paid_on`` the business date it was paid, migration 0027: the
certificate's 付清日 and the day the mortgage release opens), and the ``servicing.settled`` job (the certificate, the
mortgage release, the customer's text: bff/servicing/settled.py) is deferred in the same transaction. The deposit goes
the way today's end-of-term settlement takes it (bff/payments/settlement.py): the application's term is closed with the
deposit kept as the deduction, less what the settlement refunds (a negative amount settled), and the ``payments.settle``
job refunds the rest of the deposit.

**The books** (issue 19, books/settlement.py): in the same transaction ``_settle`` posts ``settlement:<quote>`` (what
the payment applied out of Liabilities:Unapplied:Lessees — the receipt put it there —, the deposit kept, the
receivable's principal and interest owed, the replaced rents' interest out of unearned income, the late charges, the
interest to the day, the fee) and ``income:<lease>:settlement:<quote>`` (the lease's finance income made final: its kept
rents' interest, never the interest waived). A replay posts nothing twice (the keys).

**VAT** (issue 19 §3, books/settlement.py): a lease without its commencement VAT (opened before VAT was posted) has it
brought in first (infra/vat_catchup.py ``ensure``). Then ``settlement:<quote>`` credits the settlement's interest to the
day, its fee and the late charges it collects net of the VAT they include (the rule in force on the business date it
is paid, for the lease's structure), Output the tax; ``settlement:<quote>:vat`` takes the replaced rents' VAT out of
Pending (each one's tax as it stands, the rule of its due date: the principal's share to Output — paid on the day —,
the interest's back to Unearned); and the rents the settlement pays whose tax point (their due date) the close has not
passed yet — due on the business date or after it, by the settlement day: a settled lease is never closed again — post
it with the settlement, ``vat:<instalment id>`` (dated their due date, or the day paid when that is earlier: the
money received first). Finance income is made final net: the kept rents' interest less its tax. After it the lease's
Pending is nothing.

A quote whose lease changed since it was counted (a rent paid or waived meanwhile: its arrears or what was paid ahead
differ; late charges owed above the quote's; the end of the term chosen) no longer holds: it is superseded and its
payment refunded in full (the customer asks for a new figure, or settles the end of the term on its page).
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
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from books.accounts import VAT_OUTPUT
from books.settlement import Settled
from books.settlement import settled as settled_entries
from books.vat import load_tax_policy
from infra.books import post
from infra.db.engine import Database
from infra.db.models import ApplicationEventRow
from infra.db.models import ApplicationRow
from infra.db.models import CollectionAttemptRow
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import ServicingMovementRow
from infra.db.models import SettlementQuoteRow
from infra.finance_income import lock_leases
from infra.finance_income import recognised
from infra.invoicing import RENT_KINDS
from infra.invoicing import invoiced_rents
from infra.invoicing import settlement_movements_paid
from infra.jobs import Job
from infra.servicing import ACTIVE
from infra.servicing import CANCELLED
from infra.servicing import OVERDUE
from infra.servicing import PAID
from infra.servicing import RENT
from infra.servicing import SETTLED
from infra.servicing import WAIVED
from infra.servicing import BatchEvents
from infra.servicing import current_business_date
from infra.servicing import load_business_calendar
from infra.servicing import penalty_terms
from infra.servicing import to_fen
from infra.servicing import yuan
from infra.vat_catchup import ensure as ensure_vat
from infra.vat_catchup import instalment_tax
from infra.vat_catchup import posted
from infra.vat_catchup import structure
from infra.vat_points import tax_point_of
from servicing.calendar import BusinessCalendar
from servicing.penalty import penalty_between
from servicing.settlement import SettlementQuote

log = logging.getLogger(__name__)

OFFERED, PAID_QUOTE, EXPIRED, SUPERSEDED = "offered", "paid", "expired", "superseded"
#: a settled lease's status (leases.status)
SETTLED_LEASE = "settled"
#: the job a settlement defers (bff/servicing/settled.py, lane B), and its queue (as the other servicing jobs')
SETTLED_TASK, SETTLED_QUEUE = "servicing.settled", "servicing"
ONE_DAY = timedelta(days=1)


class QuoteRefused(Exception):
    """A quote that cannot be settled (now): ``code`` — ``not_offered`` (paid, superseded), ``expired``,
    ``lease_closed``, ``changed`` (the lease changed since it was counted), ``end_of_term`` (the lessee chose what
    happens at the end of the term: no settlement is quoted or booked then), ``amount`` (a payment of another amount),
    ``to_pay`` (there is something to pay: it is settled by paying it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Quote:
    """A stored quote as the pages read it (amounts in fen; ``data``: the quote's JSON, with its lines). Once paid,
    ``penalties_booked``: the late charges the settlement booked (None for a quote not paid, or paid before they were
    kept: then its own ``penalties``) and ``paid_on``, the business date it was paid (None until then)."""

    id: str
    lease_id: str
    business_date: date
    settles_on: date
    valid_until: date
    amount_due: int
    deposit_offset: int
    status: str
    requested_by: str
    attempt_id: str | None
    settled_at: datetime | None
    data: dict[str, Any]
    penalties: int = 0
    penalties_booked: int | None = None
    paid_on: date | None = None

    @property
    def charges(self) -> int:
        """The late charges it settles: those booked once paid, the quote's until then (fen)."""
        return self.penalties if self.penalties_booked is None else self.penalties_booked

    @property
    def amount_settled(self) -> int:
        """What the settlement came to: the amount due less the quote's late charges it did not book (fen; negative:
        the lessor refunds it from the deposit)."""
        return self.amount_due - (self.penalties - self.charges)

    @property
    def refund(self) -> int:
        """What the lessor pays back of the deposit (the deposit beyond what is owed), fen."""
        return max(0, -self.amount_settled)

    @property
    def payment_refund(self) -> int:
        """What is given back of the customer's payment (the quote's late charges not owed when it was paid), fen."""
        return max(0, self.amount_due) - max(0, self.amount_settled)

    def valid_on(self, business_date: date) -> bool:
        """Whether it may be paid (or confirmed) on ``business_date``: on offer and its day not ended."""
        return self.status == OFFERED and business_date <= self.valid_until


def _quote(r: SettlementQuoteRow) -> Quote:
    return Quote(r.id, r.lease_id, r.business_date, r.settles_on, r.valid_until, r.amount_due, r.deposit_offset,
                 r.status, r.requested_by, r.attempt_id, r.settled_at, json.loads(r.quote), r.penalties,
                 r.penalties_booked, r.paid_on)


def end_of_term_chosen(session: Session, lease_id: str) -> bool:
    """Whether the lessee has chosen what happens at the end of the lease's term (its ``end_of_term`` row): from then
    on it is not settled early (the end of the term is, on its own page)."""
    return session.get(EndOfTermRow, lease_id) is not None


# -- late charges -----------------------------------------------------------------------------------------------------
def late_charges_through(lease: LeaseRow, instalments: Sequence[InstalmentRow], through: date,
                         calendar: BusinessCalendar) -> int:
    """The late charges not yet accrued that the rents due by ``through`` will have accrued by the end of ``through``
    if nothing is paid before (fen): an overdue rent from the day after its last accrued day, a rent not yet late from
    the day after its last day to pay (the due day moved to a business day, plus the contract's grace), on what is
    unpaid of it now — as the close of business accrues them (servicing.penalty, rounded once on the total)."""
    terms, total = penalty_terms(lease), Decimal(0)
    for inst in instalments:
        owed = 0 if inst.state in (WAIVED, SETTLED) else max(0, inst.amount - inst.paid_principal - inst.paid_interest)
        if owed == 0 or inst.due_on > through:
            continue
        if inst.state == OVERDUE and inst.overdue_since is not None:
            last_day = inst.overdue_since - ONE_DAY
            start = inst.penalty_through + ONE_DAY if inst.penalty_through else inst.overdue_since
        else:
            last_day = calendar.last_day_to_pay(inst.due_on, lease.grace_days)
            start = last_day + ONE_DAY
        if start > through:
            continue
        principal = max(0, min(inst.principal - inst.paid_principal, owed))
        total += penalty_between(start, through + ONE_DAY, due_on=last_day, unpaid_rent=yuan(owed),
                                 unpaid_principal=yuan(principal), terms=terms)
    return to_fen(total)


def charges_owed(lease: LeaseRow, instalments: Sequence[InstalmentRow], day: date, settles_on: date,
                 calendar: BusinessCalendar) -> int:
    """The late charges a settlement paid on the business date ``day`` owes (fen): those accrued and unpaid, and what
    the rents accrue through ``day`` not accrued yet — a payment counts for the day it is made on (as the close
    counts it: nothing is charged for a day on what was paid that day), so the days before ``day`` —, never beyond
    ``settles_on`` (the quote counts interest and charges to it). A rent paid with the settlement by its last day to
    pay owes none."""
    accrued = sum(max(0, i.penalty_accrued - i.paid_penalty) for i in instalments if i.state not in (WAIVED, SETTLED))
    return accrued + late_charges_through(lease, instalments, min(day - ONE_DAY, settles_on), calendar)


# -- storing a quote --------------------------------------------------------------------------------------------------
def offer(session: Session, lease_id: str, quote: SettlementQuote, *, business_date: date, requested_by: str,
          now: datetime) -> str:
    """Store ``quote`` (counted on ``business_date`` for its settlement date) for the lease, offered until the end of
    its settlement day; the lease's quote on offer before is superseded. Under the lease's row lock (two requests at
    once: one after the other). The new quote's id."""
    if quote.settles_on is None:
        raise ValueError("a stored quote is for a calendar date")
    lease = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()).scalar_one()
    if lease.status != ACTIVE:
        raise QuoteRefused("lease_closed")
    if end_of_term_chosen(session, lease_id):  # chosen under the same lock (infra/end_of_term.py choose)
        raise QuoteRefused("end_of_term")
    session.execute(update(SettlementQuoteRow).where(
        SettlementQuoteRow.lease_id == lease_id, SettlementQuoteRow.status == OFFERED).values(status=SUPERSEDED))
    quote_id = str(uuid.uuid4())
    session.add(SettlementQuoteRow(
        id=quote_id, lease_id=lease_id, business_date=business_date, settles_on=quote.settles_on,
        valid_until=quote.settles_on, outstanding_principal=to_fen(quote.outstanding_principal),
        accrued_interest=to_fen(quote.accrued_interest), early_settlement_fee=to_fen(quote.early_settlement_fee),
        arrears=to_fen(quote.arrears), penalties=to_fen(quote.penalties),
        paid_ahead_interest=to_fen(quote.paid_ahead_interest), deposit_offset=to_fen(quote.deposit_offset),
        amount_due=to_fen(quote.amount_due), quote=json.dumps(quote.as_dict(), ensure_ascii=False),
        status=OFFERED, requested_by=requested_by[:64], attempt_id=None, created_at=now, settled_at=None))
    session.flush()
    return quote_id


# -- the close of business ------------------------------------------------------------------------------------------
def expire(session: Session, business_date: date, lease_ids: Sequence[str] | None = None) -> int:
    """Offered quotes (of ``lease_ids``; None: every lease's) whose validity ended before ``business_date`` turn
    ``expired``: one UPDATE; run again it changes nothing. The number expired."""
    stmt = update(SettlementQuoteRow).where(SettlementQuoteRow.status == OFFERED,
                                            SettlementQuoteRow.valid_until < business_date)
    if lease_ids is not None:
        stmt = stmt.where(SettlementQuoteRow.lease_id.in_(list(lease_ids)))
    return len(session.execute(stmt.values(status=EXPIRED).returning(SettlementQuoteRow.id)).all())


def close_hook(events: BatchEvents) -> None:
    """In each batch of the close of the business date D: the batch's leases' quotes valid until D or before expire
    (D has ended: a quote is valid to the end of its day), in the batch's transaction, under its leases' locks."""
    expire(events.session, events.business_date + ONE_DAY, events.lease_ids)


# -- settling ---------------------------------------------------------------------------------------------------------
def book_settlement(session: Session, lease: LeaseRow, attempt: CollectionAttemptRow, amount: int, day: date,
                    now: datetime, reference: str | None) -> int:
    """Book ``amount`` fen paid for the settlement quote the attempt names (in :meth:`SqlCollections.book`'s
    transaction, the lease locked): the lease settled when it is that quote's amount due, the quote offered (or
    expired, when the payment was started by its last day: a late answer is not the customer's fault) and the lease
    active; what was applied (the amount settled — the amount less the quote's late charges not owed on ``day`` —, or
    0: refunded in full). The rest is refunded by the caller as the payment's surplus."""
    row = session.get(SettlementQuoteRow, attempt.subject_id, with_for_update=True) if attempt.subject_id else None
    code = None
    if row is None or row.lease_id != lease.id:
        code = "unknown"
    elif lease.status != ACTIVE:
        code = "lease_closed"
    elif row.status not in (OFFERED, EXPIRED) or (row.status == EXPIRED and attempt.business_date > row.valid_until):
        code = "not_offered" if row.status != EXPIRED else "expired"
    elif attempt.business_date > row.valid_until:
        code = "expired"
    elif amount != row.amount_due:
        code = "amount"
    if code is None:
        assert row is not None
        try:
            return max(0, _settle(session, lease, row, day, now, attempt_id=attempt.id))
        except QuoteRefused as exc:
            code = exc.code
    log.warning("settlement payment %s (%s fen) of lease %s not booked (%s): refunded", attempt.id, amount, lease.id,
                code)
    return 0


def _settle(session: Session, lease: LeaseRow, q: SettlementQuoteRow, day: date, now: datetime, *,
            attempt_id: str | None) -> int:
    """Close the lease by the quote ``q`` on the business date ``day`` (see the module's docstring); the amount
    settled (fen: the amount due less the quote's late charges not owed on ``day``; negative: refunded from the
    deposit). Raises :class:`QuoteRefused` (the quote superseded, nothing booked) when the lease no longer is what the
    quote counted (``changed``) or its end of term was chosen (``end_of_term``)."""
    data = json.loads(q.quote)
    on = q.settles_on
    if end_of_term_chosen(session, lease.id):
        _supersede(session, q, "end_of_term")
    ensure_vat(session, lease, now)  # a lease opened before VAT was posted: its rents' VAT in Pending first
    rows = list(session.scalars(select(InstalmentRow).where(  # a prepayment's cancelled rents: no part of the lease
        InstalmentRow.lease_id == lease.id, InstalmentRow.state != CANCELLED)
        .order_by(InstalmentRow.number).with_for_update()))
    arrears = [r for r in rows if r.kind == RENT and r.due_on <= on and r.state != WAIVED]
    replaced = [r for r in rows if not (r.kind == RENT and r.due_on <= on) and r.state != WAIVED]
    owed_arrears = sum(max(0, r.principal - r.paid_principal) + max(0, r.interest - r.paid_interest) for r in arrears)
    ahead_principal = sum(r.paid_principal for r in replaced if r.due_on > on)
    ahead_interest = sum(r.paid_interest for r in replaced if r.due_on > on)
    if (owed_arrears != q.arrears or ahead_interest != q.paid_ahead_interest
            or ahead_principal != to_fen(data.get("paid_ahead_principal", "0"))):
        _supersede(session, q, "changed")
    charges = charges_owed(lease, rows, day, on, load_business_calendar(session))
    if charges > q.penalties:  # more than the quote counted to its day: not within its validity
        log.warning("settlement %s: late charges owed %s fen on %s, above the quote's %s", q.id, charges, day,
                    q.penalties)
        _supersede(session, q, "changed")
    settled = q.amount_due - (q.penalties - charges)
    key = f"settlement:{q.id}"
    movements: list[ServicingMovementRow] = []

    def move(part: str, kind: str, note: str, *, instalment_id: int | None = None, principal: int = 0,
             interest: int = 0, penalty: int = 0) -> None:
        movements.append(ServicingMovementRow(
            lease_id=lease.id, instalment_id=instalment_id, kind=kind, value_date=day, principal=principal,
            interest=interest, penalty=penalty, key=f"{key}:{part}"[:160], reference=None, booked_at=now,
            note=note[:255]))

    charges_accrued = owed = waived = 0
    for r in arrears:
        p, i, pen = (max(0, r.principal - r.paid_principal), max(0, r.interest - r.paid_interest),
                     max(0, r.penalty_accrued - r.paid_penalty))
        if not p + i + pen:
            continue
        owed += p + i
        r.paid_principal, r.paid_interest, r.paid_penalty = r.paid_principal + p, r.paid_interest + i, \
            r.paid_penalty + pen
        r.state, r.settled_on, r.updated_at = PAID, day, now
        charges_accrued += pen
        move(str(r.id), "settlement", f"提前结清 paid by the settlement {p + i + pen} fen", instalment_id=r.id,
             principal=-p, interest=-i, penalty=-pen)
    replaced_principal = 0
    for r in replaced:
        p, i, pen = (max(0, r.principal - r.paid_principal), max(0, r.interest - r.paid_interest),
                     max(0, r.penalty_accrued - r.paid_penalty))
        if not p + i + pen and r.state == PAID:
            continue  # paid ahead in full: what it paid is counted in the quote (given back, or off the principal)
        r.paid_principal, r.paid_penalty, r.waived = r.paid_principal + p, r.paid_penalty + pen, r.waived + i
        r.state, r.settled_on, r.updated_at = SETTLED, on, now
        replaced_principal += p
        owed, waived = owed + p + i, waived + i
        charges_accrued += pen
        move(str(r.id), "settlement", f"提前结清 replaced: principal {p} fen repaid, interest {i} fen not owed",
             instalment_id=r.id, principal=-p, penalty=-pen)
    move("interest", "settlement_interest", f"应计利息 interest accrued to {on.isoformat()}",
         interest=-q.accrued_interest)
    move("fee", "settlement_fee", "提前结清手续费 early-settlement fee", penalty=-q.early_settlement_fee)
    if charges != charges_accrued:
        move("charges", "settlement_charges", f"逾期违约金 late charges to {day.isoformat()} not accrued yet",
             penalty=-(charges - charges_accrued))
    if q.outstanding_principal != replaced_principal:
        move("principal", "settlement_principal", "未偿本金与被替代租金本金之差 the quote's principal less the "
             "replaced instalments'", principal=-(q.outstanding_principal - replaced_principal))
    if q.paid_ahead_interest:
        move("paid_ahead", "settlement_paid_ahead", "已提前支付的利息退还 interest paid ahead, given back",
             interest=q.paid_ahead_interest)
    if q.deposit_offset:
        move("deposit", "settlement_deposit", "保证金冲抵 paid from the deposit", principal=q.deposit_offset)
    total = sum(m.principal + m.interest + m.penalty for m in movements)
    if total != -settled:  # the quote's lines and the instalments disagree: nothing is booked
        raise RuntimeError(f"settlement {q.id} books {total} fen, its amount settled is {settled}")
    session.add_all(movements)
    replaced_ids = {r.id for r in replaced}
    lock_leases(session, [lease.id])  # what the lease recognised, read after any income run on it (finance_income)
    # VAT: each rent's tax as it stands under the rule of its due date; whose tax point (vat:<id>) is posted already
    policy, kind = load_tax_policy(), structure(lease)
    taxes = {r.id: instalment_tax(policy, kind, r) for r in rows}
    taxed = posted(session, [f"vat:{r.id}" for r in rows])
    # the tax points of the rents it pays that fell due since the close: the earlier of the due date and today, each
    # under the rule in force on it (infra/vat_points.py)
    points = [made for r in arrears if f"vat:{r.id}" not in taxed for made in [tax_point_of(
        policy, kind, r.id, lease.id, lease.dealer_id, min(r.due_on, day), r.due_on, r.amount, r.interest)]
        if made is not None]
    facts = Settled(
        q.id, lease.id, lease.dealer_id, day, amount_settled=settled, held=max(0, settled),
        deposit_offset=q.deposit_offset, owed=owed, interest_replaced=waived + q.paid_ahead_interest,
        charges=charges, accrued_interest=q.accrued_interest,
        principal_difference=q.outstanding_principal - replaced_principal, fee=q.early_settlement_fee,
        kept_interest=sum(taxes[r.id].net_interest for r in rows if r.id not in replaced_ids),
        recognised=recognised(session, [lease.id]).get(lease.id, 0), rule=policy.rule(kind, day),
        pending=tuple(taxes[r.id] for r in replaced if f"vat:{r.id}" not in taxed),
        taxed=tuple(taxes[r.id] for r in replaced if f"vat:{r.id}" in taxed))
    entries = points + settled_entries(facts)
    # its e-invoice asked for, carrying the output VAT the books posted (to the fen): the late charges' and the fee's
    # as the settlement taxed them, its rent part the rest of what it posted to Output now and the tax points posted
    # before of the rents no invoice covered yet
    uninvoiced = [r.id for r in rows if r.kind in RENT_KINDS and r.id not in invoiced_rents(
        session, lease.id, [r.id for r in rows])]
    output = sum(li.credit - li.debit for e in entries for li in e.lines if li.account == VAT_OUTPUT)
    output += _output_of(session, [f"vat:{i}" for i in uninvoiced if f"vat:{i}" in taxed])
    post(session, entries, now)
    charged = {"late_charge": facts.tax(charges), "fee": facts.tax(q.early_settlement_fee)}
    settlement_movements_paid(session, lease, q.id, movements, rows, paid_on=day, now=now,
                              taxes={**charged, "rent": output - sum(charged.values())})
    lease.status, lease.settled_on = SETTLED_LEASE, on
    q.status, q.settled_at, q.attempt_id, q.penalties_booked, q.paid_on = PAID_QUOTE, now, attempt_id, charges, day
    _close_term(session, lease, q, settled, now)
    Job(SETTLED_TASK, {"lease_id": lease.id, "quote_id": q.id}, SETTLED_QUEUE).defer(session)
    session.flush()
    return settled


def _output_of(session: Session, keys: Sequence[str]) -> int:
    """What the entries ``keys`` credited to Liabilities:Tax:VAT:Output, net (fen)."""
    if not keys:
        return 0
    return int(session.execute(select(func.coalesce(func.sum(JournalLineRow.credit - JournalLineRow.debit), 0))
                               .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
                               .where(JournalEntryRow.key.in_(list(keys)), JournalLineRow.account == VAT_OUTPUT))
               .scalar_one())


def _supersede(session: Session, q: SettlementQuoteRow, code: str) -> None:
    """The quote no longer holds: superseded (its payment refunded in full by the caller); raises
    :class:`QuoteRefused`."""
    q.status = SUPERSEDED
    session.flush()
    raise QuoteRefused(code)


def _close_term(session: Session, lease: LeaseRow, q: SettlementQuoteRow, settled: int, now: datetime) -> None:
    """The application's term closed as ops close one at its end (bff/payments/settlement.py ``close``): the deposit
    offset kept as the deduction, less the refund a negative amount ``settled`` owes the customer; the
    ``payments.settle`` job then refunds the rest of the deposit. Nothing when the term is closed already or none was
    recorded."""
    refund = max(0, -settled)
    deduction = max(0, q.deposit_offset - refund)
    closed = session.execute(update(LeaseTermRow).where(
        LeaseTermRow.application_id == lease.application_id, LeaseTermRow.settlement.is_(None)).values(
        closed_at=now, closed_by="system", closed_by_label="提前结清 early settlement", deduction=deduction,
        deduction_reason=f"提前结清 保证金冲抵 early settlement {q.id}: deposit offset"[:255], settlement="due")
    ).rowcount  # type: ignore[attr-defined]
    moved = session.execute(update(ApplicationRow).where(
        ApplicationRow.id == lease.application_id, ApplicationRow.status == "delivered").values(
        status="closed", updated_at=now, version=ApplicationRow.version + 1)).rowcount  # type: ignore[attr-defined]
    if moved:
        session.add(ApplicationEventRow(
            application_id=lease.application_id, at=now, actor_kind="system", actor_id="settlement",
            from_status="delivered", to_status="closed",
            note=f"提前结清 settled early on {q.settles_on.isoformat()} (quote {q.id}); deposit kept {deduction} fen, "
                 f"refunded {refund} fen" + ("" if closed else "; no term to close")))


# -- the pages' reads and the confirmation of a quote the deposit covers ----------------------------------------------
class SqlSettlements:
    def __init__(self, db: Database) -> None:
        self.db = db

    def offer(self, lease_id: str, quote: SettlementQuote, *, requested_by: str, now: datetime) -> str:
        """:func:`offer` in its own transaction, on the business date read there."""
        with self.db.transaction() as session:
            return offer(session, lease_id, quote, business_date=current_business_date(session),
                         requested_by=requested_by, now=now)

    def get(self, quote_id: str) -> Quote | None:
        if not quote_id or len(quote_id) > 36:
            return None
        with self.db.session() as session:
            row = session.get(SettlementQuoteRow, quote_id)
            return _quote(row) if row is not None else None

    def end_of_term_chosen(self, lease_id: str) -> bool:
        """:func:`end_of_term_chosen`: no settlement is quoted or paid once it is."""
        with self.db.session() as session:
            return end_of_term_chosen(session, lease_id)

    def paid_quote(self, lease_id: str) -> Quote | None:
        """The quote that settled the lease, if one did."""
        with self.db.session() as session:
            row = session.scalars(select(SettlementQuoteRow).where(
                SettlementQuoteRow.lease_id == lease_id, SettlementQuoteRow.status == PAID_QUOTE)).first()
            return _quote(row) if row is not None else None

    def confirm(self, lease_id: str, quote_id: str, now: datetime) -> Quote:
        """Settle the lease by a quote with nothing to pay (the deposit covers it), once: the quote as it is then (a
        second confirmation finds it paid). Raises :class:`QuoteRefused`."""
        with self.db.transaction() as session:
            lease = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()).scalar_one()
            row = session.get(SettlementQuoteRow, quote_id, with_for_update=True)
            if row is None or row.lease_id != lease_id:
                raise QuoteRefused("unknown")
            if row.status == PAID_QUOTE:
                return _quote(row)
            if lease.status != ACTIVE:
                raise QuoteRefused("lease_closed")
            if row.amount_due > 0:
                raise QuoteRefused("to_pay")
            day = current_business_date(session)
            if row.status != OFFERED:
                raise QuoteRefused("not_offered" if row.status != EXPIRED else "expired")
            if day > row.valid_until:
                raise QuoteRefused("expired")
            try:
                with session.begin_nested():
                    _settle(session, lease, row, day, now, attempt_id=None)
            except QuoteRefused:
                row.status = SUPERSEDED  # the savepoint undid it with the rest
                session.flush()
                raise
            return _quote(row)
