"""``POST /applications/<id>/id-card/side``: which side of the ID card a chosen photo shows, asked by the ID-card page
as soon as a photo is chosen (issue 17 §10; pwa/static/js/id-card.js), so that a back chosen for the front is said
at once, before the upload and the read (kyc/side_check.py: ~0.1 s for a card that fills the picture).

Scoped as the upload it precedes (bff/applications/views.py ``id_card_post``): staff with ``applications.edit``
or the invited customer, on an application they may see (another dealer's: 404), a draft, with the consent to
process the ID card (else 409), CSRF, the upload's 10 MB per photo and its pixel checks (kyc.images.load_image),
and a rate of its own per application. The photo is decoded in memory and dropped: nothing is stored or logged
but the side found and the time taken. Every answer is JSON, a refusal ``application/problem+json`` with the
person's reason in their language (``message``); the upload itself still checks everything.

Form fields: ``side`` (``front`` or ``back``: the side the photo was chosen for) and ``photo`` (the file).
Answer: ``{side, expected, ok, code, swap, framed, message, ms}`` (kyc.side_check.Advice).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from bff.applications.access import application_or_404
from bff.applications.access import may_edit
from bff.applications.access import per_application
from bff.applications.access import requires_actor
from bff.applications.kyc import CONSENT_REQUIRED
from bff.applications.kyc import ID_CARD_MIN_SIDE
from bff.applications.kyc import MAX_UPLOAD_BYTES
from bff.applications.kyc import NOT_EDITABLE
from bff.applications.states import EDITABLE
from bff.extensions import limiter
from bff.services import services
from httpkit.problems import http_headers
from httpkit.problems import problem
from kyc import side_check
from kyc.images import ImageRejected
from kyc.images import load_image
from kyc.ocr import ReaderMissing
from kyc.reasons import Reason

log = logging.getLogger(__name__)
bp = Blueprint("id_card_side", __name__)
FORM_OVERHEAD = 64 * 1024  # the multipart framing and the side's field around the photo
#: per application: a photo is checked each time one is chosen (retakes included), each check ~0.1–0.5 s of CPU
RATE = "20 per minute;200 per hour"
_per_application = per_application("kyc-side")


def _message(reason: Reason) -> str:
    return reason.text(str(get_locale() or "zh_CN"))


def _refused(status: int, reason: Reason, field: str = "photo") -> Response:
    return problem(status, reason.text_en, reason.text_en, [{"field": field, "code": reason.code,
                                                             "message": reason.text_en,
                                                             "message_zh": reason.text_zh}],
                   code=reason.code, message=_message(reason))


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise the app's 1 MB body limit to one photo's. Flask runs URL value preprocessors before every
    ``before_request`` function, so the limit holds when CSRF protection parses the form."""
    if request.method == "POST":
        request.max_content_length = MAX_UPLOAD_BYTES + FORM_OVERHEAD


@bp.errorhandler(CSRFError)
def _csrf(exc: CSRFError) -> Response:
    # (a handler of the blueprint's own: the app's CSRFError page, registered for 400, would answer first)
    return _refused(400, Reason("csrf", "页面已过期，请刷新页面后重试", "The page expired: reload it and try again"),
                    "csrf_token")


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    """404, 403, 413, 429 …: JSON for the page's script, never the HTML error page."""
    status = exc.code or 500
    reasons = {
        403: Reason("forbidden", "您无权操作此申请", "Your role does not give access to this application"),
        404: Reason("not_found", "找不到该申请", "That application was not found"),
        413: Reason("image_too_large", f"文件过大（上限 {MAX_UPLOAD_BYTES // 2**20} MB），请降低相机分辨率后重拍",
                    f"The file is too large (at most {MAX_UPLOAD_BYTES // 2**20} MB): use a lower camera "
                    "resolution and retake it"),
        429: Reason("rate_limited", "检查太频繁，请稍后再试；也可以直接上传", "Too many checks: wait a moment, or "
                    "upload the photos as they are"),
    }
    response = _refused(status, reasons.get(status, Reason("refused", "无法检查这张照片", "This photo cannot be "
                                                                                           "checked")))
    response.headers.extend(http_headers(exc))
    return response


@bp.post("/applications/<application_id>/id-card/side")
@requires_actor("applications.edit")
@limiter.limit(RATE, key_func=_per_application)
def check(application_id: str) -> Response:
    started = time.perf_counter()
    app = application_or_404(application_id)
    expected = request.form.get("side", "")
    if expected not in ("front", "back"):
        return _refused(422, Reason("side", "请说明这是哪一面的照片", "Say which side the photo was chosen for"),
                        "side")
    if app.status not in EDITABLE or not may_edit():
        return _refused(409, NOT_EDITABLE)
    if not services().applications.consents(app).sensitive_pi:
        return _refused(409, CONSENT_REQUIRED)
    photo = request.files.get("photo")
    if photo is None or not photo.filename:
        return _refused(422, Reason("missing", "请拍摄或选择身份证照片", "Take or choose a photo of the ID card"))
    try:
        image = load_image(photo.read(), max_bytes=MAX_UPLOAD_BYTES, min_side=ID_CARD_MIN_SIDE)
    except ImageRejected as exc:
        return _refused(422, exc.reason)
    try:
        verdict = side_check.classify(image, side_check.side_reader())
    except (ReaderMissing, TypeError) as exc:  # this process cannot read cards: the upload's job still will
        log.warning("id-card side check unavailable: %s", exc)
        return _refused(503, Reason("unavailable", "暂时无法预先检查，请直接上传", "The photo cannot be checked "
                                    "now: upload it as it is"))
    said = side_check.advice("front" if expected == "front" else "back", verdict)
    ms = round((time.perf_counter() - started) * 1000)
    log.info("id-card side check: %s chosen as %s (%s) in %d ms", verdict.side, expected, said.code, ms)
    return jsonify(side=verdict.side, expected=expected, ok=said.ok, code=said.code, swap=said.swap,
                   framed=verdict.framed, message=_message(said.reason), ms=ms)
