"""Alembic environment for the contract service's tables (online mode only: we always migrate a live database)."""

from __future__ import annotations

from alembic import context

from contract.db.migrate import VERSION_TABLE
from contract.db.models import ContractBase
from infra.db.engine import make_engine
from infra.db.models import ours

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=ContractBase.metadata, render_as_batch=True,
                          version_table=VERSION_TABLE, include_object=ours)
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
