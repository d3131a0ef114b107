"""The contract service's JSON API ``/api/v1``.

Contracts need a service token (``contract:write`` to create and sign, ``contract:read`` to read); the
evidence log's public leaves, checkpoints and proofs are public, as a transparency log's are (each leaf is a
commitment that names nobody: contract.ledger.commitments); appending needs ``ledger:append``, and the clear
entries with their salts (openings, as proof bundles) need ``ledger:read``: the BFF decides who may have them.
The public verification endpoint takes an uploaded PDF (anyone may check a contract, or its vehicle handover
record, they hold).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import date
from datetime import datetime
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import request

from contract.document.handover import HANDOVER_ITEMS
from contract.document.handover import MAX_HANDED_OVER_BY
from contract.document.handover import MAX_KEYS
from contract.document.handover import MAX_NOTE
from contract.document.handover import MAX_ODOMETER_KM
from contract.document.handover import MAX_VEHICLE_NAME
from contract.document.model import CONTROL_CHARACTERS
from contract.document.model import DATE_PATTERN
from contract.document.servicing import FigureError
from contract.document.servicing import parse_request
from contract.errors import InsufficientScope
from contract.errors import Unauthorized
from contract.evidence import EvidenceLog
from contract.evidence import LedgerError
from contract.evidence import NewEntry
from contract.handover import HandoverRequest
from contract.handover import HandoverService
from contract.ledger import KINDS
from contract.ledger import MAX_INDEX
from contract.ledger import SUBJECT_PATTERN
from contract.openapi import document
from contract.service import BASE64_PATTERN
from contract.service import DATE_TIME_PATTERN
from contract.service import MAX_SIGNATURE_BASE64
from contract.service import MAX_SIGNATURE_PNG
from contract.service import NOT_A_PNG
from contract.service import ContractService
from contract.service import Identity
from contract.service import Invalid
from contract.servicing_documents import ServicingDocuments
from httpkit.bodies import json_body
from httpkit.queries import BadQuery
from httpkit.queries import query
from httpkit.queries import single
from infra.service_tokens import InvalidToken
from plans.errors import FieldError
from plans.handover import printable
from plans.inputs import whole_number

bp = Blueprint("contract_api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])
SCOPE_WRITE, SCOPE_READ, SCOPE_LEDGER = "contract:write", "contract:read", "ledger:append"
SCOPE_LEDGER_READ = "ledger:read"  # the openings: clear entries and their salts
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")
SUBJECT = re.compile(SUBJECT_PATTERN)
DIGITS = re.compile(r"[0-9]{1,12}")
BASE64 = re.compile(BASE64_PATTERN)
DATE_TIME = re.compile(DATE_TIME_PATTERN)
DATE = re.compile(DATE_PATTERN)
MAX_BATCH = 100  # entries per batch append


def service() -> ContractService:
    return current_app.extensions["contract"].service  # type: ignore[no-any-return]


def handovers() -> HandoverService:
    return current_app.extensions["contract"].handovers  # type: ignore[no-any-return]


def ledger() -> EvidenceLog:
    return current_app.extensions["contract"].ledger  # type: ignore[no-any-return]


def require(scope: str) -> Callable[[F], F]:
    """Verify the bearer token (signature, issuer, audience, expiry) and that it carries ``scope``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kind, _, token = request.headers.get("Authorization", "").partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise Unauthorized("no bearer token")
            try:
                claims = current_app.extensions["contract"].verifier.verify(token.strip())
            except InvalidToken as exc:
                raise Unauthorized(exc.reason) from None
            if not (claims.has(scope) or (scope == SCOPE_READ and claims.has(SCOPE_WRITE))):
                raise InsufficientScope(scope)
            g.claims = claims
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def json_object() -> dict[str, Any]:
    body = json_body(force=True)
    if not isinstance(body, dict):
        raise Invalid("body", "The body must be a JSON object", "请求体须为 JSON 对象")
    return body


def _int_arg(name: str, low: int = 0) -> int:
    raw = request.args.get(name, "")
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and other scripts' digits
    if not DIGITS.fullmatch(raw) or not low <= int(raw) <= MAX_INDEX:
        raise Invalid(name, f"{name} must be a whole number from {low} to {MAX_INDEX}",
                      f"{name} 须为 {low} 至 {MAX_INDEX} 之间的整数")
    return int(raw)


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(document())


# -- contracts -----------------------------------------------------------------------------------------------
@bp.post("/contracts")
@require(SCOPE_WRITE)
def create_contract() -> Any:
    """A contract from an approved application's snapshot: 201 new, 200 the existing one."""
    result, created = service().create(json_object())
    response = jsonify(result)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/contracts/{result['id']}"
    return response


@bp.get("/contracts")
@require(SCOPE_READ)
def find_contract() -> Any:
    """The contract of ``application_id`` (required, once; no other parameter): a query it cannot answer
    exactly is a 400, never the first of two ids."""
    application_id = single(query({"application_id": None}), "application_id") or ""
    if not 1 <= len(application_id) <= 64:
        raise BadQuery([FieldError("application_id", "required", "缺少申请编号（1–64 个字符）",
                                   "application_id is required (1-64 characters)")])
    return jsonify(service().find(application_id))


@bp.get("/contracts/<contract_id>")
@require(SCOPE_READ)
def get_contract(contract_id: str) -> Any:
    return jsonify(service().get(contract_id))


@bp.get("/contracts/<contract_id>/document")
@require(SCOPE_READ)
def contract_document(contract_id: str) -> Any:
    pdf, meta = service().document(contract_id)
    return _pdf(pdf, f'{meta["number"]}.pdf', meta["sha256"])


def _pdf(pdf: bytes, filename: str, sha256: str) -> Response:
    """A signed PDF as the service hands it out: inline, named, with the hash it was checked against."""
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["X-Document-SHA256"] = sha256
    return response


@bp.get("/contracts/<contract_id>/text")
@require(SCOPE_READ)
def contract_text(contract_id: str) -> Any:
    """The text the PDF was rendered from, as HTML, with its SHA-256 (which the PDF prints), sections and key
    terms: for reading the contract on a phone. 409 when the PDF prints another fingerprint or none."""
    return jsonify(service().text(contract_id))


@bp.get("/contracts/<contract_id>/pages/<int:page>")
@require(SCOPE_READ)
def contract_page(contract_id: str, page: int) -> Any:
    return Response(service().page_image(contract_id, page), mimetype="image/png")


@bp.post("/contracts/<contract_id>/signatures")
@require(SCOPE_WRITE)
def sign_contract(contract_id: str) -> Any:
    """The lessee signs (the lessor countersigns): ``{signer_name, signature_png (base64), identity:
    {method: sms_otp|face, reference, verified_at}}``. Signing a signed contract returns it (200)."""
    name, png, identity = _signing(json_object())
    return jsonify(service().sign(contract_id, signer_name=name, signature_png=png, identity=identity))


def _signing(body: dict[str, Any]) -> tuple[str, bytes, Identity]:
    """The signer's fields of a signing request (the contract's, the handover record's), checked for shape."""
    name = body.get("signer_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise Invalid("signer_name", "signer_name is required (1-64 characters)", "缺少签署人姓名")
    encoded = body.get("signature_png")
    if not isinstance(encoded, str) or not BASE64.fullmatch(encoded) or len(encoded) > MAX_SIGNATURE_BASE64:
        raise Invalid("signature_png", "signature_png must be base64 (RFC 4648, padded) of at most 2 MB",
                      "签名图片须为不超过 2 MB 的 base64 编码")
    png = base64.b64decode(encoded, validate=True)
    if not png.startswith(b"\x89PNG") or len(png) > MAX_SIGNATURE_PNG:
        raise Invalid("signature_png", "signature_png must be a PNG of at most 2 MB", "签名图片须为不超过 2 MB 的 PNG",
                      NOT_A_PNG)
    raw = body.get("identity")
    if not isinstance(raw, dict):
        raise Invalid("identity", "identity is required", "缺少身份确认信息")
    moment = raw.get("verified_at")
    if not isinstance(moment, str) or not DATE_TIME.fullmatch(moment):
        raise Invalid("identity.verified_at", "verified_at must be an RFC 3339 date-time with a time zone",
                      "确认时间须为含时区的 RFC 3339 时间")
    try:
        verified_at = datetime.fromisoformat(moment.upper().replace("Z", "+00:00"))
    except ValueError:  # a 30 February, a 25th hour
        raise Invalid("identity.verified_at", "verified_at is not a real moment", "确认时间无效") from None
    reference = raw.get("reference")
    if not isinstance(reference, str) or not 1 <= len(reference) <= 128:
        raise Invalid("identity.reference", "identity.reference is required (1-128 characters)", "缺少身份确认记录")
    return name, png, Identity(str(raw.get("method", "")), reference, verified_at)


# -- the vehicle handover record (车辆交接确认书) ------------------------------------------------------------------
@bp.post("/contracts/<contract_id>/handover")
@require(SCOPE_WRITE)
def hand_over(contract_id: str) -> Any:
    """The signed record of the car handed over (the term starts that day): 201 new; 200 the contract's existing
    record, whatever this body says (once per contract: a retry gets the first record)."""
    body = json_object()
    existing = handovers().find(contract_id)  # no such contract: 404
    if existing is not None:
        return jsonify(existing)
    record, created = handovers().hand_over(contract_id, _handover_request(body))
    response = jsonify(record)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/contracts/{record['contract_id']}/handover"
    return response


def _handover_request(body: dict[str, Any]) -> HandoverRequest:
    """The handover's fields, checked for what the OpenAPI document states (HandoverRequest)."""
    raw_day = body.get("delivered_on")
    if not isinstance(raw_day, str) or not DATE.fullmatch(raw_day):
        raise Invalid("delivered_on", "delivered_on must be a date, YYYY-MM-DD", "交车日期须为 YYYY-MM-DD 格式的日期")
    try:
        delivered_on = date.fromisoformat(raw_day)
    except ValueError:  # a 30 February
        raise Invalid("delivered_on", "delivered_on is not a real day", "交车日期无效") from None
    odometer = _whole(body, "odometer_km", 0, MAX_ODOMETER_KM, "里程表读数须为 0 至 2000000 之间的整数（公里）")
    keys = _whole(body, "keys", 1, MAX_KEYS, f"钥匙数量须为 1 至 {MAX_KEYS} 之间的整数")
    items = body.get("items")
    if (not isinstance(items, list) or not all(isinstance(i, str) and i in HANDOVER_ITEMS for i in items)
            or len(set(items)) != len(items)):
        raise Invalid("items", f"items must be distinct codes of {', '.join(HANDOVER_ITEMS)}",
                      "随车物品须为不重复的物品代码")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise Invalid("note", f"note must be text of at most {MAX_NOTE} characters", f"备注不得超过 {MAX_NOTE} 个字符")
    note = _plain_text("note", note, "备注")
    staff = body.get("handed_over_by")
    if not isinstance(staff, str) or len(staff) > MAX_HANDED_OVER_BY or not staff.strip():
        raise Invalid("handed_over_by", f"handed_over_by is required (1-{MAX_HANDED_OVER_BY} characters)",
                      "缺少交车经办人")
    staff = _plain_text("handed_over_by", staff, "交车经办人")
    vehicle = body.get("vehicle_name", "")
    if not isinstance(vehicle, str) or len(vehicle) > MAX_VEHICLE_NAME:
        raise Invalid("vehicle_name", f"vehicle_name must be text of at most {MAX_VEHICLE_NAME} characters",
                      f"品牌及车型不得超过 {MAX_VEHICLE_NAME} 个字符")
    vehicle = _plain_text("vehicle_name", vehicle, "品牌及车型")
    name, png, identity = _signing(body)
    return HandoverRequest(delivered_on, odometer, keys, tuple(items), note, staff, name, png, identity,
                           vehicle_name=vehicle)


def _whole(body: dict[str, Any], name: str, low: int, high: int, message_zh: str) -> int:
    value = body.get(name)
    if not whole_number(value) or not low <= value <= high:  # type: ignore[operator]
        raise Invalid(name, f"{name} must be a whole number from {low} to {high}", message_zh)
    return int(value)  # type: ignore[arg-type]


def _plain_text(name: str, value: str, label_zh: str) -> str:
    """Text printed on the record: its white-space runs one space, no control or format characters (which would
    hide or reorder what is printed), as the contract's own text (contract.document.model)."""
    value = " ".join(value.split())
    if not printable(value):
        raise Invalid(name, f"{name} contains control characters", f"{label_zh}含有控制字符", CONTROL_CHARACTERS)
    return value


@bp.get("/contracts/<contract_id>/handover")
@require(SCOPE_READ)
def handover_record(contract_id: str) -> Any:
    return jsonify(handovers().get(contract_id))


@bp.get("/contracts/<contract_id>/handover/document")
@require(SCOPE_READ)
def handover_document(contract_id: str) -> Any:
    pdf, meta = handovers().document(contract_id)
    return _pdf(pdf, f'{meta["contract_number"]}-handover.pdf', meta["sha256"])


# -- documents of the lease in force (结清证明, 还款计划变更确认书) ------------------------------------------------
def servicing_documents() -> ServicingDocuments:
    return current_app.extensions["contract"].servicing  # type: ignore[no-any-return]


@bp.post("/contracts/<contract_id>/servicing-documents")
@require(SCOPE_WRITE)
def issue_servicing_document(contract_id: str) -> Any:
    """A settlement certificate or a schedule annex, rendered, signed by the lessor and logged: 201 new; 200 the
    document made before for the same kind and subject with the same figures (409 with others)."""
    body = json_object()
    service().row(contract_id)  # no such contract: 404, whatever the body holds
    try:
        parsed = parse_request(body)
    except FigureError as exc:
        raise Invalid(exc.field, exc.message, exc.message_zh, exc.code) from None
    document, created = servicing_documents().issue(contract_id, parsed)
    response = jsonify(document)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/contracts/{document['contract_id']}/servicing-documents/{document['id']}"
    return response


@bp.get("/contracts/<contract_id>/servicing-documents/<document_id>")
@require(SCOPE_READ)
def servicing_document(contract_id: str, document_id: str) -> Any:
    return jsonify(servicing_documents().get(contract_id, document_id))


@bp.get("/contracts/<contract_id>/servicing-documents/<document_id>/document")
@require(SCOPE_READ)
def servicing_document_pdf(contract_id: str, document_id: str) -> Any:
    pdf, meta = servicing_documents().document(contract_id, document_id)
    return _pdf(pdf, f'{meta["contract_number"]}-{meta["kind"]}.pdf', meta["sha256"])


@bp.get("/contracts/<contract_id>/verification")
@require(SCOPE_READ)
def contract_verification(contract_id: str) -> Any:
    return jsonify(service().verification(contract_id))


@bp.post("/verification")
def verify_upload() -> Any:
    """Public: a PDF (the raw body, or a multipart ``file``) → its signatures and its place in the log."""
    upload = request.files.get("file")
    pdf = upload.read() if upload is not None else request.get_data()
    if not pdf:
        raise Invalid("file", "Upload the PDF to check", "请上传要核验的 PDF", "not_a_pdf")
    from contract.signing.errors import NotAPdf

    if not pdf.startswith(b"%PDF"):
        raise NotAPdf("not a PDF")
    return jsonify(service().verify_upload(pdf))


# -- evidence log --------------------------------------------------------------------------------------------
@bp.post("/ledger/entries")
@require(SCOPE_LEDGER)
def append_entry() -> Any:
    """Append ``{kind, subject, data}`` (no personal data: ids, hashes, amounts). ``Idempotency-Key``
    makes a retry return the first entry (200) instead of appending again (201)."""
    body = json_object()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise Invalid("Idempotency-Key", "Idempotency-Key must be 1-128 visible ASCII characters", "幂等键无效")
    item = _new_entry(body, "", key)
    try:
        (appended,) = ledger().append_many([item])
    except ValueError as exc:  # a float (money must be strings) or another value the canonical form refuses
        raise Invalid("data", str(exc)[:200], "data 含不允许的值（金额须为字符串）") from None
    response = jsonify({"index": appended.index, "leaf_hash": appended.leaf_hash.hex(),
                        "checkpoint": ledger().published().to_json()})
    response.status_code = 201 if appended.created else 200
    return response


@bp.post("/ledger/batches")
@require(SCOPE_LEDGER)
def append_batch() -> Any:
    """Append up to 100 entries ``{entries: [{kind, subject, data, idempotency_key}]}`` in one transaction,
    in order, under one signed checkpoint. All or nothing: one invalid entry refuses the batch (422, its
    position in the field name). Each answer says whether it was new or appended before (its key)."""
    body = json_object()
    raw = body.get("entries")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise Invalid("entries", f"entries must be a list of 1-{MAX_BATCH} entries", f"entries 须为 1-{MAX_BATCH} 条")
    items = []
    for position, element in enumerate(raw):
        if not isinstance(element, dict):
            raise Invalid(f"entries[{position}]", "each entry must be a JSON object", "每条须为 JSON 对象")
        key = element.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key)):
            raise Invalid(f"entries[{position}].idempotency_key", "idempotency_key must be 1-128 visible ASCII "
                                                                 "characters", "幂等键无效")
        items.append(_new_entry(element, f"entries[{position}].", key))
    try:
        appended = ledger().append_many(items)
    except ValueError as exc:
        raise Invalid("entries", str(exc)[:200], "data 含不允许的值（金额须为字符串）") from None
    return jsonify({"entries": [{"index": a.index, "leaf_hash": a.leaf_hash.hex(), "created": a.created}
                                for a in appended],
                    "checkpoint": ledger().published().to_json()})


def _new_entry(body: dict[str, Any], prefix: str, key: str | None) -> NewEntry:
    kind, subject, data = body.get("kind"), body.get("subject"), body.get("data", {})
    if not isinstance(kind, str) or kind not in KINDS:  # a list or an object is unhashable: not a kind
        raise Invalid(f"{prefix}kind", f"kind must be one of {', '.join(sorted(KINDS))}", "事件类型无效")
    if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
        raise Invalid(f"{prefix}subject", "subject must be 1-64 characters of A-Z a-z 0-9 _ . : -", "事件主体无效")
    if not isinstance(data, dict):
        raise Invalid(f"{prefix}data", "data must be a JSON object", "data 须为 JSON 对象")
    return NewEntry(kind, subject, data, None, key)


@bp.get("/ledger/checkpoint")
def checkpoint() -> Any:
    """Public: the latest signed checkpoint, with its RFC 3161 token and genTime once a TSA has stamped it."""
    return jsonify(ledger().published().to_json())


@bp.get("/ledger/entries/<int:index>")
def entry(index: int) -> Any:
    """Public: one leaf's exact bytes (a commitment; the start statement at 0) and its hash."""
    if index > MAX_INDEX:  # the database would refuse the number (an error), not answer "none"
        raise LedgerError(f"no entry {index}")
    raw, leaf = ledger().entry(index)
    return jsonify({"index": index, "entry": base64.b64encode(raw).decode(), "leaf_hash": leaf.hex()})


@bp.get("/ledger/subjects/<subject>/entries")
@require(SCOPE_LEDGER_READ)
def subject_entries(subject: str) -> Any:
    """The entries about one subject (an application): index, kind and time, oldest first (private)."""
    if not SUBJECT.fullmatch(subject):
        raise Invalid("subject", "subject must be 1-64 characters of A-Z a-z 0-9 _ . : -", "事件主体无效")
    return jsonify({"subject": subject, "entries": [{"index": i, "kind": k, "at": at}
                                                    for i, k, at in ledger().listing(subject)]})


@bp.get("/ledger/openings/<int:index>")
@require(SCOPE_LEDGER_READ)
def opening(index: int) -> Any:
    """One entry's proof bundle (its opening, leaf, audit path, checkpoint), with its kind and subject for the
    caller's access decision. ``previous_log=true``: for an entry of the first log, its proof there too, which
    the BFF asks for only for auditors and the lessor's staff (its audit path holds unsalted hashes of other
    people's entries)."""
    previous_log = single(query({"previous_log": ("true", "false")}), "previous_log") == "true"
    if index > MAX_INDEX:
        raise LedgerError(f"no entry {index}")
    opened = ledger().opened(index)
    return jsonify({"index": index, "kind": opened.kind, "subject": opened.subject,
                    "bundle": ledger().bundle(index, previous_log=previous_log).to_json()})


@bp.get("/ledger/proof/inclusion")
def inclusion() -> Any:
    index, size = _int_arg("index"), _int_arg("tree_size", 1)
    return jsonify({"index": index, "tree_size": size,
                    "audit_path": [h.hex() for h in ledger().inclusion(index, size)]})


@bp.get("/ledger/proof/consistency")
def consistency() -> Any:
    first, second = _int_arg("first", 1), _int_arg("second", 1)
    return jsonify({"first": first, "second": second,
                    "proof": [h.hex() for h in ledger().consistency(first, second)]})
