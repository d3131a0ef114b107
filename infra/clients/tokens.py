"""Client-credentials tokens for calls to our services, minted by the embedded token service and reused
until shortly before they expire (one per audience and scope set)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from infra.service_tokens import TokenIssuer

CLIENT_ID = "leaseline-bff"


class TokenSource:
    def __init__(self, issuer: TokenIssuer, audience: str, scopes: Sequence[str], ttl: int = 300) -> None:
        self.issuer, self.audience, self.scopes, self.ttl = issuer, audience, tuple(scopes), ttl
        self._token = ""
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if time.monotonic() > self._expires - 60:
                self._token = self.issuer.issue(CLIENT_ID, self.audience, self.scopes, ttl=self.ttl)
                self._expires = time.monotonic() + self.ttl
            return self._token
