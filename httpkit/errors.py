"""The answers to the refusals httpkit raises, registered on each app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask import request

from httpkit.bodies import TooDeep
from httpkit.problems import problem
from httpkit.queries import BadQuery


def register_error_handlers(app: Flask, page: Callable[[BadQuery], Any] | None = None) -> None:
    """Answer :class:`TooDeep` and :class:`BadQuery` with a 400 problem; a refused query string outside
    ``/api/`` gets ``page(exc)`` instead when given (the BFF's pages)."""

    @app.errorhandler(TooDeep)
    def _too_deep(exc: TooDeep) -> Any:
        return problem(400, "Bad Request", exc.description or "")

    @app.errorhandler(BadQuery)
    def _bad_query(exc: BadQuery) -> Any:
        if page is not None and not request.path.startswith("/api/"):
            return page(exc)
        return problem(400, "Bad Request", "One or more query parameters are not accepted here.", exc.errors)
