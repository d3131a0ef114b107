"""dealer-level monitoring: each assessment records its outcome before the dealer rules and its fraud signal;
the provider cache is indexed by subject

``base_outcome`` of existing rows is their ``auto_outcome`` (there were no dealer rules before this revision);
``fraud_signal`` is set where the stored reasons name a fraud signal (risk.rules.FRAUD_SIGNALS at the time of
writing; a declined row lists only its declines, so a referring fraud signal beside a decline is not seen).
The index covers the dealer-monitoring query (a window of ``created_at`` grouped by dealer) so it reads the
index alone. The provider cache is read by subject (every provider's answer about one person), which its
primary key (provider, subject_hash) cannot serve: each assessment scanned the whole cache; now an index does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: risk.rules.FRAUD_SIGNALS when this revision was written (a migration never imports live code)
FRAUD_SIGNALS = ("KYC_FAILED", "VELOCITY_ID", "VELOCITY_MOBILE", "VELOCITY_DEVICE", "MULTI_VEHICLE",
                 "INCOME_UNVERIFIED", "GRAY_LIST")


def upgrade() -> None:
    with op.batch_alter_table("risk_assessments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("base_outcome", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("fraud_signal", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE risk_assessments SET base_outcome = auto_outcome")
    matches = " OR ".join(f"CAST(reasons AS TEXT) LIKE '%\"{code}\"%'" for code in FRAUD_SIGNALS)
    op.execute(f"UPDATE risk_assessments SET fraud_signal = TRUE WHERE {matches}")
    with op.batch_alter_table("risk_assessments", schema=None) as batch_op:
        batch_op.alter_column("base_outcome", existing_type=sa.String(length=8), nullable=False)
        batch_op.create_index("ix_risk_assessments_dealer_window",
                              ["created_at", "dealer_id", "base_outcome", "fraud_signal"], unique=False)
    with op.batch_alter_table("risk_provider_cache", schema=None) as batch_op:
        batch_op.create_index("ix_risk_provider_cache_subject_hash", ["subject_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("risk_provider_cache", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_provider_cache_subject_hash")
    with op.batch_alter_table("risk_assessments", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_assessments_dealer_window")
        batch_op.drop_column("fraud_signal")
        batch_op.drop_column("base_outcome")
