"""Credit reporting (征信报送, issue 18 §7): ``credit_reports`` (one row per month reported: its status, the number
of records, the file's SHA-256 — the file itself, with names and ID numbers, is never stored —, the bureau's batch
number, accepted and rejected counts and the per-record errors with masked names) and ``credit_report_notices`` (the
text before an overdue report, once per lease and month: the close of business's notice day, what was overdue, what
became of the text).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_reports",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status_counts", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("withheld", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("batch_no", sa.String(64), nullable=True),
        sa.Column("accepted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("detail", sa.String(255), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_credit_reports")),
    )
    op.create_table(
        "credit_report_notices",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("overdue_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_credit_report_notices_lease_id_leases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_report_notices")),
        sa.UniqueConstraint("lease_id", "period", name=op.f("uq_credit_report_notices_lease_id")),
    )
    op.create_index(op.f("ix_credit_report_notices_period"), "credit_report_notices", ["period"])


def downgrade() -> None:
    op.drop_index(op.f("ix_credit_report_notices_period"), "credit_report_notices")
    op.drop_table("credit_report_notices")
    op.drop_table("credit_reports")
