"""Partial prepayment (issue 18 §5), review fixes: ``prepayments.accrued_interest`` — the interest, signed fen, of the
days between the date the balance the prepayment starts from is valued at and the day it is made (added to the payment
when positive, a credit off it when negative; infra/prepayments.py ``accrued_adjustment``) — and
``prepayments.schedule`` — the schedule the prepayment applied, as it applied it (JSON: the new rows with their due
dates and balances, the final rent, the balance before and after, the interest line, the rents it cancelled), which the
schedule annex is built from (bff/servicing/settled.py ``annex_body``) however the instalments change later.

Prepayments applied before this migration get the schedule the annex job would have read (the instalments after the
prepayment's rent as they stand now): the best record there is of them.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-11
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("prepayments", sa.Column("accrued_interest", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("prepayments", sa.Column("schedule", sa.Text(), nullable=True))
    bind = op.get_bind()
    applied = bind.execute(
        sa.text(
            "SELECT id, lease_id, business_date, amount, option, after_number FROM prepayments "
            "WHERE status = 'applied' AND schedule IS NULL"
        )
    ).all()
    for p in applied:
        rows = bind.execute(
            sa.text(
                "SELECT number, kind, due_on, amount, principal, interest FROM instalments "
                "WHERE lease_id = :lease AND number > :after ORDER BY number"
            ),
            {"lease": p.lease_id, "after": p.after_number},
        ).all()
        balance = after = sum(r.principal for r in rows)
        listed = []
        for r in rows:
            balance -= r.principal
            listed.append(
                {
                    "number": r.number,
                    "due_on": r.due_on.isoformat(),
                    "amount": r.amount,
                    "principal": r.principal,
                    "interest": r.interest,
                    "balance": balance,
                    "final": r.kind == "final_rent",
                }
            )
        schedule = {
            "effective_on": p.business_date.isoformat(),
            "amount": p.amount,
            "accrued_interest": 0,
            "option": p.option,
            "after_number": p.after_number,
            "balance_before": after + p.amount,
            "balance_after": after,
            "rows": listed,
            "cancelled": [],
        }
        bind.execute(
            sa.text("UPDATE prepayments SET schedule = :s WHERE id = :id"),
            {"s": json.dumps(schedule, sort_keys=True), "id": p.id},
        )


def downgrade() -> None:
    op.drop_column("prepayments", "schedule")
    op.drop_column("prepayments", "accrued_interest")
