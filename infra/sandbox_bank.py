"""TEST MODE's stand-in for the customer's bank at 3-D Secure: the ``SandboxBank`` port and ``LocalStripeBank``, its
adapter for localstripe (the embedded default Stripe peer, RECIPES.md).

With a 3-D Secure test card a PaymentIntent waits in ``requires_action`` for the customer's bank. On Stripe that
step is Stripe.js's challenge or the page of ``next_action.redirect_to_url``; localstripe has neither (its
``next_action`` is ``use_stripe_sdk`` with an empty URL: infra/payments.py), only the endpoint its own stand-in for
Stripe.js calls from the browser — ``POST /v1/payment_intents/<id>/_authenticate?success=true|false`` with the
intent's client secret and any publishable key (localstripe 1.15, resources.py ``PaymentIntent._api_authenticate``).
The customer's phone cannot reach a loopback peer, so the BFF calls it for them, in TEST MODE only: the page says
so. Afterwards the intent is asked from Stripe as always; this adapter moves no money and decides nothing.
"""

from __future__ import annotations

import logging
from typing import Protocol

import requests

from infra.payments import PaymentsUnavailable

log = logging.getLogger(__name__)
#: localstripe takes any publishable key on this endpoint (server.py ``auth_middleware``); no secret key is sent
_PUBLISHABLE = "pk_test_localstripe_bank"


class SandboxBank(Protocol):
    """The customer's bank answering a 3-D Secure check, in TEST MODE."""

    def authenticate(self, intent_id: str, client_secret: str, *, success: bool) -> None:
        """Complete (``success``) or fail the check of the PaymentIntent ``intent_id``; the caller then asks Stripe
        for the intent. :class:`PaymentsUnavailable` when the bank cannot be reached."""
        ...


class LocalStripeBank:
    """``SandboxBank`` on the localstripe at ``api_base``."""

    def __init__(self, api_base: str, *, timeout: float = 10.0) -> None:
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LocalStripeBank(api_base={self.api_base!r})"

    def authenticate(self, intent_id: str, client_secret: str, *, success: bool) -> None:
        """POST localstripe's ``_authenticate``. A refusal (4xx: the intent no longer waits, a second tap; 402: the
        card was then declined) is logged, not raised: the intent as Stripe has it afterwards says what happened."""
        if not intent_id.startswith("pi_") or "/" in intent_id:
            raise ValueError(f"not a PaymentIntent id: {intent_id!r}")
        url = f"{self.api_base}/v1/payment_intents/{intent_id}/_authenticate"
        try:
            answer = requests.post(url, params={"success": "true" if success else "false"},
                                   data={"key": _PUBLISHABLE, "client_secret": client_secret}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PaymentsUnavailable(f"the test bank could not be reached: {type(exc).__name__}") from None
        if answer.status_code >= 500:
            raise PaymentsUnavailable(f"the test bank failed (HTTP {answer.status_code})")
        if answer.status_code != 200:
            log.info("test bank: %s answered HTTP %s", intent_id, answer.status_code)
