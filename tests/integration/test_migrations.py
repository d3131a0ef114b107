"""Migrations: the models and the migrated schema agree, and data migrations keep what was there."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.migrate import downgrade
from infra.db.migrate import upgrade
from infra.db.models import Base
from infra.db.models import ours
from infra.pii import PiiVault
from infra.pii import configured_key

pytestmark = pytest.mark.db


def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_object": ours}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], diff


@pytest.mark.parametrize("service", ["risk", "contract"])
def test_each_service_s_migrated_tables_match_its_models(db_url: str, service: str) -> None:
    """The risk and contract services migrate their own tables (own version table); fresh database each."""
    import importlib

    from tests.conftest import postgres_database

    migrate = importlib.import_module(f"{service}.db.migrate")
    models = importlib.import_module(f"{service}.db.models")
    metadata = getattr(models, "RiskBase" if service == "risk" else "ContractBase").metadata

    def compare(url: str) -> list[object]:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={
                    "include_object": ours, "include_name": lambda name, kind, _parent: kind != "table" or (
                        name.startswith(service) and not name.endswith("alembic_version"))})
                return list(compare_metadata(context, metadata))
        finally:
            engine.dispose()

    for url in postgres_database(f"leaseline_{service}_m"):
        assert compare(url) == []


def test_invitation_mobiles_are_encrypted_by_the_migration_and_restored_by_its_downgrade() -> None:
    from tests.conftest import postgres_database

    for url in postgres_database("leaseline_m0005"):
        engine = create_engine(url)
        try:
            _encrypted_then_restored(url, engine)
        finally:
            engine.dispose()


def _encrypted_then_restored(url: str, engine: Engine) -> None:
    upgrade(url, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dealer_groups (id, name, created_at) VALUES ('g', 'G', '2026-11-25')"))
        conn.execute(text("INSERT INTO dealers (id, group_id, name, city, modules, active, created_at) "
                          "VALUES ('d', 'g', 'D', 'C', '[]', true, '2026-11-25')"))
        conn.execute(text("INSERT INTO users (id, email, name, role, dealer_id, recovery_codes, active, "
                          "failed_logins, created_at) VALUES ('u', 'u@x.cn', 'U', 'sales', 'd', '[]', true, 0, "
                          "'2026-11-25')"))
        conn.execute(text("INSERT INTO invitations (id, dealer_id, created_by, mobile, nonce_hash, expires_at, "
                          "failed_codes, locked, created_at) VALUES (:id, 'd', 'u', '13800138000', 'h', "
                          "'2026-11-26', 0, false, '2026-11-25')"), {"id": str(uuid.uuid4())})
    upgrade(url)
    vault = PiiVault(configured_key(os.environ.get("LEASELINE_PII_KEY", ""),
                                    Path(os.environ["LEASELINE_VAR_DIR"])))
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM invitations")).mappings().one()
    assert "mobile" not in row and "13800138000" not in " ".join(map(str, row.values()))
    assert vault.decrypt(row["mobile_enc"], "invitation_mobile") == "13800138000"
    assert row["mobile_hash"] == vault.lookup_hash("13800138000", "mobile")
    downgrade(url, "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT mobile FROM invitations")).scalar_one() == "13800138000"
