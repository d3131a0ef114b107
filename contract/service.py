"""The contract service's use cases: generate a contract, show it, sign it, verify it; the evidence log beside.

Generation renders the draft (watermark 草稿 / DRAFT) from the approved application's snapshot and logs its
hash. Signing renders the final text (the same figures, no DRAFT mark), then in three incremental
revisions: the lessor's certification signature (DocMDP: only the prepared signature fields may be filled
later), the customer's signature with a key and certificate issued for this one signing event after the BFF
re-confirmed who they are, and the lessor's countersignature (PAdES B-T when a time-stamping authority is
configured). The signed PDF is stored under S3 Object Lock (compliance mode) for the retention period and
its hash goes into the evidence log, so a changed byte is caught by the signature check and a swapped file
by the log. Domain errors (:class:`NotFound`, :class:`Conflict`, :class:`Invalid`) map to HTTP in
:mod:`contract.errors`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import tomllib
import uuid
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from contract.db.models import ContractRow
from contract.db.models import HandoverRow
from contract.db.models import ServicingDocumentRow
from contract.db.models import SignatureRow
from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import BEIJING
from contract.document.render import SignatureBox
from contract.evidence import EvidenceLog
from contract.ledger import sha256_hex
from contract.signing.ca import SigningAuthority
from contract.signing.errors import SigningLayerError
from contract.signing.pades import CERTIFY_REASON
from contract.signing.pades import LESSEE_REASON
from contract.signing.pades import LESSOR_REASON
from contract.signing.pades import FieldSpec
from contract.signing.pades import certify
from contract.signing.pades import countersign_lessor
from contract.signing.pades import sign_lessee
from contract.signing.verify import SignatureReport
from contract.signing.verify import verify_pdf
from infra.db.engine import Database
from infra.jobs import JobQueue
from infra.pii import PiiVault
from infra.storage import S3ObjectStore
from infra.storage import StorageError
from kyc.masking import mask_name

log = logging.getLogger(__name__)
LESSOR = Path(__file__).with_name("lessor.toml")
LESSEE_FIELD, LESSOR_FIELD = "lessee", "lessor"
IDENTITY_METHODS = ("sms_otp", "face")


class NotFound(LookupError):
    """No such contract."""


class Conflict(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


MAX_SIGNATURE_PNG = 2 * 1024 * 1024
MAX_SIGNATURE_BASE64 = (MAX_SIGNATURE_PNG + 2) // 3 * 4
#: padded base64 (RFC 4648 §4), what base64.b64decode(validate=True) takes; stated as such in the document
BASE64_PATTERN = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
#: RFC 3339 §5.6 date-time (what the document's format date-time means), with its time zone
DATE_TIME_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                     r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
#: Field-error codes of signing rules no JSON Schema states (listed on the 422 of the OpenAPI document)
STALE_IDENTITY, NOT_THE_LESSEE, NOT_A_PNG = "stale_identity", "not_the_lessee", "not_a_png"


class Invalid(ValueError):
    """Input the service cannot use; ``field`` names it (problem+json field errors)."""

    def __init__(self, field: str, message: str, message_zh: str = "", code: str = "invalid") -> None:
        super().__init__(message)
        self.field, self.message, self.message_zh, self.code = field, message, message_zh or message, code


def lessor_party(path: Path = LESSOR) -> dict[str, str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {"name": str(data["name"]), "credit_code": str(data["credit_code"]), "address": str(data["address"]),
            "service_phone": str(data["service_phone"]), "service_email": str(data["service_email"])}


@dataclass(frozen=True)
class Identity:
    """How the BFF re-confirmed the signer right before signing (a one-time code or a face re-check)."""

    method: str
    reference: str  # the BFF's record of the check (an id or a hash), never the code or the photo
    verified_at: datetime

    def as_dict(self) -> dict[str, str]:
        return {"method": self.method, "reference": self.reference, "verified_at": iso(self.verified_at)}


def check_identity_method(identity: Identity) -> None:
    """How the BFF re-confirmed the signer must be one we accept (:data:`IDENTITY_METHODS`)."""
    if identity.method not in IDENTITY_METHODS:
        raise Invalid("identity.method", f"identity.method must be one of {', '.join(IDENTITY_METHODS)}",
                      "身份确认方式无效")


def check_identity_fresh(identity: Identity, now: datetime) -> None:
    """The re-confirmation is at most 10 minutes old: a signature follows the check it rests on at once."""
    if now - identity.verified_at > timedelta(minutes=10):
        raise Invalid("identity.verified_at", "the identity check is older than 10 minutes: confirm again",
                      "身份确认已超过 10 分钟，请重新确认", STALE_IDENTITY)


def check_lessee(signer_name: str, document: Mapping[str, Any]) -> None:
    """Only the lessee the contract names signs for the lessee (the contract, and its handover record)."""
    if signer_name.strip() != document["lessee"]["name"]:
        raise Invalid("signer_name", "the signer is not the lessee named in the contract",
                      "签署人与合同承租人不一致", NOT_THE_LESSEE)


def iso(value: datetime | None) -> str | None:
    """An aware time as the API writes it: RFC 3339 in UTC with a ``Z``; None stays None."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


#: the stated reasons of a contract's three signatures (the signing layer's own)
SIGNING_REASONS = (CERTIFY_REASON, LESSEE_REASON, LESSOR_REASON)


@dataclass(frozen=True)
class SignedDocument:
    """A document signed by the lessor (certification), the lessee and the lessor again (:meth:`signed_by_both`)."""

    pdf: bytes
    lessor_certificate: Any  # cryptography x509.Certificate
    lessee_certificate: Any
    lessor_name: str  # the lessor certificate's common name
    event: str  # the signing event the lessee's one-time certificate was issued for


#: the service's one queue (contract/worker.py)
QUEUE = "documents"


class ContractService:
    def __init__(self, db: Database, store: S3ObjectStore, authority: SigningAuthority, ledger: EvidenceLog,
                 vault: PiiVault, *, retention_years: int, timestamper: Any = None, tsa_roots: Sequence[Any] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), jobs: JobQueue | None = None) -> None:
        self.db, self.store, self.authority, self.ledger, self.vault = db, store, authority, ledger, vault
        self.retention = timedelta(days=round(365.25 * retention_years))
        self.timestamper, self.clock, self.tsa_roots = timestamper, clock, list(tsa_roots)
        self.lessor = lessor_party()
        self._pages: OrderedDict[str, list[bytes]] = OrderedDict()  # a few contracts' page images
        self._pages_lock = threading.Lock()
        #: the text fingerprint each recent PDF prints, by the PDF's hash (also under _pages_lock)
        self._fingerprints: OrderedDict[str, str | None] = OrderedDict()
        #: one lock per document being rasterised: requests for its other pages wait for that one run
        self._rasterising: dict[str, threading.Lock] = {}
        #: the service's job queue: each new contract's final text is rendered ahead of signing by a job
        #: (contract/worker.py), deferred with the contract; signing then only signs. None: signing renders it.
        self.jobs = jobs

    # -- generation ------------------------------------------------------------------------------------------
    def create(self, snapshot: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """A contract (draft) for an approved application; the same application again returns it. The snapshot
        is checked first, so that a malformed one is refused even for an application that has its contract."""
        application_id, dealer_id = snapshot.get("application_id"), snapshot.get("dealer_id")
        if not isinstance(application_id, str) or not 1 <= len(application_id) <= 64:
            raise Invalid("application_id", "application_id is required (1-64 characters)", "缺少申请编号")
        if not isinstance(dealer_id, str) or not 1 <= len(dealer_id) <= 64:
            raise Invalid("dealer_id", "dealer_id is required (1-64 characters)", "缺少经销商编号")
        now = self.clock()
        number = f"LL{now.astimezone(UTC):%Y%m%d}{secrets.token_hex(3).upper()}"
        document = {**{k: v for k, v in snapshot.items() if k not in ("application_id", "dealer_id")},
                     "number": number, "generated_at": iso(now), "signed": False, "lessor": self.lessor}
        data = self.parse(document)
        existing = self._by_application(application_id)
        if existing is not None:
            return existing, False
        contract_id = uuid.uuid4().hex
        from contract.document.render import render
        from contract.document.render import render_text
        from contract.document.render import text_sha256

        rendered = render(data)
        draft_key = f"contracts/{contract_id}/draft.pdf"
        self.store.put(draft_key, rendered.pdf, "application/pdf", {"contract-number": number})
        digest = sha256_hex(rendered.pdf)
        # the text the draft prints the fingerprint of, kept as it is: the reading copy and the words to sign
        text = render_text(data)
        text_key, text_digest = f"contracts/{contract_id}/text.html", text_sha256(text)
        self.store.put(text_key, text.encode("utf-8"), "text/html; charset=utf-8", {"contract-number": number})
        row = ContractRow(id=contract_id, number=number, application_id=application_id, dealer_id=dealer_id,
                          status="draft", snapshot_enc=self.vault.encrypt(json.dumps(document, ensure_ascii=False),
                                                                          f"contract:{contract_id}"),
                          lessee_masked=mask_name(data.lessee.name), draft_key=draft_key, draft_sha256=digest,
                          pages=rendered.pages, text_key=text_key, text_sha256=text_digest, created_at=now)
        try:
            # the contract and the job that renders its final text commit together
            with self.db.transaction(), self.db.session() as session:
                session.add(row)
                session.flush()
                if self.jobs is not None:
                    self.jobs.defer("contract.prepare_final", {"contract_id": contract_id}, queue=QUEUE,
                                    lock=f"contract:{contract_id}")
        except IntegrityError:  # the same application at the same moment: the other request's contract stands
            found = self._by_application(application_id)
            if found is None:
                raise
            return found, False
        self.ledger.append("contract_generated", application_id, {
            "contract_id": contract_id, "number": number, "draft_sha256": digest, "pages": rendered.pages,
            "text_sha256": text_digest},
            idempotency_key=f"contract_generated:{contract_id}")
        log.info("contract %s generated for application %s (%s pages)", number, application_id, rendered.pages)
        return self.get(contract_id), True

    def prepare_final(self, contract_id: str) -> bool:
        """Render the final text of a draft now and keep it (object storage, its hash and signature boxes in the
        row), so that signing need not render. False when there is nothing to do."""
        row = self.row(contract_id)
        if row.status != "draft" or row.final_key:
            return False
        from contract.document.render import render
        from contract.document.render import render_text
        from contract.document.render import text_sha256

        data = self.parse({**self.document_data(row), "signed": True})
        if row.text_sha256 and text_sha256(render_text(data)) != row.text_sha256:
            # not kept: signing renders it again and refuses it (text_changed) with the customer there to be told
            log.error("final text of %s is not the text of its draft: not rendered ahead", row.number)
            return False
        rendered = render(data)
        key = f"contracts/{row.id}/final-unsigned.pdf"
        self.store.put(key, rendered.pdf, "application/pdf", {"contract-number": row.number})
        boxes = {role: [b.page, b.x1, b.y1, b.x2, b.y2] for role, b in rendered.signature_boxes.items()}
        with self.db.session() as session:
            session.execute(update(ContractRow).where(ContractRow.id == row.id, ContractRow.final_key.is_(None))
                            .values(final_key=key, final_sha256=sha256_hex(rendered.pdf), final_boxes=boxes))
        return True

    def _final_text(self, row: ContractRow,
                    document: dict[str, Any]) -> tuple[bytes, dict[str, SignatureBox], str | None]:
        """The final text to sign, its signature boxes and the text fingerprint it prints; :class:`Conflict`
        ``text_changed`` when that is not the draft's, the words the customer read (the template or its filters
        changed since the draft was generated)."""
        from contract.document.render import stated_text_sha256

        pdf, boxes = self._final_pdf(row, document)
        printed = stated_text_sha256(pdf)
        if row.text_sha256 and printed != row.text_sha256:
            log.error("final text of %s prints %s, its draft %s: not signed", row.number, printed, row.text_sha256)
            raise Conflict("text_changed", "The final text is not the text of the draft the customer read (the "
                                           "contract's template changed since): it cannot be signed as it is.")
        return pdf, boxes, printed

    def _final_pdf(self, row: ContractRow, document: dict[str, Any]) -> tuple[bytes, dict[str, SignatureBox]]:
        """The final text's PDF and its signature boxes: the one rendered ahead when it is intact, else now."""
        if row.final_key and row.final_sha256 and row.final_boxes:
            try:
                pdf = self.store.get(row.final_key)
            except StorageError as exc:
                log.warning("final text of %s unreadable (%s): rendering it again", row.number, exc)
            else:
                if sha256_hex(pdf) == row.final_sha256:
                    return pdf, {role: SignatureBox(int(v[0]), *map(float, v[1:]))
                                 for role, v in row.final_boxes.items()}
                log.error("final text of %s does not match its recorded hash: rendering it again", row.number)
        from contract.document.render import render

        rendered = render(self.parse({**document, "signed": True}))
        return rendered.pdf, rendered.signature_boxes

    @staticmethod
    def parse(document: Mapping[str, Any]) -> Any:
        """The contract's data from its document (snapshot); a malformed one is :class:`Invalid`."""
        try:
            return from_snapshot(document)
        except ContractDataError as exc:
            raise Invalid(exc.field, exc.message, f"合同数据有误：{exc.field}", exc.code) from None

    def _by_application(self, application_id: str) -> dict[str, Any] | None:
        with self.db.session() as session:
            row = session.scalar(select(ContractRow).where(ContractRow.application_id == application_id))
            return self._json(row) if row is not None else None

    def row(self, contract_id: str) -> ContractRow:
        """The contract's row, detached; :class:`NotFound` when there is none."""
        with self.db.session() as session:
            row = session.get(ContractRow, contract_id[:32])
            if row is None:
                raise NotFound("contract")
            session.expunge(row)
            return row

    def document_data(self, row: ContractRow) -> dict[str, Any]:
        """The contract's document as generated (snapshot, number, lessor), decrypted."""
        return json.loads(self.vault.decrypt(row.snapshot_enc, f"contract:{row.id}"))  # type: ignore[no-any-return]

    def get(self, contract_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(ContractRow, contract_id[:32])
            if row is None:
                raise NotFound("contract")
            return self._json(row)

    def find(self, application_id: str) -> dict[str, Any]:
        found = self._by_application(application_id)
        if found is None:
            raise NotFound("contract")
        return found

    def _json(self, row: ContractRow) -> dict[str, Any]:
        return {
            "id": row.id, "number": row.number, "application_id": row.application_id, "dealer_id": row.dealer_id,
            "status": row.status, "lessee": row.lessee_masked, "pages": row.pages,
            "sha256": row.signed_sha256 or row.draft_sha256, "draft_sha256": row.draft_sha256,
            "signed_sha256": row.signed_sha256, "retain_until": iso(row.retain_until),
            "created_at": iso(row.created_at), "signed_at": iso(row.signed_at),
            "signatures": [{"role": s.role, "signer": s.signer, "certificate_serial": s.certificate_serial,
                            "certificate_sha256": s.certificate_sha256, "identity": s.identity,
                            "ledger_index": s.ledger_index, "signed_at": iso(s.signed_at)} for s in row.signatures],
            "ledger": [{"index": i, "kind": k} for i, k, _ in self.ledger.listing(row.application_id)],
        }

    # -- reading -----------------------------------------------------------------------------------------------
    def document(self, contract_id: str) -> tuple[bytes, dict[str, Any]]:
        """The current PDF (signed if signed, else the draft) and the contract's metadata."""
        row = self.row(contract_id)
        if row.status == "signed" and row.signed_key and row.signed_version:
            pdf = self.store.get_version(row.signed_key, row.signed_version)
            expected = row.signed_sha256
        else:
            pdf, expected = self.store.get(row.draft_key), row.draft_sha256
        if sha256_hex(pdf) != expected:  # the stored file is not what we recorded: never hand it out
            raise Conflict("tampered", "The stored document does not match its recorded hash.")
        return pdf, self.get(contract_id)

    def text(self, contract_id: str) -> dict[str, Any]:
        """The contract's text as HTML for reading on a phone (issue 17 §2), with its fingerprint, its sections and
        its key terms. The text is the one stored when the contract was generated (never rendered again, which a
        new template would change), handed out only when its bytes are the ones recorded and the current PDF (the
        draft, or the signed contract) prints their fingerprint. A contract generated before the stored text has
        none (409 ``no_text``): its PDF remains."""
        from contract.document.reading import key_terms
        from contract.document.reading import sections

        row = self.row(contract_id)
        if not row.text_key or not row.text_sha256:
            raise Conflict("no_text", "This contract was generated before its text was kept for reading: read its "
                                      "PDF.")
        stored = self.store.get(row.text_key)
        if sha256_hex(stored) != row.text_sha256:
            raise Conflict("tampered", "The stored text does not match its recorded hash.")
        document_sha256, stated = self._stated_fingerprint(contract_id)
        if stated != row.text_sha256:
            raise Conflict("text_differs", "This contract's PDF does not state the fingerprint of its stored text: "
                                           "read the PDF itself.")
        html = stored.decode("utf-8")
        return {"contract_id": row.id, "number": row.number, "status": row.status, "sha256": row.text_sha256,
                "document_sha256": document_sha256, "html": html, "sections": sections(html),
                "terms": key_terms(self.parse(self.document_data(row)))}

    def _stated_fingerprint(self, contract_id: str) -> tuple[str, str | None]:
        """The current PDF's hash and the text fingerprint it prints (pdftotext), remembered by the PDF's hash for a
        few documents, so that reading the text again fetches and reads no PDF."""
        current = self.get(contract_id)["sha256"]
        with self._pages_lock:
            if current in self._fingerprints:
                return current, self._fingerprints[current]
        from contract.document.render import stated_text_sha256

        pdf, meta = self.document(contract_id)  # checked against its recorded hash
        stated = stated_text_sha256(pdf)
        with self._pages_lock:
            self._fingerprints[meta["sha256"]] = stated
            while len(self._fingerprints) > 64:
                self._fingerprints.popitem(last=False)
        return meta["sha256"], stated

    def page_image(self, contract_id: str, page: int) -> bytes:
        """Page ``page`` (1-based) of the current document as a PNG for the phone's review screen."""
        pdf, meta = self.document(contract_id)
        if not 1 <= page <= meta["pages"]:
            raise NotFound("page")
        cache_key = meta["sha256"]
        with self._pages_lock:
            images = self._pages.get(cache_key)
            running = None if images is not None else self._rasterising.setdefault(cache_key, threading.Lock())
        if running is not None:
            # A phone asks for several pages at once: one request rasterises the document, the others wait for
            # it instead of each running pdftoppm on the whole document again (on a busy machine that made the
            # BFF's read time out: a broken page on the phone).
            try:
                with running:
                    with self._pages_lock:
                        images = self._pages.get(cache_key)
                    if images is None:
                        from contract.document.render import page_images

                        images = page_images(pdf)
                        with self._pages_lock:
                            self._pages[cache_key] = images
                            while len(self._pages) > 8:
                                self._pages.popitem(last=False)
            finally:
                with self._pages_lock:
                    self._rasterising.pop(cache_key, None)
        assert images is not None
        return images[page - 1]

    # -- signing -----------------------------------------------------------------------------------------------
    def sign(self, contract_id: str, *, signer_name: str, signature_png: bytes, identity: Identity) -> dict[str, Any]:
        """Sign the contract as the lessee (then the lessor countersigns). Once: a signed contract is returned
        as it is; a signing already running elsewhere is a 409."""
        check_identity_method(identity)
        row = self.row(contract_id)  # no such contract: 404, whatever the request holds
        check_identity_fresh(identity, self.clock())
        if row.status == "signed":
            return self.get(contract_id)
        document = self.document_data(row)
        check_lessee(signer_name, document)
        with self.db.session() as session:  # claim: draft → signing, so two devices never sign at once
            claimed = session.execute(update(ContractRow).where(ContractRow.id == row.id,
                                                                ContractRow.status == "draft")
                                      .values(status="signing")).rowcount
        if not claimed:
            raise Conflict("signing_in_progress", "The contract is being signed right now; reload in a moment.")
        try:
            return self._sign(row, document, signer_name.strip(), signature_png, identity)
        except BaseException:
            with self.db.session() as session:
                session.execute(update(ContractRow).where(ContractRow.id == row.id, ContractRow.status == "signing")
                                .values(status="draft"))
            raise

    def retain_until(self, document: dict[str, Any], now: datetime) -> datetime:
        """Until when the signed PDF cannot be deleted (S3 Object Lock): the retention period counted from the
        lease's end (租赁期届满日, the end of that day in Beijing), as the privacy notice promises ("签约的，合同期满后
        5 年": bff/applications/consent.toml) — not from the signature, which for a 60-month lease ran out at
        the term's end; never before ``now`` + the period."""
        ends_on = self.parse(document).plan.ends_on
        assert ends_on is not None  # derived from the schedule when the snapshot does not state it
        return self.retained_until(ends_on, now)

    def retained_until(self, ends_on: date, now: datetime) -> datetime:
        """The retention period counted from the end of ``ends_on`` in Beijing (the lease's last day), never
        before ``now`` + the period: :meth:`retain_until` for the contract, the handover record's real end too."""
        lease_end = datetime.combine(ends_on + timedelta(days=1), datetime.min.time(), BEIJING).astimezone(UTC)
        return max(now, lease_end) + self.retention

    def signed_by_both(self, text: bytes, boxes: Mapping[str, SignatureBox], document: Mapping[str, Any],
                       name: str, png: bytes, reasons: tuple[str, str, str] = SIGNING_REASONS) -> SignedDocument:
        """``text`` signed in three revisions, as every document the lessee signs here (the contract, its handover
        record): the lessor's certification (DocMDP: only the prepared fields may be filled later), the lessee's
        signature with a key and certificate issued for this one event, the lessor's countersignature, each with
        its stated reason (``reasons``: certification, lessee, lessor). A signature drawing that cannot be stamped
        is :class:`Invalid` (``not_a_png``)."""
        fields = [FieldSpec(LESSEE_FIELD, boxes["lessee"].page, int_box(boxes["lessee"].box), "承租人签名"),
                  FieldSpec(LESSOR_FIELD, boxes["lessor"].page, int_box(boxes["lessor"].box), "出租人签章")]
        lessor = self.authority.lessor_credential()
        id_hash = self.vault.lookup_hash(document["lessee"]["id_number"], "id_number")[:32]
        event = uuid.uuid4().hex
        certifying, lessee_signing, lessor_signing = reasons
        try:
            pdf = certify(text, lessor, fields, timestamper=self.timestamper, reason=certifying)
            # the customer's key is made now, used for this one signature and dropped with this frame
            credential = self.authority.issue_event_certificate(name, id_hash, event)
            pdf = sign_lessee(pdf, credential, LESSEE_FIELD, png, name, self.timestamper,
                              fonts=self.authority.stamp_fonts, reason=lessee_signing)
            pdf = countersign_lessor(pdf, lessor, LESSOR_FIELD, self.timestamper, fonts=self.authority.stamp_fonts,
                                     reason=lessor_signing)
        except SigningLayerError as exc:
            raise Invalid("signature_png", str(exc)[:200], "签名图片无法使用，请重新签名", NOT_A_PNG) from None
        return SignedDocument(pdf, lessor.certificate, credential.certificate, lessor.common_name, event)

    def _sign(self, row: ContractRow, document: dict[str, Any], name: str, png: bytes,
              identity: Identity) -> dict[str, Any]:
        text, boxes, text_digest = self._final_text(row, document)
        signed = self.signed_by_both(text, boxes, document, name, png)
        pdf, event = signed.pdf, signed.event
        now = self.clock()
        digest = sha256_hex(pdf)
        retain_until = self.retain_until(document, now)
        stored = self.store.put(f"contracts/{row.id}/signed.pdf", pdf, "application/pdf",
                                {"contract-number": row.number}, retain_until=retain_until)
        certs = {"lessor": signed.lessor_certificate, "lessee": signed.lessee_certificate}
        appended = self.ledger.append("contract_signed", row.application_id, {
            "contract_id": row.id, "number": row.number, "sha256": digest, "draft_sha256": row.draft_sha256,
            "lessee_certificate_sha256": cert_hash(certs["lessee"]),
            "lessor_certificate_sha256": cert_hash(certs["lessor"]), "identity": identity.method,
            "identity_reference": identity.reference, "event": event,
            # the text read (the draft's) and the text signed (the final's): the same, or there is no signature
            "text_sha256": row.text_sha256, "final_text_sha256": text_digest,
        }, idempotency_key=f"contract_signed:{row.id}")
        with self.db.session() as session:
            current = session.get(ContractRow, row.id, with_for_update=True)
            assert current is not None
            current.status, current.signed_at, current.retain_until = "signed", now, retain_until
            current.signed_key, current.signed_version, current.signed_sha256 = stored.key, stored.version_id, digest
            for role, cert, signer, ident in (
                    ("lessor_certification", certs["lessor"], signed.lessor_name, {}),
                    ("lessee", certs["lessee"], mask_name(name), identity.as_dict()),
                    ("lessor", certs["lessor"], signed.lessor_name, {})):
                session.add(SignatureRow(contract_id=row.id, role=role, signer=signer,
                                         certificate_serial=format(cert.serial_number, "x")[:64],
                                         certificate_sha256=cert_hash(cert), identity=ident,
                                         ledger_index=appended.index, signed_at=now))
        log.info("contract %s signed (%s bytes, ledger entry %s)", row.number, len(pdf), appended.index)
        return self.get(row.id)

    # -- verification ----------------------------------------------------------------------------------------
    def reports(self, pdf: bytes) -> list[SignatureReport]:
        roots = self.authority.trust_roots()
        return verify_pdf(pdf, roots, tsa_roots=[*roots, *self.tsa_roots])

    def verification(self, contract_id: str) -> dict[str, Any]:
        """Each signature's validation and the contract's inclusion proof in the evidence log."""
        pdf, meta = self.document(contract_id)
        return self._verdict(pdf, meta)

    def verify_upload(self, pdf: bytes) -> dict[str, Any]:
        """Anyone's PDF: its signatures, and whether it is a contract, a handover record or a document of the lease
        in force (a settlement certificate 结清证明, a schedule annex) we signed (by its hash, in the log); for the
        others, ``contract`` is the contract it belongs to."""
        digest = sha256_hex(pdf)
        handover: dict[str, Any] | None = None
        servicing: dict[str, Any] | None = None
        with self.db.session() as session:
            row = session.scalar(select(ContractRow).where(ContractRow.signed_sha256 == digest))
            if row is None:
                record = session.scalar(select(HandoverRow).where(HandoverRow.sha256 == digest,
                                                                  HandoverRow.status == "signed"))
                if record is not None:
                    row = session.get(ContractRow, record.contract_id)
                    handover = {"id": record.id, "contract_id": record.contract_id,
                                "starts_on": record.delivered_on.isoformat(), "ends_on": record.ends_on.isoformat(),
                                "signed_at": iso(record.signed_at), "ledger_index": record.ledger_index}
            if row is None:
                issued = session.scalar(select(ServicingDocumentRow).where(
                    ServicingDocumentRow.sha256 == digest, ServicingDocumentRow.status == "signed"))
                if issued is not None:
                    row = session.get(ContractRow, issued.contract_id)
                    servicing = {"id": issued.id, "kind": issued.kind, "contract_id": issued.contract_id,
                                 "signed_at": iso(issued.signed_at), "ledger_index": issued.ledger_index}
            meta = self._json(row) if row is not None else None
        return self._verdict(pdf, meta, handover, servicing)

    def _verdict(self, pdf: bytes, meta: dict[str, Any] | None, handover: dict[str, Any] | None = None,
                 servicing: dict[str, Any] | None = None) -> dict[str, Any]:
        from contract.signing.errors import NoSignatures

        try:
            reports = self.reports(pdf)
        except NoSignatures:
            reports = []
        signatures = [_report_json(r) for r in reports]
        ledger: dict[str, Any] | None
        own = handover or servicing
        if own is not None and own["ledger_index"] is not None:  # the document's own entry
            ledger = self.ledger.bundle(own["ledger_index"], previous_log=False).to_json()
        else:
            ledger = self._proof(meta) if meta else None
        return {
            "sha256": sha256_hex(pdf), "contract": {k: meta[k] for k in ("id", "number", "status", "signed_at")}
            if meta else None, "signatures": signatures,
            "all_valid": bool(signatures) and all(s["bottom_line"] for s in signatures), "ledger": ledger,
            # which of our documents the file is: the contract, its handover record (车辆交接确认书), or a document
            # of the lease in force (settlement_certificate, schedule_annex)
            "document": None if meta is None else "handover" if handover is not None
            else servicing["kind"] if servicing is not None else "contract",
            "handover": handover, "servicing_document": servicing,
        }

    def _proof(self, meta: dict[str, Any]) -> dict[str, Any] | None:
        """The proof bundle of the contract's latest document entry (signed, else generated), opening included:
        only a caller who holds the signed PDF itself (or a service token) gets here. The entry records that
        file's hash, number and certificates, which the holder has, and the ids behind them (application,
        contract, signing event, the BFF's identity-check reference), which name nobody. Without the first log's
        proof: its audit path holds unsalted hashes of other people's entries (contract.legacy_log)."""
        signed = [e["index"] for e in meta["ledger"] if e["kind"] == "contract_signed"]
        generated = [e["index"] for e in meta["ledger"] if e["kind"] == "contract_generated"]
        index = (signed or generated or [None])[-1]
        if index is None:
            return None
        return self.ledger.bundle(index, previous_log=False).to_json()


def int_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """A signature box in whole PDF points, as a signature field takes it."""
    x1, y1, x2, y2 = box
    return round(x1), round(y1), round(x2), round(y2)


def cert_hash(cert: Any) -> str:
    """The SHA-256 of a certificate's DER bytes, as the evidence log records a signer's certificate."""
    from cryptography.hazmat.primitives import serialization

    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _report_json(r: SignatureReport) -> dict[str, Any]:
    return {"field": r.field_name, "kind": r.kind, "signer": r.signer_common_name, "signing_time": iso(r.signing_time),
            "timestamp_time": iso(r.timestamp_time), "tsa": r.tsa, "intact": r.intact, "valid": r.valid,
            "trusted": r.trusted, "bottom_line": r.bottom_line, "coverage": r.coverage,
            "modification_level": r.modification_level, "docmdp_ok": r.docmdp_ok, "certified": r.certified,
            "problems": list(r.problems), "summary_en": r.summary_en, "summary_zh": r.summary_zh}
