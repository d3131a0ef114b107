"""Reverse quote: for a monthly budget, the smallest down payment per term that meets it."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from decimal import ROUND_CEILING
from decimal import ROUND_FLOOR
from decimal import Decimal

from plans.errors import PlanInputError
from plans.money import CONTEXT
from plans.money import FEN
from plans.policy import Policy
from plans.policy import Reason
from plans.product import PlanChoice
from plans.product import PlanResult
from plans.product import Product
from plans.product import Vehicle
from plans.quote import level_rent

HALF_FEN = Decimal("0.005")


@dataclass(frozen=True)
class ReverseQuote:
    """For ``term``: the smallest down payment meeting the budget (None: not reachable) and its plan."""

    term: int
    down_payment: Decimal | None
    result: PlanResult | None
    #: Why the plan meeting the budget is refused (result None); empty when the budget is simply too low.
    reasons: tuple[Reason, ...] = ()


def smallest_down(vehicle: Vehicle, product: Product, policy: Policy, template: PlanChoice,
                  budget: Decimal) -> list[ReverseQuote]:
    """For each of the product's terms allowed for the vehicle, the least down payment (to the fen, never
    below the policy's minimum) with which the rent of ``template`` at that term is at most ``budget``.

    The rent is linear in the principal, so the bound is solved directly and then confirmed (and nudged by
    a fen where rounding demands) with the exact quote.
    """
    floor_ratio = policy.min_down_ratio(vehicle.category)
    out: list[ReverseQuote] = []
    for term in product.terms:
        if not policy.min_term <= term <= policy.max_term_for(vehicle.category):
            continue
        choice = replace(template, term=term, down_ratio=floor_ratio)
        request = product.request_for(vehicle, choice)
        # rent(PV) = (PV − B·v^n)·k  ⇒  the largest PV meeting the budget, hence the smallest D.
        rent_one = level_rent(Decimal(1) + request.residual, request.residual, term, request.annual_rate,
                              request.timing)
        rent_zero = level_rent(request.residual, request.residual, term, request.annual_rate, request.timing)
        slope = rent_one - rent_zero  # rent per yuan of principal
        extras = request.principal - (vehicle.price - request.down_payment)
        # A rent below budget + half a fen rounds to within the budget (half-up).
        max_principal = request.residual + CONTEXT.divide(budget + HALF_FEN - rent_zero, slope)
        down = (vehicle.price + extras - max_principal).quantize(FEN, rounding=ROUND_FLOOR)
        down = max(down, (floor_ratio * vehicle.price).quantize(FEN, rounding=ROUND_CEILING))
        result = None
        reasons: tuple[Reason, ...] = ()
        for _ in range(8):
            if down >= vehicle.price:
                break
            ratio = CONTEXT.divide(down, vehicle.price)
            try:
                candidate = product.evaluate(vehicle, replace(choice, down_ratio=ratio), policy)
            except PlanInputError:  # no net credit left: paying more down cannot help
                break
            if candidate.quote.request.residual >= candidate.quote.financed_amount:
                break
            if candidate.quote.monthly_payment <= budget:
                # A larger down payment only lowers the rent and raises the weight of the fees, so a plan
                # refused here (e.g. the APR cap on a short term) is not rescued by paying more down.
                result = candidate if candidate.allowed else None
                reasons = candidate.reasons
                break
            down += FEN
        out.append(ReverseQuote(term, result.quote.request.down_payment if result else None, result, reasons))
    return out
