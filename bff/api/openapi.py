"""The OpenAPI 3.1 description of the BFF's JSON API (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "CNY, two decimals"}
RATE = {"type": "string", "pattern": r"^-?\d+\.\d{6}$", "description": "a fraction: 0.059900 is 5.99%"}
NUMBER_INPUT = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def _problem_ref() -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    errors = {
        "404": {"description": "Unknown vehicle", "content": _problem_ref()},
        "422": {"description": "Invalid input, with field errors", "content": _problem_ref()},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Leaseline BFF API",
            "version": "1.0.0",
            "description": "Vehicles, lease quotes with APR disclosure (PBOC 2021 No. 3) and plan search.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/vehicles": {
                "get": {
                    "operationId": "listVehicles",
                    "summary": "Vehicles of the catalogue, cheapest first",
                    "parameters": [{"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "Vehicles", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Vehicle"}},
                            "count": {"type": "integer"}}}}}}},
                }
            },
            "/api/v1/vehicles/{vehicle_id}": {
                "get": {
                    "operationId": "getVehicle",
                    "summary": "One vehicle",
                    "parameters": [{"name": "vehicle_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
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
                        "schema": {"$ref": "#/components/schemas/PlanSearchResult"}}}}, **errors},
                }
            },
        },
        "components": {"schemas": {
            "Problem": {
                "type": "object", "description": "RFC 9457 problem details",
                "required": ["title", "status"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "required": ["field", "code"],
                               "properties": {"field": {"type": "string"}, "code": {"type": "string"},
                                              "message": {"type": "string"}, "message_zh": {"type": "string"}}}},
                },
            },
            "Vehicle": {
                "type": "object",
                "required": ["id", "make", "model", "name_zh", "name_en", "price", "condition", "usage", "powertrain"],
                "properties": {
                    "id": {"type": "string"}, "make": {"type": "string"}, "model": {"type": "string"},
                    "name_zh": {"type": "string"}, "name_en": {"type": "string"}, "price": MONEY,
                    "condition": {"enum": ["new", "used"]}, "usage": {"enum": ["personal", "commercial"]},
                    "powertrain": {"enum": ["ice", "nev"]}, "seats": {"type": "integer"},
                    "body": {"type": "string"}, "year": {"type": "integer"}, "mileage_km": {"type": "integer"},
                    "rate_subsidy": {"type": "string"},
                },
            },
            "VehicleQuoteRequest": {
                "type": "object", "required": ["vehicle_id"],
                "properties": {
                    "vehicle_id": {"type": "string"},
                    "down_ratio": NUMBER_INPUT, "term": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                    "insurance": {"type": "array", "items": {"type": "string"},
                                  "description": "coverage codes: ctpl, damage, tpl_1m, tpl_2m, seat, scratch"},
                    "residual_ratio": NUMBER_INPUT, "deposit_free": {"type": "boolean"},
                    "extras_financed": {"type": "boolean"}, "timing": {"enum": ["arrears", "advance"]},
                },
            },
            "ExplicitQuoteRequest": {
                "type": "object", "required": ["price", "term", "rate"],
                "properties": {k: NUMBER_INPUT for k in (
                    "price", "down_payment", "down_ratio", "term", "rate", "residual_ratio", "fee_upfront",
                    "fee_financed", "insurance_upfront", "insurance_financed", "deposit_ratio")}
                | {"timing": {"enum": ["arrears", "advance"]}, "condition": {"enum": ["new", "used"]},
                   "usage": {"enum": ["personal", "commercial"]}, "powertrain": {"enum": ["ice", "nev"]}},
            },
            "Quote": {
                "type": "object",
                "required": ["monthly_payment", "financed_amount", "apr", "effective_annual_rate", "total_payable",
                             "cash_flows", "schedule"],
                "properties": {
                    "monthly_payment": MONEY, "last_payment": MONEY, "financed_amount": MONEY,
                    "down_payment": MONEY, "residual": MONEY, "deposit": MONEY, "apr": RATE,
                    "effective_annual_rate": RATE, "annual_rate": RATE, "term": {"type": "integer"},
                    "timing": {"enum": ["arrears", "advance"]}, "total_interest": MONEY, "credit_fees": MONEY,
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
                    "vehicle_id": {"type": "string"}, "budget": NUMBER_INPUT, "max_down": NUMBER_INPUT,
                    "terms": {"type": "array", "items": {"type": "integer"}},
                    "pack": {"type": "string", "description": "one insurance pack: basic, standard, full"},
                    "deposit_free": {"type": "boolean", "description": "only deposit-free (true) or with deposit"},
                    "sort": {"enum": ["rent", "total", "apr"]},
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
    }
