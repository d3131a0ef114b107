"""Who may keep a response: nobody (``Cache-Control: no-store``), unless the view is a public asset.

Personal data (names, ID and mobile numbers, contracts, KYC images) must not stay in a browser's disk cache or
a proxy after the person is gone (PIPL art. 51: technical measures against leaks; the shared phone or showroom
tablet is the usual case). Deciding page by page misses pages, so the default is the other way round: every
response is ``no-store`` (RFC 9111 §5.2.2.5: no cache, private or shared, stores any part of it), error pages,
redirects and htmx fragments included, whoever asked. A view opts in with :func:`public_asset` only when its
bytes are the same for everyone and carry no personal data (the catalogue's pictures, the PWA's files);
Flask's own ``static`` endpoint is one too.

An asset keeps its own header, with one change: Flask refreshes a signed-in visitor's session cookie on
every response, assets included, and a shared cache that stores a ``public`` response may store its
``Set-Cookie`` with it and hand it to the next visitor (RFC 9111 §7.3 notes that Set-Cookie does not
inhibit caching). So an asset answered to a request carrying the session cookie is ``private``: the
browser may keep it, a proxy or CDN may not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

from flask import Flask
from flask import Response
from flask import request

F = TypeVar("F", bound=Callable[..., Any])
#: Flask's endpoint for files under pwa/static (registered by the app itself, not by a view of ours)
STATIC_ENDPOINT = "static"


def public_asset(view: F) -> F:
    """Mark ``view`` as a public asset: its response keeps the Cache-Control it sets (or none). Only for bytes
    that are the same for every visitor and contain no personal data."""
    view.public_asset = True  # type: ignore[attr-defined]
    return view


def is_public_asset(app: Flask, endpoint: str | None) -> bool:
    """Whether ``endpoint`` is Flask's static files or a view marked with :func:`public_asset`."""
    if endpoint is None:
        return False
    return endpoint == STATIC_ENDPOINT or bool(getattr(app.view_functions.get(endpoint), "public_asset", False))


def public_assets(app: Flask) -> set[str]:
    """Every endpoint whose responses may be cached (what the tests compare with their own list)."""
    return {endpoint for endpoint in app.view_functions if is_public_asset(app, endpoint)}


def register(app: Flask) -> None:
    """Install the after_request hook that decides every response's Cache-Control."""

    @app.after_request
    def _cache_control(response: Response) -> Response:
        if is_public_asset(app, request.endpoint) and response.status_code < 400:
            if app.config["SESSION_COOKIE_NAME"] in request.cookies and response.cache_control.public:
                response.cache_control.public = False
                response.cache_control.private = True
            return response
        # Replaces whatever the view set (e.g. a max-age): the rule is the app's, not each view's.
        response.headers["Cache-Control"] = "no-store"
        return response
