"""The BFF's tables (SQLAlchemy 2 typed models). Schema changes go through Alembic migrations only."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean
from sqlalchemy import DateTime
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class VehicleRow(Base):
    """A vehicle of the lessor's catalogue. Money in Numeric(14, 2), rates in Numeric(6, 4)."""

    __tablename__ = "vehicles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    make: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    condition: Mapped[str] = mapped_column(String(8))  # new | used
    usage: Mapped[str] = mapped_column(String(16))  # personal | commercial
    powertrain: Mapped[str] = mapped_column(String(8))  # ice | nev
    seats: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(String(16))
    colour: Mapped[str] = mapped_column(String(7))
    year: Mapped[int] = mapped_column(Integer)
    mileage_km: Mapped[int] = mapped_column(Integer, default=0)
    rate_subsidy: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
