"""Flask sessions kept on the server (:mod:`infra.sessions`): the cookie carries only a random id.

Flask's default session is the signed cookie itself, so the server cannot end it: a copy of the cookie stays
valid after sign-out until it expires (OWASP ASVS 4.0.3 V3.3.1 asks that logout invalidate the session). Here
the cookie holds ``secrets.token_urlsafe(32)`` (256 bits, ASVS 3.2.2) and nothing else; the values live in the
:class:`~infra.sessions.SessionStore` under the id's SHA-256, sealed with a key derived from the id (so the
table yields neither a usable session nor what it holds). Deleting the row ends every copy at once.

* **Rotation** (ASVS 3.2.1): ``session.clear()`` — which sign-in, sign-out and the customer's hand-off call —
  also gives the session a new id when it is saved; the old row is deleted.
* **No row without a write**: a request that never writes the session (the quote API, static files, any page
  of a visitor without a session) creates nothing; paths under ``/static/`` and ``/api/`` do not even read it
  (the JSON API is stateless).
* **Lifetime**: ``expiry(data)`` gives a session's fixed end (a signed-in staff member's idle and absolute
  limits, :mod:`bff.auth.session`); any other session lives ``PERMANENT_SESSION_LIFETIME`` after its last use,
  extended at most once a minute.
* A request that began before its session was ended (sign-out in another tab) never writes it back: saving an
  existing session only updates its row, and a missing row drops the cookie.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import Flask
from flask import Request
from flask import Response
from flask.sessions import SecureCookieSession
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin
from flask.sessions import session_json_serializer

from bff.auth import clock
from bff.auth.cookies import secure_request
from infra.db.engine import UNAVAILABLE
from infra.sessions import SessionStore
from infra.sessions import seal
from infra.sessions import session_key
from infra.sessions import unseal

#: paths whose requests never use a session (no read, no write): static files and the stateless JSON API
STATELESS = ("/static/", "/api/")
#: a session id as :func:`secrets.token_urlsafe` makes them; anything else is not looked up
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")
#: a sliding lifetime is pushed forward at most this often (one write a minute per active session, not one a request)
TOUCH_AFTER = timedelta(seconds=60)

log = logging.getLogger(__name__)


def new_session_id() -> str:
    """A fresh random session id: 32 bytes from the OS's CSPRNG, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


class ServerSession(SecureCookieSession):
    """The session's values, with the id it was loaded under (None: new) and its stored expiry."""

    def __init__(self, initial: Mapping[str, Any] | None = None, sid: str | None = None,
                 expires_at: datetime | None = None, stale: bool = False) -> None:
        super().__init__(initial)
        self.sid = sid
        self.expires_at = expires_at
        self.stale = stale  # the request brought a cookie whose session no longer exists
        self.rotate = False
        self.unavailable = False  # the store did not answer: the request is refused (bff/unavailable.py)

    def clear(self) -> None:
        """Empty the session; when it is saved it gets a new id and the old one is forgotten (rotation)."""
        super().clear()
        self.rotate = True


class StatelessSession(SecureCookieSession):
    """The session of a request under :data:`STATELESS`: it starts empty and is never saved (Flask skips saving
    a ``null_session_class`` session), so such a request neither reads nor writes the store and sets no cookie.
    A write stays in memory: e.g. the CSRF token of the HTML error page of a missing static file."""


class ServerSessionInterface(SessionInterface):
    """Sessions in ``store``. ``expiry(data)`` returns a session's fixed end, or None for the sliding default;
    ``subject(data)`` names whose it is (``staff:<id>``), so all of one person's sessions can be ended at once."""

    session_class = ServerSession
    null_session_class = StatelessSession
    serializer = session_json_serializer  # Flask's tagged JSON, as its signed-cookie sessions use

    def __init__(self, store: SessionStore, expiry: Callable[[Mapping[str, Any]], float | None],
                 subject: Callable[[Mapping[str, Any]], str | None]) -> None:
        self.store = store
        self.expiry = expiry
        self.subject = subject

    # Secure except on localhost (bff/auth/cookies.py), never readable by scripts, not sent on cross-site posts
    def get_cookie_secure(self, app: Flask) -> bool:
        return secure_request()

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Lax"

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        if request.path.startswith(STATELESS):
            return None  # Flask then uses null_session_class: no read, and save_session is never called
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid:
            return ServerSession()
        if not SESSION_ID.fullmatch(sid):  # e.g. an old signed cookie: not ours to look up
            return ServerSession(stale=True)
        try:
            found = self.store.load(session_key(sid), _now())
        except UNAVAILABLE:  # the database is away: not "signed out"; the cookie is kept, nothing is saved
            away = ServerSession(sid=sid)
            away.unavailable = True
            return away
        if found is None:  # ended (sign-out, everywhere, deactivation) or expired
            return ServerSession(stale=True)
        try:
            data = self.serializer.loads(unseal(sid, found.data))
        except ValueError:
            return ServerSession(stale=True)
        return ServerSession(data, sid=sid, expires_at=found.expires_at)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):  # pragma: no cover — open_session only makes these
            raise TypeError("ServerSessionInterface saves ServerSession objects only")
        if session.accessed:
            response.vary.add("Cookie")
        if session.unavailable:
            return
        try:
            self._save(app, session, response)
        except UNAVAILABLE:  # the database went away during the request: the browser keeps the cookie it has
            log.warning("session not saved: the database is unavailable")

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        key = session_key(session.sid) if session.sid else None
        if not session:  # nothing to keep: forget the row if the request emptied it, and the cookie
            if key is not None and session.modified:
                self.store.delete(key)
            if (key is not None and session.modified) or session.stale:
                self._drop_cookie(app, response)
            return
        data = dict(session)
        now = _now()
        fixed = self.expiry(data)
        expires_at = (datetime.fromtimestamp(fixed, UTC) if fixed is not None
                      else now + app.permanent_session_lifetime)
        if key is None or session.rotate:
            if key is not None:
                self.store.delete(key)
            sid = new_session_id()
            self.store.create(session_key(sid), seal(sid, self.serializer.dumps(data)), self.subject(data),
                              expires_at, now)
        elif session.modified:
            sid = str(session.sid)
            if not self.store.update(key, seal(sid, self.serializer.dumps(data)), self.subject(data), expires_at):
                self._drop_cookie(app, response)  # ended while this request ran: it stays ended
                return
        elif session.expires_at is not None and expires_at - session.expires_at >= TOUCH_AFTER:
            if not self.store.touch(key, expires_at):
                self._drop_cookie(app, response)
                return
            sid = str(session.sid)
        else:
            return  # nothing changed: no write, and the browser keeps the cookie it has
        response.set_cookie(self.get_cookie_name(app), sid, expires=self.get_expiration_time(app, session),
                            httponly=self.get_cookie_httponly(app), domain=self.get_cookie_domain(app),
                            path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
                            partitioned=self.get_cookie_partitioned(app), samesite=self.get_cookie_samesite(app))
        response.vary.add("Cookie")

    def _drop_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(self.get_cookie_name(app), domain=self.get_cookie_domain(app),
                               path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
                               partitioned=self.get_cookie_partitioned(app), samesite=self.get_cookie_samesite(app),
                               httponly=self.get_cookie_httponly(app))
        response.vary.add("Cookie")


def _now() -> datetime:
    # the sessions' own clock (bff/auth/clock.py), as bff/auth/session.py reads it
    return datetime.fromtimestamp(clock.now(), UTC)
