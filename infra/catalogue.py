"""The vehicle catalogue: the ``Catalogue`` port and its SQL adapter."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from sqlalchemy import or_
from sqlalchemy import select

from infra.db.engine import Database
from infra.db.models import VehicleRow
from infra.db.models import utcnow
from plans.policy import Category
from plans.product import Vehicle


class Catalogue(Protocol):
    """Where vehicles come from."""

    def search(self, query: str = "") -> list[Vehicle]:
        """Active vehicles whose make, model or names contain ``query`` (all when empty), by price."""
        ...

    def get(self, vehicle_id: str) -> Vehicle | None:
        """The active vehicle with ``vehicle_id``, or None."""
        ...


def to_vehicle(row: VehicleRow) -> Vehicle:
    return Vehicle(
        id=row.id, make=row.make, model=row.model, name_zh=row.name_zh, name_en=row.name_en,
        price=Decimal(row.price).quantize(Decimal("0.01")),
        category=Category(row.condition, row.usage, row.powertrain),  # type: ignore[arg-type]
        seats=row.seats, body=row.body, colour=row.colour, year=row.year, mileage_km=row.mileage_km,
        rate_subsidy=Decimal(row.rate_subsidy).quantize(Decimal("0.0001")),
    )


class SqlCatalogue:
    """:class:`Catalogue` over the ``vehicles`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def search(self, query: str = "") -> list[Vehicle]:
        stmt = select(VehicleRow).where(VehicleRow.active.is_(True))
        query = query.strip()[:64]
        if query:
            like = f"%{query.replace('%', '').replace('_', '')}%"
            stmt = stmt.where(or_(VehicleRow.make.ilike(like), VehicleRow.model.ilike(like),
                                  VehicleRow.name_zh.ilike(like), VehicleRow.name_en.ilike(like)))
        with self.db.session() as session:
            rows = session.scalars(stmt.order_by(VehicleRow.price, VehicleRow.id)).all()
            return [to_vehicle(row) for row in rows]

    def get(self, vehicle_id: str) -> Vehicle | None:
        with self.db.session() as session:
            row = session.get(VehicleRow, vehicle_id[:64])
            return to_vehicle(row) if row is not None and row.active else None

    def upsert(self, vehicles: Iterable[Vehicle]) -> int:
        """Insert or update ``vehicles`` (the demo loader); returns how many were written."""
        count = 0
        with self.db.session() as session:
            for v in vehicles:
                row = session.get(VehicleRow, v.id) or VehicleRow(id=v.id, created_at=utcnow())
                row.make, row.model, row.name_zh, row.name_en = v.make, v.model, v.name_zh, v.name_en
                row.price = v.price
                row.condition, row.usage = v.category.condition, v.category.usage
                row.powertrain = v.category.powertrain
                row.seats, row.body, row.colour, row.year = v.seats, v.body, v.colour, v.year
                row.mileage_km, row.rate_subsidy, row.active = v.mileage_km, v.rate_subsidy, True
                row.updated_at = utcnow()
                session.add(row)
                count += 1
        return count
