"""A service asked to start on a database it cannot use refuses in one line, exit 2, with what fixes it.

Found (issue 15): ``leaseline serve bff`` on an unmigrated database started and answered 500 on every page, and
on an unreachable one started too; the risk and contract services printed a traceback and exited 1. A deploy
script, or a person at the terminal, should read one line naming the database (never its password) and the
command to run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from infra.db.migrate import alembic_config
from infra.db.migrate import upgrade
from tests.common.contract import free_port as closed_port  # free now: nothing listens there
from tests.conftest import postgres_database

ROOT = Path(__file__).resolve().parents[2]


def revisions() -> tuple[str, str]:
    """The BFF's head revision and the one before it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(os.environ["TEST_DATABASE_URL"])).get_revision("head")
    return head.revision, str(head.down_revision)


def shown(url: str) -> str:
    """``url`` as a refusal prints it: the password, if any, masked."""
    return make_url(url).render_as_string(hide_password=True)


def serve(service: str, tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """``leaseline serve <service>`` on a closed port's neighbourhood: (exit code, the lines of stderr)."""
    result = subprocess.run([sys.executable, "-m", "leaseline", "serve", service, "--port", str(closed_port())],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "LEASELINE_VAR_DIR": str(tmp_path), **env})
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.returncode, lines


UNREACHABLE = {"bff": "LEASELINE_DATABASE_URL", "risk": "LEASELINE_RISK_DATABASE_URL",
               "contract": "LEASELINE_CONTRACT_DATABASE_URL"}


@pytest.mark.parametrize("service", sorted(UNREACHABLE))
def test_a_service_refuses_an_unreachable_database_in_one_line(service: str, tmp_path: Path) -> None:
    url = f"postgresql://leaseline:s3cret-pw@127.0.0.1:{closed_port()}/leaseline"
    code, lines = serve(service, tmp_path, **{UNREACHABLE[service]: url})
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: database unreachable at postgresql+psycopg://leaseline:***@127.0.0.1:"), lines
    assert "s3cret-pw" not in lines[0]


def test_the_bff_refuses_a_database_with_no_schema(tmp_path: Path) -> None:
    for url in postgres_database("leaseline_empty"):
        code, lines = serve("bff", tmp_path, LEASELINE_DATABASE_URL=url)
        assert code == 2, lines
        assert lines == [f"Error: database {shown(url)} has no schema yet: run `leaseline db upgrade`"]


def test_the_bff_refuses_an_older_schema(tmp_path: Path) -> None:
    head, previous = revisions()
    for url in postgres_database("leaseline_old"):
        upgrade(url, previous)
        code, lines = serve("bff", tmp_path, LEASELINE_DATABASE_URL=url)
        assert code == 2, lines
        assert lines == [f"Error: database {shown(url)} is at revision {previous}, this code needs {head}:"
                         " run `leaseline db upgrade`"]


def test_the_bff_refuses_a_schema_newer_than_its_code(tmp_path: Path) -> None:
    """A rollback of the code after a migration: the old code must not guess at tables it does not know."""
    from sqlalchemy import create_engine
    from sqlalchemy import text

    for url in postgres_database("leaseline_new"):
        upgrade(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        engine.dispose()
        code, lines = serve("bff", tmp_path, LEASELINE_DATABASE_URL=url)
        assert code == 2, lines
        assert lines == [f"Error: database {shown(url)} is at revision 0099, which this code does not know (it needs"
                         f" {revisions()[0]}): deploy the code that matches the database"]


def test_the_contract_service_not_migrating_itself_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    for url in postgres_database("leaseline_contract_empty"):
        code, lines = serve("contract", tmp_path, LEASELINE_CONTRACT_DATABASE_URL=url, LEASELINE_CONTRACT_MIGRATE="0")
        assert code == 2, lines
        assert lines == [f"Error: database {shown(url)} has no schema yet:"
                         " run `leaseline db upgrade --service contract`"], lines


@pytest.mark.parametrize("service", ["bff", "risk", "contract"])
def test_db_upgrade_brings_each_services_database_to_its_head(service: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The command the refusals name does what they say."""
    from click.testing import CliRunner

    from contract.db.migrate import require_current as contract_current
    from infra.db.migrate import DatabaseNotReady
    from infra.db.migrate import require_current as bff_current
    from leaseline.cli import main
    from risk.db.migrate import require_current as risk_current

    check = {"bff": bff_current, "risk": risk_current, "contract": contract_current}[service]
    monkeypatch.setenv("LEASELINE_VAR_DIR", str(tmp_path))
    for url in postgres_database(f"leaseline_{service}_up"):
        monkeypatch.setenv(UNREACHABLE[service], url)
        with pytest.raises(DatabaseNotReady, match="has no schema yet"):
            check(url)
        result = CliRunner().invoke(main, ["db", "upgrade", "--service", service])
        assert result.exit_code == 0, result.output
        assert result.output == f"migrated {shown(url)}\n"
        check(url)  # now at the head: no refusal


def test_the_contract_service_in_production_refuses_the_development_ca(tmp_path: Path) -> None:
    """Issue 16 §7: in production the lessee's one-time certificates come from a licensed CA, never from the
    development CA this software makes on first run."""
    import base64

    from contract.signing.ca import SigningAuthority
    from tests.unit.test_contract_production import production

    SigningAuthority.load_or_create(tmp_path / "dev-ca")
    for url in postgres_database("leaseline_contract_prod"):
        env = {**production(tmp_path), "LEASELINE_CONTRACT_DATABASE_URL": url,
               "LEASELINE_SIGNING_DIR": str(tmp_path / "dev-ca"),
               "LEASELINE_PII_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
               "LEASELINE_S3_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}
        code, lines = serve("contract", tmp_path, **env)
        assert code == 2, lines
        assert lines[-1].startswith("Error: LEASELINE_SIGNING_DIR: ") and "development CA" in lines[-1], lines
