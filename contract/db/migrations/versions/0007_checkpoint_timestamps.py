"""evidence log: an RFC 3161 time-stamp token beside each signed checkpoint (``contract_evidence_timestamps``)

A checkpoint said when it was signed only in the log's own words (issue 16 §7: anchor the log to a third party).
Each new checkpoint is now stamped by the configured time-stamping authority over SHA-256 of its signed bytes;
the token (DER) and its genTime are kept here, one row per checkpoint. Checkpoints signed before this revision,
and any whose stamping failed, have no row until the service's ``ledger.anchor`` job stamps them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_evidence_timestamps",
        sa.Column("tree_size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("gen_time", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tree_size"], ["contract_evidence_checkpoints.tree_size"],
                                name="fk_contract_evidence_timestamps_tree_size"),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_contract_evidence_timestamps")),
    )


def downgrade() -> None:
    op.drop_table("contract_evidence_timestamps")
