"""Issue 17 §6 review: TEST MODE's stand-in for the customer's bank (infra/sandbox_bank.py) completes 3-D Secure
checks for the customer. It exists only on a local fake Stripe (localstripe) with a test key, and never in
production: a live key on a loopback address (a tunnel, a proxy) must not get a button that answers the bank's check,
and the checkout refuses the bank's answer whenever the gateway is not in test mode."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from bff.applications.services import NotAllowed
from bff.bootstrap import payment_services
from bff.payments.checkout import CheckoutService
from infra.payments import StripeGateway
from infra.sandbox_bank import LocalStripeBank

LOCAL = "http://127.0.0.1:8420"


def wired(secret_key: str, api_base: str, **options: Any) -> Any:
    """The checkout's test bank as payment_services wires it for this key and Stripe address (nothing is called)."""
    store: Any = SimpleNamespace()
    repo: Any = SimpleNamespace()
    return payment_services(store, StripeGateway(secret_key, api_base=api_base), repo, Decimal("0.1"),
                            **options).checkout.bank


def test_the_test_bank_is_wired_only_on_localstripe_with_a_test_key_outside_production() -> None:
    assert isinstance(wired("sk_test_local", LOCAL, test_bank=True), LocalStripeBank)
    assert wired("sk_live_0123456789", LOCAL, test_bank=True) is None  # a live key, even on a loopback address
    assert wired("rk_live_0123456789", LOCAL, test_bank=True) is None
    assert wired("sk_test_local", LOCAL, test_bank=False) is None  # production
    assert wired("sk_test_local", LOCAL) is None  # not asked for (the CLI): none
    assert wired("sk_test_local", "https://api.stripe.com", test_bank=True) is None  # Stripe has its own pages


class _Bank:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def authenticate(self, intent_id: str, client_secret: str, *, success: bool) -> None:
        self.calls.append(intent_id)


def test_the_checkout_refuses_the_bank_s_answer_when_the_gateway_is_not_in_test_mode() -> None:
    bank = _Bank()
    payment = SimpleNamespace(id="pay_1", application_id="app_1", status="requires_action", intent_id="pi_1")
    store: Any = SimpleNamespace(get=lambda payment_id: payment)
    gateway: Any = SimpleNamespace(test_mode=False, retrieve_intent=lambda intent_id: pytest.fail("Stripe asked"))
    nothing: Any = SimpleNamespace()
    checkout = CheckoutService(store, gateway, nothing, nothing, Decimal("0.1"), local_stripe=True, bank=bank)
    app: Any = SimpleNamespace(id="app_1", status="signed")
    with pytest.raises(NotAllowed):
        checkout.authenticate(app, "pay_1", success=True)
    assert bank.calls == []
