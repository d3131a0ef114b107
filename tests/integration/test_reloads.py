"""A form answered in place leaves its POST URL in the address bar; a refresh of it later, a tab the phone restored or
the address bar's Enter asks that URL with GET (walk-through finding 3: a declined card left …/pay, a wrong signing
code …/contract/sign, a refused page …/documents/<id>/pages, each then a 405 dead end, 此处不支持该操作). Every
such URL now sends the browser to the page its form belongs to (bff/reloads.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from tests.integration.test_applications import invited_customer
from tests.integration.test_applications import start
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
#: POST URLs no form of a page posts to a browser's address bar: answered 405 to GET, as before
MACHINES = ("/api/", "/webhooks/")
REDIRECT_ONLY = {"/logout", "/locale"}  # they never answer a page of their own (always a redirect)


def _sample(rule: str) -> str:
    """The rule's URL with a value for each of its arguments."""
    def value(match: re.Match[str]) -> str:
        converter = match.group(1) or ""
        if converter.startswith("int"):
            return "7"
        if converter.startswith("any("):
            return converter[4:].split(",")[0].strip()
        return "a1b2c3"
    return re.sub(r"<(?:([^:>]+):)?[^>]+>", value, rule)


def test_every_form_url_answers_get_with_the_page_of_its_form(app: Any) -> None:
    """Each POST-only URL of a page's form (today's and any added later) answers GET with a 303 to a page."""
    adapter = app.url_map.bind("localhost")
    post_only = sorted({r.rule for r in app.url_map.iter_rules() if "POST" in r.methods}
                       - {r.rule for r in app.url_map.iter_rules() if "GET" in r.methods})
    assert len(post_only) > 40
    client = app.test_client()
    dead_ends = []
    for rule in post_only:
        if rule.startswith(MACHINES) or rule in REDIRECT_ONLY:
            continue
        url = _sample(rule)
        r = client.get(url)
        target = r.headers.get("Location", "")
        try:
            adapter.match(target, method="GET")
        except (HTTPException, RequestRedirect):
            dead_ends.append((url, r.status_code, target))
            continue
        if r.status_code != 303 or not target.startswith("/"):
            dead_ends.append((url, r.status_code, target))
    assert dead_ends == []
    for url in ("/api/v1/quotes", "/webhooks/stripe", "/logout"):
        assert client.get(url).status_code == 405, url


def test_a_form_s_url_reloaded_opens_its_page(bff_server: Any, app: Any) -> None:
    """The three dead ends of the walk-through and the handover's, for whoever was on them."""
    base = bff_server.url
    with invited_customer(base, app, "13700137301") as customer, sign_in(base, SALES_A) as sales:
        app_id = start(base, customer)
        page = f"{base}/applications/{app_id}"
        for who, url, lands in [
            (customer, f"{page}/payments/p-1/pay", f"{page}/payment"),  # a declined card
            (customer, f"{page}/contract/sign", f"{page}/contract"),  # a wrong signing code
            (customer, f"{page}/documents/d-1/pages", f"{page}/documents"),  # a page refused
            (sales, f"{page}/handover/sign", f"{page}/lease"),
            (customer, f"{page}/submit", page),
        ]:
            r = who.get(url, timeout=TIMEOUT, allow_redirects=False)
            assert (r.status_code, r.headers.get("Location")) == (303, lands.removeprefix(base)), url
            shown = who.get(url, timeout=TIMEOUT)
            assert shown.status_code != 405 and "此处不支持该操作" not in shown.text, url
        assert requests.get(f"{page}/contract/sign", timeout=TIMEOUT, allow_redirects=False).status_code == 303
