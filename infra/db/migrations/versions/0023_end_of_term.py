"""End of term (issue 18 §6): ``end_of_term`` — the lessee's choice at the end of the lease (purchase: pay the final
rent and the purchase price 留购价 and keep the car; return: the car inspected by the dealer, its charges from the
product file, deducted from the deposit; refinance: the final rent financed by a new application), one per lease,
with the return inspection's figures in fen and the refund. ``instalments.kind`` widened to 16 characters for the
``purchase_price`` instalment (the 留购价, collected like a rent) and ``return_charges`` (what the deposit did not
cover of a return's charges).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a longer varchar is a catalogue change in PostgreSQL (no table rewrite)
    op.alter_column("instalments", "kind", type_=sa.String(16), existing_type=sa.String(12), existing_nullable=False)
    op.create_table(
        "end_of_term",
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("option", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("chosen_on", sa.Date(), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chosen_by", sa.String(64), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("purchase_price", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("mileage_km", sa.Integer(), nullable=True),
        sa.Column("photo_keys", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("damage_items", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("damage_charge", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("excess_mileage_charge", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("deposit_deduction", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("refund", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("owed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        sa.Column("inspected_by", sa.String(36), nullable=True),
        sa.Column("inspected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refinance_application_id", sa.String(36), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("option IN ('purchase', 'return', 'refinance')", name=op.f("ck_end_of_term_option")),
        sa.CheckConstraint("damage_charge >= 0 AND excess_mileage_charge >= 0 AND deposit_deduction >= 0 "
                           "AND refund >= 0 AND owed >= 0", name=op.f("ck_end_of_term_amounts")),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_end_of_term_lease_id_leases")),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_end_of_term")),
    )
    op.create_index("ix_end_of_term_dealer_id", "end_of_term", ["dealer_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_end_of_term_dealer_id", "end_of_term")
    op.drop_table("end_of_term")
    op.alter_column("instalments", "kind", type_=sa.String(12), existing_type=sa.String(16), existing_nullable=False)
