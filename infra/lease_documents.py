"""The tables behind the documents and tasks that follow a settled lease or a prepayment (issue 18 §5, migration
0021): ``lease_documents`` (the settlement certificate and schedule annexes the contract service signs, once per kind
and subject), ``mortgage_releases`` (the dealer's task to release the car's mortgage, 抵押解除) and the reads the lease
page and the release desk need (the lease's receipts, the releases of a tenant). bff/servicing/settled.py and
bff/servicing/releases.py hold the use cases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from infra.applications import Scope
from infra.db.engine import Database
from infra.db.models import ApplicationRow
from infra.db.models import CollectionMandateRow
from infra.db.models import LeaseDocumentRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import LeaseRow
from infra.db.models import MortgageReleaseRow
from infra.db.models import PrepaymentRow
from infra.db.models import SettlementQuoteRow
from infra.db.models import utcnow
from infra.jobs import defer_in
from infra.servicing import current_business_date

SETTLEMENT_CERTIFICATE, SCHEDULE_ANNEX = "settlement_certificate", "schedule_annex"
REQUESTED, READY, FAILED = "requested", "ready", "failed"
OPEN, RELEASED = "open", "released"
#: the task that texts the customer once a document is ready (deferred with the change to ready)
TEXT_TASK = "servicing.document_text"
#: where that text stands (``lease_documents.text_status``; '' before the task has run)
TEXT_SENDING, TEXT_SENT, TEXT_REFUSED, TEXT_NO_MOBILE = "sending", "sent", "refused", "no_mobile"


@dataclass(frozen=True)
class ReleaseLine:
    """A mortgage release as the desk lists it: the lease, its contract, the customer as the application names them
    (the mobile number masked), the car, when it was settled and the release's state."""

    lease_id: str
    dealer_id: str
    application_id: str
    contract_number: str
    customer_name: str
    mobile_masked: str
    vehicle_label: str
    settled_on: date | None
    status: str
    opened_on: date
    released_on: date | None
    office: str
    reference: str
    note: str


class SqlLeaseDocuments:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- what the tasks read -----------------------------------------------------------------------------------
    def lease(self, lease_id: str) -> LeaseRow | None:
        with self.db.session() as session:
            found = session.get(LeaseRow, lease_id)
            if found is not None:
                session.expunge(found)
            return found

    def quote(self, quote_id: str) -> SettlementQuoteRow | None:
        with self.db.session() as session:
            found = session.get(SettlementQuoteRow, quote_id)
            if found is not None:
                session.expunge(found)
            return found

    def prepayment(self, prepayment_id: str) -> PrepaymentRow | None:
        with self.db.session() as session:
            found = session.get(PrepaymentRow, prepayment_id)
            if found is not None:
                session.expunge(found)
            return found

    def language(self, application_id: str) -> str:
        """The language the customer chose with their mandate (zh when they have none), as the reminders use."""
        with self.db.session() as session:
            found = session.scalar(
                select(CollectionMandateRow.language)
                .where(CollectionMandateRow.application_id == application_id)
                .order_by(CollectionMandateRow.created_at.desc())
                .limit(1)
            )
            return found or "zh"

    def business_date(self) -> date:
        with self.db.session() as session:
            return current_business_date(session)

    # -- lease_documents -----------------------------------------------------------------------------------------
    def ensure(self, lease_id: str, kind: str, subject_id: str) -> LeaseDocumentRow:
        """The document row of ``kind`` for ``subject_id``, made (``requested``) when there is none."""
        with self.db.session() as session:
            session.execute(
                insert(LeaseDocumentRow)
                .values(
                    id=str(uuid.uuid4()),
                    lease_id=lease_id,
                    kind=kind,
                    subject_id=subject_id,
                    status=REQUESTED,
                    attempts=0,
                    error="",
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["kind", "subject_id"])
            )
            found = session.scalars(
                select(LeaseDocumentRow).where(LeaseDocumentRow.kind == kind, LeaseDocumentRow.subject_id == subject_id)
            ).one()
            session.expunge(found)
            return found

    def ready(self, row_id: str, document_id: str, sha256: str, evidence_index: int | None, now: datetime) -> bool:
        """Mark the document ready, and defer its text to the customer in the same transaction; False when it was
        ready already (nothing deferred again)."""
        with self.db.session() as session:
            changed = session.execute(
                update(LeaseDocumentRow)
                .where(LeaseDocumentRow.id == row_id, LeaseDocumentRow.status != READY)
                .values(
                    status=READY,
                    document_id=document_id,
                    sha256=sha256,
                    evidence_index=evidence_index,
                    error="",
                    attempts=LeaseDocumentRow.attempts + 1,
                    ready_at=now,
                )
            ).rowcount
            if changed:
                defer_in(session, TEXT_TASK, {"document_row_id": row_id}, queue="servicing")
            return bool(changed)

    def failed(self, row_id: str, error: str) -> None:
        """An attempt that failed: its error kept for ops (the lease page's staff view, the job's error)."""
        with self.db.session() as session:
            session.execute(
                update(LeaseDocumentRow)
                .where(LeaseDocumentRow.id == row_id, LeaseDocumentRow.status != READY)
                .values(status=FAILED, error=error[:255], attempts=LeaseDocumentRow.attempts + 1)
            )

    # -- the customer's text that a document is ready (claimed once, as infra/collections.py claim_notice) --------
    def claim_text(self, row_id: str, now: datetime) -> bool:
        """Whether this caller is the one to text the customer about the document: once per document (a text that
        could not be sent for want of a mobile number may be tried again). A claim left ``sending`` by a worker that
        died after the platform took the text is never taken again: a customer is not texted twice."""
        with self.db.session() as session:
            return (
                session.execute(
                    update(LeaseDocumentRow)
                    .where(LeaseDocumentRow.id == row_id, LeaseDocumentRow.text_status.in_(("", TEXT_NO_MOBILE)))
                    .values(text_status=TEXT_SENDING, text_detail="", text_at=now)
                    .returning(LeaseDocumentRow.id)
                ).scalar_one_or_none()
                is not None
            )

    def release_text(self, row_id: str) -> None:
        """The text could not be sent (the platform away): the job's retry sends it."""
        with self.db.session() as session:
            session.execute(
                update(LeaseDocumentRow)
                .where(LeaseDocumentRow.id == row_id, LeaseDocumentRow.text_status == TEXT_SENDING)
                .values(text_status="", text_at=None)
            )

    def text_done(self, row_id: str, status: str, detail: str, now: datetime) -> None:
        """The text's outcome — :data:`TEXT_SENT`, :data:`TEXT_REFUSED` (``detail``: the platform's reason) or
        :data:`TEXT_NO_MOBILE` —, for the lease page's staff view."""
        with self.db.session() as session:
            session.execute(
                update(LeaseDocumentRow)
                .where(LeaseDocumentRow.id == row_id)
                .values(text_status=status, text_detail=detail[:255], text_at=now)
            )

    def document(self, row_id: str) -> LeaseDocumentRow | None:
        with self.db.session() as session:
            found = session.get(LeaseDocumentRow, row_id)
            if found is not None:
                session.expunge(found)
            return found

    def documents(self, lease_id: str) -> list[LeaseDocumentRow]:
        """The lease's documents, oldest first."""
        with self.db.session() as session:
            rows = list(
                session.scalars(
                    select(LeaseDocumentRow)
                    .where(LeaseDocumentRow.lease_id == lease_id)
                    .order_by(LeaseDocumentRow.created_at, LeaseDocumentRow.id)
                )
            )
            session.expunge_all()
            return rows

    def receipts(self, lease_id: str) -> list[LeaseReceiptRow]:
        """The payments booked into the lease, oldest first."""
        with self.db.session() as session:
            rows = list(
                session.scalars(
                    select(LeaseReceiptRow)
                    .where(LeaseReceiptRow.lease_id == lease_id)
                    .order_by(LeaseReceiptRow.booked_at, LeaseReceiptRow.id)
                )
            )
            session.expunge_all()
            return rows

    # -- mortgage_releases -------------------------------------------------------------------------------------
    def open_release(self, lease_id: str, dealer_id: str, opened_on: date) -> bool:
        """The dealer's release task for the lease, opened once: True when opened now."""
        with self.db.session() as session:
            return bool(
                session.execute(
                    insert(MortgageReleaseRow)
                    .values(
                        lease_id=lease_id,
                        dealer_id=dealer_id,
                        status=OPEN,
                        opened_on=opened_on,
                        office="",
                        reference="",
                        note="",
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                    .on_conflict_do_nothing(index_elements=["lease_id"])
                ).rowcount
            )

    def releases(self, scope: Scope, status: str = OPEN) -> list[ReleaseLine]:
        """The releases of ``status`` within ``scope`` (the applications the user may see: every dealer's, one
        dealer's, a salesperson's own customers'), the oldest opened first."""
        stmt = _scoped(
            _lines()
            .where(MortgageReleaseRow.status == status)
            .order_by(MortgageReleaseRow.opened_on, MortgageReleaseRow.lease_id),
            scope,
        )
        with self.db.session() as session:
            return [ReleaseLine(*row) for row in session.execute(stmt.limit(500))]

    def release(self, lease_id: str, scope: Scope) -> ReleaseLine | None:
        """One lease's release within ``scope``, None otherwise (another dealer's, another salesperson's customer's)."""
        stmt = _scoped(_lines().where(MortgageReleaseRow.lease_id == lease_id), scope)
        with self.db.session() as session:
            row = session.execute(stmt).first()
            return ReleaseLine(*row) if row is not None else None

    def record_release(
        self, lease_id: str, *, released_on: date, office: str, reference: str, note: str, done_by: str
    ) -> bool:
        """Record the release done; False when it was recorded already (by someone else meanwhile)."""
        with self.db.session() as session:
            return bool(
                session.execute(
                    update(MortgageReleaseRow)
                    .where(MortgageReleaseRow.lease_id == lease_id, MortgageReleaseRow.status == OPEN)
                    .values(
                        status=RELEASED,
                        released_on=released_on,
                        office=office,
                        reference=reference,
                        note=note,
                        done_by=done_by,
                        updated_at=utcnow(),
                    )
                ).rowcount
            )


def _scoped(stmt, scope: Scope):  # type: ignore[no-untyped-def]
    """``stmt`` (over :func:`_lines`) kept to ``scope``, as the lease page keeps the applications (staff_scope)."""
    if scope.dealer_id is not None:
        stmt = stmt.where(MortgageReleaseRow.dealer_id == scope.dealer_id)
    if scope.owner_id is not None:
        stmt = stmt.where(ApplicationRow.owner_id == scope.owner_id)
    if scope.mobile_hash is not None:  # no customer has the desk; a scope that names one sees only theirs
        stmt = stmt.where(ApplicationRow.mobile_hash == scope.mobile_hash)
    return stmt


def _lines():  # type: ignore[no-untyped-def]
    return (
        select(
            MortgageReleaseRow.lease_id,
            MortgageReleaseRow.dealer_id,
            LeaseRow.application_id,
            LeaseRow.contract_number,
            ApplicationRow.customer_name,
            ApplicationRow.mobile_masked,
            ApplicationRow.vehicle_label,
            LeaseRow.settled_on,
            MortgageReleaseRow.status,
            MortgageReleaseRow.opened_on,
            MortgageReleaseRow.released_on,
            MortgageReleaseRow.office,
            MortgageReleaseRow.reference,
            MortgageReleaseRow.note,
        )
        .join(LeaseRow, LeaseRow.id == MortgageReleaseRow.lease_id)
        .join(ApplicationRow, ApplicationRow.id == LeaseRow.application_id)
    )
