"""JSON API: vehicles, quotes, plan search. Errors are application/problem+json with field errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint
from flask import jsonify
from flask import request

from bff.api.openapi import document
from bff.services import services
from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import error
from plans.generator import SORT_KEYS
from plans.generator import Constraints
from plans.generator import summary_as_dict
from plans.inputs import bounded_int
from plans.inputs import parse_quote_request
from plans.money import to_decimal
from plans.product import PlanChoice
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
        "reasons": [{"code": r.code, "text_zh": r.text_zh, "text_en": r.text_en} for r in result.reasons],
        "policy_version": result.policy_version,
        "product_version": result.product_version,
    }


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise PlanInputError([error("body", "required")])
    return body


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(document())


@bp.get("/vehicles")
def list_vehicles() -> Any:
    found = services().plans.vehicles(request.args.get("q", ""))
    return jsonify({"items": [vehicle_json(v) for v in found], "count": len(found)})


@bp.get("/vehicles/<vehicle_id>")
def get_vehicle(vehicle_id: str) -> Any:
    return jsonify(vehicle_json(services().plans.vehicle(vehicle_id)))


def _ratio(body: dict[str, Any], key: str, default: str, errors: list[FieldError], high: str = "1") -> Decimal:
    raw = body.get(key, default)
    try:
        value = to_decimal(raw)
    except ValueError:
        errors.append(error(key, "not_a_number"))
        return Decimal(default)
    if not Decimal(0) <= value <= Decimal(high):
        errors.append(error(key, "ratio_range", max=f"{(Decimal(high) * 100).normalize():f}"))
        return Decimal(default)
    return value


def _choice_from(body: dict[str, Any], vehicle: Vehicle) -> PlanChoice:
    svc = services().plans
    errors: list[FieldError] = []
    down = _ratio(body, "down_ratio", "0.2", errors, "0.9")
    residual = _ratio(body, "residual_ratio", "0", errors, "0.9")
    term_raw = body.get("term", 36)
    term = bounded_int(term_raw, svc.policy.min_term, svc.policy.max_term) if isinstance(term_raw, int | str) else None
    if term is None:
        whole = bounded_int(term_raw, -(10**12), 10**12) is not None
        errors.append(error("term", "term_range", min=svc.policy.min_term, max=svc.policy.max_term) if whole
                      else error("term", "not_an_integer"))
        term = 36
    insurance = body.get("insurance", sorted(svc.product.packs["standard"].coverages))
    if not isinstance(insurance, list) or not all(isinstance(c, str) for c in insurance):
        errors.append(error("insurance", "unknown_option", value="insurance"))
        insurance = []
    unknown = [c for c in insurance if c not in svc.product.coverages]
    if unknown:
        errors.append(error("insurance", "unknown_option", value=unknown[0][:20]))
    timing = body.get("timing", "arrears")
    if timing not in ("arrears", "advance"):
        errors.append(error("timing", "timing"))
    if errors:
        raise PlanInputError(errors)
    return PlanChoice(down, term, frozenset(insurance), residual, bool(body.get("deposit_free", False)),
                      bool(body.get("extras_financed", True)), timing)


@bp.post("/quotes")
def create_quote() -> Any:
    """Price a plan: for a catalogue vehicle (``vehicle_id`` + choices) or from explicit figures."""
    body = json_body()
    svc = services().plans
    if "vehicle_id" in body:
        vehicle = svc.vehicle(str(body["vehicle_id"]))
        choice = _choice_from(body, vehicle)
        return jsonify(result_json(svc.evaluate(vehicle, choice)))
    request_ = parse_quote_request(body, svc.policy)
    return jsonify(quote_as_dict(quote(request_)))


@bp.post("/plans/search")
def search_plans() -> Any:
    """Every compliant plan for a vehicle within optional constraints, ranked."""
    body = json_body()
    svc = services().plans
    if "vehicle_id" not in body:
        raise PlanInputError([error("vehicle_id", "required")])
    vehicle = svc.vehicle(str(body["vehicle_id"]))
    errors: list[FieldError] = []

    def money(key: str) -> Decimal | None:
        if body.get(key) in (None, ""):
            return None
        try:
            value = to_decimal(body[key])
        except ValueError:
            errors.append(error(key, "not_a_number"))
            return None
        if value <= 0:
            errors.append(error(key, "not_positive"))
        elif value > 100_000_000:
            errors.append(error(key, "too_large", limit="100,000,000"))
        else:
            return value
        return None

    budget, max_down = money("budget"), money("max_down")
    terms = body.get("terms")
    if terms is not None and (not isinstance(terms, list) or not all(isinstance(t, int) for t in terms)):
        errors.append(error("terms", "not_an_integer"))
        terms = None
    sort = body.get("sort", "rent")
    if sort not in SORT_KEYS:
        errors.append(error("sort", "unknown_option", value=str(sort)[:20]))
    limit = body.get("limit", 50)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 5000:
        errors.append(error("limit", "out_of_range", min=1, max=5000))
        limit = 50
    if errors:
        raise PlanInputError(errors)
    result = svc.search(vehicle, Constraints(budget=budget, max_down=max_down,
                                             terms=tuple(terms) if terms else None), sort, limit)
    return jsonify({
        "vehicle_id": vehicle.id, "evaluated": result.evaluated, "matched": result.matched,
        "elapsed_ms": round(result.elapsed_ms, 3), "sort": sort,
        "policy_version": svc.policy.version, "product_version": svc.product.version,
        "plans": [summary_as_dict(s) for s in result.plans],
    })

