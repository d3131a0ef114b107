"""E-invoice requests (数电发票, issue 19 §3) in the database: ``invoice_requests`` (migration 0031).

**What asks for an invoice**, each in the transaction of the money event, with the ``invoices.issue`` job that sends
it (bff/servicing/invoices.py) deferred in the same transaction — no request without its job, no job for a rolled-back
payment:

- :func:`rents_paid` — a rent (or the final rent) paid in full: by a receipt (infra/collections.py ``book``), or at
  signing (rent 1 in advance, infra/servicing.py ``open_lease``). One request per instalment (key
  ``rent:<instalment>``: a replay asks for nothing more), covering what the rent's payments paid — its principal and
  interest, tax point its due date (the payment date the contract fixes), and the late charge it carried (a lump sum,
  tax point the day it was received);
- :func:`settlement_paid` — an early settlement paid (infra/settlements.py ``_settle``): one request (key
  ``settlement:<quote>``) for what the settlement charged — the principal and interest it collected (its rents in
  arrears, the principal it repaid, the interest to the day, less interest paid ahead given back), its late charges and
  its fee —, what the customer paid and what the deposit paid alike, tax point the day it was paid;
- :func:`rent_refunded` — money an invoiced rent brought given back that reduces the sale (a 销售折让): a red-letter
  request (红字, reason 04) against the rent's invoice, and the invoice reissued for what was kept, if anything. The
  upfront payment's refund made outside Leaseline that reaches rent 1 (infra/payments_store.py ``raise_refunded``) is
  not one: the books keep the sale and the lessee owes the rent again (books/origination.py ``refunded``), so its
  invoice stands;
- :func:`correction` — ops' correction from the lease page: a red-letter request (reason 01 开票有误) and the invoice
  reissued, with the buyer read again from the application.

A red-letter request reverses its blue invoice whole (全额红冲) and names it (``original_id``); the reissue is made when
the red is issued (:meth:`SqlInvoices.issued`, same transaction), with the blue invoice's facts less what was refunded
(``facts.reissue`` of the red). The request's ``id`` is the platform's key: whatever the retries, one invoice.

Money is integer fen; no tax is computed here but by books/vat.py (:func:`lines_for`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from books.accounts import VAT_OUTPUT
from books.lease import late_charge_vat
from books.lease import structure_of as terms_structure
from books.vat import Rule
from books.vat import TaxPolicy
from books.vat import included_tax
from books.vat import rent_tax
from infra.db.engine import Database
from infra.db.models import InstalmentRow
from infra.db.models import InvoiceRequestRow
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingMovementRow
from infra.invoice_platform import Line
from infra.jobs import Job
from infra.jobs import defer_jobs

REQUESTED, PENDING, ISSUED, REJECTED = "requested", "pending", "issued", "rejected"
STATUSES = (REQUESTED, PENDING, ISSUED, REJECTED)
BLUE, RED = "blue", "red"
RENT, SETTLEMENT, REFUND, CORRECTION, REISSUE = "rent", "settlement", "refund", "correction", "reissue"
#: the task that sends a request (bff/servicing/invoices.py, bff/worker.py) and its queue
TASK, QUEUE = "invoices.issue", "servicing"
#: the instalment kinds that are rents (infra/servicing.py RENT, FINAL_RENT) and the state of one paid in full
RENT_KINDS, PAID = ("rent", "final_rent"), "paid"
#: the end-of-term charges (infra/end_of_term.py), taxed when charged, invoiced when paid in full (purpose CHARGE)
CHARGE_KINDS, CHARGE = ("purchase_price", "return_charges"), "charge"
PREPAID = "prepayment"
CHARGE_LABELS = {"purchase_price": "留购价款", "return_charges": "还车费用"}
#: 冲红原因 of a refund (04 销售折让: part of the price given back) and of a correction (01 开票有误)
REFUND_REASON, CORRECTION_REASON = "04", "01"
#: a request neither issued nor rejected this long after it was made is shown to ops (the ops list)
STUCK_AFTER = timedelta(hours=1)


# -- the facts an invoice covers, and its lines ----------------------------------------------------------------------
def structure_of(lease: LeaseRow) -> str:
    """The lease's structure for VAT (books/vat.py STRUCTURES) as the books read it (books/lease.py
    ``structure_of``: its frozen terms' ``structure``, a direct lease — 直租, the only one offered — when they do not
    say)."""
    try:
        terms = json.loads(lease.terms or "{}")
    except ValueError:
        terms = {}
    return terms_structure(terms if isinstance(terms, dict) else {})


#: the movements that pay an instalment's late charge, each taxed on its own by the books (books/lease.py receipt,
#: books/end_of_term.py deposit_applied, books/lease.py refinanced)
CHARGE_PAYMENTS = ("payment", "deposit_offset", "refinanced")


def _charge_tax(session: Session, lease: LeaseRow, row: InstalmentRow) -> int:
    """The output VAT the books posted on what was paid of the instalment's late charge: each payment's (receipt,
    deposit, refinancing) under the rule of its day, rounded once each, summed."""
    structure = structure_of(lease)
    return sum(late_charge_vat(-int(penalty), on, structure) for penalty, on in session.execute(
        select(ServicingMovementRow.penalty, ServicingMovementRow.value_date).where(
            ServicingMovementRow.instalment_id == row.id, ServicingMovementRow.kind.in_(CHARGE_PAYMENTS),
            ServicingMovementRow.penalty < 0)))


def _rent_facts(lease: LeaseRow, row: InstalmentRow, received_on: date,
                charge_tax: int | None = None) -> dict[str, Any]:
    label = f"第{row.number}期租金" if row.kind == "rent" else "尾付租金"
    parts: list[dict[str, Any]] = [{"kind": "rent", "amount": row.paid_principal + row.paid_interest,
                                    "interest": row.paid_interest, "tax_point": rent_tax_point(row, received_on)
                                    .isoformat(), "label": label}]
    if row.paid_penalty > 0:
        parts.append({"kind": "late_charge", "amount": row.paid_penalty, "tax_point": received_on.isoformat(),
                      "label": f"{label}逾期违约金", **({} if charge_tax is None else {"tax": charge_tax})})
    return {"structure": structure_of(lease), "number": row.number, "rent_kind": row.kind, "parts": parts,
            "contract_number": lease.contract_number}


def rent_tax_point(row: InstalmentRow, received_on: date) -> date:
    """A rent's tax point as the books post it (infra/vat_points.py): the earlier of its due date (the contract's
    payment date) and ``received_on``, the day it was received in full (附件1 第四十五条; paid ahead, 预收款: that
    day)."""
    return min(row.due_on, received_on)


def facts_amount(facts: Mapping[str, Any]) -> int:
    """What an invoice of ``facts`` comes to, tax included (fen)."""
    return sum(int(p["amount"]) for p in facts.get("parts", ()))


def item_name(rule: Rule) -> str:
    """The line's item as the face shows it: ``*分类简称*名称`` (the rule's tax_short; 租赁服务, the service's 品目 in
    财税〔2016〕36号, when the policy has none)."""
    return f"*{rule.tax_short or '租赁服务'}*{rule.item_zh}"


def lines_for(facts: Mapping[str, Any], policy: TaxPolicy) -> tuple[Line, ...]:
    """The invoice lines of ``facts`` under the tax policy (books/vat.py, the only place a tax is computed): a rent
    part by :func:`books.vat.rent_tax` under the rule in force on its tax point — its line the taxable part without
    its tax (a leaseback's principal is not VAT-taxable and is not on the invoice) —, a lump sum (a late charge, a fee)
    by :func:`books.vat.included_tax` under the rule in force on the day it was received. Raises
    books.vat.NoRuleInForce when no rule applies."""
    structure = str(facts.get("structure") or "direct")
    lines: list[Line] = []
    for part in facts.get("parts", ()):
        amount = int(part["amount"])
        if amount <= 0:
            continue
        rule = policy.rule(structure, date.fromisoformat(str(part["tax_point"])))
        code = rule.tax_code
        posted = part.get("tax")  # the tax the books posted for it (exact to the fen), when the request says
        if part["kind"] == "rent":
            taxed = rent_tax(rule, amount, min(amount, max(0, int(part.get("interest", 0)))))
            if taxed.taxable > 0:
                tax = taxed.tax if posted is None else int(posted)
                lines.append(Line(item_name(rule), code, taxed.taxable - tax, rule.rate, tax,
                                  str(part.get("label", ""))))
        else:
            tax = included_tax(rule, amount) if posted is None else int(posted)
            lines.append(Line(item_name(rule), code, amount - tax, rule.rate, tax, str(part.get("label", ""))))
    return tuple(lines)


def reduced(facts: Mapping[str, Any], refunded: int) -> dict[str, Any]:
    """``facts`` less ``refunded`` fen given back of its rent part (its interest in proportion, half up): what an
    invoice reissued after a refund covers. Nothing left: no parts."""
    parts = []
    for part in facts.get("parts", ()):
        part = dict(part)
        if part["kind"] == "rent" and refunded > 0:
            amount = int(part["amount"])
            taken = min(amount, refunded)
            refunded -= taken
            kept = amount - taken
            share = Fraction(int(part.get("interest", 0)) * kept, amount) if amount else Fraction(0)
            part["amount"], part["interest"] = kept, int(share + Fraction(1, 2))
        if int(part["amount"]) > 0:
            parts.append(part)
    return {**facts, "parts": parts}


# -- asking for invoices, in the money event's transaction ----------------------------------------------------------
def _ask(session: Session, rows: Sequence[dict[str, Any]], now: datetime) -> list[str]:
    """Insert the requests of ``rows`` (each a request's values without its bookkeeping), those whose key is new, and
    defer each one's job, in ``session``'s transaction. The ids made."""
    if not rows:
        return []
    values = [{"id": str(uuid.uuid4()), "status": REQUESTED, "lines": "[]", "buyer_id_masked": "", "attempts": 0,
               "reason": "", "reissue": False, "platform": "", "requested_by": "system", "created_at": now,
               "updated_at": now, **r} for r in rows]
    made = list(session.execute(insert(InvoiceRequestRow).values(values).on_conflict_do_nothing(
        index_elements=["key"]).returning(InvoiceRequestRow.id)).scalars())
    defer_jobs(session, [issue_job(request_id) for request_id in made])
    return made


def issue_job(request_id: str, at: datetime | None = None) -> Job:
    """The job that sends request ``request_id`` (one waiting per request: its queueing lock)."""
    return Job(TASK, {"request_id": request_id}, QUEUE, queueing_lock=f"invoice:{request_id}", at=at)


def rents_paid(session: Session, lease: LeaseRow, rows: Sequence[InstalmentRow], *, received_on: date,
               now: datetime, receipt_id: str | None = None, states: Sequence[str] = (PAID,)) -> list[str]:
    """One request for each rent of ``rows`` paid in full (state paid, of a rent kind; ``states`` widens it: a final
    rent the returned car offset, waived, whose part paid is invoiced), in the transaction that paid it: covering what
    its payments paid (the late charge received on ``received_on``). The ids made (none for a rent asked for
    before)."""
    asked = _charges_paid(session, lease, rows, received_on=received_on, receipt_id=receipt_id)
    for r in rows:
        if r.kind not in RENT_KINDS or r.state not in states or r.paid_principal + r.paid_interest <= 0:
            continue
        facts = _rent_facts(lease, r, received_on, _charge_tax(session, lease, r) if r.paid_penalty > 0 else None)
        asked.append({"key": f"rent:{r.id}", "lease_id": lease.id, "application_id": lease.application_id,
                      "dealer_id": lease.dealer_id, "kind": BLUE, "purpose": RENT, "instalment_id": r.id,
                      "receipt_id": receipt_id, "tax_point": rent_tax_point(r, received_on),
                      "facts": json.dumps(facts, ensure_ascii=False),
                      "amount": facts_amount(facts)})
    return _ask(session, asked, now)


def _charges_paid(session: Session, lease: LeaseRow, rows: Sequence[InstalmentRow], *, received_on: date,
                  receipt_id: str | None) -> list[dict[str, Any]]:
    """The requests of the end-of-term charges of ``rows`` paid in full (a purchase price, return charges: key
    ``charge:<instalment>``), each carrying the output VAT its charge's entry posted (``charge:<instalment>``,
    books/end_of_term.py ``charged``: taxed when charged, its tax point that day) and its late charge's."""
    out = []
    for r in rows:
        if r.kind not in CHARGE_KINDS or r.state != PAID or r.paid_principal + r.paid_interest <= 0:
            continue
        found = session.execute(
            select(JournalEntryRow.value_date, func.sum(JournalLineRow.credit - JournalLineRow.debit))
            .join(JournalLineRow, JournalLineRow.entry_id == JournalEntryRow.id)
            .where(JournalEntryRow.key == f"charge:{r.id}", JournalLineRow.account == VAT_OUTPUT)
            .group_by(JournalEntryRow.value_date)).first()  # none: a charge posted before VAT
        charged_on = found[0] if found is not None else received_on
        part: dict[str, Any] = {"kind": "charge", "amount": r.paid_principal + r.paid_interest,
                                "tax_point": charged_on.isoformat(), "label": CHARGE_LABELS[r.kind]}
        if found is not None:
            part["tax"] = int(found[1])
        parts = [part]
        if r.paid_penalty > 0:
            parts.append({"kind": "late_charge", "amount": r.paid_penalty, "tax_point": received_on.isoformat(),
                          "label": f"{CHARGE_LABELS[r.kind]}逾期违约金", "tax": _charge_tax(session, lease, r)})
        facts = {"structure": structure_of(lease), "number": r.number, "charge_kind": r.kind, "parts": parts,
                 "contract_number": lease.contract_number}
        out.append({"key": f"charge:{r.id}", "lease_id": lease.id, "application_id": lease.application_id,
                    "dealer_id": lease.dealer_id, "kind": BLUE, "purpose": CHARGE, "instalment_id": r.id,
                    "receipt_id": receipt_id, "tax_point": charged_on, "facts": json.dumps(facts, ensure_ascii=False),
                    "amount": facts_amount(facts)})
    return out


def prepayment_paid(session: Session, lease: LeaseRow, prepayment_id: str, *, principal: int, interest: int,
                    tax: int, paid_on: date, now: datetime) -> list[str]:
    """One request for a partial prepayment paid (infra/prepayments.py ``book_prepayment``, key
    ``prepayment:<id>``): the principal it prepaid and the interest accrued it charged (less any credited), carrying
    ``tax``, the output VAT its entries posted (the principal's share of the replaced rents' VAT and the interest's).
    Nothing when it charged nothing."""
    amount = principal + interest
    if amount <= 0:
        return []
    facts = {"structure": structure_of(lease), "contract_number": lease.contract_number, "parts": [
        {"kind": "rent", "amount": amount, "interest": min(amount, max(0, interest)), "tax": tax,
         "tax_point": paid_on.isoformat(), "label": "部分提前还款"}]}
    return _ask(session, [{
        "key": f"prepayment:{prepayment_id}", "lease_id": lease.id, "application_id": lease.application_id,
        "dealer_id": lease.dealer_id, "kind": BLUE, "purpose": PREPAID, "tax_point": paid_on,
        "facts": json.dumps(facts, ensure_ascii=False), "amount": facts_amount(facts)}], now)


def settlement_paid(session: Session, lease: LeaseRow, quote_id: str, *, principal: int, interest: int, charges: int,
                    fee: int, paid_on: date, now: datetime, taxes: Mapping[str, int] | None = None) -> list[str]:
    """One request for a settlement paid (in ``_settle``'s transaction): ``principal`` and ``interest`` it collected
    (interest net of what it gave back), its late ``charges`` and ``fee``, all tax included (fen). Nothing when it
    charged nothing."""
    parts: list[dict[str, Any]] = []
    if principal + interest > 0:
        parts.append({"kind": "rent", "amount": principal + interest, "interest": min(principal + interest,
                                                                                       max(0, interest)),
                      "tax_point": paid_on.isoformat(), "label": "提前结清租金"})
    if charges > 0:
        parts.append({"kind": "late_charge", "amount": charges, "tax_point": paid_on.isoformat(),
                      "label": "逾期违约金"})
    if fee > 0:
        parts.append({"kind": "fee", "amount": fee, "tax_point": paid_on.isoformat(), "label": "提前结清手续费"})
    if not parts:
        return []
    for part in parts:  # the tax the books posted for each part (``taxes`` by kind), carried to the invoice as is
        if taxes is not None and part["kind"] in taxes:
            part["tax"] = int(taxes[part["kind"]])
    facts = {"structure": structure_of(lease), "parts": parts, "contract_number": lease.contract_number}
    return _ask(session, [{
        "key": f"settlement:{quote_id}", "lease_id": lease.id, "application_id": lease.application_id,
        "dealer_id": lease.dealer_id, "kind": BLUE, "purpose": SETTLEMENT, "quote_id": quote_id, "tax_point": paid_on,
        "facts": json.dumps(facts, ensure_ascii=False), "amount": facts_amount(facts)}], now)


def invoiced_rents(session: Session, lease_id: str, ids: Sequence[int]) -> set[int]:
    """Those of the lease's instalments ``ids`` a blue invoice was asked for."""
    if not ids:
        return set()
    return {int(i) for i in session.scalars(select(InvoiceRequestRow.instalment_id).where(
        InvoiceRequestRow.lease_id == lease_id, InvoiceRequestRow.kind == BLUE,
        InvoiceRequestRow.instalment_id.in_(list(ids)))) if i is not None}


def settlement_movements_paid(session: Session, lease: LeaseRow, quote_id: str, movements: Sequence[Any],
                              instalments: Sequence[InstalmentRow], *, paid_on: date, now: datetime,
                              taxes: Mapping[str, int] | None = None) -> list[str]:
    """:func:`settlement_paid` from what the settlement leaves (infra/settlements.py ``_settle``, after its movements
    and the instalments' paid parts were written): everything paid of the lease's rents that no invoice covers — what
    the settlement paid of them, and what earlier payments paid of a rent never paid in full (a part of a rent, a rent
    the settlement replaced) — and the settlement's own lines (the interest to the day, the late charges, the fee, the
    principal it repaid beyond the rents'; the interest paid ahead it gives back lowers the interest), the deposit's
    offset left out: its money pays the same lines. Without earlier payments this is the amount settled plus the
    deposit offset. (Interest given back of a rent invoiced already lowers this invoice rather than reversing that
    one.)"""
    invoiced = invoiced_rents(session, lease.id, [r.id for r in instalments if r.kind in RENT_KINDS])
    principal = interest = charges = fee = 0
    for r in instalments:
        if r.kind in RENT_KINDS and r.id not in invoiced:
            principal, interest, charges = (principal + r.paid_principal, interest + r.paid_interest,
                                            charges + r.paid_penalty)
    for m in movements:
        if m.instalment_id is not None or m.kind == "settlement_deposit":
            continue
        principal, interest = principal - m.principal, interest - m.interest
        if m.kind == "settlement_fee":
            fee -= m.penalty
        else:
            charges -= m.penalty
    return settlement_paid(session, lease, quote_id, principal=principal, interest=interest, charges=charges, fee=fee,
                           paid_on=paid_on, now=now, taxes=taxes)


def _latest_blue(session: Session, lease_id: str, *, instalment_id: int | None = None,
                 quote_id: str | None = None) -> InvoiceRequestRow | None:
    """The blue invoice now standing for a subject (a rent, a settlement): of its chain — the first one, the ones
    reissued after it (a reissue keeps its original's instalment or quote) — the one no red-letter request reverses,
    else the newest."""
    stmt = select(InvoiceRequestRow).where(InvoiceRequestRow.lease_id == lease_id)
    if instalment_id is not None:
        stmt = stmt.where(InvoiceRequestRow.instalment_id == instalment_id)
    else:
        stmt = stmt.where(InvoiceRequestRow.quote_id == quote_id)
    rows = list(session.scalars(stmt.order_by(InvoiceRequestRow.created_at, InvoiceRequestRow.id).with_for_update()))
    reversed_ = {r.original_id for r in rows if r.kind == RED}
    blues = [r for r in rows if r.kind == BLUE]
    standing = [r for r in blues if r.id not in reversed_]
    return standing[-1] if standing else (blues[-1] if blues else None)


def _red_of(session: Session, blue_id: str) -> InvoiceRequestRow | None:
    return session.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.kind == RED,
                                                           InvoiceRequestRow.original_id == blue_id)
                           .with_for_update()).one_or_none()


def _reverse(session: Session, blue: InvoiceRequestRow, *, purpose: str, reason_code: str, reason: str,
             reissue: dict[str, Any] | None, by: str, now: datetime) -> str:
    """A red-letter request against ``blue`` (reissuing ``reissue``'s facts once it is issued), with its job."""
    facts = {"reissue": reissue} if reissue is not None and reissue.get("parts") else {}
    made = _ask(session, [{
        "key": f"red:{blue.id}", "lease_id": blue.lease_id, "application_id": blue.application_id,
        "dealer_id": blue.dealer_id, "kind": RED, "purpose": purpose, "instalment_id": blue.instalment_id,
        "quote_id": blue.quote_id, "original_id": blue.id, "reason_code": reason_code, "reason": reason[:255],
        "reissue": bool(facts), "tax_point": blue.tax_point, "facts": json.dumps(facts, ensure_ascii=False),
        "amount": -blue.amount, "requested_by": by[:64]}], now)
    if made:
        return made[0]
    red = _red_of(session, blue.id)
    assert red is not None
    return red.id


def rent_refunded(session: Session, lease_id: str, number: int, refunded: int, reason: str,
                  now: datetime) -> str | None:
    """``refunded`` fen of the money rent ``number`` of the lease brought given back (in the refund's transaction): its
    invoice reversed (red-letter, 04 销售折让) and reissued for what was kept. Of a red not yet issued, the reissue is
    made smaller instead (one red per invoice). The red request's id; None when no invoice was asked for the rent or
    none stands any more (reversed whole)."""
    instalment = session.scalars(select(InstalmentRow.id).where(
        InstalmentRow.lease_id == lease_id, InstalmentRow.number == number,
        InstalmentRow.kind.in_(RENT_KINDS))).first()
    if instalment is None or refunded <= 0:
        return None
    blue = _latest_blue(session, lease_id, instalment_id=instalment)
    if blue is None:
        return None
    red = _red_of(session, blue.id)
    if red is not None and red.status == ISSUED:  # reversed whole, nothing reissued after it: nothing stands
        return None
    if red is not None:
        facts = json.loads(red.facts or "{}")
        kept = reduced(facts.get("reissue") or {"parts": []}, refunded)
        red.facts = json.dumps({"reissue": kept} if kept.get("parts") else {}, ensure_ascii=False)
        red.reissue, red.updated_at = bool(kept.get("parts")), now
        return red.id
    kept = reduced(json.loads(blue.facts or "{}"), refunded)
    return _reverse(session, blue, purpose=REFUND, reason_code=REFUND_REASON, reason=reason, reissue=kept,
                    by="system", now=now)


class CorrectionRefused(Exception):
    """A correction cannot be asked for this invoice (``code``: unknown, not_issued, reversed)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# -- the repository ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Invoice:
    """An invoice request as the pages show it (no buyer's name or full ID number: ``buyer_id_masked`` only)."""

    id: str
    lease_id: str
    application_id: str
    dealer_id: str
    kind: str
    purpose: str
    status: str
    number: str | None
    issued_on: date | None
    amount: int
    net: int | None
    tax: int | None
    tax_point: date
    label: str
    reason_code: str | None
    reason: str
    original_id: str | None
    original_number: str | None
    confirmation: str | None
    buyer_id_masked: str
    error_code: str | None
    error: str | None
    attempts: int
    platform: str
    reversed_by: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def red(self) -> bool:
        return self.kind == RED

    @property
    def reversible(self) -> bool:
        """A blue invoice issued and not reversed: ops may ask for its correction."""
        return self.kind == BLUE and self.status == ISSUED and self.reversed_by is None


def _label(row: InvoiceRequestRow) -> str:
    try:
        facts = json.loads(row.facts or "{}")
    except ValueError:
        facts = {}
    labels = [str(p.get("label", "")) for p in facts.get("parts", ()) if p.get("label")]
    return "、".join(labels)


def _invoice(row: InvoiceRequestRow, original_number: str | None = None, reversed_by: str | None = None) -> Invoice:
    return Invoice(row.id, row.lease_id, row.application_id, row.dealer_id, row.kind, row.purpose, row.status,
                   row.number, row.issued_on, row.amount, row.net, row.tax, row.tax_point, _label(row),
                   row.reason_code, row.reason, row.original_id, original_number, row.confirmation,
                   row.buyer_id_masked, row.error_code, row.error, row.attempts, row.platform, reversed_by,
                   row.created_at, row.updated_at)


class SqlInvoices:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads --------------------------------------------------------------------------------------------------------
    def row(self, request_id: str) -> InvoiceRequestRow | None:
        """The request (detached), for the task that sends it."""
        if not request_id or len(request_id) > 36:
            return None
        with self.db.session() as session:
            return session.get(InvoiceRequestRow, request_id)

    def of_lease(self, lease_id: str) -> list[Invoice]:
        """The lease's invoices, oldest first, each red one with the number it reverses, each blue one with the red
        that reverses it."""
        with self.db.session() as session:
            rows = list(session.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.lease_id == lease_id)
                                        .order_by(InvoiceRequestRow.created_at, InvoiceRequestRow.id)))
        return _views(rows)

    def get(self, lease_id: str, request_id: str) -> Invoice | None:
        return next((i for i in self.of_lease(lease_id) if i.id == request_id), None) if len(request_id) <= 36 \
            else None

    def attention(self, now: datetime, dealer_id: str | None = None, limit: int = 200) -> list[Invoice]:
        """What ops look at: requests rejected, and those neither issued nor rejected after :data:`STUCK_AFTER`
        (a platform still pending, a job failing), oldest first (one dealer's when ``dealer_id``)."""
        stmt = select(InvoiceRequestRow).where(or_(
            InvoiceRequestRow.status == REJECTED,
            (InvoiceRequestRow.status.in_((REQUESTED, PENDING))) & (InvoiceRequestRow.created_at < now - STUCK_AFTER)))
        if dealer_id is not None:
            stmt = stmt.where(InvoiceRequestRow.dealer_id == dealer_id)
        with self.db.session() as session:
            rows = list(session.scalars(stmt.order_by(InvoiceRequestRow.updated_at).limit(limit)))
        return _views(rows)

    # -- the task's steps ------------------------------------------------------------------------------------------
    def sending(self, request_id: str, *, lines: Sequence[Line], buyer_name_enc: str | None, buyer_id_enc: str | None,
                buyer_id_masked: str, platform: str, now: datetime) -> bool:
        """The request as it is sent (its lines and totals, the buyer encrypted), one more attempt. False when it was
        issued meanwhile (another run)."""
        with self.db.session() as session:
            done = session.execute(update(InvoiceRequestRow).where(
                InvoiceRequestRow.id == request_id, InvoiceRequestRow.status != ISSUED).values(
                lines=json.dumps([line.as_dict() for line in lines], ensure_ascii=False),
                net=sum(line.amount for line in lines), tax=sum(line.tax for line in lines),
                buyer_name_enc=buyer_name_enc, buyer_id_enc=buyer_id_enc, buyer_id_masked=buyer_id_masked[:24],
                platform=platform[:16], attempts=InvoiceRequestRow.attempts + 1, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            return bool(done)

    def issued(self, request_id: str, *, number: str, issued_on: date, issued_at: datetime, confirmation: str,
               now: datetime) -> bool:
        """Record the invoice issued, once (False: recorded before). A red one that reissues makes the reissue's
        request and its job in the same transaction (key ``reissue:<original>``)."""
        with self.db.session() as session:
            row = session.get(InvoiceRequestRow, request_id, with_for_update=True)
            if row is None or row.status == ISSUED:
                return False
            row.status, row.number, row.issued_on, row.issued_at = ISSUED, number, issued_on, issued_at
            row.confirmation, row.error_code, row.error, row.updated_at = confirmation or None, None, None, now
            if row.kind == RED and row.reissue and row.original_id is not None:
                original = session.get(InvoiceRequestRow, row.original_id)
                assert original is not None
                facts = json.loads(row.facts or "{}").get("reissue") or {}
                if facts.get("parts"):
                    _ask(session, [{
                        "key": f"reissue:{original.id}", "lease_id": row.lease_id,
                        "application_id": row.application_id, "dealer_id": row.dealer_id, "kind": BLUE,
                        "purpose": REISSUE, "instalment_id": original.instalment_id, "quote_id": original.quote_id,
                        "original_id": original.id, "tax_point": original.tax_point,
                        "facts": json.dumps(facts, ensure_ascii=False), "amount": facts_amount(facts),
                        "requested_by": row.requested_by}], now)
            session.flush()
            return True

    def pending(self, request_id: str, *, now: datetime, poll_at: datetime) -> bool:
        """Accepted, the result later: ``pending``, and the job asked again at ``poll_at`` (same transaction)."""
        with self.db.session() as session:
            done = session.execute(update(InvoiceRequestRow).where(
                InvoiceRequestRow.id == request_id, InvoiceRequestRow.status != ISSUED).values(
                status=PENDING, error_code=None, error=None, updated_at=now)).rowcount  # type: ignore[attr-defined]
            if done:
                issue_job(request_id, at=poll_at).defer(session)
            return bool(done)

    def rejected(self, request_id: str, code: str, message: str, now: datetime) -> bool:
        """The platform refused it: ``rejected`` with its code and message (ops see it; nothing was issued)."""
        with self.db.session() as session:
            return bool(session.execute(update(InvoiceRequestRow).where(
                InvoiceRequestRow.id == request_id, InvoiceRequestRow.status != ISSUED).values(
                status=REJECTED, error_code=code[:32], error=message[:255], updated_at=now)
            ).rowcount)  # type: ignore[attr-defined]

    def failed(self, request_id: str, message: str, now: datetime) -> None:
        """Why the last try could not be made (kept beside the request; the job's error is on /ops/jobs)."""
        with self.db.session() as session:
            session.execute(update(InvoiceRequestRow).where(
                InvoiceRequestRow.id == request_id, InvoiceRequestRow.status != ISSUED).values(
                error=message[:255], updated_at=now))

    # -- ops' actions ----------------------------------------------------------------------------------------------
    def retry(self, lease_id: str, request_id: str, now: datetime) -> bool:
        """A rejected request asked again (its job deferred with the change); False when it is not rejected."""
        with self.db.transaction() as session:
            done = session.execute(update(InvoiceRequestRow).where(
                InvoiceRequestRow.id == request_id, InvoiceRequestRow.lease_id == lease_id,
                InvoiceRequestRow.status == REJECTED).values(status=REQUESTED, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if done:
                issue_job(request_id).defer(session)
            return bool(done)

    def correction(self, lease_id: str, request_id: str, reason: str, by: str, now: datetime) -> str:
        """Ops' correction of the issued blue invoice ``request_id``: a red-letter request (01 开票有误) that reissues
        it once issued, with its job, in one transaction. The red request's id; CorrectionRefused when the invoice is
        not the lease's, not an issued blue one, or reversed already."""
        with self.db.transaction() as session:
            blue = session.get(InvoiceRequestRow, request_id, with_for_update=True) if len(request_id) <= 36 else None
            if blue is None or blue.lease_id != lease_id or blue.kind != BLUE:
                raise CorrectionRefused("unknown")
            if blue.status != ISSUED:
                raise CorrectionRefused("not_issued")
            if _red_of(session, blue.id) is not None:
                raise CorrectionRefused("reversed")
            return _reverse(session, blue, purpose=CORRECTION, reason_code=CORRECTION_REASON, reason=reason,
                            reissue=json.loads(blue.facts or "{}"), by=by, now=now)


def _views(rows: Sequence[InvoiceRequestRow]) -> list[Invoice]:
    by_id = {r.id: r for r in rows}
    reds = {r.original_id: r.id for r in rows if r.kind == RED and r.original_id}
    return [_invoice(r, by_id[r.original_id].number if r.original_id in by_id else None,
                     reds.get(r.id) if r.kind == BLUE else None) for r in rows]
