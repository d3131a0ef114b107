"""Pieces of the services' OpenAPI 3.1 documents that are the same in each: the problem document
(RFC 9457) and the error responses the shared plumbing gives (httpkit.bodies, httpkit.queries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: On a 422 response: ``{code: sentence}``, the rules a field error may name that no JSON Schema states
#: (check digits, sums across fields, a PDF's content). Every other field error means the request broke the
#: document's schema; the schemathesis tests hold the services to that (tests/common/schemathesis_checks.py).
RULES_BEYOND_SCHEMA = "x-rules-beyond-schema"



#: The characters ``str.isspace()`` (so ``str.strip()``) calls white space, as a regex class written out:
#: ``\s`` differs between Python, ECMA-262 and hypothesis's generator (U+001C–U+001F, U+0085, U+FEFF).
#: Written out rather than computed at import (a loop over every code point, ~0.1 s in every process);
#: tests/unit/test_httpkit.py recomputes it for the running Python.
WHITESPACE_CLASS = ("\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029"
                    "\\u202f\\u205f\\u3000")


#: Text without U+0000, which every service refuses (httpkit.bodies.NulCharacter) …
NO_NUL = "^[^\\u0000]*$"
#: … and not only white space either (what a service that strips its input calls blank)
NOT_BLANK = f"^[^\\u0000]*[^\\u0000{WHITESPACE_CLASS}][^\\u0000]*$"
#: A string of any other text
STRING: dict[str, Any] = {"type": "string", "pattern": NO_NUL}
NUL_RULE = ("No text — path, query, form field, JSON string or key — may contain U+0000 (NUL): the databases "
            "cannot store it, and the answer is a 400.")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "description": "RFC 9457 problem details", "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "code": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "code", "message", "message_zh"],
            "properties": {"field": {"type": "string"}, "code": {"type": "string"},
                           "message": {"type": "string"}, "message_zh": {"type": "string"}}}},
    },
}


def problem(description: str, rules: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A response described by the ``Problem`` schema of the document's components; ``rules``, on a 422,
    lists the field-error codes of rules beyond the schema (:data:`RULES_BEYOND_SCHEMA`)."""
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if rules:
        response[RULES_BEYOND_SCHEMA] = dict(rules)
    return response


#: 400 for U+0000 anywhere (httpkit.bodies.NulCharacter) …
BAD_TEXT = problem("Text holding U+0000 (NUL)")
#: … for a JSON body (httpkit.bodies.MAX_DEPTH) …
BAD_BODY = problem("A JSON body nested deeper than 64 levels, or text holding U+0000")
#: … and for a query string (httpkit.queries): an unknown or repeated parameter, or a value it does not take
BAD_QUERY = problem("A query parameter this operation does not take, one given twice, or a value outside its "
                    "choices, with field errors; or text holding U+0000")


def refusing_nul(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with :data:`NUL_RULE` in its description and a 400 on every operation that lacks one."""
    document["info"]["description"] = f"{document['info'].get('description', '')} {NUL_RULE}".strip()
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].setdefault("400", BAD_TEXT)
    return document
