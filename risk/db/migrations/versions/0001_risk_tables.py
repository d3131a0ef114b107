"""risk tables: assessments, review queue, provider cache

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
    op.create_table("risk_assessments",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("application_id", sa.String(length=64), nullable=False),
    sa.Column("idempotency_key", sa.String(length=128), nullable=True),
    sa.Column("dealer_id", sa.String(length=64), nullable=False),
    sa.Column("id_hash", sa.String(length=64), nullable=False),
    sa.Column("mobile_hash", sa.String(length=64), nullable=True),
    sa.Column("device_hash", sa.String(length=64), nullable=False),
    sa.Column("financed_amount", sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column("snapshot", sa.JSON(), nullable=False),
    sa.Column("providers", sa.JSON(), nullable=False),
    sa.Column("auto_outcome", sa.String(length=8), nullable=False),
    sa.Column("outcome", sa.String(length=8), nullable=False),
    sa.Column("tier", sa.Integer(), nullable=False),
    sa.Column("score", sa.Integer(), nullable=False),
    sa.Column("pd", sa.Float(), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("conditions", sa.JSON(), nullable=False),
    sa.Column("policy_version", sa.String(length=32), nullable=False),
    sa.Column("model_version", sa.String(length=64), nullable=False),
    sa.Column("sandbox", sa.Boolean(), nullable=False),
    sa.Column("decided_by", sa.String(length=8), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_assessments")),
    sa.UniqueConstraint("application_id", name=op.f("uq_risk_assessments_application_id")),
    sa.UniqueConstraint("idempotency_key", name=op.f("uq_risk_assessments_idempotency_key"))
    )
    with op.batch_alter_table("risk_assessments", schema=None) as batch_op:
        batch_op.create_index("ix_risk_assessments_dealer_outcome", ["dealer_id", "outcome"], unique=False)
        batch_op.create_index("ix_risk_assessments_device_hash_created", ["device_hash", "created_at"], unique=False)
        batch_op.create_index("ix_risk_assessments_id_hash_created", ["id_hash", "created_at"], unique=False)
        batch_op.create_index("ix_risk_assessments_mobile_hash_created", ["mobile_hash", "created_at"], unique=False)

    op.create_table("risk_provider_cache",
    sa.Column("provider", sa.String(length=32), nullable=False),
    sa.Column("subject_hash", sa.String(length=64), nullable=False),
    sa.Column("response", sa.JSON(), nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("provider", "subject_hash", name=op.f("pk_risk_provider_cache"))
    )
    op.create_table("risk_review_cases",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("assessment_id", sa.String(length=32), nullable=False),
    sa.Column("tier", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(length=8), nullable=False),
    sa.Column("claimed_by", sa.String(length=64), nullable=True),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("final_decision", sa.String(length=16), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["assessment_id"], ["risk_assessments.id"],
                            name=op.f("fk_risk_review_cases_assessment_id_risk_assessments")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_review_cases")),
    sa.UniqueConstraint("assessment_id", name=op.f("uq_risk_review_cases_assessment_id"))
    )
    with op.batch_alter_table("risk_review_cases", schema=None) as batch_op:
        batch_op.create_index("ix_risk_review_cases_state_due", ["state", "sla_due_at"], unique=False)

    op.create_table("risk_review_decisions",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("case_id", sa.String(length=32), nullable=False),
    sa.Column("officer_id", sa.String(length=64), nullable=False),
    sa.Column("officer_role", sa.String(length=32), nullable=False),
    sa.Column("decision", sa.String(length=16), nullable=False),
    sa.Column("comment", sa.Text(), nullable=False),
    sa.Column("counter_offer", sa.JSON(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["case_id"], ["risk_review_cases.id"],
                            name=op.f("fk_risk_review_decisions_case_id_risk_review_cases")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_review_decisions")),
    sa.UniqueConstraint("case_id", "officer_id", name=op.f("uq_risk_review_decisions_case_id"))
    )


def downgrade() -> None:
    op.drop_table("risk_review_decisions")
    with op.batch_alter_table("risk_review_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_review_cases_state_due")

    op.drop_table("risk_review_cases")
    op.drop_table("risk_provider_cache")
    with op.batch_alter_table("risk_assessments", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_assessments_mobile_hash_created")
        batch_op.drop_index("ix_risk_assessments_id_hash_created")
        batch_op.drop_index("ix_risk_assessments_device_hash_created")
        batch_op.drop_index("ix_risk_assessments_dealer_outcome")

    op.drop_table("risk_assessments")
