"""Lease terms and their settlement: the handover (交车) that starts the term, its end, ops' closing (结清)
with a deduction and its reason, and what the settle job refunded or captured; and a retry count and the
last error of each dealer-share transfer (分账) refused by Stripe.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("transfer_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("payments", sa.Column("transfer_error", sa.String(255), nullable=True))
    op.create_table(
        "lease_terms",
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_by", sa.String(36), nullable=False),
        sa.Column("delivered_by_label", sa.String(254), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(36), nullable=True),
        sa.Column("closed_by_label", sa.String(254), nullable=True),
        sa.Column("deduction", sa.BigInteger(), nullable=False),
        sa.Column("deduction_reason", sa.String(255), nullable=True),
        sa.Column("settlement", sa.String(16), nullable=True),
        sa.Column("settle_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settle_attempts", sa.Integer(), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("settle_note", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_lease_terms_application_id_applications")),
        sa.PrimaryKeyConstraint("application_id", name=op.f("pk_lease_terms")),
    )
    op.create_index(op.f("ix_lease_terms_dealer_id"), "lease_terms", ["dealer_id"])
    op.create_index(op.f("ix_lease_terms_ends_on"), "lease_terms", ["ends_on"])
    op.create_index(op.f("ix_lease_terms_settlement"), "lease_terms", ["settlement"])


def downgrade() -> None:
    op.drop_table("lease_terms")
    op.drop_column("payments", "transfer_error")
    op.drop_column("payments", "transfer_attempts")
