"""Map errors to ``application/problem+json`` (RFC 9457) responses; never an HTML page, never a bare 500.

The problem document and the answers to a too-deep JSON body or a refused query string are httpkit's, shared
with the risk service and the BFF.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask import request
from werkzeug.exceptions import HTTPException

from contract.document.render import TextUnreadable
from contract.evidence import LedgerError
from contract.service import Conflict
from contract.service import Invalid
from contract.service import NotFound
from contract.signing.errors import NotAPdf
from httpkit.errors import register as register_shared_handlers
from httpkit.problems import http_problem
from httpkit.problems import problem
from infra.storage import StorageError

log = logging.getLogger(__name__)


class Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InsufficientScope(Exception):
    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


def field(name: str, code: str, message: str, message_zh: str) -> dict[str, str]:
    return {"field": name, "code": code, "message": message, "message_zh": message_zh}


def register_error_handlers(app: Flask) -> None:
    register_shared_handlers(app)  # U+0000, a JSON body nested too deep, a refused query string: 400

    @app.errorhandler(Invalid)
    def _invalid(exc: Invalid) -> Any:
        return problem(422, "Invalid input", "One or more fields are invalid.",
                       [field(exc.field, exc.code, exc.message, exc.message_zh)])

    @app.errorhandler(NotAPdf)
    def _not_a_pdf(exc: NotAPdf) -> Any:
        return problem(422, "Invalid input", "The upload is not a readable PDF.",
                       [field("file", "not_a_pdf", "The file is not a readable PDF", "文件不是可读取的 PDF")])

    @app.errorhandler(LedgerError)
    def _ledger(exc: LedgerError) -> Any:
        return problem(404, "Not Found", str(exc))

    @app.errorhandler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> Any:
        response = problem(401, "Unauthorized", f"A valid bearer token is required ({exc.reason}).")
        error = "invalid_request" if exc.reason == "no bearer token" else "invalid_token"
        response.headers["WWW-Authenticate"] = f'Bearer realm="leaseline-contract", error="{error}"'
        return response

    @app.errorhandler(InsufficientScope)
    def _scope(exc: InsufficientScope) -> Any:
        response = problem(403, "Forbidden", f"The token lacks the scope {exc.scope}.")
        response.headers["WWW-Authenticate"] = (f'Bearer realm="leaseline-contract", error="insufficient_scope", '
                                                f'scope="{exc.scope}"')
        return response

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Any:
        return problem(404, "Not Found", f"No such {exc}.")

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict) -> Any:
        return problem(409, "Conflict", exc.detail, code=exc.code)

    @app.errorhandler(TextUnreadable)
    def _text_unreadable(exc: TextUnreadable) -> Any:
        log.error("the text fingerprint of a PDF could not be read on %s %s: %s", request.method, request.path, exc)
        # a 4xx, not a 503: the contract client counts a 5xx against its circuit breaker, which signing shares
        response = problem(409, "Conflict", "The contract's text cannot be checked against its PDF just now; read "
                                            "the PDF itself.", code="text_unavailable")
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(StorageError)
    def _storage(exc: StorageError) -> Any:
        log.warning("object storage error on %s %s: %s", request.method, request.path, exc)
        response = problem(503, "Service Unavailable", "Document storage is unavailable; try again shortly.")
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        if status == 413:
            return problem(413, "Content Too Large", "The request body is too large.")
        if status == 400:
            return problem(422, "Invalid input", "The body must be a JSON object.",
                           [field("body", "not_an_object", "The body must be a JSON object", "请求体须为 JSON 对象")])
        return http_problem(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal Server Error", "Something went wrong on our side; it has been logged.")
