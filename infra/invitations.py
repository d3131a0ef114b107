"""Customer invitations in SQL: create, find, and the few state changes of their short life."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from infra.db.engine import Database
from infra.db.models import InvitationRow
from infra.db.models import ReturningCodeRow
from infra.db.models import utcnow
from infra.pii import PiiVault


@dataclass(frozen=True)
class Invitation:
    id: str
    dealer_id: str
    created_by: str
    mobile: str
    vehicle_id: str | None
    plan_code: str | None
    nonce_hash: str
    expires_at: datetime
    opened_at: datetime | None
    code_hash: str | None
    code_sent_at: datetime | None
    failed_codes: int
    locked: bool
    customer_plan: str | None
    customer_seen_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class IssuedCode:
    """A code recorded by :meth:`SqlInvitations.set_code_unless_recent` and the one it replaced."""

    code_hash: str
    previous_hash: str | None
    previous_sent_at: datetime | None


MOBILE_CONTEXT = "invitation_mobile"


class SqlInvitations:
    """Invitations; the customer's mobile number is encrypted at rest (``mobile`` of the DTO is clear)."""

    def __init__(self, db: Database, vault: PiiVault) -> None:
        self.db = db
        self.vault = vault

    def _dto(self, r: InvitationRow) -> Invitation:
        return Invitation(r.id, r.dealer_id, r.created_by, self.vault.decrypt(r.mobile_enc, MOBILE_CONTEXT),
                          r.vehicle_id, r.plan_code, r.nonce_hash, r.expires_at, r.opened_at, r.code_hash,
                          r.code_sent_at, r.failed_codes, r.locked, r.customer_plan, r.customer_seen_at, r.created_at)

    def create(self, *, dealer_id: str, created_by: str, mobile: str, vehicle_id: str | None,
               plan_code: str | None, nonce_hash: str, expires_at: datetime) -> Invitation:
        row = InvitationRow(id=str(uuid.uuid4()), dealer_id=dealer_id, created_by=created_by,
                            mobile_enc=self.vault.encrypt(mobile, MOBILE_CONTEXT),
                            mobile_hash=self.vault.lookup_hash(mobile, "mobile"),
                            vehicle_id=vehicle_id, plan_code=plan_code, nonce_hash=nonce_hash,
                            expires_at=expires_at, failed_codes=0, locked=False, created_at=utcnow())
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return self._dto(row)

    def get(self, invitation_id: str) -> Invitation | None:
        if len(invitation_id) > 36:  # an id names its row exactly, never the one its first 36 characters name
            return None
        with self.db.session() as session:
            row = session.get(InvitationRow, invitation_id)
            return self._dto(row) if row else None

    def by_nonce_hash(self, nonce_hash: str) -> Invitation | None:
        """The invitation whose link secret hashes to ``nonce_hash`` (a short link), or None."""
        with self.db.session() as session:
            row = session.scalars(select(InvitationRow).where(InvitationRow.nonce_hash == nonce_hash[:64])).first()
            return self._dto(row) if row else None

    def of_dealer(self, dealer_id: str | None, created_by: str | None = None, limit: int = 50) -> list[Invitation]:
        stmt = select(InvitationRow).order_by(InvitationRow.created_at.desc()).limit(limit)
        if dealer_id is not None:
            stmt = stmt.where(InvitationRow.dealer_id == dealer_id)
        if created_by is not None:
            stmt = stmt.where(InvitationRow.created_by == created_by)
        with self.db.session() as session:
            return [self._dto(r) for r in session.scalars(stmt)]

    def set_code_unless_recent(self, invitation_id: str, code_hash: str, sent_after: datetime) -> IssuedCode | None:
        """Record a new code unless one was sent after ``sent_after`` (None then, as for an unknown invitation): the
        check and the record in one step under the invitation's row lock, so that two requests at once (a double
        tap) make one code. Committed before the text goes; :meth:`restore_code` undoes it if the text fails."""
        with self.db.session() as session:
            row = session.get(InvitationRow, invitation_id, with_for_update=True, populate_existing=True)
            if row is None or (row.code_sent_at is not None and row.code_sent_at > sent_after):
                return None
            issued = IssuedCode(code_hash, row.code_hash, row.code_sent_at)
            row.code_hash, row.code_sent_at = code_hash, utcnow()
            return issued

    def restore_code(self, invitation_id: str, issued: IssuedCode) -> None:
        """Put back the code ``issued`` replaced (its text did not go), unless another has replaced it since."""
        with self.db.session() as session:
            row = session.get(InvitationRow, invitation_id, with_for_update=True, populate_existing=True)
            if row is not None and row.code_hash == issued.code_hash:
                row.code_hash, row.code_sent_at = issued.previous_hash, issued.previous_sent_at

    def code_failed(self, invitation_id: str, lock_after: int) -> bool:
        """Count a wrong code; lock the invitation at ``lock_after``. Returns True when now locked."""
        with self.db.session() as session:
            row = session.get(InvitationRow, invitation_id, with_for_update=True)
            if row is None:
                return True
            row.failed_codes += 1
            row.locked = row.locked or row.failed_codes >= lock_after
            return row.locked

    def mark_opened(self, invitation_id: str) -> bool:
        """Use the link (once): True if this call did it, False if it was already used or locked."""
        with self.db.session() as session:
            row = session.get(InvitationRow, invitation_id, with_for_update=True)
            if row is None or row.opened_at is not None or row.locked:
                return False
            row.opened_at = utcnow()
            return True

    def record_plan(self, invitation_id: str, plan_code: str) -> None:
        with self.db.session() as session:
            row = session.get(InvitationRow, invitation_id)
            if row is not None:
                row.customer_plan, row.customer_seen_at = plan_code[:120], utcnow()


@dataclass(frozen=True)
class CodeToText:
    """A 我的租赁 code the job is to text: the number and the code in clear."""

    mobile_hash: str
    mobile: str
    code: str


RETURNING_CONTEXT = "returning_mobile"


class SqlReturningCodes:
    """我的租赁's one-time codes, one per number (its keyed hash): sent at most once a minute, checked under a row
    lock so that parallel guesses are each counted."""

    def __init__(self, db: Database, vault: PiiVault) -> None:
        self.db = db
        self.vault = vault

    def issue(self, mobile_hash: str, mobile: str, code: str, code_hash: str, now: datetime,
              resend_after: timedelta) -> datetime | None:
        """Store a new code for the number unless one was issued less than ``resend_after`` ago (one statement:
        a double tap issues one). Returns when the code now pending was sent, None when this call issued none."""
        values = {"mobile_hash": mobile_hash, "mobile_enc": self.vault.encrypt(mobile, RETURNING_CONTEXT),
                  "code_hash": code_hash, "code_enc": self.vault.encrypt(code, RETURNING_CONTEXT),
                  "sent_at": now, "attempts": 0, "used_at": None}
        stmt = insert(ReturningCodeRow).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[ReturningCodeRow.mobile_hash],
            set_={k: stmt.excluded[k] for k in values if k != "mobile_hash"},
            where=ReturningCodeRow.sent_at <= now - resend_after,
        ).returning(ReturningCodeRow.mobile_hash)
        with self.db.session() as session:
            return now if session.scalar(stmt) is not None else None

    def sent_at(self, mobile_hash: str) -> datetime | None:
        """When the number's latest code was issued (None: never)."""
        with self.db.session() as session:
            row = session.get(ReturningCodeRow, mobile_hash[:64])
            return row.sent_at if row is not None else None

    def mobile(self, mobile_hash: str) -> str | None:
        """The number of a hash a code was issued for (a resend from the code page), or None."""
        with self.db.session() as session:
            row = session.get(ReturningCodeRow, mobile_hash[:64])
            return self.vault.decrypt(row.mobile_enc, RETURNING_CONTEXT) if row is not None else None

    def check(self, mobile_hash: str, matches: Callable[[str], bool], fresh_since: datetime, now: datetime,
              max_attempts: int) -> tuple[bool, bool]:
        """Count one try of the number's code under a row lock: (whether it matched — it is then used up,
        whether the code can still be tried)."""
        with self.db.session() as session:
            row = session.get(ReturningCodeRow, mobile_hash[:64], with_for_update=True)
            if row is None or row.used_at is not None or row.sent_at < fresh_since or row.attempts >= max_attempts:
                return False, False
            row.attempts += 1
            if matches(row.code_hash):
                row.used_at = now
                return True, False
            return False, row.attempts < max_attempts

    def purge(self, before: datetime) -> int:
        """Forget the codes issued before ``before`` with their encrypted numbers (PIPL: a number asked about is
        kept no longer than its code and the resend wait need it). Returns how many went."""
        with self.db.session() as session:
            result = session.execute(delete(ReturningCodeRow).where(ReturningCodeRow.sent_at < before))
            return int(getattr(result, "rowcount", 0) or 0)

    def take_text(self, mobile_hash: str) -> CodeToText | None:
        """The code waiting to be texted (cleared: it goes once), or None. Call inside the transaction that texts
        it, so that a text the platform did not take leaves it for the job's next try."""
        with self.db.session() as session:
            row = session.get(ReturningCodeRow, mobile_hash[:64], with_for_update=True)
            if row is None or row.code_enc is None:
                return None
            code = self.vault.decrypt(row.code_enc, RETURNING_CONTEXT)
            row.code_enc = None
            return CodeToText(row.mobile_hash, self.vault.decrypt(row.mobile_enc, RETURNING_CONTEXT), code)
