"""Staff list and detail scoped by tenant, deactivation, and the audit log search."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from itsdangerous import BadSignature
from itsdangerous import URLSafeTimedSerializer

from bff.auth.breached import is_breached
from bff.auth.oidc import valid_issuer
from bff.auth.passwords import hash_secret
from bff.auth.roles import can_see
from bff.auth.roles import tenant_of
from bff.auth.session import client
from bff.auth.session import requires
from bff.auth.views import login_rate
from bff.extensions import limiter
from bff.rendering import list_filters
from bff.services import services
from httpkit.queries import single
from infra.accounts import ALWAYS_ON
from infra.accounts import DEALER_ROLES
from infra.accounts import LESSOR_ROLES
from infra.accounts import MODULES
from infra.accounts import Staff
from kyc.uscc import is_valid as uscc_is_valid

bp = Blueprint("staff", __name__)


def visible_staff(user_id: str) -> Staff:
    """The account ``user_id`` if it is in the signed-in user's tenant; 404 otherwise (ids leak nothing)."""
    found = services().accounts.get(user_id)
    if found is None or not can_see(g.user, found.dealer_id):  # a lessor account has no dealer: dealers never see it
        abort(404)
    return found


@bp.get("/staff")
@requires("staff.view")
def staff_list() -> Any:
    return _staff_page({"email": "", "name": "", "role": "sales"}, [])


def _staff_page(form: dict[str, str], errors: list[str], status: int = 200) -> Any:
    roles = DEALER_ROLES + LESSOR_ROLES if g.user.lessor_side else DEALER_ROLES
    return render_template("staff/list.html", staff=services().accounts.staff_of(tenant_of(g.user)), errors=errors,
                           form=form, dealers=services().accounts.dealers() if g.user.lessor_side else [],
                           roles=roles), status


@bp.get("/staff/<user_id>")
@requires("staff.view")
def staff_detail(user_id: str) -> Any:
    member = visible_staff(user_id)
    return render_template("staff/detail.html", member=member, setup=setup_link(member))


@bp.post("/staff/<user_id>/deactivate")
@requires("staff.manage")
def staff_deactivate(user_id: str) -> Any:
    member = visible_staff(user_id)
    if member.id == g.user.id:
        abort(409)
    services().accounts.set_active(member.id, False)
    _audit("staff.deactivate", member.email, member.dealer_id)
    services().auth.end_sessions(member, "deactivated", client(), by=g.user)  # every device, now
    return redirect(url_for("staff.staff_detail", user_id=member.id), 303)


@bp.get("/audit")
@requires("audit.read")
def audit() -> Any:
    found = list_filters({"action": None, "actor": None})
    action = (single(found, "action") or "").strip()[:64]
    actor = (single(found, "actor") or "").strip()[:64]
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
    return _dealers_page({"group": "", "name": "", "city": ""}, None)


def _dealers_page(form: dict[str, str], error: str | None, status: int = 200,
                  issuer_error: tuple[str, str] | None = None,
                  details_error: tuple[str, str, dict[str, str]] | None = None) -> Any:
    return render_template("staff/dealers.html", dealers=services().accounts.dealers(), modules=MODULES,
                           always_on=ALWAYS_ON, error=error, form=form, groups=services().accounts.groups(),
                           issuer_error=issuer_error, details_error=details_error), status


@bp.post("/dealers")
@requires("dealers.manage")
def dealer_create() -> Any:
    """Lessor ops add a dealer (4S store) to a dealer group, creating the group when it is new."""
    group = request.form.get("group", "").strip()[:128]
    name = request.form.get("name", "").strip()[:128]
    city = request.form.get("city", "").strip()[:64]
    if not (group and name and city):
        return _dealers_page({"group": group, "name": name, "city": city},
                             _("Enter the group, the dealer's name and its city."), 422)
    accounts = services().accounts
    dealer_id = accounts.ensure_dealer(accounts.ensure_group(group), name, city, list(ALWAYS_ON))
    _audit("dealer.create", name, dealer_id, group=group, city=city)
    return redirect(url_for("staff.dealers"), 303)


@bp.post("/dealers/<dealer_id>/modules")
@requires("dealers.manage")
def dealer_modules(dealer_id: str) -> Any:
    dealer = services().accounts.dealer(dealer_id)
    if dealer is None:
        abort(404)
    chosen = services().accounts.set_modules(dealer.id, request.form.getlist("module"))
    _audit("dealer.modules", dealer.name, dealer.id, before=list(dealer.modules), after=list(chosen))
    return redirect(url_for("staff.dealers"), 303)


@bp.post("/dealers/<dealer_id>/details")
@requires("dealers.manage")
def dealer_details(dealer_id: str) -> Any:
    """Lessor ops record a dealer's unified social credit code (统一社会信用代码) and registered address: the
    dealer is the supplier party of its contracts, which are not generated without them."""
    dealer = services().accounts.dealer(dealer_id)
    if dealer is None:
        abort(404)
    code = request.form.get("credit_code", "").strip().upper()[:18]
    address = " ".join(request.form.get("address", "").split())[:255]
    account = request.form.get("stripe_account", "").strip()[:64]
    entered = {"credit_code": code, "address": address, "stripe_account": account}
    if not uscc_is_valid(code):
        return _dealers_page({"group": "", "name": "", "city": ""}, None, 422, details_error=(
            dealer.id, _("Enter the 18-character unified social credit code from the business licence "
                         "(its last character is a check character)."), entered))
    if len(address) < 6:
        return _dealers_page({"group": "", "name": "", "city": ""}, None, 422, details_error=(
            dealer.id, _("Enter the registered address from the business licence."), entered))
    if account and not STRIPE_ACCOUNT.fullmatch(account):
        return _dealers_page({"group": "", "name": "", "city": ""}, None, 422, details_error=(
            dealer.id, _("A Stripe Connect account id looks like acct_1A2b3C4d5E: copy it from Stripe."), entered))
    if (code, address, account or None) != (dealer.credit_code, dealer.address, dealer.stripe_account):
        services().accounts.set_dealer_details(dealer.id, code, address, account or None)
        _audit("dealer.details", dealer.name, dealer.id, before=[dealer.credit_code, dealer.stripe_account],
               after=[code, account or None])
    return redirect(url_for("staff.dealers"), 303)


@bp.post("/dealer-groups/<group_id>/issuer")
@requires("dealers.manage")
def group_issuer(group_id: str) -> Any:
    """Lessor ops set (or clear) the OpenID issuer a dealer group's staff sign in with."""
    group = services().accounts.group(group_id)
    if group is None:
        abort(404)
    issuer = request.form.get("issuer", "").strip().rstrip("/")[:300]
    if issuer and not valid_issuer(issuer):
        return _dealers_page({"group": "", "name": "", "city": ""}, None, 422, issuer_error=(
            group.id, _("Enter the issuer's address, starting with https://.")))
    if (issuer or None) != group.oidc_issuer:
        services().accounts.set_group_issuer(group.id, issuer or None)
        _audit("dealer_group.issuer", group.name, None, before=group.oidc_issuer, after=issuer or None)
    return redirect(url_for("staff.dealers"), 303)


SETUP_TTL = 72 * 3600
STRIPE_ACCOUNT = re.compile(r"acct_[A-Za-z0-9]{6,59}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}")


def _setup_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="leaseline.account-setup")


def setup_link(member: Staff) -> str | None:
    """A link for an invited member to set their password: valid 72 h and only while none is set (so once)."""
    secrets_ = services().accounts.secrets_of(member.id)
    if secrets_ is None or secrets_.password_hash is not None or not member.active:
        return None
    token = _setup_signer().dumps({"u": member.id})
    return url_for("staff.account_setup", token=token, _external=True)


@bp.post("/staff")
@requires("staff.manage")
def staff_invite() -> Any:
    """Invite a colleague: an account without a password, with a setup link (or company sign-in by email).
    Dealer admins invite to their dealer; lessor ops to any dealer, or to the lessor's own roles."""
    email = request.form.get("email", "").strip().lower()[:254]
    name = request.form.get("name", "").strip()[:128]
    role = request.form.get("role", "sales")
    dealer_id: str | None = g.user.dealer_id if not g.user.lessor_side else request.form.get("dealer", "")
    errors = []
    if not EMAIL.fullmatch(email):
        errors.append(_("Enter a valid email address."))
    if not name:
        errors.append(_("Enter the colleague's name."))
    if g.user.lessor_side and role in LESSOR_ROLES:
        dealer_id = None  # the lessor's own staff: they set a password, then an authenticator at first sign-in
    elif role not in DEALER_ROLES or not dealer_id or services().accounts.dealer(dealer_id) is None:
        errors.append(_("Choose a dealer role."))
    user_id = None if errors else services().accounts.create_staff(email, name, role, dealer_id)
    if user_id is None:
        if not errors:
            errors.append(_("An account with this email already exists."))
        return _staff_page({"email": email, "name": name, "role": role}, errors, 422)
    _audit("staff.invite", email, dealer_id, role=role)
    return redirect(url_for("staff.staff_detail", user_id=user_id), 303)


@bp.route("/account/setup/<token>", methods=["GET", "POST"])
@limiter.limit(login_rate, methods=["POST"])
def account_setup(token: str) -> Any:
    """The invited colleague sets their password (at least 12 characters); the link then stops working."""
    try:
        data = _setup_signer().loads(token[:512], max_age=SETUP_TTL)
    except BadSignature:
        data = None
    member = services().accounts.get(str(data.get("u"))) if isinstance(data, dict) else None
    if member is None or setup_link(member) is None:
        return render_template("staff/setup.html", invalid=True, error=None), 410
    if request.method == "GET":
        return render_template("staff/setup.html", invalid=False, member=member, error=None)
    password = request.form.get("password", "")
    if len(password) < 12 or len(password) > 1024 or password != request.form.get("confirm", ""):
        return render_template("staff/setup.html", invalid=False, member=member,
                               error=_("Use at least 12 characters, and type the same password twice.")), 422
    if is_breached(password):  # NIST SP 800-63B §5.1.1.2: not one of the passwords attackers try first
        message = _("This password appears in lists of passwords exposed in data breaches, which attackers try "
                    "first. Choose another one, e.g. a few unrelated words.")
        return render_template("staff/setup.html", invalid=False, member=member, error=message), 422
    services().accounts.set_password(member.id, hash_secret(password))
    c = client()
    services().audit.append("auth.password_set", "success", actor_id=member.id, actor_label=member.email,
                            dealer_id=member.dealer_id, ip=c.ip, user_agent=c.user_agent)
    return redirect(url_for("auth.login"), 303)
