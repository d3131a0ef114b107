"""A process that forks (gunicorn's workers, made from one master) must not share its parent's connections.

The services are created in gunicorn's master and forked into workers: a database connection, an S3 keep-alive
connection or an HTTP keep-alive connection to another service opened before the fork is one socket in two
processes. Two workers then talk over it at once, and the answers cross: seen in CI as psycopg's "unexpected
result EMPTY_QUERY from command 'BEGIN'" (a 500) and as a contract PDF whose SHA-256 did not match (a 503), so
the phone showed broken contract pages. Each test forks once and checks, from the outside, that the child
opened a connection of its own."""

from __future__ import annotations

import http.server
import os
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from infra.clients.http import ServiceClient
from infra.db.engine import Database
from infra.peers import SeaweedS3
from infra.storage import S3ObjectStore
from tests.common.s3 import seaweed
from tests.common.stall import StallProxy
from tests.conftest import postgres_database


def in_child(work: Callable[[], bytes]) -> bytes:
    """Run ``work`` in a forked child; its bytes (or its error) come back through a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            answer = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            answer, code = f"{type(exc).__name__}: {exc}".encode(), 1
        os.write(write, answer)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, answer.decode(errors="replace")
    return answer


@pytest.mark.db
def test_a_forked_process_opens_its_own_database_connection() -> None:
    for url in postgres_database("leaseline_fork"):
        db = Database(url)
        try:
            def backend(db: Database = db) -> bytes:
                with db.session() as session:
                    return str(session.execute(text("SELECT pg_backend_pid()")).scalar_one()).encode()

            parents = backend()  # the connection now waits in the pool, as in gunicorn's master after start-up
            assert in_child(backend) != parents
            assert backend() == parents  # and the parent's connection still works
        finally:
            db.dispose()


@pytest.fixture(scope="module")
def s3_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    yield from seaweed(tmp_path_factory)


def test_a_forked_process_opens_its_own_object_storage_connection(s3_peer: SeaweedS3) -> None:
    host, port = s3_peer.endpoint_url.rsplit("//", 1)[1].split(":")
    with StallProxy(host, int(port), trigger=b"never in a request", after=1) as proxy:
        store = S3ObjectStore(endpoint_url=proxy.url, bucket=f"leaseline-fork-{uuid.uuid4().hex[:8]}",
                              access_key=s3_peer.access_key, secret_key=s3_peer.secret_key)
        store.ensure_bucket()
        store.put("a/b.txt", b"contract", "text/plain")
        assert store.get("a/b.txt") == b"contract"
        before = proxy.accepted
        assert in_child(lambda: store.get("a/b.txt")) == b"contract"
        assert proxy.accepted > before, "the child used its parent's S3 connection"


class _Counting(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the services' gunicorn
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_forked_process_opens_its_own_connection_to_our_services() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ServiceClient(f"http://127.0.0.1:{server.server_address[1]}", lambda: "token")
        assert client.call("GET", "/x") == (200, {"ok": True})
        before = _Counting.connections
        assert in_child(lambda: repr(client.call("GET", "/x")).encode()) == b"(200, {'ok': True})"
        assert _Counting.connections > before, "the child used its parent's keep-alive connection"
    finally:
        server.shutdown()
        server.server_close()
