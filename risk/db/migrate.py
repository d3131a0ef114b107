"""Apply the risk service's Alembic migrations programmatically (``create_app`` in development, tests, CLI).

The version table is ``risk_alembic_version``, so these migrations can share a database with the BFF's.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from infra.db.migrate import alembic_config as _config
from infra.db.migrate import require_current as _require_current

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "risk_alembic_version"


def alembic_config(url: str) -> Config:
    """An Alembic config for the risk service's migrations at ``url``."""
    return _config(url, MIGRATIONS)


def require_current(url: str) -> None:
    """Refuse (:class:`~infra.db.migrate.DatabaseNotReady`) a database not at the risk service's head."""
    _require_current(url, migrations=MIGRATIONS, version_table=VERSION_TABLE,
                     fix="leaseline db upgrade --service risk")


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the risk tables at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the risk tables at ``url`` back to ``revision``."""
    command.downgrade(alembic_config(url), revision)
