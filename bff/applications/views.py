"""Views of the credit application: pipeline, start from a plan, consent, steps, ID card, face, review."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint
from flask import Response
from flask import abort
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import get_locale
from sqlalchemy.exc import SQLAlchemyError

from bff import resend
from bff.applications import forms
from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import log_document_view
from bff.applications.access import may
from bff.applications.access import may_edit
from bff.applications.access import per_application
from bff.applications.access import requires_actor
from bff.applications.access import staff_label
from bff.applications.contracts import EXPLAIN_METHODS
from bff.applications.contracts import EXPLAINED_TERMS
from bff.applications.contracts import same_press
from bff.applications.history import history
from bff.applications.kyc import Rejected
from bff.applications.kyc import mismatch_rows
from bff.applications.kyc import ocr_unconfirmed
from bff.applications.kyc import to_confirm
from bff.applications.reading import contract_reading
from bff.applications.reading import original_text
from bff.applications.services import NotAllowed
from bff.applications.services import consent_text
from bff.applications.states import CONSENT_PURPOSES
from bff.applications.states import EDITABLE
from bff.applications.states import FACE_ALLOWED
from bff.applications.states import HAS_EVIDENCE
from bff.applications.states import MAX_FACE_ATTEMPTS
from bff.applications.states import STATUSES
from bff.applications.states import VEHICLE_EDITABLE
from bff.applications.states import vehicle_editable
from bff.extensions import htmx
from bff.extensions import limiter
from bff.plans.forms import decode
from bff.reloads import keep_once
from bff.reloads import take_once
from bff.rendering import in_locale as _msg
from bff.rendering import list_filters
from bff.rendering import page_or_block
from bff.services import services
from httpkit.queries import single
from infra.applications import Application
from infra.applications import Check
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.db.models import utcnow
from infra.storage import StorageError
from infra.storage import StorageUnavailable
from kyc import ocr
from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import UnknownVehicle
from plans.product import Vehicle

log = logging.getLogger(__name__)
bp = Blueprint("applications", __name__)
UPLOAD_LIMIT = 24 * 1024 * 1024  # a multipart post of several photos; each photo is checked on its own


def upload_limits() -> None:
    """App-level, registered before CSRF protection (which reads the form): photo posts may be larger."""
    if request.method == "POST" and request.endpoint in ("applications.id_card_post", "applications.face_post",
                                                          "documents.upload", "end_of_term.inspect"):
        request.max_content_length = UPLOAD_LIMIT


def _locale() -> str:
    return str(get_locale() or "zh_CN")


def _go(target: str) -> Response:
    """Continue to ``target``: a redirect for plain posts, ``HX-Redirect`` for htmx ones."""
    if htmx:
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return make_response(redirect(target, 303))


def _conflict(exc: NotAllowed, app: Application | None = None) -> Any:
    return render_template("error.html", status=409, message=exc.text_zh if _locale().startswith("zh")
                           else exc.text_en, back=url_for("applications.detail", application_id=app.id)
                           if app else None), 409


def _vehicle(vehicle_id: str) -> Vehicle:
    """The catalogue's vehicle, or a 422 saying a vehicle must be chosen (a form field, not a missing page)."""
    try:
        return services().plans.vehicle(vehicle_id[:64])
    except UnknownVehicle:
        raise PlanInputError([FieldError("vehicle", "vehicle", "请先选择车型", "Please choose a vehicle first")]) \
            from None


# -- pipeline ------------------------------------------------------------------------------------------------
@bp.get("/applications")
@requires_actor("applications.view")
def index() -> Any:
    if actor().kind == "customer":
        list_filters({})
        apps = services().applications.pipeline(actor(), limit=20)
        return render_template("applications/mine.html", apps=apps)
    found = list_filters({"status": STATUSES, "q": None}, repeatable=("status",))
    statuses = found.get("status", [])
    query = (single(found, "q") or "").strip()[:40]
    svc = services().applications
    apps = svc.pipeline(actor(), statuses=statuses, query=query)
    counts = svc.repo.counts(actor().scope)
    return page_or_block("applications/list.html", "pipeline", apps=apps, statuses=statuses, q=query,
                         counts=counts, all_statuses=STATUSES)


@bp.get("/applications/new")
@requires_actor("applications.edit")
def new() -> Any:
    """Confirm the chosen plan before starting (the builder links here with ``vehicle`` and ``plan``)."""
    svc = services()
    vehicle = _vehicle(request.args.get("vehicle", ""))
    code = request.args.get("plan", "")[:120]
    choice = decode(code)
    if choice is None:
        raise PlanInputError([FieldError("plan", "plan_code", "方案无效，请重新选择方案",
                                         "That plan is not valid: please choose a plan again")])
    result = svc.plans.evaluate(vehicle, choice)
    return render_template("applications/new.html", vehicle=vehicle, code=code, result=result, q=result.quote)


@bp.post("/applications")
@requires_actor("applications.edit")
def create() -> Any:
    key = (request.headers.get("Idempotency-Key", "") or request.form.get("idempotency_key", ""))[:64]
    svc = services().applications
    scope = f"start:{actor().id}"
    if key and not svc.repo.remember(scope, key, 0):  # taken: a double tap, a retry, or an offline replay
        seen = svc.repo.recall(scope, key)
        if seen is not None and seen[1]:
            return _go(seen[1])
        return _conflict(NotAllowed("in_progress", "申请正在创建，请稍候刷新", "The application is being "
                                    "created: refresh in a moment"))
    try:
        vehicle = _vehicle(request.form.get("vehicle", ""))
        app = svc.start(actor(), vehicle.id, request.form.get("plan", "")[:120])
    except NotAllowed as exc:
        svc.repo.forget(scope, key)
        return _conflict(exc)
    except Exception:  # refused input (422) or a failure: the same key may be tried again
        svc.repo.forget(scope, key)
        raise
    target = url_for("applications.consent", application_id=app.id)
    if key:
        svc.repo.settle(scope, key, 303, target)
    return _go(target)


# -- one application ---------------------------------------------------------------------------------------
def _context(app: Application) -> dict[str, Any]:
    svc = services()
    draft = svc.applications.draft(app)
    staff = actor().kind == "staff"
    events = svc.applications.repo.events(app.id) if staff or app.status == "kyc_review" else []
    return {
        "app": app, "draft": draft, "consents": svc.applications.consents(app),
        "steps": svc.applications.completeness(draft), "id_card_done": svc.kyc.id_card_done(app),
        "latest_id": svc.applications.repo.latest_check(app.id, "id_card"),
        "latest_face": svc.applications.repo.latest_check(app.id, "face"),
        "mismatches": forms.ocr_mismatches(draft), "editable": app.status in EDITABLE and may_edit(),
        "ocr_fields": to_confirm(draft), "mismatch_rows": mismatch_rows(draft),
        # the car's facts the dealer still owes (issue 17 §5): shown to staff until the contract is generated
        "may_vehicle": staff and vehicle_editable(app.status, app.contract, app.contract_attempts) and may_edit(),
        "vehicle_errors": forms.validate("vehicle", draft) if staff and app.status in VEHICLE_EDITABLE else [],
        "may_review": may("kyc.review") and app.status == "kyc_review", "may_unmask": may("pii.unmask"),
        "events": history(events, lambda uid: getattr(svc.accounts.get(uid), "name", None)) if staff else [],
        # an identity waiting for the original ID card at the dealer's counter: the page says where and what
        "counter_chosen": app.status == "kyc_review" and any(e.note == "counter_verification" for e in events),
        "dealer": svc.accounts.dealer(app.dealer_id) if app.status in (*FACE_ALLOWED, "kyc_review") else None,
        "face_allowed": app.status in FACE_ALLOWED, "plan": app.plan, "has_evidence": app.status in HAS_EVIDENCE,
        "face_attempt": app.face_attempts + 1, "max_face_attempts": MAX_FACE_ATTEMPTS,
        "offer": _offer_view(app), "may_answer": may_edit(),
        # the frozen quote's figures as Decimals, shown with the same filters as the builder's disclosure
        "rent": Decimal(app.plan["quote"]["monthly_payment"]), "apr": Decimal(app.plan["quote"]["apr"]),
        # reviewers see the images (each one opened is logged); nobody else gets even the list
        "documents": svc.applications.repo.documents(app.id) if may("pii.unmask") else [],
    }


def _offer_view(app: Application) -> dict[str, Any] | None:
    """The new terms beside the current ones (Decimals for the money/percent filters), when an answer waits."""
    pending = services().applications.offer(app)
    if pending is None:
        return None
    offer, result = pending
    old, new = app.plan["quote"], result.quote
    return {
        "source": offer.source, "allowed": result.allowed, "reasons": result.reasons,
        "deposit_required": offer.deposit_required and bool(app.plan["choice"]["deposit_free"]),
        "rows": [
            ("down_payment", Decimal(old["down_payment"]), new.request.down_payment, "money"),
            ("term", int(old["term"]), new.request.term, "months"),
            ("monthly_payment", Decimal(old["monthly_payment"]), new.monthly_payment, "money"),
            ("deposit", Decimal(old["deposit"]), new.deposit, "money"),
            ("due_at_signing", Decimal(old["due_at_signing"]), new.due_at_signing, "money"),
            ("apr", Decimal(old["apr"]), new.apr, "percent"),
        ],
    }


@bp.get("/applications/<application_id>")
@requires_actor("applications.view")
def detail(application_id: str) -> Any:
    app = application_or_404(application_id)
    return page_or_block("applications/detail.html", "status", **_context(app))


@bp.get("/applications/<application_id>/consent")
@requires_actor("applications.view")
def consent(application_id: str) -> Any:
    return _consent(application_id)


@bp.post("/applications/<application_id>/consent")
@requires_actor("applications.edit")
def consent_post(application_id: str) -> Any:
    return _consent(application_id)


def _consent(application_id: str) -> Any:
    app = application_or_404(application_id)
    texts = {p: consent_text(p, _locale()) for p in CONSENT_PURPOSES}
    errors: list[FieldError] = []
    if request.method == "POST":
        chosen = [p for p in CONSENT_PURPOSES if request.form.get(p) == "yes"]
        if "sensitive_pi" not in chosen:
            errors.append(FieldError("sensitive_pi", "consent_required", "不同意个人信息处理，我们无法在线受理申请",
                                     "Without this consent we cannot process the application online"))
        if "credit_reporting" not in chosen:
            errors.append(FieldError("credit_reporting", "consent_required",
                                     "未签署征信授权，我们无法评估信用、在线受理申请",
                                     "Without this authorisation we cannot assess your credit and process the "
                                     "application online"))
        if not errors:
            services().applications.give_consent(actor(), app, chosen)
            return _go(url_for("applications.id_card", application_id=app.id))
    chosen = {p for p in CONSENT_PURPOSES if request.form.get(p) == "yes"}  # what was ticked comes back ticked
    response = make_response(render_template("applications/consent.html", app=app, texts=texts, errors=errors,
                                             consents=services().applications.consents(app), chosen=chosen))
    if errors:
        response.status_code = 422
    return response


@bp.get("/applications/<application_id>/steps/<step>")
@requires_actor("applications.view")
def step(application_id: str, step: str) -> Any:
    return _step(application_id, step)


@bp.post("/applications/<application_id>/steps/<step>")
@requires_actor("applications.edit")
def step_post(application_id: str, step: str) -> Any:
    return _step(application_id, step)


def _step(application_id: str, step: str) -> Any:
    dealer_step = step in forms.DEALER_STEPS
    if step not in forms.STEPS or (dealer_step and actor().kind != "staff"):
        abort(404)  # the car's facts are the dealer's: the customer's steps skip them (issue 17 §5)
    app = application_or_404(application_id)
    svc = services().applications
    if not svc.consents(app).sensitive_pi:
        return redirect(url_for("applications.consent", application_id=app.id))
    errors: list[FieldError] = []
    status = 200
    if request.method == "POST":
        key = request.headers.get("Idempotency-Key", "")
        scope = f"step:{app.id}:{step}"
        if key and svc.repo.recall(scope, key) is not None:
            return _go(url_for("applications.detail", application_id=app.id))  # an offline replay: done already
        before = svc.draft(app) if step == "customer" else {}
        try:
            # the car's facts a contract waits for, and its request again, in one unit of work
            with svc.repo.db.transaction():
                app, errors = svc.save_step(actor(), app, step, request.form)
                if dealer_step and not errors and app.status == "contract_pending":
                    services().contracts.request(app.id)
        except NotAllowed as exc:
            if not dealer_step:
                return _conflict(exc, app)
            # the car's facts are the contract's now, or the car another application's: the form as typed, with why
            # (nothing typed is lost); a VIN in use is the one field to correct
            in_use = [FieldError("vin", exc.code, "此车架号已用于另一份在办的申请或租赁",
                                 "This VIN is on another application or lease in progress")] \
                if exc.code == "vin_in_use" else []
            return _step_page(application_or_404(application_id), step, in_use, 409,
                              typed=forms.clean(request.form, step), refused=exc)
        if key:
            svc.repo.remember(scope, key, 422 if errors else 303)
        if not errors and step == "customer" and differs_anew(before, svc.draft(app)):
            # saved; the step again, once, with the card's reading beside what now differs from it (not blocking:
            # the same answer saved again goes on; pwa/templates/applications/step.html)
            return _step_page(app, step, [], 200, card_hint=True)
        if not errors:
            return _go(_after_step(app, step))
        status = 422
    elif request.args.get("check") == "1":
        errors = forms.validate(step, svc.draft(app))
    return _step_page(app, step, errors, status)


def _step_page(app: Application, step: str, errors: list[FieldError], status: int,
               typed: dict[str, str] | None = None, refused: NotAllowed | None = None, card_hint: bool = False) -> Any:
    """A step's form: the draft's answers (``typed``: a refused post's, shown again), its errors, for the dealer's
    step why the car's facts cannot be changed now (``refused``, or the application's state), and ``card_hint``:
    saved, but the name or ID number now differs from the card (:func:`differs_anew`), said once above the form."""
    context = _context(app)
    if step in forms.DEALER_STEPS:
        correctable = typed is None or (refused is not None and refused.code == "vin_in_use")  # another VIN, then
        context["editable"] = correctable and vehicle_editable(app.status, app.contract, app.contract_attempts) \
            and may_edit()
        if not context["editable"]:
            refused = refused or services().applications.vehicle_refusal(app)
    # full ID / mobile numbers only to whoever is filling the form in; everyone else sees them masked
    masked = {"id_number": app.id_masked, "mobile": app.mobile_masked}
    values = {f.name: context["draft"].get(f.name, "") if context["editable"] or not f.sensitive
              else masked[f.name] for f in forms.STEPS[step]}
    response = page_or_block("applications/step.html", "step_form", step=step, errors=errors,
                             fields=forms.STEPS[step], values={**values, **(typed or {})}, options=_options(),
                             refused=(_msg(refused.text_zh, refused.text_en) if refused else None), card_hint=card_hint,
                             **context)
    response.status_code = status
    if typed is not None:
        response.headers["X-Form-Refused"] = "1"  # htmx shows it in place (pwa/static/js/app.js)
    return response


#: typed unlike the card's reading, these send even a passing face check to a person (services.face_outcome)
CARD_IDENTITY = ("name", "id_number")


def differs_anew(before: dict[str, str], after: dict[str, str]) -> bool:
    """Whether a save changed the typed name or ID number to one that differs from what was read on the ID card
    (the comparison staff see, forms.ocr_mismatches): the person is told beside the field before going on."""
    differs = forms.ocr_mismatches(after)
    return any(name in differs and before.get(name) != after.get(name) for name in CARD_IDENTITY)


def _after_step(app: Application, step: str) -> str:
    """Where a saved step leads: the next of the applicant's steps (then the dealer's, for staff, while a draft),
    else the application's page."""
    order = [*forms.CUSTOMER_STEPS, *(forms.DEALER_STEPS if actor().kind == "staff" else ())]
    following = order[order.index(step) + 1] if step in order[:-1] and app.status in EDITABLE else None
    if following:
        return url_for("applications.step", application_id=app.id, step=following)
    return url_for("applications.detail", application_id=app.id)


def _options() -> dict[str, tuple[str, ...]]:
    return {"employment": forms.EMPLOYMENT, "housing": forms.HOUSING, "condition": forms.CONDITION}


@bp.post("/applications/<application_id>/submit")
@requires_actor("applications.edit")
def submit(application_id: str) -> Any:
    app = application_or_404(application_id)
    svc = services()
    if app.status == "draft" and ocr_unconfirmed(svc.applications.draft(app)):  # the reading may be wrong
        return _photo_page("applications/id_card.html", "id_card_block", app, NotAllowed(
            "ocr_unconfirmed", "请先核对身份证信息", "Please check the details read from the ID card first"),
            None, "latest_id")
    try:
        svc.applications.submit(actor(), app, id_card_done=svc.kyc.id_card_done(app))
    except PlanInputError as exc:
        context = _context(app)
        response = make_response(render_template("applications/detail.html", submit_errors=exc.errors, **context))
        response.status_code = 422
        return response
    except NotAllowed as exc:
        return _conflict(exc, app)
    consents = svc.applications.consents(app)
    target = "applications.face" if consents.face else "applications.detail"
    return _go(url_for(target, application_id=app.id))


# -- ID card -------------------------------------------------------------------------------------------------
_per_application = per_application("kyc")


@bp.get("/applications/<application_id>/id-card")
@requires_actor("applications.view")
def id_card(application_id: str) -> Any:
    return _id_card(application_id)


@bp.post("/applications/<application_id>/id-card")
@requires_actor("applications.edit")
@limiter.limit(lambda: services().kyc_rate, key_func=_per_application)
def id_card_post(application_id: str) -> Any:
    return _id_card(application_id)


def _id_card(application_id: str) -> Any:
    app = application_or_404(application_id)
    svc = services()
    if not svc.applications.consents(app).sensitive_pi:
        return redirect(url_for("applications.consent", application_id=app.id))
    error: Rejected | NotAllowed | None = None
    check = None
    if request.method == "POST":
        front, back = request.files.get("front"), request.files.get("back")
        if front is None or back is None or not front.filename or not back.filename:
            missing = "id_front" if front is None or not front.filename else "id_back"
            error = Rejected(missing, "missing", "请拍摄或选择身份证正面和背面两张照片",
                             "Take or choose two photos: the front and the back")
        else:
            check, error = _upload(lambda: svc.kyc.upload_id_card(actor(), app, front.read(), back.read()))
    if error is not None and htmx and not htmx.boosted:
        # the photos chosen stay in the form, with their previews: only the error and the refused side's verdict are
        # swapped, out of band (walk-through finding 10: both had to be chosen again after one was refused)
        g.branches_on_htmx = True
        response = make_response(render_template("applications/id_card_refused.html", error=error))
        response.status_code = 503 if error.code == "storage" else 422
        response.headers["HX-Reswap"] = "none"
        return response
    return _photo_page("applications/id_card.html", "id_card_block", app, error, check, "latest_id")


@bp.post("/applications/<application_id>/id-card/confirm")
@requires_actor("applications.edit")
def id_card_confirm(application_id: str) -> Any:
    """The person confirms or corrects what OCR read on the card (lowest confidence first); on an error the page
    comes back with what they typed (422), else on to the rest of their details."""
    app = application_or_404(application_id)
    svc = services()
    try:
        app, errors = svc.kyc.confirm_card(app, request.form)
    except NotAllowed as exc:
        return _conflict(exc, app)
    if not errors:
        return _go(url_for("applications.step", application_id=app.id, step="customer"))
    response = _photo_page("applications/id_card.html", "id_card_block", app, None, None, "latest_id",
                           confirm_errors=errors)
    response.status_code = 422
    return response


def _upload(work: Callable[[], Check]) -> tuple[Check | None, Rejected | NotAllowed | None]:
    """Run a photo upload: its check, or what to tell the person (unusable photo, wrong state, S3 or the
    database failing: the upload cleaned up after itself, bff/applications/kyc.py, so they may simply retry)."""
    try:
        return work(), None
    except (Rejected, NotAllowed) as exc:
        return None, exc
    except (StorageError, SQLAlchemyError) as exc:
        log.warning("kyc upload of %s failed: %s", request.view_args, type(exc).__name__)
        return None, NotAllowed("storage", "照片暂时无法保存，您填写的内容都已保存，请稍后重试",
                                "The photos could not be stored just now. Everything you typed is saved; "
                                "please try again in a minute")


def _photo_page(template: str, block: str, app: Application, error: Rejected | NotAllowed | None,
                check: Check | None, latest: str, **extra: Any) -> Any:
    """The ID-card or face page (or its block): 202 with the new check's progress, 422 for an unusable photo,
    503 when storage is down (nothing typed is lost)."""
    context = _context(app)
    if check is not None:
        context[latest] = check
    response = page_or_block(template, block, error=error, **extra, **context)
    if error is not None:
        response.status_code = 503 if error.code == "storage" else 422
    elif check is not None:
        response.status_code = 202
    return response


@bp.app_template_global()
def card_read(check: Any) -> bool:
    """The ID card's check read the card: what to check and confirm comes first on the step
    (pwa/templates/applications/id_card.html), the upload form under it, closed."""
    return check is not None and check.kind == "id_card" and check.state == "done" and check.outcome == "ok"


@bp.get("/applications/<application_id>/checks/<check_id>")
@requires_actor("applications.view")
def check_status(application_id: str, check_id: str) -> Any:
    app = application_or_404(application_id)
    check = services().kyc.status(app, check_id)
    if check is None:
        abort(404)
    context = _context(app)
    if htmx and card_read(check):
        # the card read: the whole step again, what to check first and the upload form under it, closed
        # (pwa/templates/applications/id_card.html), in place of the step, not of the polled check alone
        response = page_or_block("applications/id_card.html", "id_card_block", error=None,
                                 **{**context, "latest_id": check})
        response.headers["HX-Retarget"] = "#id-card"
        response.headers["HX-Reswap"] = "outerHTML show:#id-card:top"  # the upload button was far below it
        return response
    return render_template("applications/check.html", check=check, **context)


# -- face ----------------------------------------------------------------------------------------------------
@bp.get("/applications/<application_id>/face")
@requires_actor("applications.view")
def face(application_id: str) -> Any:
    return _face(application_id)


@bp.post("/applications/<application_id>/face")
@requires_actor("applications.edit")
@limiter.limit(lambda: services().kyc_rate, key_func=_per_application)
def face_post(application_id: str) -> Any:
    return _face(application_id)


def _face(application_id: str) -> Any:
    app = application_or_404(application_id)
    svc = services()
    challenges: dict[str, list[str]] = dict(session.get("liveness", {}))
    error: Rejected | NotAllowed | None = None
    check = None
    if request.method == "POST":
        challenge = challenges.get(app.id, [])  # issued by the face page (KycService refuses anything less)
        selfie = request.files.get("selfie")
        frames = [(name.split(":", 1)[1], f.read()) for name, f in request.files.items(multi=True)
                  if name.startswith("frame:") and name.split(":", 1)[1] in (*challenge, "neutral")]
        if selfie is None or not selfie.filename:
            error = Rejected("selfie", "missing", "请拍一张自拍照", "Please take a selfie")
        else:
            check, error = _upload(lambda: svc.kyc.upload_face(actor(), app, selfie.read(), frames, challenge))
    if check is not None or app.id not in challenges:  # a new attempt gets a new random order
        challenges[app.id] = list(svc.kyc.new_challenge())
        session["liveness"] = dict(list(challenges.items())[-5:])
    return _photo_page("applications/face.html", "face_block", app, error, check, "latest_face",
                       challenge=challenges[app.id])


@bp.post("/applications/<application_id>/offer")
@requires_actor("applications.edit")
def answer_offer(application_id: str) -> Any:
    """The customer's answer (or staff's, with the customer at the desk) to new terms: accept or decline."""
    app = application_or_404(application_id)
    answer = request.form.get("answer", "")
    if answer not in ("accept", "decline"):
        context = _context(app)
        return render_template("applications/detail.html", offer_error=FieldError(
            "answer", "choice", "请选择接受或拒绝调整方案", "Choose to accept or decline the new terms"),
            **context), 422
    try:
        services().applications.answer_offer(actor(), app, accept=answer == "accept")
    except NotAllowed as exc:
        return _conflict(exc, app)
    except PlanInputError as exc:
        return render_template("applications/detail.html", offer_error=exc.errors[0], **_context(app)), 422
    return _go(url_for("applications.detail", application_id=app.id))


@bp.get("/applications/<application_id>/counter")
@requires_actor("applications.edit")
def counter_confirm(application_id: str) -> Any:
    """What counter verification means (where to bring the card, what staff do), before choosing it."""
    app = application_or_404(application_id)
    if app.status not in FACE_ALLOWED:
        return _conflict(NotAllowed("wrong_state", "当前状态无法选择柜台核验",
                                    "Counter verification is not possible now"), app)
    return render_template("applications/counter.html", **_context(app))


@bp.post("/applications/<application_id>/counter")
@requires_actor("applications.edit")
def counter(application_id: str) -> Any:
    app = application_or_404(application_id)
    try:
        services().applications.choose_counter(actor(), app)
    except NotAllowed as exc:
        return _conflict(exc, app)
    return _go(url_for("applications.detail", application_id=app.id))


# -- staff: review, unmask -----------------------------------------------------------------------------------
@bp.post("/applications/<application_id>/review")
@requires_actor("kyc.review")
def review(application_id: str) -> Any:
    app = application_or_404(application_id)
    try:
        services().applications.review(actor(), app, request.form.get("decision", ""),
                                       request.form.get("note", ""))
    except NotAllowed as exc:
        return _conflict(exc, app)
    except PlanInputError as exc:
        response = make_response(render_template("applications/detail.html", review_errors=exc.errors,
                                                 **_context(app)))
        response.status_code = 422
        return response
    return _go(url_for("applications.detail", application_id=app.id))


@bp.post("/applications/<application_id>/unmask/<field>")
@requires_actor("pii.unmask")
def unmask(application_id: str, field: str) -> Any:
    if field not in ("id_number", "mobile"):
        abort(404)
    app = application_or_404(application_id)
    value = services().applications.unmask(actor(), app, field)
    return render_template("applications/unmasked.html", value=value, field=field)


@bp.get("/applications/<application_id>/documents/<document_id>")
@requires_actor("pii.unmask")
def document(application_id: str, document_id: str) -> Any:
    """A KYC image for a reviewer: a short-lived presigned URL (audit-logged), never a public object."""
    app = application_or_404(application_id)
    svc = services()
    doc = next((d for d in svc.applications.repo.documents(app.id) if d.id == document_id), None)
    if doc is None:
        abort(404)
    a = actor()
    svc.audit.append("pii.document_viewed", "success", actor_id=a.id, actor_label=a.label, dealer_id=app.dealer_id,
                     target=app.id, ip=a.ip, user_agent=a.user_agent, details={"kind": doc.kind})
    try:
        url = svc.store.presigned_get(doc.object_key, expires_in=120)
    except StorageError:
        abort(503)
    return redirect(url, 303)


@bp.get("/applications/<application_id>/card-field/<field>")
@requires_actor("pii.unmask")
def card_field(application_id: str, field: str) -> Any:
    """Where a field is printed on the ID card, cut from its photo, for a reviewer comparing what was typed with
    what was read: as the KYC images, for whoever may see them, each view audit-logged, never cached."""
    if field not in ocr.FORM_FIELDS:
        abort(404)
    app = application_or_404(application_id)
    svc = services()
    try:
        crop = svc.kyc.field_crop(app, field)
    except StorageUnavailable:
        abort(503)
    except StorageError as exc:  # its row is there, its object (or bucket) is not, or is corrupted: nothing to show
        log.warning("card field %s of %s: %s", field, app.id, type(exc).__name__)
        crop = None
    if crop is None:
        abort(404)
    a = actor()
    svc.audit.append("pii.document_viewed", "success", actor_id=a.id, actor_label=a.label, dealer_id=app.dealer_id,
                     target=app.id, ip=a.ip, user_agent=a.user_agent, details={"kind": f"card_field:{field}"})
    response = make_response(crop)
    response.headers["Content-Type"] = "image/jpeg"
    response.headers["Cache-Control"] = "no-store"  # (bff/caching.py too: PII is never kept by a cache)
    return response


@bp.app_context_processor
def _actor_kind() -> dict[str, object]:
    return {"actor_kind": getattr(g.get("actor"), "kind", None)}


@bp.app_template_global()
def audience_of_page() -> str:
    """Who reads the page (issue 17 §8): "customer" (their own application, in the second person, no internal
    terms) or "staff". A template global, so that imported macros (pwa/templates/applications/_macros.html)
    word each status for the reader without every page passing it along."""
    return "customer" if getattr(g.get("actor"), "kind", None) == "customer" else "staff"


@bp.app_template_global()
def face_consented(app: Any) -> bool:
    """Whether the applicant agreed to face recognition: the status words send one who did not to the counter, not
    to the face check (True when unknown). Read once per application and request."""
    application_id = getattr(app, "id", None)
    if not isinstance(application_id, str):
        return True
    found: dict[str, bool] = g.setdefault("face_consents", {})
    if application_id not in found:
        found[application_id] = bool(services().applications.consents(app).face)
    return found[application_id]


# the send form of every code screen, with its countdown (pwa/templates/includes/_resend.html)
bp.add_app_template_global(resend.for_application, "code_resend")
bp.add_app_template_global(resend.for_invitation, "invitation_resend")
# -- contract: review, re-confirm identity, sign -------------------------------------------------------------
SIGNATURE_PREFIX = "data:image/png;base64,"
MAX_SIGNATURE_BYTES = 2 * 1024 * 1024


def decoded_signature(value: str) -> bytes:
    """The PNG of a signature pad's data URL (pwa/static/js/signature.js), or b"" when it holds none; the caller
    checks it is a PNG of at most :data:`MAX_SIGNATURE_BYTES`."""
    if not value.startswith(SIGNATURE_PREFIX):
        return b""
    try:
        return base64.b64decode(value[len(SIGNATURE_PREFIX):], validate=True)
    except ValueError:
        return b""


def signature_problem(png: bytes) -> FieldError | None:
    """Why a drawn signature cannot be signed with (none drawn, not a PNG, too large), or None."""
    if not png.startswith(b"\x89PNG") or len(png) > MAX_SIGNATURE_BYTES:
        return FieldError("signature", "required", "请在签名框内手写签名", "Draw your signature in the box")
    return None


#: the text code typed does not confirm the signer (wrong, expired, used up)
CODE_PROBLEM = FieldError("code", "invalid", "验证码错误或已过期，请重新获取",
                          "The code is wrong or has expired: send a new one")


def remember_code(app: Application, purpose: str, code_id: str) -> None:
    """This device confirmed the signer with the code ``code_id``: it stands for a press again after the signing
    service was away or its answer was lost (the code itself is spent once verified), while it is fresh."""
    session[f"{purpose}_code:{app.id}"] = code_id


def keep_refused(app: Application, purpose: str, held: str, **given: Any) -> None:
    """A code refused (Post/Redirect/Get, bff/reloads.py :func:`keep_once`): what was given with it (the drawing, the
    ticks) waits for the page's next GET, once (:func:`refused_input`), so that the browser's refresh of the answer
    is a GET, not the code posted again, which counted another try. ``held``: what it was given for (the contract,
    the handover record's recording)."""
    keep_once(f"{purpose}_refused:{app.id}", held=held, **given)


def refused_input(app: Application, purpose: str) -> dict[str, Any] | None:
    """What :func:`keep_refused` kept for ``purpose``, taken once, if fresh; the caller checks that it was given for
    what the page shows (its ``held``)."""
    return take_once(f"{purpose}_refused:{app.id}")


def confirmed_code(app: Application, purpose: str) -> str | None:
    """The code this device confirmed for ``purpose`` (:func:`remember_code`), if it still stands for the signer
    (IDENTITY_FRESH, bff/applications/contracts.py)."""
    code_id = session.get(f"{purpose}_code:{app.id}")
    if isinstance(code_id, str) and services().contracts.verified(app, code_id, purpose) is not None:
        return code_id
    return None


def refused_problem(exc: ServiceRefused, field: str | None = None) -> FieldError:
    """The contract service's refusal of a signature as the signer reads it: its first field error's words."""
    detail = (exc.body or {}).get("errors", [{}])[0] if isinstance(exc.body, dict) else {}
    return FieldError(field or str(detail.get("field", "signature")), "refused",
                      str(detail.get("message_zh") or "签署未完成，请重试"),
                      str(detail.get("message") or "Signing did not complete: try again"))


#: the customer's page waiting for the key terms to be explained asks for its signing part every 3 s at first; past
#: ten minutes of waiting (a call or a visit to arrange: the explanation is not coming within seconds) every 30 s
SIGNING_POLL_SLOWER_AFTER = timedelta(minutes=10)


def signing_poll(app: Application) -> str:
    """How often the contract page waiting for the explanation asks for its signing part (hx-trigger's interval),
    from how long the contract has been ready to sign (its last move to contract_ready)."""
    if app.status != "contract_ready":
        return "3s"
    ready = [e.at for e in services().applications.repo.events(app.id) if e.to_status == "contract_ready"]
    waited = utcnow() - (ready[-1] if ready else app.updated_at)
    return "30s" if waited >= SIGNING_POLL_SLOWER_AFTER else "3s"


def _contract_page(app: Application, *, status: int = 200, error: FieldError | None = None,
                   signature: str = "", code_sent: bool = False, read: bool = False, telemetry: bool = False,
                   explain_error: FieldError | None = None, light: bool = False) -> Any:
    """The contract page; ``light``: the poll of its signing part only (pwa/templates/applications/contract.html
    #signing), which neither asks the contract service again nor reads its text."""
    contract = services().contracts.refresh(app) if app.status in ("contract_ready", "signed") and not light \
        else app.contract
    response = page_or_block("applications/contract.html", "contract_block", app=app, contract=contract,
                             explained=services().contracts.explained(app), explained_terms=EXPLAINED_TERMS,
                             explain_methods=EXPLAIN_METHODS, explain_error=explain_error,
                             may_explain=may("contracts.explain") and app.status == "contract_ready",
                             error=error, signature=signature, code_sent=code_sent, read=read, telemetry=telemetry,
                             telemetry_text=consent_text("vehicle_telemetry", _locale()),
                             may_sign=may_edit() and app.status == "contract_ready", plan=app.plan,
                             signing_poll=signing_poll(app),
                             # signed: what is due at signing is paid next, by whoever may act on the application
                             may_pay=may_edit() and app.status == "signed",
                             rent=Decimal(app.plan["quote"]["monthly_payment"]),
                             apr=Decimal(app.plan["quote"]["apr"]),
                             # while it is generated: where it really is and how long it usually takes (issue 17 §14)
                             progress=services().contracts.progress(app),
                             # the text to read on the phone, once the contract is there (issue 17 §2)
                             reading=contract_reading(app) if contract and contract.get("number") and not light
                             and app.status not in ("approved", "contract_pending") else None)
    response.status_code = status
    return response


@bp.get("/applications/<application_id>/contract")
@requires_actor("applications.view")
def contract(application_id: str) -> Any:
    app = application_or_404(application_id)
    # the customer's page waiting for the key terms to be explained asks for its signing part every few seconds
    light = bool(htmx) and request.args.get("part") == "signing"
    kept = None if light else refused_input(app, "contract")  # the answer to a refused code (sign): once
    if kept is None:
        return _contract_page(app, code_sent=request.args.get("sent") == "1", light=light)
    # the drawing and the ticks come back for the contract they were given for, never onto another one
    given = kept.get("held") == (app.contract_id or "")
    return _contract_page(app, error=CODE_PROBLEM, signature=str(kept.get("signature") or "") if given else "",
                          code_sent=True, read=given and kept.get("read") is True,
                          telemetry=given and kept.get("telemetry") is True)


def contract_bytes(app: Application, fetch: Callable[[str], bytes], mimetype: str) -> Any:
    if not app.contract_id:
        # the application exists (and is the caller's) but its contract does not yet: a state, not a missing page
        return render_template("error.html", status=409, message=_msg(
            "合同尚未生成，请稍候", "The contract has not been generated yet: please wait"),
            back=url_for("applications.contract", application_id=app.id)), 409
    try:
        body = fetch(app.contract_id)
    except ServiceRefused as exc:
        abort(404 if exc.status == 404 else 502)
    except ServiceUnavailable:
        return render_template("error.html", status=503, message=_msg(
            "合同服务暂时不可用，请稍后再试", "The contract service is unavailable: try again shortly"),
            back=url_for("applications.contract", application_id=app.id)), 503
    response = make_response(body)
    response.mimetype = mimetype  # no-store like every personal response (bff/caching.py): full ID and mobile
    return response


@bp.get("/applications/<application_id>/contract/text")
@requires_actor("applications.view")
def contract_text(application_id: str) -> Any:
    """The contract's text on a page of its own (the partial the contract page includes; issue 17 §2)."""
    app = application_or_404(application_id)
    if not app.contract_id:
        return render_template("error.html", status=409, message=_msg(
            "合同尚未生成，请稍候", "The contract has not been generated yet: please wait"),
            back=url_for("applications.contract", application_id=app.id)), 409
    return page_or_block("applications/contract_text.html", "text_block", app=app, contract=app.contract,
                         reading=contract_reading(app))


@bp.get("/applications/<application_id>/contract/text.html")
@requires_actor("applications.view")
def contract_text_original(application_id: str) -> Any:
    """The contract's text byte for byte, downloaded beside its fingerprint so that anyone can hash it (issue 17
    §2); an attachment, never shown in our origin, no-store like every personal response."""
    app = application_or_404(application_id)
    data = original_text(app)
    if data is None:
        # a state (no contract yet, an older one, the service away), not a missing page
        return render_template("error.html", status=409, message=_msg(
            "合同正文暂时无法下载，请查看 PDF 合同", "The contract's text cannot be downloaded now: read the PDF"),
            back=url_for("applications.contract", application_id=app.id)), 409
    response = make_response(data)
    response.mimetype = "text/html"
    number = str(app.contract.get("number") or app.id[:8])
    response.headers["Content-Disposition"] = f'attachment; filename="{number}-text.html"'
    return response


@bp.get("/applications/<application_id>/contract/pages/<int:page>")
@requires_actor("applications.view")
def contract_page_image(application_id: str, page: int) -> Any:
    app = application_or_404(application_id)
    return contract_bytes(app, lambda cid: services().contracts.client.page(cid, page), "image/png")


@bp.get("/applications/<application_id>/contract.pdf")
@requires_actor("applications.view")
def contract_pdf(application_id: str) -> Any:
    app = application_or_404(application_id)
    response = contract_bytes(app, services().contracts.client.document, "application/pdf")
    if isinstance(response, Response):
        log_document_view(app, "contract")
        number = str(app.contract.get("number") or app.id[:8])
        response.headers["Content-Disposition"] = f'inline; filename="{number}.pdf"'
    return response


_per_contract = per_application("contract")


@bp.post("/applications/<application_id>/contract/code")
@requires_actor("applications.edit")
@limiter.limit("5 per 10 minutes", key_func=_per_contract)
def contract_code(application_id: str) -> Any:
    """Send the one-time code that re-confirms the customer's identity before signing."""
    app = application_or_404(application_id)
    try:
        services().contracts.send_code(app)
    except NotAllowed as exc:
        return _conflict(exc, app)
    return _go(url_for("applications.contract", application_id=app.id, sent="1") + "#sign")


@bp.post("/applications/<application_id>/contract/explained")
@requires_actor("contracts.explain")
def contract_explained(application_id: str) -> Any:
    """The dealer's staff member records that they explained each key term to the customer, and how."""
    app = application_or_404(application_id)
    form = request.form
    missing = [code for code in EXPLAINED_TERMS if form.get(f"term_{code}") != "yes"]
    if missing or form.get("method") not in EXPLAIN_METHODS:
        return _contract_page(app, status=422, explain_error=FieldError(
            "explained", "required", "请逐项向客户说明并勾选全部主要条款，并选择说明方式",
            "Explain each key term to the customer, tick every one and choose how"))
    try:
        services().contracts.explain(actor(), app, form["method"], staff_label(app.dealer_id))
    except NotAllowed as exc:
        return _conflict(exc, app)
    return _go(url_for("applications.contract", application_id=app.id) + "#sign")


@bp.post("/applications/<application_id>/contract/sign")
@requires_actor("applications.edit")
@limiter.limit("10 per 10 minutes", key_func=_per_contract)
def contract_sign(application_id: str) -> Any:
    """Sign with the code and the drawing; the same press again (a double tap) lands on the signed contract."""
    app = application_or_404(application_id)
    form = request.form
    signature = form.get("signature", "")[:3 * MAX_SIGNATURE_BYTES]
    png = decoded_signature(signature)
    if app.status != "contract_ready":  # signed by this very press a moment ago (a double tap), or not signable
        code_id = services().contracts.check_code(app, form.get("code", "")[:12]) if png else None
        if code_id and same_press(app.contract, code_id, png):
            return _go(url_for("applications.contract", application_id=app.id))
        return _conflict(NotAllowed("wrong_state", "合同当前无法签署（可能已签署）",
                                    "The contract cannot be signed now (it may be signed already)"), app)
    # the GPS position the lease needs is a term of the contract (its §10), read with the rest; the trip data are
    # an optional consent, withdrawable, asked here (PIPL art. 13(1)(2) vs. art. 14)
    read, telemetry = form.get("read") == "yes", form.get("telemetry") == "yes"
    keep = {"signature": signature if signature.startswith(SIGNATURE_PREFIX) else "", "code_sent": True,
            "read": read, "telemetry": telemetry}
    if not read:
        error = FieldError("read", "required", "请阅读合同并勾选确认", "Read the contract and tick the box")
    elif (error := signature_problem(png)) is None:
        code_id = services().contracts.check_code(app, form.get("code", "")[:12])
        error = None if code_id else CODE_PROBLEM
    if error is CODE_PROBLEM:  # a try of the code spent: the page by GET, so that a refresh spends no other
        keep_refused(app, "contract", app.contract_id or "", signature=keep["signature"], read=read,
                     telemetry=telemetry)
        return _go(url_for("applications.contract", application_id=app.id) + "#sign-error")
    if error is not None:
        return _contract_page(app, status=422, error=error, **keep)
    assert code_id is not None
    try:
        services().contracts.sign(actor(), app, code_id, png, ["vehicle_telemetry"] if telemetry else [])
    except NotAllowed as exc:
        return _conflict(exc, app)
    except ServiceUnavailable:
        return _contract_page(app, status=503, error=FieldError(
            "service", "unavailable", "签署服务暂时不可用，您的签名已保留，请稍后再点“签署”",
            "Signing is unavailable right now; your signature is kept: press Sign again shortly"), **keep)
    except ServiceRefused as exc:
        return _contract_page(app, status=422, error=refused_problem(exc), **keep)
    return _go(url_for("applications.contract", application_id=app.id))
