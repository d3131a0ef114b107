"""The review queue of the risk service, for risk officers: list with SLA timers, one screen per case
(application, KYC outcome and photos, bureau summary, the model's reasons; personal data masked until
asked for), claim, and decide — approve, decline or counter-offer — with a mandatory comment. Tier 2
cases need two different officers (the risk service enforces the four eyes and the officer's tier)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Blueprint
from flask import abort
from flask import flash
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from bff.applications.access import may
from bff.applications.kyc import mismatch_rows
from bff.applications.risk import REVIEW_STATUS
from bff.applications.risk import status_for
from bff.auth.session import requires
from bff.documents.services import KINDS
from bff.documents.services import default_due
from bff.documents.services import overdue
from bff.documents.services import paused
from bff.documents.services import shanghai_today
from bff.rendering import list_filters
from bff.rendering import page_or_block
from bff.reviews import services as reviews
from bff.services import services
from infra.applications import Scope
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.documents import SqlDocuments
from plans.errors import FieldError

bp = Blueprint("reviews", __name__)
RECENT = 10  # the officer's own latest decisions listed under the queue


def _unavailable() -> Any:
    message = _("The risk service cannot be reached just now; please try again shortly. No case is lost.")
    return render_template("error.html", status=503, message=message), 503


@bp.get("/reviews")
@requires("reviews.work")
def queue() -> Any:
    list_filters({})  # the queue has no filters: ?state=… is refused, not silently ignored
    client, svc = services().risk.client, services()
    try:
        # each state asked for on its own: the decided cases (the longest list) never crowd out the waiting ones
        waiting = client.reviews(state="open") + client.reviews(state="claimed")
        mine = client.reviews(officer_id=g.user.id, limit=str(RECENT))
    except (ServiceUnavailable, ServiceRefused):
        return _unavailable()
    now, dealers = datetime.now(UTC), reviews.DealerNames(svc.accounts)
    recent = [r | {"mine": reviews.my_decision(r["case"], g.user.id)}
              for r in reviews.rows(mine, svc.applications.repo, dealers, now)]
    rows = reviews.waiting_rows(waiting, svc.applications.repo, dealers, now, SqlDocuments(svc.db))
    return page_or_block("reviews/queue.html", "queue", waiting=[r for r in rows if not reviews.with_applicant(r)],
                         with_applicant=[r for r in rows if reviews.with_applicant(r)], recent=recent)


def _case(case_id: str) -> dict[str, Any]:
    try:
        return services().risk.client.review(case_id[:64])
    except ServiceRefused as exc:
        abort(404 if exc.status == 404 else 502)


def _render(case: dict[str, Any], errors: list[FieldError] | None = None, problem: str = "",
            status: int = 200, form: Mapping[str, str] | None = None,
            doc_errors: list[FieldError] | None = None) -> Any:
    svc = services()
    now = datetime.now(UTC)
    app = svc.applications.repo.get(str(case.get("application_id", "")), Scope())
    store = SqlDocuments(svc.db)
    asked = reviews.case_requests(store, case) if app else []
    face = svc.applications.repo.latest_check(app.id, "face") if app else None
    documents = [d for d in svc.applications.repo.documents(app.id) if not d.kind.startswith("frame")] if app else []
    a = case.get("assessment") or {}
    reasons = reviews.referral_reasons(case)
    response = make_response(render_template(
        "reviews/case.html", case=case, a=a, app=app, face=face, documents=documents,
        errors=errors or [], problem=problem, me=g.user, form=form or {},
        customer=reviews.customer_of(app, case), dealer=reviews.DealerNames(svc.accounts)(a.get("dealer_id")),
        amount=reviews.amount(a.get("financed_amount")), sla=reviews.sla_of(case, now, paused(asked, now)),
        asked=asked[::-1], asked_pages={r.id: store.pages(r.id) for r in asked if r.status != "open"},
        asked_overdue={r.id: overdue(r, now) for r in asked}, doc_errors=doc_errors or [],
        document_kinds=KINDS, default_due=default_due(shanghai_today(now)),
        paused=paused(asked, now), paused_text=reviews.duration(paused(asked, now)),
        reasons=reasons, income_question=any(r.get("code") in reviews.INCOME_REASONS for r in reasons),
        declared=reviews.declared(svc.applications.draft(app)) if app and app.draft_enc else [],
        rent=reviews.amount((app.plan.get("quote") or {}).get("monthly_payment")) if app else None,
        same_person=reviews.same_person(face.detail if face and face.state == "done" else None),
        face_threshold=svc.kyc.face_threshold, face_review_margin=svc.kyc.face_review_margin,
        # typed vs read on the ID card, with the card's crop of the field (pwa/templates/reviews/_ocr_mismatch.html)
        mismatch_rows=mismatch_rows(svc.applications.draft(app)) if app and app.draft_enc else [],
        may_unmask=may("pii.unmask")))
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
            return _render(_case(case_id), errors=errors, status=422, form=request.form)
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
                       (409 if exc.status == 409 else 403), form=request.form)
    except ServiceUnavailable:
        return _unavailable()
    application_id = str(result.get("application_id") or "")
    if result.get("state") == "decided":
        apply_final(result, g.user.id, g.user.email)
    app = services().applications.repo.get(application_id, Scope()) if application_id else None
    flash(reviews.confirmation(str(result.get("final_decision") or decision), app.status if app else "",
                               application_id[:8], needed_more=result.get("state") != "decided"), "ok")
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
    with svc.applications.repo.db.transaction():  # the decision, the contract job it causes, the requests closed
        moved = svc.applications.approved(svc.applications.repo.record_risk(
            application_id, assessment_id=str(case.get("assessment_id", "")), result=assessment,
            to=status_for(assessment, final),
            allowed_from=("referred",), actor_kind="staff", actor_id=actor_id, note=f"review:{final}"))
        if case.get("id"):  # nothing more to send once decided, whichever path brought the decision
            SqlDocuments(svc.applications.repo.db).close_case(str(case["id"])[:64], datetime.now(UTC))
    if moved is not None:
        svc.audit.append("risk.reviewed", "success", actor_id=actor_id, actor_label=actor_label,
                         dealer_id=moved.dealer_id, target=moved.id, ip=request.remote_addr or "",
                         user_agent=(request.user_agent.string or "")[:255], details={"decision": final})
