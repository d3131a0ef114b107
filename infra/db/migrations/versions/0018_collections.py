"""Collecting rent (issue 18 §3): ``collection_attempts`` (each attempt to collect money for a lease in force — the
customer paying on the phone, or an automatic collection by a bank's 协议支付 direct debit or a saved card — with our
idempotency key and the provider's reference, each unique), ``lease_receipts`` (each succeeded payment booked into a
lease once, by its key, with what was applied and what was refunded: a surplus, or a payment for a closed lease) and
``collection_mandates`` (the customer's authorisation of automatic collection: a card saved through a SetupIntent or
a direct-debit agreement, the mandate text accepted, automatic collection on or off).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection_mandates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("auto_collect", sa.Boolean(), nullable=False),
        sa.Column("customer_ref", sa.String(64), nullable=True),
        sa.Column("payment_method", sa.String(64), nullable=True),
        sa.Column("setup_intent", sa.String(64), nullable=True),
        sa.Column("agreement_no", sa.String(64), nullable=True),
        sa.Column("bank", sa.String(64), nullable=True),
        sa.Column("account_last4", sa.String(8), nullable=True),
        sa.Column("text_version", sa.String(32), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_collection_mandates_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_mandates")),
        sa.UniqueConstraint("setup_intent", name=op.f("uq_collection_mandates_setup_intent")),
    )
    op.create_index(op.f("ix_collection_mandates_application_id"), "collection_mandates", ["application_id"])
    op.create_table(
        "collection_attempts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("instalment_id", sa.BigInteger(), nullable=True),
        sa.Column("mandate_id", sa.String(36), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("provider_ref", sa.String(64), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("failure_code", sa.String(40), nullable=True),
        sa.Column("failure_message", sa.String(255), nullable=True),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("poll_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_collection_attempts_lease_id_leases")),
        sa.ForeignKeyConstraint(["instalment_id"], ["instalments.id"],
                                name=op.f("fk_collection_attempts_instalment_id_instalments")),
        sa.ForeignKeyConstraint(["mandate_id"], ["collection_mandates.id"],
                                name=op.f("fk_collection_attempts_mandate_id_collection_mandates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_attempts")),
        sa.UniqueConstraint("key", name=op.f("uq_collection_attempts_key")),
        sa.UniqueConstraint("channel", "provider_ref", name=op.f("uq_collection_attempts_channel")),
    )
    op.create_index(op.f("ix_collection_attempts_lease_id"), "collection_attempts", ["lease_id"])
    op.create_index(op.f("ix_collection_attempts_instalment_id"), "collection_attempts", ["instalment_id"])
    op.create_index(op.f("ix_collection_attempts_status"), "collection_attempts", ["status"])
    op.create_table(
        "lease_receipts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("attempt_id", sa.String(36), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.BigInteger(), nullable=False),
        sa.Column("surplus", sa.BigInteger(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("refund_reason", sa.String(16), nullable=True),
        sa.Column("refund_status", sa.String(16), nullable=True),
        sa.Column("refund_ref", sa.String(64), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_lease_receipts_lease_id_leases")),
        sa.ForeignKeyConstraint(["attempt_id"], ["collection_attempts.id"],
                                name=op.f("fk_lease_receipts_attempt_id_collection_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease_receipts")),
        sa.UniqueConstraint("key", name=op.f("uq_lease_receipts_key")),
    )
    op.create_index(op.f("ix_lease_receipts_lease_id"), "lease_receipts", ["lease_id"])
    op.create_index(op.f("ix_lease_receipts_refund_status"), "lease_receipts", ["refund_status"])
    # reconciliation looks up the receipts of each of Stripe's intents (a bank's order) by its reference
    op.create_index(op.f("ix_lease_receipts_reference"), "lease_receipts", ["reference"])


def downgrade() -> None:
    op.drop_table("lease_receipts")
    op.drop_table("collection_attempts")
    op.drop_table("collection_mandates")
