"""evidence log: a new log of commitments (public leaves, private openings, its checkpoints)

The first log (contract_ledger_entries, contract_ledger_checkpoints) published each clear entry (application
ids, amounts, credit decisions). It is kept as it is, frozen and no longer served; the contract service starts
the new log on its next start (contract.legacy_log): a signed first leaf naming the old log's final checkpoint,
then every old entry committed again in order, so nothing of the old history is rewritten.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_evidence_leaves",
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_contract_evidence_leaves")),
    )
    op.create_table(
        "contract_evidence_openings",
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("legacy_idx", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["idx"], ["contract_evidence_leaves.idx"],
                                name=op.f("fk_contract_evidence_openings_idx_contract_evidence_leaves")),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_contract_evidence_openings")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_contract_evidence_openings_idempotency_key")),
        sa.UniqueConstraint("legacy_idx", name=op.f("uq_contract_evidence_openings_legacy_idx")),
    )
    with op.batch_alter_table("contract_evidence_openings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contract_evidence_openings_subject"), ["subject"], unique=False)
    op.create_table(
        "contract_evidence_checkpoints",
        sa.Column("tree_size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("origin", sa.String(length=128), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_contract_evidence_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("contract_evidence_checkpoints")
    with op.batch_alter_table("contract_evidence_openings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_evidence_openings_subject"))
    op.drop_table("contract_evidence_openings")
    op.drop_table("contract_evidence_leaves")
