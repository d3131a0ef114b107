"""Documents on request, on the web: the risk officer's requests from the review case (under ``/reviews/<case>``)
and the applicant's upload page on their phone (under ``/applications/<application>/documents``).

The applicant's pages are theirs alone: staff never upload or look through them there (a risk officer sees the
pages sent on the review case, each view audit-logged as the ID images are). Every response is ``no-store``
(bff/caching.py); a page's bytes are served by the BFF after the checks, never as a public or presigned link."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from functools import wraps
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
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import current_actor
from bff.applications.access import requires_actor
from bff.auth.session import requires
from bff.documents import document_service
from bff.documents.services import KINDS
from bff.documents.services import MAX_FILE_BYTES
from bff.documents.services import DocumentService
from bff.documents.services import NotFound
from bff.documents.services import Refused
from bff.documents.services import Upload
from bff.documents.services import overdue
from bff.documents.services import refuse
from bff.reviews import views as reviews
from bff.services import services
from infra.applications import Application
from infra.applications import Scope
from infra.clients.http import ServiceUnavailable
from infra.documents import DocumentPage
from infra.documents import DocumentRequest
from infra.storage import StorageError
from infra.storage import StorageUnavailable

bp = Blueprint("documents", __name__)
log = logging.getLogger(__name__)
MAX_FILES_PER_POST = 10


def _service() -> DocumentService:
    return document_service(services())


def _now() -> datetime:
    return datetime.now(UTC)


def _link(application_id: str) -> str:
    """Where the text message takes the applicant: their application's documents page."""
    return url_for("documents.mine", application_id=application_id, _external=True)


# -- the risk officer ----------------------------------------------------------------------------------------------
def _officer_case(case_id: str) -> tuple[dict[str, Any], Application]:
    """The case (404 if the risk service has none) and its application here; a case must be claimed by the officer
    before they ask for anything (409 on the case page otherwise)."""
    case = reviews._case(case_id)
    app = services().applications.repo.get(str(case.get("application_id", "")), Scope())
    if app is None:
        abort(reviews._render(case, problem=str(_msg("no_application")), status=409))
    if case.get("state") != "claimed" or case.get("claimed_by") != g.user.id:
        abort(reviews._render(case, problem=str(_msg("claim_first")), status=409))
    return case, app


def _msg(key: str) -> str:
    return str({"no_application": _("This case's application is not in this system: no documents can be requested."),
            "claim_first": _("Claim this case before you request documents or act on them.")}[key])


def _officer_request(app: Application, docs_id: str) -> DocumentRequest:
    try:
        return _service().of(app, docs_id)
    except NotFound:
        abort(404)


def _officer_act(case_id: str, act: Callable[[dict[str, Any], Application], tuple[str, dict[str, object]]],
                 done: str) -> Any:
    """One officer's action on the case's documents: ``act`` gets the claimed case and its application and returns
    the audit action and its details. A refusal shows the case again with the reasons and the form as typed
    (``exc.status``), the risk service away its page (503); done, it is audit-logged, flashed (``done``: a
    :func:`_flash` key) and the officer is back on the case (303)."""
    try:
        case, app = _officer_case(case_id)
        try:
            action, details = act(case, app)
        except Refused as exc:
            return reviews._render(case, status=exc.status, form=request.form, doc_errors=list(exc.errors))
    except ServiceUnavailable:
        return reviews._unavailable()
    _audit(action, app, details)
    flash(_flash(done), "ok")
    return redirect(url_for("reviews.case", case_id=case_id), 303)


@bp.post("/reviews/<case_id>/documents")
@requires("reviews.work")
def request_documents(case_id: str) -> Any:
    """The officer asks the applicant for documents; the text message goes with it (a job)."""
    def ask(case: dict[str, Any], app: Application) -> tuple[str, dict[str, object]]:
        svc, now = _service(), _now()
        kinds, note, due_on = svc.parse_request(request.form.getlist("kinds"), request.form.get("note", ""),
                                                request.form.get("due_on", ""), now)
        svc.request(app, str(case["id"]), kinds, note, due_on, officer_id=g.user.id, officer_label=g.user.email,
                    link=_link(app.id), now=now)
        return "documents.requested", {"kinds": kinds, "due_on": due_on.isoformat()}

    return _officer_act(case_id, ask, "requested")


@bp.post("/reviews/<case_id>/documents/<docs_id>/accept")
@requires("reviews.work")
def accept(case_id: str, docs_id: str) -> Any:
    def take(case: dict[str, Any], app: Application) -> tuple[str, dict[str, object]]:
        found = _officer_request(app, docs_id)
        _service().accept(found, _now())
        return "documents.accepted", {"request": found.id}

    return _officer_act(case_id, take, "accepted")


@bp.post("/reviews/<case_id>/documents/<docs_id>/again")
@requires("reviews.work")
def again(case_id: str, docs_id: str) -> Any:
    """The pages sent do not do: the same documents asked for again, with a new note and due day."""
    def ask_again(case: dict[str, Any], app: Application) -> tuple[str, dict[str, object]]:
        found = _officer_request(app, docs_id)
        _service().again(app, found, request.form.get("note", ""), request.form.get("due_on", ""),
                         officer_id=g.user.id, officer_label=g.user.email, link=_link(app.id), now=_now())
        return "documents.requested", {"again": found.id, "kinds": list(found.kinds)}

    return _officer_act(case_id, ask_again, "again")


@bp.get("/reviews/<case_id>/documents/<docs_id>/pages/<page_id>")
@requires("reviews.work")
def officer_page(case_id: str, docs_id: str, page_id: str) -> Any:
    """One file the applicant sent, for the officer of the case: audit-logged, never cached."""
    try:
        case = reviews._case(case_id)
    except ServiceUnavailable:
        return reviews._unavailable()
    app = services().applications.repo.get(str(case.get("application_id", "")), Scope())
    if app is None:
        abort(404)
    found = _officer_request(app, docs_id)
    page = _page_or_404(found, page_id)
    response = _bytes(page)
    _audit("pii.document_viewed", app, {"kind": page.kind, "page": page.id})  # only bytes shown are a view
    return response


def _audit(action: str, app: Application, details: dict[str, object]) -> None:
    services().audit.append(action, "success", actor_id=g.user.id, actor_label=g.user.email, dealer_id=app.dealer_id,
                            target=app.id, ip=request.remote_addr or "",
                            user_agent=(request.user_agent.string or "")[:255], details=details)


def _flash(key: str) -> str:
    return str({"requested": _("Documents requested: the customer gets a text with the link. The SLA clock stands "
                               "still until they send them."),
                "accepted": _("Documents accepted."),
                "again": _("Asked again: the customer gets a text with your note.")}[key])


# -- the applicant -------------------------------------------------------------------------------------------------
def _customer_app(application_id: str) -> Application:
    """The applicant's own application; staff are refused (403: this page is the applicant's)."""
    app = application_or_404(application_id)
    if actor().kind != "customer":
        abort(403)
    return app


def _customer_request(app: Application, docs_id: str) -> DocumentRequest:
    try:
        return _service().of(app, docs_id)
    except NotFound:
        abort(404)


def _page_or_404(found: DocumentRequest, page_id: str) -> DocumentPage:
    try:
        return _service().page(found, page_id)
    except NotFound:
        abort(404)


def _mine(app: Application, *, errors: list[Any] | None = None, status: int = 200, focus: str = "") -> Any:
    svc, now = _service(), _now()
    requests = [r for r in svc.repo.for_application(app.id) if r.status in ("open", "submitted")]
    response = make_response(render_template(
        "documents/mine.html", app=app, requests=requests, pages={r.id: svc.repo.pages(r.id) for r in requests},
        kinds=KINDS, errors=errors or [], focus=focus, overdue={r.id: overdue(r, now) for r in requests},
        max_mb=MAX_FILE_BYTES // (1024 * 1024)))
    response.status_code = status
    return response


def customer_sign_in_first(view: Callable[..., Any]) -> Callable[..., Any]:
    """A signed-out visitor of the applicant's pages (the text message's link, opened after their session ended)
    signs in as a customer (我的租赁: mobile number and code), not at the staff sign-in, and comes back here."""
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None and current_actor() is None:
            return redirect(url_for("invitations.returning.sign_in", next=request.path))
        return view(*args, **kwargs)

    return guarded


@bp.get("/applications/<application_id>/documents")
@customer_sign_in_first
@requires_actor("applications.view")
def mine(application_id: str) -> Any:
    """What the applicant is asked to send, what they have added, and the button to send it."""
    return _mine(_customer_app(application_id))


@bp.post("/applications/<application_id>/documents/<docs_id>/pages")
@requires_actor("applications.edit")
def upload(application_id: str, docs_id: str) -> Any:
    app = _customer_app(application_id)
    found = _customer_request(app, docs_id)
    kind = request.form.get("kind", "")
    files = [f for f in request.files.getlist("file") if f.filename][:MAX_FILES_PER_POST + 1]
    try:
        if len(files) > MAX_FILES_PER_POST:
            raise refuse(kind or "file", "too_many", f"一次最多上传 {MAX_FILES_PER_POST} 个文件",
                         f"At most {MAX_FILES_PER_POST} files at a time")
        _service().upload(app, found, [Upload(kind, f.read(MAX_FILE_BYTES + 1)) for f in files])
    except Refused as exc:
        return _mine(app, errors=list(exc.errors), status=exc.status, focus=kind)
    except StorageError:
        abort(503)
    return redirect(url_for("documents.mine", application_id=app.id, _anchor=f"kind-{kind}"), 303)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> Any:
    """A post of pages larger than a post may carry (bff/applications/views.py UPLOAD_LIMIT): the documents page
    with the reason, not the generic error page. The page's script sends one file per post, so this is a browser
    without it sending several photos together, or one file far over the limit."""
    if request.endpoint != "documents.upload" or not request.view_args:
        return exc
    found = current_actor()  # the view's guard did not run: the post was refused while its form was read
    if found is None or found.kind != "customer":
        return exc
    g.actor = found
    try:
        app = _customer_app(str(request.view_args["application_id"]))
    except HTTPException:
        return exc  # not the applicant's: nothing of the page to show
    mb = MAX_FILE_BYTES // 2**20
    refused = refuse("file", "too_large", f"文件太大，未能上传：每个文件最多 {mb} MB，多个文件请逐个添加",
                     f"The files were too large to send: at most {mb} MB a file; add several files one at a time")
    return _mine(app, errors=list(refused.errors), status=413)


@bp.post("/applications/<application_id>/documents/<docs_id>/pages/<page_id>/delete")
@requires_actor("applications.edit")
def remove(application_id: str, docs_id: str, page_id: str) -> Any:
    app = _customer_app(application_id)
    found = _customer_request(app, docs_id)
    page = _page_or_404(found, page_id)
    try:
        _service().remove(found, page, _now())
    except Refused as exc:
        return _mine(app, errors=list(exc.errors), status=exc.status)
    return redirect(url_for("documents.mine", application_id=app.id, _anchor=f"kind-{page.kind}"), 303)


@bp.post("/applications/<application_id>/documents/<docs_id>/submit")
@requires_actor("applications.edit")
def submit(application_id: str, docs_id: str) -> Any:
    """Send the documents: the case goes back to the officer's queue."""
    app = _customer_app(application_id)
    found = _customer_request(app, docs_id)
    try:
        _service().submit(app, found, _now())
    except Refused as exc:
        return _mine(app, errors=list(exc.errors), status=exc.status)
    return redirect(url_for("documents.mine", application_id=app.id), 303)


@bp.get("/applications/<application_id>/documents/<docs_id>/pages/<page_id>")
@customer_sign_in_first
@requires_actor("applications.view")
def my_page(application_id: str, docs_id: str, page_id: str) -> Any:
    """One of the applicant's own files, to check it before sending."""
    app = _customer_app(application_id)
    return _bytes(_page_or_404(_customer_request(app, docs_id), page_id))


def _bytes(page: DocumentPage) -> Any:
    """The page's bytes as the applicant sent them: sandboxed (a PDF's scripts and links never run as our origin),
    a PDF as a download, a photo inline. Its object gone (or its bucket): 404; storage unavailable: 503."""
    try:
        data = _service().content(page)
    except StorageUnavailable:
        abort(503)
    except StorageError as exc:  # its row is there, its object is not, or is corrupted: nothing to show
        log.warning("document page %s: %s", page.id, type(exc).__name__)
        abort(404)
    response = make_response(data)
    response.headers["Content-Type"] = page.content_type
    pdf = page.content_type == "application/pdf"
    disposition = "attachment" if pdf else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{page.kind}.{"pdf" if pdf else "jpg"}"'
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response



@dataclass(frozen=True)
class Wanted:
    """An open request as the applicant's application page names it."""

    request: DocumentRequest
    names: str


@bp.app_context_processor
def _documents_wanted() -> dict[str, object]:
    """``documents_wanted(application_id)`` for the applicant's application page (documents/_wanted.html): the open
    request with its documents named in the UI language, or None. Called only where the page includes it."""
    def wanted(application_id: str) -> Wanted | None:
        found = next((r for r in _service().repo.for_application(application_id) if r.status == "open"), None)
        if found is None:
            return None
        zh = str(get_locale() or "zh_CN").startswith("zh")
        names = ("、" if zh else ", ").join(KINDS[k][0 if zh else 1] for k in found.kinds if k in KINDS)
        return Wanted(found, names)

    return {"documents_wanted": wanted}
