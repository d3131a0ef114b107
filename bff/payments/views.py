"""The payment step on the phone, the lessor's refunds and hold captures, and Stripe's webhook endpoint.

Two ways to pay, chosen by one setting: with ``LEASELINE_STRIPE_PUBLISHABLE_KEY`` set (required in production) the
customer taps "Pay" on a line and the page mounts Stripe.js's Payment Element for that line's PaymentIntent (its
client secret only for someone who may pay on this application, never cached); Stripe.js confirms it and sends the
browser to :func:`returned`, which asks Stripe how it went and sends the browser on to the payment page (so the
client secret Stripe appends to the return URL stays in no address bar, history or form). Without the key (the
embedded default, with localstripe) the page says TEST MODE and :func:`pay` confirms server-side with Stripe's test
PaymentMethods.

Every request that may call Stripe (paying, opening a line's Payment Element, coming back from it) counts against
one budget per application (:data:`STRIPE_RATE`); Stripe refusing a request is a page that says so (409), never a
500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import may
from bff.applications.access import may_edit
from bff.applications.access import per_application
from bff.applications.access import requires_actor
from bff.applications.services import NotAllowed
from bff.applications.views import keep_refused
from bff.applications.views import refused_input
from bff.extensions import limiter
from bff.payments.checkout import ELEMENT_METHODS
from bff.payments.checkout import ELEMENT_PAYABLE
from bff.payments.checkout import TEST_METHODS
from bff.payments.common import PAYING
from bff.payments.declines import customer_texts
from bff.payments.declines import why_not_paid
from bff.payments.forms import yuan_to_fen
from bff.payments.machine import PAYABLE
from bff.rendering import in_locale as _msg
from bff.services import services
from infra.applications import Application
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable
from infra.payments import WebhookInvalid
from infra.payments import verify_webhook
from plans.product import CARD_HOLD_DAYS

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__)
MAX_WEBHOOK_BYTES = 512 * 1024
#: the requests that may call Stripe, per application: paying (TEST MODE), opening a line's Payment Element, the
#: return from it — one budget shared by all of them (a reload loop or a script cannot hammer Stripe through us)
STRIPE_RATE = "20 per 10 minutes"


_per_application = per_application("pay")


def _no_stripe_call() -> bool:
    """The payment page without a line to open calls no Stripe (its htmx polling every few seconds included)."""
    return not (request.args.get("pay") or request.args.get("returned"))


stripe_rate = limiter.shared_limit(STRIPE_RATE, scope="stripe", key_func=_per_application)
page_stripe_rate = limiter.shared_limit(STRIPE_RATE, scope="stripe", key_func=_per_application,
                                        exempt_when=_no_stripe_call)
UNAVAILABLE = ("支付服务暂时不可用：未扣款，请稍后重试",
               "Payments are unavailable right now: nothing was charged; try again in a moment")
REFUSED = ("支付机构拒绝了这次请求：未扣款。请稍后重试，或联系经销商",
           "The payment provider refused this request: nothing was charged. Try again later, or ask the dealer")


def publishable_key() -> str:
    """Stripe's publishable key when the page pays through the Payment Element, else "" (TEST MODE)."""
    return str(current_app.config["SETTINGS"].stripe_publishable_key)


def has_test_bank() -> bool:
    """Whether the page offers TEST MODE's simulated 3-D Secure check: a test key on localstripe (the bank is wired
    only there, outside production) and no Payment Element; else its route is not there."""
    svc = services().payments.checkout
    return svc.bank is not None and svc.gateway.test_mode and not publishable_key()


def _page(app: Application, status: int = 200, error: str | None = None, failed: str | None = None,
          pay: str | None = None, returned: str | None = None, method: str | None = None) -> Any:
    """The payment page; with the Payment Element and ``pay`` naming a line still to pay, that line's checkout;
    ``returned`` names the line whose outcome to show (as our records have it: the return route asked Stripe)."""
    svc = services().payments.checkout
    payments = svc.payments(app)
    may_pay = may_edit() and app.status in PAYING
    checkout: dict[str, Any] | None = None
    line = next((p for p in payments if p.id == pay), None)  # the service decides whether it is still to pay
    if publishable_key() and may_pay and line is not None:
        try:
            intent = svc.checkout(app, line.id)
        except NotAllowed as exc:
            error, status = _msg(exc.text_zh, exc.text_en), 409
        except PaymentsUnavailable:
            error, status = _msg(*UNAVAILABLE), 503
        except PaymentsError as exc:  # Stripe refused (a 4xx): say so, never a 500
            log.error("Stripe refused the checkout of %s: %s", line.id, exc)
            error, status = _msg(*REFUSED), 409
        else:
            if intent is not None and intent.client_secret:
                checkout = {"payment": line, "client_secret": intent.client_secret, "methods": ELEMENT_METHODS.get(
                    line.kind, ("card",)), "return_url": url_for("payments.returned", application_id=app.id,
                                                                payment_id=line.id, _external=True),
                            "waits_for_bank": intent.status == "requires_action", "declines": customer_texts()}
        payments = svc.payments(app)  # the checkout may have moved one (paid meanwhile, or a new attempt)
        g.loads_stripe_js = checkout is not None  # the CSP admits Stripe.js on this response only
    response = make_response(render_template(
        "applications/payment.html", app=app, payments=payments, error=error, failed=failed,
        test_mode=svc.gateway.test_mode, methods=TEST_METHODS, chosen_method=method, may_pay=may_pay,
        may_manage=may("payments.manage"),
        paying=app.status in PAYING, hold_days=CARD_HOLD_DAYS,
        payable=PAYABLE, element=bool(publishable_key()), element_payable=ELEMENT_PAYABLE, checkout=checkout,
        test_bank=has_test_bank(), why_not_paid=why_not_paid,
        staff=actor().kind != "customer",
        publishable_key=publishable_key(), returned=next((p for p in payments if p.id == returned), None),
        polling=any(p.status in ("processing", "requires_action") for p in payments)), status)
    return response


@bp.get("/applications/<application_id>/payment")
@requires_actor("applications.view")
@page_stripe_rate
def payment(application_id: str) -> Any:
    """The payment page; ``?pay=<payment>`` opens that line's Payment Element (when configured); ``?returned=
    <payment>`` (where the return route sends the browser) shows that line's outcome and, while it is still to pay,
    opens its Payment Element again, so the customer can try once more."""
    back = request.args.get("returned")
    app = application_or_404(application_id)
    declined = None if back or request.args.get("pay") else refused_input(app, "payment")  # said once (_declined)
    if declined is not None:
        return _page(app, error=why_not_paid(str(declined.get("decline") or "") or None), failed=declined["held"],
                     method=str(declined.get("method") or "") or None)
    return _page(app, pay=request.args.get("pay") or back, returned=back)


def _declined(app: Application, payment_id: str, decline: str | None, method: str = "") -> Any:
    """A declined or failed payment, answered by Post/Redirect/Get: the payment page by GET, the decline and the card
    chosen carried once by the server-side session (never in the URL), so that the browser's refresh of the answer
    asks for the page instead of posting the payment again, which sent Stripe another charge attempt."""
    keep_refused(app, "payment", payment_id, decline=decline or "", method=method if method in TEST_METHODS else "")
    return redirect(url_for("payments.payment", application_id=app.id, _anchor="payments"), 303)


@bp.get("/applications/<application_id>/payments/<payment_id>/return")
@requires_actor("applications.view")
@stripe_rate
def returned(application_id: str, payment_id: str) -> Any:
    """Stripe.js's ``return_url``: the payment as Stripe has it now, asked from Stripe (the query string's
    ``payment_intent`` and ``redirect_status`` are only a hint, never trusted), then 303 to the payment page showing
    the outcome — an address without the ``payment_intent_client_secret`` Stripe appended, so that it does not
    linger in the history, the language switch's or the sign-in's ``next``."""
    app = application_or_404(application_id)
    payment, failed = _refreshed(app, payment_id)
    if payment is None:
        return failed
    return redirect(url_for("payments.payment", application_id=app.id, returned=payment.id,
                            _anchor="checkout" if payment.status in ELEMENT_PAYABLE else None), 303)


def _refreshed(app: Application, payment_id: str) -> tuple[Any, Any]:
    """(the payment as Stripe has it now, None), or (None, the page saying why it could not be asked)."""
    try:
        return services().payments.checkout.refresh(app, payment_id), None
    except NotAllowed as exc:
        return None, _page(app, 404, _msg(exc.text_zh, exc.text_en))
    except PaymentsUnavailable:
        return None, _page(app, 503, _msg("支付服务暂时不可用，请稍后再查",
                                          "Payments are unavailable: check again shortly"))
    except PaymentsError as exc:
        log.error("Stripe refused to show payment %s: %s", payment_id, exc)
        return None, _page(app, 409, _msg(*REFUSED))


@bp.post("/applications/<application_id>/payments/<payment_id>/pay")
@requires_actor("applications.edit")
@stripe_rate
def pay(application_id: str, payment_id: str) -> Any:
    app = application_or_404(application_id)
    method = request.form.get("method", "")
    svc = services().payments.checkout
    if method not in TEST_METHODS or not svc.gateway.test_mode or publishable_key():
        # live mode pays through Stripe's Payment Element (Stripe.js), not this form
        return _page(app, 422, _msg("请选择付款方式", "Choose a way to pay"), payment_id)
    try:  # Stripe's 3-D Secure page (TEST MODE on Stripe) comes back to the route that asks Stripe how it went
        done = svc.pay(app, payment_id, svc.test_method(method),
                       return_url=url_for("payments.returned", application_id=app.id, payment_id=payment_id,
                                          _external=True), replace=request.form.get("replace") == "1")
    except NotAllowed as exc:
        return _page(app, 409, _msg(exc.text_zh, exc.text_en), payment_id)
    except PaymentsUnavailable:
        return _page(app, 503, _msg(*UNAVAILABLE), payment_id)
    except PaymentsError as exc:  # Stripe refused to cancel or show the intent waiting for the bank
        log.error("Stripe refused paying %s with another card: %s", payment_id, exc)
        return _page(app, 409, _msg(*REFUSED), payment_id)
    if done.status == "failed":
        return _declined(app, payment_id, done.last_error, method)
    return redirect(url_for("payments.payment", application_id=app.id), 303)


@bp.post("/applications/<application_id>/payments/<payment_id>/authenticate")
@requires_actor("applications.edit")
@stripe_rate
def authenticate(application_id: str, payment_id: str) -> Any:
    """TEST MODE on localstripe: the customer completes (or fails) their bank's 3-D Secure check of a payment waiting
    for it (CheckoutService.authenticate); then the page shows the payment as Stripe has it — paid, or the reason it
    failed with another card to try."""
    app = application_or_404(application_id)
    if not has_test_bank():  # TEST MODE on localstripe only, as the pay form is: no simulated bank for a live key
        abort(404)
    result = request.form.get("result", "")
    if result not in ("complete", "fail"):
        return _page(app, 422, _msg("请选择完成或不通过验证", "Choose to complete or to fail the check"), payment_id)
    try:
        done = services().payments.checkout.authenticate(app, payment_id, success=result == "complete")
    except NotAllowed as exc:
        return _page(app, 404 if exc.code == "not_found" else 409, _msg(exc.text_zh, exc.text_en), payment_id)
    except PaymentsUnavailable:
        return _page(app, 503, _msg(*UNAVAILABLE), payment_id)
    except PaymentsError as exc:
        log.error("Stripe refused to show payment %s: %s", payment_id, exc)
        return _page(app, 409, _msg(*REFUSED), payment_id)
    if done.status == "failed":
        return _declined(app, payment_id, done.last_error)
    return redirect(url_for("payments.payment", application_id=app.id), 303)


@bp.post("/applications/<application_id>/payments/<payment_id>/refresh")
@requires_actor("applications.view")
def refresh(application_id: str, payment_id: str) -> Any:
    app = application_or_404(application_id)
    payment, failed = _refreshed(app, payment_id)
    if payment is None:
        return failed
    return redirect(url_for("payments.payment", application_id=app.id), 303)


@bp.post("/applications/<application_id>/payments/<payment_id>/refund")
@requires_actor("payments.manage")
def refund(application_id: str, payment_id: str) -> Any:
    app = application_or_404(application_id)
    amount = yuan_to_fen(request.form.get("amount", ""), least=1)
    if amount is None:
        return _page(app, 422, _msg("请输入正确的退款金额（元，最多两位小数）",
                                    "Enter the refund in yuan (at most two decimals)"), payment_id)
    try:
        services().payments.refunds.refund(actor(), app, payment_id, amount, request.form.get("reason", "")[:255])
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
    svc = services().payments.checkout
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
    except PaymentsError as exc:
        log.error("Stripe refused to %s hold %s: %s", action, payment_id, exc)
        return _page(app, 409, _msg(*REFUSED), payment_id)
    services().audit.append(f"payment.hold_{action}", "success", actor_id=actor().id, actor_label=actor().label,
                            dealer_id=app.dealer_id, target=payment_id, ip=request.remote_addr or "",
                            user_agent=request.user_agent.string)
    return redirect(url_for("payments.payment", application_id=app.id), 303)


@bp.post("/webhooks/stripe")
def stripe_webhook() -> Any:
    """Stripe's events: the signature checked with the endpoint secret (a stale timestamp refused), each event
    applied once; 400 for what Stripe must not retry as is, 503 when Stripe itself could not be asked about the
    event's intent (Stripe retries it: https://docs.stripe.com/webhooks#retries), 200 otherwise (even for events we
    ignore or refuse: refusals are kept for ops, and a retry would be refused again)."""
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        return {"error": "too large"}, 413
    payload = request.get_data(cache=False)
    secret = current_app.config["SETTINGS"].stripe_webhook_secret
    try:
        event = verify_webhook(payload, request.headers.get("Stripe-Signature", ""), secret)
    except WebhookInvalid as exc:
        log.warning("stripe webhook refused: %s", exc.reason)
        return {"error": exc.reason}, 400
    try:
        outcome = services().payments.webhooks.handle_event(event)
    except PaymentsUnavailable:  # its intent could not be checked with Stripe: Stripe retries a non-2xx answer
        log.warning("stripe webhook %s deferred: Stripe unreachable", str(event.get("id"))[:64])
        return {"error": "retry later"}, 503
    return {"received": True, "outcome": outcome}, 200
