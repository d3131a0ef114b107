"""Credit applications, their transitions, consents, KYC documents and checks, idempotency keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dealer_id", sa.String(36), _fk("applications", "dealer_id", "dealers"), nullable=False),
        sa.Column("owner_id", sa.String(36), _fk("applications", "owner_id", "users"), nullable=True),
        sa.Column("invitation_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("vehicle_id", sa.String(64), nullable=False),
        sa.Column("vehicle_label", sa.String(160), nullable=False),
        sa.Column("plan_code", sa.String(120), nullable=False),
        sa.Column("plan_json", sa.Text(), nullable=False),
        sa.Column("draft_enc", sa.Text(), nullable=False),
        sa.Column("customer_name", sa.String(64), nullable=False),
        sa.Column("id_masked", sa.String(24), nullable=False),
        sa.Column("id_hash", sa.String(64), nullable=True),
        sa.Column("mobile_masked", sa.String(16), nullable=False),
        sa.Column("mobile_hash", sa.String(64), nullable=True),
        sa.Column("face_attempts", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("submitted_at", TS, nullable=True),
        sa.Column("decided_at", TS, nullable=True),
    )
    for column in ("dealer_id", "owner_id", "status", "id_hash", "mobile_hash", "created_at"):
        op.create_index(op.f(f"ix_applications_{column}"), "applications", [column])
    op.create_table(
        "application_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(36), _fk("application_events", "application_id", "applications"),
                  nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=False),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index(op.f("ix_application_events_application_id"), "application_events", ["application_id"])
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(36), _fk("consents", "application_id", "applications"),
                  nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("text_version", sa.String(32), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("given_at", TS, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(255), nullable=False),
    )
    op.create_index(op.f("ix_consents_application_id"), "consents", ["application_id"])
    op.create_table(
        "kyc_documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("application_id", sa.String(36), _fk("kyc_documents", "application_id", "applications"),
                  nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("object_key", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("biometric", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
    )
    op.create_index(op.f("ix_kyc_documents_application_id"), "kyc_documents", ["application_id"])
    op.create_table(
        "kyc_checks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("application_id", sa.String(36), _fk("kyc_checks", "application_id", "applications"),
                  nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index(op.f("ix_kyc_checks_application_id"), "kyc_checks", ["application_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "kyc_checks", "kyc_documents", "consents", "application_events",
                  "applications"):
        op.drop_table(table)
