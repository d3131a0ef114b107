"""Payments: the ``PaymentGateway`` port and ``StripeGateway``, its adapter for Stripe (PaymentIntents, refunds,
Connect transfers), plus Stripe webhook signatures (:func:`verify_webhook`, :func:`sign_webhook`).

Two ways to pay go through it: TEST MODE creates and confirms a PaymentIntent server-side with one of Stripe's
test PaymentMethods; the production page creates the PaymentIntent unconfirmed, with its allowed payment method
types (``methods``), and the customer confirms it in the browser with Stripe.js's Payment Element, which needs only the
intent's ``client_secret``. The secret key never leaves the server.

Money crosses this boundary as integer fen (CNY minor units); nothing here converts amounts. Every write sends
the caller's idempotency key as Stripe's ``Idempotency-Key``, so a retried step cannot charge or refund twice
on real Stripe. Failures surface as :class:`PaymentsError`: :class:`PaymentDeclined` (the card said no),
:class:`PaymentsUnavailable` (Stripe slow or down: retry the step later) or :class:`PaymentRefused` (any other
4xx: a bug or bad data, do not retry). No message ever contains the secret key.

The embedded default peer is localstripe (``infra.peers.LocalStripe``, RECIPES.md). It is not Stripe, and the
caller must guard in its own state what it lacks:

- **Idempotency**: localstripe ignores ``Idempotency-Key``; a retried create makes a second PaymentIntent and a
  retried refund refunds twice. Record each step (and its key) before calling, and do not repeat a step whose
  outcome is recorded.
- **Over-refund guard**: localstripe accepts refunds beyond the captured amount. Check ``amount_received -
  amount_refunded`` (and refunds in flight) before calling :meth:`StripeGateway.refund`.
- **State checks**: localstripe captures a released (canceled) hold, which Stripe refuses; capture only what
  the caller's own state says is held.
- **Connect**: no ``/v1/transfers`` (a 404 -> :class:`PaymentRefused`) and no ``transfer_data`` on
  PaymentIntents (a 400). Dealer payouts must be tracked by the caller and tested at the HTTP boundary.
- **Parameters it does not know** (``description`` and ``return_url`` on PaymentIntents, ``reason`` on refunds,
  ``created`` when listing PaymentIntents) it refuses with a 400 "Unexpected <names>". Only for those names,
  and only on that answer (real Stripe words unknown parameters differently), the gateway sends the request
  again without them and leaves them out from then on (:data:`LOCALSTRIPE_OPTIONAL`); anything else it refuses,
  such as ``transfer_data``, stays a :class:`PaymentRefused`. ``confirm_intent`` with a new ``payment_method``
  answers 500 "Not implemented" (:class:`PaymentsUnavailable`): create the intent with its payment method.
- **Payment method types**: it predates ``allowed_payment_method_types`` (API 2026-07-29) and refuses it as
  "Unexpected"; ``payment_method_options`` it accepts but neither keeps nor echoes; an intent whose charge failed
  cannot be confirmed again (Stripe allows it). The Payment Element's intents are therefore only ever created on
  Stripe itself (bff.config refuses a publishable key with a local API base); the tests put a pass-through in front
  of localstripe that records what was sent and leaves that one parameter out (tests/common/stripe_element.py).
- **An older object shape**: no ``amount_received``/``amount_capturable``, ``capture_method`` defaults to
  ``automatic_async``, a partial capture books the released remainder as a Refund without ``payment_intent``
  (as Stripe did before API version 2025-03-31.basil), 3-D Secure answers ``next_action.type ==
  "use_stripe_sdk"`` with an empty URL (so ``next_action_url`` is None), and a card error carries the charge
  but not the PaymentIntent. The conversions below read every field defensively and compute what is missing
  from the charge.

Stripe API reference: https://docs.stripe.com/api/payment_intents, https://docs.stripe.com/api/refunds,
https://docs.stripe.com/api/transfers, webhooks: https://docs.stripe.com/webhooks#verify-manually
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from typing import TypeVar
from typing import cast

import stripe
from stripe.params import PaymentIntentCancelParams
from stripe.params import PaymentIntentCaptureParams
from stripe.params import PaymentIntentConfirmParams
from stripe.params import PaymentIntentCreateParams
from stripe.params import PaymentIntentListParams
from stripe.params import PaymentIntentRetrieveParams
from stripe.params import PaymentMethodCreateParams
from stripe.params import RefundCreateParams
from stripe.params import RefundListParams
from stripe.params import TransferCreateParams

from infra.forksafe import PerProcess

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")

TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")  # secret and restricted test-mode keys
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
MAX_IDEMPOTENCY_KEY = 255  # Stripe's limit
#: payment method types that support ``capture_method=manual`` among those we offer (Alipay and WeChat Pay do not:
#: https://docs.stripe.com/payments/place-a-hold-on-a-payment-method)
MANUAL_CAPTURE_METHODS = frozenset({"card"})
_PAGE_SIZE = 100  # Stripe's maximum page size
_EXPAND_CHARGE = ("latest_charge",)  # amount_refunded (and, on localstripe, the captured amount) live on the charge
#: Parameters left out when the server answers localstripe's 400 "Unexpected <names>": cosmetic or, for
#: ``created``, re-applied here; never anything that moves money (amount, capture_method, transfer_data).
LOCALSTRIPE_OPTIONAL = frozenset({"description", "return_url", "reason", "created"})
_UNEXPECTED = re.compile(r"Unexpected (\w+(?:, \w+)*)")  # localstripe's wording (errors.py: UserError(400, ...))


# -- values -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    """A Stripe PaymentIntent, amounts in fen."""

    id: str
    status: str  # requires_payment_method | requires_confirmation | requires_action | processing |
    #              requires_capture | canceled | succeeded
    amount: int
    amount_capturable: int  # 0 unless requires_capture
    amount_received: int  # captured (computed from the charge when the field is absent)
    amount_refunded: int  # refunded to the customer so far (from the charge; never the released remainder)
    currency: str
    capture_method: str  # automatic | manual ("automatic_async" is reported as "automatic")
    metadata: dict[str, str]
    client_secret: str | None
    next_action_url: str | None  # where to send the customer for 3-D Secure when status == requires_action
    last_error: str | None  # decline code (else error code, else message) of the last failed attempt
    created: int  # unix seconds


@dataclass(frozen=True)
class Refund:
    """A Stripe Refund, amount in fen."""

    id: str
    payment_intent: str
    amount: int
    status: str  # pending | requires_action | succeeded | failed | canceled
    reason: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class Transfer:
    """A Stripe Connect Transfer to a connected account, amount in fen."""

    id: str
    amount: int
    currency: str
    destination: str  # acct_...
    metadata: dict[str, str]


# -- errors -------------------------------------------------------------------------------------------------------


class PaymentsError(Exception):
    """A payment operation failed."""


class PaymentDeclined(PaymentsError):
    """The card was declined: ``code`` is Stripe's decline code (else its error code), ``message`` is for people,
    ``intent`` is the PaymentIntent when Stripe returned one (status ``requires_payment_method``)."""

    def __init__(self, code: str, message: str, intent: Intent | None = None) -> None:
        super().__init__(f"card declined ({code}): {message}")
        self.code = code
        self.message = message
        self.intent = intent


class PaymentsUnavailable(PaymentsError):
    """Stripe could not be reached, timed out, failed on its side (5xx) or rate-limited us (429) after the
    client's retries: the step is retriable with the same idempotency key."""


class PaymentRefused(PaymentsError):
    """Stripe refused the request (any other 4xx): a bug or bad data; retrying will not help."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"Stripe refused the request (HTTP {status}): {message}")
        self.status = status
        self.message = message


class WebhookInvalid(Exception):
    """A webhook failed verification: ``reason`` is "bad signature", "stale timestamp" or "not JSON"."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# -- the port -----------------------------------------------------------------------------------------------------


class PaymentGateway(Protocol):
    """The port: card payments with optional holds, refunds and payouts to dealers, in fen."""

    test_mode: bool

    def create_intent(self, *, amount: int, currency: str, idempotency_key: str, metadata: dict[str, str],
                      payment_method: str | None = None, confirm: bool = False, manual_capture: bool = False,
                      description: str | None = None, return_url: str | None = None,
                      transfer_data: tuple[str, int] | None = None, methods: Sequence[str] | None = None) -> Intent:
        """Create a payment of ``amount`` (confirmed at once when ``confirm``); ``manual_capture`` only places a
        hold; ``transfer_data=(account, amount)`` makes it a destination charge paying ``amount`` to ``account``;
        ``methods`` are the payment method types the customer may choose from in the browser (e.g. ``card``,
        ``alipay``, ``wechat_pay``), None for Stripe's default."""
        ...

    def confirm_intent(self, intent_id: str, *, idempotency_key: str, payment_method: str | None = None,
                       return_url: str | None = None) -> Intent:
        """Attempt the payment (or the hold) now."""
        ...

    def retrieve_intent(self, intent_id: str) -> Intent:
        """The payment as it is now."""
        ...

    def capture(self, intent_id: str, *, idempotency_key: str, amount: int | None = None) -> Intent:
        """Capture a hold, all of it or ``amount``; the rest is released."""
        ...

    def cancel(self, intent_id: str, *, idempotency_key: str) -> Intent:
        """Cancel an unfinished payment or release a hold."""
        ...

    def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str | None = None,
               metadata: dict[str, str] | None = None) -> Refund:
        """Refund ``amount`` of a captured payment (the caller guards against refunding more than was captured)."""
        ...

    def list_intents(self, *, created_gte: int | None = None) -> Iterator[Intent]:
        """Every payment (created at or after ``created_gte``), page by page."""
        ...

    def list_refunds(self, *, payment_intent: str | None = None) -> Iterator[Refund]:
        """Every refund (of one payment), page by page."""
        ...

    def transfer(self, *, amount: int, currency: str, destination: str, idempotency_key: str,
                 metadata: dict[str, str], transfer_group: str | None = None) -> Transfer:
        """Pay ``amount`` from our balance to the connected account ``destination`` (a dealer)."""
        ...

    def card_payment_method(self, number: str) -> str:
        """TEST MODE only: the id of a new card PaymentMethod for a test card ``number`` (e.g. 3-D Secure)."""
        ...


# -- the Stripe adapter -------------------------------------------------------------------------------------------


class StripeGateway:
    """``PaymentGateway`` over Stripe's API (or localstripe at ``api_base``) with the official SDK.

    ``timeout`` bounds each HTTP request; the SDK retries connection errors, 409 and 5xx up to
    ``max_network_retries`` times with backoff, reusing the idempotency key.
    """

    def __init__(self, secret_key: str, *, api_base: str | None = None, timeout: float = 10.0,
                 max_network_retries: int = 2) -> None:
        if not secret_key or not secret_key.startswith(("sk_", "rk_")):
            raise ValueError("StripeGateway needs a Stripe secret key (sk_... or rk_...)")
        if timeout <= 0 or max_network_retries < 0:
            raise ValueError("timeout must be positive and max_network_retries not negative")
        self._secret_key = secret_key
        self.api_base = (api_base or stripe.DEFAULT_API_BASE).rstrip("/")
        self.test_mode = secret_key.startswith(TEST_KEY_PREFIXES)
        self._clients: PerProcess[stripe.StripeClient] = PerProcess(lambda: stripe.StripeClient(
            secret_key, base_addresses={"api": self.api_base}, max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout)))
        self._unsupported: set[str] = set()  # LOCALSTRIPE_OPTIONAL names this server refused

    @property
    def _client(self) -> stripe.StripeClient:
        """This process's client: a forked gunicorn worker must not share its master's keep-alive connections
        (tests/integration/test_fork_safety.py)."""
        return self._clients.get()

    def __repr__(self) -> str:  # never the key
        return f"StripeGateway(api_base={self.api_base!r}, test_mode={self.test_mode})"

    # -- PaymentIntents: https://docs.stripe.com/api/payment_intents ----------------------------------------------

    def create_intent(self, *, amount: int, currency: str, idempotency_key: str, metadata: dict[str, str],
                      payment_method: str | None = None, confirm: bool = False, manual_capture: bool = False,
                      description: str | None = None, return_url: str | None = None,
                      transfer_data: tuple[str, int] | None = None, methods: Sequence[str] | None = None) -> Intent:
        """POST /v1/payment_intents (https://docs.stripe.com/api/payment_intents/create); destination charges:
        https://docs.stripe.com/connect/destination-charges.

        ``methods`` becomes ``allowed_payment_method_types``: since API version 2026-09-30.endive (the SDK's
        pinned version) ``payment_method_types`` is no longer writable (a 400 ``payment_method_types_no_longer_
        supported``), and Stripe keeps those of the allowed types that suit the currency and the account, so Alipay
        and WeChat Pay appear where Stripe offers them for CNY (https://docs.stripe.com/changelog/endive/2026-09-30/
        removes-the-payment-method-types-parameter-from-payment-intents-and-setup-intents). With ``wechat_pay`` also
        ``payment_method_options[wechat_pay][client]=web``, which WeChat Pay needs to be confirmed from a web page.
        Alipay and WeChat Pay cannot be captured manually, so a hold (``manual_capture``) with them is refused here.
        """
        params: PaymentIntentCreateParams = {"amount": _fen(amount), "currency": _currency(currency),
                                             "metadata": _metadata(metadata), "expand": list(_EXPAND_CHARGE)}
        if payment_method is not None:
            params["payment_method"] = payment_method
        if confirm:
            params["confirm"] = True
        if manual_capture:
            params["capture_method"] = "manual"
        if methods is not None:
            if not methods:
                raise ValueError("payment method types must not be empty (None: Stripe's default)")
            if manual_capture and set(methods) - MANUAL_CAPTURE_METHODS:
                raise ValueError(f"only {sorted(MANUAL_CAPTURE_METHODS)} can hold an amount, not {list(methods)!r}")
            params["allowed_payment_method_types"] = cast(Any, list(methods))  # Stripe's literals, checked by Stripe
            if "wechat_pay" in methods:
                params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
        if description is not None:
            params["description"] = description
        if return_url is not None:
            params["return_url"] = return_url
        if transfer_data is not None:
            destination, dealer_amount = transfer_data
            params["transfer_data"] = {"destination": destination, "amount": _fen(dealer_amount)}
        options = _idempotent(idempotency_key)
        return intent_from_object(self._send("create a PaymentIntent", params,
                                             lambda p: self._client.v1.payment_intents.create(p, options)).to_dict())

    def confirm_intent(self, intent_id: str, *, idempotency_key: str, payment_method: str | None = None,
                       return_url: str | None = None) -> Intent:
        """POST /v1/payment_intents/:id/confirm (https://docs.stripe.com/api/payment_intents/confirm)."""
        params: PaymentIntentConfirmParams = {"expand": list(_EXPAND_CHARGE)}
        if payment_method is not None:
            params["payment_method"] = payment_method
        if return_url is not None:
            params["return_url"] = return_url
        options = _idempotent(idempotency_key)
        return intent_from_object(self._send(f"confirm {intent_id}", params,
                                             lambda p: self._client.v1.payment_intents.confirm(_id(intent_id), p,
                                                                                               options)).to_dict())

    def retrieve_intent(self, intent_id: str) -> Intent:
        """GET /v1/payment_intents/:id (https://docs.stripe.com/api/payment_intents/retrieve)."""
        params: PaymentIntentRetrieveParams = {"expand": list(_EXPAND_CHARGE)}
        return intent_from_object(self._call(f"retrieve {intent_id}",
                                             lambda: self._client.v1.payment_intents.retrieve(_id(intent_id), params))
                                  .to_dict())

    def capture(self, intent_id: str, *, idempotency_key: str, amount: int | None = None) -> Intent:
        """POST /v1/payment_intents/:id/capture (https://docs.stripe.com/api/payment_intents/capture)."""
        params: PaymentIntentCaptureParams = {"expand": list(_EXPAND_CHARGE)}
        if amount is not None:
            params["amount_to_capture"] = _fen(amount)
        options = _idempotent(idempotency_key)
        return intent_from_object(self._call(f"capture {intent_id}",
                                             lambda: self._client.v1.payment_intents.capture(_id(intent_id), params,
                                                                                             options)).to_dict())

    def cancel(self, intent_id: str, *, idempotency_key: str) -> Intent:
        """POST /v1/payment_intents/:id/cancel (https://docs.stripe.com/api/payment_intents/cancel)."""
        params: PaymentIntentCancelParams = {"expand": list(_EXPAND_CHARGE)}
        options = _idempotent(idempotency_key)
        return intent_from_object(self._call(f"cancel {intent_id}",
                                             lambda: self._client.v1.payment_intents.cancel(_id(intent_id), params,
                                                                                            options)).to_dict())

    def list_intents(self, *, created_gte: int | None = None) -> Iterator[Intent]:
        """GET /v1/payment_intents, every page (https://docs.stripe.com/api/payment_intents/list).

        Stripe filters on ``created[gte]``; localstripe cannot, so the filter is applied here too.
        """
        params: PaymentIntentListParams = {"limit": _PAGE_SIZE, "expand": ["data.latest_charge"]}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        page = self._send("list PaymentIntents", params, lambda p: self._client.v1.payment_intents.list(p))
        for item in self._pages("list PaymentIntents", page.auto_paging_iter()):
            intent = intent_from_object(item.to_dict())
            if created_gte is None or intent.created >= created_gte:
                yield intent

    # -- refunds: https://docs.stripe.com/api/refunds -------------------------------------------------------------

    def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str | None = None,
               metadata: dict[str, str] | None = None) -> Refund:
        """POST /v1/refunds with ``payment_intent`` (https://docs.stripe.com/api/refunds/create)."""
        params: RefundCreateParams = {"payment_intent": _id(intent_id), "amount": _fen(amount)}
        if reason is not None:
            if reason not in REFUND_REASONS:
                raise ValueError(f"refund reason must be one of {', '.join(REFUND_REASONS)}")
            params["reason"] = cast(Any, reason)  # one of the literals checked above
        if metadata:
            params["metadata"] = _metadata(metadata)
        options = _idempotent(idempotency_key)
        created = self._send(f"refund {intent_id}", params, lambda p: self._client.v1.refunds.create(p, options))
        return _refund(created.to_dict(), intent_id)

    def list_refunds(self, *, payment_intent: str | None = None) -> Iterator[Refund]:
        """GET /v1/refunds, every page (https://docs.stripe.com/api/refunds/list).

        Refunds without a PaymentIntent are skipped: on localstripe those are the released remainders of partial
        captures, which today's Stripe does not book as refunds (API version 2025-03-31.basil).
        """
        params: RefundListParams = {"limit": _PAGE_SIZE}
        if payment_intent is not None:
            params["payment_intent"] = _id(payment_intent)
        page = self._call("list refunds", lambda: self._client.v1.refunds.list(params))
        for item in self._pages("list refunds", page.auto_paging_iter()):
            data = item.to_dict()
            if data.get("payment_intent"):
                yield _refund(data, payment_intent or "")

    # -- Connect: https://docs.stripe.com/connect/separate-charges-and-transfers ----------------------------------

    def transfer(self, *, amount: int, currency: str, destination: str, idempotency_key: str,
                 metadata: dict[str, str], transfer_group: str | None = None) -> Transfer:
        """POST /v1/transfers (https://docs.stripe.com/api/transfers/create); absent from localstripe."""
        params: TransferCreateParams = {"amount": _fen(amount), "currency": _currency(currency),
                                        "destination": _id(destination), "metadata": _metadata(metadata)}
        if transfer_group is not None:
            params["transfer_group"] = transfer_group
        options = _idempotent(idempotency_key)
        created = self._call(f"transfer to {destination}", lambda: self._client.v1.transfers.create(params, options))
        return _transfer(created.to_dict())

    # -- the balance: https://docs.stripe.com/api/balance_transactions ---------------------------------------------

    def balance_transactions(self, *, created_gte: int | None = None) -> Iterator[dict[str, Any]]:
        """GET /v1/balance_transactions, every page, newest first, each ``source`` expanded (the Charge, Refund,
        Transfer or Payout object: https://docs.stripe.com/api/balance_transactions/list), as Stripe's JSON.

        localstripe refuses ``created`` there (sent again without it and filtered here, as for PaymentIntents) and
        reports fees as 0; a server without the path (404) is read at the legacy GET /v1/balance/history. A charge's or
        refund's ``source`` left as an id is retrieved, as Stripe would have expanded it."""
        params: dict[str, Any] = {"limit": _PAGE_SIZE, "expand": ["data.source"]}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        try:
            page = self._send("list balance transactions", params,
                              lambda p: self._client.v1.balance_transactions.list(cast(Any, p)))
        except PaymentRefused as exc:
            if exc.status != 404:
                raise
            yield from self._balance_history(created_gte)
            return
        for item in self._pages("list balance transactions", page.auto_paging_iter()):
            data = item.to_dict()
            if created_gte is not None and _int(data.get("created")) < created_gte:
                return  # newest first: the rest is older too (unfiltered when the server refused ``created``)
            yield self._with_source(data)

    def _balance_history(self, created_gte: int | None) -> Iterator[dict[str, Any]]:
        """The legacy GET /v1/balance/history, newest first, page by page (``starting_after``), up to the first item
        older than ``created_gte``."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": _PAGE_SIZE, **({"starting_after": after} if after else {})}
            answer = self._call("list the balance history",
                                lambda params=params: self._client.raw_request("get", "/v1/balance/history",
                                                                                **params))
            data = answer.data if isinstance(answer.data, Mapping) else {}
            items = [dict(i) for i in data.get("data") or [] if isinstance(i, Mapping)]
            for item in items:
                if created_gte is not None and _int(item.get("created")) < created_gte:
                    return  # newest first: no later page can hold anything newer
                yield self._with_source(item)
            if not data.get("has_more") or not items:
                return
            after = str(items[-1].get("id") or "")

    def _with_source(self, item: dict[str, Any]) -> dict[str, Any]:
        """``item`` with its charge's or refund's ``source`` expanded (retrieved when the server left it an id)."""
        source = item.get("source")
        if isinstance(source, str) and source.startswith(("ch_", "re_")):
            path = f"/v1/{'charges' if source.startswith('ch_') else 'refunds'}/{_id(source)}"
            got = self._call(f"retrieve {source}", lambda: self._client.raw_request("get", path))
            if isinstance(got.data, Mapping):
                item["source"] = dict(got.data)
        return item

    # -- test cards: https://docs.stripe.com/testing --------------------------------------------------------------

    def card_payment_method(self, number: str) -> str:
        """POST /v1/payment_methods with a raw test card number (https://docs.stripe.com/api/payment_methods/create).

        TEST MODE only (ValueError otherwise). localstripe takes any of its test numbers (4000000000003220: 3-D
        Secure); real Stripe refuses raw numbers unless the account may send them, so against it prefer its test
        PaymentMethods (``pm_card_visa``, ``pm_card_threeDSecure2Required``, ...).
        """
        if not self.test_mode:
            raise ValueError("raw card numbers are for TEST MODE only")
        if not (number.isdigit() and 12 <= len(number) <= 19):
            raise ValueError("a test card number is 12-19 digits")
        params: PaymentMethodCreateParams = {"type": "card", "card": {
            "number": number, "exp_month": 12, "exp_year": dt.date.today().year + 3, "cvc": "123"}}
        return self._call("create a test card", lambda: self._client.v1.payment_methods.create(params)).id

    # -- helpers --------------------------------------------------------------------------------------------------

    def _send(self, action: str, params: P, send: Callable[[P], T]) -> T:
        """``send(params)``; when the server answers localstripe's 400 "Unexpected <names>" for names that are all
        in :data:`LOCALSTRIPE_OPTIONAL`, again without them (and without them from then on)."""
        fields = cast(dict[str, Any], params)
        for name in self._unsupported & fields.keys():
            del fields[name]
        while True:
            try:
                return send(params)
            except stripe.InvalidRequestError as exc:
                match = _UNEXPECTED.fullmatch(exc.user_message or "") if exc.http_status == 400 else None
                names = set(match.group(1).split(", ")) if match else set()
                if not names or not names <= (LOCALSTRIPE_OPTIONAL & fields.keys()):
                    raise self._translate(action, exc) from self._cause(exc)
                log.info("%s: the server does not know %s (localstripe): sending without", action,
                         ", ".join(sorted(names)))
                self._unsupported |= names
                for name in names:
                    del fields[name]
            except stripe.StripeError as exc:
                raise self._translate(action, exc) from self._cause(exc)

    def _call(self, action: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except stripe.StripeError as exc:
            raise self._translate(action, exc) from self._cause(exc)

    def _pages(self, action: str, items: Iterator[T]) -> Iterator[T]:
        """Map the errors of later pages (fetched while iterating) like those of the first."""
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except stripe.StripeError as exc:
                raise self._translate(action, exc) from self._cause(exc)
            yield item

    def _translate(self, action: str, exc: stripe.StripeError) -> PaymentsError:
        status = exc.http_status
        message = self._scrub(exc.user_message or type(exc).__name__)
        error = _error_body(exc)
        if isinstance(exc, stripe.CardError):
            code = str(error.get("decline_code") or exc.code or "card_declined")
            raw_intent = error.get("payment_intent")
            intent = (intent_from_object(raw_intent) if isinstance(raw_intent, Mapping) and raw_intent.get("id")
                      else None)
            return PaymentDeclined(code, message, intent)
        retriable = (isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or status is None
                     or status >= 500 or status == 429
                     # 409: a concurrent request with the same key or a lock timeout; a key reused with other
                     # parameters (idempotency_error) is a bug
                     or (status == 409 and error.get("type") != "idempotency_error"))
        if retriable:
            return PaymentsUnavailable(f"Stripe unavailable ({action}, HTTP {status}): {message}")
        return PaymentRefused(status, f"{action}: {message}")

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret_key, "[secret key]")

    def _cause(self, exc: stripe.StripeError) -> stripe.StripeError | None:
        """``exc`` to chain for debugging, unless the server echoed the key into it (a traceback would log it)."""
        return None if self._secret_key in f"{exc} {exc.http_body or ''}" else exc


# -- webhooks: https://docs.stripe.com/webhooks#verify-manually ---------------------------------------------------


def verify_webhook(payload: bytes, signature_header: str, secret: str, *, tolerance: int = 300) -> dict[str, Any]:
    """The event in ``payload`` as a plain dict, after checking its ``Stripe-Signature`` header with ``secret``
    (``whsec_...``) and that it was signed at most ``tolerance`` seconds ago; :class:`WebhookInvalid` otherwise."""
    if tolerance <= 0:
        raise ValueError("tolerance must be positive (0 would accept replays of any age)")
    try:
        event: stripe.Event = stripe.Webhook.construct_event(payload, signature_header, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError as exc:
        text = exc.user_message or ""
        reason = "stale timestamp" if "tolerance" in text else "bad signature"
        raise WebhookInvalid(reason, text) from None
    except (ValueError, TypeError, AttributeError) as exc:  # undecodable, not JSON, or JSON but not an object
        raise WebhookInvalid("not JSON", type(exc).__name__) from None
    return event.to_dict()


def sign_webhook(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">`` that Stripe
    (and localstripe) sends with a webhook, for tests and the local peer."""
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), b"%d.%s" % (at, payload), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


# -- conversions (defensive: localstripe's objects have an older shape) -------------------------------------------


def _fen(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amounts are positive integers of fen, not {amount!r}")
    return amount


def _currency(currency: str) -> str:
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise ValueError(f"currency must be a three-letter ISO code, not {currency!r}")
    return currency.lower()


def _id(value: str) -> str:
    if not value or not isinstance(value, str) or "/" in value:
        raise ValueError(f"not a Stripe object id: {value!r}")
    return value


def _metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    return {str(key): str(value) for key, value in metadata.items()}


def _idempotent(key: str) -> stripe.RequestOptions:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValueError(f"an idempotency key of 1-{MAX_IDEMPOTENCY_KEY} characters is required")
    return {"idempotency_key": key}


def _error_body(exc: stripe.StripeError) -> Mapping[str, Any]:
    body = exc.json_body
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _charge(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The latest charge as an object: expanded ``latest_charge``, else the old ``charges`` list (newest first)."""
    charge = data.get("latest_charge")
    if isinstance(charge, Mapping):
        return charge
    charges = data.get("charges")
    items = charges.get("data") if isinstance(charges, Mapping) else None
    if isinstance(items, list) and items and isinstance(items[0], Mapping):
        return cast(Mapping[str, Any], items[0])
    return None


def _released(charge: Mapping[str, Any]) -> int:
    """The uncaptured remainder of a partial capture that localstripe books as a Refund without a PaymentIntent
    (Stripe's behaviour before 2025-03-31.basil); 0 for today's charges, which carry ``amount_captured``."""
    if "amount_captured" in charge:
        return 0
    refunds = charge.get("refunds")
    items = refunds.get("data") if isinstance(refunds, Mapping) else None
    return sum(_int(r.get("amount")) for r in items or [] if isinstance(r, Mapping) and not r.get("payment_intent"))


def _next_action_url(data: Mapping[str, Any]) -> str | None:
    action = data.get("next_action")
    if data.get("status") != "requires_action" or not isinstance(action, Mapping):
        return None
    detail = action.get(str(action.get("type")))  # e.g. {"type": "redirect_to_url", "redirect_to_url": {...}}
    if not isinstance(detail, Mapping):
        return None
    url = _str(detail.get("url")) or _str(detail.get("stripe_js"))  # use_stripe_sdk 3DS redirects: stripe_js
    return url if url and url.startswith(("https://", "http://")) else None


def _last_error(data: Mapping[str, Any]) -> str | None:
    error = data.get("last_payment_error")
    if not isinstance(error, Mapping):
        return None
    return _str(error.get("decline_code")) or _str(error.get("code")) or _str(error.get("message"))


def intent_from_object(data: Mapping[str, Any]) -> Intent:
    """A PaymentIntent object as Stripe sends it — an API answer or a webhook event's ``data.object`` — read as the
    answers are (https://docs.stripe.com/api/payment_intents/object): fields that do not parse count as absent, and
    localstripe's older shape (no ``amount_received``, the charge expanded) is read from the charge."""
    charge = _charge(data)
    status = str(data.get("status") or "")
    released = _released(charge) if charge is not None else 0
    received = data.get("amount_received")
    if not isinstance(received, int):
        captured = (charge is not None and charge.get("status") == "succeeded" and bool(charge.get("captured")))
        received = (_int(charge.get("amount_captured", charge.get("amount"))) - released
                    if captured and charge is not None else 0)
    capturable = data.get("amount_capturable")
    if not isinstance(capturable, int):
        capturable = _int(data.get("amount")) if status == "requires_capture" else 0
    refunded = max(0, _int(charge.get("amount_refunded")) - released) if charge is not None else 0
    capture_method = str(data.get("capture_method") or "automatic")
    metadata = data.get("metadata")
    return Intent(
        id=str(data.get("id") or ""),
        status=status,
        amount=_int(data.get("amount")),
        amount_capturable=capturable,
        amount_received=received,
        amount_refunded=refunded,
        currency=str(data.get("currency") or ""),
        capture_method="manual" if capture_method == "manual" else "automatic",
        metadata=_metadata(metadata) if isinstance(metadata, Mapping) else {},
        client_secret=_str(data.get("client_secret")),
        next_action_url=_next_action_url(data),
        last_error=_last_error(data),
        created=_int(data.get("created")),
    )


def received_known(data: Mapping[str, Any]) -> bool:
    """Whether a PaymentIntent object says what was received: ``amount_received`` (every object of today's API), or
    an expanded charge to compute it from (localstripe). Without either, ask Stripe for the intent."""
    return isinstance(data.get("amount_received"), int) or _charge(data) is not None


def charge_refunded(data: Mapping[str, Any]) -> int:
    """What a Charge object (e.g. a ``charge.refunded`` event's) says was refunded to the customer, in fen: its
    ``amount_refunded`` less the released remainder of a partial capture that localstripe (as Stripe before
    2025-03-31.basil) books as a refund (https://docs.stripe.com/api/charges/object#charge_object-amount_refunded)."""
    return max(0, _int(data.get("amount_refunded")) - _released(data))


def _refund(data: Mapping[str, Any], intent_id: str) -> Refund:
    metadata = data.get("metadata")
    return Refund(
        id=str(data.get("id") or ""),
        payment_intent=_str(data.get("payment_intent")) or intent_id,
        amount=_int(data.get("amount")),
        status=str(data.get("status") or ""),
        reason=_str(data.get("reason")),
        metadata=_metadata(metadata) if isinstance(metadata, Mapping) else {},
    )


def _transfer(data: Mapping[str, Any]) -> Transfer:
    destination = data.get("destination")
    if isinstance(destination, Mapping):  # expanded account
        destination = destination.get("id")
    metadata = data.get("metadata")
    return Transfer(
        id=str(data.get("id") or ""),
        amount=_int(data.get("amount")),
        currency=str(data.get("currency") or ""),
        destination=str(destination or ""),
        metadata=_metadata(metadata) if isinstance(metadata, Mapping) else {},
    )
