"""Map errors to ``application/problem+json`` (RFC 9457) responses; never an HTML page, never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask import request
from werkzeug.exceptions import HTTPException

from httpkit.errors import register as register_shared_handlers
from httpkit.problems import http_problem
from httpkit.problems import problem
from plans.errors import FieldError
from risk.scoring import ModelInputError
from risk.service import Conflict
from risk.service import NotAllowed
from risk.service import NotFound
from risk.snapshot import SnapshotInvalid
from risk.snapshot import field_error

log = logging.getLogger(__name__)


class Unauthorized(Exception):
    """No usable bearer token (401); ``reason`` is logged and returned, the token never."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InsufficientScope(Exception):
    """The token lacks the scope this endpoint needs (403)."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


def register_error_handlers(app: Flask) -> None:
    register_shared_handlers(app)  # U+0000, a JSON body nested too deep, a refused query string: 400

    @app.errorhandler(SnapshotInvalid)
    def _invalid(exc: SnapshotInvalid) -> Any:
        return problem(422, "Invalid input", "One or more fields are invalid.", exc.errors)

    @app.errorhandler(ModelInputError)
    def _model_input(exc: ModelInputError) -> Any:
        return problem(422, "Invalid input", "The snapshot lacks what the scorecard needs.",
                       [FieldError(exc.field, "model_input", "评分所需字段缺失或无效", str(exc)[:200])])

    @app.errorhandler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> Any:
        response = problem(401, "Unauthorized", f"A valid bearer token is required ({exc.reason}).")
        error = "invalid_request" if exc.reason == "no bearer token" else "invalid_token"
        response.headers["WWW-Authenticate"] = f'Bearer realm="leaseline-risk", error="{error}"'
        return response

    @app.errorhandler(InsufficientScope)
    def _scope(exc: InsufficientScope) -> Any:
        response = problem(403, "Forbidden", f"The token lacks the scope {exc.scope}.")
        response.headers["WWW-Authenticate"] = (f'Bearer realm="leaseline-risk", error="insufficient_scope", '
                                                f'scope="{exc.scope}"')
        return response

    @app.errorhandler(NotAllowed)
    def _not_allowed(exc: NotAllowed) -> Any:
        return problem(403, "Forbidden", exc.detail)

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Any:
        return problem(404, "Not Found", f"No such {exc}.")

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict) -> Any:
        return problem(409, "Conflict", exc.detail, code=exc.code)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        if status == 413:
            return problem(413, "Content Too Large", "The request body is larger than 256 KB.")
        if status == 400:  # e.g. a body that is not JSON
            return problem(422, "Invalid input", "The body must be a JSON object.",
                           [field_error("body", "not_an_object")])
        return http_problem(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal Server Error", "Something went wrong on our side; it has been logged.")
