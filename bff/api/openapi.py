"""The OpenAPI 3.1 description of the BFF's JSON API (served at ``/api/v1/openapi.json``).

It states what the API enforces, so that a client (and schemathesis, tests/integration/test_api.py) can tell a
valid request from an invalid one: each number is a JSON number or a decimal string in its range
(plans.money.decimal_pattern); what no JSON Schema states (one figure against another) is listed on the 422
response (httpkit.openapi.RULES_BEYOND_SCHEMA).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from httpkit.openapi import BAD_BODY
from httpkit.openapi import BAD_QUERY
from httpkit.openapi import PROBLEM_SCHEMA
from httpkit.openapi import STRING
from httpkit.openapi import problem
from httpkit.openapi import refusing_nul
from plans.generator import SORT_KEYS
from plans.inputs import MAX_BUDGET
from plans.inputs import MAX_CHARGE
from plans.inputs import MAX_PRICE
from plans.inputs import MAX_RATE
from plans.inputs import RATE_PLACES
from plans.money import decimal_pattern
from plans.policy import Policy
from plans.policy import load_policy
from plans.product import Product
from plans.product import load_product
from plans.quote import TIMINGS

MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "CNY, two decimals"}
RATE = {"type": "string", "pattern": r"^-?\d+\.\d{6}$", "description": "a fraction: 0.059900 is 5.99%"}
NULL = {"type": "null"}


def number(maximum: Decimal, *, positive: bool = False, places: int | None = None, description: str = "",
           nullable: bool = True) -> dict[str, Any]:
    """A number the API takes as a JSON number or a decimal string (no sign, exponent or separator), in
    [0, maximum] — (0, maximum] when ``positive`` — with at most ``places`` decimals; ``null`` is "not given"."""
    as_number: dict[str, Any] = {"type": "number", "maximum": float(maximum)}
    as_number["exclusiveMinimum" if positive else "minimum"] = 0
    choices: list[dict[str, Any]] = [as_number, {"type": "string", "pattern": decimal_pattern(
        maximum, positive=positive, places=places)}]
    schema: dict[str, Any] = {"oneOf": choices + ([NULL] if nullable else [])}
    if description:
        schema["description"] = description
    return schema


def whole(values: list[int], description: str) -> dict[str, Any]:
    """One of ``values``: a JSON integer or its digits as a string (leading zeros allowed)."""
    digits = "|".join(str(v) for v in values)
    return {"oneOf": [{"type": "integer", "enum": values}, {"type": "string", "pattern": f"^0*(?:{digits})$"}],
            "description": description}


def document(product: Product | None = None, policy: Policy | None = None) -> dict[str, Any]:
    """The OpenAPI document for ``product`` and ``policy`` (the configured ones when served; the defaults)."""
    product = product or load_product()
    policy = policy or load_policy()
    terms = list(range(policy.min_term, policy.max_term + 1))
    coverages = sorted(product.coverages)
    groups: dict[str, list[str]] = {}
    for code, cover in product.coverages.items():
        if cover.group is not None:
            groups.setdefault(cover.group, []).append(code)
    one_per_group = [{"not": {"allOf": [{"contains": {"const": a}}, {"contains": {"const": b}}]}}
                     for codes in groups.values() for i, a in enumerate(sorted(codes)) for b in sorted(codes)[i + 1:]]
    quote_rules = {
        "down_above_price": "the down payment exceeds the price",
        "nothing_financed": "nothing is left to finance",
        "residual_above_principal": "the residual (balloon) reaches the financed principal",
        "no_net_credit": "upfront fees and the deposit leave the customer no net credit",
        # a JSON number is read as the binary float nearest its text, which a validator cannot count
        # decimals of; a rate written as a string is held to six decimals by its pattern
        "too_many_decimals": "a rate sent as a JSON number has more than 6 decimals",
        "below_one_fen": "a price above 0 that rounds to 0.00 (less than half a fen)",
    }
    errors = {
        "400": BAD_BODY,
        "404": problem("Unknown vehicle"),
        "422": problem("Invalid input, with field errors", quote_rules),
    }
    ratio = "a fraction of the price: 0.2 is 20%"
    return refusing_nul({
        "openapi": "3.1.0",
        "info": {
            "title": "Leaseline BFF API",
            "version": "1.0.0",
            "description": "Vehicles, lease quotes with APR disclosure (PBOC 2021 No. 3) and plan search. A number "
                           "is a JSON number or a decimal string such as \"0.0599\" (no sign, exponent or "
                           "separator); null, or leaving the key out, means not given.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/vehicles": {
                "get": {
                    "operationId": "listVehicles",
                    "summary": "Vehicles of the catalogue, cheapest first",
                    "parameters": [{"name": "q", "in": "query", "required": False, "schema": STRING,
                                    "description": "words of the make, model or name"}],
                    "responses": {"200": {"description": "Vehicles", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["items", "count"], "properties": {
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Vehicle"}},
                            "count": {"type": "integer", "minimum": 0}}}}}},
                        "400": BAD_QUERY},
                }
            },
            "/api/v1/vehicles/{vehicle_id}": {
                "get": {
                    "operationId": "getVehicle",
                    "summary": "One vehicle",
                    "parameters": [{"name": "vehicle_id", "in": "path", "required": True, "schema": STRING}],
                    "responses": {"200": {"description": "The vehicle", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Vehicle"}}}}, "404": errors["404"]},
                }
            },
            "/api/v1/quotes": {
                "post": {
                    "operationId": "createQuote",
                    "summary": "Price one plan (a catalogue vehicle with choices, or explicit figures)",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "oneOf": [{"$ref": "#/components/schemas/VehicleQuoteRequest"},
                                  {"$ref": "#/components/schemas/ExplicitQuoteRequest"}]}}}},
                    "responses": {"200": {"description": "The quote", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Quote"}}}}, **errors},
                }
            },
            "/api/v1/plans/search": {
                "post": {
                    "operationId": "searchPlans",
                    "summary": "Every compliant plan for a vehicle within constraints, ranked",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/PlanSearchRequest"}}}},
                    "responses": {"200": {"description": "Ranked plans", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/PlanSearchResult"}}}},
                        "400": BAD_BODY, "404": errors["404"], "422": problem("Invalid input, with field errors")},
                }
            },
        },
        "components": {"schemas": {
            "Problem": PROBLEM_SCHEMA,
            "Vehicle": {
                "type": "object",
                "required": ["id", "make", "model", "name_zh", "name_en", "price", "condition", "usage", "powertrain"],
                "properties": {
                    "id": {"type": "string"}, "make": {"type": "string"}, "model": {"type": "string"},
                    "name_zh": {"type": "string"}, "name_en": {"type": "string"}, "price": MONEY,
                    "condition": {"enum": ["new", "used"]}, "usage": {"enum": ["personal", "commercial"]},
                    "powertrain": {"enum": ["ice", "nev"]}, "seats": {"type": "integer"},
                    "body": {"type": "string"}, "year": {"type": "integer"},
                    "mileage_km": {"type": ["integer", "null"]}, "rate_subsidy": {"type": "string"},
                },
            },
            "VehicleQuoteRequest": {
                "type": "object", "required": ["vehicle_id"],
                "properties": {
                    "vehicle_id": STRING,
                    "down_ratio": number(Decimal("0.9"), description=f"{ratio}; 0.2 when not given"),
                    "term": whole(list(product.terms), "months: one of the product's terms; 36 when not given"),
                    "insurance": {"type": "array", "items": {"enum": coverages}, "allOf": one_per_group,
                                  "description": "coverage codes, at most one of each group (tpl_1m or tpl_2m); "
                                                 "the standard pack when not given"},
                    "residual_ratio": number(Decimal("0.9"), description=f"the residual (balloon), {ratio}"),
                    "deposit_free": {"type": "boolean"}, "extras_financed": {"type": "boolean"},
                    "timing": {"enum": list(TIMINGS)},
                },
            },
            "ExplicitQuoteRequest": {
                "type": "object", "required": ["price", "term", "rate"],
                # a body with vehicle_id is a VehicleQuoteRequest, whatever else it holds
                "not": {"required": ["vehicle_id"]},
                "properties": {
                    "price": number(MAX_PRICE, positive=True, nullable=False, description="CNY"),
                    "down_payment": number(MAX_PRICE, description="CNY; takes precedence over down_ratio"),
                    "down_ratio": number(Decimal(1), description=ratio),
                    "term": {"oneOf": [{"type": "integer", "minimum": policy.min_term, "maximum": policy.max_term},
                                       {"type": "string", "pattern": "^0*(?:" + "|".join(map(str, terms)) + ")$"}],
                             "description": "months"},
                    "rate": number(MAX_RATE, places=RATE_PLACES, nullable=False,
                                   description="nominal annual rate, a fraction with at most 6 decimals"),
                    "residual_ratio": number(Decimal("0.99"), description=ratio),
                    "deposit_ratio": number(Decimal("0.5"), description=ratio),
                    **{key: number(MAX_CHARGE, description="CNY") for key in (
                        "fee_upfront", "fee_financed", "insurance_upfront", "insurance_financed")},
                    "timing": {"enum": [*TIMINGS, None]}, "condition": {"enum": ["new", "used"]},
                    "usage": {"enum": ["personal", "commercial"]}, "powertrain": {"enum": ["ice", "nev"]},
                },
            },
            "Quote": {
                "type": "object",
                "required": ["monthly_payment", "financed_amount", "apr", "effective_annual_rate", "total_payable",
                             "cash_flows", "schedule"],
                "properties": {
                    "monthly_payment": MONEY, "last_payment": MONEY, "financed_amount": MONEY,
                    "down_payment": MONEY, "residual": MONEY, "purchase_price": MONEY, "deposit": MONEY, "apr": RATE,
                    "effective_annual_rate": RATE, "annual_rate": RATE, "term": {"type": "integer"},
                    "timing": {"enum": list(TIMINGS)}, "total_interest": MONEY, "credit_fees": MONEY,
                    "total_cost_of_credit": MONEY, "total_payable": MONEY, "due_at_signing": MONEY,
                    "cash_flows": {"type": "array", "items": {"type": "object", "properties": {
                        "period": {"type": "integer"}, "amount": MONEY}}},
                    "schedule": {"type": "array", "items": {"type": "object", "properties": {
                        "period": {"type": "integer"}, "payment": MONEY, "interest": MONEY,
                        "principal": MONEY, "balance": MONEY}}},
                    "allowed": {"type": "boolean"},
                    "reasons": {"type": "array", "items": {"type": "object", "properties": {
                        "code": {"type": "string"}, "text_zh": {"type": "string"}, "text_en": {"type": "string"}}}},
                    "policy_version": {"type": "string"}, "product_version": {"type": "string"},
                    "vehicle_id": {"type": "string"},
                },
            },
            "PlanSearchRequest": {
                "type": "object", "required": ["vehicle_id"],
                "properties": {
                    "vehicle_id": STRING,
                    "budget": number(MAX_BUDGET, positive=True, description="the highest monthly rent, CNY"),
                    "max_down": number(MAX_BUDGET, positive=True, description="the highest down payment, CNY"),
                    "terms": {"type": ["array", "null"], "items": {"type": "integer"}, "description": "months"},
                    "pack": {"enum": [*sorted(product.packs), None], "description": "one insurance pack"},
                    "deposit_free": {"type": ["boolean", "null"],
                                     "description": "only deposit-free (true) or with deposit (false)"},
                    "sort": {"enum": list(SORT_KEYS)},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
                },
            },
            "PlanSearchResult": {
                "type": "object", "required": ["evaluated", "matched", "plans"],
                "properties": {
                    "vehicle_id": {"type": "string"}, "evaluated": {"type": "integer"},
                    "matched": {"type": "integer"}, "elapsed_ms": {"type": "number"}, "sort": {"type": "string"},
                    "policy_version": {"type": "string"}, "product_version": {"type": "string"},
                    "plans": {"type": "array", "items": {"type": "object"}},
                },
            },
        }},
    })
