"""JSON request bodies, parsed once the same way by every service.

A string holding U+0000 is refused too (:class:`NulCharacter`): PostgreSQL's text cannot hold it, so it would
fail the first query that carries it (a 500), and no field of ours has a use for it (RFC 8259 allows it).

``json.loads`` recurses once per nesting level and raises ``RecursionError`` past the interpreter's limit
(about 1,000 levels), which Flask's ``get_json`` does not catch (it handles ``ValueError`` only): a 500.
A body that parses can still be deep enough to exhaust the stack of the code that walks it later (validation,
``json.dumps`` when it is stored). No request of ours is more than a few levels deep, so a body nested deeper
than :data:`MAX_DEPTH` is refused as a whole with a 400 before any view sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest

MAX_DEPTH = 64


class TooDeep(BadRequest):
    """A JSON body nested deeper than :data:`MAX_DEPTH` (400, answered by httpkit.errors)."""

    description = f"The JSON body is nested deeper than {MAX_DEPTH} levels."


class NulCharacter(BadRequest):
    """U+0000 in the path, the query string, a form field or a JSON string (400, answered by httpkit.errors)."""

    description = "Text must not contain U+0000 (NUL), which the service's database cannot store."


def nesting(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply ``value``'s objects and arrays nest (a scalar: 0), counted without recursion; the count
    stops once past ``limit``. :class:`NulCharacter` for a string or a key holding U+0000."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, str):
            if "\x00" in item:
                raise NulCharacter()
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_body(force: bool = False) -> Any:
    """The request's JSON body, or ``None`` when it is missing or not JSON (``force``: whatever the
    Content-Type says); :class:`TooDeep` when it nests deeper than :data:`MAX_DEPTH` levels,
    :class:`NulCharacter` when a string holds U+0000."""
    try:
        body = request.get_json(force=force, silent=True)
    except RecursionError:
        raise TooDeep() from None
    if nesting(body) > MAX_DEPTH:
        raise TooDeep()
    return body


def refuse_nul_characters() -> None:
    """A ``before_request`` hook: :class:`NulCharacter` for U+0000 in the path, the query string or a form
    field (a JSON body is checked by :func:`json_body`; an uploaded file may hold any byte)."""
    if "\x00" in request.path or any("\x00" in f"{k}{v}" for k, v in request.args.items(multi=True)):
        raise NulCharacter()
    # a multipart part may come without a name (werkzeug's key is then None): f-strings take any value
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") and any(
            "\x00" in f"{k}{v}" for k, v in request.form.items(multi=True)):
        raise NulCharacter()
