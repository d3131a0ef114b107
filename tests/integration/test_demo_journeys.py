"""The demo journeys (bff/demo_journeys.py, run by `make run`) walk a lease to its signature through the real
services; run twice, they add nothing."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from bff.demo_journeys import CUSTOMERS
from bff.demo_journeys import code_reader
from bff.demo_journeys import journey
from bff.demo_journeys import run
from infra.applications import Scope
from tests.integration.test_reviews import persona_id

pytestmark = pytest.mark.db


def test_a_demo_journey_ends_with_a_signed_contract_and_its_evidence(bff_server: Any, contract_server: Any) -> None:
    app = bff_server.app
    components = app.extensions["leaseline"]
    # a fresh ID number and mobile: the risk service's velocity rules count them across the suite
    card = replace(CUSTOMERS[0].card, id_number=persona_id("10"))
    customer = replace(CUSTOMERS[0], card=card, mobile=f"137{random.randrange(10**8):08d}")
    said: list[str] = []
    app_id = journey(bff_server.url, customer, code_reader(components.sms), said.append)
    stored = components.applications.repo.get(app_id, Scope())
    assert stored.status == "ready_for_delivery" and stored.contract["status"] == "signed"
    assert said[-1].endswith("ready for delivery")
    kinds = {kind for kind, _ in components.applications.repo.outbox(app_id)}
    assert {"consent_given", "kyc_outcome", "plan_accepted", "risk_decision", "payment"} <= kinds


def test_demo_customers_who_have_an_application_are_skipped(bff_server: Any) -> None:
    walked = run(bff_server.url, lambda mobile: "", lambda id_number: True)
    assert walked == 0
