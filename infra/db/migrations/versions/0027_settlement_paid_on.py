"""Early settlement (issue 18 §5): ``settlement_quotes.paid_on`` — the business date the settlement was paid (the
payment, or the confirmation of a quote the deposit covers, booked: infra/settlements.py ``_settle``), beside the
quote's ``settles_on`` (结清日: the agreed settlement day, interest counted to it; the lease's ``settled_on``), which
the contract's notice may put days later. The settlement certificate prints both (付清日, 结清日) and the mortgage
release opens on the day paid: opened on a settlement day still ahead, its form's first day was after its last (the
business date) and it could not be recorded. NULL until paid.

Quotes paid before this migration get the value date of the movements their settlement booked (the business date it was
booked on: every settlement books at least its interest and fee lines, keyed ``settlement:<quote id>:…``).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("settlement_quotes", sa.Column("paid_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE settlement_quotes q SET paid_on = (SELECT min(m.value_date) FROM servicing_movements m "
        "WHERE m.key LIKE 'settlement:' || q.id || ':%') WHERE q.status = 'paid'"
    )


def downgrade() -> None:
    op.drop_column("settlement_quotes", "paid_on")
