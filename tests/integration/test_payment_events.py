"""Every Stripe webhook, in any order, against a payment in any state it can be in (issue 14, money integrity).

A property-based test. Hypothesis draws a payment line — the upfront payment, the deposit or the 免押 hold — in one of
the states it can be in (with what it captured and what was refunded of it), then a sequence of events: every
PaymentIntent event type we handle, ``charge.refunded`` and a type we do not handle, each about

- the intent we recorded for the payment, its body right or with another amount, currency, capture method, amount
  received or attempt;
- an earlier attempt's intent (Stripe's late word about an attempt that is over);
- an intent Stripe never made, its metadata naming the payment (a forged or misdirected event);
- someone else's intent (nothing of ours named);
- a real intent of the current attempt that we have not recorded yet (made on localstripe with Stripe's test card or
  the 3-D Secure one, as when the webhook overtakes our own answer, or the browser confirmed it), whatever the
  event's body says about it.

The events go one by one through ``WebhookService.handle_event`` on a real database (PostgreSQL), the service asking
localstripe about the intents it has not recorded. After each event, nothing that the event was not accepted for has
changed: neither the status nor the captured and refunded amounts (what is left to refund); 0 ≤ refunded ≤ captured ≤
amount always; the event's outcome says whether it was applied, ignored or refused (refused: kept for ops). At the end
the payment is what a reference model of the rules implies from the accepted events, and the lease became ready for
delivery only if an accepted event secured it.

The reference model restates the rules below; the transition table (``ALLOWED``) and the mapping of Stripe's
statuses (``from_intent``) are the machine's own, unit-tested in tests/unit/test_payment_machine.py.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import update

from bff.bootstrap import payment_services
from bff.payments.machine import ALLOWED
from bff.payments.machine import EVENT_STATUS
from bff.payments.machine import SECURED
from bff.payments.machine import from_intent
from infra.applications import Scope
from infra.db.models import ApplicationRow
from infra.db.models import PaymentRow
from infra.payments import PaymentsUnavailable
from infra.payments import StripeGateway
from tests.conftest import DATABASES
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.conftest import stripe_config
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import DEPOSIT_FREE
from tests.integration.test_payments import signed_application

pytestmark = pytest.mark.db
CAPTURED = ("succeeded", "captured")
#: the states each line can be in: a charge (upfront, deposit) is captured at once, the 免押 hold captured by hand
STATES = {"upfront": ("pending", "processing", "requires_action", "failed", "succeeded"),
          "deposit": ("pending", "processing", "requires_action", "failed", "succeeded"),
          "hold": ("pending", "processing", "requires_action", "failed", "held", "captured", "released", "expired")}
ATTEMPTS = 2  # the current attempt; attempt 1 is an earlier one


# -- a BFF of its own (no background resumer), two signed leases: one with a deposit, one 免押 ----------------------
@pytest.fixture(scope="module", params=DATABASES)
def bff(stripe_server: Any) -> Iterator[Any]:
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_events"):
        upgrade(url)
        app = build_app(url, **stripe_config(stripe_server))
        try:
            yield app
        finally:
            app.extensions["leaseline"].db.dispose()


@dataclass(frozen=True)
class Line:
    kind: str
    payment_id: str
    application_id: str
    amount: int


@pytest.fixture(scope="module")
def lines(bff: Any) -> dict[str, Line]:
    c = bff.extensions["leaseline"]
    found: dict[str, Line] = {}
    for plan, kinds in ((DEPOSIT, ("upfront", "deposit")), (DEPOSIT_FREE, ("hold",))):
        app_id = signed_application(bff, plan)
        for p in c.payments.checkout.payments(c.applications.repo.get(app_id, Scope())):
            if p.kind in kinds:
                found[p.kind] = Line(p.kind, p.id, app_id, p.amount)
    assert set(found) == {"upfront", "deposit", "hold"}
    return found


# -- the reference model ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    status: str
    captured: int
    refunded: int
    intent_id: str
    ready: bool = False  # an accepted event secured the lease (its other line is paid): ready for delivery


@dataclass(frozen=True)
class Facts:
    """What an event says (or, for an intent we have not recorded, what Stripe says) about a PaymentIntent."""

    intent_id: str
    status: str
    amount: int
    currency: str
    manual: bool
    received: int
    attempt: str | None
    error: bool


def expect_intent(m: Model, line: Line, about: str, facts: Facts) -> tuple[Model, str]:
    """The payment after a PaymentIntent event, and the outcome: applied, updated, ignored or refused."""
    if about == "stranger":
        return m, "ignored"
    if about == "earlier" or (facts.attempt is not None and facts.attempt.isdigit()
                              and int(facts.attempt) < ATTEMPTS):
        return m, "ignored"  # Stripe's late word about an attempt that is over: the current attempt decides
    if about == "forged" or facts.attempt not in (None, str(ATTEMPTS)):
        return m, "refused"  # Stripe never made it, or it claims an attempt we have not started
    if facts.amount != line.amount or facts.currency != "cny" or facts.manual != (line.kind == "hold"):
        return m, "refused"  # not what we asked Stripe for
    untried = facts.status == "requires_payment_method" and not facts.error
    target = m.status if untried else from_intent(facts.status, facts.manual)
    if target != m.status and target in ALLOWED[m.status]:
        if target == "succeeded" and facts.received != line.amount:
            return m, "refused"  # an automatic capture takes the whole amount
        if target == "captured" and not 0 < facts.received <= line.amount:
            return m, "refused"  # a capture of the hold takes some of it, never more
        captured = facts.received if target in CAPTURED else m.captured
        return Model(target, captured, m.refunded, facts.intent_id, m.ready or target in SECURED), "applied"
    if target == m.status and m.status in CAPTURED and facts.received != m.captured:
        return m, "refused"  # what Stripe received is final once it succeeded: a different figure is wrong
    if target == m.status and m.status not in SECURED and facts.intent_id != m.intent_id:
        return replace(m, intent_id=facts.intent_id), "updated"  # the current attempt's intent, first heard of
    return m, "ignored"


def expect_refund(m: Model, about: str, currency: str, refunded: int) -> tuple[Model, str]:
    """The payment after ``charge.refunded`` reporting ``refunded`` fen refunded in all on the charge."""
    if about == "stranger":
        return m, "ignored"
    if about != "recorded" or currency != "cny" or m.status not in CAPTURED or refunded > m.captured:
        return m, "refused"
    if refunded <= m.refunded:
        return m, "ignored"  # known already (our own refunds are counted when they are made)
    return replace(m, refunded=refunded), "applied"


# -- the events -----------------------------------------------------------------------------------------------
ABOUT = ["recorded"] * 4 + ["earlier", "forged", "stranger", "fresh"]
#: at most one thing wrong with an event (None: nothing), so that most sequences have events that are accepted
FLAWS = [None] * 7 + ["one_fen", "more", "usd", "capture", "no_attempt", "earlier_attempt", "later_attempt",
                      "received_zero", "received_all", "received_part", "received_over"]
step = st.fixed_dictionaries({
    "type": st.sampled_from([*EVENT_STATUS, "charge.refunded", "customer.created"]),
    "about": st.sampled_from(ABOUT),
    "flaw": st.sampled_from(FLAWS),
    "error": st.booleans(),
    "refunded": st.sampled_from(["part", "all", "over"]),
    "card": st.sampled_from(["visa", "visa", "3ds"]),  # a fresh intent's card: 3-D Secure leaves it requires_action
})


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["upfront", "deposit", "hold"]))
    status = draw(st.sampled_from(STATES[kind]))
    return {"kind": kind, "status": status, "part": draw(st.floats(0.01, 1.0)),
            "refunded": draw(st.floats(0.0, 1.0)), "steps": draw(st.lists(step, min_size=1, max_size=8))}


def start(c: Any, line: Line, status: str, part: float, refunded_share: float) -> Model:
    """Put the lease back at ``signed`` with its other line paid, and ``line`` in ``status``."""
    amount = line.amount
    captured = amount if status == "succeeded" else max(1, int(amount * part)) if status == "captured" else 0
    refunded = int(captured * refunded_share)
    recorded = f"pi_rec_{uuid.uuid4().hex[:16]}"
    held_until = datetime.now(UTC) + timedelta(days=7) if status == "held" else None
    with c.db.session() as session:
        session.execute(update(ApplicationRow).where(ApplicationRow.id == line.application_id).values(status="signed"))
        session.execute(update(PaymentRow).where(PaymentRow.application_id == line.application_id,
                                                 PaymentRow.id != line.payment_id).values(
            status="succeeded", captured=PaymentRow.amount, refunded=0, intent_id=None))
        session.execute(update(PaymentRow).where(PaymentRow.id == line.payment_id).values(
            status=status, captured=captured, refunded=refunded, intent_id=recorded, attempts=ATTEMPTS,
            attempt_key=f"pay:{line.payment_id}:{ATTEMPTS}", held_until=held_until, last_error=None,
            next_action_url=None))
    return Model(status, captured, refunded, recorded)


def received(flaw: str | None, status: str, amount: int) -> int:
    """What an event's object says was received: what Stripe would say for ``status`` (all of it once succeeded,
    nothing before), unless the flaw says otherwise."""
    if flaw is not None and flaw.startswith("received_"):
        figures = {"zero": 0, "all": amount, "part": max(1, amount // 3), "over": amount + 1}
        return figures[flaw.removeprefix("received_")]
    return amount if status == "succeeded" else 0


def intent_event(c: Any, stripe: Any, line: Line, m: Model, ev: dict[str, Any]) -> tuple[dict[str, Any], Facts]:
    """A PaymentIntent event's object, and the facts the service should go by."""
    flaw, status = ev["flaw"], EVENT_STATUS[ev["type"]]
    amount = {"one_fen": 1, "more": line.amount + 100}.get(flaw or "", line.amount)
    currency = "usd" if flaw == "usd" else "cny"
    manual = (line.kind == "hold") != (flaw == "capture")
    attempt = {"no_attempt": None, "earlier_attempt": "1", "later_attempt": str(ATTEMPTS + 1)}.get(
        flaw or "", str(ATTEMPTS))
    intent_id = {"recorded": m.intent_id, "earlier": f"pi_early_{uuid.uuid4().hex[:12]}",
                 "forged": f"pi_forged_{uuid.uuid4().hex[:12]}", "stranger": f"pi_else_{uuid.uuid4().hex[:12]}",
                 "fresh": ""}[ev["about"]]
    metadata: dict[str, str] = {} if ev["about"] == "stranger" else {
        "payment_id": line.payment_id, "application_id": line.application_id, "kind": line.kind}
    if ev["about"] in ("earlier", "fresh"):  # Stripe's body of a real intent carries the metadata we gave it
        attempt = "1" if ev["about"] == "earlier" else str(ATTEMPTS)
    if attempt is not None and metadata:
        metadata["attempt"] = attempt
    facts = Facts(intent_id, status, amount, currency, manual, received(flaw, status, line.amount), attempt,
                  ev["error"] and status == "requires_payment_method")
    if ev["about"] == "fresh":  # a real intent of the current attempt, its amount and capture method as drawn
        real = stripe.gateway().create_intent(
            amount=amount, currency="cny", idempotency_key=f"events-{uuid.uuid4().hex}",
            metadata={**metadata, "attempt": str(ATTEMPTS)}, confirm=True, manual_capture=manual,
            payment_method=c.payments.checkout.test_method(ev["card"]))
        facts = Facts(real.id, real.status, real.amount, real.currency, real.capture_method == "manual",
                      real.amount_received, str(ATTEMPTS), False)
        intent_id = real.id
    obj: dict[str, Any] = {
        "id": intent_id, "object": "payment_intent", "amount": amount,
        "amount_received": received(flaw, status, line.amount),
        "amount_capturable": amount if status == "requires_capture" else 0, "currency": currency,
        "status": status, "capture_method": "manual" if manual else "automatic", "metadata": metadata,
        "created": int(time.time()), "latest_charge": None, "next_action": None}
    if status == "requires_payment_method" and ev["error"]:
        obj["last_payment_error"] = {"code": "card_declined", "decline_code": "insufficient_funds"}
    return obj, facts


def refund_event(line: Line, m: Model, ev: dict[str, Any]) -> tuple[dict[str, Any], int]:
    intent_id = m.intent_id if ev["about"] == "recorded" else f"pi_{ev['about']}_{uuid.uuid4().hex[:12]}"
    refunded = {"part": max(1, line.amount // 3), "all": line.amount, "over": line.amount + 1}[ev["refunded"]]
    metadata = {} if ev["about"] == "stranger" else {"payment_id": line.payment_id, "kind": line.kind}
    return {"id": f"ch_{uuid.uuid4().hex[:16]}", "object": "charge", "payment_intent": intent_id,
            "amount": line.amount, "amount_captured": m.captured, "amount_refunded": refunded,
            "currency": "usd" if ev["flaw"] == "usd" else "cny", "captured": True, "status": "succeeded",
            "refunded": True, "metadata": metadata}, refunded


def _step(kind: str, about: str = "recorded", flaw: str | None = None, card: str = "visa") -> dict[str, Any]:
    return {"type": kind, "about": about, "flaw": flaw, "error": True, "refunded": "all", "card": card}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
# issue 14's findings: late events of the paid intent after its success; a forged 1-fen success naming the deposit
@example(scenario={"kind": "deposit", "status": "succeeded", "part": 1.0, "refunded": 0.0, "steps": [
    _step("payment_intent.processing"), _step("payment_intent.payment_failed"), _step("payment_intent.canceled"),
    _step("charge.refunded")]})
@example(scenario={"kind": "deposit", "status": "pending", "part": 1.0, "refunded": 0.0, "steps": [
    _step("payment_intent.succeeded", "forged", "one_fen"), _step("payment_intent.succeeded", "forged")]})
# a 3-D Secure intent of the current attempt first heard of by its webhook (recorded), then its success
@example(scenario={"kind": "upfront", "status": "requires_action", "part": 1.0, "refunded": 0.0, "steps": [
    _step("payment_intent.requires_action", "fresh", card="3ds"), _step("payment_intent.succeeded")]})
# a hold captured in part, then refunded in part outside Leaseline; a lapsed hold's late events
@example(scenario={"kind": "hold", "status": "held", "part": 1.0, "refunded": 0.0, "steps": [
    _step("payment_intent.processing"), _step("payment_intent.succeeded", flaw="received_part"),
    _step("payment_intent.amount_capturable_updated"), {**_step("charge.refunded"), "refunded": "part"}]})
@example(scenario={"kind": "hold", "status": "expired", "part": 1.0, "refunded": 0.0, "steps": [
    _step("payment_intent.amount_capturable_updated"), _step("payment_intent.processing"),
    _step("payment_intent.canceled"), _step("payment_intent.succeeded", flaw="received_part")]})
def test_no_event_changes_money_unless_it_is_accepted(bff: Any, lines: dict[str, Line], stripe_server: Any,
                                                      scenario: dict[str, Any]) -> None:
    c = bff.extensions["leaseline"]
    line = lines[scenario["kind"]]
    m = start(c, line, scenario["status"], scenario["part"], scenario["refunded"])
    for ev in scenario["steps"]:
        if ev["type"] in EVENT_STATUS:
            obj, facts = intent_event(c, stripe_server, line, m, ev)
            m_after, category = expect_intent(m, line, ev["about"], facts)
        elif ev["type"] == "charge.refunded":
            obj, refunded = refund_event(line, m, ev)
            m_after, category = expect_refund(m, ev["about"], obj["currency"], refunded)
        else:
            obj, m_after, category = {"id": f"cus_{uuid.uuid4().hex[:12]}", "object": "customer"}, m, "ignored"
        before = c.payments.store.get(line.payment_id)
        outcome = c.payments.webhooks.handle_event({"id": f"evt_{uuid.uuid4().hex}", "object": "event",
                                                    "type": ev["type"], "created": int(time.time()),
                                                    "data": {"object": obj}})
        p = c.payments.store.get(line.payment_id)
        assert p is not None and before is not None
        seen = (ev, outcome, before.status, p.status, p.captured, p.refunded)
        if not outcome.startswith("applied"):  # nothing of the money moves unless the event is accepted
            assert (p.status, p.captured, p.refunded) == (before.status, before.captured, before.refunded), seen
        assert 0 <= p.refunded <= p.captured <= p.amount, seen
        assert outcome.split(":")[0] == category, (seen, m, m_after)
        event(f"{category} {ev['about']}")  # shown by --hypothesis-show-statistics: what the examples covered
        assert (p.status, p.captured, p.refunded, p.intent_id) == (
            m_after.status, m_after.captured, m_after.refunded, m_after.intent_id), (seen, m_after)
        m = m_after
    app_status = c.applications.repo.get(line.application_id, Scope()).status
    assert (app_status == "ready_for_delivery") == m.ready, (app_status, m)


def test_an_event_that_cannot_be_checked_with_stripe_is_left_for_its_retry(bff: Any, lines: dict[str, Line],
                                                                           stripe_server: Any) -> None:
    """An intent we have not recorded is believed only as Stripe describes it: with Stripe unreachable the event is
    not applied and not kept as seen (the endpoint answers 503), so Stripe's retry of the same event applies it."""
    c = bff.extensions["leaseline"]
    line = lines["deposit"]
    start(c, line, "processing", 1.0, 0.0)
    metadata = {"payment_id": line.payment_id, "application_id": line.application_id, "kind": "deposit",
                "attempt": str(ATTEMPTS)}
    paid = stripe_server.gateway().create_intent(amount=line.amount, currency="cny", metadata=metadata,
                                                 idempotency_key=f"events-{uuid.uuid4().hex}",
                                                 payment_method="pm_card_visa", confirm=True)
    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.succeeded",
             "created": int(time.time()), "data": {"object": {
                 "id": paid.id, "object": "payment_intent", "amount": line.amount, "amount_received": line.amount,
                 "currency": "cny", "status": "succeeded", "capture_method": "automatic", "metadata": metadata}}}
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = payment_services(c.payments.store, StripeGateway("sk_test_unreachable",
                                                            api_base=f"http://127.0.0.1:{closed}", timeout=1,
                                                            max_network_retries=0),
                            c.applications.repo, c.payments.checkout.deposit_ratio).webhooks
    with pytest.raises(PaymentsUnavailable):
        down.handle_event(event)
    assert c.payments.store.get(line.payment_id).status == "processing"
    assert c.payments.webhooks.handle_event(event) == "applied"  # Stripe's retry: not taken for a replay
    done = c.payments.store.get(line.payment_id)
    assert (done.status, done.captured, done.intent_id) == ("succeeded", line.amount, paid.id)
    assert c.payments.webhooks.handle_event(event) == "replay"
