"""procrastinate's schema in a service's database, for the migrations that add or remove a job queue.

The schema comes from the pinned procrastinate wheel (requirements.lock). A later release that changes it
ships its own SQL migrations (``procrastinate/sql/migrations``): apply them in a migration of each service when
the pin moves. One database holds one service's queue: procrastinate's tables have fixed names.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _errors(name: str) -> sa.Table:
    """The table of the errors of the jobs' failed attempts (procrastinate keeps none): ``name`` per service."""
    return sa.Table(
        name, sa.MetaData(),
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", sa.BigInteger, sa.ForeignKey("procrastinate_jobs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def create(bind: Connection, errors: str) -> None:
    """procrastinate's tables, types and functions and the table ``errors``; refused in a database that already
    holds a queue."""
    from procrastinate.schema import SchemaManager

    if bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar_one():
        raise RuntimeError("this database already holds a job queue (procrastinate_jobs): each service's jobs "
                           "need a database of their own (LEASELINE_*DATABASE_URL)")
    # executed as one script with no parameters; psycopg still reads "%" as a placeholder, hence "%%"
    bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    # the foreign key names a table these metadata do not describe: reflected from the database
    errors_table = _errors(errors)
    sa.Table("procrastinate_jobs", errors_table.metadata, autoload_with=bind)
    errors_table.create(bind)


def drop(bind: Connection, errors: str) -> None:
    """Everything :func:`create` made."""
    _errors(errors).drop(bind, checkfirst=True)
    for table in ("procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs",
                  "procrastinate_workers"):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    functions = bind.exec_driver_sql(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%%'").scalars().all()
    for signature in functions:
        bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
    types = bind.exec_driver_sql(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%%' AND t.typtype IN ('e', 'c')"
    ).scalars().all()
    for name in types:
        bind.exec_driver_sql(f"DROP TYPE IF EXISTS {name} CASCADE")
