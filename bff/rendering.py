"""One handler, two renderings: the whole page, or only its block for an htmx request."""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from typing import Any

from flask import Response
from flask import g
from flask import make_response
from flask import render_template
from flask_babel import get_locale
from jinja2_fragments.flask import render_block

from bff.extensions import htmx
from httpkit.queries import query


def page_or_block(template: str, block: str, **context: Any) -> Response:
    """Render ``block`` of ``template`` for an htmx request, else the whole page; mark ``Vary: HX-Request``."""
    g.branches_on_htmx = True
    # A history restore (Back after hx-push-url, with htmx's history cache off) must get the whole page.
    if htmx and not htmx.boosted and not htmx.history_restore_request:
        return make_response(render_block(template, block, **context))
    return make_response(render_template(template, **context))


def in_locale(zh: str, en: str) -> str:
    """The text of the request's language: ``zh`` for zh-CN, ``en`` otherwise (inline texts that come in
    pairs, e.g. a service's refusal reason)."""
    return zh if str(get_locale() or "zh_CN").startswith("zh") else en


def list_filters(choices: Mapping[str, Collection[str] | None],
                 repeatable: Collection[str] = ()) -> dict[str, list[str]]:
    """A list page's query string, checked by :func:`httpkit.queries.query` (an unknown filter or value is a
    400 page, bff.errors.filter_refused); ``lang``, the language switch every page takes, is always allowed."""
    return query({**choices, "lang": None}, repeatable)
