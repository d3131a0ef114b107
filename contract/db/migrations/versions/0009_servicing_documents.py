"""the documents the lessor issues for a lease in force (issue 18 §5): ``contract_servicing_documents`` — settlement
certificates (结清证明) and schedule annexes (还款计划变更确认书), once per kind and subject.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_servicing_documents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("contract_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("version", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("ledger_index", sa.Integer(), nullable=True),
        sa.Column("retain_until", UTCDateTime(), nullable=True),
        sa.Column("signed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contract_contracts.id"],
            name=op.f("fk_contract_servicing_documents_contract_id_contract_contracts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_servicing_documents")),
        sa.UniqueConstraint("kind", "subject_id", name=op.f("uq_contract_servicing_documents_kind")),
        sa.UniqueConstraint("sha256", name=op.f("uq_contract_servicing_documents_sha256")),
    )
    op.create_index(
        op.f("ix_contract_servicing_documents_contract_id"), "contract_servicing_documents", ["contract_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_contract_servicing_documents_contract_id"), table_name="contract_servicing_documents")
    op.drop_table("contract_servicing_documents")
