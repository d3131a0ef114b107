"""Contracts: the application's contract and its resend schedule, dealers' registered details, one-time
signing codes, and the evidence outbox.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("contract_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("contract_result", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("contract_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("contract_next_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_applications_contract_next_at"), "applications", ["contract_next_at"])
    op.add_column("dealers", sa.Column("credit_code", sa.String(18), nullable=True))
    op.add_column("dealers", sa.Column("address", sa.String(255), nullable=True))
    op.create_table(
        "signing_codes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_signing_codes_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_codes")),
    )
    op.create_index(op.f("ix_signing_codes_application_id"), "signing_codes", ["application_id"])
    op.create_table(
        "evidence_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ledger_index", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_evidence_outbox_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_evidence_outbox_key")),
    )
    op.create_index(op.f("ix_evidence_outbox_application_id"), "evidence_outbox", ["application_id"])
    op.create_index(op.f("ix_evidence_outbox_next_at"), "evidence_outbox", ["next_at"])


def downgrade() -> None:
    op.drop_table("evidence_outbox")
    op.drop_table("signing_codes")
    # not a batch: on SQLite that would copy and drop ``dealers``, which users and applications reference;
    # SQLite (≥ 3.35) and PostgreSQL both drop a plain column in place
    op.execute("ALTER TABLE dealers DROP COLUMN address")
    op.execute("ALTER TABLE dealers DROP COLUMN credit_code")
    op.drop_index(op.f("ix_applications_contract_next_at"), "applications")
    with op.batch_alter_table("applications") as batch:
        for column in ("contract_next_at", "contract_attempts", "contract_result", "contract_id"):
            batch.drop_column(column)
