"""What every client of our services shares: timeouts, retries with backoff for idempotent calls, a
circuit breaker, and one error type that callers turn into a visible "we will retry" status."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from infra.forksafe import PerProcess
from infra.logs import request_id


class ServiceUnavailable(Exception):
    """The service did not answer usefully (down, slow, 5xx, circuit open): try again later."""


class ServiceRefused(Exception):
    """The service answered with a client error (4xx): retrying will not help."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body = status, body


@dataclass
class CircuitBreaker:
    """Open after ``threshold`` consecutive failures; after ``cooldown`` seconds one trial call goes
    through (half-open): success closes it, failure opens it again."""

    threshold: int = 5
    cooldown: float = 10.0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self.clock() - self._opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        """Closed: yes. Open: no. Half-open: yes for one trial call at a time (the others wait it out)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self.clock() - self._opened_at < self.cooldown:
                return False
            self._opened_at = self.clock()  # this caller is the trial; the rest see "open" until it reports
            return True

    def success(self) -> None:
        with self._lock:
            self._failures, self._opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold or self._opened_at is not None:
                self._opened_at = self.clock()


class ServiceClient:
    """JSON over HTTP to one of our services with a bearer token from ``token()``."""

    def __init__(self, base_url: str, token: Callable[[], str], *, connect_timeout: float = 1.0,
                 read_timeout: float = 5.0, retries: int = 2, backoff: float = 0.2,
                 breaker: CircuitBreaker | None = None, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = (connect_timeout, read_timeout)
        self.retries, self.backoff = retries, backoff
        self.breaker = breaker or CircuitBreaker()
        self._sessions: PerProcess[requests.Session] = PerProcess(requests.Session, session)
        self._jitter = random.Random()  # its own generator: the process-wide one is not ours to advance

    @property
    def session(self) -> requests.Session:
        """This process's HTTP session. A forked child (a gunicorn worker) makes its own: the parent's keep-alive
        connections are sockets the two processes would otherwise share, and read each other's answers on."""
        return self._sessions.get()

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, idempotent: bool = False, data: bytes | None = None,
             content_type: str | None = None, raw: bool = False) -> tuple[int, Any]:
        """(status, JSON body). Retries (with jittered backoff) only idempotent calls, only on failures
        that may pass: connection errors, timeouts, 502/503/504.

        ``data`` sends raw bytes instead of ``json`` (with ``content_type``, e.g. ``application/pdf``);
        ``raw`` returns the body's bytes (a PDF, a PNG) instead of parsing JSON. A 4xx still raises
        :class:`ServiceRefused` with the parsed problem+json body, raw or not."""
        if data is not None and json is not None:
            raise ValueError("send either json or data, not both")
        sent = {"Accept": "*/*" if raw else "application/json"}
        if content_type is not None:
            sent["Content-Type"] = content_type
        if not self.breaker.allow():
            raise ServiceUnavailable(f"{self.base_url}: circuit open")
        attempts = 1 + (self.retries if idempotent else 0)
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (0.5 + self._jitter.random()))
            try:
                response = self.session.request(
                    method, self.base_url + path, json=json, data=data, params=params, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {self.token()}", **sent,
                             "X-Request-Id": request_id.get() or uuid.uuid4().hex, **(headers or {})})
            except requests.RequestException as exc:
                last = exc
                continue
            if response.status_code in (502, 503, 504) or response.status_code >= 500:
                last = ServiceUnavailable(f"{self.base_url}{path}: HTTP {response.status_code}")
                if response.status_code in (502, 503, 504):
                    continue
                break
            self.breaker.success()
            if raw and response.status_code < 400:
                return response.status_code, response.content
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.status_code >= 400:
                raise ServiceRefused(response.status_code, body)
            return response.status_code, body
        self.breaker.failure()
        raise ServiceUnavailable(f"{self.base_url}{path}: {last}") from last
