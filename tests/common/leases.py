"""A lease in force for a customer's application, quickly (the page tests of issue 18 §8): the signed handover
record as the contract service states it (tests/integration/test_servicing_close.py ``record``), opened through
:meth:`infra.servicing.SqlServicing.open_lease` as the handover's transaction opens it, and a history of payments
and arrears written as the close of business and the payments would leave it."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy import update

from infra.db.models import ApplicationRow
from infra.db.models import InstalmentRow
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from plans.inputs import parse_quote_request
from plans.policy import load_policy
from plans.quote import Quote
from plans.quote import quote
from tests.integration.test_servicing_close import LATE_FEE
from tests.integration.test_servicing_close import record

#: what rent 2 has paid of its principal when it falls behind (its interest paid in full)
PART_PAID = 5_000
ONE_DAY = timedelta(days=1)


def priced(*, term: int = 12, residual_ratio: str = "0.2") -> Quote:
    """The priced plan of :func:`tests.integration.test_servicing_close.record` (the same figures)."""
    return quote(parse_quote_request({
        "price": "200000", "down_ratio": "0.2", "term": str(term), "rate": "0.0599", "residual_ratio": residual_ratio,
        "timing": "arrears", "deposit_ratio": "0.05"}, load_policy()))


def open_lease_for(flask_app: Any, application_id: str, starts_on: date, *, residual_ratio: str = "0.2") -> str:
    """The application handed over (delivered) with its lease starting on ``starts_on``: 12 rents in arrears and a
    final rent; its id."""
    c = flask_app.extensions["leaseline"]
    handover = record(starts_on, residual_ratio=residual_ratio)
    with c.db.session() as s:
        dealer_id = s.execute(select(ApplicationRow.dealer_id).where(ApplicationRow.id == application_id)).scalar_one()
        s.execute(update(ApplicationRow).where(ApplicationRow.id == application_id).values(status="delivered"))
        lease_id = SqlServicing(c.db).open_lease(s, application_id, dealer_id, lease_plan(handover),
                                                 datetime.now(UTC))
    assert lease_id is not None
    return lease_id


def late_charge(unpaid_fen: int, days: int) -> int:
    """unpaid × daily rate × days, half-up to the fen once (the contract's clause, reckoned independently)."""
    return int((Decimal(unpaid_fen) / 100 * LATE_FEE * days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
               * 100)


def fall_behind(flask_app: Any, lease_id: str, business_date: date) -> dict[int, InstalmentRow]:
    """Rent 1 paid on its day; rent 2 (fallen due before ``business_date``) paid in part — its interest and
    :data:`PART_PAID` of its principal — and overdue from the day after its due day, its late charge accrued through
    the day before the business date (the last close). The instalments by number, as stored."""
    c = flask_app.extensions["leaseline"]
    with c.db.session() as s:
        rows = {r.number: r for r in s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id))}
        first, second = rows[1], rows[2]
        assert second.due_on < business_date - ONE_DAY, "rent 2 must have fallen due before the last close"
        first.state, first.paid_principal, first.paid_interest = "paid", first.principal, first.interest
        first.settled_on = first.due_on
        second.state, second.paid_principal, second.paid_interest = "overdue", PART_PAID, second.interest
        second.overdue_since, second.penalty_through = second.due_on + ONE_DAY, business_date - ONE_DAY
        second.penalty_accrued = late_charge(second.amount - PART_PAID - second.interest,
                                             (business_date - ONE_DAY - second.due_on).days)
        s.flush()
        return {n: rows[n] for n in sorted(rows)}


def in_servicing(flask_app: Any, lease_id: str) -> dict[str, str]:
    """The rows a lease in force gets from its pages and tasks, for the access probe: the rents fallen due paid; a
    partial prepayment of ¥2,000 and a settlement quote for the earliest day, offered as the pages offer them; a
    settlement certificate among the lease's documents, being made (``requested``: a ready one's PDF comes from the
    contract service, which would have to sign a contract for it, seconds the probe need not spend — who may open the
    document is decided before); an e-invoice asked for, not issued yet; its mortgage release open; the lessee's
    return chosen (so that no POST of the probe changes the lease: no new quote or prepayment is made). The ids the
    routes name: ``quote_id``, ``prepayment_id``, ``lease_document_id``, ``invoice_id``."""
    import uuid

    from bff.servicing.lease_page import quote
    from bff.servicing.lease_page import settlement_dates
    from infra.db.models import InvoiceRequestRow
    from infra.db.models import LeaseDocumentRow
    from infra.end_of_term import SqlEndOfTerm
    from infra.lease_documents import SqlLeaseDocuments
    from infra.lease_reads import SqlLeaseReads
    from infra.prepayments import SqlPrepayments
    from infra.settlements import SqlSettlements

    db = flask_app.extensions["leaseline"].db
    servicing = SqlServicing(db)
    day, calendar, now = servicing.business_date(), servicing.calendar(), datetime.now(UTC)
    with db.session() as s:
        due = select(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.due_on <= day)
        for r in s.scalars(due):
            r.state, r.paid_principal, r.paid_interest, r.settled_on = "paid", r.principal, r.interest, r.due_on
    prepayment_id = SqlPrepayments(db).offer(lease_id, 200_000, "customer", now).id
    snap = SqlLeaseReads(db).snapshot(lease_id)
    assert snap is not None
    earliest = settlement_dates(snap.lease, snap.instalments, day, calendar).earliest
    assert earliest is not None
    quote_id = SqlSettlements(db).offer(lease_id, quote(snap.lease, snap.instalments, earliest, calendar),
                                        requested_by="customer", now=now)
    document_id = str(uuid.uuid4())
    with db.session() as s:
        s.add(LeaseDocumentRow(id=document_id, lease_id=lease_id, kind="settlement_certificate", subject_id=quote_id,
                               status="requested", attempts=0, error="", created_at=now))
    invoice_id = str(uuid.uuid4())  # an e-invoice asked for, not issued yet (its PDF: 409; no job: it stays so)
    with db.session() as s:
        s.add(InvoiceRequestRow(id=invoice_id, key=f"probe:{invoice_id}", lease_id=lease_id,
                                application_id=snap.lease.application_id, dealer_id=snap.lease.dealer_id, kind="blue",
                                purpose="rent", reason="", reissue=False, tax_point=day, facts="{}", lines="[]",
                                amount=100, buyer_id_masked="", status="requested", platform="", attempts=0,
                                requested_by="system", created_at=now, updated_at=now))
    SqlLeaseDocuments(db).open_release(lease_id, snap.lease.dealer_id, day)
    SqlEndOfTerm(db).choose(lease_id, "return", by="customer", terms={}, purchase_price=0, now=now)
    return {"quote_id": quote_id, "prepayment_id": prepayment_id, "lease_document_id": document_id,
            "invoice_id": invoice_id}
