"""Applications remember the risk service's answer and when to send them again if it was unreachable.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("risk_assessment_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("risk_result", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("risk_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("risk_next_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_applications_risk_next_at"), "applications", ["risk_next_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_applications_risk_next_at"), "applications")
    with op.batch_alter_table("applications") as batch:
        for column in ("risk_next_at", "risk_attempts", "risk_result", "risk_assessment_id"):
            batch.drop_column(column)
