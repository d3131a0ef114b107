"""The risk service's own tables (``risk_*``), their Alembic migrations and the repository."""
