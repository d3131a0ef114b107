"""``application/problem+json`` responses (RFC 9457, https://www.rfc-editor.org/rfc/rfc9457)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from flask import Response
from flask import jsonify
from werkzeug.exceptions import HTTPException

from plans.errors import FieldError

#: headers of werkzeug's own error response that describe its HTML body, not the error; the rest (``Allow`` of
#: a 405, ``Retry-After`` of a 429 or 503, ``WWW-Authenticate`` of a 401) are part of the answer
BODY_HEADERS = frozenset({"content-type", "content-length"})


def problem(status: int, title: str, detail: str = "", errors: Sequence[FieldError | Mapping[str, str]] | None = None,
            **extra: Any) -> Response:
    """A problem+json response; ``errors`` (FieldErrors, or ready dicts) become ``[{field, code, message,
    message_zh}]``, the services' extension member for field-level errors (RFC 9457 §3.2)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = [
            {"field": e.field, "code": e.code, "message": e.text_en, "message_zh": e.text_zh}
            if isinstance(e, FieldError) else dict(e) for e in errors
        ]
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def http_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """The headers an HTTP error carries besides its body's, e.g. the ``Allow`` a 405 must send (RFC 9110
    §15.5.6) — lost when a handler answers with a response of its own."""
    return [(k, v) for k, v in exc.get_headers() if k.lower() not in BODY_HEADERS]


def http_problem(exc: HTTPException, title: str | None = None, detail: str | None = None) -> Response:
    """werkzeug's HTTP error (404, 405, …) as a problem, with the headers it carries."""
    status = exc.code or 500
    response = problem(status, exc.name if title is None else title, exc.description or "" if detail is None
                       else detail)
    response.headers.extend(http_headers(exc))
    return response
