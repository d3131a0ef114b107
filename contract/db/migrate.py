"""Apply the contract service's Alembic migrations programmatically (start-up in development, tests, CLI).

The version table is ``contract_alembic_version``, so these migrations can share a database with the others.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from infra.db.migrate import alembic_config as _config
from infra.db.migrate import require_current as _require_current

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "contract_alembic_version"


def alembic_config(url: str) -> Config:
    """An Alembic config for the contract service's migrations at ``url``."""
    return _config(url, MIGRATIONS)


def require_current(url: str) -> None:
    """Refuse (:class:`~infra.db.migrate.DatabaseNotReady`) a database not at the contract service's head."""
    _require_current(url, migrations=MIGRATIONS, version_table=VERSION_TABLE,
                     fix="leaseline db upgrade --service contract")


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the contract tables at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)
