"""Use cases of the plan builder: find vehicles, price a choice, search the matrix, reverse-quote a budget."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from infra.catalogue import Catalogue
from plans.errors import UnknownVehicle
from plans.generator import Constraints
from plans.generator import PlanSummary
from plans.generator import SortKey
from plans.generator import generate
from plans.policy import Policy
from plans.product import PlanChoice
from plans.product import PlanResult
from plans.product import Product
from plans.product import Vehicle
from plans.reverse import ReverseQuote
from plans.reverse import smallest_down


@dataclass(frozen=True)
class SearchResult:
    plans: list[PlanSummary]
    evaluated: int
    matched: int
    elapsed_ms: float


class PlanService:
    """The plan builder's use cases over a catalogue, one product and one compliance policy."""

    def __init__(self, catalogue: Catalogue, product: Product, policy: Policy) -> None:
        self.catalogue = catalogue
        self.product = product
        self.policy = policy

    def vehicles(self, query: str = "") -> list[Vehicle]:
        """Vehicles matching ``query``, cheapest first."""
        return self.catalogue.search(query)

    def vehicle(self, vehicle_id: str) -> Vehicle:
        """The vehicle ``vehicle_id``; raises :class:`UnknownVehicle`."""
        found = self.catalogue.get(vehicle_id)
        if found is None:
            raise UnknownVehicle(vehicle_id)
        return found

    def evaluate(self, vehicle: Vehicle, choice: PlanChoice) -> PlanResult:
        """Price ``choice`` exactly and check it against the policy."""
        return self.product.evaluate(vehicle, choice, self.policy)

    def search(self, vehicle: Vehicle, constraints: Constraints | None = None, sort: SortKey = "rent",
               limit: int | None = 20) -> SearchResult:
        """Every compliant plan of the product's matrix for ``vehicle`` that meets ``constraints``."""
        started = time.perf_counter()
        plans, evaluated, matched = generate(vehicle, self.product, self.policy, constraints, sort, limit)
        return SearchResult(plans, evaluated, matched, (time.perf_counter() - started) * 1000)

    def reverse(self, vehicle: Vehicle, template: PlanChoice, budget: Decimal) -> list[ReverseQuote]:
        """The smallest down payment per term that keeps the rent within ``budget``."""
        return smallest_down(vehicle, self.product, self.policy, template, budget)
