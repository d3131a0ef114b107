"""What the customer must accept before an approval stands: a risk officer's counter-offer, or the conditions
of an automatic approval (a higher down payment, a deposit instead of 免押).

Either way the credit decision names new terms and the customer answers: accept → the plan is priced again
with those terms (the same product, rate card and compliance policy as the plan builder) and the application
is approved on it; decline → the application is withdrawn. Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from decimal import ROUND_CEILING
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from plans.product import PlanChoice

PERCENT = Decimal("0.01")


@dataclass(frozen=True)
class Offer:
    """The terms a credit decision asks for; None fields keep the customer's choice."""

    min_down_payment: Decimal | None = None
    term: int | None = None
    deposit_required: bool = False
    source: str = "conditions"  # conditions (automatic approval) | review (a risk officer's counter-offer)


def _money(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and amount > 0 else None


def offer_from(result: Mapping[str, Any] | None) -> Offer | None:
    """The terms in a risk answer's conditions, or None when the approval needs nothing of the customer."""
    if not result or result.get("outcome") != "approve":
        return None
    down: Decimal | None = None
    term: int | None = None
    deposit = False
    source = "conditions"
    for condition in result.get("conditions") or ():
        if not isinstance(condition, Mapping):
            continue
        code, asked = condition.get("code"), None
        if code == "COUNTER_OFFER":
            source = "review"
            asked = _money(condition.get("down_payment"))
            raw_term = condition.get("term")
            if isinstance(raw_term, int) and not isinstance(raw_term, bool) and raw_term > 0:
                term = raw_term
        elif code == "HIGHER_DOWN_PAYMENT":
            asked = _money(condition.get("min_down_payment"))
        elif code == "DEPOSIT_REQUIRED":
            deposit = True
        if asked is not None:  # several asks (a rule and an officer): the larger down payment holds
            down = max(down, asked) if down is not None else asked
    if down is None and term is None and not deposit:
        return None
    return Offer(down, term, deposit, source)


def adjusted_choice(choice: PlanChoice, price: Decimal, offer: Offer) -> PlanChoice:
    """The customer's plan with the offer's terms. The plan builder works in whole percent of the price, so
    the down payment is rounded *up* to the next whole percent: the customer pays at least what was asked."""
    down_ratio = choice.down_ratio
    if offer.min_down_payment is not None and price > 0:
        asked = (offer.min_down_payment / price).quantize(PERCENT, rounding=ROUND_CEILING)
        down_ratio = max(down_ratio, asked)
    return replace(choice, down_ratio=down_ratio, term=offer.term or choice.term,
                   deposit_free=choice.deposit_free and not offer.deposit_required)
