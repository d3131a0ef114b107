"""The webhook events refused, indexed on their own: /payments lists the newest for ops on each load, and
``stripe_events`` (every event Stripe ever sent) only grows. A partial index (PostgreSQL; SQLite ≥ 3.8) on the
refusals alone, in the order the list reads them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# the very words of infra.db.models.REFUSED_EVENT (a migration does not import the models: they move on)
REFUSED = sa.text("outcome LIKE 'refused%'")


def upgrade() -> None:
    op.create_index("ix_stripe_events_refused", "stripe_events", ["received_at", "id"], postgresql_where=REFUSED,
                    sqlite_where=REFUSED)


def downgrade() -> None:
    op.drop_index("ix_stripe_events_refused", table_name="stripe_events")
