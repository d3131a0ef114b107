"""Cookie flags decided per request: ``Secure`` except on localhost, ``HttpOnly`` and ``SameSite=Lax`` always.

Flask's ``SESSION_COOKIE_SECURE`` is one switch for the whole app; we want ``Secure`` wherever the site is
reached by a name (every environment: a staging host over plain HTTP should fail loudly, not leak the
session), and not on the loopback, where development and the browser tests run over http://127.0.0.1.
The session cookie is written after the ``after_request`` hooks, so its session interface
(:mod:`bff.auth.server_session`) sets the same flags itself; every other cookie (e.g. ``locale``) is fixed up by
an ``after_request`` hook.
"""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import current_app
from flask import request

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_local_host(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.1`` or ``[::1]``, with or without a port (a ``Host`` header value)."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal: [::1] or [::1]:8000
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in LOCAL_HOSTS


def secure_request() -> bool:
    """Whether cookies set in answer to the current request must be ``Secure``. Always in production: a
    reverse proxy that forwards ``Host: 127.0.0.1`` (nginx's default ``$proxy_host``) must not turn it off."""
    return current_app.config["SETTINGS"].env == "production" or not is_local_host(request.host)


def harden_cookies(response: Response) -> Response:
    """after_request: give every other ``Set-Cookie`` the same flags as the session cookie."""
    headers = response.headers.getlist("Set-Cookie")
    if not headers:
        return response
    secure = secure_request()
    fixed = []
    for header in headers:
        flags = {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}
        if secure and "secure" not in flags:
            header += "; Secure"
        if "httponly" not in flags:
            header += "; HttpOnly"
        if "samesite" not in flags:
            header += "; SameSite=Lax"
        fixed.append(header)
    del response.headers["Set-Cookie"]
    for header in fixed:
        response.headers.add("Set-Cookie", header)
    return response


def register(app: Flask) -> None:
    app.after_request(harden_cookies)
