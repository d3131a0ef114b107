"""E-invoices (数电发票, issue 19 §3): ``invoice_requests`` — one per rent paid in full and per early settlement paid,
the red-letter ones for refunds and corrections referencing the blue invoice they reverse, the buyer's name and ID
number encrypted (infra.pii), the status requested → issued | rejected | pending (infra/invoicing.py) — and the
sandbox invoice platform's own records, ``sandbox_invoices`` and the sequence its numbers come from
(infra/invoice_sandbox.py: specimens, never invoices).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("instalment_id", sa.Integer(), nullable=True),
        sa.Column("receipt_id", sa.String(36), nullable=True),
        sa.Column("quote_id", sa.String(36), nullable=True),
        sa.Column("original_id", sa.String(36), nullable=True),
        sa.Column("reason_code", sa.String(2), nullable=True),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("reissue", sa.Boolean(), nullable=False),
        sa.Column("tax_point", sa.Date(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=True),
        sa.Column("tax", sa.BigInteger(), nullable=True),
        sa.Column("buyer_name_enc", sa.Text(), nullable=True),
        sa.Column("buyer_id_enc", sa.Text(), nullable=True),
        sa.Column("buyer_id_masked", sa.String(24), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("number", sa.String(20), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmation", sa.String(40), nullable=True),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("error", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_invoice_requests_lease_id_leases")),
        sa.ForeignKeyConstraint(["original_id"], ["invoice_requests.id"],
                                name=op.f("fk_invoice_requests_original_id_invoice_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_requests")),
        sa.UniqueConstraint("key", name=op.f("uq_invoice_requests_key")),
        sa.UniqueConstraint("number", name=op.f("uq_invoice_requests_number")),
    )
    for column in ("lease_id", "dealer_id", "original_id", "status"):
        op.create_index(op.f(f"ix_invoice_requests_{column}"), "invoice_requests", [column])
    op.create_table(
        "sandbox_invoices",
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("request_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("original_number", sa.String(20), nullable=True),
        sa.Column("confirmation", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_sandbox_invoices")),
        sa.UniqueConstraint("request_key", name=op.f("uq_sandbox_invoices_request_key")),
    )
    op.create_index(op.f("ix_sandbox_invoices_original_number"), "sandbox_invoices", ["original_number"])
    # the sandbox's 15-digit sequence of numbers (infra/invoice_sandbox.py invoice_number)
    op.execute("CREATE SEQUENCE sandbox_invoice_numbers START 1 MAXVALUE 999999999999999 NO CYCLE")


def downgrade() -> None:
    op.execute("DROP SEQUENCE sandbox_invoice_numbers")
    op.drop_index(op.f("ix_sandbox_invoices_original_number"), "sandbox_invoices")
    op.drop_table("sandbox_invoices")
    for column in ("status", "original_id", "dealer_id", "lease_id"):
        op.drop_index(op.f(f"ix_invoice_requests_{column}"), "invoice_requests")
    op.drop_table("invoice_requests")
