"""The person's rights under PIPL (arts. 15, 44–47, 50): a consent may be withdrawn (``consents.withdrawn_at``: the
row stays, as the evidence that it was given and when it ended), and the person's requests to see, copy, correct
or delete their data, to withdraw a consent or to have its processing explained (``privacy_requests``), each with
the day it is due and the answer ops gave.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consents", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(36), nullable=True),
        sa.Column("answered_by_label", sa.String(254), nullable=True),
        sa.Column("answer", sa.String(2000), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_privacy_requests_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    op.create_index(op.f("ix_privacy_requests_application_id"), "privacy_requests", ["application_id"])
    op.create_index(op.f("ix_privacy_requests_dealer_id"), "privacy_requests", ["dealer_id"])
    op.create_index(op.f("ix_privacy_requests_status"), "privacy_requests", ["status"])


def downgrade() -> None:
    op.drop_table("privacy_requests")
    op.drop_column("consents", "withdrawn_at")
