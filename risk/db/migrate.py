"""Apply the risk service's Alembic migrations programmatically (``create_app`` in development, tests, CLI).

The version table is ``risk_alembic_version``, so these migrations can share a database with the BFF's.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from infra.db.migrate import alembic_config as _config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "risk_alembic_version"


def alembic_config(url: str) -> Config:
    """An Alembic config for the risk service's migrations at ``url``."""
    return _config(url, MIGRATIONS)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the risk tables at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the risk tables at ``url`` back to ``revision``."""
    command.downgrade(alembic_config(url), revision)
