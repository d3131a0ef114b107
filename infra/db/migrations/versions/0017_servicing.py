"""The lease in force (issue 18 §0–§2): ``leases`` (one per application, its servicing terms frozen from the signed
contract), ``instalments`` (each rent and the final rent, in fen, with its state and late charge),
``servicing_movements`` (every money movement, keyed to the instalment it touched, booked once by its key), the
``business_date`` every process reads (one row, set to today in Asia/Shanghai), the ``close_runs`` of the daily close
of business (one per business date) and the ``business_calendar`` ops load each year's published calendar into.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("contract_number", sa.String(64), nullable=False),
        sa.Column("handover_record_id", sa.String(64), nullable=False),
        sa.Column("handover_sha256", sa.String(64), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("timing", sa.String(8), nullable=False),
        sa.Column("financed_amount", sa.BigInteger(), nullable=False),
        sa.Column("residual", sa.BigInteger(), nullable=False),
        sa.Column("monthly_payment", sa.BigInteger(), nullable=False),
        sa.Column("deposit", sa.BigInteger(), nullable=False),
        sa.Column("nominal_rate", sa.Numeric(9, 6), nullable=False),
        sa.Column("late_fee_daily_rate", sa.Numeric(10, 6), nullable=False),
        sa.Column("late_fee_base", sa.String(16), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("default_cost_cap", sa.Numeric(6, 4), nullable=True),
        sa.Column("settlement_any_day", sa.Boolean(), nullable=False),
        sa.Column("settlement_fee_rate", sa.Numeric(6, 4), nullable=False),
        sa.Column("settlement_day_count", sa.String(8), nullable=False),
        sa.Column("settlement_notice_working_days", sa.Integer(), nullable=False),
        sa.Column("terms_source", sa.String(8), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_through", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_leases_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leases")),
        sa.UniqueConstraint("application_id", name=op.f("uq_leases_application_id")),
    )
    op.create_index(op.f("ix_leases_dealer_id"), "leases", ["dealer_id"])
    op.create_index("ix_leases_status_closed_through", "leases", ["status", "closed_through"])
    op.create_table(
        "instalments",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("interest", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("paid_principal", sa.BigInteger(), nullable=False),
        sa.Column("paid_interest", sa.BigInteger(), nullable=False),
        sa.Column("paid_penalty", sa.BigInteger(), nullable=False),
        sa.Column("waived", sa.BigInteger(), nullable=False),
        sa.Column("penalty_accrued", sa.BigInteger(), nullable=False),
        sa.Column("penalty_through", sa.Date(), nullable=True),
        sa.Column("overdue_since", sa.Date(), nullable=True),
        sa.Column("settled_on", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_instalments_lease_id_leases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instalments")),
        sa.UniqueConstraint("lease_id", "number", name=op.f("uq_instalments_lease_id")),
    )
    op.create_table(
        "servicing_movements",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("instalment_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("interest", sa.BigInteger(), nullable=False),
        sa.Column("penalty", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("note", sa.String(255), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_servicing_movements_lease_id_leases")),
        sa.ForeignKeyConstraint(["instalment_id"], ["instalments.id"],
                                name=op.f("fk_servicing_movements_instalment_id_instalments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servicing_movements")),
        sa.UniqueConstraint("key", name=op.f("uq_servicing_movements_key")),
    )
    op.create_index(op.f("ix_servicing_movements_lease_id"), "servicing_movements", ["lease_id"])
    op.create_index(op.f("ix_servicing_movements_instalment_id"), "servicing_movements", ["instalment_id"])
    op.create_table(
        "business_date",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("current", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_business_date_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_date")),
    )
    # the business date starts today, in Asia/Shanghai (the lease's calendar)
    op.execute("INSERT INTO business_date (id, current, updated_at) "
               "VALUES (1, (now() AT TIME ZONE 'Asia/Shanghai')::date, now())")
    op.create_table(
        "close_runs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("leases", sa.Integer(), nullable=False),
        sa.Column("marked_due", sa.Integer(), nullable=False),
        sa.Column("marked_overdue", sa.Integer(), nullable=False),
        sa.Column("penalty", sa.BigInteger(), nullable=False),
        sa.Column("last_lease_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("business_date", name=op.f("pk_close_runs")),
    )
    op.create_table(
        "business_calendar",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_business_calendar")),
    )


def downgrade() -> None:
    op.drop_table("business_calendar")
    op.drop_table("close_runs")
    op.drop_table("business_date")
    op.drop_table("servicing_movements")
    op.drop_table("instalments")
    op.drop_table("leases")
