"""The month close with four eyes (issue 19 §4): ``ledger_close_requests`` (one ops user asks for a month's close, a
different one approves it), and the database's own guard of the closed months.

- ``ledger_close_requests``: a month's request, ``pending`` until another user approves it (``approved``: the month's
  ``ledger_periods`` row is written in the same transaction) or its requester withdraws it (``withdrawn``); at most one
  pending and one approved request a month, and the approver is never the requester (CHECK), whatever code writes.
- ``ledger_periods`` stays as it is written: a closed month is never reopened or edited (UPDATE, DELETE and TRUNCATE
  raise), its row names the first day of a month, and the one who closed it is not the one who approved it.
- Every journal entry inserted is booked no earlier than the first day after the latest closed month (a BEFORE INSERT
  trigger moves ``booked_on`` forward, ``value_date`` untouched): infra/books.py ``post`` books it so already, but it
  reads the closed months before its insert, and a close committed in between would otherwise let an entry into the
  month just closed. The trigger's function is VOLATILE: under READ COMMITTED its query sees a close committed after
  the insert began (infra/month_close.py takes SHARE on ``journal_entries`` while it closes, so the close waits for
  the postings in flight and the postings after it wait for the close).

Revision ID: 0034
Revises: 0031 (0032 and 0033 are reserved for other work; whoever adds them chains them here by hand)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
#: written down, never read at run time: a revision that picked its parent from the files present would move under a
#: database already migrated past it (a later 0032 slipped below 0034 would look applied and never run)
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_close_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(36), nullable=False),
        sa.Column("requested_by_label", sa.String(254), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checks", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(36), nullable=True),
        sa.Column("decided_by_label", sa.String(254), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'withdrawn')", name="close_request_status"),
        sa.CheckConstraint("status <> 'approved' OR (decided_by IS NOT NULL AND decided_by <> requested_by)",
                           name="close_request_four_eyes"),
    )
    op.create_index("ix_ledger_close_requests_month", "ledger_close_requests", ["month"])
    op.create_index("uq_ledger_close_requests_pending", "ledger_close_requests", ["month"], unique=True,
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("uq_ledger_close_requests_approved", "ledger_close_requests", ["month"], unique=True,
                    postgresql_where=sa.text("status = 'approved'"))
    op.create_check_constraint("ledger_period_first_day", "ledger_periods", "EXTRACT(DAY FROM month) = 1")
    op.create_check_constraint("ledger_period_four_eyes", "ledger_periods", "closed_by <> approved_by")
    op.execute("""
CREATE FUNCTION ledger_periods_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a closed month stays closed: % on ledger_periods refused', TG_OP
    USING ERRCODE = 'restrict_violation';
END $$""")
    op.execute("CREATE TRIGGER ledger_periods_final BEFORE UPDATE OR DELETE ON ledger_periods "
               "FOR EACH ROW EXECUTE FUNCTION ledger_periods_final()")
    op.execute("CREATE TRIGGER ledger_periods_no_truncate BEFORE TRUNCATE ON ledger_periods "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_periods_final()")
    op.execute("""
CREATE FUNCTION journal_entry_open_month() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE closed date;
BEGIN
  SELECT max(month) INTO closed FROM ledger_periods;
  IF closed IS NOT NULL AND NEW.booked_on < (closed + interval '1 month')::date THEN
    NEW.booked_on := (closed + interval '1 month')::date;
  END IF;
  RETURN NEW;
END $$""")
    op.execute("CREATE TRIGGER journal_entries_open_month BEFORE INSERT ON journal_entries "
               "FOR EACH ROW EXECUTE FUNCTION journal_entry_open_month()")


def downgrade() -> None:
    op.execute("DROP TRIGGER journal_entries_open_month ON journal_entries")
    op.execute("DROP FUNCTION journal_entry_open_month()")
    op.execute("DROP TRIGGER ledger_periods_no_truncate ON ledger_periods")
    op.execute("DROP TRIGGER ledger_periods_final ON ledger_periods")
    op.execute("DROP FUNCTION ledger_periods_final()")
    op.drop_constraint("ledger_period_four_eyes", "ledger_periods", type_="check")
    op.drop_constraint("ledger_period_first_day", "ledger_periods", type_="check")
    op.drop_table("ledger_close_requests")
