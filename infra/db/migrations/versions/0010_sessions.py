"""Server-side web sessions (the cookie carries only a random id; the row is keyed by its SHA-256), the last
TOTP time step each account used (a code is accepted once), and the dealer of each sandbox text message (the
development outbox shows each dealer only its own).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(80), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_subject"), "web_sessions", ["subject"])
    op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"])
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column("sms_outbox", sa.Column("dealer_id", sa.String(36), nullable=True))
    op.create_index(op.f("ix_sms_outbox_dealer_id"), "sms_outbox", ["dealer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sms_outbox_dealer_id"), table_name="sms_outbox")
    op.drop_column("sms_outbox", "dealer_id")
    op.drop_column("users", "totp_last_step")
    op.drop_table("web_sessions")
