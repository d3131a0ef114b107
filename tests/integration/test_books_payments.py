"""The origination's money in the books (issue 19 §1), through the real BFF, localstripe and signed webhooks: the
upfront payment and the deposit captured, refunded in part by ops and outside Leaseline, the dealer's share
transferred — each posted once, in the transaction of its state change, also when Stripe's webhook comes first, comes
again (a replay) or comes after our own answer. The Stripe reconciliation and fee postings are tested at the HTTP
boundary against Stripe's documented shapes (and localstripe's legacy balance history) in the last tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bff.bootstrap import payment_services
from books.origination import DEALERS
from books.origination import DEPOSITS
from books.origination import FEES
from books.origination import INSURERS
from books.origination import PROCESSOR_FEES
from books.origination import STRIPE
from books.origination import UNAPPLIED
from books.origination import VAT_OUTPUT
from books.origination import to_fen
from infra.applications import Scope
from infra.books import entry_of
from infra.db.models import JournalEntryRow
from infra.payments import StripeGateway
from infra.payments import sign_webhook
from infra.stripe_books import Difference
from infra.stripe_books import StripeBooksJob
from infra.stripe_books import reconcile_stripe
from tests.common.stripe import FakeStripe
from tests.common.stripe import fake_stripe
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_payments import OPS
from tests.integration.test_payments import SALES_A
from tests.integration.test_payments import opened
from tests.integration.test_payments import pay
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application
from tests.integration.test_stripe_gateway import TRANSFER_FIXTURE

pytestmark = pytest.mark.db
#: fees and premiums paid upfront (``u``), rents in advance (``v``): the upfront payment has all four parts
UPFRONT_EXTRAS = "20-36-0-ctpl+damage+tpl_1m-D-u-v"



def vat(fen: int) -> int:
    """The VAT included in a tax-inclusive sum of a direct lease at 13 % (in force since 2019-04-01), from the
    definition: half_up(fen × 13 / 113) (books/vat.py not used)."""
    return int(Fraction(fen * 13, 113) + Fraction(1, 2))

def sides(app: Any, key: str) -> dict[str, int]:
    """The posted entry ``key``: account → debit − credit."""
    with app.extensions["leaseline"].db.session() as session:
        found = entry_of(session, key)
    assert found is not None, f"no entry {key}"
    out: dict[str, int] = {}
    for line in found.lines:
        out[line.account] = out.get(line.account, 0) + line.debit - line.credit
    return out


def keys_like(app: Any, pattern: str) -> list[str]:
    with app.extensions["leaseline"].db.session() as session:
        return list(session.scalars(select(JournalEntryRow.key).where(JournalEntryRow.key.like(pattern))
                                    .order_by(JournalEntryRow.id)))


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps({"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
                       "created": int(time.time()), "data": {"object": obj}}).encode()


def webhook(base: str, app: Any, payload: bytes) -> str:
    secret = app.config["SETTINGS"].stripe_webhook_secret
    r = requests.post(f"{base}/webhooks/stripe", data=payload, timeout=TIMEOUT, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign_webhook(payload, secret)})
    assert r.status_code == 200, r.text[:300]
    return str(r.json()["outcome"])


def refund(base: str, app_id: str, payment_id: str, fen: int, reason: str) -> None:
    url = f"{base}/applications/{app_id}/payment"
    with sign_in(base, OPS) as ops:
        r = ops.post(f"{base}/applications/{app_id}/payments/{payment_id}/refund",
                     data={"amount": f"{fen / 100:.2f}", "reason": reason, "csrf_token": csrf(ops, url)},
                     timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]


def test_the_deposit_captured_by_webhook_then_refunded_posts_each_once(bff_server: Any, stripe_server: Any) -> None:
    """The deposit's webhook overtakes our own answer: the service asks Stripe, moves the payment and posts the capture
    in that transaction; the event again, the same news under another event id, and our late answer post nothing more.
    Ops refund a part (posted once); a refund made in Stripe's dashboard, reported by ``charge.refunded``, is posted
    once (its replay and an event reporting only what is known post nothing)."""
    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    started = datetime.now(UTC)
    app_id = signed_application(app, UPFRONT_EXTRAS)
    with sign_in(base, SALES_A) as sales:
        deposit = opened(sales, base, app, app_id)["deposit"]
    claimed = components.payments.store.claim_attempt(deposit.id, f"pay:{deposit.id}:books")
    assert claimed is not None
    metadata = {"payment_id": deposit.id, "application_id": app_id, "kind": "deposit",
                "attempt": str(claimed.attempts)}
    gateway = stripe_server.gateway()
    intent = gateway.create_intent(amount=deposit.amount, currency="cny", idempotency_key=f"books-{deposit.id}",
                                   confirm=True, payment_method="pm_card_visa", metadata=metadata)
    assert intent.status == "succeeded"
    body = {"id": intent.id, "object": "payment_intent", "amount": deposit.amount, "currency": "cny",
            "status": "succeeded", "metadata": metadata, "capture_method": "automatic", "created": intent.created}
    succeeded = event("payment_intent.succeeded", body)
    assert webhook(base, app, succeeded) == "applied"
    key = f"payment:{deposit.id}:captured"
    assert sides(app, key) == {STRIPE: deposit.amount, DEPOSITS: -deposit.amount}
    assert webhook(base, app, succeeded) == "replay"
    assert webhook(base, app, event("payment_intent.succeeded", {**body, "amount_received": deposit.amount})) \
        .startswith("ignored")
    components.payments.checkout.intents.apply_intent(deposit.id, gateway.retrieve_intent(intent.id))  # late answer
    assert keys_like(app, f"payment:{deposit.id}:%") == [key]

    # ops refund a third of it
    third = deposit.amount // 3
    refund(base, app_id, deposit.id, third, "保证金部分退还 books test")
    (made,) = components.payments.store.refunds(deposit.id)
    assert made.status == "succeeded"
    assert sides(app, f"refund:{made.id}") == {DEPOSITS: third, STRIPE: -third}
    charge_refunded = {"id": f"ch_{uuid.uuid4().hex[:16]}", "object": "charge", "payment_intent": intent.id,
                       "currency": "cny", "amount": deposit.amount, "amount_refunded": third}
    assert webhook(base, app, event("charge.refunded", charge_refunded)) == "ignored: refunds known"
    # a refund made in Stripe's dashboard: reported by its webhook, posted once under the total it reports
    gateway.refund(intent.id, amount=500, idempotency_key=f"outside-{deposit.id}")
    outside = event("charge.refunded", {**charge_refunded, "amount_refunded": third + 500})
    assert webhook(base, app, outside) == "applied: refunded outside"
    assert webhook(base, app, outside) == "replay"
    assert webhook(base, app, event("charge.refunded", {**charge_refunded, "amount_refunded": third + 500})) \
        == "ignored: refunds known"
    assert sides(app, f"payment:{deposit.id}:refunded:{third + 500}") == {DEPOSITS: 500, STRIPE: -500}
    assert keys_like(app, f"refund:{made.id}%") == [f"refund:{made.id}"]
    assert payments(app, app_id)["deposit"].refunded == third + 500

    # localstripe's legacy balance history (fees 0): the charge, our refund and the one made outside agree with the
    # books; the charge's intent and the refunds' are read from their sources as Stripe would expand them
    result = reconcile_stripe(components.db, gateway, since=started, now=datetime.now(UTC),
                              overlap=timedelta(seconds=2))
    ours = {intent.id, made.stripe_refund_id, deposit.id, f"payment:{deposit.id}:captured", f"refund:{made.id}",
            f"payment:{deposit.id}:refunded:{third + 500}"}
    assert [d for d in result.differences if {d.stripe_id, d.key} & ours] == []
    assert result.transactions >= 3 and not [k for k in result.posted if k.startswith("fee:")]


@pytest.fixture(scope="module")
def connect_server() -> Iterator[tuple[FakeStripe, str]]:
    yield from fake_stripe()


def test_the_upfront_payment_posts_its_parts_then_the_share_and_a_refund(
        bff_server: Any, stripe_server: Any, connect_server: tuple[FakeStripe, str]) -> None:
    """The customer pays the upfront payment (our answer records it): Dr the Stripe clearing account, Cr the dealer's
    down payment, the fees, the premiums (the insurer's) and the first rent in advance (the lessee's until the lease
    starts); Stripe's webhook after it posts nothing more. The dealer's share transferred through Connect (at the HTTP
    boundary: localstripe has no transfers) posts once however often the payout runs; a partial refund by ops gives
    back the lessor's parts first."""
    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    app_id = signed_application(app, UPFRONT_EXTRAS)
    plan = components.applications.repo.get(app_id, Scope()).plan
    quote = plan["quote"]
    assert plan["choice"]["extras_financed"] is False and quote["timing"] == "advance"
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        assert pay(sales, base, app_id, upfront.id).status_code == 200
    paid = payments(app, app_id)["upfront"]
    assert paid.status == "succeeded" and paid.captured == upfront.amount
    down, fees, first = (to_fen(quote["down_payment"]), to_fen(quote["credit_fees"]),
                         to_fen(quote["schedule"][0]["payment"]))
    premiums = upfront.amount - down - fees - first
    assert fees > 0 and premiums > 0 and first > 0
    key = f"payment:{upfront.id}:captured"
    # the fees are income net of the VAT they include, Output the tax (issue 19 §3)
    assert sides(app, key) == {STRIPE: upfront.amount, DEALERS: -down, FEES: -(fees - vat(fees)),
                               VAT_OUTPUT: -vat(fees), INSURERS: -premiums, UNAPPLIED: -first}
    # Stripe's webhook of the same success, after our answer: nothing more
    late = {"id": paid.intent_id, "object": "payment_intent", "amount": upfront.amount, "currency": "cny",
            "status": "succeeded", "amount_received": upfront.amount, "capture_method": "automatic",
            "metadata": {"payment_id": upfront.id, "application_id": app_id, "kind": "upfront",
                         "attempt": str(paid.attempts)}}
    assert webhook(base, app, event("payment_intent.succeeded", late)).startswith("ignored")
    assert keys_like(app, f"payment:{upfront.id}:%") == [key]

    fake, url = connect_server
    fake.answers[("POST", "/v1/transfers")] = (200, {**TRANSFER_FIXTURE, "amount": paid.dealer_share})
    connect = payment_services(components.payments.store, StripeGateway("sk_test_fake_0123456789", api_base=url,
                                                                        timeout=2, max_network_retries=0),
                               components.applications.repo, components.payments.checkout.deposit_ratio,
                               dealer_account=lambda dealer_id: "acct_1MTfjCQ9PRzxEwkZ").payouts
    try:
        connect.pay_out_dealers()
        connect.pay_out_dealers()
    finally:
        fake.answers.clear()
        fake.requests.clear()
    assert payments(app, app_id)["upfront"].transfer_status == "sent"
    assert sides(app, f"transfer:{upfront.id}") == {DEALERS: down, STRIPE: -down}
    assert keys_like(app, f"transfer:{upfront.id}%") == [f"transfer:{upfront.id}"]

    # ops refund the fees and a yuan of the premiums: the lessor's parts go back first
    refund(base, app_id, upfront.id, fees + 100, "手续费退还 books test")
    (made,) = components.payments.store.refunds(upfront.id)
    # all the fees given back: their VAT with them, to the fen
    assert sides(app, f"refund:{made.id}") == {FEES: fees - vat(fees), VAT_OUTPUT: vat(fees), INSURERS: 100,
                                               STRIPE: -(fees + 100)}


def balance_transaction(txn_id: str, kind: str, amount: int, source: object, *, fee: int = 0) -> dict[str, Any]:
    """A balance transaction as Stripe's API reference shows it (https://docs.stripe.com/api/balance_transactions/
    object: the example object's fields; ``fee_details`` as its Fee objects), with ``source`` expanded or an id."""
    created = int(time.time()) - 60
    return {"id": txn_id, "object": "balance_transaction", "amount": amount, "available_on": created + 2 * 86_400,
            "created": created, "currency": "cny", "description": None, "exchange_rate": None, "fee": fee,
            "fee_details": [{"amount": fee, "application": None, "currency": "cny",
                             "description": "Stripe processing fees", "type": "stripe_fee"}] if fee else [],
            "net": amount - fee, "reporting_category": {"payout": "payout", "stripe_fee": "fee"}.get(kind, kind),
            "source": source, "status": "pending", "type": kind}


def test_stripe_s_fees_and_payouts_post_once_and_differences_are_listed(
        app: Any, connect_server: tuple[FakeStripe, str]) -> None:
    """At the HTTP boundary (localstripe reports fees as 0, has no transfers and no current path): Stripe's balance
    transactions in the documented shape. The charge's fee, a stripe_fee and a payout post once each (a second run
    posts nothing); the charge, a refund and the dealer's transfer agree with the books; a charge of an intent we do
    not know, a charge whose amount differs from our capture and a capture of ours Stripe did not report are
    listed."""
    components = app.extensions["leaseline"]
    store = components.payments.store
    started = datetime.now(UTC) - timedelta(seconds=1)
    app_id = signed_application(app, UPFRONT_EXTRAS)
    lines = {p.kind: p for p in components.payments.checkout.payments(components.applications.repo.get(app_id,
                                                                                                       Scope()))}
    upfront, deposit = lines["upfront"], lines["deposit"]
    tag = uuid.uuid4().hex[:12]
    pi_up, pi_dep, re_up, tr_up = f"pi_up{tag}", f"pi_dep{tag}", f"re_up{tag}", f"tr_up{tag}"
    assert store.move(upfront.id, "pending", "succeeded", intent_id=pi_up, captured=upfront.amount) is not None
    assert store.move(deposit.id, "pending", "succeeded", intent_id=pi_dep, captured=deposit.amount) is not None
    made = store.add_refund(upfront.id, 1_000, "books test", None)
    assert made is not None
    store.finish_refund(made.id, re_up, "succeeded")
    unreported = store.add_refund(upfront.id, 700, "books test: Stripe does not report it", None)
    assert unreported is not None
    store.finish_refund(unreported.id, f"re_gone{tag}", "succeeded")
    assert store.transfer_sent(upfront.id, tr_up, upfront.dealer_share)
    assert not store.transfer_sent(upfront.id, tr_up, upfront.dealer_share)  # recorded once
    stranger = f"pi_stranger{tag}"
    fake, url = connect_server
    fake.answers[("GET", "/v1/balance_transactions")] = (200, {"object": "list", "url": "/v1/balance_transactions",
                                                               "has_more": False, "data": [
        balance_transaction(f"txn_up{tag}", "charge", upfront.amount,
                            {"id": f"ch_up{tag}", "object": "charge", "payment_intent": pi_up}, fee=1_234),
        balance_transaction(f"txn_re{tag}", "refund", -1_000,
                            {"id": re_up, "object": "refund", "payment_intent": pi_up}),
        balance_transaction(f"txn_tr{tag}", "transfer", -upfront.dealer_share, tr_up),
        balance_transaction(f"txn_dep{tag}", "charge", deposit.amount - 1,
                            {"id": f"ch_dep{tag}", "object": "charge", "payment_intent": pi_dep}),
        balance_transaction(f"txn_po{tag}", "payout", -500_000, f"po_{tag}"),
        balance_transaction(f"txn_sf{tag}", "stripe_fee", -300, None),
        balance_transaction(f"txn_x{tag}", "charge", 4_200,
                            {"id": f"ch_x{tag}", "object": "charge", "payment_intent": stranger}, fee=150),
    ]})
    gateway = StripeGateway("sk_test_fake_0123456789", api_base=url, timeout=2, max_network_retries=0)
    try:
        first = reconcile_stripe(components.db, gateway, since=started, now=datetime.now(UTC))
        again = reconcile_stripe(components.db, gateway, since=started, now=datetime.now(UTC))
        job = StripeBooksJob(components.db, gateway, components.audit).run()  # the worker's daily duty
        asked = [r for r in fake.requests if r.path == "/v1/balance_transactions"]
    finally:
        fake.answers.clear()
        fake.requests.clear()
    assert len(asked) == 3 and asked[0].method == "GET"
    assert [k for k in first.posted if tag in k] == [f"fee:txn_up{tag}", f"payout:txn_po{tag}", f"fee:txn_sf{tag}",
                                                    f"fee:txn_x{tag}"]
    assert [k for k in again.posted if tag in k] == []
    assert sides(app, f"fee:txn_up{tag}") == {PROCESSOR_FEES: 1_234, STRIPE: -1_234}
    assert sides(app, f"fee:txn_sf{tag}") == {PROCESSOR_FEES: 300, STRIPE: -300}
    assert sides(app, f"payout:txn_po{tag}") == {"Assets:Bank:Collections": 500_000, STRIPE: -500_000}
    mine = {pi_up, pi_dep, re_up, tr_up, stranger, f"payment:{upfront.id}:captured", f"payment:{deposit.id}:captured",
            f"refund:{made.id}", f"refund:{unreported.id}", f"transfer:{upfront.id}"}
    found = sorted((d for d in first.differences if {d.stripe_id, d.key} & mine), key=lambda d: d.problem)
    assert found == [Difference("amount", pi_dep, f"payment:{deposit.id}:captured", deposit.amount,
                                deposit.amount - 1),
                     Difference("not_at_stripe", None, f"refund:{unreported.id}", -700, None),
                     Difference("not_in_books", stranger, None, None, 4_200)]
    assert sorted((d for d in again.differences if {d.stripe_id, d.key} & mine), key=lambda d: d.problem) == found
    # the job keeps what disagrees where ops look: the audit log (and an error line each in the log)
    assert not job.reconciled and job.posted == ()
    (kept, *_) = components.audit.search(action="books.stripe_reconciliation")
    assert kept.outcome == "failure"
    assert {"problem": "not_in_books", "stripe_id": stranger, "key": None, "ours": None, "stripe": 4_200} in \
        kept.details["differences"]


def test_a_server_without_the_current_path_is_read_at_the_legacy_balance_history(
        connect_server: tuple[FakeStripe, str]) -> None:
    """A server that answers /v1/balance_transactions 404 is read at the legacy /v1/balance/history (the path Stripe
    renamed), up to the first transaction before ``created_gte`` (newest first: no later page is asked for) and a
    charge's source retrieved as Stripe would have expanded it."""
    fake, url = connect_server
    now = int(time.time())
    charge = {"id": "ch_legacy", "object": "charge", "amount": 4_200, "payment_intent": "pi_legacy"}
    fake.answers[("GET", "/v1/balance/history")] = (200, {"object": "list", "url": "/v1/balance/history",
                                                          "has_more": True, "data": [  # read no further than txn_old
        {**balance_transaction("txn_new", "charge", 4_200, "ch_legacy"), "created": now},
        {**balance_transaction("txn_old", "charge", 1_000, "ch_legacy"), "created": now - 7_200}]})
    fake.answers[("GET", "/v1/charges/ch_legacy")] = (200, charge)
    gateway = StripeGateway("sk_test_fake_0123456789", api_base=url, timeout=2, max_network_retries=0)
    try:
        got = list(gateway.balance_transactions(created_gte=now - 3_600))
        paths = [r.path for r in fake.requests]
    finally:
        fake.answers.clear()
        fake.requests.clear()
    assert [t["id"] for t in got] == ["txn_new"] and got[0]["source"] == charge
    assert paths == ["/v1/balance_transactions", "/v1/balance/history", "/v1/charges/ch_legacy"]


def deposits_of(app: Any, *keys: str) -> int:
    """Liabilities:Deposits:Lessees in the entries ``keys`` (debit − credit: a credit is what the lessee is owed)."""
    with app.extensions["leaseline"].db.session() as session:
        return sum(line.debit - line.credit for key in keys for line in (entry_of(session, key) or _no(key)).lines
                   if line.account == DEPOSITS)


def _no(key: str) -> Any:
    raise AssertionError(f"no entry {key}")


def test_a_deduction_at_closing_leaves_the_deposit_for_fees_and_its_rest_is_refunded(bff_server: Any,
                                                                                      stripe_server: Any) -> None:
    """Ops close a lease outside servicing with a deduction (a sum due under the contract, kept from the deposit):
    the closing posts it — Dr the lessee's deposit / Cr Income:Other:Fees —, the settle job refunds the rest, and
    nothing of this lessee's deposit is left in Liabilities:Deposits:Lessees. A live hold captured for a deduction
    the deposit does not cover credits the part it covers to fees, not to the deposit."""
    from bff.payments.settlement import settlement_refund_id
    from tests.integration.test_payment_settlement import DEPOSIT
    from tests.integration.test_payment_settlement import DEPOSIT_FREE
    from tests.integration.test_payment_settlement import delivered_lease
    from tests.integration.test_payment_settlement import lines
    from tests.integration.test_payment_settlement import staff_actor
    from tests.integration.test_payment_settlement import term_ended

    app = bff_server.app
    service = app.extensions["leaseline"].payments
    app_id = delivered_lease(bff_server, DEPOSIT)
    term_ended(app, app_id)
    deposit = lines(app, app_id)["deposit"]
    application = app.extensions["leaseline"].applications.repo.get(app_id, Scope())
    service.settlement.close(staff_actor(app, OPS), application, 12_345, "未付租金：第 36 期")
    # kept as income net of the VAT it includes (12,345 × 13/113 = 1,420.18: 1,420 fen)
    assert sides(app, f"deduction:{app_id}") == {DEPOSITS: 12_345, FEES: -(12_345 - 1_420), VAT_OUTPUT: -1_420}
    assert app_id in service.settlement.settle(only=app_id)["settled"]
    assert deposits_of(app, f"payment:{deposit.id}:captured", f"deduction:{app_id}",
                       f"refund:{settlement_refund_id(app_id)}") == 0

    free = delivered_lease(bff_server, DEPOSIT_FREE)
    term_ended(app, free, holds_lapse=False)  # a hold still authorised (the settle job captures the deduction)
    hold = lines(app, free)["hold"]
    service.settlement.close(staff_actor(app, OPS), app.extensions["leaseline"].applications.repo.get(free, Scope()),
                             2_000, "逾期违约金：第 3 期")
    with app.extensions["leaseline"].db.session() as session:
        assert entry_of(session, f"deduction:{free}") is None  # no deposit to keep it from
    assert free in service.settlement.settle(only=free)["settled"]
    assert sides(app, f"payment:{hold.id}:captured") == {STRIPE: 2_000, FEES: -(2_000 - 230), VAT_OUTPUT: -230}


def test_after_the_lease_started_a_refund_never_takes_the_first_rent_out_of_unapplied(bff_server: Any) -> None:
    """Rents in advance: the upfront payment held the first rent in Unapplied and the lease's commencement applied it
    to rent 1 (paid at signing). Ops may still refund the lessor's own parts (fees, premiums), but a refund reaching
    the first rent is refused — servicing does not reopen rent 1 — and nothing moves; a refund made outside
    Leaseline that reaches it posts what the lessee owes back to Assets:Receivable:Lessees. Rent 1 stays paid and the
    lease sub-ledger reconciles; Unapplied of the application is never debited past what it held."""
    from books.lease import OTHER_RECEIVABLE
    from infra.books_reconcile import lease_differences
    from infra.db.models import InstalmentRow
    from infra.db.models import JournalLineRow
    from infra.db.models import LeaseRow
    from infra.servicing import SqlServicing
    from infra.vat_points import post_tax_points
    from tests.integration.test_books_lease import START
    from tests.integration.test_servicing_close import open_lease
    from tests.integration.test_servicing_close import record

    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    store = components.payments.store
    app_id = signed_application(app, UPFRONT_EXTRAS)
    quote = components.applications.repo.get(app_id, Scope()).plan["quote"]
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        assert pay(sales, base, app_id, upfront.id).status_code == 200
    fees, first = to_fen(quote["credit_fees"]), to_fen(quote["schedule"][0]["payment"])
    premiums = upfront.amount - to_fen(quote["down_payment"]) - fees - first
    lease_id = open_lease(SqlServicing(components.db), record(START, timing="advance"), app_id)
    assert lease_id is not None

    assert store.add_refund(upfront.id, fees + premiums + 1, "首期租金退还 books test", None) is None
    assert store.get(upfront.id).refunded == 0
    lessor = store.add_refund(upfront.id, fees + premiums, "手续费、保费退还 books test", None)
    assert lessor is not None
    store.finish_refund(lessor.id, "re_books_lessor", "succeeded")
    assert sides(app, f"refund:{lessor.id}") == {FEES: fees - vat(fees), VAT_OUTPUT: vat(fees), INSURERS: premiums,
                                                 STRIPE: -(fees + premiums)}
    assert store.add_refund(upfront.id, 1, "books test", None) is None

    total = fees + premiums + 500
    assert store.raise_refunded(upfront.id, total)
    assert sides(app, f"payment:{upfront.id}:refunded:{total}") == {OTHER_RECEIVABLE: 500, STRIPE: -500}
    with components.db.session() as s:
        rent1 = s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number == 1))
        assert rent1.one().state == "paid"
        starts_on = s.get(LeaseRow, lease_id).starts_on
        # the tax points of its rents due by then, as the closes post them (this test runs none)
        post_tax_points(s, datetime.now(UTC).date() + timedelta(days=1), [lease_id], datetime.now(UTC))
        for on in (starts_on, datetime.now(UTC).date() + timedelta(days=1)):  # before and after the refunds
            assert lease_differences(s, [lease_id], on=on) == []
        unapplied = s.execute(select(JournalLineRow.debit - JournalLineRow.credit).join(
            JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id).where(
            JournalLineRow.account == UNAPPLIED,
            (JournalEntryRow.key == f"refund:{lessor.id}")
            | JournalEntryRow.key.like(f"payment:{upfront.id}:refunded:%"))).scalars().all()
        assert not any(unapplied)
