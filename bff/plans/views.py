"""Views of the plan builder. One handler, two renderings: the page, or only its block for htmx."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from flask import Blueprint
from flask import Response
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from bff.caching import public_asset
from bff.extensions import htmx
from bff.plans.forms import BuilderForm
from bff.plans.forms import decode
from bff.plans.forms import parse_form
from bff.plans.forms import with_compare
from bff.rendering import page_or_block
from bff.services import services
from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.generator import Constraints
from plans.inputs import parse_budget
from plans.product import Vehicle

bp = Blueprint("plans", __name__)


@bp.get("/vehicles")
def vehicles() -> Response:
    query = request.args.get("q", "").strip()[:64]
    found = services().plans.vehicles(query)
    return page_or_block("plans/vehicles.html", "vehicle_list", vehicles=found, q=query)


@bp.get("/vehicles/<vehicle_id>/art.svg")
@public_asset
def vehicle_art(vehicle_id: str) -> Response:
    vehicle = services().plans.vehicle(vehicle_id)
    response = make_response(render_template("vehicles/art.svg", body=vehicle.body, colour=vehicle.colour,
                                             label=""))
    response.mimetype = "image/svg+xml"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def builder_url(vehicle_id: str, form: BuilderForm, compare: list[str]) -> str:
    """The canonical URL of the builder with ``form``'s choices (what the address bar shows)."""
    params = [pair for pair in form.query_pairs() if pair[0] != "submitted"]
    params += [("cmp", c) for c in compare]
    if form.budget:
        params.append(("budget", form.budget))
    return url_for("plans.builder", vehicle_id=vehicle_id) + "?" + urlencode(params)


@bp.get("/plans/<vehicle_id>")
def builder(vehicle_id: str) -> Response:
    """The plan builder. ``add``/``remove`` edit the comparison list and redirect to the canonical URL."""
    g.branches_on_htmx = True  # the redirect below is for plain requests only
    svc = services().plans
    vehicle = svc.vehicle(vehicle_id)
    form = parse_form(request.args, vehicle, svc.product, svc.policy)
    if "apply" in request.args:
        return _apply(vehicle, form, request.args["apply"][:120])
    if "add" in request.args or "remove" in request.args:
        compare = form.compare
        if "add" in request.args and not form.errors:
            compare = with_compare(compare, form.code())
        if "remove" in request.args:
            compare = [c for c in compare if c != request.args["remove"]]
        target = builder_url(vehicle_id, form, compare)
        form.compare = compare
        if not htmx:
            return make_response(redirect(target, 303))
        response = _render_builder(vehicle, form)
        response.headers["HX-Push-Url"] = target
        return response
    return _render_builder(vehicle, form)


def _apply(vehicle: Vehicle, form: BuilderForm, shown: str) -> Response:
    """Apply for the plan whose figures were on screen (``shown``), if it is the plan chosen on screen.

    The apply button submits the builder's form, so its request carries both what the person chose (the form's
    controls) and the plan of the figures they saw (the button's value). They differ when the figures are
    stale (the choice was made offline, or its answer was lost): that plan is refused, and the figures of the
    choice are shown, to be checked before applying again."""
    if not form.errors and decode(shown) == form.choice():
        target = url_for("applications.new", vehicle=vehicle.id, plan=form.code())
        if htmx:
            response = make_response("", 204)
            response.headers["HX-Redirect"] = target
            return response
        return make_response(redirect(target, 303))
    if not form.errors:
        form.errors.append(FieldError("plan", "plan_changed",
                                      "您看到的金额不是当前所选方案的。下方已换成所选方案的金额，请核对后再申请。",
                                      "The figures you saw were not for the plan you chose. Below are the figures "
                                      "for your choice: please check them, then apply."))
    response = _render_builder(vehicle, form)
    response.headers["HX-Push-Url"] = builder_url(vehicle.id, form, form.compare)
    return response


def _render_builder(vehicle: Vehicle, form: BuilderForm) -> Response:
    svc = services().plans
    try:
        result = svc.evaluate(vehicle, form.choice())
    except PlanInputError as exc:  # e.g. a residual above what is financed: say so beside the form
        form.errors.extend(exc.errors)
        result = None
    compared = []
    for code in form.compare:
        choice = decode(code)
        if choice is None:
            continue
        try:
            compared.append((code, svc.evaluate(vehicle, choice)))
        except PlanInputError:
            continue
    if result is not None and session.get("customer_invitation"):
        # An invited customer: their salesperson's screen shows what they look at now (polled).
        services().invitations_repo.record_plan(str(session["customer_invitation"]), f"{vehicle.id}:{form.code()}")
    response = page_or_block(
        "plans/builder.html", "results", vehicle=vehicle, form=form, result=result, compared=compared,
        product=svc.product, policy=svc.policy, canonical=builder_url(vehicle.id, form, form.compare),
    )
    if form.errors:
        response.status_code = 422
    return response


@bp.get("/plans/<vehicle_id>/budget")
def budget(vehicle_id: str) -> Response:
    """Plans for a monthly budget: the compliant plans within it, and the least down payment per term."""
    svc = services().plans
    vehicle = svc.vehicle(vehicle_id)
    form = parse_form(request.args, vehicle, svc.product, svc.policy)
    amount: Decimal | None = None
    try:
        amount = parse_budget(form.budget)
    except PlanInputError as exc:
        form.errors.extend(exc.errors)
    search = reverse = None
    if amount is not None:
        search = svc.search(vehicle, Constraints(budget=amount), sort="total", limit=8)
        reverse = svc.reverse(vehicle, form.choice(), amount)
    response = page_or_block(
        "plans/budget.html", "budget_results", vehicle=vehicle, form=form, search=search, reverse=reverse,
        product=svc.product, amount=amount,
        choice_url=lambda c: builder_url(vehicle.id, BuilderForm.from_choice(c, svc.product), []),
    )
    if form.errors:
        response.status_code = 422
    return response
