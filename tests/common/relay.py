"""The TCP relay the tests' fault proxies are made of (tests/common/stall.py, cut.py, hold.py): it listens on
127.0.0.1 (a free port), and hands each client connection to :meth:`Relay.relay`, which decides what the proxy
does with it (forward both ways, drop answers, hold one back, refuse while cut)."""

from __future__ import annotations

import socket
import threading
from typing import Any


class Relay:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()

    def __enter__(self) -> Any:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.relay(client)

    def relay(self, client: socket.socket) -> None:
        """Serve one client connection (called on the accepting thread: start threads for long work)."""
        raise NotImplementedError


def close_sockets(*sockets: Any) -> None:
    """Shut each socket down both ways and close it (the other end sees the connection end)."""
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
