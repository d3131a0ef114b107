"""Automatic collection (自动扣款) of an application's rents, ``/applications/<application_id>/autopay``: the mandate
text in the customer's language (the other language one tap away), a card saved (TEST MODE: Stripe's test cards,
server-side; with a publishable key the card needs Stripe.js's setup form, not built: the bank's direct debit
stays) or the sandbox bank's 协议支付 agreement, then automatic collection on or off and the mandate revoked.

Only the customer gives, switches or revokes their mandate (their own application: bff/applications/access.py);
staff of the application who may see its lease (``leases.view``, as the lease page: a risk officer 403) see whether
automatic collection is on, read-only. Bad input is a 422 page with the field named and what was typed kept.

Each form that gives a mandate carries a token of its own (as the rent's pay page): it reserves the request once
(``idempotency_keys``) and keys the Stripe calls (their Idempotency-Key), so the form sent twice — a double tap, an
offline replay — makes one mandate; those posts reach Stripe and are limited per application
(:data:`bff.servicing.pay.STRIPE_RATE`), counted only for the application's customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import per_application
from bff.applications.access import requires_actor
from bff.auth.roles import allowed
from bff.extensions import limiter
from bff.invitations.returning_views import returning
from bff.invitations.returning_views import signed_in_hash
from bff.payments.checkout import TEST_METHODS
from bff.payments.common import utc_now
from bff.payments.declines import why_not_paid
from bff.payments.views import publishable_key
from bff.rendering import in_locale
from bff.services import services
from bff.servicing.lease_views import PERMISSION as LEASES_VIEW
from bff.servicing.mandates import BANKS
from bff.servicing.mandates import MANDATE_TEXT
from bff.servicing.mandates import MANDATE_VERSION
from bff.servicing.mandates import SANDBOX_BEHAVIOURS
from bff.servicing.mandates import DirectDebitForm
from bff.servicing.mandates import MandateRefused
from bff.servicing.mandates import MandateService
from bff.servicing.mandates import bank_name
from bff.servicing.pay import STRIPE_RATE
from bff.servicing.pay import collection
from infra.accounts import Staff
from infra.applications import Application
from infra.collections import STRIPE
from infra.collections import CollectionUnavailable
from infra.collections import StripeOffSession
from infra.payments import PaymentsError

bp = Blueprint("autopay", __name__)
#: TEST MODE's cards for a mandate: Stripe's test PaymentMethods — saved and charged; declined when saved; saved, then
#: declined on every charge (automatic collection fails: the customer pays by hand)
CARDS = {"visa": TEST_METHODS["visa"], "declined": "pm_card_visa_chargeDeclined",
         "charge_fails": TEST_METHODS["declined"]}
#: the application states in which a mandate may be given: signed, paying, delivered (the lease in force)
MANDATE_STATES = ("signed", "ready_for_delivery", "delivered")
#: the actions that give a mandate (a card saved at Stripe, a bank's agreement): one per form served (its token)
GIVING = ("card", "direct_debit")
#: counted only for the application's customer giving a mandate: a stranger's posts never use up theirs
stripe_rate = limiter.shared_limit(STRIPE_RATE, scope="mandate-stripe", key_func=per_application("mandate"),
                                   deduct_when=lambda response: g.get("mandate_giver") is not None)


def staff_holding(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Staff need ``permission`` too (403 without it); the customer passes on to the view's own guard
    (:func:`bff.applications.access.requires_actor`). A page of the customer's lease: signed out, the visitor signs in
    as a customer (我的租赁) and comes back, as on the lease's pages (bff/servicing/lease_views.py), not at the staff's
    sign-in; signed in there, their application's invitation is the one this device acts under."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user: Staff | None = g.get("user")
            if user is not None and not allowed(user, permission):
                abort(403)
            if user is None:
                mobile_hash = signed_in_hash()
                if mobile_hash is None and not session.get("customer_invitation"):
                    return redirect(url_for("invitations.returning.sign_in", next=request.path))
                application_id = str(kwargs.get("application_id", ""))
                invitation_id = returning().invitation_for(mobile_hash, application_id) if mobile_hash else None
                if invitation_id is not None and session.get("customer_invitation") != invitation_id:
                    session["customer_invitation"] = invitation_id
            return view(*args, **kwargs)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return decorate


def _service() -> MandateService:
    rents = collection()
    card = rents.collectors.get(STRIPE)
    return MandateService(rents.repo, card if isinstance(card, StripeOffSession) else None, utc_now)


def _language() -> str:
    return in_locale("zh", "en")


def _page(app: Application, status: int = 200, *, error: str | None = None, field: str | None = None) -> Any:
    language = _language()
    gateway = collection().gateway
    element = bool(publishable_key())
    return make_response(render_template(
        "servicing/autopay.html", app=app, mandate=_service().current(app.id), language=language,
        text=MANDATE_TEXT[language], other_text=MANDATE_TEXT["en" if language == "zh" else "zh"],
        version=MANDATE_VERSION, customer=actor().kind == "customer", may_give=app.status in MANDATE_STATES,
        cards=gateway.test_mode and not element, banks=BANKS, behaviours=SANDBOX_BEHAVIOURS, error=error,
        field=field, typed=request.form, token=uuid.uuid4().hex), status)


@bp.app_template_filter("bank_name")
def _bank_name(name: str | None) -> str:
    return bank_name(name or "", in_locale("zh", "en"))


@bp.get("/applications/<application_id>/autopay")
@staff_holding(LEASES_VIEW)
@requires_actor("applications.view")
def page(application_id: str) -> Any:
    return _page(application_or_404(application_id))


@bp.post("/applications/<application_id>/autopay")
@stripe_rate
@requires_actor("applications.edit")
def change(application_id: str) -> Any:
    """``action``: ``card`` (save a test card), ``direct_debit`` (the sandbox bank's agreement), ``on``, ``off``,
    ``revoke``. The customer's alone (staff: 403)."""
    app = application_or_404(application_id)
    if actor().kind != "customer":
        abort(403)
    if app.status not in MANDATE_STATES:
        return _page(app, 409, error=in_locale("合同签署后才能开通自动扣款",
                                               "Automatic collection can be set up once the contract is signed"))
    svc, action, accepted = _service(), request.form.get("action", ""), request.form.get("accept") == "yes"
    token, scope, target = request.form.get("token", ""), f"mandate:{app.id}", url_for("autopay.page",
                                                                                      application_id=app.id)
    reserved = services().applications.repo
    if action in GIVING:
        g.mandate_giver = app.id
        if not (16 <= len(token) <= 64 and token.isalnum()):
            return _page(app, 400, error=in_locale("页面已过期，请重新提交", "This page has expired: send it again"))
        if not reserved.remember(scope, token, 0):  # this form was sent before: a double tap, a replay
            seen = reserved.recall(scope, token)
            if seen is not None and seen[1]:
                return redirect(seen[1], 303)
            return _page(app, 409, error=in_locale("正在开通，请稍候刷新", "Being set up: refresh in a moment"))
    try:
        if action == "card":
            method = CARDS.get(request.form.get("method", ""))
            if method is None:
                raise MandateRefused("method", "请选择测试卡", "Choose a test card")
            svc.save_card(app.id, method, _language(), accepted=accepted, token=token)
        elif action == "direct_debit":
            svc.sign_direct_debit(app.id, DirectDebitForm(request.form.get("bank", ""),
                                                          request.form.get("account_last4", "").strip(),
                                                          request.form.get("behaviour", "")),
                                  _language(), accepted=accepted)
        elif action in ("on", "off"):
            svc.switch(app.id, action == "on")
        elif action == "revoke":
            svc.revoke(app.id)
        else:
            raise MandateRefused("action", "请选择要做的操作", "Choose what to do")
    except MandateRefused as exc:
        _release(scope, token, action)
        text = why_not_paid(exc.code) if exc.code else in_locale(exc.text_zh, exc.text_en)
        return _page(app, 422, error=text, field=exc.field)
    except (CollectionUnavailable, PaymentsError):
        _release(scope, token, action)
        return _page(app, 503, error=in_locale("支付服务暂时不可用，未开通，请稍后重试",
                                               "Payments are unavailable right now: nothing was set up; try again"))
    except Exception:
        _release(scope, token, action)
        raise
    if action in GIVING:
        reserved.settle(scope, token, 303, target)
    services().audit.append(f"servicing.mandate_{action}", "success", actor_id=actor().id, actor_label=actor().label,
                            dealer_id=app.dealer_id, target=app.id, ip=actor().ip, user_agent=actor().user_agent,
                            details={"version": MANDATE_VERSION, "language": _language()})
    return redirect(target, 303)


def _release(scope: str, token: str, action: str) -> None:
    """A form refused or failed gives no mandate: the same form may be sent again."""
    if action in GIVING:
        services().applications.repo.forget(scope, token)
