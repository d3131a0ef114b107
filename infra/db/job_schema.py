"""procrastinate's schema in a service's database, for the migrations that add or remove a job queue.

The schema comes from the pinned procrastinate wheel (requirements.lock). A later release that changes it
ships its own SQL migrations (``procrastinate/sql/migrations``): apply them in a migration of each service when
the pin moves. One database holds one service's queue: procrastinate's tables have fixed names.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection


def create(bind: Connection) -> None:
    """procrastinate's tables, types and functions; refused in a database that already holds a queue."""
    from procrastinate.schema import SchemaManager

    if bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar_one():
        raise RuntimeError("this database already holds a job queue (procrastinate_jobs): each service's jobs "
                           "need a database of their own (LEASELINE_*DATABASE_URL)")
    # executed as one script with no parameters; psycopg still reads "%" as a placeholder, hence "%%"
    bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def drop(bind: Connection) -> None:
    """Everything :func:`create` made."""
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
