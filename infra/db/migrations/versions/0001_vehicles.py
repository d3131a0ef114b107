"""The vehicle catalogue.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vehicles",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("make", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("name_zh", sa.String(128), nullable=False),
        sa.Column("name_en", sa.String(128), nullable=False),
        sa.Column("price", sa.Numeric(14, 2), nullable=False),
        sa.Column("condition", sa.String(8), nullable=False),
        sa.Column("usage", sa.String(16), nullable=False),
        sa.Column("powertrain", sa.String(8), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(16), nullable=False),
        sa.Column("colour", sa.String(7), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("mileage_km", sa.Integer(), nullable=False),
        sa.Column("rate_subsidy", sa.Numeric(6, 4), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.CheckConstraint("price > 0", name=op.f("ck_vehicles_price_positive")),
        sa.CheckConstraint("condition IN ('new', 'used')", name=op.f("ck_vehicles_condition")),
        sa.CheckConstraint("usage IN ('personal', 'commercial')", name=op.f("ck_vehicles_usage")),
        sa.CheckConstraint("powertrain IN ('ice', 'nev')", name=op.f("ck_vehicles_powertrain")),
    )


def downgrade() -> None:
    op.drop_table("vehicles")
