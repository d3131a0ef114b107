"""Arrears (issue 18 §4): ``servicing_reminders`` (each text about a rent the close of business deferred — before its
due date, after it became overdue — once per lease, instalment and kind, with what became of it), ``lease_arrears``
(each lease in arrears as the last close saw it: days past due from its oldest unpaid overdue rent, its bucket M1/M2/M3
and the amounts), ``collateral_flags`` (a lease that reached M3, flagged once for the collateral team with the time)
and ``arrears_log`` (the collections history: what ops recorded — outcome, note, promise-to-pay date — and what the
close saw: a bucket entered, the flag, the lease out of arrears).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servicing_reminders",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("instalment_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_servicing_reminders_lease_id_leases")),
        sa.ForeignKeyConstraint(["instalment_id"], ["instalments.id"],
                                name=op.f("fk_servicing_reminders_instalment_id_instalments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servicing_reminders")),
        sa.UniqueConstraint("lease_id", "instalment_id", "kind", name=op.f("uq_servicing_reminders_lease_id")),
    )
    op.create_table(
        "lease_arrears",
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(4), nullable=False),
        sa.Column("bucket_since", sa.Date(), nullable=False),
        sa.Column("oldest_overdue_since", sa.Date(), nullable=False),
        sa.Column("instalments_overdue", sa.Integer(), nullable=False),
        sa.Column("overdue_amount", sa.BigInteger(), nullable=False),
        sa.Column("penalty_amount", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_lease_arrears_lease_id_leases")),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_lease_arrears")),
    )
    op.create_index(op.f("ix_lease_arrears_dealer_id"), "lease_arrears", ["dealer_id"])
    op.create_table(
        "collateral_flags",
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=False),
        sa.Column("flagged_on", sa.Date(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_collateral_flags_lease_id_leases")),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_collateral_flags")),
    )
    op.create_table(
        "arrears_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=True),
        sa.Column("actor_label", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("promise_date", sa.Date(), nullable=True),
        sa.Column("bucket", sa.String(4), nullable=True),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_arrears_log_lease_id_leases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arrears_log")),
    )
    op.create_index(op.f("ix_arrears_log_lease_id"), "arrears_log", ["lease_id"])


def downgrade() -> None:
    op.drop_table("arrears_log")
    op.drop_table("collateral_flags")
    op.drop_table("lease_arrears")
    op.drop_table("servicing_reminders")
