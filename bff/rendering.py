"""One handler, two renderings: the whole page, or only its block for an htmx request."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask import g
from flask import make_response
from flask import render_template
from flask_babel import get_locale
from jinja2_fragments.flask import render_block

from bff.extensions import htmx


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
