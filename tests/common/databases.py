"""Fresh PostgreSQL databases on a given server, dropped afterwards: the tests' (tests/conftest.py
``postgres_database``, on TEST_DATABASE_URL's server) and the benches' (bench/databases.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


def scratch_database(server: str, prefix: str) -> Iterator[str]:
    """A new database named ``<prefix>_<random>`` on ``server``'s server (its own database is only connected
    to), yielded as a URL with the server's credentials, and ``DROP … WITH (FORCE)`` afterwards."""
    admin_url = make_url(server).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
