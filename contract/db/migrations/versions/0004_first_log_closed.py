"""evidence log: the first log takes no new entry (a trigger refuses every insert into contract_ledger_entries)

Since 0003 the commitment log continues the first one, and ``leaseline ledger migrate`` commits the first log's
entries into it once. An old version of the contract service still running during a deploy would go on
appending to the first log, after the move, entries the new log would never hold. Nothing of the new code writes
there, so the database refuses it from this revision on: the old process's append fails (its caller, the BFF's
outbox, sends the entry again later, to the new version), instead of forking the history silently.

Only inserts: the tables stay readable (``leaseline ledger verify`` recomputes the first log), and a missing
final checkpoint of the first log can still be signed once by the move (contract_ledger_checkpoints stays open:
the old code signs one only after an entry, which is refused). A later migration that rebuilds
contract_ledger_entries on SQLite (``batch_alter_table`` copies the table) must create the trigger again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MESSAGE = ("contract_ledger_entries is closed: the evidence log continues in contract_evidence_leaves "
           "(contract migration 0003, leaseline ledger migrate)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # https://www.postgresql.org/docs/current/plpgsql-trigger.html: a BEFORE statement-level trigger that
        # raises aborts the statement; check_violation (23514) reaches the driver as an integrity error
        op.execute(f"""
            CREATE FUNCTION contract_ledger_entries_closed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
            END $$""")
        op.execute("CREATE TRIGGER contract_ledger_entries_closed BEFORE INSERT ON contract_ledger_entries "
                   "FOR EACH STATEMENT EXECUTE FUNCTION contract_ledger_entries_closed()")
    else:
        # https://www.sqlite.org/lang_createtrigger.html: RAISE(ABORT, …) undoes the statement and fails it
        op.execute(f"CREATE TRIGGER contract_ledger_entries_closed BEFORE INSERT ON contract_ledger_entries "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    op.execute("DROP TRIGGER contract_ledger_entries_closed" + (
        " ON contract_ledger_entries" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION contract_ledger_entries_closed()")
