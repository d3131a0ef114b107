"""Invitation pages: the salesperson's (create, QR, live status) and the customer's (code, then the builder)."""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from bff.auth.roles import can_see
from bff.auth.roles import tenant_of
from bff.auth.session import client
from bff.auth.session import requires
from bff.extensions import limiter
from bff.invitations.returning_views import SIGNED_IN
from bff.invitations.returning_views import bp as returning_bp
from bff.invitations.services import InvitationInvalid
from bff.invitations.services import mask_mobile
from bff.plans.forms import BuilderForm
from bff.plans.forms import decode
from bff.rendering import page_or_block
from bff.services import services
from infra.applications import Application
from infra.applications import Scope
from infra.invitations import Invitation
from infra.sms import SmsRefused
from infra.sms import SmsUnavailable
from plans.errors import PlanInputError

log = logging.getLogger(__name__)
bp = Blueprint("invitations", __name__)
#: development-only pages: registered by the app factory outside production only (never mounted there)
dev_bp = Blueprint("dev", __name__)
bp.register_blueprint(returning_bp)  # 我的租赁: a returning customer's way back without their link
LINKS = "invitation_links"  # the salesperson's session keeps its links (invitations: hashes; the session row: sealed)
CODE_REFUSED = "invitation_code_refused"  # the customer's session: the invitation whose code was just refused


def own_only() -> str | None:
    """A salesperson sees only the invitations they made (None: the whole tenant's)."""
    return str(g.user.id) if g.user.role == "sales" else None


def visible(invitation_id: str) -> Invitation:
    """The invitation if the signed-in user may see it (sales: their own; admins: their dealer's), else 404."""
    inv = services().invitations_repo.get(invitation_id)
    if inv is None or not can_see(g.user, inv.dealer_id) or own_only() not in (None, inv.created_by):
        abort(404)
    return inv


def _index(form: dict[str, str], errors: list[Any], status: int = 200) -> Any:
    found = services().invitations_repo.of_dealer(tenant_of(g.user), created_by=own_only())
    return render_template("invitations/index.html", invitations=found, vehicles=services().plans.vehicles(),
                           form=form, errors=errors, mask=mask_mobile), status


def customer_url(inv: Invitation) -> str | None:
    """The customer's link as the device that created it knows it: the short form when there is one (a link of
    ~170 characters breaks in chat apps), else the signed long one of an older invitation."""
    token = session.get(LINKS, {}).get(inv.id)
    if not token:
        return None
    short = services().invitations.short_token(token)
    return url_for("invitations.customer", token=short or token, _external=True)


def produced(inv: Invitation) -> list[Application]:
    """The applications the customer started through ``inv``, newest first (read at the invitation's dealer, by
    the invited mobile: the invitation's own customer only)."""
    svc = services()
    scope = Scope(dealer_id=inv.dealer_id, mobile_hash=svc.vault.lookup_hash(inv.mobile, "mobile"))
    return [a for a in svc.applications.repo.search(scope, limit=20) if a.invitation_id == inv.id]


@bp.get("/invitations")
@requires("invitations.manage")
def index() -> Any:
    return _index({"mobile": "", "vehicle": request.args.get("vehicle", ""), "plan": request.args.get("plan", "")},
                  [])


@bp.post("/invitations")
@requires("invitations.manage")
@limiter.limit("30 per hour", key_func=lambda: str(g.user.id))
def create() -> Any:
    vehicle_id = request.form.get("vehicle") or None
    if vehicle_id is not None and services().plans.catalogue.get(vehicle_id) is None:
        vehicle_id = None
    plan = request.form.get("plan") or None
    plan = plan if plan and decode(plan) is not None else None
    try:
        created = services().invitations.create(g.user, request.form.get("mobile", "")[:20], vehicle_id, plan,
                                                client())
    except PlanInputError as exc:
        form = {"mobile": request.form.get("mobile", "")[:20], "vehicle": vehicle_id or "", "plan": plan or ""}
        return _index(form, exc.errors, 422)
    links = dict(session.get(LINKS, {}))
    links[created.invitation.id] = created.token
    session[LINKS] = dict(list(links.items())[-10:])
    return redirect(url_for("invitations.detail", invitation_id=created.invitation.id), 303)


def _status(inv: Invitation) -> dict[str, Any]:
    plan = None
    if inv.customer_plan and ":" in inv.customer_plan:
        vehicle_id, code = inv.customer_plan.split(":", 1)
        vehicle, choice = services().plans.catalogue.get(vehicle_id), decode(code)
        if vehicle is not None and choice is not None:
            try:
                plan = services().plans.evaluate(vehicle, choice)
            except PlanInputError:
                plan = None
    applications = produced(inv) if inv.opened_at else []
    # the customer applied (past the draft): the application has the plan now; what the phone shows later (another
    # plan browsed after signing, say) is no longer the salesperson's customer screen
    applied = next((a for a in applications if a.status != "draft"), None)
    return {"inv": inv, "plan": None if applied else plan, "applied": applied, "mask": mask_mobile,
            "applications": applications}


@bp.get("/invitations/<invitation_id>")
@requires("invitations.manage")
def detail(invitation_id: str) -> Response:
    inv = visible(invitation_id)
    return page_or_block("invitations/detail.html", "status", link=customer_url(inv), **_status(inv))


@bp.get("/invitations/<invitation_id>/qr.svg")
@requires("invitations.manage")
def qr(invitation_id: str) -> Response:
    link = customer_url(visible(invitation_id))
    if link is None:
        abort(404)
    image = qrcode.make(link, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    response = make_response(image.to_string(encoding="unicode"))
    response.mimetype = "image/svg+xml"
    return response


# --- the customer's side -------------------------------------------------------------------------------


def _invalid() -> tuple[str, int]:
    """One answer for every unusable link (forged, tampered, expired, used, locked): it leaks nothing."""
    return render_template("invitations/invalid.html"), 410


def _usable(token: str) -> Invitation | None:
    try:
        return services().invitations.resolve(token)
    except InvitationInvalid:
        return None


def _returning(token: str) -> Any:
    """The invited customer's own phone opening their link again (from the chat's history, say): to their
    application, or to the plan they were choosing. None for anybody else, who sees the same invalid page as for any
    unusable link."""
    inv = services().invitations.identify(token)
    if inv is None or inv.opened_at is None or not _own_phone(inv):
        return None
    session["customer_invitation"] = inv.id  # a customer signed in by 我的租赁 now acts for this invitation too
    started = produced(inv)
    if started:
        return redirect(url_for("applications.detail", application_id=started[0].id), 303)
    return redirect(_plan_url(inv), 303)


def _own_phone(inv: Invitation) -> bool:
    """Whether this device is the invited customer's: it confirmed the invitation's code, or signed in to 我的租赁
    (bff/invitations/returning_views.py) with the invited number."""
    if session.get("customer_invitation") == inv.id:
        return True
    signed_in = session.get(SIGNED_IN)
    mobile_hash = services().vault.lookup_hash(inv.mobile, "mobile")
    return isinstance(signed_in, str) and hmac.compare_digest(signed_in, mobile_hash)


def _plan_url(inv: Invitation) -> str:
    """Where a customer who just confirmed their mobile starts: the salesperson's proposal, else the catalogue."""
    if inv.vehicle_id is None:
        return url_for("plans.vehicles")
    choice = decode(inv.plan_code) if inv.plan_code else None
    query = "?" + urlencode(BuilderForm.from_choice(choice, services().plans.product).query_pairs()) if choice else ""
    return url_for("plans.builder", vehicle_id=inv.vehicle_id) + query


# A refresh or a restored tab after a failed text (or, from before, a wrong code) asks for the form's own URL: the
# same page. A wrong code's error is said once, by the page the refused post redirects to (see verify).
@bp.get("/i/<token>")
@bp.get("/i/<token>/code", endpoint="customer_code")
@bp.get("/i/<token>/verify", endpoint="customer_verify")
def customer(token: str) -> Any:
    inv = _usable(token)
    if inv is None:
        return _returning(token) or _invalid()
    refused = session.pop(CODE_REFUSED, None) == inv.id
    return render_template("invitations/customer.html", token=token, mobile=mask_mobile(inv.mobile),
                           sent=inv.code_sent_at is not None, error=refused or None)


def _per_link() -> str:
    return "link:" + str((request.view_args or {}).get("token", ""))[:128]


# Per link (a showroom's customers share one address behind its Wi-Fi), plus a looser cap per address.
@bp.post("/i/<token>/code")
@limiter.limit("5 per minute", key_func=_per_link)
@limiter.limit("60 per minute")
def send_code(token: str) -> Any:
    inv = _usable(token)
    if inv is None:
        return _invalid()
    try:
        services().invitations.send_code(inv, client())
    except (SmsUnavailable, SmsRefused) as exc:
        log.warning("invitation %s: the code could not be texted (%s)", inv.id, exc)
        return render_template("invitations/customer.html", token=token, mobile=mask_mobile(inv.mobile),
                               sent=inv.code_sent_at is not None, error=None, sms_failed=True), 503
    return redirect(url_for("invitations.customer", token=token), 303)


@bp.post("/i/<token>/verify")
@limiter.limit("10 per minute", key_func=_per_link)
@limiter.limit("60 per minute")
def verify(token: str) -> Any:
    inv = _usable(token)
    if inv is None:
        return _invalid()
    if not services().invitations.verify_code(inv, request.form.get("code", "")[:12], client()):
        if _usable(token) is None:  # that was the fifth wrong code
            return _invalid()
        # Post/Redirect/Get: the form again by GET, its error carried once by the session (never in the URL), so
        # that a refresh asks for the page instead of posting the same code again: only a code typed anew counts
        session[CODE_REFUSED] = inv.id
        return redirect(url_for("invitations.customer", token=token), 303)
    session.clear()  # a fresh session for the customer: nothing of a staff session survives on this device
    session["customer_invitation"] = inv.id
    session.permanent = True
    return redirect(_plan_url(inv), 303)


@dev_bp.get("/dev/outbox")
@requires("account.view")
def outbox() -> Any:
    """The SMS sandbox's messages, for staff trying the product out: a dealer's staff see their own dealer's
    customers' messages (sign-in and contract-signing codes), the lessor's staff every dealer's."""
    if current_app.config["SETTINGS"].env == "production":  # never mounted there; a second lock on the door
        abort(404)
    outbox = services().outbox  # None when a real SMS platform sends the texts: there is nothing to show
    return render_template("invitations/outbox.html",
                           messages=outbox.latest(dealer_id=tenant_of(g.user)) if outbox is not None else [])
