"""Query strings read strictly: a list answers with what was asked for, or refuses (400).

A parameter the endpoint does not know (a typo, another version's filter), a value outside its choices, or a
parameter given twice (``?state=open&state=lost``: which one?) would otherwise be ignored, and the answer,
a 200, would look filtered when it is not.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping

from flask import request

from plans.errors import FieldError


class BadQuery(Exception):
    """The query string is refused (400, answered by httpkit.errors); ``errors`` names each parameter."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.text_en}" for e in errors))
        self.errors = errors


def unknown_parameter(name: str) -> FieldError:
    return FieldError(name[:64], "unknown_parameter", f"未知的查询参数：{name[:64]}",
                      f"Unknown query parameter: {name[:64]}")


def repeated(name: str) -> FieldError:
    return FieldError(name, "repeated", f"查询参数 {name} 只能出现一次", f"Give the query parameter {name} only once")


def unknown_value(name: str, value: str) -> FieldError:
    return FieldError(name, "unknown_option", f"{name} 不能为“{value[:32]}”", f"{name} cannot be “{value[:32]}”")


def query(choices: Mapping[str, Collection[str] | None], repeatable: Collection[str] = ()) -> dict[str, list[str]]:
    """The query string's values by name, after checking every parameter: its name is one of ``choices``,
    it is given once unless ``repeatable``, and each value is one of ``choices[name]`` (``None``: any text,
    which the caller checks). Raises :class:`BadQuery` naming every refused parameter."""
    args = request.args
    errors: list[FieldError] = []
    found: dict[str, list[str]] = {}
    for name in args:
        values = args.getlist(name)
        if name not in choices:
            errors.append(unknown_parameter(name))
            continue
        if len(values) > 1 and name not in repeatable:
            errors.append(repeated(name))
            continue
        allowed = choices[name]
        bad = [v for v in values if allowed is not None and v not in allowed]
        if bad:
            errors.append(unknown_value(name, bad[0]))
        found[name] = values
    if errors:
        raise BadQuery(errors)
    return found


def single(found: Mapping[str, list[str]], name: str) -> str | None:
    """The one value of ``name`` in :func:`query`'s answer, or ``None`` when it was not given."""
    values = found.get(name)
    return values[0] if values else None
