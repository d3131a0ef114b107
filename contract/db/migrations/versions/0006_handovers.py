"""the signed vehicle handover record (车辆交接确认书): ``contract_handovers``, at most one per contract.

The lease's term ran from the day the dealer pressed 交车 in the BFF, while the schedule's dates were those
computed when the contract was generated. The handover day, signed by the customer and the lessor, is now the
start of the term (起租日); the record dates every rent from it and its PDF is kept under Object Lock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.db.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_handovers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("contract_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("delivered_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("odometer_km", sa.Integer(), nullable=False),
        sa.Column("keys", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("handed_over_by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("version", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("ledger_index", sa.Integer(), nullable=True),
        sa.Column("retain_until", UTCDateTime(), nullable=True),
        sa.Column("signed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract_contracts.id"],
                                name=op.f("fk_contract_handovers_contract_id_contract_contracts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_handovers")),
        sa.UniqueConstraint("contract_id", name=op.f("uq_contract_handovers_contract_id")),
        sa.UniqueConstraint("sha256", name=op.f("uq_contract_handovers_sha256")),
    )


def downgrade() -> None:
    op.drop_table("contract_handovers")
