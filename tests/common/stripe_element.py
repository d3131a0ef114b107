"""Stripe's Payment Element flow for the tests, around localstripe (tests/common/stripe.py):

- :func:`confirm_as_customer`: what the customer's browser does through Stripe.js — confirm a PaymentIntent with
  one of Stripe's test PaymentMethods — done with the secret key on localstripe (which confirms only an intent
  that already has its payment method, and only with the secret key);
- :class:`RecordingProxy`: a pass-through in front of localstripe that records each request, because localstripe
  keeps no payment method types: it accepts ``payment_method_options`` without keeping or echoing them, and it
  predates ``allowed_payment_method_types`` (Stripe API 2026-07-29), which it would refuse as "Unexpected", so the
  proxy records that parameter and leaves it out of what it forwards (localstripe then offers its only method,
  card);
- :class:`StripeApiEdge` and :data:`SANDBOX_JS`: for browser tests, https://js.stripe.com/v3/ served from
  tests/peers/stripe_js_sandbox.js (a test double of Stripe.js) and https://api.stripe.com's publishable-key
  confirm endpoint answered from localstripe, both with Playwright's ``page.route``.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlencode

import requests
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from tests.common.stripe import StripeServer

SANDBOX_JS = Path(__file__).resolve().parent.parent / "peers" / "stripe_js_sandbox.js"
STRIPE_JS = "https://js.stripe.com/v3/**"
STRIPE_API = "https://api.stripe.com/**"
#: Stripe's test PaymentMethod that is declined (https://docs.stripe.com/testing#declined-payments)
DECLINED = "pm_card_chargeCustomerFail"
#: Stripe's test PaymentMethod that always asks for 3-D Secure (https://docs.stripe.com/testing#regulatory-cards);
#: localstripe knows it by the card's number only, which the edge uses in its place
THREE_D_SECURE = "pm_card_threeDSecure2Required"
THREE_D_SECURE_CARD = "4000002500003155"


def publishable_key() -> str:
    """A fresh test-mode publishable key (localstripe does not check it; the sandbox and the edge do)."""
    return f"pk_test_{secrets.token_hex(12)}"


def _client(server: StripeServer) -> stripe.StripeClient:
    return stripe.StripeClient(server.secret_key, base_addresses={"api": server.api_base}, max_network_retries=0)


def confirm_as_customer(server: StripeServer, intent_id: str, payment_method: str = "pm_card_visa") -> dict[str, Any]:
    """The PaymentIntent after the customer confirmed it with ``payment_method`` (a card error propagates as
    ``stripe.CardError``). localstripe answers 500 to a confirm that names a new payment method, so the method is
    set first, then the intent confirmed."""
    client = _client(server)
    client.v1.payment_intents.update(intent_id, {"payment_method": payment_method})
    return client.v1.payment_intents.confirm(intent_id).to_dict()


# -- what the server sends: a recording pass-through ----------------------------------------------------------
@dataclass
class Sent:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    status: int  # upstream's answer


@dataclass
class RecordingProxy:
    """A WSGI pass-through to ``upstream`` (localstripe) recording every request as sent, and forwarding it without
    ``allowed_payment_method_types`` (which localstripe does not know); see :func:`recording_proxy`."""

    upstream: str
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        headers = {k: v for k, v in request.headers.items() if k.lower() in (
            "authorization", "content-type", "idempotency-key", "stripe-version")}
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
        forwarded = urlencode([(k, v) for k, v in pairs if not k.startswith("allowed_payment_method_types[")])
        answer = requests.request(request.method, f"{self.upstream}{request.full_path.rstrip('?')}",
                                  data=forwarded if pairs else body, headers=headers, timeout=10)
        with self.lock:
            self.sent.append(Sent(request.method, request.path, dict(request.headers), dict(pairs),
                                  answer.status_code))
        return Response(answer.content, status=answer.status_code,
                        content_type=answer.headers.get("Content-Type", "application/json"))(environ, start_response)

    def creates(self, payment_id: str) -> list[dict[str, str]]:
        """The form of each PaymentIntent created for our payment ``payment_id``, with its Idempotency-Key (a
        request localstripe refused for a parameter it does not know, and the gateway sent again without it, is
        left out)."""
        with self.lock:
            return [{**s.form, "Idempotency-Key": s.headers.get("Idempotency-Key", "")} for s in self.sent
                    if s.method == "POST" and s.path == "/v1/payment_intents" and s.status == 200
                    and s.form.get("metadata[payment_id]") == payment_id]


def recording_proxy(server: StripeServer) -> Iterator[tuple[RecordingProxy, str]]:
    """A started :class:`RecordingProxy` in front of ``server`` and its base URL: ``yield from`` it in a fixture."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    proxy = RecordingProxy(server.api_base)
    http = make_server("127.0.0.1", 0, proxy, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield proxy, f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(5)
    http.server_close()


# -- the browser's side: Stripe.js and api.stripe.com at the boundary -------------------------------------------
class StripeApiEdge:
    """Answers what the Stripe.js sandbox asks of https://api.stripe.com, from localstripe, as Playwright route
    handlers: ``POST /v1/payment_intents/<id>/confirm`` with the publishable key and the intent's client secret
    (checked, as Stripe does), which confirms the intent on localstripe with the chosen test PaymentMethod
    (:data:`THREE_D_SECURE` as a card of :data:`THREE_D_SECURE_CARD`); and the bank's 3-D Secure answer, ``POST
    /v1/payment_intents/<id>/_authenticate?success=…``, forwarded to localstripe's endpoint of that name.

    A decline (:data:`DECLINED`) is answered here with Stripe's card error and the intent left untouched: localstripe
    cannot confirm an intent again after a failed charge (Stripe can, and the customer retries on the same intent),
    so a real failed charge there would end the test's intent. Every request is recorded in :attr:`calls`.
    """

    def __init__(self, server: StripeServer, publishable_key: str) -> None:
        self.server, self.publishable_key = server, publishable_key
        self.calls: list[tuple[str, dict[str, str]]] = []

    def install(self, page: Any) -> None:
        """Serve the sandbox as https://js.stripe.com/v3/ and answer https://api.stripe.com on ``page``."""
        page.route(STRIPE_JS, lambda route: route.fulfill(path=SANDBOX_JS, content_type="application/javascript"))
        page.route(STRIPE_API, self._handle)

    def confirms(self) -> list[dict[str, str]]:
        return [form for path, form in self.calls if path.endswith("/confirm")]

    def _answer(self, route: Any, status: int, body: dict[str, Any]) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body),
                      headers={"Access-Control-Allow-Origin": "*"})

    def _handle(self, route: Any) -> None:
        request = route.request
        path = request.url.split("api.stripe.com", 1)[1].split("?", 1)[0]
        form = dict(parse_qsl(request.post_data or "", keep_blank_values=True))
        self.calls.append((path, form))
        parts = path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[:2] != ["v1", "payment_intents"] \
                or parts[3] not in ("confirm", "_authenticate"):
            return self._answer(route, 404, {"error": {"type": "invalid_request_error",
                                                       "message": f"Unrecognized request URL ({path})"}})
        if form.get("key") != self.publishable_key:
            return self._answer(route, 401, {"error": {"type": "invalid_request_error",
                                                       "message": "Invalid API Key provided"}})
        client = _client(self.server)
        intent = client.v1.payment_intents.retrieve(parts[2]).to_dict()
        if form.get("client_secret") != intent.get("client_secret"):
            return self._answer(route, 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                                       "message": "No such payment_intent"}})
        if parts[3] == "_authenticate":  # localstripe checks the client secret itself
            answer = requests.post(f"{self.server.api_base}{path}?{request.url.split('?', 1)[1]}",
                                   data={"key": self.publishable_key, "client_secret": form["client_secret"]},
                                   timeout=10)
            return self._answer(route, answer.status_code, answer.json())
        if form.get("payment_method") == DECLINED:
            return self._answer(route, 402, {"error": {
                "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "payment_intent": {**intent, "status": "requires_payment_method"}}})
        method = form.get("payment_method") or "pm_card_visa"
        if method == THREE_D_SECURE:
            method = self.server.gateway().card_payment_method(THREE_D_SECURE_CARD)
        try:
            confirmed = confirm_as_customer(self.server, parts[2], method)
        except stripe.StripeError as exc:
            body = exc.json_body if isinstance(exc.json_body, dict) else {"error": {"message": str(exc)}}
            return self._answer(route, exc.http_status or 500, body)
        return self._answer(route, 200, confirmed)
