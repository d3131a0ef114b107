"""The end of the term in the database (issue 18 §6; the figures are servicing/end_of_term.py's): the lessee's choice
(``end_of_term``, migration 0023), the purchase price added as an instalment, the return inspection, the deposit
applied, and the close of business's hook that ends a lease once everything is paid.

How each choice is carried by the receivable (decided here, documented once):

- **purchase**: the purchase price (留购价) becomes an instalment of kind ``purchase_price`` (number after the final
  rent, due on ``ends_on``, all principal), collected like a rent — the pay page pays it (``?instalment=``), an
  automatic collection takes it on its day, it falls overdue like any rent. On the term's last day the close of
  business applies the deposit to the purchase price, then to the final rent (the contract's 第五条: 保证金先行抵扣
  …尾付租金、留购价); what the deposit does not cover is paid as the rents are;
- **return**: the inspection offsets the final rent with the car (the instalment ``waived``, a ``car_returned``
  movement, its entries: books/end_of_term.py ``car_returned``), adds the charges as an instalment of kind
  ``return_charges`` due on the business date, and applies the deposit to what is then open (rents unpaid, then the
  charges); the rest is owed, paid on the pay page;
- the deposit applied is recorded as ``deposit_deduction`` (each application a ``deposit_offset`` movement keyed by
  lease and instalment); the refund of the rest goes through today's closing (bff/payments/settlement.py), in the
  transaction that ends the lease (:func:`_settle_deposits`): the application's term closed with what the deposit
  paid as the deduction, settlement due, and the ``payments.settle`` job refunds the rest. The deposit applies only
  while that term is open (``lease_terms.settlement`` NULL, its row locked: :func:`_deposit_held`) and never beyond
  what the deposit payment still holds; ops' closing page neither lists nor closes a lease in servicing, so the
  deposit is either applied here or refunded there, never both;
- a return's inspection is recorded from the term's end (or as many days before it as the contract allows:
  servicing/end_of_term.py ``inspection_opens``), not before.

- **refinance**: the new application's lease, when it opens (its handover signed, in that transaction:
  infra/servicing.py ``_pay_off_refinanced``), pays off the final rent (a ``refinanced`` movement keyed by the old
  lease); until then the refinance is on ops' end-of-term desk. The deposit is refunded in full when the lease ends.

**VAT** (issue 19 §3, books/end_of_term.py), under the rule in force on the event's business date for the lease's
structure: a charge (the purchase price, a return's charges) is income net of the VAT it includes, Output the tax, when
it is added; the deposit applied to a late charge likewise; the returned car's final rent gives back the VAT of what is
waived of it (its tax, under the rule of its due date, less the tax of what was paid of it) — out of Pending, or out of
Output when the close passed its due date before the inspection —, the interest's share to Unearned, the principal's
off the returned car's carrying amount. A lease without its commencement VAT (opened before VAT was posted) has it
brought in first (infra/vat_catchup.py ``ensure``).

(The deposit paying a rent in full before the close passed its due date is a receipt of it: its tax point that day.)

A lease ends (``leases.status`` ``ended``, ``end_of_term.status`` ``ended``) in the close of business (its hook,
:func:`end_of_term_hook`, set-based over the batch) once its choice is purchase or refinance, or a return inspected,
and no instalment is left open — or at once when an inspection leaves nothing to pay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from books import end_of_term as books_end_of_term
from books.income import recognised_through
from books.lease import tax_point
from books.vat import Rule
from books.vat import load_tax_policy
from books.vat import rent_tax
from infra.books import post
from infra.db.engine import Database
from infra.db.models import ApplicationEventRow
from infra.db.models import AuditEventRow
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import PaymentRow
from infra.db.models import ServicingMovementRow
from infra.finance_income import lock_leases
from infra.finance_income import recognised
from infra.finance_income import schedules
from infra.invoicing import rents_paid
from infra.servicing import ACTIVE
from infra.servicing import DUE
from infra.servicing import FINAL_RENT
from infra.servicing import OPEN
from infra.servicing import PAID
from infra.servicing import PARTLY_PAID
from infra.servicing import PENDING
from infra.servicing import WAIVED
from infra.servicing import BatchEvents
from infra.servicing import current_business_date
from infra.servicing import load_business_calendar
from infra.vat_catchup import ensure as ensure_vat
from infra.vat_catchup import instalment_tax
from infra.vat_catchup import posted
from infra.vat_catchup import structure
from infra.vat_points import tax_point_of
from servicing.end_of_term import REFINANCE
from servicing.end_of_term import declined_on
from servicing.end_of_term import inspection_opens
from servicing.end_of_term import may_choose_again
from servicing.end_of_term import rechoose_until

PURCHASE_PRICE, RETURN_CHARGES = "purchase_price", "return_charges"
CHOSEN, INSPECTED, ENDED = "chosen", "inspected", "ended"
LEASE_ENDED = "ended"
CLOSE_ACTOR = "system:close"


class ChoiceRefused(Exception):
    """A choice or an inspection the lease's state refuses (``code``; zh/en for the page)."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(code)
        self.code, self.zh, self.en = code, zh, en


@dataclass(frozen=True)
class Inspection:
    """A return inspection as the dealer recorded it (fen)."""

    mileage_km: int
    photo_keys: tuple[str, ...]
    damage_items: tuple[str, ...]
    damage_charge: int
    excess_mileage_charge: int
    notes: str
    inspected_by: str
    figures: Mapping[str, Any]


@dataclass(frozen=True)
class Rechoice:
    """A refinance not approved (第七条): the day its application was declined (Beijing time), the last day to choose
    another way (5 working days after it), and whether the business date is within them."""

    declined_on: date
    until: date
    open: bool


@dataclass(frozen=True)
class DeskRow:
    """A line of the end-of-term desk: the lease, its contract, its term's end, the refinancing application and its
    status (a return: the choice's status), the final rent still open (fen; a return: 0)."""

    lease_id: str
    contract_number: str
    ends_on: date
    application_id: str | None
    status: str
    final_left: int


@dataclass(frozen=True)
class Desk:
    refinances: list[DeskRow]
    returns: list[DeskRow]


class SqlEndOfTerm:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, lease_id: str) -> EndOfTermRow | None:
        with self.db.session() as session:
            return session.get(EndOfTermRow, lease_id)

    def choose(self, lease_id: str, option: str, *, by: str, terms: Mapping[str, Any], purchase_price: int,
               now: datetime, actor_id: str | None = None) -> EndOfTermRow:
        """Record the lessee's ``option`` (once per lease; the lease locked, active), with a purchase its price as an
        instalment. Raises :class:`ChoiceRefused` when the lease is not active or a choice was made already."""
        with self.db.session() as session:
            lease = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()).scalar_one()
            if lease.status != ACTIVE:
                raise ChoiceRefused("closed", "这份租约已结束", "This lease has ended")
            if session.get(EndOfTermRow, lease_id) is not None:
                raise ChoiceRefused("chosen", "您已经作出期满选择", "The end-of-term choice has been made already")
            day = current_business_date(session)
            row = EndOfTermRow(
                lease_id=lease_id, dealer_id=lease.dealer_id, option=option, status=CHOSEN, chosen_on=day,
                chosen_at=now, chosen_by=by[:64], terms=json.dumps(terms, ensure_ascii=False, sort_keys=True),
                purchase_price=purchase_price if option == "purchase" else 0, photo_keys="[]", damage_items="[]",
                damage_charge=0, excess_mileage_charge=0, deposit_deduction=0, refund=0, owed=0, notes="",
                updated_at=now)
            session.add(row)
            if option == "purchase" and purchase_price > 0:
                _add_instalment(session, lease, PURCHASE_PRICE, lease.ends_on, purchase_price, now)
            _audit(session, "end_of_term.chosen", lease, now, actor_id=actor_id, actor_label=by,
                   details={"option": option, "purchase_price": row.purchase_price})
            session.flush()
            return row

    def rechoice(self, lease_id: str) -> Rechoice | None:
        """The days to choose again after the lease's refinance was declined; None unless the choice is a refinance
        whose application (``refinance_application_id``) is ``declined``."""
        with self.db.session() as session:
            return _rechoice(session, lease_id)

    def choose_again(self, lease_id: str, option: str, *, by: str, terms: Mapping[str, Any], purchase_price: int,
                     now: datetime, actor_id: str | None = None) -> EndOfTermRow:
        """Replace a declined refinance with ``option`` (purchase or return), under the lease's lock: only while the
        lease is active, its choice a refinance whose application is declined and the business date within 5 working
        days of the decline (第七条). A purchase adds its price as an instalment (as :meth:`choose`); the declined
        application is unlinked (nothing pays off the final rent through it). Raises :class:`ChoiceRefused`."""
        if option == REFINANCE:
            raise ChoiceRefused("refinance", "请改选留购或退还车辆", "Choose to keep or to return the car")
        with self.db.session() as session:
            lease = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()).scalar_one()
            if lease.status != ACTIVE:
                raise ChoiceRefused("closed", "这份租约已结束", "This lease has ended")
            row = session.get(EndOfTermRow, lease_id, with_for_update=True, populate_existing=True)
            again = _rechoice(session, lease_id)
            if row is None or again is None:
                raise ChoiceRefused("chosen", "您已经作出期满选择", "The end-of-term choice has been made already")
            if not again.open:
                raise ChoiceRefused("too_late", f"改选期限已于 {again.until.isoformat()} 届满，请联系经销商",
                                    f"The days to choose again ended on {again.until.isoformat()}: contact your "
                                    "dealer")
            declined = row.refinance_application_id
            row.option, row.status, row.refinance_application_id = option, CHOSEN, None
            row.chosen_on, row.chosen_at, row.chosen_by = current_business_date(session), now, by[:64]
            row.terms = json.dumps({**terms, "declined_refinance": declined}, ensure_ascii=False, sort_keys=True)
            row.purchase_price = purchase_price if option == "purchase" else 0
            row.updated_at = now
            if option == "purchase" and purchase_price > 0:
                _add_instalment(session, lease, PURCHASE_PRICE, lease.ends_on, purchase_price, now)
            _audit(session, "end_of_term.chosen_again", lease, now, actor_id=actor_id, actor_label=by,
                   details={"option": option, "purchase_price": row.purchase_price, "declined_application": declined,
                            "declined_on": again.declined_on.isoformat(), "until": again.until.isoformat()})
            session.flush()
            return row

    def record_inspection(self, lease_id: str, inspection: Inspection, now: datetime) -> EndOfTermRow:
        """Record the dealer's inspection of a returned car, in one transaction under the lease's lock: the final
        rent offset by the car, the charges as an instalment, the deposit applied to what is open, and the lease ended
        when nothing is left to pay. Raises :class:`ChoiceRefused` unless a return was chosen and not yet
        inspected."""
        with self.db.session() as session:
            lease = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()).scalar_one()
            row = session.get(EndOfTermRow, lease_id, with_for_update=True)
            if row is None or row.option != "return" or lease.status != ACTIVE:
                raise ChoiceRefused("not_return", "这份租约未选择退还车辆", "No return was chosen for this lease")
            if row.status != CHOSEN:
                raise ChoiceRefused("inspected", "车辆已验收", "The car has been inspected already")
            day = current_business_date(session)
            opens = inspection_opens(lease.ends_on, json.loads(lease.terms or "{}"))
            if day < opens:
                raise ChoiceRefused("too_early", f"车辆验收自 {opens.isoformat()} 起方可登记",
                                    f"The inspection can be recorded from {opens.isoformat()}")
            for final in session.scalars(select(InstalmentRow).where(
                    InstalmentRow.lease_id == lease_id, InstalmentRow.kind == FINAL_RENT,
                    InstalmentRow.state.in_((*OPEN, PENDING))).with_for_update()):
                _offset_by_car(session, final, day, now)
            charges = inspection.damage_charge + inspection.excess_mileage_charge
            if charges > 0:
                _add_instalment(session, lease, RETURN_CHARGES, day, charges, now, state=DUE)
            session.flush()
            applied, held = _apply_deposit(session, lease, day, now)
            owed = sum(_left(r) for r in _open_rows(session, lease_id))
            row.status, row.mileage_km = INSPECTED, inspection.mileage_km
            row.photo_keys, row.damage_items = json.dumps(list(inspection.photo_keys)), json.dumps(
                list(inspection.damage_items))
            row.damage_charge, row.excess_mileage_charge = inspection.damage_charge, inspection.excess_mileage_charge
            row.deposit_deduction, row.refund, row.owed = applied, max(0, held - applied), owed
            row.notes, row.inspected_by, row.inspected_at = inspection.notes[:2000], inspection.inspected_by[:36], now
            row.terms = json.dumps({**json.loads(row.terms), "inspection": dict(inspection.figures)},
                                   ensure_ascii=False, sort_keys=True)
            row.updated_at = now
            _audit(session, "end_of_term.inspected", lease, now, actor_id=inspection.inspected_by[:36],
                   actor_label="staff", details={"option": row.option, "charges": charges,
                                                 "deposit_applied": applied, "refund": row.refund, "owed": owed})
            if owed == 0:
                _end(session, [lease_id], day, now, actor_id=inspection.inspected_by[:36], actor_label="staff")
            session.flush()
            return row

    def lock(self, lease_id: str) -> EndOfTermRow | None:
        """The lease's choice, its row locked (FOR UPDATE) to the end of the caller's transaction
        (``db.transaction()``): what makes a refinance's new application once (bff/servicing/refinance.py)."""
        with self.db.session() as session:
            return session.get(EndOfTermRow, lease_id, with_for_update=True, populate_existing=True)

    def attach_refinance(self, lease_id: str, application_id: str, now: datetime) -> bool:
        """Record the application that refinances the lease's final rent (once: False when one is recorded already or
        the choice is not a refinance)."""
        with self.db.session() as session:
            return bool(session.execute(text(
                "UPDATE end_of_term SET refinance_application_id = :app, updated_at = :now WHERE lease_id = :id "
                "AND option = 'refinance' AND refinance_application_id IS NULL"),
                {"app": application_id, "now": now, "id": lease_id}).rowcount)  # type: ignore[attr-defined]

    def latest_identity(self, id_hash: str) -> tuple[str, datetime] | None:
        """The person's (by the keyed hash of their ID number) latest application to pass its identity check (to
        ``kyc_passed``: the card read and the face matched, or a person's review) and when: what a refinance reuses
        within the policy's ``kyc_reuse_days``."""
        with self.db.session() as session:
            found = session.execute(text(
                "SELECT e.application_id, e.at FROM application_events e "
                "JOIN applications a ON a.id = e.application_id "
                "WHERE a.id_hash = :hash AND e.to_status = 'kyc_passed' ORDER BY e.at DESC LIMIT 1"),
                {"hash": id_hash}).first()
            return (str(found[0]), found[1]) if found is not None else None

    def desk(self, dealer_id: str | None, day: date, inspection_days: int) -> Desk:
        """What ops must do by hand at the end of terms (``dealer_id``'s, or every dealer's): each refinance whose new
        application reached its handover (ready for delivery or delivered) while the old lease's final rent is still
        open — its lease not opened yet (opening it pays the final rent off: infra/servicing.py
        ``_pay_off_refinanced``), the funding to be chased —, and each return still not inspected more than
        ``inspection_days`` after the term's end (the dealer to be chased)."""
        tenant = "" if dealer_id is None else "AND e.dealer_id = :dealer "
        with self.db.session() as session:
            refinances = [DeskRow(*r) for r in session.execute(text(
                "SELECT e.lease_id, l.contract_number, l.ends_on, e.refinance_application_id, a.status, "
                "COALESCE((SELECT SUM(i.principal + i.interest + i.penalty_accrued - i.paid_principal "
                "- i.paid_interest - i.paid_penalty) FROM instalments i WHERE i.lease_id = e.lease_id "
                "AND i.kind = :final AND i.state = ANY(:open)), 0) "
                "FROM end_of_term e JOIN leases l ON l.id = e.lease_id "
                "JOIN applications a ON a.id = e.refinance_application_id "
                "WHERE e.option = 'refinance' AND l.status = :active "
                "AND a.status IN ('ready_for_delivery', 'delivered') " + tenant +
                "AND EXISTS (SELECT 1 FROM instalments i WHERE i.lease_id = e.lease_id AND i.kind = :final "
                "AND i.state = ANY(:open)) ORDER BY l.ends_on"),
                {"final": FINAL_RENT, "open": [*OPEN, PENDING], "active": ACTIVE, "dealer": dealer_id})]
            returns = [DeskRow(*r) for r in session.execute(text(
                "SELECT e.lease_id, l.contract_number, l.ends_on, NULL, e.status, 0 "
                "FROM end_of_term e JOIN leases l ON l.id = e.lease_id "
                "WHERE e.option = 'return' AND e.status = :chosen AND l.status = :active "
                "AND l.ends_on < :before " + tenant + "ORDER BY l.ends_on"),
                {"chosen": CHOSEN, "active": ACTIVE, "before": day - timedelta(days=inspection_days),
                 "dealer": dealer_id})]
        return Desk(refinances, returns)

    def returns_for(self, dealer_id: str | None) -> list[EndOfTermRow]:
        """Returns waiting for the inspection (the dealer's, or every dealer's)."""
        with self.db.session() as session:
            stmt = select(EndOfTermRow).where(EndOfTermRow.option == "return", EndOfTermRow.status == CHOSEN)
            if dealer_id is not None:
                stmt = stmt.where(EndOfTermRow.dealer_id == dealer_id)
            return list(session.scalars(stmt.order_by(EndOfTermRow.chosen_at)))


def _add_instalment(session: Session, lease: LeaseRow, kind: str, due_on: date, amount: int, now: datetime, *,
                    state: str = PENDING) -> InstalmentRow:
    number = session.execute(select(func.max(InstalmentRow.number)).where(
        InstalmentRow.lease_id == lease.id)).scalar_one() or 0
    row = InstalmentRow(lease_id=lease.id, number=number + 1, kind=kind, due_on=due_on, amount=amount,
                        principal=amount, interest=0, state=state, paid_principal=0, paid_interest=0,
                        paid_penalty=0, waived=0, penalty_accrued=0, updated_at=now)
    session.add(row)
    session.flush()
    day = current_business_date(session)
    charge = books_end_of_term.charged(row.id, kind, lease.id, lease.dealer_id, day, amount, _rule(lease, day))
    post(session, [charge], now)
    return row


def _rule(lease: LeaseRow, day: date) -> Rule:
    """The VAT rule in force on ``day`` for the lease's structure (a lump sum charged or received that day)."""
    return load_tax_policy().rule(structure(lease), day)


def _rechoice(session: Session, lease_id: str) -> Rechoice | None:
    """:meth:`SqlEndOfTerm.rechoice` in ``session``: the decline's moment is its latest ``application_events`` row to
    ``declined``, its day that moment's date in Beijing time."""
    at = session.execute(text(
        "SELECT MAX(ev.at) FROM end_of_term e JOIN applications a ON a.id = e.refinance_application_id "
        "JOIN application_events ev ON ev.application_id = a.id AND ev.to_status = 'declined' "
        "WHERE e.lease_id = :id AND e.option = 'refinance' AND a.status = 'declined'"), {"id": lease_id}).scalar()
    if at is None:
        return None
    calendar, day = load_business_calendar(session), declined_on(at)
    return Rechoice(day, rechoose_until(calendar, day), may_choose_again(calendar, day, current_business_date(session)))


def _left(row: InstalmentRow) -> int:
    return (max(0, row.penalty_accrued - row.paid_penalty) + max(0, row.interest - row.paid_interest)
            + max(0, row.principal - row.paid_principal))


def _open_rows(session: Session, lease_id: str) -> list[InstalmentRow]:
    return list(session.scalars(select(InstalmentRow).where(
        InstalmentRow.lease_id == lease_id, InstalmentRow.state.in_((*OPEN, PENDING)))
        .order_by(InstalmentRow.number).with_for_update()))


def _offset_by_car(session: Session, row: InstalmentRow, day: date, now: datetime) -> None:
    """The final rent offset by the returned car (the contract: its value offsets the final rent): what is left of it
    waived, with its movement and its entries (books/end_of_term.py ``car_returned``)."""
    lease = session.get(LeaseRow, row.lease_id)
    assert lease is not None
    ensure_vat(session, lease, now)  # a lease opened before VAT was posted: its rents' VAT in Pending first
    # the VAT of what is waived: the rent's tax less the tax of what was paid of it, under the rule of its due date
    whole = instalment_tax(load_tax_policy(), structure(lease), row)
    waived = books_end_of_term.waived_tax(whole, rent_tax(whole.rule, row.paid_principal + row.paid_interest,
                                                          row.paid_interest))
    taxed = bool(posted(session, [f"vat:{row.id}"]))  # its due date came with a close before the inspection
    principal, interest = row.principal - row.paid_principal, row.interest - row.paid_interest
    penalty = max(0, row.penalty_accrued - row.paid_penalty)
    row.waived += principal + interest + penalty
    row.state, row.settled_on, row.updated_at = WAIVED, day, now
    session.add(ServicingMovementRow(
        lease_id=row.lease_id, instalment_id=row.id, kind="car_returned", value_date=day, principal=-principal,
        interest=-interest, penalty=-penalty, key=f"car_returned:{row.lease_id}:{row.id}", booked_at=now,
        note="车辆退还，抵扣尾付租金 the returned car offsets the final rent"))
    # the books (books/end_of_term.py car_returned): the rent off the receivable, the car back at its principal (less
    # the VAT waived's principal share), the lease's income brought to its schedule without the waived interest
    # through the day
    session.flush()
    lock_leases(session, [lease.id])  # what the lease recognised, read after any income run on it (finance_income)
    earned = recognised_through(schedules(session, [lease])[lease.id], day)
    entries = books_end_of_term.car_returned(
        lease.id, lease.dealer_id, row.id, day, principal=principal, interest=interest, earned=earned,
        recognised=recognised(session, [lease.id]).get(lease.id, 0), waived=waived, taxed=taxed)
    # the part of it received before its tax point came (paid ahead): received, taxed today, as a receipt in full would
    # be (infra/vat_points.py); the waived rest is taken back from Pending above
    if not taxed and whole.tax - waived.tax > 0:
        made = tax_point(row.id, lease.id, lease.dealer_id, day, whole.tax - waived.tax)
        entries += [made] if made is not None else []
    post(session, entries, now)
    # the part paid (taxed): its e-invoice asked for (infra/invoicing.py), the late charge it carried received today
    rents_paid(session, lease, [row], received_on=day, now=now, states=(WAIVED,))


def deposit_paid(application_id: Any) -> Any:
    """What the application's deposit payment still holds (fen, captured less refunded), as a scalar subquery:
    ``application_id`` a value or a correlated column."""
    return (select(func.coalesce(func.sum(PaymentRow.captured - PaymentRow.refunded), 0))
            .where(PaymentRow.application_id == application_id, PaymentRow.kind == "deposit",
                   PaymentRow.status == "succeeded").scalar_subquery())


def deposit_applied(lease_id: Any) -> Any:
    """What was applied of the lease's deposit so far (its ``deposit_offset`` movements: fen, negative), as a scalar
    subquery: ``lease_id`` a value or a correlated column."""
    return (select(func.coalesce(func.sum(ServicingMovementRow.principal + ServicingMovementRow.interest
                                          + ServicingMovementRow.penalty), 0))
            .where(ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.kind == "deposit_offset")
            .scalar_subquery())


def _deposit_held(session: Session, lease: LeaseRow) -> int:
    """What the lease's deposit holds for its end (fen), its application's term (``lease_terms``) locked to the end of
    the transaction: nothing once that term is closed — ops closed it (bff/payments/settlement.py ``close``) or a
    settlement did, and the settle job refunds the deposit —, else the deposit the contract states, at most what the
    deposit payment still holds (captured less refunded: a refund by hand meanwhile is not applied again). A lease with
    no term recorded (none handed over through this system) or no deposit paid holds nothing."""
    settlement = session.execute(select(LeaseTermRow.settlement).where(
        LeaseTermRow.application_id == lease.application_id).with_for_update()).one_or_none()
    if settlement is None or settlement[0] is not None:
        return 0
    paid = session.execute(select(deposit_paid(lease.application_id))).scalar_one()
    return max(0, min(lease.deposit, int(paid)))


def _apply_deposit(session: Session, lease: LeaseRow, day: date, now: datetime,
                   kinds: Sequence[str] | None = None) -> tuple[int, int]:
    """Apply what is left of the deposit (:func:`_deposit_held`, less what was applied before: the movements) to the
    lease's open instalments (of ``kinds``, in that order; else all, oldest first): late charge, interest, principal of
    each, one ``deposit_offset`` movement per instalment (keyed: once). The fen applied by this call plus before, and
    what the deposit held (the refund is the difference)."""
    held = _deposit_held(session, lease)
    before = -session.execute(select(deposit_applied(lease.id))).scalar_one()
    left = held - int(before)
    rows = _open_rows(session, lease.id)
    if kinds is not None:
        rows = sorted((r for r in rows if r.kind in kinds), key=lambda r: list(kinds).index(r.kind))
    applied, entries, rule = 0, [], _rule(lease, day)
    for row in rows:
        if left <= 0:
            break
        penalty = min(left, max(0, row.penalty_accrued - row.paid_penalty))
        interest = min(left - penalty, max(0, row.interest - row.paid_interest))
        principal = min(left - penalty - interest, max(0, row.principal - row.paid_principal))
        taken = penalty + interest + principal
        if taken == 0:
            continue
        row.paid_penalty += penalty
        row.paid_interest += interest
        row.paid_principal += principal
        row.updated_at = now
        if _left(row) == 0:
            row.state, row.settled_on = PAID, day
        elif row.state == DUE:
            row.state = PARTLY_PAID
        session.add(ServicingMovementRow(
            lease_id=lease.id, instalment_id=row.id, kind="deposit_offset", value_date=day, principal=-principal,
            interest=-interest, penalty=-penalty, key=f"deposit_offset:{lease.id}:{row.id}", booked_at=now,
            note="保证金抵扣 the deposit applied"))
        entries.append(books_end_of_term.deposit_applied(lease.id, lease.dealer_id, row.id, row.kind, day,
                                                         principal=principal, interest=interest, penalty=penalty,
                                                         rule=rule))
        left -= taken
        applied += taken
    # a rent the deposit pays in full before the close passed its due date: received, its tax point today (as a
    # receipt's: infra/vat_points.py); one the close passed has its own already (the key)
    full = [r for r in rows if r.kind in books_end_of_term.LEASE_PAYMENTS and r.state == PAID and r.settled_on == day]
    if full:
        ensure_vat(session, lease, now)
        taxed, policy, kind = posted(session, [f"vat:{r.id}" for r in full]), load_tax_policy(), structure(lease)
        entries += [made for r in full if f"vat:{r.id}" not in taxed for made in [tax_point_of(
            policy, kind, r.id, lease.id, lease.dealer_id, min(r.due_on, day), r.due_on, r.amount, r.interest)]
            if made is not None]
    session.flush()
    post(session, entries, now)
    # the rents it paid in full: their e-invoices asked for (infra/invoicing.py), as a receipt's are
    rents_paid(session, lease, [r for r in rows if r.state == PAID and r.settled_on == day], received_on=day, now=now)
    return int(before) + applied, max(held, int(before))


def _end(session: Session, lease_ids: Sequence[str], day: date, now: datetime, *, actor_id: str | None = None,
         actor_label: str = CLOSE_ACTOR) -> list[str]:
    """End those of ``lease_ids`` whose choice is a purchase, a refinance (its final rent paid off by the new lease:
    infra/servicing.py ``_pay_off_refinanced``) or an inspected return and that owe nothing more; with each, its audit
    entry (the figures only), and a purchase's mortgage release (:func:`_open_releases`)."""
    if not lease_ids:
        return []
    ended = [r[0] for r in session.execute(text(
        "UPDATE leases l SET status = :ended FROM end_of_term e "
        "WHERE l.id = ANY(:ids) AND e.lease_id = l.id AND l.status = :active "
        "AND ((e.option IN ('purchase', 'refinance') AND e.status = :chosen) "
        "OR (e.option = 'return' AND e.status = :inspected)) "
        "AND NOT EXISTS (SELECT 1 FROM instalments i WHERE i.lease_id = l.id AND i.state = ANY(:open)) "
        "RETURNING l.id"), {"ended": LEASE_ENDED, "ids": list(lease_ids), "active": ACTIVE, "chosen": CHOSEN,
                            "inspected": INSPECTED, "open": [*OPEN, PENDING]})]
    if ended:
        session.execute(text("UPDATE end_of_term SET status = :ended, ended_on = :day, updated_at = :now "
                             "WHERE lease_id = ANY(:ids)"), {"ended": ENDED, "day": day, "now": now, "ids": ended})
        _settle_deposits(session, ended, day, now)
        _open_releases(session, ended, day, now)
        # one entry per lease ended (set-based): the figures as end_of_term holds them, nothing personal
        session.execute(text(
            "INSERT INTO audit_events (at, action, outcome, actor_id, actor_label, dealer_id, target, ip, user_agent, "
            "details) SELECT :now, 'end_of_term.ended', 'success', :actor_id, :label, e.dealer_id, "
            "'lease:' || e.lease_id, '', '', json_build_object('option', e.option, 'purchase_price', e.purchase_price, "
            "'charges', e.damage_charge + e.excess_mileage_charge, 'deposit_applied', e.deposit_deduction, "
            "'refund', e.refund)::text FROM end_of_term e WHERE e.lease_id = ANY(:ids) ORDER BY e.lease_id"),
            {"now": now, "actor_id": actor_id, "label": actor_label[:254], "ids": ended})
    return ended


def _open_releases(session: Session, lease_ids: Sequence[str], day: date, now: datetime) -> None:
    """The dealer's mortgage release (抵押解除, ``mortgage_releases``: what infra/lease_documents.py ``open_release``
    opens after an early settlement) for each lease just ended by a purchase — the car is the customer's —, dated the
    business date it ended; once (ON CONFLICT on the lease). A refinance opens none: the new lease's mortgage takes the
    car over. A return opens none: the car comes back to the lessor."""
    session.execute(text(
        "INSERT INTO mortgage_releases (lease_id, dealer_id, status, opened_on, office, reference, note, created_at, "
        "updated_at) SELECT l.id, l.dealer_id, 'open', :day, '', '', '', :now, :now FROM leases l "
        "JOIN end_of_term e ON e.lease_id = l.id WHERE l.id = ANY(:ids) AND e.option = 'purchase' "
        "ON CONFLICT (lease_id) DO NOTHING"), {"ids": list(lease_ids), "day": day, "now": now})


def _audit(session: Session, action: str, lease: LeaseRow, now: datetime, *, actor_id: str | None,
           actor_label: str, details: Mapping[str, object]) -> None:
    """An audit entry (infra/audit.py's table) in the caller's transaction: the figures only, no personal data."""
    session.add(AuditEventRow(at=now, action=action, outcome="success", actor_id=actor_id,
                              actor_label=actor_label[:254], dealer_id=lease.dealer_id, target=f"lease:{lease.id}",
                              ip="", user_agent="", details=json.dumps(dict(details), sort_keys=True)))


def _settle_deposits(session: Session, lease_ids: Sequence[str], day: date, now: datetime) -> None:
    """The deposit of each lease just ended settled as ops close a term at its end (bff/payments/settlement.py
    ``close``) and as early settlement does (infra/settlements.py ``_close_term``), in the transaction that ends it:
    the application's term closed with the deposit applied at the end (its ``deposit_offset`` movements) kept as the
    deduction and its settlement ``due``, the application ``delivered`` → ``closed`` with its event. The worker's
    ``payments.settle`` job then refunds the rest of the deposit — once (its refund is keyed by the application and
    the attempt), a refund Stripe refuses left in ``attention`` on the lease's payments page
    (/applications/<id>/lease). Set-based; a term closed already (by ops, by an early settlement) is left as it is."""
    params = {"ids": list(lease_ids), "now": now,
              "reason": f"期满 保证金抵扣 end of term {day.isoformat()}: deposit applied"}
    closed = session.execute(text(
        "UPDATE lease_terms t SET closed_at = :now, closed_by = 'system', closed_by_label = '期满 end of term', "
        "deduction = LEAST(l.deposit, COALESCE((SELECT -SUM(m.principal + m.interest + m.penalty) "
        "FROM servicing_movements m WHERE m.lease_id = l.id AND m.kind = 'deposit_offset'), 0)), "
        "deduction_reason = :reason, settlement = 'due' "
        "FROM leases l WHERE l.id = ANY(:ids) AND t.application_id = l.application_id AND t.settlement IS NULL "
        "RETURNING t.application_id, t.deduction"), params).all()
    kept = {str(a): int(d) for a, d in closed}
    moved = session.execute(text(
        "UPDATE applications a SET status = 'closed', updated_at = :now, version = a.version + 1 FROM leases l "
        "WHERE l.id = ANY(:ids) AND a.id = l.application_id AND a.status = 'delivered' RETURNING a.id"),
        params).scalars().all()
    for application_id in moved:
        note = f"期满 the lease ended on {day.isoformat()}; " + (
            f"deposit kept {kept[application_id]} fen, the rest refunded by the settle job"
            if application_id in kept else "no term to close")
        session.add(ApplicationEventRow(application_id=application_id, at=now, actor_kind="system",
                                        actor_id="end_of_term", from_status="delivered", to_status="closed",
                                        note=note))


def end_of_term_hook(events: BatchEvents, now: datetime | None = None) -> None:
    """The close of business's hook (bff/servicing/close.py ``hooks``), in the batch's transaction: on and after a
    purchased lease's last day the deposit is applied to its purchase price then its final rent (once: keyed), and
    every lease of the batch whose choice is settled and owes nothing more ends."""
    session, day = events.session, events.business_date
    at = now or datetime.now(UTC)
    purchases = list(session.scalars(select(LeaseRow).join(EndOfTermRow, EndOfTermRow.lease_id == LeaseRow.id).where(
        LeaseRow.id.in_(events.lease_ids), LeaseRow.status == ACTIVE, LeaseRow.ends_on <= day,
        LeaseRow.deposit > 0, EndOfTermRow.option == "purchase", EndOfTermRow.status == CHOSEN,
        EndOfTermRow.deposit_deduction == 0)))
    for lease in purchases:
        applied, held = _apply_deposit(session, lease, day, at, kinds=(PURCHASE_PRICE, FINAL_RENT))
        session.execute(text("UPDATE end_of_term SET deposit_deduction = :applied, refund = :refund, "
                             "updated_at = :now WHERE lease_id = :id"),
                        {"applied": applied, "refund": max(0, held - applied), "now": at, "id": lease.id})
    _end(session, list(events.lease_ids), day, at)
