"""The signed vehicle handover record (车辆交接确认书): the day the car is handed over starts the lease's term.

The lease contract counts the term from delivery (its 第三条), but its schedule's dates were computed when it was
generated. When the dealer hands the car over, the customer confirms on a record what they received (the car
and its VIN, the odometer, the keys, the items) and the term that runs from that day with every rent dated from
it (:mod:`contract.document.handover`); the record is signed as the contract is — the lessor certifies, the
customer signs with a certificate issued for this one event after the BFF re-confirmed who they are, the lessor
countersigns —, stored under S3 Object Lock until the retention period after the lease's real end (to which the
signed contract's own lock is extended), and its hash goes into the evidence log. Once per contract: the record
stands, and asking again returns it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from contract.db.models import ContractRow
from contract.db.models import HandoverRow
from contract.document.handover import HandoverData
from contract.document.handover import handover_data
from contract.document.render import BEIJING
from contract.document.servicing_terms import servicing_terms
from contract.ledger import sha256_hex
from contract.service import Conflict
from contract.service import ContractService
from contract.service import Identity
from contract.service import Invalid
from contract.service import NotFound
from contract.service import cert_hash
from contract.service import check_identity_fresh
from contract.service import check_identity_method
from contract.service import check_lessee
from contract.service import iso
from infra.storage import StorageError

log = logging.getLogger(__name__)
#: a claim still ``signing`` after this long was left by a request that died: signing takes seconds
STALE_CLAIM = timedelta(minutes=10)
#: Field-error codes of the handover's rules no JSON Schema states (listed on the 422 of the OpenAPI document)
BEFORE_SIGNING, IN_THE_FUTURE = "before_signing", "in_the_future"
#: the signatures' reasons (PDF /Reason), naming this document rather than the contract
LESSEE_REASON = "承租人签署车辆交接确认书"
LESSOR_REASON = "出租人签署车辆交接确认书"
CERTIFY_REASON = "出租人定稿认证（车辆交接确认书）"


@dataclass(frozen=True)
class HandoverRequest:
    """What the dealer and the customer state at the handover, checked for shape by the API."""

    delivered_on: date
    odometer_km: int
    keys: int
    items: tuple[str, ...]
    note: str
    handed_over_by: str
    signer_name: str
    signature_png: bytes
    identity: Identity
    vehicle_name: str = ""  # 品牌及车型 as the dealer names the car in Chinese; "" for the contract's make and model


class HandoverService:
    """The handover record's use cases, on the contract service's stores, signing authority and evidence log."""

    def __init__(self, contracts: ContractService) -> None:
        self.contracts = contracts

    def find(self, contract_id: str) -> dict[str, Any] | None:
        """The contract's signed record, None when it has none; :class:`NotFound` when there is no contract."""
        return self._signed(self.contracts.row(contract_id))

    def _signed(self, row: ContractRow) -> dict[str, Any] | None:
        with self.contracts.db.session() as session:
            record = session.scalar(select(HandoverRow).where(HandoverRow.contract_id == row.id,
                                                              HandoverRow.status == "signed"))
            if record is None:
                return None
            session.expunge(record)
        return self._json(row, record)

    def get(self, contract_id: str) -> dict[str, Any]:
        found = self.find(contract_id)
        if found is None:
            raise NotFound("handover record")
        return found

    def document(self, contract_id: str) -> tuple[bytes, dict[str, Any]]:
        """The signed record's PDF, refused when the stored bytes are not those the record's hash names."""
        meta = self.get(contract_id)
        with self.contracts.db.session() as session:
            record = session.get(HandoverRow, meta["id"])
            assert record is not None and record.key and record.version
            key, version = record.key, record.version
        pdf = self.contracts.store.get_version(key, version)
        if sha256_hex(pdf) != meta["sha256"]:  # the stored file is not what we recorded: never hand it out
            raise Conflict("tampered", "The stored document does not match its recorded hash.")
        return pdf, meta

    # -- the handover ----------------------------------------------------------------------------------------
    def hand_over(self, contract_id: str, request: HandoverRequest) -> tuple[dict[str, Any], bool]:
        """Sign the record of the car handed over on ``request.delivered_on``: (record, True). Once per contract:
        a contract that has its record returns it, (record, False), whatever was asked; a record being signed by
        another request right now is a 409, and a failure part-way leaves no record (the claim is released)."""
        row = self.contracts.row(contract_id)
        existing = self._signed(row)
        if existing is not None:
            return existing, False
        if row.status != "signed" or row.signed_at is None:
            raise Conflict("not_signed", "The contract is not signed yet: the car is handed over after signing.")
        check_identity_method(request.identity)
        now = self.contracts.clock()
        check_identity_fresh(request.identity, now)
        document = self.contracts.document_data(row)
        check_lessee(request.signer_name, document)
        signed_on, today = row.signed_at.astimezone(BEIJING).date(), now.astimezone(BEIJING).date()
        if request.delivered_on < signed_on:
            raise Invalid("delivered_on", f"the car cannot be handed over before the contract was signed ({signed_on})",
                          f"交车日期不得早于合同签署日（{signed_on}）", BEFORE_SIGNING)
        if request.delivered_on > today:
            raise Invalid("delivered_on", f"delivered_on is after today in Beijing ({today})",
                          f"交车日期不得晚于今日（{today}）", IN_THE_FUTURE)
        data = handover_data(self.contracts.parse({**document, "signed": True}), delivered_on=request.delivered_on,
                             odometer_km=request.odometer_km, keys=request.keys, items=request.items,
                             note=request.note, handed_over_by=request.handed_over_by,
                             vehicle_name=request.vehicle_name)
        claim = HandoverRow(id=uuid.uuid4().hex, contract_id=row.id, status="signing", delivered_on=data.delivered_on,
                            ends_on=data.ends_on, odometer_km=data.odometer_km, keys=data.keys, items=list(data.items),
                            handed_over_by=data.handed_over_by, note=data.note, created_at=now)
        try:  # the claim: one row per contract, so two devices never sign two records at once
            self._claim(claim, now)
        except IntegrityError:
            found = self._signed(row)
            if found is not None:  # signed meanwhile by the other request
                return found, False
            raise Conflict("handover_in_progress", "The handover record is being signed right now; reload in a "
                                                   "moment.") from None
        try:
            return self._sign(row, claim.id, document, data, request), True
        except BaseException:
            with self.contracts.db.session() as session:
                session.execute(delete(HandoverRow).where(HandoverRow.id == claim.id,
                                                          HandoverRow.status == "signing"))
            raise

    def _claim(self, claim: HandoverRow, now: datetime) -> None:
        """Insert the claim; a claim left ``signing`` for longer than :data:`STALE_CLAIM` (a process killed mid-way,
        or a release that failed with the database) is taken over instead of refusing the contract for ever."""
        with self.contracts.db.session() as session:
            session.execute(delete(HandoverRow).where(HandoverRow.contract_id == claim.contract_id,
                                                      HandoverRow.status == "signing",
                                                      HandoverRow.created_at < now - STALE_CLAIM))
        with self.contracts.db.session() as session:
            session.add(claim)

    def _sign(self, row: ContractRow, claim_id: str, document: dict[str, Any], data: HandoverData,
              request: HandoverRequest) -> dict[str, Any]:
        from contract.document.render import render_handover

        contracts = self.contracts
        rendered = render_handover(data)
        signed = contracts.signed_by_both(rendered.pdf, rendered.signature_boxes, document,
                                          request.signer_name.strip(), request.signature_png,
                                          (CERTIFY_REASON, LESSEE_REASON, LESSOR_REASON))
        pdf = signed.pdf
        now = contracts.clock()
        digest = sha256_hex(pdf)
        # kept as long after the lease's real end as the contract (the privacy notice's "合同期满后 5 年")
        retain_until = contracts.retained_until(data.ends_on, now)
        stored = contracts.store.put(f"contracts/{row.id}/handover.pdf", pdf, "application/pdf",
                                     {"contract-number": row.number}, retain_until=retain_until)
        contract_until = self._extend_contract_lock(row, retain_until)
        appended = contracts.ledger.append("handover_signed", row.application_id, {
            "contract_id": row.id, "number": row.number, "sha256": digest,
            "starts_on": data.delivered_on.isoformat(), "ends_on": data.ends_on.isoformat(),
            "odometer_km": data.odometer_km, "lessee_certificate_sha256": cert_hash(signed.lessee_certificate),
            "lessor_certificate_sha256": cert_hash(signed.lessor_certificate), "identity": request.identity.method,
            "identity_reference": request.identity.reference, "event": signed.event,
        }, idempotency_key=f"handover_signed:{row.id}:{digest}")  # this document's entry: an attempt that failed
        # after its entry leaves that entry behind (the log is append-only), never hands its index to another PDF
        with contracts.db.transaction() as session:
            session.execute(update(HandoverRow).where(HandoverRow.id == claim_id).values(
                status="signed", key=stored.key, version=stored.version_id, sha256=digest,
                ledger_index=appended.index, retain_until=retain_until, signed_at=now))
            if contract_until is not None:
                session.execute(update(ContractRow).where(ContractRow.id == row.id).values(retain_until=contract_until))
        log.info("handover record of contract %s signed: term %s to %s (%s bytes, ledger entry %s)", row.number,
                 data.delivered_on, data.ends_on, len(pdf), appended.index)
        return self.get(row.id)

    def _extend_contract_lock(self, row: ContractRow, until: datetime) -> datetime | None:
        """Lock the signed contract until ``until`` when it is locked for less (its retention was counted from the
        lease's end as computed at generation): the new date, or None when nothing changed. A server that refuses
        (not every S3 implements PutObjectRetention) leaves the contract's lock as it was, with a warning: the
        record is signed all the same, and ops can extend the lock by hand."""
        if not row.signed_key or not row.signed_version or (row.retain_until is not None and row.retain_until >= until):
            return None
        try:
            return self.contracts.store.extend_retention(row.signed_key, row.signed_version, until)
        except StorageError as exc:
            log.warning("contract %s: its Object Lock could not be extended to %s (%s); it stays locked until %s",
                        row.number, iso(until), exc, iso(row.retain_until))
            return None

    # -- the record as JSON ------------------------------------------------------------------------------------
    def _json(self, row: ContractRow, record: HandoverRow) -> dict[str, Any]:
        """The record: its dates, what was handed over, its document's hash and log entry; no personal data (the
        schedule's amounts are the contract's, its dates counted from the handover day)."""
        data = handover_data(self.contracts.parse({**self.contracts.document_data(row), "signed": True}),
                             delivered_on=record.delivered_on, odometer_km=record.odometer_km, keys=record.keys,
                             items=list(record.items), note=record.note, handed_over_by=record.handed_over_by)
        return {
            "id": record.id, "contract_id": row.id, "contract_number": row.number,
            "starts_on": record.delivered_on.isoformat(), "ends_on": record.ends_on.isoformat(),
            "dated_from": data.dated_from,
            "odometer_km": record.odometer_km, "keys": record.keys, "items": list(record.items),
            "handed_over_by": record.handed_over_by, "sha256": record.sha256, "signed_at": iso(record.signed_at),
            "retain_until": iso(record.retain_until), "ledger_index": record.ledger_index,
            "schedule": [{"period": r.period, "due_date": r.due_date.isoformat(), "payment": f"{r.payment:.2f}"}
                         for r in data.schedule],
            "final_rent": {"due_date": data.ends_on.isoformat(), "amount": f"{data.final_rent:.2f}"}
            if data.final_rent is not None else None,
            # the terms the lease is serviced by, as this contract states them (issue 18 §0)
            "servicing": servicing_terms(data.contract),
        }
