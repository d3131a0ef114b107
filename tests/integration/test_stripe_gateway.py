"""StripeGateway against a real localstripe (infra.peers.LocalStripe), and at the HTTP boundary against a tiny
fake Stripe for what localstripe lacks: Connect transfers, destination charges, Stripe's current object shape,
its error answers and the headers we send. Webhook signatures are checked offline and as localstripe sends them."""

from __future__ import annotations

import json
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from infra.payments import PaymentDeclined
from infra.payments import PaymentRefused
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable
from infra.payments import StripeGateway
from infra.payments import WebhookInvalid
from infra.payments import sign_webhook
from infra.payments import verify_webhook
from infra.peers import LocalStripe
from infra.peers import PeerError
from tests.common.stripe import FakeStripe
from tests.common.stripe import StripeServer
from tests.common.stripe import fake_stripe
from tests.common.stripe import stripe_server


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def tag() -> dict[str, str]:
    return {"test_run": uuid.uuid4().hex[:12]}


@pytest.fixture(scope="module")
def stripe_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeServer]:
    yield from stripe_server(tmp_path_factory)


@pytest.fixture(scope="module")
def gateway(stripe_peer: StripeServer) -> StripeGateway:
    return stripe_peer.gateway()


# -- against localstripe ------------------------------------------------------------------------------------------


def test_pay_succeeds_with_the_amounts_in_fen(gateway: StripeGateway) -> None:
    before = int(time.time())
    intent = gateway.create_intent(amount=1_234_56, currency="CNY", idempotency_key=key(),
                                   metadata={"lease": "L-1", **tag()}, payment_method="pm_card_visa", confirm=True)
    assert gateway.test_mode
    assert intent.id.startswith("pi_") and intent.status == "succeeded"
    assert (intent.amount, intent.amount_received, intent.amount_capturable, intent.amount_refunded) == (
        123456, 123456, 0, 0)
    assert intent.currency == "cny" and intent.capture_method == "automatic"  # localstripe: automatic_async
    assert intent.metadata["lease"] == "L-1"
    assert intent.client_secret and intent.client_secret.startswith(f"{intent.id}_secret_")
    assert intent.next_action_url is None and intent.last_error is None
    assert before - 5 <= intent.created <= time.time() + 5
    assert gateway.retrieve_intent(intent.id) == intent


def test_description_and_return_url_are_sent_and_left_out_for_localstripe(stripe_peer: StripeServer) -> None:
    """localstripe refuses them ("Unexpected description, return_url"); Stripe needs return_url for redirects."""
    fresh = stripe_peer.gateway()
    for _ in range(2):  # the second call leaves them out at once
        intent = fresh.create_intent(amount=5000, currency="cny", idempotency_key=key(), metadata=tag(),
                                     payment_method="pm_card_visa", confirm=True, description="Leaseline L-1 upfront",
                                     return_url="https://leaseline.example/back")
        assert intent.status == "succeeded"


def test_confirm_later(gateway: StripeGateway) -> None:
    created = gateway.create_intent(amount=8800, currency="cny", idempotency_key=key(), metadata=tag(),
                                    payment_method="pm_card_visa")
    assert created.status == "requires_confirmation" and created.amount_received == 0
    confirmed = gateway.confirm_intent(created.id, idempotency_key=key())
    assert confirmed.status == "succeeded" and confirmed.amount_received == 8800


def test_hold_then_partial_capture(gateway: StripeGateway) -> None:
    hold = gateway.create_intent(amount=50_000_00, currency="cny", idempotency_key=key(), metadata=tag(),
                                 payment_method="pm_card_visa", confirm=True, manual_capture=True)
    assert hold.status == "requires_capture" and hold.capture_method == "manual"
    assert (hold.amount_capturable, hold.amount_received, hold.amount_refunded) == (5_000_000, 0, 0)

    captured = gateway.capture(hold.id, idempotency_key=key(), amount=1_200_00)
    assert captured.status == "succeeded"
    # localstripe books the released 38 800 yuan as a refund on the charge (pre-2025 Stripe): not a refund to us
    assert (captured.amount_received, captured.amount_capturable, captured.amount_refunded) == (120_000, 0, 0)
    assert list(gateway.list_refunds(payment_intent=hold.id)) == []

    gateway.refund(hold.id, amount=200_00, idempotency_key=key())
    after = gateway.retrieve_intent(hold.id)
    assert (after.amount_received, after.amount_refunded) == (120_000, 20_000)
    assert [r.amount for r in gateway.list_refunds(payment_intent=hold.id)] == [20_000]


def test_hold_then_release(gateway: StripeGateway) -> None:
    hold = gateway.create_intent(amount=30_000_00, currency="cny", idempotency_key=key(), metadata=tag(),
                                 payment_method="pm_card_visa", confirm=True, manual_capture=True)
    released = gateway.cancel(hold.id, idempotency_key=key())
    assert released.status == "canceled"
    assert (released.amount_received, released.amount_capturable, released.amount_refunded) == (0, 0, 0)
    assert gateway.retrieve_intent(hold.id) == released
    # (Stripe refuses to capture a canceled intent; localstripe captures it: the caller's state must prevent it)


def test_refund_partly_then_the_rest(gateway: StripeGateway) -> None:
    paid = gateway.create_intent(amount=10_000, currency="cny", idempotency_key=key(), metadata=tag(),
                                 payment_method="pm_card_visa", confirm=True)
    first = gateway.refund(paid.id, amount=2_500, idempotency_key=key(), reason="requested_by_customer",
                           metadata={"refund_id": "R-1"})
    assert first.id.startswith("re_") and first.payment_intent == paid.id
    assert (first.amount, first.status, first.metadata) == (2_500, "succeeded", {"refund_id": "R-1"})
    assert first.reason is None  # localstripe does not keep a reason (it refuses the parameter)
    assert gateway.retrieve_intent(paid.id).amount_refunded == 2_500

    gateway.refund(paid.id, amount=7_500, idempotency_key=key())
    after = gateway.retrieve_intent(paid.id)
    assert (after.amount_received, after.amount_refunded, after.status) == (10_000, 10_000, "succeeded")
    assert sorted(r.amount for r in gateway.list_refunds(payment_intent=paid.id)) == [2_500, 7_500]
    assert {r.id for r in gateway.list_refunds()} >= {first.id}


def test_bad_arguments_never_reach_stripe(gateway: StripeGateway) -> None:
    for bad in (0, -5, 12.5, True):
        with pytest.raises(ValueError):
            gateway.create_intent(amount=bad, currency="cny", idempotency_key=key(), metadata={})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gateway.create_intent(amount=100, currency="yuan", idempotency_key=key(), metadata={})
    with pytest.raises(ValueError):
        gateway.create_intent(amount=100, currency="cny", idempotency_key="", metadata={})
    with pytest.raises(ValueError):
        gateway.refund("pi_x", amount=100, idempotency_key=key(), reason="changed my mind")


def test_a_declined_card(gateway: StripeGateway) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        gateway.create_intent(amount=5000, currency="cny", idempotency_key=key(), metadata=tag(),
                              payment_method="pm_card_chargeCustomerFail", confirm=True)
    assert isinstance(declined.value, PaymentsError)
    assert declined.value.code == "card_declined" and declined.value.message == "Your card was declined."
    assert declined.value.intent is None  # localstripe's error names the charge only (Stripe's names the intent)


def test_3d_secure_requires_action_until_the_bank_says_yes(stripe_peer: StripeServer, gateway: StripeGateway) -> None:
    card = gateway.card_payment_method("4000000000003220")
    assert card.startswith("pm_")
    intent = gateway.create_intent(amount=6600, currency="cny", idempotency_key=key(), metadata=tag(),
                                   payment_method=card, confirm=True)
    assert intent.status == "requires_action" and intent.amount_received == 0
    assert intent.next_action_url is None  # localstripe: next_action use_stripe_sdk with an empty stripe_js URL
    raw = requests.get(f"{stripe_peer.api_base}/v1/payment_intents/{intent.id}", timeout=5,
                       headers={"Authorization": f"Bearer {stripe_peer.secret_key}"}).json()
    assert raw["next_action"]["type"] == "use_stripe_sdk"
    # localstripe's stand-in for the bank's page (what its Stripe.js calls)
    answer = requests.post(f"{stripe_peer.api_base}/v1/payment_intents/{intent.id}/_authenticate", timeout=5,
                           data={"client_secret": intent.client_secret, "success": "true", "key": "pk_test_x"})
    assert answer.status_code == 200
    after = gateway.retrieve_intent(intent.id)
    assert after.status == "succeeded" and after.amount_received == 6600


def test_card_numbers_only_in_test_mode() -> None:
    live = StripeGateway("sk_live_not_a_real_key", api_base="http://127.0.0.1:9")
    assert not live.test_mode
    with pytest.raises(ValueError):
        live.card_payment_method("4242424242424242")


def test_list_intents_pages_and_filters_on_created(gateway: StripeGateway) -> None:
    mine = tag()
    start = int(time.time())
    made = {gateway.create_intent(amount=100 + i, currency="cny", idempotency_key=key(), metadata=mine,
                                  payment_method="pm_card_visa", confirm=True).id for i in range(3)}
    listed = {i.id for i in gateway.list_intents() if i.metadata.get("test_run") == mine["test_run"]}
    assert listed == made
    since = {i.id for i in gateway.list_intents(created_gte=start - 1) if i.metadata == mine}
    assert since == made
    assert not [i for i in gateway.list_intents(created_gte=int(time.time()) + 3600)]


def test_unknown_intent_is_refused(gateway: StripeGateway) -> None:
    with pytest.raises(PaymentRefused) as refused:
        gateway.retrieve_intent("pi_doesnotexist")
    assert refused.value.status == 404


def test_connect_is_absent_from_localstripe(gateway: StripeGateway) -> None:
    with pytest.raises(PaymentRefused) as no_transfers:
        gateway.transfer(amount=1000, currency="cny", destination="acct_1", idempotency_key=key(), metadata={})
    assert no_transfers.value.status == 404
    with pytest.raises(PaymentRefused) as no_destination_charges:  # money routing is never dropped silently
        gateway.create_intent(amount=5000, currency="cny", idempotency_key=key(), metadata={},
                              payment_method="pm_card_visa", confirm=True, transfer_data=("acct_1", 1000))
    assert no_destination_charges.value.status == 400


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_stripe_is_unavailable_fast_and_keeps_the_key_secret() -> None:
    secret = f"sk_test_{uuid.uuid4().hex}"
    down = StripeGateway(secret, api_base=f"http://127.0.0.1:{closed_port()}", timeout=0.5, max_network_retries=0)
    began = time.monotonic()
    with pytest.raises(PaymentsUnavailable) as unavailable:
        down.create_intent(amount=100, currency="cny", idempotency_key=key(), metadata={})
    with pytest.raises(PaymentsUnavailable):
        down.retrieve_intent("pi_x")
    assert time.monotonic() - began < 3
    assert secret not in str(unavailable.value) and secret not in repr(down)


# -- the peer itself ----------------------------------------------------------------------------------------------


def test_local_stripe_peer_starts_stops_and_refuses_a_busy_port(tmp_path: Path) -> None:
    with LocalStripe(tmp_path / "a") as peer:
        assert peer.running and peer.started_in is not None and peer.started_in < 10
        assert "--from-scratch" in peer.command() and peer.log_path.is_file()
        with pytest.raises(ValueError):
            peer.register_webhook("ftp://example", "whsec_x")
        assert peer.port is not None
        with pytest.raises(PeerError, match="in use"):
            LocalStripe(tmp_path / "b", port=peer.port).start()
    assert not peer.running


# -- webhooks -----------------------------------------------------------------------------------------------------

SECRET = "whsec_test_0123456789"
EVENT = {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "created": 1_700_000_000,
         "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 100, "metadata": {"a": "b"}}}}


def test_webhook_sign_and_verify_round_trip() -> None:
    payload = json.dumps(EVENT).encode()
    header = sign_webhook(payload, SECRET)
    assert header.startswith("t=") and ",v1=" in header
    at = int(header.split(",")[0][2:])
    assert header == stripe.WebhookSignature.generate_signature_header(payload.decode(), SECRET, at)
    event = verify_webhook(payload, header, SECRET)
    assert event == EVENT and type(event["data"]["object"]) is dict


# The headers are signed when each case runs: signed at collection time, the valid ones would be stale (more than
# five minutes old) by the time a long suite reaches them.
@pytest.mark.parametrize(("payload", "header", "reason"), [
    (json.dumps(EVENT).encode(), lambda: sign_webhook(json.dumps(EVENT).encode(), "whsec_forged"), "bad signature"),
    (json.dumps({**EVENT, "id": "evt_2"}).encode(), lambda: sign_webhook(json.dumps(EVENT).encode(), SECRET),
     "bad signature"),
    (json.dumps(EVENT).encode(), lambda: "", "bad signature"),
    (json.dumps(EVENT).encode(), lambda: "t=oops", "bad signature"),
    (json.dumps(EVENT).encode(), lambda: sign_webhook(json.dumps(EVENT).encode(), SECRET, int(time.time()) - 301),
     "stale timestamp"),
    (b"not json", lambda: sign_webhook(b"not json", SECRET), "not JSON"),
    (b"[1, 2]", lambda: sign_webhook(b"[1, 2]", SECRET), "not JSON"),
    (b"\xff\xfe", lambda: sign_webhook(b"\xff\xfe", SECRET), "not JSON"),
], ids=["forged", "tampered", "no header", "garbled header", "stale", "not json", "json array", "not utf-8"])
def test_webhook_invalid(payload: bytes, header: Callable[[], str], reason: str) -> None:
    with pytest.raises(WebhookInvalid) as invalid:
        verify_webhook(payload, header(), SECRET)
    assert invalid.value.reason == reason
    assert SECRET not in str(invalid.value)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeStripe, str]]:
    yield from fake_stripe()


@pytest.fixture
def fake(fake_server: tuple[FakeStripe, str]) -> Iterator[FakeStripe]:
    app, _ = fake_server
    yield app
    app.answers.clear()
    app.requests.clear()


@pytest.fixture
def fake_gateway(fake_server: tuple[FakeStripe, str]) -> StripeGateway:
    return StripeGateway("sk_test_fake_0123456789", api_base=fake_server[1], timeout=2, max_network_retries=0)


def test_localstripe_delivers_signed_webhooks_that_verify(stripe_peer: StripeServer, gateway: StripeGateway,
                                                          fake_server: tuple[FakeStripe, str],
                                                          fake: FakeStripe) -> None:
    fake.answers[("POST", "/hooks/stripe")] = (200, {})
    stripe_peer.register_webhook(f"{fake_server[1]}/hooks/stripe", name="gateway-test")
    try:
        paid = gateway.create_intent(amount=4200, currency="cny", idempotency_key=key(), metadata=tag(),
                                     payment_method="pm_card_visa", confirm=True)
        deadline = time.monotonic() + 8
        event: dict[str, Any] | None = None
        while event is None and time.monotonic() < deadline:
            time.sleep(0.1)
            for got in [r for r in fake.requests if r.path == "/hooks/stripe"]:
                candidate = verify_webhook(got.body, got.headers["Stripe-Signature"], stripe_peer.webhook_secret)
                if candidate["data"]["object"]["id"] == paid.id:
                    event = candidate
        assert event is not None, "no webhook from localstripe"
        assert event["type"] == "payment_intent.succeeded"
    finally:  # localstripe cannot unregister: point it at a path that answers 404
        stripe_peer.register_webhook(f"{fake_server[1]}/gone", name="gateway-test")


# -- at the HTTP boundary: what localstripe lacks --------------------------------------------------------------------

# https://docs.stripe.com/api/transfers/object (the example Transfer object; amount, currency, metadata and
# transfer_group changed to ours)
TRANSFER_FIXTURE: dict[str, Any] = {
    "id": "tr_1MiN3gLkdIwHu7ixNCZvFdgA",
    "object": "transfer",
    "amount": 880_000,
    "amount_reversed": 0,
    "balance_transaction": "txn_1MiN3gLkdIwHu7ixxapQrznl",
    "created": 1678043844,
    "currency": "cny",
    "description": None,
    "destination": "acct_1MTfjCQ9PRzxEwkZ",
    "destination_payment": "py_1MiN3gQ9PRzxEwkZWTPGNq9o",
    "livemode": False,
    "metadata": {"application_id": "A-7", "kind": "dealer_payout"},
    "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                  "url": "/v1/transfers/tr_1MiN3gLkdIwHu7ixNCZvFdgA/reversals"},
    "reversed": False,
    "source_transaction": None,
    "source_type": "card",
    "transfer_group": "lease-A-7",
}

# https://docs.stripe.com/api/payment_intents/object (the example PaymentIntent object, API version
# 2026-04-22.dahlia), changed to ours: a destination charge waiting for 3-D Secure with a redirect
# (next_action.redirect_to_url as in https://docs.stripe.com/api/payment_intents/object#payment_intent_object-next_action)
PAYMENT_INTENT_FIXTURE: dict[str, Any] = {
    "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    "object": "payment_intent",
    "amount": 500_000,
    "amount_capturable": 0,
    "amount_details": {"tip": {}},
    "amount_received": 0,
    "application": None,
    "application_fee_amount": None,
    "automatic_payment_methods": {"enabled": True},
    "canceled_at": None,
    "cancellation_reason": None,
    "capture_method": "automatic_async",
    "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
    "confirmation_method": "automatic",
    "created": 1680800504,
    "currency": "cny",
    "customer": None,
    "description": None,
    "last_payment_error": None,
    "latest_charge": None,
    "livemode": False,
    "metadata": {"payment_id": "P-1"},
    "next_action": {"type": "redirect_to_url",
                    "redirect_to_url": {"return_url": "https://leaseline.example/back",
                                        "url": "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1&pi=pi_3"}},
    "on_behalf_of": None,
    "payment_method": "pm_1Q0PsIJvEtkwdCNYMSaVuRz6",
    "payment_method_options": {"card": {"installments": None, "mandate_options": None, "network": None,
                                        "request_three_d_secure": "automatic"}},
    "payment_method_types": ["card"],
    "processing": None,
    "receipt_email": None,
    "review": None,
    "setup_future_usage": None,
    "shipping": None,
    "source": None,
    "statement_descriptor": None,
    "statement_descriptor_suffix": None,
    "status": "requires_action",
    "transfer_data": {"destination": "acct_x", "amount": 1000},
    "transfer_group": None,
}

# https://docs.stripe.com/api/refunds/object (the example Refund object, amount and ids changed to ours)
REFUND_FIXTURE: dict[str, Any] = {
    "id": "re_1Nispe2eZvKYlo2Cd31jOCgZ", "object": "refund", "amount": 1000,
    "balance_transaction": "txn_1Nispe2eZvKYlo2CYezqFhEx", "charge": "ch_1NirD82eZvKYlo2CIvbtLWuY",
    "created": 1692942318, "currency": "cny", "metadata": {}, "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    "reason": "requested_by_customer", "receipt_number": None, "source_transfer_reversal": None,
    "status": "pending", "transfer_reversal": None,
}


def test_transfer_to_a_dealer(fake: FakeStripe, fake_gateway: StripeGateway) -> None:
    fake.answers[("POST", "/v1/transfers")] = (200, TRANSFER_FIXTURE)
    made = fake_gateway.transfer(amount=880_000, currency="CNY", destination="acct_1MTfjCQ9PRzxEwkZ",
                                 idempotency_key="payout:A-7", transfer_group="lease-A-7",
                                 metadata={"application_id": "A-7", "kind": "dealer_payout"})
    assert made.id == "tr_1MiN3gLkdIwHu7ixNCZvFdgA" and made.amount == 880_000 and made.currency == "cny"
    assert made.destination == "acct_1MTfjCQ9PRzxEwkZ" and made.metadata["kind"] == "dealer_payout"
    (sent,) = fake.requests
    assert sent.form == {"amount": "880000", "currency": "cny", "destination": "acct_1MTfjCQ9PRzxEwkZ",
                         "metadata[application_id]": "A-7", "metadata[kind]": "dealer_payout",
                         "transfer_group": "lease-A-7"}
    assert sent.headers["Idempotency-Key"] == "payout:A-7"
    assert sent.headers["Authorization"] == "Bearer sk_test_fake_0123456789"


def test_destination_charge_and_a_3d_secure_redirect(fake: FakeStripe, fake_gateway: StripeGateway) -> None:
    fake.answers[("POST", "/v1/payment_intents")] = (200, PAYMENT_INTENT_FIXTURE)
    intent = fake_gateway.create_intent(amount=500_000, currency="cny", idempotency_key="pay:P-1",
                                        metadata={"payment_id": "P-1"}, payment_method="pm_1Q0PsIJvEtkwdCNYMSaVuRz6",
                                        confirm=True, return_url="https://leaseline.example/back",
                                        transfer_data=("acct_x", 1000))
    (sent,) = fake.requests
    assert sent.form["transfer_data[destination]"] == "acct_x" and sent.form["transfer_data[amount]"] == "1000"
    assert sent.form["confirm"] == "true" and sent.form["return_url"] == "https://leaseline.example/back"
    assert sent.form["expand[0]"] == "latest_charge" and "capture_method" not in sent.form
    assert sent.headers["Idempotency-Key"] == "pay:P-1"
    assert intent.status == "requires_action" and intent.capture_method == "automatic"
    assert intent.next_action_url == "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1&pi=pi_3"
    assert (intent.amount, intent.amount_received, intent.amount_refunded) == (500_000, 0, 0)


def test_every_write_sends_its_idempotency_key(fake: FakeStripe, fake_gateway: StripeGateway) -> None:
    pi = PAYMENT_INTENT_FIXTURE["id"]
    for path in (f"/v1/payment_intents/{pi}/confirm", f"/v1/payment_intents/{pi}/capture",
                 f"/v1/payment_intents/{pi}/cancel"):
        fake.answers[("POST", path)] = (200, PAYMENT_INTENT_FIXTURE)
    fake.answers[("POST", "/v1/refunds")] = (200, REFUND_FIXTURE)
    fake_gateway.confirm_intent(pi, idempotency_key="k-confirm", payment_method="pm_card_visa")
    fake_gateway.capture(pi, idempotency_key="k-capture", amount=700)
    fake_gateway.cancel(pi, idempotency_key="k-cancel")
    refund = fake_gateway.refund(pi, amount=1000, idempotency_key="k-refund", reason="requested_by_customer",
                                 metadata={"refund_id": "R-9"})
    assert [(r.path.rsplit("/", 1)[-1], r.headers["Idempotency-Key"]) for r in fake.requests] == [
        ("confirm", "k-confirm"), ("capture", "k-capture"), ("cancel", "k-cancel"), ("refunds", "k-refund")]
    assert fake.requests[0].form["payment_method"] == "pm_card_visa"
    assert fake.requests[1].form["amount_to_capture"] == "700"
    assert fake.requests[3].form == {"payment_intent": pi, "amount": "1000", "reason": "requested_by_customer",
                                     "metadata[refund_id]": "R-9"}
    assert (refund.status, refund.reason, refund.payment_intent) == ("pending", "requested_by_customer", pi)


# https://docs.stripe.com/api/errors (a card error; payment_intent is the PaymentIntent at the time of the error)
DECLINE = {"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                     "doc_url": "https://docs.stripe.com/error-codes/card-declined",
                     "message": "Your card has insufficient funds.",
                     "payment_intent": {**PAYMENT_INTENT_FIXTURE, "status": "requires_payment_method",
                                        "next_action": None,
                                        "last_payment_error": {"type": "card_error", "code": "card_declined",
                                                               "decline_code": "insufficient_funds",
                                                               "message": "Your card has insufficient funds."}}}}


def test_stripe_errors_map_to_declined_unavailable_or_refused(fake: FakeStripe,
                                                              fake_server: tuple[FakeStripe, str]) -> None:
    secret = "sk_test_fake_0123456789"
    gateway = StripeGateway(secret, api_base=fake_server[1], timeout=2, max_network_retries=1)
    path = "/v1/payment_intents"

    fake.answers[("POST", path)] = (402, DECLINE)
    with pytest.raises(PaymentDeclined) as declined:
        gateway.create_intent(amount=100, currency="cny", idempotency_key="k-402", metadata={})
    assert declined.value.code == "insufficient_funds"
    assert declined.value.intent is not None and declined.value.intent.id == PAYMENT_INTENT_FIXTURE["id"]
    assert declined.value.intent.last_error == "insufficient_funds"

    fake.requests.clear()
    fake.answers[("POST", path)] = (503, {"error": {"type": "api_error", "message": "Service unavailable"}})
    with pytest.raises(PaymentsUnavailable):
        gateway.create_intent(amount=100, currency="cny", idempotency_key="k-503", metadata={})
    assert [r.headers["Idempotency-Key"] for r in fake.requests] == ["k-503", "k-503"]  # retried, same key

    fake.answers[("POST", path)] = (429, {"error": {"type": "invalid_request_error", "code": "rate_limit",
                                                    "message": "Too many requests"}})
    with pytest.raises(PaymentsUnavailable):
        gateway.create_intent(amount=100, currency="cny", idempotency_key="k-429", metadata={})

    fake.answers[("POST", path)] = (409, {"error": {"type": "idempotency_error", "message": "Keys for idempotent "
                                                    "requests can only be used with the same parameters"}})
    with pytest.raises(PaymentRefused) as reused:
        gateway.create_intent(amount=100, currency="cny", idempotency_key="k-409", metadata={})
    assert reused.value.status == 409

    fake.answers[("POST", path)] = (400, {"error": {"type": "invalid_request_error", "code": "parameter_unknown",
                                                    "param": "description", "message": "Received unknown parameter: "
                                                    "description"}})
    with pytest.raises(PaymentRefused):  # Stripe's wording: not localstripe's, nothing is dropped
        gateway.create_intent(amount=100, currency="cny", idempotency_key="k-400", metadata={}, description="x")

    fake.answers[("POST", path)] = (401, {"error": {"type": "invalid_request_error",
                                                    "message": f"Invalid API Key provided: {secret}"}})
    with pytest.raises(PaymentRefused) as unauthorized:
        gateway.create_intent(amount=100, currency="cny", idempotency_key="k-401", metadata={})
    assert unauthorized.value.status == 401
    assert secret not in str(unauthorized.value) and secret not in unauthorized.value.message
    assert secret not in "".join(traceback.format_exception(unauthorized.value))  # not chained either
