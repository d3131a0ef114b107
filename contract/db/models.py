"""The contract service's tables (SQLAlchemy 2 typed models). Schema changes go through its Alembic migrations.

Every table is prefixed ``contract_`` and the migration history lives in ``contract_alembic_version``, so the
service can share a PostgreSQL database with the BFF and the risk service (or use its own).
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Date
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Identity
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from infra.db.models import NAMING
from infra.db.models import UTCDateTime


class ContractBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ContractRow(ContractBase):
    """One lease contract of one approved application. The snapshot (names, ID number) is encrypted with the
    PII vault; the documents live in object storage (a draft, then the signed version under Object Lock)."""

    __tablename__ = "contract_contracts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    application_id: Mapped[str] = mapped_column(String(64), unique=True)
    dealer_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # draft | signed
    snapshot_enc: Mapped[str] = mapped_column(Text)
    lessee_masked: Mapped[str] = mapped_column(String(64))
    draft_key: Mapped[str] = mapped_column(String(255))
    draft_sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int] = mapped_column(Integer)
    #: the final text (no DRAFT watermark), rendered ahead so that signing only signs; its signature boxes
    final_key: Mapped[str | None] = mapped_column(String(255))
    final_sha256: Mapped[str | None] = mapped_column(String(64))
    final_boxes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: the text read on the phone, stored as generated (object storage) and its SHA-256, which the PDFs print;
    #: None for a contract generated before (migration 0008)
    text_key: Mapped[str | None] = mapped_column(String(255))
    text_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_key: Mapped[str | None] = mapped_column(String(255))
    signed_version: Mapped[str | None] = mapped_column(String(255))
    signed_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    signatures: Mapped[list[SignatureRow]] = relationship(back_populates="contract", lazy="selectin",
                                                          order_by="SignatureRow.id")


class SignatureRow(ContractBase):
    """One signature applied to a contract: who, with which certificate, on what identity evidence."""

    __tablename__ = "contract_signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contract_contracts.id"), index=True)
    role: Mapped[str] = mapped_column(String(24))  # lessor_certification | lessee | lessor
    signer: Mapped[str] = mapped_column(String(128))  # masked for the lessee
    certificate_serial: Mapped[str] = mapped_column(String(64))
    certificate_sha256: Mapped[str] = mapped_column(String(64))
    identity: Mapped[dict[str, Any]] = mapped_column(JSON)  # how the signer re-confirmed who they are
    ledger_index: Mapped[int | None] = mapped_column(Integer)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    contract: Mapped[ContractRow] = relationship(back_populates="signatures")


class HandoverRow(ContractBase):
    """The signed vehicle handover record (车辆交接确认书) of one signed contract, at most one: the handover day is
    the start of the lease's term (起租日). ``signing`` is the claim one request holds while it renders and signs
    (a failure deletes it); ``signed`` the record, its PDF in object storage under Object Lock until
    ``retain_until``. Personal data here: the dealer's staff member's name (as the record prints it) and the
    dealer's free-text note; the lessee's name and ID number are only in the signed PDF (and the encrypted
    snapshot of the contract)."""

    __tablename__ = "contract_handovers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contract_contracts.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # signing | signed
    delivered_on: Mapped[date] = mapped_column(Date)  # the handover day in Beijing = 起租日
    ends_on: Mapped[date] = mapped_column(Date)  # 租赁期届满日, counted from delivered_on
    odometer_km: Mapped[int] = mapped_column(Integer)
    keys: Mapped[int] = mapped_column(Integer)
    items: Mapped[list[str]] = mapped_column(JSON)  # codes of contract.document.handover.HANDOVER_ITEMS
    handed_over_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(500))
    key: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    ledger_index: Mapped[int | None] = mapped_column(Integer)
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServicingDocumentRow(ContractBase):
    """A document the lessor issues for a signed contract's lease in force (issue 18 §5;
    contract/servicing_documents.py): ``kind`` settlement_certificate (结清证明) or schedule_annex
    (还款计划变更确认书), once per kind and ``subject_id`` (the BFF's paid settlement quote or applied
    prepayment). ``request_sha256``: the figures it was asked with (the same key with other figures is refused).
    ``signing`` is the claim one request holds while it renders and signs (a failure deletes it); ``signed`` the
    document, its PDF under Object Lock until ``retain_until``, its hash in the evidence log at ``ledger_index``.
    No personal data here: the figures are in the PDF only."""

    __tablename__ = "contract_servicing_documents"
    __table_args__ = (UniqueConstraint("kind", "subject_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contract_contracts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # signing | signed
    request_sha256: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    ledger_index: Mapped[int | None] = mapped_column(Integer)
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LegacyEntryRow(ContractBase):
    """One leaf of the first evidence log, frozen since the log moved to commitments (migration 0003): the clear
    entry bytes it hashed (they name applications, amounts, decisions, so they are never served publicly
    again) and their leaf hash. Nothing writes here any more; ``leaseline ledger verify`` still checks it."""

    __tablename__ = "contract_ledger_entries"

    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class _Checkpoint:
    """The columns of a signed checkpoint (tree size, root, time; Ed25519), as published: the first log's and
    the evidence log's alike."""

    tree_size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(128))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))


class LegacyCheckpointRow(_Checkpoint, ContractBase):
    """A signed checkpoint of the first evidence log (tree size, root, time; Ed25519), as it was published."""

    __tablename__ = "contract_ledger_checkpoints"


class LeafRow(ContractBase):
    """One public leaf of the evidence log: its exact bytes (a commitment, or the log start statement at index
    0; contract.ledger.commitments) and their RFC 6962 leaf hash. This table is all the public reads touch.
    Append-only: the code has no update or delete; ``leaseline ledger verify`` recomputes everything."""

    __tablename__ = "contract_evidence_leaves"

    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OpeningRow(ContractBase):
    """The private half of a leaf: the clear entry and the salt its commitment was made with (its opening),
    what it is about (kind, subject: to find an application's entries) and the caller's idempotency key (which
    names the application too). Served only to the BFF's service token, which gives it to those entitled.
    ``legacy_idx``: the entry's index in the first log, when it was committed again from there."""

    __tablename__ = "contract_evidence_openings"

    idx: Mapped[int] = mapped_column(ForeignKey("contract_evidence_leaves.idx"), primary_key=True,
                                     autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    legacy_idx: Mapped[int | None] = mapped_column(Integer, unique=True)


class CheckpointRow(_Checkpoint, ContractBase):
    """A signed checkpoint of the evidence log (tree size, root, time; Ed25519) as published."""

    __tablename__ = "contract_evidence_checkpoints"


class CheckpointTimestampRow(ContractBase):
    """The RFC 3161 time-stamp token of one signed checkpoint (contract.ledger.timestamps): the TSA's signature
    over SHA-256 of the checkpoint's signed bytes, with its genTime. At most one per checkpoint, written once
    (when it is signed, or later by the ``ledger.anchor`` job); a checkpoint without one is not anchored yet."""

    __tablename__ = "contract_evidence_timestamps"

    # named here: the naming convention's name would pass PostgreSQL's 63 characters
    tree_size: Mapped[int] = mapped_column(ForeignKey("contract_evidence_checkpoints.tree_size",
                                                      name="fk_contract_evidence_timestamps_tree_size"),
                                           primary_key=True, autoincrement=False)
    token: Mapped[bytes] = mapped_column(LargeBinary)  # DER TimeStampToken (RFC 3161 §2.4.2)
    gen_time: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ContractJobErrorRow(ContractBase):
    """The error of one failed attempt of one of the service's jobs (infra/jobs.py, contract/worker.py); deleted
    with its job (a foreign key to procrastinate's jobs, which procrastinate owns: ``infra.db.models.ours``)."""

    __tablename__ = "contract_job_errors"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
