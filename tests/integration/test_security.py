"""Security over real HTTP: a strict CSP that the pages actually satisfy (no inline script, style or event
handlers), nosniff, escaping of reflected input, CSRF on the locale switch, and the open-redirect guard."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.db

HAN = "byd-han-ev"
TIMEOUT = 30
HX = {"HX-Request": "true"}
XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'

PAGES: list[tuple[str, dict[str, str], int]] = [
    ("/vehicles", {}, 200),
    ("/vehicles?lang=en", {}, 200),
    ("/vehicles?q=%E7%89%B9%E6%96%AF%E6%8B%89", {}, 200),
    ("/vehicles?q=Tesla", HX, 200),
    (f"/plans/{HAN}", {}, 200),
    (f"/plans/{HAN}?lang=en", {}, 200),
    (f"/plans/{HAN}?down=30&term=48", HX, 200),
    (f"/plans/{HAN}?down=0", {}, 200),
    (f"/plans/{HAN}?down=abc&term=48", {}, 422),
    (f"/plans/{HAN}?term=7", HX, 422),
    (f"/plans/{HAN}?cmp=20-36-0-ctpl-D-f-a&cmp=40-36-0-ctpl-D-f-a", {}, 200),
    (f"/plans/{HAN}?down=30&add=1", HX, 200),
    (f"/plans/{HAN}/budget?budget=3000", {}, 200),
    (f"/plans/{HAN}/budget?budget=3000", HX, 200),
    (f"/plans/{HAN}/budget?budget=abc", {}, 422),
    ("/plans/no-such-car", {}, 404),
    ("/no/such/page", {}, 404),
    ("/offline", {}, 200),
    ("/offline?lang=en", {}, 200),
]


class Markup(HTMLParser):
    """Collects what a strict CSP forbids: inline scripts, style attributes and elements, event handlers."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.inline_scripts: list[str] = []
        self.style_elements = 0
        self.violations: list[str] = []
        self.hidden: dict[str, str | None] = {}
        self.html_lang: str | None = None
        self._in_script = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.html_lang = attributes.get("lang")
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.style_elements += 1
        if tag == "input" and attributes.get("type") == "hidden" and attributes.get("name"):
            self.hidden.setdefault(str(attributes["name"]), attributes.get("value"))
        for name, value in attrs:
            if name == "style":
                self.violations.append(f"<{tag} style={value!r}>")
            if name.startswith("on") or name.startswith("hx-on"):
                self.violations.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction", "hx-get", "hx-post") and value and \
                    value.strip().lower().startswith(("javascript:", "data:text/html")):
                self.violations.append(f"<{tag} {name}={value!r}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._in_script = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data.strip())


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens:
            directives[tokens[0].lower()] = tokens[1:]
    return directives


def fetch(server: Any, path: str, headers: dict[str, str] | None = None,
          session: requests.Session | None = None, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return (session or requests).get(server.url + path, headers=headers or {}, **kwargs)


def assert_strict_csp(response: requests.Response) -> None:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no CSP on {response.url}"
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header
    assert "unsafe-hashes" not in header
    directives = csp_directives(header)
    assert directives.get("script-src") == ["'self'"], directives.get("script-src")
    assert "'self'" in directives.get("default-src", [])
    assert directives.get("object-src") == ["'none'"]
    assert directives.get("frame-ancestors") == ["'none'"]
    assert directives.get("base-uri") == ["'self'"]
    for name, sources in directives.items():
        assert "*" not in sources and "http:" not in sources and "https:" not in sources, (name, sources)


def assert_csp_clean_markup(html: str, where: str) -> Markup:
    markup = Markup(html)
    for script in markup.scripts:
        src = script.get("src")
        assert src, f"inline <script> on {where}"
        assert src.startswith("/") and not src.startswith("//"), f"foreign script {src} on {where}"
    assert not markup.inline_scripts, f"inline script body on {where}: {markup.inline_scripts[:1]}"
    assert markup.style_elements == 0, f"<style> element on {where}"
    assert not markup.violations, f"{where}: {markup.violations}"
    return markup


@pytest.mark.parametrize(("path", "headers", "status"), PAGES,
                         ids=[f"{p}{' (htmx)' if h else ''}" for p, h, _ in PAGES])
def test_html_responses_carry_a_strict_csp_and_satisfy_it(bff_server: Any, path: str, headers: dict[str, str],
                                                         status: int) -> None:
    response = fetch(bff_server, path, headers)
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")
    assert_strict_csp(response)
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("Referrer-Policy") == "same-origin"
    assert_csp_clean_markup(response.text, path)


def test_scripts_of_the_pages_are_served_as_javascript(bff_server: Any) -> None:
    markup = assert_csp_clean_markup(fetch(bff_server, "/vehicles").text, "/vehicles")
    assert len(markup.scripts) >= 2
    for script in markup.scripts:
        response = fetch(bff_server, str(script["src"]))
        assert response.status_code == 200
        assert response.headers["Content-Type"].split(";")[0] in ("text/javascript", "application/javascript")
        assert response.headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("path", ["/api/v1/vehicles", "/static/css/app.css", "/sw.js", "/manifest.webmanifest",
                                  "/static/icons/icon-192.png", f"/vehicles/{HAN}/art.svg", "/healthz"])
def test_every_response_is_nosniff(bff_server: Any, path: str) -> None:
    response = fetch(bff_server, path)
    assert response.status_code == 200
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Content-Security-Policy")


@pytest.mark.parametrize(
    "path",
    [
        "/vehicles?q={x}",
        f"/plans/{HAN}?term={{x}}",
        f"/plans/{HAN}?tpl={{x}}",
        f"/plans/{HAN}?down={{x}}",
        f"/plans/{HAN}/budget?budget={{x}}",
        f"/plans/{HAN}?cmp={{x}}",
        "/no/{x}",
    ],
)
def test_reflected_input_is_escaped(bff_server: Any, path: str) -> None:
    response = fetch(bff_server, path.format(x=quote(XSS)))
    assert response.status_code < 500
    # Escaped text may still read "onerror=alert(2)"; what matters is that no element or attribute results.
    assert "<script>alert(1)" not in response.text and "<img src=x" not in response.text
    assert_csp_clean_markup(response.text, path)
    htmx = fetch(bff_server, path.format(x=quote(XSS)), HX)
    assert "<script>alert(1)" not in htmx.text and "<img src=x" not in htmx.text
    assert_csp_clean_markup(htmx.text, path + " (htmx)")


def test_session_cookie_is_httponly_and_samesite(bff_server: Any) -> None:
    response = fetch(bff_server, "/vehicles")
    cookie = response.headers.get("Set-Cookie", "")
    assert cookie.startswith("session="), "the page's CSRF token lives in the session"
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_json_api_sets_no_cookie(bff_server: Any) -> None:
    """The API is exempt from CSRF because it is stateless: it must never start a cookie session."""
    quote = requests.post(f"{bff_server.url}/api/v1/quotes", timeout=TIMEOUT,
                          json={"price": "200000", "down_ratio": "0.2", "term": 36, "rate": "0.0599"})
    assert quote.status_code == 200
    assert "Set-Cookie" not in quote.headers
    assert "Set-Cookie" not in fetch(bff_server, "/api/v1/vehicles").headers


# --- CSRF on the locale switch ---------------------------------------------------------------------------------


def scrape_token(session: requests.Session, server: Any, path: str = "/vehicles") -> str:
    markup = Markup(fetch(server, path, session=session).text)
    token = markup.hidden.get("csrf_token")
    assert token, "no csrf_token hidden input"
    return token


def post_locale(session: requests.Session | None, server: Any, **data: str) -> requests.Response:
    return (session or requests).post(f"{server.url}/locale", data=data, allow_redirects=False, timeout=TIMEOUT)


def test_locale_switch_without_csrf_token_is_400(bff_server: Any) -> None:
    with requests.Session() as s:
        fetch(bff_server, "/vehicles", session=s)
        response = post_locale(s, bff_server, locale="en", next="/vehicles")
        assert response.status_code == 400
        assert response.headers["Content-Type"].startswith("text/html")
        assert "locale=" not in response.headers.get("Set-Cookie", "")
        assert_strict_csp(response)
        assert_csp_clean_markup(response.text, "CSRF error page")
        assert 'lang="zh-CN"' in fetch(bff_server, "/vehicles", session=s).text


def test_locale_switch_with_a_forged_or_foreign_token_is_400(bff_server: Any) -> None:
    with requests.Session() as victim, requests.Session() as attacker:
        token = scrape_token(attacker, bff_server)
        fetch(bff_server, "/vehicles", session=victim)
        assert post_locale(victim, bff_server, locale="en", csrf_token=token).status_code == 400
        assert post_locale(victim, bff_server, locale="en", csrf_token="forged").status_code == 400
        # The token alone, without the session it belongs to, is not enough either.
        assert post_locale(None, bff_server, locale="en", csrf_token=token).status_code == 400


def test_locale_switch_with_the_token_sets_the_cookie_and_switches_language(bff_server: Any) -> None:
    with requests.Session() as s:
        zh = fetch(bff_server, f"/plans/{HAN}", session=s)
        assert '<html lang="zh-CN"' in zh.text
        token = scrape_token(s, bff_server, f"/plans/{HAN}?down=30")
        response = post_locale(s, bff_server, locale="en", next=f"/plans/{HAN}?down=30", csrf_token=token)
        assert response.status_code == 302
        assert response.headers["Location"] == f"/plans/{HAN}?down=30"
        cookie = response.headers.get("Set-Cookie", "")
        assert cookie.startswith("locale=en") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert s.cookies.get("locale") == "en"
        english = fetch(bff_server, f"/plans/{HAN}?down=30", session=s)
        assert '<html lang="en"' in english.text and "Monthly rent" in english.text
        assert '<html lang="en"' in fetch(bff_server, "/vehicles", session=s).text
        back = post_locale(s, bff_server, locale="zh_CN", csrf_token=scrape_token(s, bff_server))
        assert back.status_code == 302 and urlsplit(back.headers["Location"]).path == "/vehicles"
        assert '<html lang="zh-CN"' in fetch(bff_server, "/vehicles", session=s).text


def test_unknown_locale_is_ignored(bff_server: Any) -> None:
    with requests.Session() as s:
        response = post_locale(s, bff_server, locale="fr", csrf_token=scrape_token(s, bff_server))
        assert response.status_code == 302
        assert "locale=" not in response.headers.get("Set-Cookie", "")
        assert 'lang="zh-CN"' in fetch(bff_server, "/vehicles", session=s).text


def browser_target(server: Any, location: str) -> str:
    """Where a browser goes for ``Location``: WHATWG URL parsing drops tab/CR/LF and reads ``\\`` as ``/``."""
    cleaned = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    return urljoin(f"{server.url}/locale", cleaned)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/vehicles",
        "https://evil.example/",
        "http://evil.example",
        "javascript:alert(1)",
        "\\\\evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
    ],
    ids=["protocol-relative", "protocol-relative-path", "https", "http", "javascript", "double-backslash",
         "slash-backslash", "slash-backslash-slash", "slash-tab-slash", "slash-newline-slash"],
)
def test_locale_switch_never_redirects_off_site(bff_server: Any, target: str) -> None:
    with requests.Session() as s:
        response = post_locale(s, bff_server, locale="en", next=target, csrf_token=scrape_token(s, bff_server))
        assert response.status_code == 302
        landed = urlsplit(browser_target(bff_server, response.headers["Location"]))
        assert landed.scheme == "http" and landed.netloc == urlsplit(bff_server.url).netloc, \
            response.headers["Location"]
