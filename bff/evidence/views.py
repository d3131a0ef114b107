"""The evidence records of an application (``/applications/<id>/evidence``) and the auditor's look-up
(``/evidence``): the list of what was logged, and each entry's proof bundle as a JSON download, audit-logged.

The bundles come from the contract service (``ledger:read``); who gets which is decided in
:mod:`bff.evidence.services`. Pages and downloads are ``no-store`` like every personal response (bff/caching.py).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import make_response
from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import requires_actor
from bff.auth.session import requires
from bff.evidence.services import NotEntitled
from bff.evidence.services import bundle
from bff.evidence.services import entries
from bff.services import services
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable

bp = Blueprint("evidence", __name__)
KIND_LABELS = {
    "consent_given": lazy_gettext("Consent given"),
    "kyc_outcome": lazy_gettext("Identity check"),
    "plan_accepted": lazy_gettext("Plan accepted"),
    "risk_decision": lazy_gettext("Credit decision"),
    "contract_generated": lazy_gettext("Contract generated"),
    "terms_explained": lazy_gettext("Key terms explained"),
    "contract_signed": lazy_gettext("Contract signed"),
    "payment": lazy_gettext("Payment"),
    "capture": lazy_gettext("Deposit hold captured or released"),
    "refund": lazy_gettext("Refund"),
    "handover_signed": lazy_gettext("Handover record signed"),
    "delivery": lazy_gettext("Vehicle handed over"),
    "lease_closed": lazy_gettext("Lease closed"),
    "settlement_certificate_signed": lazy_gettext("Settlement certificate issued"),
    "schedule_annex_signed": lazy_gettext("Schedule annex issued"),
}


@bp.app_template_filter("evidence_kind")
def evidence_kind(kind: str) -> str:
    """An evidence entry's kind in words."""
    return str(KIND_LABELS.get(kind, kind))


def _unavailable() -> Any:
    response = make_response(render_template("error.html", status=503, message=_(
        "The evidence log is unavailable right now: try again in a minute.")), 503)
    response.headers["Retry-After"] = "30"
    return response


def _download(index: int, **who: Any) -> Any:
    try:
        found = bundle(services().contract, services().audit, index, **who)
    except NotEntitled:
        abort(404)
    except ServiceRefused as exc:
        abort(404 if exc.status == 404 else 502)
    except ServiceUnavailable:
        return _unavailable()
    response = make_response(json.dumps(found, ensure_ascii=False, indent=2, sort_keys=True))
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = f'attachment; filename="evidence-{index}.json"'
    return response


@bp.get("/applications/<application_id>/evidence")
@requires_actor("applications.view")
def application(application_id: str) -> Any:
    app = application_or_404(application_id)
    try:
        listed = entries(services().contract, app.id, actor().role)
    except (ServiceUnavailable, ServiceRefused):
        return _unavailable()
    return render_template("evidence/application.html", app=app, entries=listed)


@bp.get("/applications/<application_id>/evidence/<int:index>.json")
@requires_actor("applications.view")
def application_bundle(application_id: str, index: int) -> Any:
    app = application_or_404(application_id)
    a = actor()
    return _download(index, application_id=app.id, role=a.role, actor_id=a.id, actor_label=a.label,
                     dealer_id=app.dealer_id, ip=a.ip, user_agent=a.user_agent)


@bp.get("/evidence")
@requires("evidence.audit")
def audit() -> Any:
    """The auditor looks up an application's evidence by its id (from the audit log, a complaint, a court)."""
    application_id = request.args.get("application", "").strip()[:64]
    listed = None
    if application_id:
        try:
            listed = entries(services().contract, application_id, g.user.role)
        except ServiceRefused:
            listed = []
        except ServiceUnavailable:
            return _unavailable()
    return render_template("evidence/audit.html", application_id=application_id, entries=listed)


@bp.get("/evidence/<int:index>.json")
@requires("evidence.audit")
def audit_bundle(index: int) -> Any:
    user = g.user
    return _download(index, application_id=None, role=user.role, actor_id=user.id, actor_label=user.email,
                     dealer_id=None, ip=request.remote_addr or "", user_agent=(request.user_agent.string or "")[:255])
