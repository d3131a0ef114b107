"""我的租赁's codes in the database (``returning_codes``, one per number's keyed hash: tries counted under a row
lock, the text sent by a job) and a unique index on ``invitations.nonce_hash`` (a short link is found by it).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "returning_codes",
        sa.Column("mobile_hash", sa.String(64), nullable=False),
        sa.Column("mobile_enc", sa.Text(), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("code_enc", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("mobile_hash", name=op.f("pk_returning_codes")),
    )
    op.create_unique_constraint(op.f("uq_invitations_nonce_hash"), "invitations", ["nonce_hash"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_invitations_nonce_hash"), "invitations", type_="unique")
    op.drop_table("returning_codes")
