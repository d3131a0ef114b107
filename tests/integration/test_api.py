"""The JSON API over real HTTP: field errors as problem+json (never a 500), happy paths, the OpenAPI document."""

from __future__ import annotations

import re
import time
from decimal import ROUND_HALF_UP
from decimal import Decimal
from decimal import localcontext
from typing import Any

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import settings
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

from bff.api.openapi import document
from tests.common.payloads import TOO_DEEP
from tests.common.payloads import nested
from tests.common.schemathesis_checks import load
from tests.common.schemathesis_checks import validate

pytestmark = pytest.mark.db

MONEY = re.compile(r"^-?\d+\.\d{2}$")
RATE = re.compile(r"^-?\d+\.\d{6}$")
EXPLICIT = {"price": "200000", "down_ratio": "0.2", "term": 36, "rate": "0.0599"}
HAN = "byd-han-ev"  # a new personal NEV: the policy's minimum down payment is 15%
VEHICLE_QUOTE = {
    "vehicle_id": HAN, "down_ratio": "0.2", "term": 36, "insurance": ["ctpl", "damage", "tpl_1m"],
    "residual_ratio": "0", "deposit_free": False, "extras_financed": True, "timing": "arrears",
}
TIMEOUT = 30


def api(server: Any, path: str) -> str:
    return f"{server.url}/api/v1{path}"


def post(server: Any, path: str, body: Any = None, *, data: str | bytes | None = None,
         content_type: str = "application/json") -> requests.Response:
    if data is not None:
        return requests.post(api(server, path), data=data, headers={"Content-Type": content_type},
                             timeout=TIMEOUT)
    return requests.post(api(server, path), json=body, timeout=TIMEOUT)


def assert_problem(response: requests.Response, status: int, field: str | None = None,
                   codes: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status``; with ``field``, a field error for it (of ``codes``)."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert body.get("type", "about:blank") == "about:blank"
    if status == 422:
        errors = body["errors"]
        assert isinstance(errors, list) and errors
        for e in errors:
            assert set(e) >= {"field", "code", "message", "message_zh"}, e
            assert all(isinstance(e[k], str) and e[k] for k in ("field", "code", "message", "message_zh")), e
            assert "Traceback" not in e["message"]
    if field is not None:
        mine = [e for e in body["errors"] if e["field"] == field]
        assert mine, f"no error for {field!r} in {body['errors']}"
        if codes is not None:
            wanted = (codes,) if isinstance(codes, str) else codes
            assert mine[0]["code"] in wanted, mine
    return body  # type: ignore[no-any-return]


def pmt_arrears(principal: Decimal, annual_rate: Decimal, term: int) -> Decimal:
    """The level payment in arrears, computed here independently of ``plans.quote``, rounded half-up."""
    with localcontext() as ctx:
        ctx.prec = 60
        r = annual_rate / 12
        payment = principal * r / (1 - (1 + r) ** -term)
        return payment.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --- explicit quotes: every bad input is a 422 with field errors -------------------------------------------


@pytest.mark.parametrize(
    ("override", "field", "codes"),
    [
        ({"price": "0"}, "price", "not_positive"),
        ({"price": 0}, "price", "not_positive"),
        ({"price": "-200000"}, "price", ("not_positive", "negative")),
        ({"price": 1e30}, "price", "too_large"),
        ({"price": "1e30"}, "price", "not_a_number"),  # a string is a plain decimal: no exponent
        ({"price": "abc"}, "price", "not_a_number"),
        ({"price": "NaN"}, "price", "not_a_number"),
        ({"price": "Infinity"}, "price", "not_a_number"),
        ({"price": "-Infinity"}, "price", "not_a_number"),
        ({"price": True}, "price", "not_a_number"),
        ({"price": [200000]}, "price", "not_a_number"),
        ({"price": None}, "price", "required"),
        ({"down_ratio": "1.5"}, "down_ratio", ("ratio_range", "down_above_price")),
        ({"down_ratio": None, "down_payment": "250000"}, "down_payment", "down_above_price"),
        ({"down_ratio": "-0.1"}, "down_ratio", "negative"),
        ({"down_ratio": "NaN"}, "down_ratio", "not_a_number"),
        ({"term": 6}, "term", "term_range"),
        ({"term": 61}, "term", "term_range"),
        ({"term": 0}, "term", "term_range"),
        ({"term": "abc"}, "term", "not_an_integer"),
        ({"term": "36.5"}, "term", "not_an_integer"),
        ({"term": "Infinity"}, "term", "not_an_integer"),
        ({"term": None}, "term", "required"),
        ({"rate": "-0.01"}, "rate", "negative"),
        ({"rate": 5}, "rate", ("rate_range", "ratio_range")),
        ({"rate": "5"}, "rate", ("rate_range", "ratio_range")),
        ({"rate": "abc"}, "rate", "not_a_number"),
        ({"rate": "Infinity"}, "rate", "not_a_number"),
        ({"rate": "NaN"}, "rate", "not_a_number"),
        ({"residual_ratio": "0.95"}, "residual_ratio", "residual_above_principal"),
        ({"residual_ratio": "0.8"}, "residual_ratio", "residual_above_principal"),
        ({"residual_ratio": "1.5"}, "residual_ratio", "ratio_range"),
        ({"deposit_ratio": "0.6"}, "deposit_ratio", "ratio_range"),
        ({"fee_upfront": "abc"}, "fee_upfront", "not_a_number"),
        ({"insurance_financed": "-1"}, "insurance_financed", "negative"),
        ({"timing": "never"}, "timing", "timing"),
        ({"timing": 5}, "timing", "timing"),
        ({"down_ratio": "1"}, "down_payment", "nothing_financed"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_explicit_quote_rejects_bad_figures(bff_server: Any, override: dict[str, Any], field: str,
                                            codes: str | tuple[str, ...]) -> None:
    assert_problem(post(bff_server, "/quotes", {**EXPLICIT, **override}), 422, field, codes)


def test_explicit_quote_reports_every_bad_field_at_once(bff_server: Any) -> None:
    body = assert_problem(post(bff_server, "/quotes", {"price": "abc", "term": 7, "rate": "-1"}), 422)
    assert {e["field"] for e in body["errors"]} >= {"price", "term", "rate"}


def test_problem_messages_are_bilingual(bff_server: Any) -> None:
    body = assert_problem(post(bff_server, "/quotes", {**EXPLICIT, "term": 61}), 422, "term", "term_range")
    error = body["errors"][0]
    assert "12" in error["message"] and "60" in error["message"]
    assert "月" in error["message_zh"] and "12" in error["message_zh"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("not json", "application/json"),
        ("{\"price\": ", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ("[]", "application/json"),
        ("\"price\"", "application/json"),
        ("null", "application/json"),
        ("", "application/json"),
        ("price=200000", "application/x-www-form-urlencoded"),
        ("{\"price\": \"200000\", \"term\": 36, \"rate\": \"0.0599\"}", "text/plain"),
    ],
)
def test_quote_body_must_be_a_json_object(bff_server: Any, data: str, content_type: str) -> None:
    assert_problem(post(bff_server, "/quotes", data=data, content_type=content_type), 422, "body", "required")


@pytest.mark.parametrize(("override", "field", "code"), [
    ({"price": " 200000"}, "price", "not_a_number"), ({"price": "200,000"}, "price", "not_a_number"),
    ({"price": "2e5"}, "price", "not_a_number"), ({"price": "+200000"}, "price", "not_a_number"),
    ({"price": ""}, "price", "not_a_number"), ({"price": "-0"}, "price", "not_positive"),
    ({"down_payment": "-0"}, "down_payment", "negative"), ({"down_payment": ""}, "down_payment", "not_a_number"),
    ({"term": "36.0"}, "term", "not_an_integer"), ({"term": " 36"}, "term", "not_an_integer"),
    ({"timing": "ADVANCE"}, "timing", "timing"), ({"timing": False}, "timing", "timing"),
    ({"timing": " advance"}, "timing", "timing"),
], ids=repr)
def test_explicit_quote_takes_numbers_only_as_its_document_says(bff_server: Any, override: dict[str, Any],
                                                               field: str, code: str) -> None:
    """The JSON API is stricter than the forms: a number is a JSON number or a plain decimal string, a choice
    is exactly one of its values — what the OpenAPI document says (schemathesis found each of these taken)."""
    assert_problem(post(bff_server, "/quotes", {**EXPLICIT, **override}), 422, field, code)


@pytest.mark.parametrize("override", [{"term": 36.0}, {"term": "036"}, {"price": "00200000"}, {"timing": None},
                                      {"down_ratio": None, "down_payment": "40000.5"}], ids=repr)
def test_explicit_quote_takes_what_its_document_calls_valid(bff_server: Any, override: dict[str, Any]) -> None:
    response = post(bff_server, "/quotes", {**EXPLICIT, **override})
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize(("path", "body"), [
    ("/quotes", {**VEHICLE_QUOTE, "term": "00000000000036"}), ("/quotes", {**VEHICLE_QUOTE, "term": 36.0}),
    ("/plans/search", {"vehicle_id": HAN, "limit": 5.0}),
    ("/plans/search", {"vehicle_id": HAN, "terms": [36.0], "budget": None, "pack": None}),
], ids=repr)
def test_json_integers_and_nulls_are_taken_as_the_document_says(bff_server: Any, path: str,
                                                                 body: dict[str, Any]) -> None:
    response = post(bff_server, path, body)
    assert response.status_code == 200, response.text[:300]


def test_explicit_quote_rejects_a_huge_exponent_term_quickly(bff_server: Any) -> None:
    started = time.perf_counter()
    response = post(bff_server, "/quotes", {**EXPLICIT, "term": "1e300000"})
    elapsed = time.perf_counter() - started
    assert_problem(response, 422, "term", "not_an_integer")
    assert elapsed < 0.5, f"took {elapsed:.2f}s"


# --- vehicle quotes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vehicle_id", ["no-such-car", "", "x" * 500, 123, None])
def test_vehicle_quote_for_an_unknown_vehicle_is_404(bff_server: Any, vehicle_id: Any) -> None:
    body = assert_problem(post(bff_server, "/quotes", {**VEHICLE_QUOTE, "vehicle_id": vehicle_id}), 404)
    assert body["title"] == "Not Found"


@pytest.mark.parametrize(
    ("override", "field", "codes"),
    [
        ({"term": 7}, "term", "term_range"),
        ({"term": 61}, "term", "term_range"),
        ({"term": "abc"}, "term", "not_an_integer"),
        ({"term": "36.0"}, "term", "not_an_integer"),
        ({"term": True}, "term", "not_an_integer"),
        ({"term": 36.5}, "term", "not_an_integer"),
        ({"term": None}, "term", "not_an_integer"),
        ({"insurance": ["bogus"]}, "insurance", "unknown_option"),
        ({"insurance": ["ctpl", "tpl_9m"]}, "insurance", "unknown_option"),
        ({"insurance": "ctpl"}, "insurance", "unknown_option"),
        ({"insurance": [1, 2]}, "insurance", "unknown_option"),
        ({"down_ratio": "abc"}, "down_ratio", "not_a_number"),
        ({"down_ratio": "0.95"}, "down_ratio", "ratio_range"),
        ({"down_ratio": "-0.1"}, "down_ratio", "ratio_range"),
        ({"down_ratio": "NaN"}, "down_ratio", "not_a_number"),
        ({"residual_ratio": "Infinity"}, "residual_ratio", "not_a_number"),
        ({"down_ratio": "0.9", "residual_ratio": "0.9"}, "residual_ratio", "residual_above_principal"),
        ({"timing": "later"}, "timing", "timing"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_vehicle_quote_rejects_bad_choices(bff_server: Any, override: dict[str, Any], field: str,
                                           codes: str | tuple[str, ...]) -> None:
    assert_problem(post(bff_server, "/quotes", {**VEHICLE_QUOTE, **override}), 422, field, codes)


@pytest.mark.parametrize(
    "term",
    [
        "²",
        "9" * 5000,
    ],
    ids=["superscript-digit", "5000-digits"],
)
def test_vehicle_quote_odd_digit_terms_are_422_not_500(bff_server: Any, term: str) -> None:
    assert_problem(post(bff_server, "/quotes", {**VEHICLE_QUOTE, "term": term}), 422, "term")


# --- plan search errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field", "codes"),
    [
        ({}, 422, "vehicle_id", "required"),
        ({"budget": "3000"}, 422, "vehicle_id", "required"),
        ({"vehicle_id": "no-such-car"}, 404, None, None),
        ({"vehicle_id": HAN, "budget": "abc"}, 422, "budget", "not_a_number"),
        ({"vehicle_id": HAN, "budget": "NaN"}, 422, "budget", "not_a_number"),
        ({"vehicle_id": HAN, "budget": True}, 422, "budget", "not_a_number"),
        ({"vehicle_id": HAN, "budget": "-3000"}, 422, "budget", "not_positive"),
        ({"vehicle_id": HAN, "budget": -1}, 422, "budget", "not_positive"),
        ({"vehicle_id": HAN, "budget": "0"}, 422, "budget", "not_positive"),
        ({"vehicle_id": HAN, "budget": "1e30"}, 422, "budget", "not_a_number"),
        ({"vehicle_id": HAN, "budget": 1e30}, 422, "budget", "too_large"),
        ({"vehicle_id": HAN, "budget": ""}, 422, "budget", "not_a_number"),
        ({"vehicle_id": HAN, "pack": {}}, 422, "pack", "unknown_option"),
        ({"vehicle_id": HAN, "pack": ["basic"]}, 422, "pack", "unknown_option"),
        ({"vehicle_id": HAN, "terms": [True]}, 422, "terms", None),
        ({"vehicle_id": HAN, "max_down": "abc"}, 422, "max_down", "not_a_number"),
        ({"vehicle_id": HAN, "limit": 0}, 422, "limit", None),
        ({"vehicle_id": HAN, "limit": -5}, 422, "limit", None),
        ({"vehicle_id": HAN, "limit": 10_000}, 422, "limit", None),
        ({"vehicle_id": HAN, "limit": True}, 422, "limit", None),
        ({"vehicle_id": HAN, "limit": "20"}, 422, "limit", None),
        ({"vehicle_id": HAN, "limit": 2.5}, 422, "limit", None),
        ({"vehicle_id": HAN, "sort": "x"}, 422, "sort", "unknown_option"),
        ({"vehicle_id": HAN, "sort": ["rent"]}, 422, "sort", "unknown_option"),
        ({"vehicle_id": HAN, "terms": "36"}, 422, "terms", None),
        ({"vehicle_id": HAN, "terms": ["36"]}, 422, "terms", None),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_plan_search_rejects_bad_input(bff_server: Any, body: dict[str, Any], status: int, field: str | None,
                                       codes: str | None) -> None:
    assert_problem(post(bff_server, "/plans/search", body), status, field, codes)


@pytest.mark.parametrize("data", ["not json", "[1]", ""])
def test_plan_search_body_must_be_a_json_object(bff_server: Any, data: str) -> None:
    assert_problem(post(bff_server, "/plans/search", data=data), 422, "body", "required")


@pytest.mark.parametrize("path", ["/quotes", "/plans/search"])
@pytest.mark.parametrize("data", list(TOO_DEEP.values()), ids=list(TOO_DEEP))
def test_deeply_nested_json_is_a_400_problem(bff_server: Any, path: str, data: str) -> None:
    """The parser's recursion limit is not a 500; and a body nested deeper than any request needs is refused
    before a view walks it (a request of ours is a few levels deep)."""
    body = assert_problem(post(bff_server, path, data=data), 400)
    assert "nested" in body["detail"] and "64" in body["detail"], body


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/vehicles?q=%00", None), ("GET", "/vehicles/byd%00", None),
    ("POST", "/quotes", {"vehicle_id": "byd-han-ev\x00"}),
    ("POST", "/plans/search", {"vehicle_id": "x", "pack": "\x00"}),
    ("POST", "/quotes", {**EXPLICIT, "timing": "arrears", "\x00": 1}),
], ids=repr)
def test_a_nul_character_is_a_400_problem(bff_server: Any, method: str, path: str, body: Any) -> None:
    """PostgreSQL's text cannot hold U+0000 (schemathesis found /vehicles?q= answering 500 on it): refused with
    a 400 wherever it is, on every database, before it reaches one."""
    response = requests.request(method, api(bff_server, path), json=body, timeout=TIMEOUT)
    problem = assert_problem(response, 400)
    assert "U+0000" in problem["detail"], problem


def test_a_page_refuses_a_nul_character(bff_server: Any) -> None:
    from tests.integration.test_auth import csrf

    with requests.Session() as s:
        token = csrf(s, f"{bff_server.url}/login")  # past CSRF protection, to the hook and the database
        signing_in = s.post(f"{bff_server.url}/login", data={"email": "a\x00@b.cn", "password": "x",
                                                            "csrf_token": token}, timeout=TIMEOUT)
    for response in (requests.get(f"{bff_server.url}/vehicles?q=%00", timeout=TIMEOUT), signing_in):
        assert response.status_code == 400 and response.headers["Content-Type"].startswith("text/html"), (
            response.status_code, response.text[:300])


def test_json_nested_64_deep_is_parsed(bff_server: Any) -> None:
    assert_problem(post(bff_server, "/quotes", data='{"price": ' + nested(63) + "}"), 422, "term", "required")


def test_plan_search_limit_below_one_is_not_called_too_large(bff_server: Any) -> None:
    body = assert_problem(post(bff_server, "/plans/search", {"vehicle_id": HAN, "limit": 0}), 422, "limit")
    assert body["errors"][0]["code"] != "too_large", body["errors"][0]


def test_unknown_api_path_is_problem_json(bff_server: Any) -> None:
    response = requests.get(api(bff_server, "/nothing-here"), timeout=TIMEOUT)
    assert_problem(response, 404)
    not_allowed = requests.get(api(bff_server, "/quotes"), timeout=TIMEOUT)
    assert_problem(not_allowed, 405)
    assert "POST" in not_allowed.headers.get("Allow", ""), not_allowed.headers  # RFC 9110 §15.5.6: MUST


def test_a_page_that_takes_no_get_says_what_it_takes(bff_server: Any) -> None:
    response = requests.get(f"{bff_server.url}/logout", timeout=TIMEOUT)
    assert response.status_code == 405 and response.headers["Content-Type"].startswith("text/html")
    assert "POST" in response.headers.get("Allow", ""), response.headers


# --- happy paths --------------------------------------------------------------------------------------------


def test_vehicles_lists_the_catalogue_with_string_prices(bff_server: Any) -> None:
    from bff.demo import demo_vehicles

    response = requests.get(api(bff_server, "/vehicles"), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    items = body["items"]
    assert body["count"] == len(items) == len(demo_vehicles())
    assert 20 <= len(items) <= 30
    for v in items:
        assert isinstance(v["price"], str) and MONEY.match(v["price"]), v
        assert v["condition"] in ("new", "used") and v["usage"] in ("personal", "commercial")
        assert v["powertrain"] in ("ice", "nev")
    prices = [Decimal(v["price"]) for v in items]
    assert prices == sorted(prices), "cheapest first"
    assert len({v["id"] for v in items}) == len(items)


def test_vehicles_query_filters(bff_server: Any) -> None:
    body = requests.get(api(bff_server, "/vehicles"), params={"q": "BYD"}, timeout=TIMEOUT).json()
    assert body["count"] == len(body["items"]) >= 1
    assert all(v["make"] == "BYD" for v in body["items"]), body["items"]
    assert HAN in {v["id"] for v in body["items"]}
    chinese = requests.get(api(bff_server, "/vehicles"), params={"q": "特斯拉"}, timeout=TIMEOUT).json()
    assert chinese["count"] >= 1 and all(v["make"] == "Tesla" for v in chinese["items"])
    none = requests.get(api(bff_server, "/vehicles"), params={"q": "no such make%_"}, timeout=TIMEOUT).json()
    assert none == {"items": [], "count": 0}


def test_get_one_vehicle(bff_server: Any) -> None:
    body = requests.get(api(bff_server, f"/vehicles/{HAN}"), timeout=TIMEOUT).json()
    assert body["id"] == HAN and body["make"] == "BYD" and MONEY.match(body["price"])
    assert_problem(requests.get(api(bff_server, "/vehicles/no-such-car"), timeout=TIMEOUT), 404)


def test_explicit_quote_matches_an_independent_annuity(bff_server: Any) -> None:
    response = post(bff_server, "/quotes", EXPLICIT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    q = response.json()
    expected = pmt_arrears(Decimal("160000"), Decimal("0.0599"), 36)
    assert expected == Decimal("4866.79")
    assert q["monthly_payment"] == "4866.79"
    assert q["financed_amount"] == "160000.00" and q["down_payment"] == "40000.00"
    assert q["term"] == 36 and q["timing"] == "arrears"
    # No fees: the APR is the nominal rate itself; the effective rate is (1 + r/12)^12 − 1.
    assert q["apr"] == "0.059900"
    with localcontext() as ctx:
        ctx.prec = 40
        ear = ((1 + Decimal("0.0599") / 12) ** 12 - 1).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert q["effective_annual_rate"] == f"{ear:.6f}"

    schedule = q["schedule"]
    assert [row["period"] for row in schedule] == list(range(1, 37))
    assert all(row["payment"] == "4866.79" for row in schedule[:-1])
    assert sum(Decimal(row["principal"]) for row in schedule) == Decimal(q["financed_amount"])
    assert schedule[-1]["balance"] == "0.00"
    for row in schedule:
        assert Decimal(row["payment"]) == Decimal(row["interest"]) + Decimal(row["principal"])
        for key in ("payment", "interest", "principal", "balance"):
            assert MONEY.match(row[key]), row
    total_rents = sum(Decimal(row["payment"]) for row in schedule)
    assert Decimal(q["total_payable"]) == Decimal("40000.00") + total_rents
    assert Decimal(q["total_interest"]) == total_rents - Decimal("160000.00")

    flows = q["cash_flows"]
    assert [f["period"] for f in flows] == list(range(0, 37))
    assert flows[0]["amount"] == "160000.00"
    assert all(Decimal(f["amount"]) < 0 for f in flows[1:])
    assert sum(Decimal(f["amount"]) for f in flows) == -Decimal(q["total_interest"])
    for key in ("monthly_payment", "last_payment", "financed_amount", "residual", "deposit", "total_payable",
                "due_at_signing", "total_cost_of_credit"):
        assert MONEY.match(q[key]), (key, q[key])
    for key in ("apr", "effective_annual_rate", "annual_rate"):
        assert RATE.match(q[key]), (key, q[key])


def test_explicit_quote_accepts_numbers_as_json_numbers(bff_server: Any) -> None:
    as_numbers = post(bff_server, "/quotes", {"price": 200000, "down_ratio": 0.2, "term": 36, "rate": 0.0599})
    assert as_numbers.status_code == 200
    assert as_numbers.json()["monthly_payment"] == "4866.79"


def test_explicit_quote_with_a_residual_reconciles(bff_server: Any) -> None:
    q = post(bff_server, "/quotes", {**EXPLICIT, "residual_ratio": "0.3"}).json()
    assert q["residual"] == "60000.00"
    schedule = q["schedule"]
    repaid = sum(Decimal(row["principal"]) for row in schedule)
    assert repaid + Decimal(q["residual"]) == Decimal(q["financed_amount"])
    assert schedule[-1]["balance"] == q["residual"]
    assert Decimal(q["monthly_payment"]) < Decimal("4866.79")


def test_explicit_quote_in_advance_with_fees(bff_server: Any) -> None:
    q = post(bff_server, "/quotes", {**EXPLICIT, "timing": "advance", "fee_upfront": "1000",
                                     "fee_financed": "500", "insurance_financed": "4000",
                                     "deposit_ratio": "0.05"}).json()
    assert q["timing"] == "advance"
    assert q["financed_amount"] == "164500.00"  # 160000 + financed fee 500 + financed premium 4000
    assert q["deposit"] == "10000.00"
    assert q["credit_fees"] == "1500.00"
    assert Decimal(q["apr"]) > Decimal("0.0599"), "fees and a deposit raise the APR above the nominal rate"
    # Month 0: the first rent is paid at signing in advance mode.
    assert Decimal(q["due_at_signing"]) == Decimal("40000") + Decimal("1000") + Decimal("10000") + Decimal(
        q["schedule"][0]["payment"])


def test_vehicle_quote_returns_the_verdict(bff_server: Any) -> None:
    response = post(bff_server, "/quotes", VEHICLE_QUOTE)
    assert response.status_code == 200, response.text
    q = response.json()
    assert q["vehicle_id"] == HAN
    assert q["allowed"] is True and q["reasons"] == []
    assert isinstance(q["policy_version"], str) and q["policy_version"]
    assert isinstance(q["product_version"], str) and q["product_version"]
    assert MONEY.match(q["monthly_payment"]) and len(q["schedule"]) == 36
    assert q["down_payment"] == "41960.00"  # 20% of ¥209,800


def test_non_compliant_vehicle_quote_is_priced_but_not_allowed(bff_server: Any) -> None:
    response = post(bff_server, "/quotes", {**VEHICLE_QUOTE, "down_ratio": "0.05"})
    assert response.status_code == 200, response.text
    q = response.json()
    assert q["allowed"] is False
    codes = [r["code"] for r in q["reasons"]]
    assert "down_payment_below_minimum" in codes
    reason = q["reasons"][codes.index("down_payment_below_minimum")]
    assert "15%" in reason["text_en"] and "15%" in reason["text_zh"]
    assert MONEY.match(q["monthly_payment"])


def test_vehicle_quote_without_ctpl_is_not_allowed(bff_server: Any) -> None:
    q = post(bff_server, "/quotes", {**VEHICLE_QUOTE, "insurance": []}).json()
    assert q["allowed"] is False
    assert "mandatory_insurance_missing" in [r["code"] for r in q["reasons"]]


@pytest.mark.parametrize(("sort", "key"), [("rent", "monthly_payment"), ("total", "total_payable"), ("apr", "apr")])
def test_plan_search_within_budget_is_ranked(bff_server: Any, sort: str, key: str) -> None:
    response = post(bff_server, "/plans/search", {"vehicle_id": HAN, "budget": "3000", "sort": sort, "limit": 5000})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["evaluated"] == 3888
    assert body["sort"] == sort and body["vehicle_id"] == HAN
    plans = body["plans"]
    assert plans and len(plans) == body["matched"]
    assert all(Decimal(p["monthly_payment"]) <= 3000 for p in plans)
    ranked = [Decimal(p[key]) for p in plans]
    assert ranked == sorted(ranked)
    floor = Decimal("0.15")
    assert all(Decimal(p["down_ratio"]) >= floor for p in plans), "only compliant plans"


def test_plan_search_limit_and_budget(bff_server: Any) -> None:
    wide = post(bff_server, "/plans/search", {"vehicle_id": HAN, "limit": 5000}).json()
    narrow = post(bff_server, "/plans/search", {"vehicle_id": HAN, "budget": 3000, "limit": 7}).json()
    assert narrow["evaluated"] == wide["evaluated"] == 3888
    assert len(narrow["plans"]) == 7 and narrow["matched"] >= 7
    assert narrow["matched"] < wide["matched"] == len(wide["plans"])
    assert post(bff_server, "/plans/search", {"vehicle_id": HAN, "budget": "0.01"}).json()["plans"] == []
    only_48 = post(bff_server, "/plans/search", {"vehicle_id": HAN, "terms": [48], "limit": 100}).json()
    assert only_48["plans"] and all(p["term"] == 48 for p in only_48["plans"])


def test_searched_plans_agree_with_the_exact_quote(bff_server: Any) -> None:
    """The generator's figures equal the exact quote of the same choice (and the choice is allowed)."""
    plans = post(bff_server, "/plans/search", {"vehicle_id": HAN, "budget": "3000", "limit": 4}).json()["plans"]
    for p in plans:
        choice = {k: p[k] for k in ("down_ratio", "term", "insurance", "residual_ratio", "deposit_free",
                                    "extras_financed", "timing")}
        q = post(bff_server, "/quotes", {"vehicle_id": HAN, **choice}).json()
        assert q["allowed"] is True, q["reasons"]
        for key in ("monthly_payment", "last_payment", "financed_amount", "apr", "total_payable", "down_payment"):
            assert q[key] == p[key], (key, q[key], p[key])


# --- the OpenAPI document -------------------------------------------------------------------------------------


@pytest.fixture
def openapi(bff_server: Any) -> dict[str, Any]:
    response = requests.get(api(bff_server, "/openapi.json"), timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_openapi_document_is_valid_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    validate_spec(openapi)


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def test_every_api_route_is_documented(openapi: dict[str, Any], app: Flask) -> None:
    served: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        # The document itself is not an operation of the API it describes.
        if not rule.rule.startswith("/api/v1") or rule.rule == "/api/v1/openapi.json":
            continue
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                served.add((_openapi_path(rule.rule), method.lower()))
    assert served, "no API routes found"
    documented = {(path, method) for path, ops in openapi["paths"].items() for method in ops
                  if method in ("get", "post", "put", "patch", "delete")}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def _validator(openapi: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    return OAS31Validator({**schema, "components": openapi["components"]})


def _response_schema(openapi: dict[str, Any], path: str, method: str, status: str,
                     media: str = "application/json") -> dict[str, Any]:
    return openapi["paths"][path][method]["responses"][status]["content"][media]["schema"]  # type: ignore[no-any-return]


def _required(openapi: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return list(schema.get("required", []))


def test_happy_responses_conform_to_the_document(bff_server: Any, openapi: dict[str, Any]) -> None:
    cases = [
        ("/api/v1/vehicles", "get", requests.get(api(bff_server, "/vehicles"), timeout=TIMEOUT)),
        ("/api/v1/vehicles/{vehicle_id}", "get", requests.get(api(bff_server, f"/vehicles/{HAN}"), timeout=TIMEOUT)),
        ("/api/v1/quotes", "post", post(bff_server, "/quotes", EXPLICIT)),
        ("/api/v1/quotes", "post", post(bff_server, "/quotes", VEHICLE_QUOTE)),
        ("/api/v1/plans/search", "post", post(bff_server, "/plans/search", {"vehicle_id": HAN, "budget": "3000"})),
    ]
    for path, method, response in cases:
        assert response.status_code == 200, (path, response.text)
        schema = _response_schema(openapi, path, method, "200")
        body = response.json()
        missing = [k for k in _required(openapi, schema) if k not in body]
        assert not missing, (path, missing)
        _validator(openapi, schema).validate(body)
    items_schema = _response_schema(openapi, "/api/v1/vehicles", "get", "200")["properties"]["items"]["items"]
    for vehicle in cases[0][2].json()["items"]:
        assert all(k in vehicle for k in _required(openapi, items_schema))


def test_requests_used_here_conform_to_the_document(openapi: dict[str, Any]) -> None:
    quote_schema = openapi["paths"]["/api/v1/quotes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    _validator(openapi, quote_schema).validate(EXPLICIT)
    _validator(openapi, quote_schema).validate(VEHICLE_QUOTE)
    search = openapi["paths"]["/api/v1/plans/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    _validator(openapi, search).validate({"vehicle_id": HAN, "budget": "3000", "sort": "apr", "limit": 5000})


def test_error_responses_conform_to_the_document(bff_server: Any, openapi: dict[str, Any]) -> None:
    cases = [
        ("/api/v1/quotes", "422", post(bff_server, "/quotes", {**EXPLICIT, "price": "abc"})),
        ("/api/v1/quotes", "404", post(bff_server, "/quotes", {**VEHICLE_QUOTE, "vehicle_id": "nope"})),
        ("/api/v1/plans/search", "422", post(bff_server, "/plans/search", {"vehicle_id": HAN, "sort": "x"})),
        ("/api/v1/plans/search", "404", post(bff_server, "/plans/search", {"vehicle_id": "nope"})),
    ]
    for path, status, response in cases:
        assert str(response.status_code) == status
        schema = _response_schema(openapi, path, "post", status, "application/problem+json")
        _validator(openapi, schema).validate(response.json())


# --- review fixes ---------------------------------------------------------------------------------------


@pytest.mark.db
@pytest.mark.parametrize("key", ["deposit_free", "extras_financed"])
@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_vehicle_quote_flags_must_be_json_booleans(bff_server: Any, key: str, value: Any) -> None:
    body = {"vehicle_id": HAN, "down_ratio": "0.2", "term": 36, key: value}
    assert_problem(post(bff_server, "/quotes", body), 422, key, "not_boolean")


@pytest.mark.db
def test_vehicle_quote_refuses_two_coverages_of_one_group(bff_server: Any) -> None:
    body = {"vehicle_id": HAN, "insurance": ["ctpl", "tpl_1m", "tpl_2m"]}
    assert_problem(post(bff_server, "/quotes", body), 422, "insurance", "exclusive_coverages")


@pytest.mark.db
def test_vehicle_quote_prices_only_the_products_terms(bff_server: Any) -> None:
    assert_problem(post(bff_server, "/quotes", {"vehicle_id": HAN, "term": 13}), 422, "term", "unknown_option")


@pytest.mark.db
@pytest.mark.parametrize("rate", [1e-41, "0.0599000001"])
def test_explicit_quote_rate_has_at_most_six_decimals(bff_server: Any, rate: Any) -> None:
    body = {"price": "200000", "term": 36, "rate": rate}
    assert_problem(post(bff_server, "/quotes", body), 422, "rate", "too_many_decimals")


@pytest.mark.db
def test_explicit_quote_carries_the_policy_verdict(bff_server: Any) -> None:
    response = post(bff_server, "/quotes", {"price": "200000", "down_ratio": "0.3", "term": 36, "rate": "0.3"})
    assert response.status_code == 200
    body = response.json()
    assert body["allowed"] is False
    assert [r["code"] for r in body["reasons"]] == ["apr_above_cap"]
    ok = post(bff_server, "/quotes", {"price": "200000", "down_ratio": "0.3", "term": 36, "rate": "0.0599",
                                      "deposit_ratio": "0.05"}).json()
    assert ok["allowed"] is True and ok["reasons"] == []
    used = post(bff_server, "/quotes", {"price": "80000", "down_ratio": "0.2", "term": 48, "rate": "0.0899",
                                        "condition": "used"}).json()
    assert {r["code"] for r in used["reasons"]} >= {"down_payment_below_minimum", "term_not_allowed"}


@pytest.mark.db
def test_zero_rate_apr_is_not_negative_zero(bff_server: Any) -> None:
    body = post(bff_server, "/quotes", {"price": "200000", "term": 12, "rate": "0"}).json()
    assert body["apr"] == "0.000000" and body["effective_annual_rate"] == "0.000000"


@pytest.mark.db
def test_plan_search_filters_by_pack_and_deposit(bff_server: Any) -> None:
    body = {"vehicle_id": HAN, "pack": "full", "deposit_free": True, "limit": 5000}
    plans = post(bff_server, "/plans/search", body).json()["plans"]
    assert plans and all(p["pack"] == "full" and p["deposit_free"] is True for p in plans)
    assert_problem(post(bff_server, "/plans/search", {"vehicle_id": HAN, "pack": "gold"}), 422, "pack")
    assert_problem(post(bff_server, "/plans/search", {"vehicle_id": HAN, "deposit_free": "yes"}), 422,
                   "deposit_free", "not_boolean")


# --- schemathesis: every documented operation, positive and negative data, all checks ----------------------

SCHEMA = load(document())


@SCHEMA.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_schemathesis(case: Any, bff_server: Any) -> None:
    validate(case, base_url=bff_server.url, timeout=TIMEOUT)
