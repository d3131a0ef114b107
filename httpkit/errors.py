"""httpkit's refusals on an app: U+0000 refused before any view, and the answers to what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask import request
from werkzeug.exceptions import BadRequest

from httpkit.bodies import NulCharacter
from httpkit.bodies import TooDeep
from httpkit.bodies import refuse_nul_characters
from httpkit.problems import problem
from httpkit.queries import BadQuery


def register(app: Flask, page: Callable[[BadQuery], Any] | None = None) -> None:
    """Refuse U+0000 in every request (:func:`refuse_nul_characters`; registered last, so after an app's own
    hooks that set the body's size limit) and answer :class:`TooDeep`, :class:`NulCharacter` and
    :class:`BadQuery` with a 400 problem; a refused query string outside ``/api/`` gets ``page(exc)`` instead
    when given (the BFF's pages), as does a NUL character (the app's own 400 page)."""
    app.before_request(refuse_nul_characters)

    @app.errorhandler(TooDeep)
    def _too_deep(exc: TooDeep) -> Any:
        return problem(400, "Bad Request", exc.description or "")

    @app.errorhandler(NulCharacter)
    def _nul(exc: NulCharacter) -> Any:
        if page is not None and not request.path.startswith("/api/"):
            return app.handle_http_exception(BadRequest(exc.description))  # the app's own 400 page
        return problem(400, "Bad Request", exc.description or "")

    @app.errorhandler(BadQuery)
    def _bad_query(exc: BadQuery) -> Any:
        if page is not None and not request.path.startswith("/api/"):
            return page(exc)
        return problem(400, "Bad Request", "One or more query parameters are not accepted here.", exc.errors)
