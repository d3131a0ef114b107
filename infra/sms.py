"""Text messages: the ``Sms`` port and its embedded default, a sandbox outbox that sends nothing.

No SMS gateway can run here, so the default stores each message in ``sms_outbox``, with the dealer whose
customer it went to; development staff read their own dealer's at ``/dev/outbox`` (labelled as such, never
mounted in production) and tests read it directly. A production adapter (e.g. Alibaba Cloud SMS) implements
the same ``send``.
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
    dealer_id: str | None = None


class SmsSender(Protocol):
    def send(self, to: str, body: str, dealer_id: str | None = None) -> None:
        """Deliver ``body`` to the mobile number ``to`` (11 digits, mainland China) on behalf of ``dealer_id``
        (the dealer whose customer it is; None for the lessor's own messages)."""
        ...


class SandboxOutboxSms:
    """The sandbox: messages are stored, never delivered."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, to: str, body: str, dealer_id: str | None = None) -> None:
        with self.db.session() as session:
            session.add(SmsOutboxRow(to=to, body=body, dealer_id=dealer_id, created_at=utcnow()))

    def latest(self, limit: int = 50, to: str | None = None, dealer_id: str | None = None) -> list[Sms]:
        """The newest messages (for one number when ``to`` is given; of one dealer's customers when ``dealer_id``
        is given, None: every dealer's and the lessor's own)."""
        stmt = select(SmsOutboxRow).order_by(SmsOutboxRow.id.desc()).limit(limit)
        if to:
            stmt = stmt.where(SmsOutboxRow.to == to)
        if dealer_id is not None:
            stmt = stmt.where(SmsOutboxRow.dealer_id == dealer_id)
        with self.db.session() as session:
            return [Sms(r.to, r.body, r.created_at, r.dealer_id) for r in session.scalars(stmt)]
