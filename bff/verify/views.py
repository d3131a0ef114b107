"""``/verify``: upload a PDF, the contract service checks it (``POST /api/v1/verification``), the page says
plainly whether it is valid and shows each signature's checks and the evidence-log inclusion proof (the opened
record behind the log's public commitment, which the holder of the signed file may see; each showing is
audit-logged).

A plain form post, not htmx: the answer is a whole new section, the upload works without JavaScript, and
base.html's htmx configuration does not swap 413/503 answers, which must reach the user as pages.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint
from flask import make_response
from flask import render_template
from flask import request
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from bff.extensions import limiter
from bff.services import services
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable

log = logging.getLogger(__name__)
bp = Blueprint("verify", __name__)
MAX_PDF_BYTES = 12 * 1024 * 1024
FORM_OVERHEAD = 64 * 1024  # the multipart framing and the CSRF token around the file
RATE = "10 per minute;60 per hour"  # per address: each check costs the contract service a PDF validation


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise the app's 1 MB body limit for the upload. Flask runs URL value preprocessors before every
    ``before_request`` function, so the limit holds when CSRF protection parses the form."""
    if request.method == "POST":
        request.max_content_length = MAX_PDF_BYTES + FORM_OVERHEAD


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Any:
    return _page(413, error=_too_large_message())


def _too_large_message() -> str:
    return str(_("The file is larger than %(mb)s MB. Contract PDFs are much smaller: check that it is the right "
                 "file.", mb=MAX_PDF_BYTES // (1024 * 1024)))


def _page(status: int = 200, **context: Any) -> Any:
    response = make_response(render_template("verify/index.html", max_mb=MAX_PDF_BYTES // (1024 * 1024),
                                             **context), status)
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


#: the evidence entry a verified document discloses, by the contract service's ``document``
DISCLOSED_KINDS = {"handover": "handover_signed", "settlement_certificate": "settlement_certificate_signed",
                   "schedule_annex": "schedule_annex_signed"}

def verdict(result: dict[str, Any]) -> tuple[bool, str]:
    """(valid, the plain sentence at the top of the page) for the contract service's answer: valid only when
    every signature holds *and* the file is a contract we signed (its hash is in our records)."""
    signatures = result.get("signatures") or []
    contract = result.get("contract")
    if not signatures:
        return False, _("Not valid: the file has no electronic signatures.")
    if not all(s.get("intact") for s in signatures):
        return False, _("Not valid: the file was changed after it was signed.")
    if not all(s.get("valid") and s.get("trusted") for s in signatures):
        return False, _("Not valid: a signature does not verify or does not come from a signer we trust.")
    if not result.get("all_valid"):
        return False, _("Not valid: a signature check failed; see the details below.")
    if not contract:
        return False, _("Not valid: the signatures hold, but this file is not a contract in our records.")
    separator = "、" if str(get_locale() or "zh_CN").startswith("zh") else ", "
    signers = separator.join(dict.fromkeys(str(s["signer"]) for s in signatures if s.get("signer")))
    if result.get("document") == "handover":  # the vehicle's handover record (交接确认书) of that contract
        return True, _("Valid: the handover record of contract %(number)s is intact and signed by %(signers)s.",
                       number=contract["number"], signers=signers)
    if result.get("document") == "settlement_certificate":  # 结清证明
        return True, _("Valid: the settlement certificate of contract %(number)s is intact and signed by "
                       "%(signers)s.", number=contract["number"], signers=signers)
    if result.get("document") == "schedule_annex":  # the schedule after a partial prepayment
        return True, _("Valid: the schedule annex of contract %(number)s is intact and signed by %(signers)s.",
                       number=contract["number"], signers=signers)
    return True, _("Valid: contract %(number)s is intact and signed by %(signers)s.", number=contract["number"],
                   signers=signers)


@bp.get("/verify")
def index() -> Any:
    return _page()


@bp.post("/verify")
@limiter.limit(RATE)
def check() -> Any:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(422, error=_("Choose the contract's PDF file to check."))
    if not upload.filename.lower().endswith(".pdf"):
        return _page(422, error=_("Only PDF files can be checked: choose the contract's .pdf file."))
    pdf = upload.read(MAX_PDF_BYTES + 1)
    if len(pdf) > MAX_PDF_BYTES:
        return _page(413, error=_too_large_message())
    if not pdf:
        return _page(422, error=_("The file is empty. Choose the contract's PDF file."))
    try:
        result = services().contract.verify(pdf)
    except ServiceRefused as exc:
        if exc.status == 422:
            return _page(422, error=_("This file is not a readable PDF. Choose the contract's PDF file as you "
                                      "received it."))
        if exc.status == 413:
            return _page(413, error=_too_large_message())
        log.error("the contract service refused a verification: %s %s", exc.status, exc.body)
        return _page(503, unavailable=True)
    except ServiceUnavailable as exc:
        log.warning("verification unavailable: %s", exc)
        return _page(503, unavailable=True)
    valid, message = verdict(result)
    proof = result.get("ledger")
    if isinstance(proof, dict) and result.get("contract"):
        # the record behind the public commitment was shown to whoever holds the signed file: logged like any
        # other disclosure of an evidence entry (bff/evidence)
        services().audit.append("evidence.disclosed", "success", actor_id=None, actor_label="holder of the signed PDF",
                                target=str(result["contract"].get("number", "")), ip=request.remote_addr or "",
                                user_agent=(request.user_agent.string or "")[:255],
                                details={"index": proof.get("index"), "role": "holder",
                                         "kind": DISCLOSED_KINDS.get(str(result.get("document")),
                                                                     "contract_signed")})
    return _page(result=result, valid=valid, verdict=message)
