"""Alembic environment for the BFF's tables (online mode only: we always migrate a live database)."""

from __future__ import annotations

from alembic import context

from infra.db.engine import make_engine
from infra.db.models import Base
from infra.db.models import ours

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                          include_object=ours)
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
