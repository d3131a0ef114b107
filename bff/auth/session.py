"""The signed-in user of a request: session rotation, idle and absolute timeouts, deactivation.

Sessions are kept on the server (:mod:`bff.auth.server_session`); this module says what a session holds, how
long the server keeps it and whose it is.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import Flask
from flask import abort
from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for

from bff.auth import clock
from bff.auth.roles import allowed
from bff.auth.server_session import ServerSessionInterface
from bff.auth.services import Client
from bff.auth.services import customer_subject
from bff.auth.services import staff_subject
from bff.services import services
from infra.accounts import ALWAYS_ON
from infra.accounts import MODULES
from infra.accounts import Staff

IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 3600
#: a staff session past its idle or absolute limit is kept this much longer, so that its next request can end it
#: with the reason (audit log, "your session has ended" on the login page) instead of finding nothing
ENDED_GRACE_SECONDS = 3600
F = TypeVar("F", bound=Callable[..., Any])


def stored_until(data: Mapping[str, Any]) -> float | None:
    """When the server may forget a signed-in staff member's session (unix time): shortly after its idle or
    absolute limit. None for any other session (the pre-sign-in steps, a customer's, a visitor's form tokens),
    which lives the sliding ``PERMANENT_SESSION_LIFETIME`` after its last use."""
    if not data.get("uid"):
        return None
    limit = min(int(data.get("login_at", 0)) + ABSOLUTE_SECONDS, int(data.get("seen", 0)) + IDLE_SECONDS)
    return float(limit + ENDED_GRACE_SECONDS)


def subject_of(data: Mapping[str, Any]) -> str | None:
    """Whose session it is: a staff member's (signed in, or between password and second factor), an invited
    customer's (or a returning customer's, by their mobile number), or nobody's (a visitor's form tokens)."""
    uid = data.get("uid") or data.get("pending_uid")
    if uid:
        return staff_subject(str(uid))
    invitation = data.get("customer_invitation")
    if invitation:
        return customer_subject(str(invitation))
    mobile_hash = data.get("customer_mobile")  # a returning customer, by mobile and code (bff/invitations/returning)
    return customer_subject(f"mobile:{str(mobile_hash)[:32]}") if mobile_hash else None


def client() -> Client:
    return Client(request.remote_addr or "", (request.user_agent.string or "")[:255])


def start_session(user: Staff) -> None:
    """A new session for ``user``: everything of the old one (e.g. a pre-login state) is dropped."""
    session.clear()  # and a new session id (bff/auth/server_session.py): the old one is forgotten
    now = int(clock.now())
    session.update(uid=user.id, login_at=now, seen=now)
    session.permanent = True
    g.user = user


def end_session() -> None:
    """Sign out this session: its server-side row is deleted, so every copy of its cookie is dead."""
    session.clear()
    g.user = None


def load_user() -> None:
    """before_request: set ``g.user`` from the session, ending it when idle, too old or deactivated."""
    g.user = None
    uid = session.get("uid")
    if not uid or request.endpoint == "static":  # static files need no user (and no database round trip)
        return
    now = int(clock.now())
    reason = None
    if now - int(session.get("login_at", 0)) > ABSOLUTE_SECONDS:
        reason = "absolute_timeout"
    elif now - int(session.get("seen", 0)) > IDLE_SECONDS:
        reason = "idle_timeout"
    user = services().accounts.get(str(uid))
    if reason is None and (user is None or not user.active):
        reason = "deactivated"
    if reason is not None:
        services().auth.session_ended(user, user.email if user else str(uid), reason, client())
        end_session()
        g.session_ended = reason
        return
    if now - int(session.get("seen", 0)) >= 60:  # refresh the idle clock at most once a minute
        session["seen"] = now
    g.user = user


def _sign_in_first() -> Any:
    """The answer for an anonymous visitor of a guarded view: 401 under /api, else the login page."""
    if request.path.startswith("/api/"):
        abort(401)
    target = request.full_path if request.query_string else request.path
    ended = {"ended": 1} if g.get("session_ended") else {}
    return redirect(url_for("auth.login", next=target, **ended))


def requires(permission: str) -> Callable[[F], F]:
    """Guard a view: sign-in first (redirect, or 401 for the API), then the role's permission (403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user: Staff | None = g.get("user")
            if user is None:
                return _sign_in_first()
            if not allowed(user, permission):
                abort(403)
            return view(*args, **kwargs)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def module_on(name: str) -> bool:
    """Whether the signed-in user may use module ``name``: their dealer has it switched on. The lessor's
    staff work across dealers, so no single dealer's switch hides a module from them; anonymous: never."""
    user: Staff | None = g.get("user")
    if user is None:
        return False
    if name in ALWAYS_ON or user.lessor_side:
        return True
    if "dealer_modules" not in g:  # one lookup per request, however many checks the page makes
        dealer = services().accounts.dealer(user.dealer_id) if user.dealer_id else None
        g.dealer_modules = dealer.modules if dealer is not None and dealer.active else ()
    return name in g.dealer_modules


def requires_module(name: str) -> Callable[[F], F]:
    """Guard a module's view: sign-in first, then 404 when the user's dealer has the module switched off.

    404 rather than 403: for that dealer the feature does not exist (it is absent from navigation too), and a
    403 would tell a probing user which modules exist and which the dealer lacks. Use it with
    :func:`requires` for the role's permission."""
    if name not in MODULES:
        raise ValueError(f"unknown module {name!r}")

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None:
                return _sign_in_first()
            if not module_on(name):
                abort(404)
            return view(*args, **kwargs)

        guarded.module = name  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def register(app: Flask) -> None:
    app.session_interface = ServerSessionInterface(app.extensions["leaseline"].sessions, stored_until, subject_of)
    app.before_request(load_user)

    @app.context_processor
    def _user() -> dict[str, object]:
        return {"current_user": g.get("user"), "module_on": module_on}
