"""Apply the contract service's Alembic migrations programmatically (start-up in development, tests, CLI).

The version table is ``contract_alembic_version``, so these migrations can share a database with the others.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from infra.db.migrate import alembic_config as _config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "contract_alembic_version"


def alembic_config(url: str) -> Config:
    """An Alembic config for the contract service's migrations at ``url``."""
    return _config(url, MIGRATIONS)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the contract tables at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)
