"""The general ledger (issue 19): ``journal_entries`` (one per money event, unique ``key``), ``journal_lines`` (integer
fen on one side each, with the lease and dealer) and ``ledger_periods`` (closed months).

The database keeps the ledger's two rules itself, whatever code writes to it:
- append-only: UPDATE, DELETE and TRUNCATE on both journal tables raise (a correction is a reversing entry);
- balanced: after each INSERT into ``journal_lines`` the entries it touched must have debits equal to credits and at
  least two lines (a statement-level trigger over the inserted rows), and at commit every new entry must have lines
  (a deferred constraint trigger).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=True),
        sa.Column("dealer_id", sa.String(36), nullable=True),
        sa.Column("memo", sa.String(255), nullable=False),
        sa.Column("chart_version", sa.String(16), nullable=False),
        sa.Column("reverses_id", sa.BigInteger(), sa.ForeignKey("journal_entries.id"), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_unique_constraint(op.f("uq_journal_entries_key"), "journal_entries", ["key"])
    op.create_unique_constraint(op.f("uq_journal_entries_reverses_id"), "journal_entries", ["reverses_id"])
    op.create_index(op.f("ix_journal_entries_booked_on"), "journal_entries", ["booked_on"])
    op.create_index(op.f("ix_journal_entries_lease_id"), "journal_entries", ["lease_id"])
    op.create_table(
        "journal_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("entry_id", sa.BigInteger(), sa.ForeignKey("journal_entries.id"), nullable=False),
        sa.Column("account", sa.String(80), nullable=False),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("credit", sa.BigInteger(), nullable=False),
        sa.Column("lease_id", sa.String(36), nullable=True),
        sa.Column("dealer_id", sa.String(36), nullable=True),
        sa.CheckConstraint("debit >= 0 AND credit >= 0 AND (debit > 0) <> (credit > 0)", name="one_side"),
    )
    op.create_index(op.f("ix_journal_lines_entry_id"), "journal_lines", ["entry_id"])
    op.create_index("ix_journal_lines_account_entry", "journal_lines", ["account", "entry_id"])
    op.create_index(op.f("ix_journal_lines_lease_id"), "journal_lines", ["lease_id"])
    op.create_index(op.f("ix_journal_lines_dealer_id"), "journal_lines", ["dealer_id"])
    op.create_table(
        "ledger_periods",
        sa.Column("month", sa.Date(), primary_key=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(36), nullable=False),
        sa.Column("approved_by", sa.String(36), nullable=False),
    )
    op.execute("""
CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the journal is append-only: % on % refused (post a reversing entry)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END $$""")
    op.execute("""
CREATE FUNCTION journal_lines_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad bigint;
BEGIN
  SELECT l.entry_id INTO bad FROM journal_lines l
   WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM inserted)
   GROUP BY l.entry_id HAVING sum(l.debit) <> sum(l.credit) OR count(*) < 2 LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'journal entry % does not balance', bad USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$""")
    op.execute("""
CREATE FUNCTION journal_entry_has_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM journal_lines WHERE entry_id = NEW.id) THEN
    RAISE EXCEPTION 'journal entry % (%) has no lines', NEW.id, NEW.key USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$""")
    for table in ("journal_entries", "journal_lines"):
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION journal_append_only()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()")
    op.execute("CREATE TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines REFERENCING NEW TABLE AS inserted "
               "FOR EACH STATEMENT EXECUTE FUNCTION journal_lines_balanced()")
    op.execute("CREATE CONSTRAINT TRIGGER journal_entries_have_lines AFTER INSERT ON journal_entries "
               "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_has_lines()")


def downgrade() -> None:
    op.drop_table("ledger_periods")
    op.drop_table("journal_lines")
    op.drop_table("journal_entries")
    for function in ("journal_entry_has_lines", "journal_lines_balanced", "journal_append_only"):
        op.execute(f"DROP FUNCTION {function}()")
