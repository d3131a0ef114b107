"""Dealer groups, dealers (tenants), staff users and the append-only audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dealer_groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("oidc_issuer", sa.String(255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "dealers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("group_id", sa.String(36),
                  sa.ForeignKey("dealer_groups.id", name=op.f("fk_dealers_group_id_dealer_groups")), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("modules", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("dealer_id", sa.String(36), sa.ForeignKey("dealers.id", name=op.f("fk_users_dealer_id_dealers")),
                  nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("recovery_codes", sa.Text(), nullable=False),
        sa.Column("oidc_issuer", sa.String(255), nullable=True),
        sa.Column("oidc_subject", sa.String(255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_login_at", TS, nullable=True),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.CheckConstraint(
            "role IN ('dealer_admin', 'sales', 'risk_officer_t1', 'risk_officer_t2', 'ops_admin', 'auditor')",
            name=op.f("ck_users_role"),
        ),
        sa.CheckConstraint(
            "(role IN ('dealer_admin', 'sales')) = (dealer_id IS NOT NULL)", name=op.f("ck_users_tenant_by_role")
        ),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=True),
        sa.Column("actor_label", sa.String(254), nullable=False),
        sa.Column("dealer_id", sa.String(36), nullable=True),
        sa.Column("target", sa.String(254), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(255), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])
    op.create_index(op.f("ix_audit_events_actor_id"), "audit_events", ["actor_id"])
    op.create_index(op.f("ix_audit_events_dealer_id"), "audit_events", ["dealer_id"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("users")
    op.drop_table("dealers")
    op.drop_table("dealer_groups")
