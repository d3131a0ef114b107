"""The database away (a restart, a failover, a partition): every request gets a clear 503 with ``Retry-After``
and nothing the visitor holds is lost — not the bare 500 that came when the error page itself needed the
database (the server-side session, the signed-in person, the locale).

The session cannot be read either: :class:`~bff.auth.server_session.ServerSessionInterface` then opens an
*unavailable* session (the cookie kept, never saved), and :func:`refuse_while_unavailable` stops the request
before any view treats the visitor as signed out. The page is rendered without context processors."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from flask import session

from httpkit.problems import problem
from infra.db.engine import UNAVAILABLE
from infra.db.engine import DatabaseUnavailable
from infra.db.engine import first_line

log = logging.getLogger(__name__)
RETRY_AFTER = "30"  # seconds: a PostgreSQL restart or failover


def refuse_while_unavailable() -> None:
    """before_request: a session that could not be read means the database is away; no view runs."""
    if getattr(session, "unavailable", False):
        raise DatabaseUnavailable("the session store did not answer")


def answer(exc: BaseException) -> Any:
    """503: a problem document under /api, else a page that needs nothing from the database."""
    log.warning("database unavailable on %s %s: %s", request.method, request.path, first_line(exc))
    if request.path.startswith("/api/"):
        response = problem(503, "Service Unavailable", "The database is briefly unavailable: try again shortly.")
    else:
        template = current_app.jinja_env.get_template("unavailable.html")  # no context processors: no database
        # a page read can simply be tried again; a form sent is sent again from the page before it (still filled)
        again = (request.full_path if request.query_string else request.path) if request.method == "GET" else None
        response = Response(template.render(again=again), 503, mimetype="text/html")
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def register(app: Flask) -> None:
    # first of all before_request hooks: CSRF protection would otherwise read the empty session and call a
    # post while the database is away "session expired"
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_while_unavailable)
    for error in UNAVAILABLE:
        app.register_error_handler(error, answer)
