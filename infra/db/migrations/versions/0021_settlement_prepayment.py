"""Early settlement and partial prepayment (issue 18 §5): ``settlement_quotes`` (a quote the customer or staff asked
for a date, its lines in fen, valid until a date; offered → paid | expired | superseded; one offered per lease),
``prepayments`` (a partial prepayment asked with both re-amortisation options shown, the one chosen; offered → paid →
applied | expired), ``lease_documents`` (documents the contract service signs for a lease in force: the settlement
certificate 结清证明, the schedule annex after a prepayment; once per kind and subject), ``mortgage_releases`` (the
dealer's task to release the mortgage, 抵押解除, once a lease is settled). A collection attempt says what it pays
(``purpose`` rent | settlement | prepayment, and ``subject_id``: the quote or the prepayment); a lease its
``settled_on``.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("collection_attempts", sa.Column("purpose", sa.String(16), nullable=False,
                                                   server_default="rent"))
    op.add_column("collection_attempts", sa.Column("subject_id", sa.String(36), nullable=True))
    op.create_index(op.f("ix_collection_attempts_subject_id"), "collection_attempts", ["subject_id"])
    op.add_column("leases", sa.Column("settled_on", sa.Date(), nullable=True))

    op.create_table(
        "settlement_quotes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("settles_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("outstanding_principal", sa.BigInteger(), nullable=False),
        sa.Column("accrued_interest", sa.BigInteger(), nullable=False),
        sa.Column("early_settlement_fee", sa.BigInteger(), nullable=False),
        sa.Column("arrears", sa.BigInteger(), nullable=False),
        sa.Column("penalties", sa.BigInteger(), nullable=False),
        sa.Column("paid_ahead_interest", sa.BigInteger(), nullable=False),
        sa.Column("deposit_offset", sa.BigInteger(), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("attempt_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_settlement_quotes_lease_id_leases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_quotes")),
    )
    op.create_index(op.f("ix_settlement_quotes_lease_id"), "settlement_quotes", ["lease_id"])
    op.create_index("uq_settlement_quotes_offered", "settlement_quotes", ["lease_id"], unique=True,
                    postgresql_where=sa.text("status = 'offered'"))
    op.create_index("ix_settlement_quotes_valid_until", "settlement_quotes", ["valid_until"],
                    postgresql_where=sa.text("status = 'offered'"))

    op.create_table(
        "prepayments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("option", sa.String(16), nullable=False),
        sa.Column("after_number", sa.Integer(), nullable=False),
        sa.Column("new_term", sa.Integer(), nullable=False),
        sa.Column("new_rent", sa.BigInteger(), nullable=False),
        sa.Column("preview", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("attempt_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_prepayments_lease_id_leases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prepayments")),
    )
    op.create_index(op.f("ix_prepayments_lease_id"), "prepayments", ["lease_id"])
    op.create_index("uq_prepayments_offered", "prepayments", ["lease_id"], unique=True,
                    postgresql_where=sa.text("status = 'offered'"))

    op.create_table(
        "lease_documents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("document_id", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("evidence_index", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_lease_documents_lease_id_leases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease_documents")),
        sa.UniqueConstraint("kind", "subject_id", name=op.f("uq_lease_documents_kind")),
    )
    op.create_index(op.f("ix_lease_documents_lease_id"), "lease_documents", ["lease_id"])

    op.create_table(
        "mortgage_releases",
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.Column("office", sa.String(128), nullable=False, server_default=""),
        sa.Column("reference", sa.String(64), nullable=False, server_default=""),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("done_by", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_mortgage_releases_lease_id_leases")),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_mortgage_releases")),
    )
    op.create_index(op.f("ix_mortgage_releases_dealer_id"), "mortgage_releases", ["dealer_id", "status"])


def downgrade() -> None:
    op.drop_table("mortgage_releases")
    op.drop_table("lease_documents")
    op.drop_table("prepayments")
    op.drop_table("settlement_quotes")
    op.drop_column("leases", "settled_on")
    op.drop_index(op.f("ix_collection_attempts_subject_id"), "collection_attempts")
    op.drop_column("collection_attempts", "subject_id")
    op.drop_column("collection_attempts", "purpose")
