"""Documents on request: what a risk officer asked an applicant for (``document_requests``) and the files the
applicant sent (``document_pages``, each naming its object in the private bucket). The rules — who may ask, what a
file must be, when a request is due — are bff/documents/services.py's; this module only reads and writes rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import select
from sqlalchemy import update

from infra.db.engine import Database
from infra.db.models import DocumentPageRow
from infra.db.models import DocumentRequestRow

OPEN, SUBMITTED, ACCEPTED, RETURNED, CANCELLED = "open", "submitted", "accepted", "returned", "cancelled"


@dataclass(frozen=True)
class DocumentRequest:
    id: str
    application_id: str
    dealer_id: str
    case_id: str
    kinds: tuple[str, ...]
    note: str
    due_on: date
    status: str
    requested_by: str
    requested_by_label: str
    requested_at: datetime
    submitted_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class DocumentPage:
    id: str
    request_id: str
    application_id: str
    kind: str
    object_key: str
    sha256: str
    size: int
    content_type: str
    pages: int
    created_at: datetime


def _request(r: DocumentRequestRow) -> DocumentRequest:
    return DocumentRequest(r.id, r.application_id, r.dealer_id, r.case_id, tuple(k for k in r.kinds.split(",") if k),
                           r.note, r.due_on, r.status, r.requested_by, r.requested_by_label, r.requested_at,
                           r.submitted_at, r.closed_at)


def _page(r: DocumentPageRow) -> DocumentPage:
    return DocumentPage(r.id, r.request_id, r.application_id, r.kind, r.object_key, r.sha256, r.size,
                        r.content_type, r.pages, r.created_at)


class SqlDocuments:
    """Document requests and their pages in the BFF's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_request(self, *, application_id: str, dealer_id: str, case_id: str, kinds: Sequence[str], note: str,
                    due_on: date, requested_by: str, requested_by_label: str, now: datetime) -> DocumentRequest:
        """Record a new (``open``) request."""
        row = DocumentRequestRow(id=str(uuid.uuid4()), application_id=application_id, dealer_id=dealer_id,
                                 case_id=case_id[:64], kinds=",".join(kinds), note=note[:500], due_on=due_on,
                                 status=OPEN, requested_by=requested_by[:36],
                                 requested_by_label=requested_by_label[:254], requested_at=now)
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return _request(row)

    def get(self, request_id: str) -> DocumentRequest | None:
        if len(request_id) > 36:  # an id names its row exactly, never the one its first 36 characters name
            return None
        with self.db.session() as session:
            row = session.get(DocumentRequestRow, request_id)
            return _request(row) if row is not None else None

    def for_application(self, application_id: str) -> list[DocumentRequest]:
        """The application's requests, newest first."""
        stmt = (select(DocumentRequestRow).where(DocumentRequestRow.application_id == application_id)
                .order_by(DocumentRequestRow.requested_at.desc(), DocumentRequestRow.id))
        with self.db.session() as session:
            return [_request(r) for r in session.scalars(stmt)]

    def for_applications(self, application_ids: Sequence[str]) -> list[DocumentRequest]:
        """The requests of several applications (the review queue's), oldest first."""
        if not application_ids:
            return []
        stmt = (select(DocumentRequestRow).where(DocumentRequestRow.application_id.in_(list(application_ids)))
                .order_by(DocumentRequestRow.requested_at, DocumentRequestRow.id))
        with self.db.session() as session:
            return [_request(r) for r in session.scalars(stmt)]

    def move(self, request_id: str, *, allowed_from: Sequence[str], to: str, now: datetime) -> DocumentRequest | None:
        """Move a request from one of ``allowed_from`` to ``to`` (``submitted_at`` or ``closed_at`` set to ``now``);
        None when it was not in one of them (another tab or person moved it first: that move stands)."""
        stamp = {"submitted_at": now} if to == SUBMITTED else {"closed_at": now}
        with self.db.session() as session:
            moved = session.execute(update(DocumentRequestRow).where(
                DocumentRequestRow.id == request_id, DocumentRequestRow.status.in_(list(allowed_from))).values(
                status=to, **stamp)).rowcount  # type: ignore[attr-defined]
        return self.get(request_id) if moved else None

    def close_case(self, case_id: str, now: datetime) -> int:
        """Cancel the case's requests still open or unanswered (the case was decided); how many."""
        with self.db.session() as session:
            return int(session.execute(update(DocumentRequestRow).where(
                DocumentRequestRow.case_id == case_id, DocumentRequestRow.status.in_([OPEN, SUBMITTED])).values(
                status=CANCELLED, closed_at=now)).rowcount)  # type: ignore[attr-defined]

    def add_page(self, request_id: str, application_id: str, *, kind: str, object_key: str, sha256: str, size: int,
                 content_type: str, pages: int) -> DocumentPage | None:
        """Record a stored file of an ``open`` request (row-locked, so a submit cannot slip in between); None when
        the request is no longer open."""
        with self.db.session() as session:
            request = session.get(DocumentRequestRow, request_id, with_for_update=True)
            if request is None or request.status != OPEN:
                return None
            row = DocumentPageRow(id=str(uuid.uuid4()), request_id=request_id, application_id=application_id,
                                  kind=kind, object_key=object_key, sha256=sha256, size=size,
                                  content_type=content_type, pages=pages)
            session.add(row)
            session.flush()
            return _page(row)

    def pages(self, request_id: str) -> list[DocumentPage]:
        """The request's files not deleted, in the order sent."""
        stmt = (select(DocumentPageRow).where(DocumentPageRow.request_id == request_id,
                                              DocumentPageRow.deleted_at.is_(None))
                .order_by(DocumentPageRow.created_at, DocumentPageRow.id))
        with self.db.session() as session:
            return [_page(r) for r in session.scalars(stmt)]

    def live_object_keys(self, application_ids: Sequence[str]) -> set[str]:
        """The object keys that page rows not marked deleted refer to, among the pages of ``application_ids`` (the
        orphan sweep's: an object no live row names is an orphan)."""
        if not application_ids:
            return set()
        stmt = select(DocumentPageRow.object_key).where(DocumentPageRow.application_id.in_(list(application_ids)),
                                                        DocumentPageRow.deleted_at.is_(None))
        with self.db.session() as session:
            return set(session.scalars(stmt))

    def mark_deleted(self, request_id: str, page_id: str, now: datetime) -> bool:
        """Mark a page of an ``open`` request deleted (the request row-locked as :meth:`add_page` does, so a submit
        cannot slip in between); False when the request is no longer open (the page stays with what was sent)."""
        with self.db.session() as session:
            request = session.get(DocumentRequestRow, request_id, with_for_update=True)
            if request is None or request.status != OPEN:
                return False
            session.execute(update(DocumentPageRow).where(DocumentPageRow.id == page_id,
                                                          DocumentPageRow.request_id == request_id,
                                                          DocumentPageRow.deleted_at.is_(None))
                            .values(deleted_at=now))
            return True
