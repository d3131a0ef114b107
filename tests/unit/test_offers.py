"""The terms an approval asks of the customer (bff/applications/offers.py): read from the risk answer's
conditions, and applied to the customer's plan choice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bff.applications.offers import Offer
from bff.applications.offers import adjusted_choice
from bff.applications.offers import offer_from
from plans.product import PlanChoice

CHOICE = PlanChoice(Decimal("0.20"), 36, frozenset({"ctpl"}), deposit_free=True)


def answer(*conditions: dict[str, Any], outcome: str = "approve") -> dict[str, Any]:
    return {"outcome": outcome, "conditions": list(conditions)}


@pytest.mark.parametrize(("result", "expected"), [
    (answer(), None),
    (None, None),
    (answer({"code": "HIGHER_DOWN_PAYMENT", "min_down_payment": "61000.00"}, outcome="decline"), None),
    (answer({"code": "HIGHER_DOWN_PAYMENT", "min_down_payment": "61000.00", "max_monthly_payment": "4200.00"}),
     Offer(Decimal("61000.00"))),
    (answer({"code": "DEPOSIT_REQUIRED"}), Offer(deposit_required=True)),
    (answer({"code": "COUNTER_OFFER", "down_payment": "80000.00", "term": 24}),
     Offer(Decimal("80000.00"), 24, source="review")),
    # a counter-offer and a rule's condition together: the larger down payment holds
    (answer({"code": "HIGHER_DOWN_PAYMENT", "min_down_payment": "90000.00"},
            {"code": "COUNTER_OFFER", "down_payment": "80000.00"}), Offer(Decimal("90000.00"), source="review")),
    # malformed terms are ignored, not trusted
    (answer({"code": "COUNTER_OFFER", "down_payment": "-5", "term": True}), None),
    (answer({"code": "COUNTER_OFFER", "down_payment": "NaN", "term": "24"}), None),
    (answer("not a mapping"), None),  # type: ignore[arg-type]
])
def test_offer_from_a_risk_answer(result: dict[str, Any] | None, expected: Offer | None) -> None:
    assert offer_from(result) == expected


@pytest.mark.parametrize(("offer", "down_ratio", "term", "deposit_free"), [
    (Offer(Decimal("61000.00")), Decimal("0.31"), 36, True),      # 61,000 / 200,000 = 30.5 % → 31 % (never less)
    (Offer(Decimal("60000.00")), Decimal("0.30"), 36, True),      # exact percent stays
    (Offer(Decimal("10000.00")), Decimal("0.20"), 36, True),      # never lower than the customer chose
    (Offer(term=24), Decimal("0.20"), 24, True),
    (Offer(deposit_required=True), Decimal("0.20"), 36, False),
])
def test_adjusted_choice(offer: Offer, down_ratio: Decimal, term: int, deposit_free: bool) -> None:
    choice = adjusted_choice(CHOICE, Decimal("200000.00"), offer)
    assert (choice.down_ratio, choice.term, choice.deposit_free) == (down_ratio, term, deposit_free)
    assert choice.insurance == CHOICE.insurance and choice.timing == CHOICE.timing
