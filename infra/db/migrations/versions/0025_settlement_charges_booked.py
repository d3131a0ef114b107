"""Early settlement (issue 18 §5), review fix R1 #7/#8: ``settlement_quotes.penalties_booked`` — the late charges the
settlement booked when it was paid (infra/settlements.py ``charges_owed``: those owed on the business date of the
payment, at most the quote's ``penalties``, which count them through the settlement day); NULL until paid. What the
quote counted and the settlement did not book is refunded (the payment's surplus, or more of the deposit): the settled
page and the settlement certificate state the charges booked and the amount settled.

Quotes paid before this migration booked their whole ``penalties`` line: that is what they keep.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("settlement_quotes", sa.Column("penalties_booked", sa.BigInteger(), nullable=True))
    op.execute("UPDATE settlement_quotes SET penalties_booked = penalties WHERE status = 'paid'")


def downgrade() -> None:
    op.drop_column("settlement_quotes", "penalties_booked")
