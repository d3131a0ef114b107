"""The review queue of the risk service, for risk officers: list with SLA timers, one screen per case
(application, KYC outcome and photos, bureau summary, the model's reasons; personal data masked until
asked for), claim, and decide — approve, decline or counter-offer — with a mandatory comment. Tier 2
cases need two different officers (the risk service enforces the four eyes and the officer's tier)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from bff.applications.risk import REVIEW_STATUS
from bff.applications.risk import status_for
from bff.auth.session import requires
from bff.rendering import page_or_block
from bff.services import services
from infra.applications import Scope
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from plans.errors import FieldError

bp = Blueprint("reviews", __name__)


def _unavailable() -> Any:
    message = _("The risk service cannot be reached just now; please try again shortly. No case is lost.")
    return render_template("error.html", status=503, message=message), 503


@bp.get("/reviews")
@requires("reviews.work")
def queue() -> Any:
    try:
        items = services().risk.client.reviews()
    except (ServiceUnavailable, ServiceRefused):
        return _unavailable()
    waiting = [c for c in items if c.get("state") != "decided"]
    decided = [c for c in items if c.get("state") == "decided"][:20]
    repo = services().applications.repo
    apps = {c["application_id"]: repo.get(c["application_id"], Scope()) for c in items if c.get("application_id")}
    return page_or_block("reviews/queue.html", "queue", waiting=waiting, decided=decided, apps=apps)


def _case(case_id: str) -> dict[str, Any]:
    try:
        return services().risk.client.review(case_id[:64])
    except ServiceRefused as exc:
        abort(404 if exc.status == 404 else 502)


def _render(case: dict[str, Any], errors: list[FieldError] | None = None, problem: str = "",
            status: int = 200) -> Any:
    svc = services()
    app = svc.applications.repo.get(str(case.get("application_id", "")), Scope())
    face = svc.applications.repo.latest_check(app.id, "face") if app else None
    documents = [d for d in svc.applications.repo.documents(app.id) if not d.kind.startswith("frame")] if app else []
    response = make_response(render_template(
        "reviews/case.html", case=case, a=case.get("assessment", {}), app=app, face=face, documents=documents,
        errors=errors or [], problem=problem, me=g.user))
    response.status_code = status
    return response


@bp.get("/reviews/<case_id>")
@requires("reviews.work")
def case(case_id: str) -> Any:
    try:
        return _render(_case(case_id))
    except ServiceUnavailable:
        return _unavailable()


def _refused(exc: ServiceRefused) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    if exc.status == 409:
        return str(_("Someone else has claimed this case, or you have already decided it."))
    if exc.status == 403:
        return str(_("Tier 2 cases need a tier 2 risk officer."))
    return str(body.get("detail") or body.get("title") or exc)


@bp.post("/reviews/<case_id>/claim")
@requires("reviews.work")
def claim(case_id: str) -> Any:
    try:
        services().risk.client.claim(case_id[:64], g.user.id, g.user.role)
    except ServiceRefused as exc:
        if exc.status == 404:
            abort(404)
        try:
            return _render(_case(case_id), problem=_refused(exc), status=409 if exc.status == 409 else 403)
        except ServiceUnavailable:
            return _unavailable()
    except ServiceUnavailable:
        return _unavailable()
    return redirect(url_for("reviews.case", case_id=case_id), 303)


@bp.post("/reviews/<case_id>/decision")
@requires("reviews.work")
def decide(case_id: str) -> Any:
    decision = request.form.get("decision", "")
    comment = request.form.get("comment", "").strip()[:1000]
    errors: list[FieldError] = []
    if decision not in REVIEW_STATUS:
        errors.append(FieldError("decision", "choice", "请选择决定", "Choose a decision"))
    if not comment:
        errors.append(FieldError("comment", "required", "请写明决定理由", "Write the reason for your decision"))
    offer: dict[str, Any] = {}
    if decision == "counter_offer":
        down, term = request.form.get("down_payment", "").strip(), request.form.get("term", "").strip()
        if down:
            offer["down_payment"] = down[:16]
        if term.isdigit():
            offer["term"] = int(term)
        if not offer:
            errors.append(FieldError("counter_offer", "required", "调整方案需填写首付或期限",
                                     "A counter-offer needs a down payment or a term"))
    try:
        if errors:
            return _render(_case(case_id), errors=errors, status=422)
        result = services().risk.client.decide(case_id[:64], g.user.id, g.user.role, decision, comment, offer or None)
    except ServiceRefused as exc:
        if exc.status == 404:
            abort(404)
        try:
            current = _case(case_id)
        except ServiceUnavailable:
            return _unavailable()
        if current.get("state") == "decided":  # decided already (e.g. our first try's answer was lost)
            apply_final(current, g.user.id, g.user.email)
        return _render(current, problem=_refused(exc), status=422 if exc.status == 422 else
                       (409 if exc.status == 409 else 403))
    except ServiceUnavailable:
        return _unavailable()
    if result.get("state") == "decided":
        apply_final(result, g.user.id, g.user.email)
    return redirect(url_for("reviews.queue"), 303)


def apply_final(case: dict[str, Any], actor_id: str, actor_label: str) -> None:
    """A final decision moves the application (referred → approved / declined / counter_offer); safe to
    repeat (only a ``referred`` application moves). Also used by the BFF's reconciliation of referrals."""
    svc = services()
    assessment = case.get("assessment") or {}
    application_id = str(case.get("application_id") or assessment.get("application_id") or "")
    final = str(case.get("final_decision") or "")
    if not application_id or final not in REVIEW_STATUS:
        return
    moved = svc.applications.approved(svc.applications.repo.record_risk(
        application_id, assessment_id=str(case.get("assessment_id", "")), result=assessment,
        to=status_for(assessment, final),
        allowed_from=("referred",), actor_kind="staff", actor_id=actor_id, note=f"review:{final}"))
    if moved is not None:
        svc.audit.append("risk.reviewed", "success", actor_id=actor_id, actor_label=actor_label,
                         dealer_id=moved.dealer_id, target=moved.id, ip=request.remote_addr or "",
                         user_agent=(request.user_agent.string or "")[:255], details={"decision": final})
