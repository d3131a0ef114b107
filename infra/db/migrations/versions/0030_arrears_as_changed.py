"""``lease_arrears`` keeps what changes when money moves or a bucket is entered, not what changes with the calendar
(issue 18, Targets: the close of 100,000 leases ≤ 60 s). Its days past due, late charges and ``as_of`` changed every
day for every lease in arrears, so each close rewrote every row (≈ 20,000 at 100,000 leases: a new row version each,
the table and its keys growing by that much a day until vacuumed, and each batch's read of its rows slower for it).
They are read now from what they follow: days past due from the oldest overdue rent's first day and the lease's last
close (``leases.closed_through``), late charges from its instalments; the close writes a row only when its bucket, its
oldest overdue rent or what is overdue changed.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("lease_arrears", "as_of")
    op.drop_column("lease_arrears", "days_past_due")
    op.drop_column("lease_arrears", "penalty_amount")


def downgrade() -> None:
    # as the close of each row's lease last saw it: the next close rewrites them
    op.add_column("lease_arrears", sa.Column("as_of", sa.Date(), nullable=True))
    op.add_column("lease_arrears", sa.Column("days_past_due", sa.Integer(), nullable=True))
    op.add_column("lease_arrears", sa.Column("penalty_amount", sa.BigInteger(), nullable=True))
    op.execute("UPDATE lease_arrears AS a SET as_of = l.closed_through, "
               "days_past_due = greatest(0, l.closed_through - a.oldest_overdue_since + 1), "
               "penalty_amount = coalesce((SELECT sum(i.penalty_accrued - i.paid_penalty) FROM instalments AS i "
               "WHERE i.lease_id = a.lease_id AND i.penalty_accrued > i.paid_penalty), 0) "
               "FROM leases AS l WHERE l.id = a.lease_id")
    for name in ("as_of", "days_past_due", "penalty_amount"):
        op.alter_column("lease_arrears", name, nullable=False)
