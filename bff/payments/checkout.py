"""What a signed lease must pay before delivery, and the customer paying it through Stripe.

Lines (from the plan frozen at approval, in fen):
- ``upfront``: what is due at signing less the deposit: the down payment, fees and premiums paid upfront,
  and the first rent when rents are paid in advance — one charge, captured at once;
- ``deposit``: the refundable deposit (保证金), captured at once, refunded at the end of the term;
- ``hold``: for a deposit-free plan (免押), which the risk decision allowed (it approved the plan as it is), a
  pre-authorisation of the amount the deposit would have been (the product's deposit ratio × the price):
  a PaymentIntent with manual capture — captured on default, released at the end.

Authorisation window: a card hold lasts 7 days on Stripe (up to 30 with extended authorisation on some
cards), far shorter than a lease. ``held_until`` records when this one lapses; then it is marked ``expired``.
Before the handover the lease asks for security again: the customer places the hold once more, or pays a deposit
line of the same amount that appears instead. After the handover nothing is payable here (``PAYING``), so a lapsed
hold is only marked expired — the lease then holds no security, and its page and /payments say so. Keeping a hold
alive for a whole term would need re-authorisations on the customer's saved card (Customer + SetupIntent,
off-session), not built.

How the customer pays: with ``LEASELINE_STRIPE_PUBLISHABLE_KEY`` set (production), through Stripe.js's Payment
Element — :meth:`CheckoutService.checkout` creates the line's PaymentIntent unconfirmed (card, Alipay and WeChat Pay
for a charge; card only for the hold, which needs manual capture), the browser confirms it with the intent's client
secret, and back on our return URL :meth:`CheckoutService.refresh` asks Stripe how it went (never the query string).
Without it (the embedded default, with localstripe), TEST MODE: :meth:`CheckoutService.pay` creates and confirms the
intent server-side with one of Stripe's test PaymentMethods.

3-D Secure never leaves the customer stuck (issue 17 §6): a payment waiting for the customer's bank
(``requires_action``) can be confirmed — with Stripe.js's ``handleNextAction`` on the Payment Element's page, the
intent's ``next_action`` page in TEST MODE on Stripe, or :meth:`CheckoutService.authenticate` on localstripe (whose
3-D Secure has no page: infra/sandbox_bank.py) — or paid with another card: the Payment Element confirms the same
intent with the new card, TEST MODE cancels the waiting intent first (:meth:`CheckoutService.pay`). A check the bank
failed leaves the intent ``requires_payment_method`` with ``payment_intent_authentication_failure``: the payment is
``failed`` and the page offers another card. One intent per attempt, and an attempt's intent canceled before the next
one starts: nothing is charged twice.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.payments.common import PAYING
from bff.payments.common import fen
from bff.payments.common import own_payment
from bff.payments.common import utc_now
from bff.payments.intents import IntentSync
from bff.payments.machine import PAYABLE
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.payments import Intent
from infra.payments import PaymentDeclined
from infra.payments import PaymentGateway
from infra.payments import PaymentRefused
from infra.payments import PaymentsUnavailable
from infra.payments_store import Payment
from infra.payments_store import SqlPayments
from infra.sandbox_bank import SandboxBank

log = logging.getLogger(__name__)
_ALL = Scope()
#: the test cards offered in TEST MODE: Stripe's test PaymentMethods (localstripe knows pm_card_visa and
#: pm_card_chargeCustomerFail; for 3-D Secure it needs the test card's number, which real Stripe refuses)
TEST_METHODS = {"visa": "pm_card_visa", "declined": "pm_card_chargeCustomerFail",
                "3ds": "pm_card_threeDSecure2Required"}
LOCAL_3DS_CARD = "4000000000003220"
#: what the Payment Element offers per line: Alipay and WeChat Pay take CNY but cannot hold an amount (no manual
#: capture), so the 免押 hold is card only
ELEMENT_METHODS = {"upfront": ("card", "alipay", "wechat_pay"), "deposit": ("card", "alipay", "wechat_pay"),
                   "hold": ("card",)}
ELEMENT_UI = "payment_element"  # metadata ``ui`` of the intents made for the Payment Element
#: our statuses in which the Payment Element is offered, and the intent statuses Stripe can still confirm
ELEMENT_PAYABLE = PAYABLE | {"requires_action"}
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CHECKOUT_WAIT = 3.0  # seconds a request waits for the intent another request is creating for the same line


class CheckoutService:
    """``local_stripe``: the gateway is a local fake Stripe (localstripe), which takes 3-D Secure's test card by its
    number only; ``bank``: on it, TEST MODE's stand-in for the customer's bank at 3-D Secure (None elsewhere)."""

    def __init__(self, store: SqlPayments, gateway: PaymentGateway, repo: SqlApplications, intents: IntentSync,
                 deposit_ratio: Decimal, *, local_stripe: bool = False, bank: SandboxBank | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store, self.gateway, self.repo, self.intents = store, gateway, repo, intents
        self.deposit_ratio, self.local_stripe, self.bank, self.clock = deposit_ratio, local_stripe, bank, clock

    # -- what is owed ---------------------------------------------------------------------------------------
    def lines(self, app: Application) -> list[tuple[str, int, int]]:
        """``(kind, amount, the dealer's share)`` in fen."""
        quote, choice = app.plan["quote"], app.plan.get("choice", {})
        deposit = fen(quote["deposit"])
        upfront = fen(quote["due_at_signing"]) - deposit
        lines = [("upfront", upfront, min(upfront, fen(quote["down_payment"])))] if upfront > 0 else []
        if deposit > 0:
            lines.append(("deposit", deposit, 0))
        elif choice.get("deposit_free"):
            lines.append(("hold", fen(self.deposit_ratio * Decimal(app.plan["vehicle"]["price"])), 0))
        return lines

    def payments(self, app: Application) -> list[Payment]:
        """The application's payments, created on first look once it is signed."""
        found = self.store.for_application(app.id)
        if not found and app.status in PAYING:
            found = self.store.ensure(app.id, app.dealer_id, self.lines(app))
        return found

    # -- paying ---------------------------------------------------------------------------------------------
    def test_method(self, key: str) -> str:
        """The PaymentMethod id of a TEST MODE card choice (on a local fake Stripe, 3-D Secure's card number)."""
        if key == "3ds" and self.local_stripe:
            return self.gateway.card_payment_method(LOCAL_3DS_CARD)
        return TEST_METHODS[key]

    def pay(self, app: Application, payment_id: str, method: str, return_url: str | None = None, *,
            replace: bool = False) -> Payment:
        """One attempt to pay ``payment_id`` with ``method`` (a PaymentMethod id). A second tap while the first
        is in flight, or after it succeeded, sends nothing to Stripe and returns the payment as it is. A payment waiting
        for the customer's bank is paid with the new card only when the customer chose to (``replace``: the "another
        card instead" button), once its waiting intent is canceled (:meth:`_replace_waiting`); the first pay form sent
        again (the back button) returns it as it is, for the customer may be confirming it in their bank's app."""
        if app.status not in PAYING:
            raise NotAllowed("wrong_state", "当前无需付款", "Nothing is to be paid now")
        payment = own_payment(self.store, app, payment_id)
        if payment.status == "requires_action" and replace:
            payment = self._replace_waiting(app, payment)
        if payment.status not in PAYABLE:
            return payment
        claimed = self.store.claim_attempt(payment.id, f"pay:{payment.id}:{uuid.uuid4().hex[:12]}")
        if claimed is None:  # another tap or process started it a moment ago
            return own_payment(self.store, app, payment_id)
        assert claimed.attempt_key is not None
        try:
            intent = self.gateway.create_intent(
                amount=claimed.amount, currency="cny", idempotency_key=claimed.attempt_key,
                metadata={"payment_id": claimed.id, "application_id": app.id, "kind": claimed.kind,
                          "attempt": str(claimed.attempts)},
                payment_method=method, confirm=True, manual_capture=claimed.kind == "hold",
                description=f"Leaseline {app.contract.get('number') or app.id[:8]} {claimed.kind}",
                return_url=return_url)
        except PaymentDeclined as exc:
            values: dict[str, object] = {"last_error": (exc.code or exc.message or "declined")[:255]}
            if exc.intent is not None:
                values["intent_id"] = exc.intent.id
            moved = self.store.move(claimed.id, "processing", "failed", **values)
            return moved or own_payment(self.store, app, payment_id)
        except PaymentsUnavailable:
            # the answer may be lost with the charge made: back to pending with the same attempt key, so the
            # retry gets Stripe's first answer instead of a second charge
            self.store.move(claimed.id, "processing", "pending", last_error="unavailable")
            raise
        except PaymentRefused as exc:
            log.error("Stripe refused payment %s: %s", claimed.id, exc)
            moved = self.store.move(claimed.id, "processing", "failed", last_error="refused")
            return moved or own_payment(self.store, app, payment_id)
        return self.intents.apply_intent(claimed.id, intent)

    def _replace_waiting(self, app: Application, payment: Payment) -> Payment:
        """The customer chose another card while the attempt waits for their bank: its intent is canceled (the key
        ``cancel:<payment>:<n>``), so that it can never be charged as well, and the payment is ``failed``
        (``replaced``), ready for a new attempt. Stripe refusing the cancel means the intent moved on meanwhile (the
        bank confirmed it in another tab): it is applied instead, and nothing new is tried on a paid line."""
        if payment.intent_id is None:  # nothing at Stripe to cancel
            return self.store.move(payment.id, "requires_action", "failed", last_error="replaced") or payment
        try:
            intent = self.gateway.cancel(payment.intent_id, idempotency_key=f"cancel:{payment.id}:{payment.attempts}")
        except PaymentRefused:
            intent = self.gateway.retrieve_intent(payment.intent_id)
        if intent.status != "canceled":
            return self.intents.apply_intent(payment.id, intent)
        moved = self.store.move(payment.id, "requires_action", "failed", last_error="replaced")
        return moved or own_payment(self.store, app, payment.id)

    def authenticate(self, app: Application, payment_id: str, *, success: bool) -> Payment:
        """TEST MODE on localstripe: the customer's answer to their bank's 3-D Secure check (complete or fail it), sent
        by :attr:`bank`; the payment then follows its intent as Stripe has it (paid, held, or ``failed`` with
        ``payment_intent_authentication_failure``). A second tap, or a payment no longer waiting, sends nothing."""
        if app.status not in PAYING:
            raise NotAllowed("wrong_state", "当前无需付款", "Nothing is to be paid now")
        if self.bank is None or not self.gateway.test_mode:  # a live key never has its checks answered for it
            raise NotAllowed("no_test_bank", "请按银行的提示确认这笔付款", "Confirm this payment as your bank asks")
        payment = own_payment(self.store, app, payment_id)
        if payment.status != "requires_action" or not payment.intent_id:
            return payment
        intent = self.gateway.retrieve_intent(payment.intent_id)
        if intent.status == "requires_action" and intent.client_secret:
            self.bank.authenticate(intent.id, intent.client_secret, success=success)
            intent = self.gateway.retrieve_intent(intent.id)
        return self.intents.apply_intent(payment.id, intent)

    def checkout(self, app: Application, payment_id: str, *, waited: bool = False) -> Intent | None:
        """The PaymentIntent that Stripe.js's Payment Element confirms in the browser for ``payment_id`` (the page
        needs its ``client_secret``): the current attempt's while Stripe can still confirm it (after a decline too,
        so the customer simply tries again), else a new attempt's, created unconfirmed with the line's payment
        method types. None when nothing is to be paid on it now (paid, held, being processed).

        A reload, a second tab or a double tap makes no second intent: the attempt is claimed in our own state first
        and its key (``pay:<payment>:<n>``) is the Idempotency-Key; a request that finds the intent being created
        waits a moment for it."""
        if app.status not in PAYING:
            raise NotAllowed("wrong_state", "当前无需付款", "Nothing is to be paid now")
        payment = own_payment(self.store, app, payment_id)
        if payment.status == "processing" and not waited and self._being_prepared(payment):
            deadline = time.monotonic() + CHECKOUT_WAIT
            while time.monotonic() < deadline and own_payment(self.store, app, payment_id).status == "processing":
                time.sleep(0.1)
            return self.checkout(app, payment_id, waited=True)
        if payment.status not in ELEMENT_PAYABLE:
            return None
        if payment.intent_id and payment.status != "expired":  # a lapsed hold needs a new authorisation
            intent = self.gateway.retrieve_intent(payment.intent_id)
            current = (intent.metadata.get("ui") == ELEMENT_UI
                       and intent.metadata.get("attempt") == str(payment.attempts))
            if current and intent.status in CONFIRMABLE and intent.client_secret:
                return intent
            payment = self.intents.apply_intent(payment.id, intent)  # paid meanwhile (before its webhook), or canceled
            if payment.status == "pending":  # an intent that cannot be confirmed: that attempt is over
                payment = self.store.move(payment.id, "pending", "failed", last_error=intent.status) or payment
            if payment.status not in PAYABLE:
                return None
        claimed = self.store.claim_attempt(payment.id, f"pay:{payment.id}:{uuid.uuid4().hex[:12]}")
        if claimed is None:  # another request claimed it a moment ago: its intent is on the way
            return None if waited else self.checkout(app, payment_id)
        assert claimed.attempt_key is not None
        try:
            intent = self.gateway.create_intent(
                amount=claimed.amount, currency="cny", idempotency_key=claimed.attempt_key,
                metadata={"payment_id": claimed.id, "application_id": app.id, "kind": claimed.kind,
                          "attempt": str(claimed.attempts), "ui": ELEMENT_UI},
                manual_capture=claimed.kind == "hold", methods=ELEMENT_METHODS.get(claimed.kind, ("card",)),
                description=f"Leaseline {app.contract.get('number') or app.id[:8]} {claimed.kind}")
        except PaymentsUnavailable:
            self.store.move(claimed.id, "processing", "pending", last_error="unavailable")  # the same key next time
            raise
        except (PaymentRefused, PaymentDeclined) as exc:
            log.error("Stripe refused the PaymentIntent of %s: %s", claimed.id, exc)
            self.store.move(claimed.id, "processing", "failed", last_error="refused")
            return None
        self.store.move(claimed.id, "processing", "pending", intent_id=intent.id, next_action_url=None)
        return intent

    def _being_prepared(self, payment: Payment) -> bool:
        """``processing`` because a request is creating the attempt's intent (Stripe has none of this attempt yet),
        not because Stripe is processing the payment (e.g. Alipay's, asynchronously)."""
        if payment.intent_id is None:
            return True
        return self.gateway.retrieve_intent(payment.intent_id).metadata.get("attempt") != str(payment.attempts)

    def refresh(self, app: Application, payment_id: str) -> Payment:
        """Ask Stripe for the payment's intent again (back from 3-D Secure, or polling a processing payment)."""
        payment = own_payment(self.store, app, payment_id)
        if not payment.intent_id:
            return payment
        return self.intents.apply_intent(payment.id, self.gateway.retrieve_intent(payment.intent_id))

    # -- holds (lessor ops, and their authorisation window) ------------------------------------------------------
    def capture(self, actor: Actor, app: Application, payment_id: str, amount: int | None = None) -> Payment:
        """Capture a hold (the customer defaulted): all of it, or ``amount`` fen of it."""
        payment = own_payment(self.store, app, payment_id)
        if payment.kind != "hold" or payment.status != "held" or not payment.intent_id:
            raise NotAllowed("not_held", "只有有效的预授权可以扣款", "Only a live hold can be captured")
        if amount is not None and not 0 < amount <= payment.amount:
            raise NotAllowed("amount", "扣款金额须大于 0 且不超过预授权金额",
                             "Capture more than 0 and at most the hold")
        intent = self.gateway.capture(payment.intent_id, idempotency_key=f"capture:{payment.id}", amount=amount)
        return self.intents.apply_intent(payment.id, intent)

    def release(self, actor: Actor, app: Application, payment_id: str) -> Payment:
        """Release a hold (the lease ended well, or it was re-authorised)."""
        payment = own_payment(self.store, app, payment_id)
        if payment.kind != "hold" or payment.status != "held" or not payment.intent_id:
            raise NotAllowed("not_held", "只有有效的预授权可以释放", "Only a live hold can be released")
        intent = self.gateway.cancel(payment.intent_id, idempotency_key=f"release:{payment.id}")
        return self.intents.apply_intent(payment.id, intent)

    def expire_holds(self) -> int:
        """Holds past their authorisation window (the worker's ``payments.expire_holds`` job): marked ``expired``.
        Before the handover the lease is asked for security again — the customer places the hold once more (a new
        authorisation) or pays the deposit instead (a ``deposit`` line of the same amount appears); either one secures
        it. After the handover nothing can be paid any more (``PAYING``): the hold is only expired, and the lease holds
        no security (:meth:`SettlementService.unsecured`), rather than showing a deposit "to pay" that nobody can
        pay."""
        done = 0
        for payment in self.store.lapsed_holds(self.clock()):
            if self.store.move(payment.id, "held", "expired", last_error="authorisation window ended"):
                app = self.repo.get(payment.application_id, _ALL)
                if app is not None and app.status in PAYING:
                    self.store.ensure(payment.application_id, payment.dealer_id, [("deposit", payment.amount, 0)])
                done += 1
        return done
