"""contracts: the text read on the phone, stored as generated, and its fingerprint (issue 17 §2)

The reading copy was rendered again on every request, so a change of the template or its filters made every
existing contract's text differ from its PDF; and the final text was never checked against the words the customer
read. The text is now stored when the contract is generated (object storage, server-side encrypted as the PDFs)
and its SHA-256 kept here; the final text must print the same. Contracts generated before have neither: they have
no reading copy (their PDF and page images remain).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contract_contracts") as batch:
        batch.add_column(sa.Column("text_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("text_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contract_contracts") as batch:
        batch.drop_column("text_sha256")
        batch.drop_column("text_key")
