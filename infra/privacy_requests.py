"""The person's requests about their personal information (PIPL arts. 44–48), one row each: what they asked, when
it is due and how ops answered (bff/privacy/services.py). Reads are by application (the customer's page, scoped by
the caller) or across every dealer (ops' list)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy import update

from infra.db.engine import Database
from infra.db.models import PrivacyRequestRow

OPEN, ANSWERED, REFUSED = "open", "answered", "refused"


@dataclass(frozen=True)
class PrivacyRequest:
    id: str
    application_id: str
    dealer_id: str
    kind: str
    detail: str
    status: str
    received_at: datetime
    due_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    answered_by_label: str | None
    answer: str | None


class SqlPrivacyRequests:
    """Privacy requests in the BFF's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, *, application_id: str, dealer_id: str, kind: str, detail: str, received_at: datetime,
            due_at: datetime) -> PrivacyRequest:
        """Record a new (``open``) request."""
        row = PrivacyRequestRow(id=str(uuid.uuid4()), application_id=application_id, dealer_id=dealer_id, kind=kind,
                                detail=detail[:1000], status=OPEN, received_at=received_at, due_at=due_at)
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return _request(row)

    def get(self, request_id: str) -> PrivacyRequest | None:
        with self.db.session() as session:
            row = session.get(PrivacyRequestRow, request_id)
            return _request(row) if row is not None else None

    def for_application(self, application_id: str) -> list[PrivacyRequest]:
        """The application's requests, newest first."""
        stmt = (select(PrivacyRequestRow).where(PrivacyRequestRow.application_id == application_id)
                .order_by(PrivacyRequestRow.received_at.desc(), PrivacyRequestRow.id))
        with self.db.session() as session:
            return [_request(r) for r in session.scalars(stmt)]

    def open_requests(self, limit: int = 500) -> list[PrivacyRequest]:
        """Every dealer's open requests, the one due first at the top (so the overdue ones lead)."""
        stmt = (select(PrivacyRequestRow).where(PrivacyRequestRow.status == OPEN)
                .order_by(PrivacyRequestRow.due_at, PrivacyRequestRow.id).limit(limit))
        with self.db.session() as session:
            return [_request(r) for r in session.scalars(stmt)]

    def answer(self, request_id: str, *, status: str, answer: str, actor_id: str, actor_label: str,
               now: datetime) -> PrivacyRequest | None:
        """Close an open request with ``status`` (answered or refused) and the answer; None when it is not open
        (answered meanwhile, by another tab or person: the first answer stands)."""
        with self.db.session() as session:
            moved = session.execute(update(PrivacyRequestRow).where(
                PrivacyRequestRow.id == request_id, PrivacyRequestRow.status == OPEN).values(
                status=status, answer=answer[:2000], answered_at=now, answered_by=actor_id[:36],
                answered_by_label=actor_label[:254])).rowcount  # type: ignore[attr-defined]
        return self.get(request_id) if moved else None


def _request(r: PrivacyRequestRow) -> PrivacyRequest:
    return PrivacyRequest(r.id, r.application_id, r.dealer_id, r.kind, r.detail, r.status, r.received_at, r.due_at,
                          r.answered_at, r.answered_by, r.answered_by_label, r.answer)
