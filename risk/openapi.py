"""The OpenAPI 3.1 description of the risk service's JSON API (served at ``/api/v1/openapi.json``).

It states what the service enforces (risk/snapshot.py and risk/api.py use the same patterns), so that the
schemathesis test (tests/integration/test_risk_service.py) holds the service to it with all its checks.
"""

from __future__ import annotations

from typing import Any

from httpkit.openapi import BAD_BODY
from httpkit.openapi import BAD_QUERY
from httpkit.openapi import NO_NUL
from httpkit.openapi import NOT_BLANK
from httpkit.openapi import PROBLEM_SCHEMA
from httpkit.openapi import STRING
from httpkit.openapi import problem as _problem
from httpkit.openapi import refusing_nul
from risk.service import DECISIONS
from risk.service import OFFICER_ROLES
from risk.snapshot import BANK_ACCOUNT
from risk.snapshot import CONDITION
from risk.snapshot import EMPLOYMENT
from risk.snapshot import HOUSING
from risk.snapshot import ID_SHAPE_PATTERN
from risk.snapshot import KYC_STATUS
from risk.snapshot import MONEY_PATTERN
from risk.snapshot import POSITIVE_MONEY_PATTERN
from risk.snapshot import RATE_PATTERN

MONEY = {"type": "string", "pattern": MONEY_PATTERN, "description": "CNY, at most two decimals, at most 100000000",
         "examples": ["28000.00"]}


def text(max_length: int) -> dict[str, Any]:
    """A string of 1–``max_length`` characters, not only spaces."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOT_BLANK}


TEXT = text(64)


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


AUTH_ERRORS = {"401": _problem("No, invalid, expired or wrong-audience bearer token"),
               "403": _problem("The token lacks the scope")}


def _list_of(ref: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "count"], "properties": {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}, "count": {"type": "integer"}}}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    officer = {"officer_id": TEXT, "officer_role": {"enum": list(OFFICER_ROLES)}}
    case_id = {"name": "case_id", "in": "path", "required": True, "schema": STRING}
    return refusing_nul({
        "openapi": "3.1.0",
        "info": {
            "title": "Leaseline risk service API",
            "version": "1.0.0",
            "description": "Automatic credit decisions (scorecard + versioned policy rules) with reasons, and a "
                           "tiered human review queue (tier 2: four eyes). Data providers are sandboxes unless "
                           "configured otherwise; every assessment says so (`sandbox`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"serviceToken": []}],
        "paths": {
            "/api/v1/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}},
            "/api/v1/assessments": {
                "post": {
                    "operationId": "createAssessment",
                    "summary": "Assess an application snapshot (scope risk:assess); idempotent per application id",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Snapshot"}}}},
                    "responses": {
                        "201": _json("Assessment", "A new assessment"),
                        "200": _json("Assessment", "The existing assessment of this application"),
                        "400": BAD_BODY, **AUTH_ERRORS,
                        "409": _problem("The Idempotency-Key was used for another application"),
                        "413": _problem("Body larger than 256 KB"),
                        "422": _problem("Malformed or partial snapshot, with field errors"),
                    },
                },
                "get": {
                    "operationId": "listAssessments", "summary": "Assessments, newest first (scope risk:assess)",
                    "parameters": [
                        {"name": "application_id", "in": "query", "required": False,
                         "schema": {**STRING, "minLength": 1, "maxLength": 64}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                    "responses": {"200": {"description": "Assessments", "content": {"application/json": {
                        "schema": _list_of("Assessment")}}}, "400": BAD_QUERY, **AUTH_ERRORS},
                },
            },
            "/api/v1/assessments/{assessment_id}": {"get": {
                "operationId": "getAssessment", "summary": "One assessment (scope risk:assess)",
                "parameters": [{"name": "assessment_id", "in": "path", "required": True, "schema": STRING}],
                "responses": {"200": _json("Assessment", "The assessment"), **AUTH_ERRORS,
                              "404": _problem("No such assessment")}}},
            "/api/v1/reviews": {"get": {
                "operationId": "listReviews",
                "summary": "The review queue, earliest SLA due first, with age (scope risk:review)",
                "parameters": [
                    {"name": "state", "in": "query", "required": False,
                     "schema": {"enum": ["open", "claimed", "decided"]}},
                    {"name": "tier", "in": "query", "required": False, "schema": {"type": "integer", "enum": [1, 2]}},
                    {"name": "officer_id", "in": "query", "required": False,
                     "description": "only the cases this officer decided, their latest decision first",
                     "schema": {**STRING, "minLength": 1, "maxLength": 64}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                "responses": {"200": {"description": "Cases", "content": {"application/json": {
                    "schema": _list_of("ReviewCase")}}}, "400": BAD_QUERY, **AUTH_ERRORS}}},
            "/api/v1/reviews/{case_id}": {"get": {
                "operationId": "getReview", "summary": "One review case (scope risk:review)",
                "parameters": [case_id],
                "responses": {"200": _json("ReviewCase", "The case"), **AUTH_ERRORS,
                              "404": _problem("No such case")}}},
            "/api/v1/reviews/{case_id}/claim": {"post": {
                "operationId": "claimReview", "summary": "Claim a case (a tier-2 case needs risk_officer_t2)",
                "parameters": [case_id],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["officer_id", "officer_role"], "properties": officer}}}},
                "responses": {"200": _json("ReviewCase", "The claimed case"), "400": BAD_BODY, **AUTH_ERRORS,
                              "404": _problem("No such case"),
                              "409": _problem("Claimed by another officer, decided, or already decided by you"),
                              "422": _problem("Field errors")}}},
            "/api/v1/reviews/{case_id}/decision": {"post": {
                "operationId": "decideReview",
                "summary": "Decide a claimed case with a comment; tier 2 is final when two different officers agree",
                "parameters": [case_id],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["officer_id", "officer_role", "decision", "comment"],
                    "properties": officer | {
                        "decision": {"enum": list(DECISIONS)},
                        "comment": text(4000),
                        "counter_offer": {"description": "with decision counter_offer: the new down payment, "
                                                         "term or both; read only then"},
                    },
                    "if": {"required": ["decision"], "properties": {"decision": {"const": "counter_offer"}}},
                    "then": {"required": ["counter_offer"], "properties": {"counter_offer": {
                        "type": "object",
                        "properties": {"down_payment": {"oneOf": [MONEY, {"type": "null"}]},
                                       "term": {"type": ["integer", "null"], "minimum": 1, "maximum": 120}},
                        "anyOf": [{"required": ["down_payment"], "properties": {"down_payment": {"type": "string"}}},
                                  {"required": ["term"], "properties": {"term": {"type": "integer"}}}]}}},
                }}}},
                "responses": {"200": _json("ReviewCase", "The case after the decision"), "400": BAD_BODY,
                              **AUTH_ERRORS,
                              "404": _problem("No such case"), "409": _problem("Not claimed by you, or decided"),
                              "422": _problem("Field errors")}}},
        },
        "components": {
            "securitySchemes": {"serviceToken": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A client-credentials access token of the Leaseline issuer, audience "
                               "leaseline-risk, scopes risk:assess / risk:review"}},
            "schemas": _schemas(),
        },
    })


def _schemas() -> dict[str, Any]:
    reason = {"type": "object", "required": ["code", "text_zh", "text_en"], "properties": {
        "code": {"type": "string"}, "text_zh": {"type": "string"}, "text_en": {"type": "string"}}}
    return {
        "Problem": PROBLEM_SCHEMA,
        "Snapshot": {
            "type": "object", "description": "The application as the BFF knows it; unknown fields are ignored",
            "required": ["application_id", "dealer_id", "applicant", "vehicle", "plan", "kyc", "device"],
            "properties": {
                "application_id": TEXT, "dealer_id": TEXT,
                "applicant": {"type": "object", "required": [
                    "age", "id_number", "name", "monthly_income", "employment", "housing", "dependants",
                    "existing_loans", "monthly_repayments"], "properties": {
                    "age": {"type": "integer", "minimum": 0, "maximum": 130},
                    "id_number": {"type": "string", "pattern": ID_SHAPE_PATTERN},
                    "name": TEXT,
                    "monthly_income": {**MONEY, "pattern": POSITIVE_MONEY_PATTERN, "description": "CNY, above 0"},
                    "monthly_repayments": MONEY,
                    "employment": {"enum": list(EMPLOYMENT)},
                    "employment_years": {"type": ["integer", "null"], "minimum": 0, "maximum": 80},
                    "housing": {"enum": list(HOUSING)},
                    "dependants": {"type": "integer", "minimum": 0, "maximum": 30},
                    "existing_loans": {"type": "integer", "minimum": 0, "maximum": 1000},
                    "mobile": {"type": ["string", "null"], "maxLength": 32, "pattern": NO_NUL}}},
                "vehicle": {"type": "object", "required": ["id", "make", "model", "price", "condition", "vin"],
                            "properties": {"id": TEXT, "make": TEXT, "model": TEXT, "price": MONEY,
                                           "condition": {"enum": list(CONDITION)},
                                           # "" until the dealer assigns the car (issue 17 §5)
                                           "vin": {"anyOf": [{"const": ""}, text(32)]},
                                           "mileage": {"type": ["integer", "null"], "minimum": 0,
                                                       "maximum": 2000000}}},
                "plan": {"type": "object", "required": [
                    "term", "down_payment", "financed_amount", "monthly_payment", "residual", "deposit",
                    "deposit_free", "apr"], "properties": {
                    "term": {"type": "integer", "minimum": 1, "maximum": 120}, "down_payment": MONEY,
                    "financed_amount": MONEY, "monthly_payment": MONEY, "residual": MONEY, "deposit": MONEY,
                    "deposit_free": {"type": "boolean"},
                    "apr": {"type": "string", "pattern": RATE_PATTERN, "examples": ["0.067123"],
                            "description": "a fraction from 0 to 1, at most 10 decimals"}}},
                "kyc": {"type": "object", "required": ["status", "manual"], "properties": {
                    "status": {"enum": list(KYC_STATUS)},
                    "face_distance": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
                    "liveness": {"type": ["boolean", "null"]}, "manual": {"type": "boolean"}}},
                "device": {"type": "object", "required": ["ip", "user_agent_hash"], "properties": {
                    "ip": TEXT, "user_agent_hash": text(128)}},
                "bank_account": {"type": ["object", "null"], "description": "a bank-statement check, when any",
                                 "properties": {"status": {"enum": [*BANK_ACCOUNT, None]}}},
            },
        },
        "Reason": reason,
        "Assessment": {
            "type": "object",
            "required": ["id", "application_id", "outcome", "tier", "score", "pd", "reasons", "conditions",
                         "policy_version", "model_version", "sandbox", "review", "decided_at"],
            "properties": {
                "id": {"type": "string"}, "application_id": {"type": "string"}, "dealer_id": {"type": "string"},
                "outcome": {"enum": ["approve", "decline", "refer"]},
                "auto_outcome": {"enum": ["approve", "decline", "refer"]},
                "tier": {"type": "integer", "enum": [0, 1, 2]}, "score": {"type": "integer"},
                "pd": {"type": "number", "minimum": 0, "maximum": 1},
                "reasons": {"type": "array", "items": {"$ref": "#/components/schemas/Reason"}},
                "conditions": {"type": "array", "items": {"type": "object", "required": ["code"], "properties": {
                    "code": {"type": "string"}, "text_zh": {"type": "string"}, "text_en": {"type": "string"}}}},
                "policy_version": {"type": "string"}, "model_version": {"type": "string"},
                "sandbox": {"type": "boolean"}, "decided_by": {"enum": ["auto", "review", None]},
                "financed_amount": MONEY, "providers": {"type": "object"},
                "review": {"oneOf": [{"$ref": "#/components/schemas/ReviewCase"}, {"type": "null"}]},
                "created_at": {"type": "string", "format": "date-time"},
                "decided_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "ReviewCase": {
            "type": "object", "required": ["id", "assessment_id", "tier", "state", "sla_due_at", "decisions"],
            "properties": {
                "id": {"type": "string"}, "assessment_id": {"type": "string"},
                "application_id": {"type": "string"}, "tier": {"type": "integer", "enum": [1, 2]},
                "state": {"enum": ["open", "claimed", "decided"]},
                "claimed_by": {"type": ["string", "null"]},
                "claimed_at": {"type": ["string", "null"], "format": "date-time"},
                "created_at": {"type": "string", "format": "date-time"},
                "sla_due_at": {"type": "string", "format": "date-time"},
                "age_seconds": {"type": "integer"}, "overdue": {"type": "boolean"},
                "approvals_needed": {"type": "integer"},
                "final_decision": {"enum": ["approve", "decline", "counter_offer", None]},
                "decided_at": {"type": ["string", "null"], "format": "date-time"},
                "decisions": {"type": "array", "items": {"type": "object", "properties": {
                    "officer_id": {"type": "string"}, "officer_role": {"type": "string"},
                    "decision": {"enum": ["approve", "decline", "counter_offer"]}, "comment": {"type": "string"},
                    "counter_offer": {"type": ["object", "null"]},
                    "decided_at": {"type": "string", "format": "date-time"}}}},
                "assessment": {"type": "object", "description": "the assessment with the masked snapshot"},
            },
        },
    }
