"""The audit log: append-only (the application inserts and reads; it never updates or deletes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from infra.db.engine import Database
from infra.db.models import AuditEventRow
from infra.db.models import utcnow


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    action: str
    outcome: str
    actor_id: str | None
    actor_label: str
    dealer_id: str | None
    target: str
    ip: str
    user_agent: str
    details: dict[str, object]


class SqlAuditLog:
    """Audit events in the BFF's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, action: str, outcome: str, *, actor_id: str | None, actor_label: str,
               dealer_id: str | None = None, target: str = "", ip: str = "", user_agent: str = "",
               details: dict[str, object] | None = None) -> None:
        """Record one event (who, what, when, from which address and device)."""
        with self.db.session() as session:
            session.add(AuditEventRow(
                at=utcnow(), action=action[:64], outcome=outcome[:16], actor_id=actor_id,
                actor_label=actor_label[:254], dealer_id=dealer_id, target=target[:254], ip=ip[:64],
                user_agent=user_agent[:255], details=json.dumps(details or {}, ensure_ascii=False),
            ))

    def search(self, *, action: str = "", actor: str = "", dealer_id: str | None = None,
               limit: int = 200) -> list[AuditEvent]:
        """The newest events matching the filters (``dealer_id`` None: every tenant)."""
        stmt = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(AuditEventRow.action == action)
        if actor:
            stmt = stmt.where(AuditEventRow.actor_label.ilike(f"%{actor.replace('%', '')}%"))
        if dealer_id is not None:
            stmt = stmt.where(AuditEventRow.dealer_id == dealer_id)
        with self.db.session() as session:
            return [AuditEvent(r.at, r.action, r.outcome, r.actor_id, r.actor_label, r.dealer_id, r.target, r.ip,
                               r.user_agent, json.loads(r.details)) for r in session.scalars(stmt)]
