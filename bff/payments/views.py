"""The payment step on the phone, the lessor's refunds and hold captures, and Stripe's webhook endpoint."""

from __future__ import annotations

import logging
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import may
from bff.applications.access import may_edit
from bff.applications.access import requires_actor
from bff.applications.services import NotAllowed
from bff.extensions import limiter
from bff.payments.machine import PAYABLE
from bff.payments.service import PAYING
from bff.payments.service import TEST_METHODS
from bff.rendering import in_locale as _msg
from bff.services import services
from infra.applications import Application
from infra.payments import PaymentsUnavailable
from infra.payments import WebhookInvalid
from infra.payments import verify_webhook

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__)
MAX_WEBHOOK_BYTES = 512 * 1024


def _page(app: Application, status: int = 200, error: str | None = None, failed: str | None = None) -> Any:
    svc = services().payments
    payments = svc.payments(app)
    return render_template("applications/payment.html", app=app, payments=payments, error=error, failed=failed,
                           test_mode=svc.gateway.test_mode, methods=TEST_METHODS, may_pay=may_edit()
                           and app.status in PAYING, may_manage=may("payments.manage"), payable=PAYABLE,
                           polling=any(p.status in ("processing", "requires_action") for p in payments)), status


@bp.get("/applications/<application_id>/payment")
@requires_actor("applications.view")
def payment(application_id: str) -> Any:
    return _page(application_or_404(application_id))


@bp.post("/applications/<application_id>/payments/<payment_id>/pay")
@requires_actor("applications.edit")
@limiter.limit("20 per 10 minutes", key_func=lambda: f"pay:{(request.view_args or {}).get('application_id', '')}")
def pay(application_id: str, payment_id: str) -> Any:
    app = application_or_404(application_id)
    method = request.form.get("method", "")
    if method not in TEST_METHODS or not services().payments.gateway.test_mode:
        # live mode pays through Stripe's Payment Element (Stripe.js), not this form
        return _page(app, 422, _msg("请选择付款方式", "Choose a way to pay"), payment_id)
    svc = services().payments
    try:
        done = svc.pay(app, payment_id, svc.test_method(method),
                       return_url=url_for("payments.payment", application_id=app.id, _external=True))
    except NotAllowed as exc:
        return _page(app, 409, _msg(exc.text_zh, exc.text_en), payment_id)
    except PaymentsUnavailable:
        return _page(app, 503, _msg("支付服务暂时不可用：未扣款，请稍后重试", "Payments are unavailable right now: "
                                    "nothing was charged; try again in a moment"), payment_id)
    if done.status == "failed":
        return _page(app, 422, _msg(f"付款未成功（{done.last_error}），请换一张卡或稍后重试",
                                    f"The payment did not go through ({done.last_error}): try another card"),
                     payment_id)
    return redirect(url_for("payments.payment", application_id=app.id), 303)


@bp.post("/applications/<application_id>/payments/<payment_id>/refresh")
@requires_actor("applications.view")
def refresh(application_id: str, payment_id: str) -> Any:
    app = application_or_404(application_id)
    try:
        services().payments.refresh(app, payment_id)
    except NotAllowed as exc:
        return _page(app, 404, _msg(exc.text_zh, exc.text_en))
    except PaymentsUnavailable:
        return _page(app, 503, _msg("支付服务暂时不可用，请稍后再查", "Payments are unavailable: check again shortly"))
    return redirect(url_for("payments.payment", application_id=app.id), 303)


def _amount_fen(raw: str) -> int | None:
    try:
        value = Decimal(raw.replace(",", "").replace("¥", "").strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")) or value <= 0 or value > 10_000_000:
        return None
    return int(value * 100)


@bp.post("/applications/<application_id>/payments/<payment_id>/refund")
@requires_actor("payments.manage")
def refund(application_id: str, payment_id: str) -> Any:
    app = application_or_404(application_id)
    amount = _amount_fen(request.form.get("amount", ""))
    if amount is None:
        return _page(app, 422, _msg("请输入正确的退款金额（元，最多两位小数）",
                                    "Enter the refund in yuan (at most two decimals)"), payment_id)
    try:
        services().payments.refund(actor(), app, payment_id, amount, request.form.get("reason", "")[:255])
    except NotAllowed as exc:
        return _page(app, 422 if exc.code != "not_found" else 404, _msg(exc.text_zh, exc.text_en), payment_id)
    except PaymentsUnavailable:
        return _page(app, 503, _msg("支付服务暂时不可用：退款已记录，将自动重试",
                                    "Payments are unavailable: the refund is recorded and will be retried"),
                     payment_id)
    services().audit.append("payment.refund", "success", actor_id=actor().id, actor_label=actor().label,
                            dealer_id=app.dealer_id, target=payment_id, ip=request.remote_addr or "",
                            user_agent=request.user_agent.string, details={"amount_fen": amount})
    return redirect(url_for("payments.payment", application_id=app.id), 303)


@bp.post("/applications/<application_id>/payments/<payment_id>/<any(capture, release):action>")
@requires_actor("payments.manage")
def hold_action(application_id: str, payment_id: str, action: str) -> Any:
    app = application_or_404(application_id)
    svc = services().payments
    try:
        if action == "capture":
            svc.capture(actor(), app, payment_id)
        else:
            svc.release(actor(), app, payment_id)
    except NotAllowed as exc:
        return _page(app, 409, _msg(exc.text_zh, exc.text_en), payment_id)
    except PaymentsUnavailable:
        return _page(app, 503, _msg("支付服务暂时不可用，请稍后重试", "Payments are unavailable: try again shortly"),
                     payment_id)
    services().audit.append(f"payment.hold_{action}", "success", actor_id=actor().id, actor_label=actor().label,
                            dealer_id=app.dealer_id, target=payment_id, ip=request.remote_addr or "",
                            user_agent=request.user_agent.string)
    return redirect(url_for("payments.payment", application_id=app.id), 303)


@bp.post("/webhooks/stripe")
def stripe_webhook() -> Any:
    """Stripe's events: the signature checked with the endpoint secret (a stale timestamp refused), each event
    applied once; 400 for what Stripe must not retry as is, 200 otherwise (even for events we ignore)."""
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        return {"error": "too large"}, 413
    payload = request.get_data(cache=False)
    secret = current_app.config["SETTINGS"].stripe_webhook_secret
    try:
        event = verify_webhook(payload, request.headers.get("Stripe-Signature", ""), secret)
    except WebhookInvalid as exc:
        log.warning("stripe webhook refused: %s", exc.reason)
        return {"error": exc.reason}, 400
    outcome = services().payments.handle_event(event)
    return {"received": True, "outcome": outcome}, 200
