"""Browser sessions kept on the server: the ``SessionStore`` port and its SQL adapter.

The cookie carries only a random session id (OWASP ASVS 4.0.3 V3.2.2: at least 64 bits of entropy; we use
256). The store never sees that id: callers pass :func:`session_key` of it, the id's SHA-256, so a copy of the
table (a backup, a read replica, an SQL injection) yields no session anyone could present. What a session holds
is sealed with :func:`seal` under a key derived from the id too (AES-256-GCM), so the copy does not yield that
either (a salesperson's session keeps the single-use links of the invitations they made). Ending a session is
deleting its row, which ends every copy of its cookie at once (ASVS 3.3.1); ending a *subject* (one person's
``staff:<user id>``) ends all of their sessions (ASVS 3.3.3, 3.3.4 on deactivation).

The SQL adapter is PostgreSQL's. A Redis adapter (the scale-out issue) implements the same
methods: ``SET key data EX ttl NX`` for :meth:`create`, ``SET ... XX KEEPTTL``-style writes for
:meth:`update`/:meth:`touch`, a set per subject for :meth:`end_subject`/:meth:`count`, and lets Redis's own
expiry do :meth:`purge`.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from infra.db.engine import Database
from infra.db.models import WebSessionRow


def session_key(session_id: str) -> str:
    """The key a session is stored under: the SHA-256 of its id (hex). The id is 256 random bits, so a plain
    hash suffices (no salt or stretching: there is nothing to guess)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _sealing_key(session_id: str) -> AESGCM:
    # HKDF-SHA256 (RFC 5869) of the id: independent of the stored SHA-256, so the table does not give it away
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"leaseline/session-data").derive(
        session_id.encode())
    return AESGCM(key)


_AAD = b"leaseline/session-data/v1"


def seal(session_id: str, plaintext: str) -> str:
    """``plaintext`` (a session's serialised values) encrypted under a key only the session's id gives:
    base64url of a random 96-bit nonce, the ciphertext and its tag."""
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(nonce + _sealing_key(session_id).encrypt(nonce, plaintext.encode(), _AAD)).decode()


def unseal(session_id: str, sealed: str) -> str:
    """The plaintext :func:`seal` sealed for ``session_id``; ValueError if it was sealed for another id, or
    altered."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return _sealing_key(session_id).decrypt(raw[:12], raw[12:], _AAD).decode()
    except (InvalidTag, ValueError) as exc:
        raise ValueError("session data does not open with this session id") from exc


@dataclass(frozen=True)
class StoredSession:
    """A live session as stored: its sealed data (:func:`seal`) and when the store forgets it. (Whose it is, its
    subject, is written with it for :meth:`SessionStore.end_subject` and :meth:`SessionStore.count`; a request
    has no use for it, so it is not read back.)"""

    data: str
    expires_at: datetime


class SessionStore(Protocol):
    """Where sessions live between requests. Keys are :func:`session_key` values, never the ids themselves."""

    def load(self, key: str, now: datetime) -> StoredSession | None:
        """The session stored under ``key``, or None when there is none or it expired before ``now``."""
        ...

    def create(self, key: str, data: str, subject: str | None, expires_at: datetime, now: datetime) -> None:
        """Store a new session (a fresh random key: it cannot exist yet)."""
        ...

    def update(self, key: str, data: str, subject: str | None, expires_at: datetime) -> bool:
        """Rewrite an existing session; False (and nothing written) when it was ended meanwhile, so a request
        that started before a sign-out cannot bring the session back."""
        ...

    def touch(self, key: str, expires_at: datetime) -> bool:
        """Push an existing session's expiry to ``expires_at`` (a sliding lifetime); False when it is gone."""
        ...

    def delete(self, key: str) -> None:
        """End one session (sign-out, or rotation to a new id)."""
        ...

    def end_subject(self, subject: str) -> int:
        """End every session of ``subject``; returns how many there were."""
        ...

    def count(self, subject: str, now: datetime) -> int:
        """How many live sessions ``subject`` has."""
        ...

    def purge(self, now: datetime) -> int:
        """Delete the sessions that expired before ``now``; returns how many."""
        ...


class SqlSessionStore:
    """Sessions in the BFF's database (table ``web_sessions``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, key: str, now: datetime) -> StoredSession | None:
        stmt = select(WebSessionRow.data, WebSessionRow.expires_at).where(WebSessionRow.key == key,
                                                                         WebSessionRow.expires_at > now)
        with self.db.session() as session:
            row = session.execute(stmt).first()
            return StoredSession(row.data, row.expires_at) if row is not None else None

    def create(self, key: str, data: str, subject: str | None, expires_at: datetime, now: datetime) -> None:
        with self.db.session() as session:
            session.add(WebSessionRow(key=key, subject=subject, data=data, created_at=now, expires_at=expires_at))

    def update(self, key: str, data: str, subject: str | None, expires_at: datetime) -> bool:
        stmt = (update(WebSessionRow).where(WebSessionRow.key == key)
                .values(data=data, subject=subject, expires_at=expires_at))
        with self.db.session() as session:  # UPDATE only, never an insert: an ended session stays ended
            return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def touch(self, key: str, expires_at: datetime) -> bool:
        stmt = update(WebSessionRow).where(WebSessionRow.key == key).values(expires_at=expires_at)
        with self.db.session() as session:
            return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def delete(self, key: str) -> None:
        with self.db.session() as session:
            session.execute(delete(WebSessionRow).where(WebSessionRow.key == key))

    def end_subject(self, subject: str) -> int:
        with self.db.session() as session:
            return int(session.execute(delete(WebSessionRow).where(WebSessionRow.subject == subject))
                       .rowcount)  # type: ignore[attr-defined]

    def count(self, subject: str, now: datetime) -> int:
        stmt = select(func.count()).select_from(WebSessionRow).where(WebSessionRow.subject == subject,
                                                                     WebSessionRow.expires_at > now)
        with self.db.session() as session:
            return int(session.scalar(stmt) or 0)

    def purge(self, now: datetime) -> int:
        with self.db.session() as session:
            return int(session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
                       .rowcount)  # type: ignore[attr-defined]

