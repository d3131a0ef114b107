"""The customer's answer to new terms, over real HTTP with the real risk service: a risk officer's counter-offer
(accept → the plan is priced again and approved on it) and an automatic approval that asks for a higher down
payment (decline → withdrawn). Bad answers are 422, a second answer 409, another dealer's staff 404."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import requests

from bff.applications.offers import Offer
from bff.applications.offers import adjusted_choice
from bff.plans.forms import decode
from plans.policy import load_policy
from plans.product import load_product
from tests.integration.test_applications import APPROVED
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import SALES_B
from tests.integration.test_applications import _all
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import wait_status
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_reviews import RISK1
from tests.integration.test_reviews import case_of
from tests.integration.test_reviews import claim
from tests.integration.test_reviews import persona_id
from tests.integration.test_reviews import to_risk

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def card_images() -> tuple[bytes, bytes]:
    return make_card_images()


def stored(bff_server: Any, app_id: str) -> Any:
    return bff_server.app.extensions["leaseline"].applications.repo.get(app_id, _all())


def answer(base: str, s: requests.Session, app_id: str, value: str) -> requests.Response:
    url = f"{base}/applications/{app_id}"
    return s.post(f"{url}/offer", data={"answer": value, "csrf_token": csrf(s, url)}, timeout=TIMEOUT)


def priced(bff_server: Any, stored_app: Any, offer: Offer) -> Any:
    """The plan the offer should make, priced with the plans package (the catalogue vehicle's class, the
    application's frozen price)."""
    from dataclasses import replace

    product, policy = load_product(), load_policy()
    choice = decode(stored_app.plan_code)
    assert choice is not None
    price = Decimal(stored_app.plan["vehicle"]["price"])
    vehicle = replace(bff_server.app.extensions["leaseline"].plans.vehicle(stored_app.plan["vehicle"]["id"]),
                      price=price)
    return product.evaluate(vehicle, adjusted_choice(choice, price, offer), policy)


def test_a_counter_offer_accepted_reprices_the_plan_and_approves(bff_server: Any, risk_server: Any,
                                                                 card_images: tuple[bytes, bytes]) -> None:
    base = bff_server.url
    app_id = to_risk(base, card_images, persona_id("91"))  # thin file → a tier-1 officer
    with sign_in(base, SALES_A) as sales:
        wait_status(sales, base, app_id, ("referred",))
    before = stored(bff_server, app_id)
    down = (Decimal(before.plan["quote"]["down_payment"]) + Decimal("20000")).quantize(Decimal("1"))
    case = case_of(bff_server, app_id)
    with sign_in(base, RISK1) as officer:
        assert claim(base, officer, case["id"]).status_code == 200
        url = f"{base}/reviews/{case['id']}"
        r = officer.post(f"{url}/decision", timeout=TIMEOUT, data={
            "decision": "counter_offer", "comment": "薄档案，提高首付并缩短期限", "down_payment": f"{down}",
            "term": "24", "csrf_token": csrf(officer, url)})
        assert r.status_code == 200
    expected = priced(bff_server, before, Offer(min_down_payment=down, term=24))
    assert expected.allowed
    with sign_in(base, SALES_A) as sales:
        page = wait_status(sales, base, app_id, ("counter_offer",))
        assert 'data-testid="offer" data-source="review"' in page
        assert 'data-testid="offer-accept"' in page
        shown = expected.quote
        assert shown.request.down_payment >= down and shown.request.term == 24
        assert f"{shown.monthly_payment:,.2f}" in page  # the new rent is shown before the answer
        r = answer(base, sales, app_id, "maybe")
        assert r.status_code == 422 and stored(bff_server, app_id).status == "counter_offer"
        r = answer(base, sales, app_id, "accept")
        assert r.status_code == 200 and 'data-testid="plan-adjusted"' in r.text
        assert re.search(r'data-status="(approved|contract_pending|contract_ready)"', r.text)
        assert answer(base, sales, app_id, "decline").status_code == 409  # answered once
    after = stored(bff_server, app_id)
    assert after.status in APPROVED and after.plan_code != before.plan_code
    assert after.plan["quote"]["monthly_payment"] == f"{expected.quote.monthly_payment:.2f}"
    assert after.plan["quote"]["term"] == 24 and Decimal(after.plan["quote"]["down_payment"]) >= down
    assert after.plan["adjusted_from"]["code"] == before.plan_code and after.plan["offer_source"] == "review"
    schedule = after.plan["quote"]["schedule"]
    assert len(schedule) == 24


def test_an_approval_asking_for_a_higher_down_payment_can_be_declined(bff_server: Any, risk_server: Any,
                                                                      card_images: tuple[bytes, bytes]) -> None:
    base = bff_server.url
    # a clean file whose rent is ~40% of the income: approved on condition of a higher down payment
    app_id = to_risk(base, card_images, persona_id("10"), work={"monthly_income": "14,000"})
    with sign_in(base, SALES_A) as sales:
        page = wait_status(sales, base, app_id, ("counter_offer", *APPROVED, "declined", "referred"))
        result = stored(bff_server, app_id).risk_result
        assert 'data-status="counter_offer"' in page, result
        assert [c["code"] for c in result["conditions"]][:1] == ["HIGHER_DOWN_PAYMENT"]
        assert 'data-testid="offer" data-source="conditions"' in page
        asked = Decimal(result["conditions"][0]["min_down_payment"])
        before = stored(bff_server, app_id)
        expected = priced(bff_server, before, Offer(min_down_payment=asked))
        # the re-priced rent fits what the rule allowed
        assert expected.quote.monthly_payment <= Decimal(result["conditions"][0]["max_monthly_payment"])
    with sign_in(base, SALES_B) as other_dealer:
        assert answer(base, other_dealer, app_id, "accept").status_code == 404
    with sign_in(base, SALES_A) as sales:
        r = answer(base, sales, app_id, "decline")
        assert r.status_code == 200 and 'data-status="withdrawn"' in r.text
    after = stored(bff_server, app_id)
    assert after.status == "withdrawn" and after.plan_code == before.plan_code
