"""Composition root: builds the adapters and services from settings. Views never build adapters."""

from __future__ import annotations

from dataclasses import dataclass

from bff.config import Settings
from bff.plans.services import PlanService
from infra.catalogue import SqlCatalogue
from infra.db import Database
from plans.policy import load_policy
from plans.product import load_product


@dataclass
class Services:
    db: Database
    plans: PlanService


def bootstrap(settings: Settings) -> Services:
    """Wire the BFF's dependencies. Fails fast (ConfigError/FileNotFoundError) on a wrong policy/product."""
    db = Database(settings.database_url)
    policy = load_policy(settings.policy)
    product = load_product(settings.product)
    return Services(db=db, plans=PlanService(SqlCatalogue(db), product, policy))
