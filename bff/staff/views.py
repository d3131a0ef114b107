"""Staff list and detail scoped by tenant, deactivation, and the audit log search."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.auth.roles import can_see
from bff.auth.roles import tenant_of
from bff.auth.session import client
from bff.auth.session import requires
from bff.services import services
from infra.accounts import ALWAYS_ON
from infra.accounts import DEALER_ROLES
from infra.accounts import MODULES
from infra.accounts import Staff

bp = Blueprint("staff", __name__)


def visible_staff(user_id: str) -> Staff:
    """The account ``user_id`` if it is in the signed-in user's tenant; 404 otherwise (ids leak nothing)."""
    found = services().accounts.get(user_id)
    if found is None or not can_see(g.user, found.dealer_id) or (found.lessor_side and not g.user.lessor_side):
        abort(404)
    return found


@bp.get("/staff")
@requires("staff.view")
def staff_list() -> Any:
    return render_template("staff/list.html", staff=services().accounts.staff_of(tenant_of(g.user)))


@bp.get("/staff/<user_id>")
@requires("staff.view")
def staff_detail(user_id: str) -> Any:
    return render_template("staff/detail.html", member=visible_staff(user_id))


@bp.post("/staff/<user_id>/deactivate")
@requires("staff.manage")
def staff_deactivate(user_id: str) -> Any:
    member = visible_staff(user_id)
    if member.id == g.user.id:
        abort(409)
    services().accounts.set_active(member.id, False)
    _audit("staff.deactivate", member.email, member.dealer_id)
    return redirect(url_for("staff.staff_detail", user_id=member.id), 303)


@bp.get("/audit")
@requires("audit.read")
def audit() -> Any:
    action = request.args.get("action", "").strip()[:64]
    actor = request.args.get("actor", "").strip()[:64]
    events = services().audit.search(action=action, actor=actor, dealer_id=tenant_of(g.user))
    return render_template("staff/audit.html", events=events, action=action, actor=actor)


def _audit(action: str, target: str, dealer_id: str | None, **details: object) -> None:
    c = client()
    services().audit.append(action, "success", actor_id=g.user.id, actor_label=g.user.email, dealer_id=dealer_id,
                            target=target, ip=c.ip, user_agent=c.user_agent, details=dict(details))


@bp.post("/staff/<user_id>/role")
@requires("staff.manage")
def staff_role(user_id: str) -> Any:
    """Switch a dealer staff member between sales and dealer admin (lessor roles are not changed here)."""
    member = visible_staff(user_id)
    role = request.form.get("role", "")
    if member.lessor_side or role not in DEALER_ROLES or member.id == g.user.id:
        abort(409)
    if role != member.role:
        services().accounts.set_role(member.id, role)
        _audit("staff.role_change", member.email, member.dealer_id, before=member.role, after=role)
    return redirect(url_for("staff.staff_detail", user_id=member.id), 303)


@bp.get("/dealers")
@requires("dealers.manage")
def dealers() -> Any:
    return render_template("staff/dealers.html", dealers=services().accounts.dealers(), modules=MODULES,
                           always_on=ALWAYS_ON)


@bp.post("/dealers/<dealer_id>/modules")
@requires("dealers.manage")
def dealer_modules(dealer_id: str) -> Any:
    dealer = services().accounts.dealer(dealer_id)
    if dealer is None:
        abort(404)
    chosen = services().accounts.set_modules(dealer.id, request.form.getlist("module"))
    _audit("dealer.modules", dealer.name, dealer.id, before=list(dealer.modules), after=list(chosen))
    return redirect(url_for("staff.dealers"), 303)
