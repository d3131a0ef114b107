"""A TCP proxy whose line can be cut: every open connection is dropped and new ones are refused until it is
restored. What a database restart or a network partition looks like from the client's side.

    with CuttableProxy("127.0.0.1", 5432) as proxy:
        ...  # a client on 127.0.0.1:proxy.port
        proxy.cut()
        proxy.restore()
"""

from __future__ import annotations

import socket
import threading

from tests.common.relay import Relay
from tests.common.relay import close_sockets


class CuttableProxy(Relay):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.cut()

    def cut(self) -> None:
        """Drop every connection; new ones are closed at once (the client sees the server go away)."""
        self._cut.set()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for s in sockets:
            close_sockets(s)

    def restore(self) -> None:
        self._cut.clear()

    def relay(self, client: socket.socket) -> None:
        if self._cut.is_set():
            close_sockets(client)
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            close_sockets(client)
            return
        with self._lock:
            self._open.update((client, server))
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            close_sockets(source, target)
