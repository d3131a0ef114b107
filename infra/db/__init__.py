"""Database adapter: SQLAlchemy 2 engine and sessions, the BFF's tables and their Alembic migrations."""

from infra.db.engine import Database
from infra.db.engine import make_engine

__all__ = ["Database", "make_engine"]
