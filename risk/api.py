"""The risk service's JSON API ``/api/v1``: assessments and the review queue, behind service tokens.

Every endpoint but the OpenAPI document needs ``Authorization: Bearer <JWT>`` (infra.service_tokens):
``risk:assess`` for assessments, ``risk:review`` for the queue. Errors are problem+json (risk.errors).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import Blueprint
from flask import current_app
from flask import g
from flask import jsonify
from flask import request

from httpkit.bodies import json_body
from httpkit.queries import BadQuery
from httpkit.queries import query
from httpkit.queries import single
from infra.service_tokens import SCOPE_ASSESS
from infra.service_tokens import SCOPE_REVIEW
from infra.service_tokens import InvalidToken
from plans.errors import FieldError
from plans.inputs import whole_number
from risk.errors import InsufficientScope
from risk.errors import Unauthorized
from risk.openapi import document
from risk.service import DECISIONS
from risk.service import OFFICER_ROLES
from risk.service import CounterOffer
from risk.service import RiskService
from risk.snapshot import MONEY
from risk.snapshot import SnapshotInvalid
from risk.snapshot import field_error
from risk.snapshot import parse_snapshot

bp = Blueprint("risk_api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")
STATES = ("open", "claimed", "decided")
TIERS = ("1", "2")
LIMIT = re.compile(r"[0-9]{1,6}")


def service() -> RiskService:
    return current_app.extensions["risk"].service  # type: ignore[no-any-return]


def require(scope: str) -> Callable[[F], F]:
    """Verify the bearer token (signature, issuer, audience, expiry) and that it carries ``scope``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            kind, _, token = header.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise Unauthorized("no bearer token")
            try:
                claims = current_app.extensions["risk"].verifier.verify(token.strip())
            except InvalidToken as exc:
                current_app.logger.info("refused token: %s", exc.reason)
                raise Unauthorized(exc.reason) from None
            if not claims.has(scope):
                raise InsufficientScope(scope)
            g.claims = claims
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def json_object() -> dict[str, Any]:
    body = json_body(force=True)
    if not isinstance(body, dict):
        raise SnapshotInvalid([field_error("body", "not_an_object")])
    return body


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(document())


@bp.post("/assessments")
@require(SCOPE_ASSESS)
def create_assessment() -> Any:
    """Assess an application snapshot: 201 for a new assessment, 200 with the existing one for a known id."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise SnapshotInvalid([FieldError("Idempotency-Key", "idempotency_key", "幂等键须为 1–128 个可见 ASCII 字符",
                                          "Idempotency-Key must be 1-128 visible ASCII characters")])
    snapshot = parse_snapshot(json_object())
    result, created = service().assess(snapshot, key)
    response = jsonify(result)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/assessments/{result['id']}"
    return response


@bp.get("/assessments/<assessment_id>")
@require(SCOPE_ASSESS)
def get_assessment(assessment_id: str) -> Any:
    return jsonify(service().get(assessment_id))


def _limit(found: dict[str, list[str]], default: int) -> int:
    raw = single(found, "limit")
    if raw is None:
        return default
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses
    if not LIMIT.fullmatch(raw) or not 1 <= int(raw) <= 500:
        raise BadQuery([field_error("limit", "out_of_range", min=1, max=500)])
    return int(raw)


def _text(found: dict[str, list[str]], name: str) -> str | None:
    """An optional id filter: absent, or 1–64 characters (empty is refused, not read as "no filter")."""
    value = single(found, name)
    if value is not None and not value:
        raise BadQuery([field_error(name, "required")])
    if value is not None and len(value) > 64:
        raise BadQuery([field_error(name, "too_long", max=64)])
    return value


@bp.get("/assessments")
@require(SCOPE_ASSESS)
def list_assessments() -> Any:
    found = query({"application_id": None, "limit": None})
    items = service().find(_text(found, "application_id"), _limit(found, 50))
    return jsonify({"items": items, "count": len(items)})


@bp.get("/reviews")
@require(SCOPE_REVIEW)
def list_reviews() -> Any:
    """The review queue with SLA due time and age, earliest due first; filter by ``state`` and ``tier``; with
    ``officer_id``, the cases that officer decided, their latest decision first. A filter it does not know,
    or a value outside its choices, is a 400 (never the unfiltered queue)."""
    found = query({"state": STATES, "tier": TIERS, "officer_id": None, "limit": None})
    tier = single(found, "tier")
    items = service().reviews(single(found, "state"), int(tier) if tier else None, _limit(found, 100),
                              _text(found, "officer_id"))
    return jsonify({"items": items, "count": len(items)})


@bp.get("/reviews/<case_id>")
@require(SCOPE_REVIEW)
def get_review(case_id: str) -> Any:
    return jsonify(service().review(case_id))


def _officer(body: dict[str, Any]) -> tuple[str, str, list[FieldError]]:
    errors: list[FieldError] = []
    officer = body.get("officer_id")
    if not isinstance(officer, str) or not officer.strip():
        errors.append(field_error("officer_id", "required"))
    elif len(officer) > 64:
        errors.append(field_error("officer_id", "too_long", max=64))
    role = body.get("officer_role")
    if not isinstance(role, str) or not role:
        errors.append(field_error("officer_role", "required"))
    elif role not in OFFICER_ROLES:
        errors.append(field_error("officer_role", "unknown_option", value=role[:32]))
    return (officer.strip() if isinstance(officer, str) else ""), (role if isinstance(role, str) else ""), errors


@bp.post("/reviews/<case_id>/claim")
@require(SCOPE_REVIEW)
def claim_review(case_id: str) -> Any:
    officer, role, errors = _officer(json_object())
    if errors:
        raise SnapshotInvalid(errors)
    return jsonify(service().claim(case_id, officer, role))


@bp.post("/reviews/<case_id>/decision")
@require(SCOPE_REVIEW)
def decide_review(case_id: str) -> Any:
    """Decide a claimed case: approve, decline or counter_offer, with a mandatory comment."""
    body = json_object()
    officer, role, errors = _officer(body)
    decision = body.get("decision")
    if decision is None:
        errors.append(field_error("decision", "required"))
    elif decision not in DECISIONS:
        errors.append(field_error("decision", "unknown_option", value=str(decision)[:32]))
    comment = body.get("comment")
    if not isinstance(comment, str) or not comment.strip():
        errors.append(field_error("comment", "required"))
    elif len(comment) > 4000:
        errors.append(field_error("comment", "too_long", max=4000))
    offer = _counter_offer(body.get("counter_offer"), decision == "counter_offer", errors)
    if errors:
        raise SnapshotInvalid(errors)
    return jsonify(service().decide(case_id, officer, role, str(decision), str(comment).strip(), offer))


def _counter_offer(raw: Any, required: bool, errors: list[FieldError]) -> CounterOffer | None:
    if not required:
        return None
    if not isinstance(raw, dict):
        errors.append(field_error("counter_offer", "required"))
        return None
    down, term = raw.get("down_payment"), raw.get("term")
    amount = None
    if down is not None:
        if not isinstance(down, str) or not MONEY.fullmatch(down):
            errors.append(field_error("counter_offer.down_payment", "money_format"))
        else:
            amount = Decimal(down).quantize(Decimal("0.01"))
    if term is not None and (not whole_number(term) or not 1 <= term <= 120):
        errors.append(field_error("counter_offer.term", "out_of_range", min=1, max=120))
        term = None
    elif term is not None:
        term = int(term)
    if down is None and term is None:
        errors.append(field_error("counter_offer", "required"))
    return CounterOffer(amount, term)
