"""JSON API: vehicles, quotes, plan search. Errors are application/problem+json with field errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint
from flask import jsonify

from bff.api.openapi import document
from bff.services import services
from httpkit.bodies import json_body as parsed_json_body
from httpkit.queries import query
from httpkit.queries import single
from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import error
from plans.generator import SORT_KEYS
from plans.generator import Constraints
from plans.generator import summary_as_dict
from plans.inputs import explicit_reasons
from plans.inputs import parse_budget
from plans.inputs import parse_category
from plans.inputs import parse_plan_choice
from plans.inputs import parse_quote_request
from plans.inputs import whole_number
from plans.product import PlanResult
from plans.product import Vehicle
from plans.quote import quote
from plans.quote import quote_as_dict

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def vehicle_json(v: Vehicle) -> dict[str, Any]:
    return {
        "id": v.id, "make": v.make, "model": v.model, "name_zh": v.name_zh, "name_en": v.name_en,
        "price": f"{v.price:.2f}", "condition": v.category.condition, "usage": v.category.usage,
        "powertrain": v.category.powertrain, "seats": v.seats, "body": v.body, "year": v.year,
        "mileage_km": v.mileage_km, "rate_subsidy": f"{v.rate_subsidy:.4f}",
    }


def result_json(result: PlanResult) -> dict[str, Any]:
    return {
        **quote_as_dict(result.quote),
        "vehicle_id": result.vehicle.id,
        "allowed": result.allowed,
        "reasons": [r.as_dict() for r in result.reasons],
        "policy_version": result.policy_version,
        "product_version": result.product_version,
    }


def json_body() -> dict[str, Any]:
    body = parsed_json_body()
    if not isinstance(body, dict):
        raise PlanInputError([error("body", "required")])
    return body


@bp.get("/openapi.json")
def openapi() -> Any:
    svc = services().plans
    return jsonify(document(svc.product, svc.policy))


@bp.get("/vehicles")
def list_vehicles() -> Any:
    found = services().plans.vehicles(single(query({"q": None}), "q") or "")
    return jsonify({"items": [vehicle_json(v) for v in found], "count": len(found)})


@bp.get("/vehicles/<vehicle_id>")
def get_vehicle(vehicle_id: str) -> Any:
    return jsonify(vehicle_json(services().plans.vehicle(vehicle_id)))


@bp.post("/quotes")
def create_quote() -> Any:
    """Price a plan: for a catalogue vehicle (``vehicle_id`` + choices) or from explicit figures."""
    body = json_body()
    svc = services().plans
    if "vehicle_id" in body:
        vehicle = svc.vehicle(str(body["vehicle_id"]))
        choice = parse_plan_choice(body, svc.product, svc.policy, strict=True)
        return jsonify(result_json(svc.evaluate(vehicle, choice)))
    request_ = parse_quote_request(body, svc.policy, strict=True)
    category = parse_category(body)
    result = quote(request_)
    reasons = explicit_reasons(request_, result.apr, svc.policy, category)
    return jsonify({
        **quote_as_dict(result),
        "allowed": not reasons,
        "reasons": [r.as_dict() for r in reasons],
        "policy_version": svc.policy.version,
    })


@bp.post("/plans/search")
def search_plans() -> Any:
    """Every compliant plan for a vehicle within optional constraints, ranked."""
    body = json_body()
    svc = services().plans
    if "vehicle_id" not in body:
        raise PlanInputError([error("vehicle_id", "required")])
    vehicle = svc.vehicle(str(body["vehicle_id"]))
    errors: list[FieldError] = []

    def amount(key: str) -> Decimal | None:
        if body.get(key) is None:
            return None
        try:
            return parse_budget(body[key], key, strict=True)
        except PlanInputError as exc:
            errors.extend(exc.errors)
            return None

    budget, max_down = amount("budget"), amount("max_down")
    terms = body.get("terms")
    if terms is not None and (not isinstance(terms, list) or not all(map(whole_number, terms))):
        errors.append(error("terms", "not_an_integer"))
        terms = None
    sort = body.get("sort", "rent")
    if sort not in SORT_KEYS:
        errors.append(error("sort", "unknown_option", value=str(sort)[:20]))
    limit = body.get("limit", 50)
    if not whole_number(limit) or not 1 <= limit <= 5000:
        errors.append(error("limit", "out_of_range", min=1, max=5000))
        limit = 50
    pack = body.get("pack")
    if pack is not None and (not isinstance(pack, str) or pack not in svc.product.packs):  # {} is unhashable
        errors.append(error("pack", "unknown_option", value=str(pack)[:20]))
    deposit_free = body.get("deposit_free")
    if deposit_free is not None and not isinstance(deposit_free, bool):
        errors.append(error("deposit_free", "not_boolean"))
    if errors:
        raise PlanInputError(errors)
    result = svc.search(vehicle, Constraints(budget=budget, max_down=max_down,
                                             terms=tuple(int(t) for t in terms) if terms else None,
                                             pack=pack, deposit_free=deposit_free), sort, int(limit))
    return jsonify({
        "vehicle_id": vehicle.id, "evaluated": result.evaluated, "matched": result.matched,
        "elapsed_ms": round(result.elapsed_ms, 3), "sort": sort,
        "policy_version": svc.policy.version, "product_version": svc.product.version,
        "plans": [summary_as_dict(s) for s in result.plans],
    })

