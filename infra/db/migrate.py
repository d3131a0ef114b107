"""Apply the BFF's Alembic migrations programmatically (``leaseline db upgrade``, ``make run``, tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from infra.db.engine import first_line
from infra.db.engine import is_embedded_database
from infra.db.engine import make_engine
from infra.paths import embedded_postgres_dir

MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")


def alembic_config(url: str, migrations: Path = MIGRATIONS) -> Config:
    """An Alembic config for ``url`` and the ``migrations`` folder (the BFF's by default; the risk service
    passes its own) without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` back to ``revision``."""
    command.downgrade(alembic_config(url), revision)


class DatabaseNotReady(Exception):
    """The database cannot serve this code: unreachable, no schema, older or newer. One line, with the fix."""


def shown(url: str) -> str:
    """``url`` as it may be printed: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def require_current(url: str, *, migrations: Path = MIGRATIONS, version_table: str = "alembic_version",
                    fix: str = "leaseline db upgrade") -> None:
    """Refuse to serve a database that is unreachable or not at this code's head revision: a service started
    on one would answer 500 on every request. Raises :class:`DatabaseNotReady` naming ``fix``."""
    current = set(_reach(url, lambda conn: MigrationContext.configure(conn, opts={"version_table": version_table})
                         .get_current_heads()))
    script = ScriptDirectory.from_config(alembic_config(url, migrations))
    heads = set(script.get_heads())
    if current == heads:
        return
    needs, where = ", ".join(sorted(heads)), shown(url)
    if not current:
        raise DatabaseNotReady(f"database {where} has no schema yet: run `{fix}`")
    at = ", ".join(sorted(current))
    try:
        unknown = [rev for rev in current if script.get_revision(rev) is None]
    except CommandError:  # alembic: "Can't locate revision identified by ..."
        unknown = list(current)
    if unknown:
        raise DatabaseNotReady(f"database {where} is at revision {at}, which this code does not know (it needs "
                               f"{needs}): deploy the code that matches the database")
    raise DatabaseNotReady(f"database {where} is at revision {at}, this code needs {needs}: run `{fix}`")


def require_reachable(url: str) -> None:
    """Raise :class:`DatabaseNotReady` in one line when the database at ``url`` does not answer."""
    _reach(url, lambda conn: None)


def _reach(url: str, read: Callable[[Connection], T]) -> T:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if is_embedded_database(url):
                _ours(conn)
            return read(conn)
    except SQLAlchemyError as exc:
        hint = " (the embedded database runs while `make run` does)" if is_embedded_database(url) else ""
        raise DatabaseNotReady(f"database unreachable at {shown(str(engine.url))}: {first_line(exc)}{hint}"
                               ) from None
    finally:
        engine.dispose()


def _ours(conn: Connection) -> None:
    """The embedded server answering on 127.0.0.1:5433 must be this checkout's (``<var>/postgres``), not another
    checkout's `make run`: their migrations and demo data would otherwise land in each other's databases."""
    served = Path(str(conn.exec_driver_sql("SHOW data_directory").scalar())).resolve()
    ours = (embedded_postgres_dir() / "data").resolve()
    if served != ours:
        raise DatabaseNotReady(f"the embedded PostgreSQL on 127.0.0.1:5433 serves {served}, not this checkout's "
                               f"{ours}: stop the other `make run`, or set LEASELINE_VAR_DIR to its folder")


