"""A TCP proxy that holds back one answer: the first request containing ``trigger`` reaches the server (which acts
on it), and the server's answer is kept from the client, whose connection stays open, waiting. What a worker
killed in the middle of a call looks like to the other side: the work was done, the caller never heard.

    with HoldProxy("127.0.0.1", port, trigger=b"POST /api/v1/assessments") as proxy:
        ...  # the client on proxy.url; proxy.held is set once an answer is being held back
"""

from __future__ import annotations

import socket
import threading

from tests.common.relay import Relay
from tests.common.relay import close_sockets


class HoldProxy(Relay):
    """``nth``: the answer held back is that of the nth request containing ``trigger`` (the earlier ones pass)."""

    def __init__(self, host: str, port: int, *, trigger: bytes, nth: int = 1) -> None:
        super().__init__(host, port)
        self.trigger, self.nth = trigger, nth
        self.requests = 0  # requests containing the trigger
        self.held = threading.Event()  # an answer is being held back
        self._lock = threading.Lock()

    def relay(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        holding = threading.Event()  # this connection's answer is the one held back
        threading.Thread(target=self._requests, args=(client, server, holding), daemon=True).start()
        threading.Thread(target=self._answers, args=(server, client, holding), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, holding: threading.Event) -> None:
        try:
            while chunk := client.recv(65536):
                if self.trigger in chunk:
                    with self._lock:
                        self.requests += 1
                        if self.requests == self.nth:
                            holding.set()
                server.sendall(chunk)
        except OSError:
            pass
        finally:
            close_sockets(client, server)

    def _answers(self, server: socket.socket, client: socket.socket, holding: threading.Event) -> None:
        try:
            while chunk := server.recv(65536):
                if holding.is_set():  # read and dropped: the client keeps waiting on an open connection
                    self.held.set()
                    continue
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            if not holding.is_set():
                close_sockets(server, client)
