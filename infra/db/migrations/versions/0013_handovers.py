"""The signed handover record (交接确认书, issue 16): what the dealer recorded at the vehicle's delivery (odometer,
keys, items, the VIN checked), the customer's confirmation or refusal, and, once signed at the contract service,
the record's id, hash and the commencement date (起租日) it fixes; and a purpose on each one-time code, so that a
code texted to sign the contract never confirms a handover, nor the reverse.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("signing_codes", sa.Column("purpose", sa.String(16), nullable=False, server_default="contract"))
    op.create_table(
        "handovers",
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("odometer_km", sa.Integer(), nullable=False),
        sa.Column("keys", sa.Integer(), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("prepared_by", sa.String(36), nullable=False),
        sa.Column("prepared_by_label", sa.String(254), nullable=False),
        sa.Column("prepared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused_reason", sa.String(500), nullable=True),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record_id", sa.String(64), nullable=True),
        sa.Column("record", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_handovers_application_id_applications")),
        sa.PrimaryKeyConstraint("application_id", name=op.f("pk_handovers")),
    )
    op.create_index(op.f("ix_handovers_dealer_id"), "handovers", ["dealer_id"])


def downgrade() -> None:
    op.drop_table("handovers")
    op.drop_column("signing_codes", "purpose")
