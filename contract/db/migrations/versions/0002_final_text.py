"""contracts: the final (unsigned) text rendered ahead of signing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contract_contracts") as batch:
        batch.add_column(sa.Column("final_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("final_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("final_boxes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contract_contracts") as batch:
        batch.drop_column("final_boxes")
        batch.drop_column("final_sha256")
        batch.drop_column("final_key")
