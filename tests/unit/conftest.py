"""Unit tests are pure: any attempt to open a network socket fails the test."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


class SocketBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def guard(*args: object, **kwargs: object) -> socket.socket:
        raise SocketBlocked("unit tests must not use the network")

    monkeypatch.setattr(socket, "socket", guard)
    monkeypatch.setattr(socket, "create_connection", guard)
    yield
