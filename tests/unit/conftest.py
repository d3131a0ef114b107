"""Unit tests are pure: any attempt by a test to open a network socket fails it.

Only the test's own thread is guarded: when the whole suite runs in one session, the integration tests'
session-scoped servers (a live BFF, its background threads) are still up, and a late connection to them — a
webhook localstripe sends a second after an event, say — must not fail whichever unit test is running then
(seen in CI: "Exception in thread Thread-1 (serve_forever)" ... SocketBlocked, failing a regex test)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest


class SocketBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    test_thread = threading.current_thread()

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def guard(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is test_thread:
                raise SocketBlocked("unit tests must not use the network")
            return real(*args, **kwargs)
        return guard

    monkeypatch.setattr(socket, "socket", guarded(socket.socket))
    monkeypatch.setattr(socket, "create_connection", guarded(socket.create_connection))
    yield
