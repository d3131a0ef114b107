"""The customer's text that a lease document is ready (issue 18 §5, review fix R3 #5): ``lease_documents.text_status``
— '' (not yet) → sending (claimed by the ``servicing.document_text`` job before it sends, released when the platform
could not be reached, so a worker killed after sending never sends it again) → sent | refused (the platform refused
it: ``text_detail`` says why) | no_mobile (the application has no mobile number) —, and ``text_at``, when it was
claimed or its outcome recorded. The lease page's staff view shows a text refused or not sendable.

Documents made before this migration keep '' (whether they were texted is not recorded).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lease_documents", sa.Column("text_status", sa.String(12), nullable=False, server_default=""))
    op.add_column("lease_documents", sa.Column("text_detail", sa.String(255), nullable=False, server_default=""))
    op.add_column("lease_documents", sa.Column("text_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("lease_documents", "text_at")
    op.drop_column("lease_documents", "text_detail")
    op.drop_column("lease_documents", "text_status")
