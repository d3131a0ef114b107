"""The unit tests' socket guard (tests/unit/conftest.py) stops the test itself, not other threads of the run."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.unit.conftest import SocketBlocked


def test_a_unit_test_cannot_open_a_socket() -> None:
    with pytest.raises(SocketBlocked):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(SocketBlocked):
        socket.socket()


def test_another_thread_of_the_run_still_can() -> None:
    """A session-scoped server of the integration tests accepting a late connection while a unit test runs."""
    opened: list[bool] = []
    thread = threading.Thread(target=lambda: opened.append(socket.socket().close() is None))
    thread.start()
    thread.join(5)
    assert opened == [True]
