"""Engine and session factory. SQLite by default (a file under ``var/``), PostgreSQL in production and CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker


class DatabaseUnavailable(Exception):
    """The database did not answer, where the code notices it itself rather than through the driver."""


#: what means the database server is away (refused, dropped, reset, restarting; psycopg's OperationalError, a
#: closed connection's InterfaceError), not a mistake of a query (ProgrammingError, IntegrityError: a bug)
UNAVAILABLE: tuple[type[Exception], ...] = (DatabaseUnavailable, exc.OperationalError, exc.InterfaceError)


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; for a SQLite file, create its folder and enable WAL + foreign keys."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):  # we ship psycopg 3, not SQLAlchemy's default psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
        url = parsed.render_as_string(hide_password=False)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
    engine = create_engine(url, **kwargs)
    _one_process_per_connection(engine)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


def _one_process_per_connection(engine: Engine) -> None:
    """A pooled connection belongs to the process that opened it. gunicorn forks its workers from a master that
    has already used the database: without this, two workers would talk over one socket and their answers
    would cross. SQLAlchemy's recipe ("Using Connection Pools with Multiprocessing or os.fork()"): a connection
    checked out in another process is dropped from the pool, unclosed (closing it would end the parent's
    session), and a new one is opened."""

    @event.listens_for(engine, "connect")
    def _opened_by(_dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _ours(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError(f"connection opened by process {record.info.get('pid')}, "
                                         f"checked out by process {os.getpid()}")


class Database:
    """One engine and its session factory; ``session()`` is a unit of work (commit on success)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
