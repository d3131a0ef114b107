"""The close of business's reads, indexed (issue 18, Targets: the close of 100,000 leases ≤ 60 s): partial indexes on
``instalments`` for what each batch of 500 leases asks — the open rents due up to the business date (the close's own
scan, the reminders before a due date, the collections), the late ones (arrears, reminders after a rent became
overdue, credit notices) and those owing a late charge. Each batch read every instalment of its leases through the
``(lease_id, number)`` key (≈ 18,000 rows for ≈ 100 wanted, ~10 ms a query, five to seven queries a batch); each
index holds only the rows its query wants, so it shrinks as rents are paid.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_instalments_open", "instalments", ["lease_id", "due_on"],
                    postgresql_where=sa.text("state IN ('pending', 'due', 'partly_paid', 'overdue')"))
    op.create_index("ix_instalments_late", "instalments", ["lease_id", "overdue_since"], postgresql_where=sa.text(
        "overdue_since IS NOT NULL AND state NOT IN ('paid', 'waived', 'settled')"))
    op.create_index("ix_instalments_penalty_unpaid", "instalments", ["lease_id"],
                    postgresql_where=sa.text("penalty_accrued > paid_penalty"))


def downgrade() -> None:
    op.drop_index("ix_instalments_penalty_unpaid", table_name="instalments")
    op.drop_index("ix_instalments_late", table_name="instalments")
    op.drop_index("ix_instalments_open", table_name="instalments")
