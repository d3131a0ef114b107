"""Text messages: the ``Sms`` port and its embedded default, a sandbox outbox that sends nothing.

No SMS gateway can run here, so the default stores each message in ``sms_outbox``; development staff read it
at ``/dev/outbox`` (labelled as such) and tests read it directly. A production adapter (e.g. Alibaba Cloud
SMS) implements the same ``send``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select

from infra.db.engine import Database
from infra.db.models import SmsOutboxRow
from infra.db.models import utcnow


@dataclass(frozen=True)
class Sms:
    to: str
    body: str
    at: datetime


class SmsSender(Protocol):
    def send(self, to: str, body: str) -> None:
        """Deliver ``body`` to the mobile number ``to`` (11 digits, mainland China)."""
        ...


class SandboxOutboxSms:
    """The sandbox: messages are stored, never delivered."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, to: str, body: str) -> None:
        with self.db.session() as session:
            session.add(SmsOutboxRow(to=to, body=body, created_at=utcnow()))

    def latest(self, limit: int = 50, to: str | None = None) -> list[Sms]:
        """The newest messages (for one number when ``to`` is given)."""
        stmt = select(SmsOutboxRow).order_by(SmsOutboxRow.id.desc()).limit(limit)
        if to:
            stmt = stmt.where(SmsOutboxRow.to == to)
        with self.db.session() as session:
            return [Sms(r.to, r.body, r.created_at) for r in session.scalars(stmt)]
