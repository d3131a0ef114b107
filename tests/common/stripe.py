"""localstripe for the tests: a fake Stripe API on a free loopback port (RECIPES.md), one per module or session.

A fixture wires it like ``tests.common.s3.seaweed``::

    from tests.common.stripe import StripeServer
    from tests.common.stripe import stripe_server

    @pytest.fixture(scope="module")
    def stripe_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeServer]:
        yield from stripe_server(tmp_path_factory)

Each server starts ``--from-scratch``, so it sees only the objects its own tests made.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from infra.payments import StripeGateway
from infra.peers import LocalStripe


class StripeServer:
    """A started :class:`LocalStripe` with a fresh test key and webhook secret; a context manager."""

    def __init__(self, directory: Path) -> None:
        self.peer = LocalStripe(directory)
        self.secret_key = f"sk_test_{secrets.token_hex(12)}"
        self.webhook_secret = f"whsec_{secrets.token_urlsafe(24)}"

    @property
    def api_base(self) -> str:
        return self.peer.api_base

    def gateway(self, **options: Any) -> StripeGateway:
        """A StripeGateway on this server with the test key; ``options`` go to its constructor."""
        return StripeGateway(self.secret_key, api_base=self.api_base, **options)

    def env(self, prefix: str = "LEASELINE_STRIPE_") -> dict[str, str]:
        """Settings for a process that should use this server (the names ``bff.config`` reads)."""
        return {f"{prefix}API_BASE": self.api_base, f"{prefix}SECRET_KEY": self.secret_key,
                f"{prefix}WEBHOOK_SECRET": self.webhook_secret}

    def register_webhook(self, url: str, name: str = "leaseline") -> None:
        """Have localstripe POST its events to ``url``, signed with :attr:`webhook_secret`."""
        self.peer.register_webhook(url, self.webhook_secret, name)

    def __enter__(self) -> StripeServer:
        self.peer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.peer.stop()


def stripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeServer]:
    """A started StripeServer in a temporary directory (its log), stopped afterwards: ``yield from`` it."""
    with StripeServer(tmp_path_factory.mktemp("localstripe")) as server:
        yield server


# -- Stripe's API at the HTTP boundary, for what localstripe lacks (Connect) ------------------------------------
@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    body: bytes


class FakeStripe:
    """A WSGI app answering canned ``(status, JSON)`` per ``(method, path)`` and recording every request."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        with self.lock:
            self.requests.append(Recorded(request.method, request.path, dict(request.headers),
                                          dict(request.form.items()), body))
            status, answer = self.answers.get((request.method, request.path),
                                              (404, {"error": {"type": "invalid_request_error",
                                                               "message": "Unrecognized request URL"}}))
        return Response(json.dumps(answer), status=status, content_type="application/json")(environ, start_response)


def fake_stripe() -> Iterator[tuple[FakeStripe, str]]:
    """A started :class:`FakeStripe` and its base URL, stopped afterwards: ``yield from`` it in a fixture."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = FakeStripe()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    server.server_close()
