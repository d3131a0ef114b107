"""The documents the lessor issues for a signed contract's lease in force (issue 18 §5): the settlement certificate
(结清证明) of a lease settled early and the schedule annex (还款计划变更确认书) after a partial prepayment.

The BFF books the money and sends the figures (:func:`contract.document.servicing.parse_request` checks that they
reconcile); the service renders the document with the contract's own parties, number and car, signs it as the
lessor (certification, then the lessor's visible signature: the lessee signs nothing here, the BFF confirmed the
prepayment's option with them online), stores it under S3 Object Lock and logs its hash in the evidence log, as it
does the handover record (contract/handover.py). Once per kind and subject (the BFF's quote or prepayment): the same
request again returns the document it made; the same key with other figures is a 409.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from contract.db.models import ContractRow
from contract.db.models import ServicingDocumentRow
from contract.document.render import BEIJING
from contract.document.servicing import LEDGER_KINDS
from contract.document.servicing import TITLES
from contract.document.servicing import FigureError
from contract.document.servicing import ServicingData
from contract.document.servicing import ServicingRequest
from contract.document.servicing import check_dates
from contract.ledger import sha256_hex
from contract.service import LESSOR_FIELD
from contract.service import Conflict
from contract.service import ContractService
from contract.service import Invalid
from contract.service import NotFound
from contract.service import cert_hash
from contract.service import int_box
from contract.service import iso

log = logging.getLogger(__name__)
#: a claim still ``signing`` after this long was left by a request that died: signing takes seconds
STALE_CLAIM = timedelta(minutes=10)
#: the signatures' stated reasons (PDF /Reason), by kind: the certification's and the visible one's
REASONS = {kind: (f"出租人定稿认证（{title}）", f"出租人出具{title}") for kind, title in TITLES.items()}


class ServicingDocuments:
    """The servicing documents' use cases, on the contract service's stores, signing authority and evidence log."""

    def __init__(self, contracts: ContractService) -> None:
        self.contracts = contracts

    # -- reading ---------------------------------------------------------------------------------------------
    def _signed_by_key(self, kind: str, subject_id: str) -> ServicingDocumentRow | None:
        with self.contracts.db.session() as session:
            found = session.scalar(
                select(ServicingDocumentRow).where(
                    ServicingDocumentRow.kind == kind,
                    ServicingDocumentRow.subject_id == subject_id,
                    ServicingDocumentRow.status == "signed",
                )
            )
            if found is not None:
                session.expunge(found)
            return found

    def get(self, contract_id: str, document_id: str) -> dict[str, Any]:
        """The signed document of the contract; :class:`NotFound` otherwise (another contract's too)."""
        row = self.contracts.row(contract_id)
        with self.contracts.db.session() as session:
            found = session.get(ServicingDocumentRow, document_id[:32])
            if found is None or found.contract_id != row.id or found.status != "signed":
                raise NotFound("document")
            session.expunge(found)
        return self._json(row, found)

    def document(self, contract_id: str, document_id: str) -> tuple[bytes, dict[str, Any]]:
        """The signed document's PDF, refused when the stored bytes are not those its hash names."""
        meta = self.get(contract_id, document_id)
        with self.contracts.db.session() as session:
            found = session.get(ServicingDocumentRow, meta["id"])
            assert found is not None and found.key and found.version
            key, version = found.key, found.version
        pdf = self.contracts.store.get_version(key, version)
        if sha256_hex(pdf) != meta["sha256"]:  # the stored file is not what we recorded: never hand it out
            raise Conflict("tampered", "The stored document does not match its recorded hash.")
        return pdf, meta

    # -- issuing ---------------------------------------------------------------------------------------------
    def issue(self, contract_id: str, request: ServicingRequest) -> tuple[dict[str, Any], bool]:
        """Sign the document ``request`` asks for: (document, True); the same kind and subject again returns the
        document made then, (document, False), when its figures are the same (:class:`Conflict` ``subject_reused``
        otherwise, and for another contract's); one being signed right now is a 409 (``document_in_progress``)."""
        row = self.contracts.row(contract_id)
        existing = self._existing(row, request)
        if existing is not None:
            return existing, False
        if row.status != "signed" or row.signed_at is None:
            raise Conflict("not_signed", "The contract is not signed: there is no lease to issue a document for.")
        document = self.contracts.document_data(row)
        contract = self.contracts.parse({**document, "signed": True})
        now = self.contracts.clock()
        ends_on = contract.plan.ends_on
        assert ends_on is not None  # derived from the schedule when the snapshot does not state it
        try:  # days in Beijing, against the contract only (the BFF's business dates may run ahead of our clock)
            check_dates(request, signed_on=row.signed_at.astimezone(BEIJING).date(), ends_on=ends_on)
        except FigureError as exc:
            raise Invalid(exc.field, exc.message, exc.message_zh, exc.code) from None
        claim = ServicingDocumentRow(
            id=uuid.uuid4().hex,
            contract_id=row.id,
            kind=request.kind,
            subject_id=request.subject_id,
            status="signing",
            request_sha256=request.fingerprint,
            created_at=now,
        )
        try:  # the claim: one row per kind and subject, so two requests never sign two documents
            self._claim(claim, now)
        except IntegrityError:
            found = self._existing(row, request)
            if found is not None:  # signed meanwhile by the other request
                return found, False
            raise Conflict(
                "document_in_progress", "The document is being signed right now; ask again in a moment."
            ) from None
        try:
            data = ServicingData(contract=contract, request=request, issued_on=now.astimezone(BEIJING).date())
            return self._sign(row, claim.id, data), True
        except BaseException:
            with self.contracts.db.session() as session:
                session.execute(
                    delete(ServicingDocumentRow).where(
                        ServicingDocumentRow.id == claim.id, ServicingDocumentRow.status == "signing"
                    )
                )
            raise

    def _existing(self, row: ContractRow, request: ServicingRequest) -> dict[str, Any] | None:
        found = self._signed_by_key(request.kind, request.subject_id)
        if found is None:
            return None
        if found.contract_id != row.id or found.request_sha256 != request.fingerprint:
            raise Conflict(
                "subject_reused",
                f"A {request.kind} for subject {request.subject_id} was issued with "
                "other figures or for another contract.",
            )
        return self._json(row, found)

    def _claim(self, claim: ServicingDocumentRow, now: datetime) -> None:
        """Insert the claim; one left ``signing`` longer than :data:`STALE_CLAIM` is taken over."""
        with self.contracts.db.session() as session:
            session.execute(
                delete(ServicingDocumentRow).where(
                    ServicingDocumentRow.kind == claim.kind,
                    ServicingDocumentRow.subject_id == claim.subject_id,
                    ServicingDocumentRow.status == "signing",
                    ServicingDocumentRow.created_at < now - STALE_CLAIM,
                )
            )
        with self.contracts.db.session() as session:
            session.add(claim)

    def _sign(self, row: ContractRow, claim_id: str, data: ServicingData) -> dict[str, Any]:
        from contract.document.render import render_servicing
        from contract.signing.errors import SigningLayerError
        from contract.signing.pades import FieldSpec
        from contract.signing.pades import certify
        from contract.signing.pades import countersign_lessor

        contracts = self.contracts
        kind = data.request.kind
        rendered = render_servicing(data)
        box = rendered.signature_boxes["lessor"]
        lessor = contracts.authority.lessor_credential()
        certifying, issuing = REASONS[kind]
        try:
            pdf = certify(
                rendered.pdf,
                lessor,
                [FieldSpec(LESSOR_FIELD, box.page, int_box(box.box), "出租人签章")],
                timestamper=contracts.timestamper,
                reason=certifying,
            )
            pdf = countersign_lessor(
                pdf, lessor, LESSOR_FIELD, contracts.timestamper, fonts=contracts.authority.stamp_fonts, reason=issuing
            )
        except SigningLayerError as exc:  # our own document failed to sign: the service's fault, not the caller's
            raise RuntimeError(f"{kind} of contract {row.number} could not be signed: {exc}") from exc
        now = contracts.clock()
        digest = sha256_hex(pdf)
        # kept as long after the lease's last day the document speaks of as the contract is after the lease's end
        retain_until = contracts.retained_until(data.request.last_day, now)
        stored = contracts.store.put(
            f"contracts/{row.id}/{kind}-{claim_id}.pdf",
            pdf,
            "application/pdf",
            {"contract-number": row.number},
            retain_until=retain_until,
        )
        entry: dict[str, Any] = {
            "contract_id": row.id,
            "number": row.number,
            "document_id": claim_id,
            "subject_id": data.request.subject_id,
            "sha256": digest,
            "lessor_certificate_sha256": cert_hash(lessor.certificate),
        }
        if data.request.settlement is not None:
            entry.update(
                settled_on=data.request.settlement.settled_on.isoformat(),
                paid_on=data.request.settlement.paid_on.isoformat(),
                amount_due=f"{data.request.settlement.amount_due:.2f}",
            )
        if data.request.annex is not None:
            annex = data.request.annex
            entry.update(
                effective_on=annex.effective_on.isoformat(),
                prepaid=f"{annex.prepaid:.2f}",
                option=annex.option,
                rents_left=len(annex.rows),
            )
        appended = contracts.ledger.append(
            LEDGER_KINDS[kind], row.application_id, entry, idempotency_key=f"{LEDGER_KINDS[kind]}:{claim_id}:{digest}"
        )
        with contracts.db.session() as session:
            session.execute(
                update(ServicingDocumentRow)
                .where(ServicingDocumentRow.id == claim_id)
                .values(
                    status="signed",
                    key=stored.key,
                    version=stored.version_id,
                    sha256=digest,
                    ledger_index=appended.index,
                    retain_until=retain_until,
                    signed_at=now,
                )
            )
        log.info("%s of contract %s signed (%s bytes, ledger entry %s)", kind, row.number, len(pdf), appended.index)
        return self.get(row.id, claim_id)

    # -- as JSON ---------------------------------------------------------------------------------------------
    @staticmethod
    def _json(row: ContractRow, found: ServicingDocumentRow) -> dict[str, Any]:
        """The document: its kind and subject, its hash and evidence entry; no personal data, no figures."""
        return {
            "id": found.id,
            "contract_id": row.id,
            "contract_number": row.number,
            "kind": found.kind,
            "subject_id": found.subject_id,
            "sha256": found.sha256,
            "request_sha256": found.request_sha256,
            "ledger_index": found.ledger_index,
            "signed_at": iso(found.signed_at),
            "retain_until": iso(found.retain_until),
        }
