"""Documents on request (issue 17 §9): a risk officer asks the customer for documents (``document_requests``: which
kinds, a note, the day they are due, and when the customer sent them — the stretch the review's SLA clock stands
still) and the customer's pages (``document_pages``: each an object in the private bucket, as the ID images are).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# the very words of infra.db.models.PENDING_REQUEST (a migration does not import the models: they move on)
PENDING = sa.text("status IN ('open', 'submitted')")


def upgrade() -> None:
    op.create_table(
        "document_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("kinds", sa.String(200), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(36), nullable=False),
        sa.Column("requested_by_label", sa.String(254), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_document_requests_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_requests")),
    )
    op.create_index(op.f("ix_document_requests_application_id"), "document_requests", ["application_id"])
    op.create_index(op.f("ix_document_requests_case_id"), "document_requests", ["case_id"])
    op.create_index(op.f("ix_document_requests_status"), "document_requests", ["status"])
    # one pending request per application, however two officers' presses interleave
    op.create_index("uq_document_requests_pending", "document_requests", ["application_id"], unique=True,
                    postgresql_where=PENDING, sqlite_where=PENDING)
    op.create_table(
        "document_pages",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("object_key", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["document_requests.id"],
                                name=op.f("fk_document_pages_request_id_document_requests")),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_document_pages_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_pages")),
    )
    op.create_index(op.f("ix_document_pages_request_id"), "document_pages", ["request_id"])
    op.create_index(op.f("ix_document_pages_application_id"), "document_pages", ["application_id"])


def downgrade() -> None:
    op.drop_table("document_pages")
    op.drop_table("document_requests")
