"""Who is acting on applications, and which ones they may see — decided here, once.

* lessor roles: every dealer's applications (read; risk officers review KYC cases);
* a dealer admin: all of their dealer's; a salesperson: only the ones they own;
* an invited customer (mobile verified by a one-time code): only their own, at the inviting dealer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import abort
from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for

from bff.applications.services import Actor
from bff.auth.roles import allowed
from bff.auth.roles import tenant_of
from bff.services import services
from infra.accounts import Staff
from infra.applications import Application
from infra.applications import Scope

F = TypeVar("F", bound=Callable[..., Any])


def staff_scope(user: Staff) -> Scope:
    if user.lessor_side:
        return Scope()
    if user.role == "sales":
        return Scope(dealer_id=user.dealer_id, owner_id=user.id)
    return Scope(dealer_id=user.dealer_id)


def current_actor() -> Actor | None:
    """The acting staff member (with ``applications.view``) or invited customer, or None."""
    ip, agent = request.remote_addr or "", (request.user_agent.string or "")[:255]
    user: Staff | None = g.get("user")
    if user is not None:
        if not allowed(user, "applications.view"):
            return None
        dealer = None if user.lessor_side else user.dealer_id
        return Actor("staff", user.id, user.email, staff_scope(user), dealer_id=dealer,
                     owner_id=user.id if dealer else None, role=user.role, ip=ip, user_agent=agent)
    invitation_id = session.get("customer_invitation")
    if invitation_id:
        svc = services()
        inv = svc.invitations_repo.get(str(invitation_id))
        if inv is None or inv.opened_at is None:
            return None
        mobile_hash = svc.vault.lookup_hash(inv.mobile, "mobile")
        return Actor("customer", inv.id, f"customer:{inv.mobile[:3]}****{inv.mobile[-4:]}",
                     Scope(dealer_id=inv.dealer_id, mobile_hash=mobile_hash), dealer_id=inv.dealer_id,
                     owner_id=inv.created_by, mobile=inv.mobile, role="customer", ip=ip, user_agent=agent)
    return None


#: what an invited customer holds, on their own applications only: seeing and editing them, and their rights over
#: their personal information (bff/privacy; no staff role holds ``privacy.request``)
CUSTOMER_MAY = ("applications.view", "applications.edit", "privacy.request")


def requires_actor(permission: str) -> Callable[[F], F]:
    """Guard a view: staff holding ``permission``, or a verified customer when it is one customers hold
    (their own application: view and edit). Sign-in first otherwise; 403 for a role without it."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user: Staff | None = g.get("user")
            if user is not None and not allowed(user, permission):
                abort(403)
            found = current_actor()
            if found is None or (found.kind == "customer" and permission not in CUSTOMER_MAY):
                if user is not None or session.get("customer_invitation"):
                    abort(403)
                target = request.full_path if request.query_string else request.path
                return redirect(url_for("auth.login", next=target))
            g.actor = found
            return view(*args, **kwargs)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def actor() -> Actor:
    return g.actor  # type: ignore[no-any-return]


def application_or_404(application_id: str) -> Application:
    found = services().applications.get(actor(), application_id)
    if found is None:
        abort(404)
    return found


def may(permission: str) -> bool:
    """Whether the acting person holds ``permission`` (customers hold none of the staff permissions)."""
    user: Staff | None = g.get("user")
    return user is not None and allowed(user, permission)


def may_edit() -> bool:
    """Customers edit their own application; staff need ``applications.edit`` (lessor roles only read)."""
    return actor().kind == "customer" or may("applications.edit")


def staff_actor() -> Actor:
    """The signed-in staff member as an actor of their own tenant (the ops pages' actions)."""
    user: Staff = g.user
    return Actor("staff", user.id, user.email, Scope(dealer_id=tenant_of(user)), dealer_id=tenant_of(user),
                 role=user.role, ip=request.remote_addr or "", user_agent=(request.user_agent.string or "")[:255])


def staff_label(dealer_id: str | None) -> str:
    """How a signed record names the signed-in staff member: their name and the dealer (``张伟（浦东店）``), never
    their e-mail address."""
    user: Staff = g.user
    dealer = services().accounts.dealer(dealer_id) if dealer_id else None
    return f"{user.name}（{dealer.name}）" if dealer else user.name


def log_document_view(app: Application, kind: str) -> None:
    """A staff member opened a document that shows the customer's full ID number (a signed PDF): audit-logged as
    the privacy notice promises ("每次查看完整号码都会被记录"); a customer's own view is not."""
    a = actor()
    if a.kind == "staff":
        services().audit.append("pii.document_viewed", "success", actor_id=a.id, actor_label=a.label,
                                dealer_id=app.dealer_id, target=app.id, ip=a.ip, user_agent=a.user_agent,
                                details={"kind": kind})


def per_application(prefix: str) -> Callable[[], str]:
    """A rate limit's key: ``prefix`` and the application in the URL, so that one application's codes, uploads or
    payments are limited on their own (flask-limiter ``key_func``)."""
    def key() -> str:
        return f"{prefix}:{(request.view_args or {}).get('application_id', '')}"

    return key
