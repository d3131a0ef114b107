"""A TCP proxy that turns a healthy server into one whose answers get lost: the request reaches the server (which
acts on it), the answer never reaches the client. This is what a storage stall looks like from the client's
side — an S3 put that "failed" although the object was stored.

    with StallProxy("127.0.0.1", 8333, trigger=b"PUT /bucket/tenants/", after=1) as proxy:
        ...  # an S3 client on proxy.url: the first matching request is answered, the later ones are not
"""

from __future__ import annotations

import socket
import threading

from tests.common.relay import Relay
from tests.common.relay import close_sockets


class StallProxy(Relay):
    """Forwards connections to ``host:port``. Once more than ``after`` requests containing ``trigger`` have gone
    through, every answer is dropped: the proxy reads the server's reply and closes the client's connection."""

    def __init__(self, host: str, port: int, *, trigger: bytes, after: int) -> None:
        super().__init__(host, port)
        self.trigger, self.after = trigger, after
        self.seen = 0
        self.accepted = 0  # connections the clients opened
        self._lock = threading.Lock()

    @property
    def stalled(self) -> bool:
        return self.seen > self.after

    def relay(self, client: socket.socket) -> None:
        with self._lock:
            self.accepted += 1
        server = socket.create_connection(self.upstream)
        threading.Thread(target=self._pump, args=(client, server), kwargs={"counting": True}, daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client), kwargs={"counting": False}, daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, *, counting: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if counting and self.trigger in chunk:
                    with self._lock:
                        self.seen += 1
                # the server's answer, once stalled, never reaches the client; "100 Continue" (boto3 asks for
                # it before a put's body, RFC 9110 §10.1.1) still does, or the body would never be sent
                if not counting and self.stalled and not chunk.startswith(b"HTTP/1.1 100 "):
                    break
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            close_sockets(source, target)


__all__ = ["StallProxy", "close_sockets"]
