"""The demo journeys (bff/demo_journeys.py, run by `make run`) walk a lease to its signature through the real
services; run twice, they add nothing. After them, every entry the public evidence log serves is a commitment:
nothing in it names a person, a contract, an amount or a credit decision (PIPL)."""

from __future__ import annotations

import base64
import json
import random
import re
import time
from dataclasses import replace
from typing import Any

import pytest
import requests

from bff.demo_journeys import CUSTOMERS
from bff.demo_journeys import DemoCustomer
from bff.demo_journeys import code_reader
from bff.demo_journeys import journey
from bff.demo_journeys import run
from infra.applications import Scope
from tests.common.vins import fresh_vin
from tests.integration.test_reviews import persona_id

pytestmark = pytest.mark.db
TIMEOUT = 30
COMMITMENT_LEAF = re.compile(rb'\{"commitment":"[0-9a-f]{64}","v":2\}')
CHECKPOINT_FIELDS = {"origin", "tree_size", "root_hash", "timestamp", "signature", "public_key"}


@pytest.fixture(scope="module")
def walked(bff_server: Any, contract_server: Any) -> tuple[str, DemoCustomer]:
    """One demo customer walked to "ready for delivery" (signed and paid), with all their evidence sent."""
    components = bff_server.app.extensions["leaseline"]
    # a fresh ID number and mobile: the risk service's velocity rules count them across the suite; a car of its own
    card = replace(CUSTOMERS[0].card, id_number=persona_id("10"))
    customer = replace(CUSTOMERS[0], card=card, mobile=f"137{random.randrange(10**8):08d}", vin=fresh_vin())
    said: list[str] = []
    app_id = journey(bff_server.url, customer, code_reader(components.sms), said.append)
    assert said[-1].endswith("ready for delivery")
    repo = components.applications.repo
    deadline = time.monotonic() + 60  # the resumer sends the outbox every 2 s
    while any(at is None for _, at in repo.outbox(app_id)) or "payment" not in dict(repo.outbox(app_id)):
        assert time.monotonic() < deadline, repo.outbox(app_id)
        time.sleep(0.3)
    return app_id, customer


def test_a_demo_journey_ends_with_a_signed_contract_and_its_evidence(
        bff_server: Any, walked: tuple[str, DemoCustomer]) -> None:
    components = bff_server.app.extensions["leaseline"]
    app_id, _ = walked
    stored = components.applications.repo.get(app_id, Scope())
    assert stored.status == "ready_for_delivery" and stored.contract["status"] == "signed"
    kinds = {kind for kind, _ in components.applications.repo.outbox(app_id)}
    assert {"consent_given", "kyc_outcome", "plan_accepted", "risk_decision", "payment"} <= kinds


def test_demo_customers_who_have_an_application_are_skipped(bff_server: Any) -> None:
    walked = run(bff_server.url, lambda mobile: "", lambda id_number: True)
    assert walked == 0


def _sensitive(bff_server: Any, app_id: str, customer: DemoCustomer) -> list[str]:
    """What the walked lease's evidence is about: none of it may be readable in the public log."""
    components = bff_server.app.extensions["leaseline"]
    stored = components.applications.repo.get(app_id, Scope())
    quote = stored.plan["quote"]
    risk = stored.risk_result
    values = [app_id, stored.contract_id or "", stored.contract["number"], stored.contract["signed_sha256"],
              customer.card.name, customer.card.id_number, customer.mobile, str(quote["monthly_payment"]),
              str(quote["down_payment"]), str(risk.get("outcome")), str(risk.get("pd")), str(risk.get("id")),
              *[str(r.get("code")) for r in risk.get("reasons") or []]]
    for payment in components.payments.checkout.payments(stored):
        values += [payment.id, payment.intent_id or "", f"{payment.amount // 100}.{payment.amount % 100:02d}"]
    return [v for v in values if v and v != "None"]


def test_every_public_log_entry_is_a_commitment_and_names_nobody(
        bff_server: Any, contract_server: Any, walked: tuple[str, DemoCustomer]) -> None:
    """Walk every index the public API serves (the whole session's log: this journey's entries and every other
    test's): each leaf is the commitment format and nothing else; the first is the log's signed start
    statement, which holds log facts only."""
    app_id, customer = walked
    sensitive = _sensitive(bff_server, app_id, customer)
    assert len(sensitive) >= 12, sensitive
    base = f"{contract_server.url}/api/v1/ledger"
    size = requests.get(f"{base}/checkpoint", timeout=TIMEOUT).json()["tree_size"]
    logged = requests.get(f"{base}/subjects/{app_id}/entries", headers=contract_server.headers("ledger:read"),
                          timeout=TIMEOUT).json()["entries"]  # where the journey's entries are: the log says
    assert logged and all(e["index"] < size for e in logged)
    for index in range(size):
        got = requests.get(f"{base}/entries/{index}", timeout=TIMEOUT)
        assert got.status_code == 200 and set(got.json()) == {"index", "entry", "leaf_hash"}, got.text[:300]
        raw = base64.b64decode(got.json()["entry"])
        for value in sensitive:
            assert value.encode() not in raw, (index, value, raw[:300])
        if index == 0:
            start = json.loads(raw)
            assert set(start) == {"v", "statement", "origin", "at", "previous", "signature"}, start
            assert start["statement"] == "log_start" and start["v"] == 2
            assert start["previous"] is None or set(start["previous"]) == CHECKPOINT_FIELDS
        else:
            assert COMMITMENT_LEAF.fullmatch(raw), (index, raw[:300])
    assert requests.get(f"{base}/entries/{size}", timeout=TIMEOUT).status_code == 404
