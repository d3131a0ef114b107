"""What the lease's three payment pages share, written once: the rent's pay page (bff/servicing/pay.py), the early
settlement's quote (bff/servicing/settle.py) and the partial prepayment's offer (bff/servicing/prepay.py).

Each pays through the rent collection (bff/servicing/collect.py ``RentCollection.pay_by_hand``): without
``LEASELINE_STRIPE_PUBLISHABLE_KEY`` the page says TEST MODE and confirms server-side with one of Stripe's test cards
(:func:`test_payment_method`; 3-D Secure answered by the local test bank, :func:`authenticate`); with it, the page
mounts Stripe.js's Payment Element for the attempt's intent (:func:`checkout`, the template
pwa/templates/servicing/_stripe_payment.html) and Stripe sends the browser back to the page's return URL
(:func:`returned`), where the server asks Stripe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import abort
from flask import g
from flask import redirect
from flask import request
from flask import url_for

from bff.payments.checkout import LOCAL_3DS_CARD
from bff.payments.checkout import TEST_METHODS
from bff.payments.declines import customer_texts
from bff.payments.views import REFUSED
from bff.payments.views import UNAVAILABLE
from bff.payments.views import publishable_key
from bff.rendering import in_locale
from bff.services import services
from bff.servicing.collect import RENT_METHODS
from bff.servicing.collect import PayOutcome
from bff.servicing.collect import RentCollection
from infra.collections import FINAL
from infra.collections import Attempt
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable

log = logging.getLogger(__name__)

#: a page's error answer: ``page(status, error, attempt)``, the page as the view renders it with that error
ErrorPage = Callable[[int, str, Attempt], Any]


class NoTestCard(ValueError):
    """TEST MODE without a test card chosen (or not in TEST MODE and no Payment Element): the page asks for one."""


def checkout(outcome: PayOutcome | None, return_url: Callable[[str], str]) -> dict[str, Any] | None:
    """The Payment Element's figures for an attempt still to pay (None without a publishable key, a client secret, or
    once the attempt is final); ``return_url(attempt_id)``: the page's return URL for it. Admits Stripe.js to this
    response's CSP."""
    if (
        outcome is None
        or outcome.intent is None
        or not publishable_key()
        or not outcome.intent.client_secret
        or outcome.attempt.status in FINAL
    ):
        return None
    g.loads_stripe_js = True  # the CSP admits Stripe.js on this response only
    return {
        "attempt": outcome.attempt,
        "client_secret": outcome.intent.client_secret,
        "methods": RENT_METHODS,
        "declines": customer_texts(),
        "waits_for_bank": outcome.intent.status == "requires_action",
        "return_url": return_url(outcome.attempt.id),
    }


def checkout_context(svc: RentCollection) -> dict[str, Any]:
    """The template's figures for the payment block: TEST MODE, the Payment Element, the local test bank."""
    key = publishable_key()
    return {
        "test_mode": svc.gateway.test_mode,
        "element": bool(key),
        "publishable_key": key,
        "test_bank": services().payments.checkout.bank is not None and svc.gateway.test_mode and not key,
    }


def refreshed(svc: RentCollection, attempt: Attempt) -> PayOutcome | None:
    """With the Payment Element, an attempt still to pay as Stripe has it now (for the page showing it; None when
    there is nothing to ask or Stripe could not be asked: the page shows the attempt as recorded)."""
    if not publishable_key() or not attempt.provider_ref or attempt.status in FINAL:
        return None
    try:
        return svc.refresh(attempt)
    except PaymentsError:
        return None


def test_payment_method(svc: RentCollection, method: str) -> str | None:
    """The test card chosen (TEST MODE; a 3-D Secure card of localstripe's own), or None with the Payment Element
    (the browser confirms); :class:`NoTestCard` when none may be used."""
    if publishable_key():
        return None
    if method not in TEST_METHODS or not svc.gateway.test_mode:
        raise NoTestCard(method)
    if method == "3ds" and services().payments.checkout.local_stripe:
        return svc.gateway.card_payment_method(LOCAL_3DS_CARD)
    return TEST_METHODS[method]


def returned(svc: RentCollection, attempt: Attempt, *, page: ErrorPage, shown: str, what: str) -> Any:
    """Stripe.js's (or 3-D Secure's) return: the attempt as Stripe has it now — never what the query string says —,
    then 303 to ``shown`` (the page with the outcome, without the client secret Stripe appended); ``what``: the
    payment's name in the log."""
    try:
        svc.refresh(attempt)
    except PaymentsUnavailable:
        return page(
            503, in_locale("支付服务暂时不可用，请稍后再查", "Payments are unavailable: check again shortly"), attempt
        )
    except PaymentsError as exc:
        log.error("Stripe refused to show %s payment %s: %s", what, attempt.id, exc)
        return page(409, in_locale(*REFUSED), attempt)
    return redirect(shown, 303)


def test_bank_or_404(svc: RentCollection) -> None:
    """The local test bank answers 3-D Secure in TEST MODE on localstripe only: 404 otherwise."""
    if services().payments.checkout.bank is None or not svc.gateway.test_mode or publishable_key():
        abort(404)


def authenticate(
    svc: RentCollection, attempt: Attempt, *, page: ErrorPage, declined: Callable[[Attempt], Any], shown: str, what: str
) -> Any:
    """TEST MODE on localstripe: the customer completes (or fails, the form's ``result``) their bank's 3-D Secure check
    of the payment (the local test bank, infra/sandbox_bank.py); a failed payment: ``declined(attempt)``, otherwise
    303 to ``shown``. Call :func:`test_bank_or_404` first."""
    bank = services().payments.checkout.bank
    assert bank is not None  # test_bank_or_404
    result = request.form.get("result", "")
    if result not in ("complete", "fail"):
        return page(422, in_locale("请选择完成或不通过验证", "Choose to complete or to fail the check"), attempt)
    try:
        if attempt.status == "requires_action" and attempt.provider_ref:
            intent = svc.gateway.retrieve_intent(attempt.provider_ref)
            if intent.status == "requires_action" and intent.client_secret:
                bank.authenticate(intent.id, intent.client_secret, success=result == "complete")
            done = svc.refresh(attempt)
        else:
            done = PayOutcome(attempt, None, None)
    except PaymentsUnavailable:
        return page(503, in_locale(*UNAVAILABLE), attempt)
    except PaymentsError as exc:
        log.error("Stripe refused to show %s payment %s: %s", what, attempt.id, exc)
        return page(409, in_locale(*REFUSED), attempt)
    if done.attempt.status == "failed":
        return declined(done.attempt)
    return redirect(shown, 303)


def external_url(endpoint: str, **values: Any) -> Callable[[str], str]:
    """``return_url`` for :func:`checkout`: the endpoint's external URL with the attempt's id."""
    return lambda attempt_id: url_for(endpoint, attempt=attempt_id, _external=True, **values)
