"""The PWA's pages over real HTTP: the vehicle list, the plan builder (full page and htmx fragment), the
comparison, the budget page, friendly errors, and the PWA shell (manifest, icons, service worker)."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

pytestmark = pytest.mark.db

HAN = "byd-han-ev"  # new personal NEV, ¥209,800: minimum down payment 15%
TIMEOUT = 30
HX = {"HX-Request": "true"}


class Page(HTMLParser):
    """Every element's tag and attributes, in document order, plus the text under each ``id``/``data-testid``."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[tuple[str, list[str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        keys = [f"#{attributes['id']}"] if attributes.get("id") else []
        if attributes.get("data-testid"):
            keys.append(f"@{attributes['data-testid']}")
        for key in keys:
            self.texts.setdefault(key, "")
        if tag not in self.VOID:
            self._open.append((tag, keys))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        for _, keys in self._open:
            for key in keys:
                self.texts[key] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in wanted.items())]

    def text(self, key: str) -> str:
        return " ".join(self.texts[key].split())


def money(text: str) -> Decimal:
    """``¥4,866.79`` → Decimal('4866.79')."""
    found = re.search(r"-?[\d,]+(?:\.\d+)?", text)
    assert found, text
    return Decimal(found.group(0).replace(",", ""))


def get(server: Any, path: str, session: requests.Session | None = None, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return (session or requests).get(server.url + path, **kwargs)


def assert_html(response: requests.Response, status: int = 200) -> Page:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in response.text
    return Page(response.text)


def rent(server: Any, query: str) -> Decimal:
    page = assert_html(get(server, f"/plans/{HAN}?{query}", headers=HX))
    return money(page.text("@rent"))


# --- vehicles -------------------------------------------------------------------------------------------------


def test_vehicles_page_is_chinese_by_default(bff_server: Any) -> None:
    response = get(bff_server, "/vehicles")
    page = assert_html(response)
    assert '<html lang="zh-CN"' in response.text
    links = page.find("a", **{"class": "vehicle"})
    assert len(links) >= 20
    assert f"/plans/{HAN}" in {a["href"] for a in links}
    assert "比亚迪 汉EV" in response.text and "选择车型" in response.text


def test_root_redirects_to_the_vehicles(bff_server: Any) -> None:
    response = get(bff_server, "/", allow_redirects=False)
    assert response.status_code in (301, 302, 303, 307, 308)
    assert urlsplit(response.headers["Location"]).path == "/vehicles"


@pytest.mark.parametrize("q", ["特斯拉", "Tesla", "tesla"])
def test_vehicle_search(bff_server: Any, q: str) -> None:
    response = get(bff_server, "/vehicles", params={"q": q})
    page = assert_html(response)
    hrefs = {a["href"] for a in page.find("a", **{"class": "vehicle"})}
    assert hrefs == {"/plans/tesla-model-3", "/plans/tesla-model-y"}
    assert "特斯拉 Model 3" in response.text and "比亚迪" not in page.text("#vehicle-list")
    assert page.find("input", id="q")[0]["value"] == q


def test_vehicle_search_fragment_and_no_match(bff_server: Any) -> None:
    response = get(bff_server, "/vehicles", params={"q": "特斯拉"}, headers=HX)
    assert response.status_code == 200
    assert "<html" not in response.text and response.text.lstrip().startswith('<ul class="vehicles" id="vehicle-list"')
    assert "HX-Request" in response.headers.get("Vary", "")
    empty = assert_html(get(bff_server, "/vehicles", params={"q": "不存在的车"}))
    assert not empty.find("a", **{"class": "vehicle"})
    assert "不存在的车" in empty.text("#vehicle-list")


def test_vehicle_art_is_svg(bff_server: Any) -> None:
    response = get(bff_server, f"/vehicles/{HAN}/art.svg")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert "<svg" in response.text and "<script" not in response.text
    assert get(bff_server, "/vehicles/no-such-car/art.svg").status_code == 404


# --- the plan builder ------------------------------------------------------------------------------------------


def test_builder_full_page_has_form_quote_and_verdict(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}")
    page = assert_html(response)
    assert response.text.lstrip().lower().startswith("<!doctype html>")
    assert '<html lang="zh-CN"' in response.text
    assert page.find("form", id="builder") and page.find("form", id="budget")
    assert page.find("input", name="down", type="range")[0]["value"] == "20"
    checked_terms = [i["value"] for i in page.find("input", name="term") if "checked" in i]
    assert checked_terms == ["36"]
    assert page.find("section", id="results")
    assert money(page.text("@rent")) > 0
    assert "%" in page.text("@apr")
    assert "符合" in page.text("@verdict")  # "This plan complies with the lending policy."
    assert page.find("p", **{"class": "verdict ok"})
    assert "HX-Request" in response.headers.get("Vary", "")


def test_builder_htmx_request_gets_only_the_results_fragment(bff_server: Any) -> None:
    full = get(bff_server, f"/plans/{HAN}?down=30&term=48")
    fragment = get(bff_server, f"/plans/{HAN}?down=30&term=48", headers=HX)
    assert fragment.status_code == 200
    assert fragment.headers["Content-Type"].startswith("text/html")
    assert "<html" not in fragment.text and "<head" not in fragment.text and "<form" not in fragment.text
    assert fragment.text.lstrip().startswith('<section id="results"')
    part = Page(fragment.text)
    assert [tag for tag, _ in part.elements].count("section") == 1
    assert part.text("@rent") == Page(full.text).text("@rent")
    for response in (full, fragment):
        vary = [v.strip() for v in response.headers.get("Vary", "").split(",")]
        assert "HX-Request" in vary, response.headers


def test_boosted_htmx_request_gets_the_full_page(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}", headers={**HX, "HX-Boosted": "true"})
    assert response.status_code == 200 and "<html" in response.text


def test_changing_the_choices_changes_the_rent(bff_server: Any) -> None:
    base = rent(bff_server, "down=20&term=36")
    assert rent(bff_server, "down=40&term=36") < base
    assert rent(bff_server, "down=20&term=60") < base
    assert rent(bff_server, "down=20&term=12") > base
    assert rent(bff_server, "down=20&term=36&residual=30") < base
    assert rent(bff_server, "down=20&term=36&timing=advance") < base
    assert rent(bff_server, "down=20&term=36") == base, "deterministic"


def test_changing_the_choices_matches_the_api(bff_server: Any) -> None:
    page_rent = rent(bff_server, "down=30&term=48&residual=20&ins=ctpl&tpl=&deposit=free&extras=upfront")
    q = requests.post(f"{bff_server.url}/api/v1/quotes", timeout=TIMEOUT, json={
        "vehicle_id": HAN, "down_ratio": "0.30", "term": 48, "residual_ratio": "0.20", "insurance": ["ctpl"],
        "deposit_free": True, "extras_financed": False}).json()
    assert page_rent == Decimal(q["monthly_payment"])


def test_non_compliant_plan_shows_the_reason(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}?down=0")
    page = assert_html(response)  # a valid input, only not allowed: 200
    verdict = page.text("@verdict")
    assert "不符合" in verdict
    assert page.find("li", data_code="down_payment_below_minimum")
    assert "首付比例不得低于 15%" in verdict
    english = assert_html(get(bff_server, f"/plans/{HAN}?down=0&lang=en"))
    assert "The down payment must be at least 15% of the price" in english.text("@verdict")


def test_bad_down_payment_is_422_inline_and_keeps_the_other_choices(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}?down=abc&term=48&residual=20&deposit=free&timing=advance")
    page = assert_html(response, 422)
    assert page.text("#down-error") == "请输入数字"
    assert [i["value"] for i in page.find("input", name="term") if "checked" in i] == ["48"]
    assert [i["value"] for i in page.find("input", name="residual") if "checked" in i] == ["20"]
    assert [i["value"] for i in page.find("input", name="deposit") if "checked" in i] == ["free"]
    assert [i["value"] for i in page.find("input", name="timing") if "checked" in i] == ["advance"]
    assert page.find("input", name="down")[0]["value"] == "20", "the bad field falls back to its default"
    assert money(page.text("@rent")) > 0, "a quote is still shown"


def test_bad_term_is_422_inline_and_keeps_the_down_payment(bff_server: Any) -> None:
    page = assert_html(get(bff_server, f"/plans/{HAN}?down=35&term=7"), 422)
    assert "7" in page.text("#term-error")
    assert page.find("input", name="down")[0]["value"] == "35"
    assert [i["value"] for i in page.find("input", name="term") if "checked" in i] == ["36"]


def test_bad_input_in_an_htmx_request_is_422_with_the_message(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}?down=abc", headers=HX)
    assert response.status_code == 422 and "<html" not in response.text
    assert "请输入数字" in Page(response.text).text("#results")


@pytest.mark.parametrize("query", ["down=95", "down=12.5", "down=-5", "residual=abc", "tpl=tpl_9m",
                                   "down=NaN", "down=1e1000", "term=abc", "term=36.0"])
def test_other_bad_builder_input_is_422(bff_server: Any, query: str) -> None:
    page = assert_html(get(bff_server, f"/plans/{HAN}?{query}"), 422)
    assert page.find("p", **{"class": "field-error"})


@pytest.mark.parametrize(
    "query",
    [
        "term=%C2%B2",
        "term=" + "9" * 5000,
        "cmp=%C2%B2-36-0-ctpl-D-f-a",
        "cmp=20-0-0-ctpl-D-f-a",
        "cmp=garbage",
        "cmp=20-36-0-bogus-D-f-a",
        "cmp=95-36-0-ctpl-D-f-a",
    ],
    ids=["superscript-term", "5000-digit-term", "superscript-cmp", "zero-term-cmp", "garbage-cmp",
         "bogus-coverage-cmp", "down-95-cmp"],
)
def test_odd_builder_input_never_gives_a_server_error(bff_server: Any, query: str) -> None:
    response = get(bff_server, f"/plans/{HAN}?{query}")
    assert response.status_code < 500, response.status_code
    assert_html(response, response.status_code)


# --- the comparison ----------------------------------------------------------------------------------------------


def test_add_without_htmx_redirects_to_the_canonical_url(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}?down=30&term=48&add=1", allow_redirects=False)
    assert response.status_code == 303
    target = urlsplit(urljoin(bff_server.url + "/", response.headers["Location"]))
    assert target.netloc == urlsplit(bff_server.url).netloc and target.path == f"/plans/{HAN}"
    params = parse_qs(target.query)
    assert params["cmp"] == ["30-48-0-ctpl+damage+tpl_1m-D-f-a"]
    assert params["down"] == ["30"] and params["term"] == ["48"]
    assert "add" not in params


def test_add_with_htmx_renders_and_pushes_the_canonical_url(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}?down=30&term=48&add=1", headers=HX, allow_redirects=False)
    assert response.status_code == 200
    pushed = response.headers["HX-Push-Url"]
    assert pushed.startswith(f"/plans/{HAN}?") and "cmp=" in pushed and "add=" not in pushed
    assert "<html" not in response.text
    fragment = Page(response.text)
    assert fragment.find("div", id="compare")
    codes = [i["value"] for i in fragment.find("input", type="hidden", name="cmp")]
    assert codes == ["30-48-0-ctpl+damage+tpl_1m-D-f-a"]


def test_bad_input_is_not_added_to_the_comparison(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}?down=abc&add=1", allow_redirects=False)
    assert response.status_code == 303
    assert "cmp" not in parse_qs(urlsplit(response.headers["Location"]).query)


def test_two_adds_compare_two_plans_and_remove_drops_one(bff_server: Any) -> None:
    with requests.Session() as s:
        first = get(bff_server, f"/plans/{HAN}?down=20&term=36&add=1", s, allow_redirects=False)
        assert first.status_code == 303
        one = get(bff_server, first.headers["Location"], s)
        page = assert_html(one)
        assert len(page.find("button", name="remove")) == 1
        second_query = first.headers["Location"].split("?", 1)[1].replace("down=20", "down=40")
        second = get(bff_server, f"/plans/{HAN}?{second_query}&add=1", s, allow_redirects=False)
        assert second.status_code == 303
        codes = parse_qs(urlsplit(second.headers["Location"]).query)["cmp"]
        assert codes == ["20-36-0-ctpl+damage+tpl_1m-D-f-a", "40-36-0-ctpl+damage+tpl_1m-D-f-a"]
        both = assert_html(get(bff_server, second.headers["Location"], s))
        assert both.find("div", id="compare")
        removes = [b["value"] for b in both.find("button", name="remove")]
        assert removes == codes
        compare = both.text("@compare")
        assert "方案 1" in compare and "方案 2" in compare and "方案 3" not in compare
        html = get(bff_server, second.headers["Location"], s).text
        rents = re.findall(r"<strong>(¥[\d,.]+)</strong>", html[html.index('id="compare"'):])
        assert len(rents) == 2 and money(rents[1]) < money(rents[0]), "40% down costs less a month"
        removed = get(bff_server, f"{second.headers['Location']}&remove={quote(codes[0])}", s,
                      allow_redirects=False)
        assert parse_qs(urlsplit(removed.headers["Location"]).query)["cmp"] == [codes[1]]


def test_comparison_keeps_at_most_three_plans(bff_server: Any) -> None:
    cmp = "&".join(f"cmp={d}-36-0-ctpl-D-f-a" for d in (20, 25, 30, 35))
    page = assert_html(get(bff_server, f"/plans/{HAN}?{cmp}"))
    assert len(page.find("button", name="remove")) == 3


# --- the budget page --------------------------------------------------------------------------------------------


def test_budget_page_lists_plans_and_the_smallest_down_payment_per_term(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}/budget?budget=3000")
    page = assert_html(response)
    results = page.text("@budget-results")
    assert "3888" in results
    listed = re.findall(r"<li><a href=\"[^\"]+\">\s*<strong>(¥[\d,.]+)</strong>", response.text)
    assert 1 <= len(listed) <= 8
    assert all(money(r) <= 3000 for r in listed)
    rows = re.findall(r"<tr><td>(\d+) 期</td>\s*(.*?)</tr>", response.text, flags=re.S)
    assert [int(term) for term, _ in rows] == [12, 18, 24, 36, 48, 60]
    floor = Decimal("209800") * Decimal("0.15")
    downs = []
    for _, cells in rows:
        values = re.findall(r"<td>(¥[\d,.]+)</td>", cells)
        if not values:  # e.g. 12 months at ¥3,000 needs a plan whose APR breaks the policy's cap
            assert 'colspan="3"' in cells, cells
            continue
        assert len(values) == 2, cells
        down, monthly = money(values[0]), money(values[1])
        assert floor <= down < Decimal("209800") and monthly <= 3000
        downs.append(down)
    assert len(downs) >= 3, "the long terms are reachable at ¥3,000"
    assert downs == sorted(downs, reverse=True), "a longer term needs a smaller down payment"
    for a in page.find("a"):
        if a["href"] and a["href"].startswith(f"/plans/{HAN}?"):
            assert get(bff_server, a["href"], headers=HX).status_code == 200


def test_budget_page_offers_only_plans_the_policy_allows(bff_server: Any) -> None:
    from plans.policy import load_policy

    cap = load_policy().apr_cap * 100
    response = get(bff_server, f"/plans/{HAN}/budget?budget=3000")
    table = re.search(r'<table class="reverse">.*?</table>', response.text, flags=re.S)
    assert table
    aprs = [Decimal(p) for p in re.findall(r"<td>([\d.]+)%</td>", table.group(0))]
    assert aprs and all(apr <= cap for apr in aprs), aprs


def test_budget_fragment_for_htmx(bff_server: Any) -> None:
    response = get(bff_server, f"/plans/{HAN}/budget?budget=3000&down=30&term=48", headers=HX)
    assert response.status_code == 200 and "<html" not in response.text
    assert response.text.lstrip().startswith('<div id="budget-results"')
    assert "HX-Request" in response.headers.get("Vary", "")


@pytest.mark.parametrize(("budget", "message"), [("abc", "请输入数字"), ("", "必填"), ("-5", "必须大于 0"),
                                                  ("0", "必须大于 0"), ("1e30", "数值过大"), ("NaN", "请输入数字")])
def test_bad_budget_is_422_with_a_message(bff_server: Any, budget: str, message: str) -> None:
    page = assert_html(get(bff_server, f"/plans/{HAN}/budget", params={"budget": budget}), 422)
    assert message in page.text("@budget-results")
    assert page.find("input", id="budget-amount")[0]["value"] == budget.strip()[:20]


def test_tiny_budget_has_no_plan(bff_server: Any) -> None:
    page = assert_html(get(bff_server, f"/plans/{HAN}/budget?budget=10"))
    results = page.text("@budget-results")
    assert "没有符合该预算的合规方案" in results
    assert results.count("该预算内无法实现") == 6, "no term reaches ¥10 a month"


# --- friendly errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/plans/no-such-car", "/plans/no-such-car/budget?budget=3000",
                                  "/plans/no-such-car?add=1"])
def test_unknown_vehicle_is_a_friendly_404_page(bff_server: Any, path: str) -> None:
    response = get(bff_server, path, allow_redirects=False)
    page = assert_html(response, 404)
    assert "<html" in response.text
    assert "未找到该车型" in response.text
    assert page.find("a", href="/vehicles")


def test_unknown_page_is_a_friendly_404(bff_server: Any) -> None:
    response = get(bff_server, "/no/such/page")
    page = assert_html(response, 404)
    assert page.find("a", href="/vehicles")


# --- the PWA shell --------------------------------------------------------------------------------------------


def test_manifest(bff_server: Any) -> None:
    response = get(bff_server, "/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] in ("application/manifest+json", "application/json")
    manifest = json.loads(response.text)
    assert manifest["name"] and manifest["short_name"]
    assert manifest["display"] == "standalone"
    assert manifest["start_url"].startswith("/")
    assert get(bff_server, manifest["start_url"]).status_code == 200
    icons = manifest["icons"]
    sizes = {i["sizes"] for i in icons}
    assert {"192x192", "512x512"} <= sizes
    assert any("maskable" in i.get("purpose", "").split() for i in icons)
    for icon in icons:
        image = get(bff_server, icon["src"])
        assert image.status_code == 200, icon
        assert image.headers["Content-Type"] == "image/png"
        with Image.open(io.BytesIO(image.content)) as img:
            assert img.format == "PNG"
            width, height = (int(n) for n in icon["sizes"].split("x"))
            assert img.size == (width, height), icon


def test_service_worker(bff_server: Any) -> None:
    response = get(bff_server, "/sw.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response.headers.get("Cache-Control", "")
    shell = re.search(r"const SHELL = \[(.*?)\];", response.text, flags=re.S)
    assert shell, "no SHELL list in sw.js"
    urls = re.findall(r"[\"']([^\"']+)[\"']", shell.group(1))
    assert "/offline" in urls and len(urls) >= 5
    for url in urls:
        assert get(bff_server, url).status_code == 200, url


def test_offline_page(bff_server: Any) -> None:
    page = assert_html(get(bff_server, "/offline"))
    assert page.find("a", href="/vehicles")


def test_healthz(bff_server: Any) -> None:
    response = get(bff_server, "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.db
def test_history_restore_request_gets_the_whole_page(bff_server: Any) -> None:
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = get(bff_server, f"/plans/{HAN}?down=30", headers=headers)
    assert response.status_code == 200
    assert "<html" in response.text and 'id="builder"' in response.text
    assert "HX-Request" in response.headers.get("Vary", "")


@pytest.mark.db
@pytest.mark.parametrize("htmx_request", [False, True])
def test_residual_above_the_financed_amount_is_explained_not_priced(bff_server: Any, htmx_request: bool) -> None:
    headers = {"HX-Request": "true"} if htmx_request else {}
    response = get(bff_server, f"/plans/{HAN}?down=90&residual=90&term=48", headers=headers)
    assert response.status_code == 422
    assert "尾付租金不能达到或超过融资本金" in response.text
    assert "-¥" not in response.text  # never a negative rent
    if not htmx_request:  # the whole page keeps every choice the user made
        assert re.search(r'name="term" value="48"\s+checked', response.text)
