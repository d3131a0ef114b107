"""Customer invitations and the SMS sandbox outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dealer_id", sa.String(36),
                  sa.ForeignKey("dealers.id", name=op.f("fk_invitations_dealer_id_dealers")), nullable=False),
        sa.Column("created_by", sa.String(36),
                  sa.ForeignKey("users.id", name=op.f("fk_invitations_created_by_users")), nullable=False),
        sa.Column("mobile", sa.String(11), nullable=False),
        sa.Column("vehicle_id", sa.String(64), nullable=True),
        sa.Column("plan_code", sa.String(120), nullable=True),
        sa.Column("nonce_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("code_hash", sa.String(255), nullable=True),
        sa.Column("code_sent_at", TS, nullable=True),
        sa.Column("failed_codes", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("customer_plan", sa.String(120), nullable=True),
        sa.Column("customer_seen_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(op.f("ix_invitations_dealer_id"), "invitations", ["dealer_id"])
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("to", sa.String(20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(op.f("ix_sms_outbox_to"), "sms_outbox", ["to"])


def downgrade() -> None:
    op.drop_table("sms_outbox")
    op.drop_table("invitations")
