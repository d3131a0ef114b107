"""Demo data: the catalogue that ``leaseline demo`` and ``make run`` load (idempotent)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources

from plans.policy import Category
from plans.product import Vehicle


def demo_vehicles() -> list[Vehicle]:
    """The vehicles of ``bff/demo/catalogue.toml``."""
    data = tomllib.loads(resources.files("bff.demo").joinpath("catalogue.toml").read_text(encoding="utf-8"))
    return [
        Vehicle(
            id=v["id"], make=v["make"], model=v["model"], name_zh=v["name_zh"], name_en=v["name_en"],
            price=Decimal(v["price"]),
            category=Category(v.get("condition", "new"), v.get("usage", "personal"), v.get("powertrain", "ice")),
            seats=int(v.get("seats", 5)), body=v["body"], colour=v["colour"], year=int(v.get("year", 2026)),
            mileage_km=int(v.get("mileage_km", 0)), rate_subsidy=Decimal(v.get("rate_subsidy", "0")),
        )
        for v in data["vehicle"]
    ]
