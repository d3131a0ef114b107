"""Pages of the person's rights over their personal information (bff/privacy/services.py):

- ``/applications/<id>/privacy``: 我的个人信息 — the consents given (and withdrawn), a withdraw button with what it
  does for the optional ones, why the others cannot be withdrawn here, a form to make a request and the requests
  with their due dates and answers. The customer acts (``privacy.request``); staff who see the application read it.
- ``/ops/privacy``: the lessor's ops answer or refuse the open requests of every dealer, the overdue ones first.

Every response is ``no-store`` (bff/caching.py: the default), as every page with personal data.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import abort
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale

from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import per_application
from bff.applications.access import requires_actor
from bff.applications.access import staff_actor
from bff.applications.services import NotAllowed
from bff.applications.services import consent_text
from bff.applications.states import WITHDRAWABLE
from bff.auth.session import requires
from bff.extensions import limiter
from bff.privacy.services import KINDS
from bff.privacy.services import MAX_ANSWER
from bff.privacy.services import MAX_DETAIL
from bff.privacy.services import RESPONSE_DAYS
from bff.rendering import in_locale as _msg
from bff.services import services
from infra.applications import Application
from plans.errors import FieldError
from plans.errors import PlanInputError

bp = Blueprint("privacy", __name__)
#: what a form keeps of what was typed, beyond the limits the service checks (so that the error says how long)
KEEP = 4 * MAX_ANSWER


def _title(purpose: str) -> str:
    """A consent's title in the request's language (its code when the consent texts do not name it)."""
    try:
        return consent_text(purpose, str(get_locale() or "zh_CN"))[0]
    except KeyError:
        return purpose


# -- the person's page -------------------------------------------------------------------------------------------
def _page(app: Application, status: int = 200, errors: list[FieldError] | None = None,
          form: dict[str, str] | None = None, error: str | None = None) -> Any:
    svc = services().privacy
    consents = [{"purpose": c.purpose, "title": _title(c.purpose), "given_at": c.given_at,
                 "withdrawn_at": c.withdrawn_at, "withdrawable": c.purpose in WITHDRAWABLE}
                for c in svc.consents(app)]
    requests = svc.for_application(app)
    return render_template(
        "privacy/application.html", app=app, consents=consents, requests=requests, kinds=KINDS,
        overdue={r.id for r in requests if svc.overdue(r)}, customer=actor().kind == "customer",
        form=form or {"kind": "", "detail": ""}, errors=errors or [],
        field_errors={e.field: e for e in errors or []}, error=error, notice=request.args.get("notice", ""),
        days=RESPONSE_DAYS, max_detail=MAX_DETAIL), status


@bp.get("/applications/<application_id>/privacy")
@requires_actor("applications.view")
def page(application_id: str) -> Any:
    """我的个人信息: the person's consents and requests (staff who see the application: read only)."""
    return _page(application_or_404(application_id))


_per_application = per_application("privacy")


@bp.post("/applications/<application_id>/privacy/requests")
@requires_actor("privacy.request")
@limiter.limit("20 per hour", key_func=_per_application)
def submit(application_id: str) -> Any:
    """The customer asks to see, copy, correct or delete their data, to withdraw a consent or for an explanation."""
    app = application_or_404(application_id)
    form = {"kind": request.form.get("kind", "")[:16], "detail": request.form.get("detail", "")[:KEEP]}
    try:
        services().privacy.submit(actor(), app, form["kind"], form["detail"])
    except PlanInputError as exc:
        return _page(app, 422, exc.errors, form)
    except NotAllowed as exc:
        return _page(app, 409, form=form, error=_msg(exc.text_zh, exc.text_en))
    return redirect(url_for("privacy.page", application_id=app.id, notice="submitted") + "#requests", 303)


@bp.post("/applications/<application_id>/privacy/withdraw")
@requires_actor("privacy.request")
@limiter.limit("20 per hour", key_func=_per_application)
def withdraw(application_id: str) -> Any:
    """The customer withdraws an optional consent: at once, and what it alone allowed is deleted."""
    app = application_or_404(application_id)
    try:
        services().privacy.withdraw(actor(), app, request.form.get("purpose", "")[:32])
    except PlanInputError as exc:
        return _page(app, 422, exc.errors)
    except NotAllowed as exc:
        return _page(app, 409, error=_msg(exc.text_zh, exc.text_en))
    return redirect(url_for("privacy.page", application_id=app.id, notice="withdrawn") + "#consents", 303)


# -- ops ---------------------------------------------------------------------------------------------------------
def _ops_page(status: int = 200, answering: str = "", errors: list[FieldError] | None = None,
              form: dict[str, str] | None = None, error: str | None = None) -> Any:
    """The open requests; ``answering``: the request whose form comes back with its errors and what was typed."""
    svc = services().privacy
    pending = svc.open_requests()
    dealers = {d.id: d.name for d in services().accounts.dealers()}
    return render_template(
        "privacy/ops.html", requests=pending, overdue={r.id for r in pending if svc.overdue(r)}, dealers=dealers,
        answering=answering, field_errors={e.field: e for e in errors or []},
        form=form or {"status": "", "answer": ""}, error=error, notice=request.args.get("notice", ""),
        max_answer=MAX_ANSWER), status


@bp.get("/ops/privacy")
@requires("privacy.manage")
def ops() -> Any:
    """Every dealer's open requests, the overdue ones first, each with its answer form."""
    return _ops_page()


@bp.post("/ops/privacy/<request_id>/answer")
@requires("privacy.manage")
def answer(request_id: str) -> Any:
    """Ops answer a request, or refuse it with the reason (PIPL art. 50)."""
    form = {"status": request.form.get("status", "")[:16], "answer": request.form.get("answer", "")[:KEEP]}
    try:
        services().privacy.answer(staff_actor(), request_id, form["status"], form["answer"])
    except PlanInputError as exc:
        return _ops_page(422, request_id, exc.errors, form)
    except NotAllowed as exc:
        if exc.code == "not_found":
            abort(404)
        return _ops_page(409, error=_msg(exc.text_zh, exc.text_en))
    return redirect(url_for("privacy.ops", notice=form["status"]), 303)
