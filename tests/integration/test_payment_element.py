"""The production payment UI over real HTTP with a real localstripe: with a publishable key the payment page opens
Stripe.js's Payment Element for one line (its PaymentIntent's client secret only for someone who may pay, never
cached, the CSP admitting Stripe on that page only), the return URL applies Stripe's own state and never the query
string's, a hold is card-only with manual capture while a CNY charge offers Alipay and WeChat Pay, and reloads or
taps at once make one intent. Without the key, TEST MODE's page carries no client secret and the strict CSP.

The customer's confirmation in the browser is played by :func:`confirm_as_customer` (Stripe.js itself is
exercised against a sandbox in tests/e2e/test_payment_element_browser.py). localstripe keeps no
payment method types, so what the BFF sends is read at a recording pass-through in front of it."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask

from bff.config import ConfigError
from bff.config import Settings
from infra.sms import TEMPLATES
from tests.common.stripe_element import RecordingProxy
from tests.common.stripe_element import confirm_as_customer
from tests.common.stripe_element import publishable_key
from tests.common.stripe_element import recording_proxy
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import s3_config
from tests.conftest import stripe_config
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import SALES_B
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import DEPOSIT_FREE
from tests.integration.test_payments import OPS
from tests.integration.test_payments import intents
from tests.integration.test_payments import opened
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application
from tests.integration.test_payments import status

pytestmark = pytest.mark.db
CSP = "Content-Security-Policy"


@dataclass
class ElementBff:
    url: str
    app: Flask
    key: str
    sent: RecordingProxy


@pytest.fixture(scope="module")
def proxy(stripe_server: Any) -> Iterator[tuple[RecordingProxy, str]]:
    yield from recording_proxy(stripe_server)


@pytest.fixture(scope="module")
def element(db_url: str, s3_server: Any, risk_server: Any, contract_server: Any, stripe_server: Any,
            proxy: tuple[RecordingProxy, str]) -> Iterator[ElementBff]:
    """The BFF with a publishable key (the Payment Element), talking to localstripe through the recorder."""
    recorder, url = proxy
    key = publishable_key()
    app = build_app(db_url, **s3_config(s3_server), risk_url=risk_server.url, contract_url=contract_server.url,
                    **{**stripe_config(stripe_server), "stripe_api_base": url}, stripe_publishable_key=key)
    try:
        with LiveServer(app) as server:
            yield ElementBff(server.url, app, key, recorder)
    finally:
        app.extensions["leaseline"].db.dispose()


def page(s: requests.Session, base: str, app_id: str, pay: str | None = None) -> requests.Response:
    return s.get(f"{base}/applications/{app_id}/payment", params={"pay": pay} if pay else None, timeout=TIMEOUT)


def checkout(html: str) -> dict[str, str]:
    """The data- attributes of the page's Payment Element section (empty when there is none)."""
    found = re.search(r'<section id="checkout"(.*?)>', html, re.S)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', found.group(1))) if found else {}


def directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in csp.split("; ")}


def sent_types(form: dict[str, str]) -> list[str]:
    """``allowed_payment_method_types`` as sent (``payment_method_types`` is not writable since API 2026-09-30)."""
    assert not [k for k in form if k.startswith("payment_method_types")]
    return [form[f"allowed_payment_method_types[{i}]"] for i in range(10)
            if f"allowed_payment_method_types[{i}]" in form]


def test_the_page_opens_the_payment_element_for_the_chosen_line(element: ElementBff, stripe_server: Any) -> None:
    base, app = element.url, element.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        plain = page(sales, base, app_id)
        assert plain.status_code == 200 and plain.headers["Cache-Control"] == "no-store"
        due = payments(app, app_id)
        # looking makes no PaymentIntent; each line offers its own checkout, and no TEST MODE card choice
        assert all(p.intent_id is None for p in due.values())
        assert not checkout(plain.text) and "js.stripe.com" not in plain.text + plain.headers[CSP]
        for p in due.values():
            assert f'href="/applications/{app_id}/payment?pay={p.id}#checkout" data-testid="pay-{p.kind}"' in plain.text
        assert 'data-testid="method-upfront"' not in plain.text

        r = page(sales, base, app_id, due["upfront"].id)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
        upfront = payments(app, app_id)["upfront"]
        intent = stripe_server.gateway().retrieve_intent(upfront.intent_id)
        assert (intent.amount, intent.status, intent.metadata["attempt"]) == (upfront.amount,
                                                                               "requires_payment_method", "1")
        assert upfront.status == "pending"
        attrs = checkout(r.text)
        assert attrs["client-secret"] == intent.client_secret and attrs["publishable-key"] == element.key
        assert attrs["return-url"] == f"{base}/applications/{app_id}/payments/{upfront.id}/return"
        assert attrs["kind"] == "upfront" and attrs["locale"] == "zh"
        # Stripe.js from Stripe and our own script, nothing inline; the CSP admits Stripe on this page
        assert '<script src="https://js.stripe.com/v3/" defer></script>' in r.text and "/static/js/payment.js" in r.text
        assert re.findall(r"<script(?![^>]*\bsrc=)", r.text) == []
        csp = directives(r.headers[CSP])
        assert {"https://js.stripe.com", "https://*.js.stripe.com"} <= set(csp["script-src"])
        assert {"https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"} <= set(csp["frame-src"])
        assert "https://api.stripe.com" in csp["connect-src"] and csp["frame-ancestors"] == ["'none'"]
        # a reload (or a second tab) shows the same intent; the deposit has its own
        assert checkout(page(sales, base, app_id, upfront.id).text)["client-secret"] == intent.client_secret
        deposit_secret = checkout(page(sales, base, app_id, due["deposit"].id).text)["client-secret"]
        deposit = payments(app, app_id)["deposit"]
        assert deposit_secret == stripe_server.gateway().retrieve_intent(deposit.intent_id).client_secret
        assert deposit_secret != intent.client_secret
        # elsewhere in this mode the CSP stays strict
        assert "stripe" not in sales.get(f"{base}/applications", timeout=TIMEOUT).headers[CSP]
    assert len(intents(stripe_server, upfront.id)) == 1
    # an intent waiting for its customer is no mismatch for reconciliation
    assert [p for p in app.extensions["leaseline"].payments.reconciliation.reconcile()
            if p.get("payment") == upfront.id] == []


def test_test_mode_has_no_client_secret_and_the_strict_csp(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        r = page(sales, base, app_id, upfront.id)
        assert 'data-testid="test-mode"' in r.text and 'data-testid="method-upfront"' in r.text
        assert not checkout(r.text) and "js.stripe.com" not in r.text
        # the notice of the transfer abroad, where the person decides to pay (what the consent text promised)
        assert 'data-testid="cross-border-notice"' in r.text and "Stripe, Inc.（美国）" in r.text
        csp = directives(r.headers[CSP])
        assert csp["script-src"] == ["'self'"] and csp["connect-src"] == ["'self'"] and "frame-src" not in csp
        # a 3-D Secure attempt leaves an intent (with a client secret at Stripe): never on the page either
        r = sales.post(f"{base}/applications/{app_id}/payments/{upfront.id}/pay", timeout=TIMEOUT,
                       data={"method": "3ds", "csrf_token": csrf(sales, f"{base}/applications/{app_id}/payment")})
        assert r.status_code == 200
        intent = stripe_server.gateway().retrieve_intent(payments(app, app_id)["upfront"].intent_id)
        again = page(sales, base, app_id, upfront.id)
        assert intent.client_secret and intent.client_secret not in again.text and "_secret_" not in again.text


def test_the_return_url_applies_stripe_s_state_never_the_query_string(element: ElementBff,
                                                                        stripe_server: Any) -> None:
    base, app = element.url, element.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        due = opened(sales, base, app, app_id)
        secret = checkout(page(sales, base, app_id, due["upfront"].id).text)["client-secret"]
        upfront = payments(app, app_id)["upfront"]
        back = f"{base}/applications/{app_id}/payments/{upfront.id}/return"
        # a forged "succeeded" on an intent nobody confirmed: nothing changes, and the same form is offered again
        forged = sales.get(back, timeout=TIMEOUT, allow_redirects=False, params={
            "payment_intent": upfront.intent_id, "payment_intent_client_secret": secret,
            "redirect_status": "succeeded"})
        # on to the payment page at an address without the client secret Stripe appended (history, the language
        # switch's and the sign-in's "next")
        assert forged.status_code == 303
        assert forged.headers["Location"] == f"/applications/{app_id}/payment?returned={upfront.id}#checkout"
        forged = sales.get(f"{base}{forged.headers['Location']}", timeout=TIMEOUT)
        assert forged.status_code == 200 and 'data-outcome="pending"' in forged.text
        assert checkout(forged.text)["client-secret"] == secret
        assert "payment_intent_client_secret" not in forged.text and "redirect_status" not in forged.text
        assert payments(app, app_id)["upfront"].status == "pending" and payments(app, app_id)["upfront"].captured == 0
        assert stripe_server.gateway().retrieve_intent(upfront.intent_id).status == "requires_payment_method"
        assert status(app, app_id) == "signed"
        # the customer pays in the browser; Stripe sends them back (whatever the query string says)
        confirm_as_customer(stripe_server, upfront.intent_id)
        r = sales.get(back, timeout=TIMEOUT, params={"payment_intent": "pi_someone_else", "redirect_status": "failed"})
        assert r.status_code == 200 and 'data-outcome="succeeded"' in r.text and not checkout(r.text)
        assert r.url == f"{base}/applications/{app_id}/payment?returned={upfront.id}"
        paid = payments(app, app_id)["upfront"]
        assert paid.status == "succeeded" and paid.captured == paid.amount
        assert "payment" in [k for k, _ in app.extensions["leaseline"].applications.repo.outbox(app_id)]
        # then the deposit, and the lease is ready for delivery
        page(sales, base, app_id, due["deposit"].id)
        deposit = payments(app, app_id)["deposit"]
        confirm_as_customer(stripe_server, str(deposit.intent_id))
        r = sales.get(f"{base}/applications/{app_id}/payments/{deposit.id}/return", timeout=TIMEOUT)
        assert 'data-outcome="succeeded"' in r.text and 'data-testid="ready"' in r.text
    assert status(app, app_id) == "ready_for_delivery"
    assert [i.status for i in intents(stripe_server, upfront.id)] == ["succeeded"]


def test_stripe_refusing_a_request_is_a_page_that_says_so_never_a_500(element: ElementBff) -> None:
    """Stripe answering a 4xx (here: an intent it does not know, e.g. deleted in test mode or of another account)
    to the page opening a line, to the return from Stripe or to "check again": a 409 page with the message."""
    base, app = element.url, element.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        app.extensions["leaseline"].payments.store.set_fields(upfront.id, intent_id="pi_unknown_to_stripe_0123")
        for r in (page(sales, base, app_id, upfront.id),
                  sales.get(f"{base}/applications/{app_id}/payments/{upfront.id}/return", timeout=TIMEOUT),
                  sales.post(f"{base}/applications/{app_id}/payments/{upfront.id}/refresh", timeout=TIMEOUT,
                             data={"csrf_token": csrf(sales, f"{base}/applications/{app_id}/payment")})):
            assert r.status_code == 409, r.text[:300]
            assert 'data-testid="payment-error"' in r.text and not checkout(r.text)
            assert r.headers["Cache-Control"] == "no-store"
    assert payments(app, app_id)["upfront"].status == "pending"


def test_only_who_may_pay_gets_the_client_secret(element: ElementBff, stripe_server: Any) -> None:
    base, app = element.url, element.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        due = opened(sales, base, app, app_id)
        secret = checkout(page(sales, base, app_id, due["upfront"].id).text)["client-secret"]
    upfront = payments(app, app_id)["upfront"]
    with sign_in(base, SALES_B) as other_dealer:
        for url in (f"{base}/applications/{app_id}/payment?pay={upfront.id}",
                    f"{base}/applications/{app_id}/payments/{upfront.id}/return"):
            r = other_dealer.get(url, timeout=TIMEOUT)
            assert r.status_code == 404 and secret not in r.text
    with sign_in(base, OPS) as ops:  # the lessor's ops may look, not pay: no checkout, no intent made
        r = page(ops, base, app_id, due["deposit"].id)
        assert r.status_code == 200 and not checkout(r.text) and secret not in r.text
        assert "js.stripe.com" not in r.headers[CSP]
    assert payments(app, app_id)["deposit"].intent_id is None
    with requests.Session() as anonymous:
        r = anonymous.get(f"{base}/applications/{app_id}/payment?pay={upfront.id}", timeout=TIMEOUT,
                          allow_redirects=False)
        assert r.status_code in (302, 303) and secret not in r.text
    # and the TEST MODE form is refused in this mode
    with sign_in(base, SALES_A) as sales:
        r = sales.post(f"{base}/applications/{app_id}/payments/{upfront.id}/pay", timeout=TIMEOUT,
                       data={"method": "visa", "csrf_token": csrf(sales, f"{base}/applications/{app_id}/payment")})
        assert r.status_code == 422
    assert [i.status for i in intents(stripe_server, upfront.id)] == ["requires_payment_method"]


def test_a_hold_is_card_only_and_manual_and_a_charge_offers_alipay_and_wechat_pay(element: ElementBff,
                                                                                  stripe_server: Any) -> None:
    base, app = element.url, element.app
    app_id = signed_application(app, DEPOSIT_FREE)
    with sign_in(base, SALES_A) as sales:
        due = opened(sales, base, app, app_id)
        assert set(due) == {"upfront", "hold"}
        shown = {kind: checkout(page(sales, base, app_id, p.id).text) for kind, p in due.items()}
        hold, upfront = payments(app, app_id)["hold"], payments(app, app_id)["upfront"]
        [hold_sent] = element.sent.creates(hold.id)
        [upfront_sent] = element.sent.creates(upfront.id)
        # Stripe's API: https://docs.stripe.com/api/payment_intents/create
        assert sent_types(hold_sent) == ["card"] and hold_sent["capture_method"] == "manual"
        assert not [k for k in hold_sent if k.startswith("payment_method_options")]
        assert sent_types(upfront_sent) == ["card", "alipay", "wechat_pay"]
        assert upfront_sent["payment_method_options[wechat_pay][client]"] == "web"
        assert "capture_method" not in upfront_sent
        for sent, p in ((hold_sent, hold), (upfront_sent, upfront)):
            assert (sent["currency"], sent["amount"], sent["metadata[ui]"]) == ("cny", str(p.amount), "payment_element")
            assert "confirm" not in sent and "payment_method" not in sent
            assert sent["Idempotency-Key"] == p.attempt_key and sent["Idempotency-Key"].startswith(f"pay:{p.id}:")
        assert shown["hold"]["methods"] == "card" and shown["upfront"]["methods"] == "card alipay wechat_pay"
        assert stripe_server.gateway().retrieve_intent(str(hold.intent_id)).capture_method == "manual"
        with pytest.raises(ValueError, match="hold"):  # the gateway refuses a hold with Alipay before Stripe would
            stripe_server.gateway().create_intent(amount=hold.amount, currency="cny", idempotency_key="never-sent",
                                                  metadata={}, manual_capture=True, methods=("card", "alipay"))
        # the customer authorises the hold with a card
        confirm_as_customer(stripe_server, str(hold.intent_id))
        r = sales.get(f"{base}/applications/{app_id}/payments/{hold.id}/return", timeout=TIMEOUT)
        assert 'data-outcome="held"' in r.text
        # the page says what the contract says of the hold (issue 16 §5): frozen, not charged, lapsing; taken from
        # only for sums due and unpaid, after a written notice naming them
        listed = page(sales, base, app_id).text
        assert "冻结 7 天后自动失效" in listed and "书面通知您列明的款项后" in listed and "不会扣款" not in listed
    held = payments(app, app_id)["hold"]
    assert held.status == "held" and held.captured == 0 and held.held_until is not None


def test_taps_and_reloads_at_once_make_one_intent(element: ElementBff, stripe_server: Any) -> None:
    base, app = element.url, element.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        answers: list[requests.Response] = []

        def tap() -> None:
            answers.append(page(sales, base, app_id, upfront.id))

        taps = [threading.Thread(target=tap) for _ in range(4)]
        for t in taps:
            t.start()
        for t in taps:
            t.join()
    assert [r.status_code for r in answers] == [200] * 4
    assert len({checkout(r.text)["client-secret"] for r in answers}) == 1
    assert len(element.sent.creates(upfront.id)) == 1 and len(intents(stripe_server, upfront.id)) == 1
    assert payments(app, app_id)["upfront"].attempts == 1


def test_an_intent_stripe_can_no_longer_confirm_gives_way_to_a_new_attempt(element: ElementBff,
                                                                           stripe_server: Any) -> None:
    base, app = element.url, element.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        first = checkout(page(sales, base, app_id, upfront.id).text)["client-secret"]
        old = str(payments(app, app_id)["upfront"].intent_id)
        stripe_server.gateway().cancel(old, idempotency_key=f"test-cancel-{old}")  # e.g. in Stripe's dashboard
        second = checkout(page(sales, base, app_id, upfront.id).text)["client-secret"]
    now = payments(app, app_id)["upfront"]
    assert second != first and now.intent_id != old and now.attempts == 2 and now.status == "pending"
    assert sorted(i.status for i in intents(stripe_server, upfront.id)) == ["canceled", "requires_payment_method"]


# -- configuration ------------------------------------------------------------------------------------------------
PRODUCTION = {"LEASELINE_ENV": "production", "LEASELINE_SECRET_KEY": "s" * 40, "LEASELINE_PII_KEY": "k" * 44,
              "LEASELINE_STRIPE_SECRET_KEY": "sk_live_0123456789", "LEASELINE_STRIPE_WEBHOOK_SECRET": "whsec_x",
              "LEASELINE_S3_SECRET_KEY": "s3-secret", "LEASELINE_DATABASE_URL": "postgresql://u@db/leaseline",
              "LEASELINE_PUBLIC_URL": "https://app.leaseline.example",
              # production sends texts through Tencent Cloud SMS (tests/integration/test_sms.py checks these)
              "LEASELINE_SMS": "tencent", "LEASELINE_TENCENT_SMS_SECRET_ID": "AKID",
              "LEASELINE_TENCENT_SMS_SECRET_KEY": "k", "LEASELINE_TENCENT_SMS_APP_ID": "1400006666",
              # an approved template id for each of infra/sms.py TEMPLATES (production refuses a map without one)
              "LEASELINE_TENCENT_SMS_TEMPLATES": json.dumps({name: str(1110001 + i)
                                                             for i, name in enumerate(sorted(TEMPLATES))})}


@pytest.mark.parametrize(("env", "problem"), [
    (PRODUCTION, "LEASELINE_STRIPE_PUBLISHABLE_KEY is required in production"),
    ({**PRODUCTION, "LEASELINE_STRIPE_PUBLISHABLE_KEY": "sk_live_0123456789"}, "must be a Stripe publishable key"),
    ({**PRODUCTION, "LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_test_0123456789"}, "both be test keys or both live"),
    ({"LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_test_0123456789"}, "cannot reach a local emulator"),
])
def test_the_publishable_key_is_checked_at_start_up(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings.from_env(env)


def test_the_publishable_key_chooses_the_payment_element() -> None:
    assert Settings.from_env({}).stripe_publishable_key == ""  # the embedded default: TEST MODE
    live = Settings.from_env({**PRODUCTION, "LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_live_0123456789"})
    assert live.stripe_publishable_key == "pk_live_0123456789" and live.stripe_api_base == ""
    stripe_test_account = Settings.from_env({"LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_test_0123456789",
                                             "LEASELINE_STRIPE_SECRET_KEY": "sk_test_0123456789",
                                             "LEASELINE_STRIPE_API_BASE": ""})
    assert stripe_test_account.stripe_publishable_key == "pk_test_0123456789"


@pytest.mark.parametrize(("value", "production"), [
    ("", True), ("app.leaseline.example", True), ("http://app.leaseline.example", True),
    ("https://app.leaseline.example/?x=1", True), ("https://app.leaseline.example/#pay", True), ("https://", True),
    ("https://app.leaseline.example/x?", True), ("ftp://app.leaseline.example", False), ("evil.example/x?", False),
])
def test_the_public_address_is_checked_at_start_up(value: str, production: bool) -> None:
    """``LEASELINE_PUBLIC_URL``, the address texts send the customer to (the rent's pay page): required in production,
    absolute with a host and nothing after the path, https in production."""
    env = {**PRODUCTION, "LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_live_0123456789"} if production else {}
    with pytest.raises(ConfigError, match="LEASELINE_PUBLIC_URL"):
        Settings.from_env({**env, "LEASELINE_PUBLIC_URL": value})


def test_the_public_address_is_taken_from_the_settings() -> None:
    live = {**PRODUCTION, "LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_live_0123456789"}
    assert Settings.from_env(live).public_url == "https://app.leaseline.example"
    assert Settings.from_env({**live, "LEASELINE_PUBLIC_URL": "https://leaseline.example/app/"}).public_url == \
        "https://leaseline.example/app"
    assert Settings.from_env({}).public_url == "http://127.0.0.1:8000"  # development: the embedded server
    assert Settings.from_env({"LEASELINE_PUBLIC_URL": "http://10.0.0.5:8000"}).public_url == "http://10.0.0.5:8000"
