"""The BFF's tables (SQLAlchemy 2 typed models). Schema changes go through Alembic migrations only."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Identity
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (``timestamptz``, read back in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: store times in UTC with tzinfo")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class VehicleRow(Base):
    """A vehicle of the lessor's catalogue. Money in Numeric(14, 2), rates in Numeric(6, 4)."""

    __tablename__ = "vehicles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    make: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    condition: Mapped[str] = mapped_column(String(8))  # new | used
    usage: Mapped[str] = mapped_column(String(16))  # personal | commercial
    powertrain: Mapped[str] = mapped_column(String(8))  # ice | nev
    seats: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(String(16))
    colour: Mapped[str] = mapped_column(String(7))
    year: Mapped[int] = mapped_column(Integer)
    mileage_km: Mapped[int] = mapped_column(Integer, default=0)
    rate_subsidy: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DealerGroupRow(Base):
    """A dealer group (经销商集团) of the lessor; one OpenID issuer per group is allowed."""

    __tablename__ = "dealer_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    oidc_issuer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DealerRow(Base):
    """A dealer (4S store): the tenant every dealer-side row belongs to."""

    __tablename__ = "dealers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("dealer_groups.id"))
    name: Mapped[str] = mapped_column(String(128))
    city: Mapped[str] = mapped_column(String(64))
    # the dealer's registered details, a party (the supplier) of every lease contract it sells
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True)  # 统一社会信用代码
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_account: Mapped[str | None] = mapped_column(String(64), nullable=True)  # Stripe Connect: the dealer's share
    modules: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of switched-on module codes
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UserRow(Base):
    """A staff member (dealer or lessor side). Customers are not users: they are identified by mobile."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    dealer_id: Mapped[str | None] = mapped_column(ForeignKey("dealers.id"), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recovery_codes: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of argon2 hashes
    oidc_issuer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the last TOTP time step (unix time // 30) accepted for this account: a code is accepted once (RFC 6238 §5.2)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEventRow(Base):
    """An audit event. Append-only: the application inserts and reads, never updates or deletes."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure | denied
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    actor_label: Mapped[str] = mapped_column(String(254))  # e.g. the email typed at a failed sign-in
    dealer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    target: Mapped[str] = mapped_column(String(254), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")


class InvitationRow(Base):
    """A salesperson's invitation of a customer to configure a plan on their own phone (single use, 24 h)."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(ForeignKey("dealers.id"), index=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    mobile_enc: Mapped[str] = mapped_column(Text)  # AES-GCM (infra.pii), context "invitation_mobile"
    mobile_hash: Mapped[str] = mapped_column(String(64), index=True)  # keyed hash, context "mobile"
    vehicle_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    plan_code: Mapped[str | None] = mapped_column(String(120), nullable=True)  # as the salesperson proposed it
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the link's secret part
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # code confirmed: link used
    code_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_codes: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    customer_plan: Mapped[str | None] = mapped_column(String(120), nullable=True)  # what the customer has now
    customer_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReturningCodeRow(Base):
    """The one-time code of 我的租赁 (bff/invitations/returning.py) for one number, known or not: its tries are
    counted here under a row lock (a session's own count is beaten by parallel requests), and the number and code
    wait encrypted for the job that texts them, which clears the code."""

    __tablename__ = "returning_codes"

    mobile_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # keyed hash, context "mobile"
    mobile_enc: Mapped[str] = mapped_column(Text)  # AES-GCM (infra.pii), context "returning_mobile"
    code_hash: Mapped[str] = mapped_column(String(64))
    code_enc: Mapped[str | None] = mapped_column(Text, nullable=True)  # until the job has texted it
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SmsOutboxRow(Base):
    """Text messages of the embedded SMS sandbox: stored, never sent (a real gateway replaces it)."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    to: Mapped[str] = mapped_column(String(20), index=True)
    body: Mapped[str] = mapped_column(Text)
    dealer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)  # whose customer it went to
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebSessionRow(Base):
    """A browser session kept on the server (:mod:`infra.sessions`). ``key`` is the SHA-256 of the random id the
    cookie carries, so reading this table yields no session anyone could use; ``subject`` names whose it is
    (``staff:<user id>``, ``customer:<invitation id>``) so all of one person's sessions can be ended at once."""

    __tablename__ = "web_sessions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    data: Mapped[str] = mapped_column(Text)  # the session's values, serialised by the web layer
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApplicationRow(Base):
    """A credit application of one customer for one vehicle and plan, owned by a dealer (its tenant).

    The applicant's answers live in ``draft_enc`` (AES-GCM, :mod:`infra.pii`): raw strings as typed, so a
    half-filled form loses nothing. Only what lists and searches need is kept beside it: the name, masked
    copies of the ID and mobile numbers, and keyed hashes of them for exact look-ups.
    """

    __tablename__ = "applications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(ForeignKey("dealers.id"), index=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    invitation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    vehicle_id: Mapped[str] = mapped_column(String(64))
    vehicle_label: Mapped[str] = mapped_column(String(160))
    plan_code: Mapped[str] = mapped_column(String(120))
    plan_json: Mapped[str] = mapped_column(Text)  # frozen copy of the quote the customer chose
    draft_enc: Mapped[str] = mapped_column(Text)
    customer_name: Mapped[str] = mapped_column(String(64), default="")
    id_masked: Mapped[str] = mapped_column(String(24), default="")
    id_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    mobile_masked: Mapped[str] = mapped_column(String(16), default="")
    mobile_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    #: the keyed hash of the car's VIN (valid ones only; the VIN itself stays in the draft): one car, one lease
    vin_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    face_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the risk service's answer (kept here so the pipeline needs no call), and the resend schedule
    risk_assessment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    risk_result: Mapped[str] = mapped_column(Text, default="{}")
    risk_attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: no longer read or written (the job queue schedules the retries): a later migration drops it, once no
    #: running version of the code names it
    risk_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    # the contract service's contract (generated after approval; resent on the same schedule when down)
    contract_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contract_result: Mapped[str] = mapped_column(Text, default="{}")
    contract_attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: no longer read or written (the job queue schedules the retries): a later migration drops it, once no
    #: running version of the code names it
    contract_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApplicationEventRow(Base):
    """One status transition of an application: who (staff, customer or system), when, from what to what."""

    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | customer | system
    actor_id: Mapped[str] = mapped_column(String(64), default="")
    from_status: Mapped[str] = mapped_column(String(24), default="")
    to_status: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")


class ConsentRow(Base):
    """The customer's explicit consent (PIPL art. 29; face recognition rules 2025), one row per purpose."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))  # sensitive_pi | face_recognition
    text_version: Mapped[str] = mapped_column(String(32))
    text_sha256: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    #: when the person withdrew it (PIPL art. 15): the row stays, the evidence of what was given and until when
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class KycDocumentRow(Base):
    """An image kept in object storage for an application (ID card sides, portrait, selfie, frames)."""

    __tablename__ = "kyc_documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # id_front | id_back | id_portrait | selfie | frame
    object_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(32))
    biometric: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class KycCheckRow(Base):
    """A KYC job and its outcome (OCR, liveness + face match), run out of the request thread."""

    __tablename__ = "kyc_checks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # id_card | face
    state: Mapped[str] = mapped_column(String(16))  # queued | running | done | error
    outcome: Mapped[str] = mapped_column(String(16), default="")  # pass | fail | review (face); ok | refused
    detail: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SigningCodeRow(Base):
    """A one-time code sent to the customer's mobile to re-confirm identity right before signing (hashed)."""

    __tablename__ = "signing_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    #: what the code confirms: ``contract`` (signing the contract) or ``handover`` (the handover record)
    purpose: Mapped[str] = mapped_column(String(16), default="contract", server_default="contract")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EvidenceOutboxRow(Base):
    """An evidence-log entry waiting to be sent to the contract service (consent, KYC outcome, plan accepted,
    risk decision): written in the transaction of the event, sent by the worker's evidence.flush job, never lost
    when the service is down. ``key`` is the entry's idempotency key, so a resend never appends twice."""

    __tablename__ = "evidence_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(Text)  # JSON: ids, hashes, amounts as strings; never personal data
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: no longer written or read (the contract service's listing by subject says where an entry is; this copy went
    #: stale when the first evidence log moved): a later migration can drop the column
    ledger_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IdempotencyRow(Base):
    """A request already handled (offline queue replays, double taps): the same key gets the same answer."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[int] = mapped_column(Integer)
    location: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaymentRow(Base):
    """One amount a signed lease needs before delivery: the upfront payment (down payment, fees and premiums
    paid upfront, the first rent when in advance), the refundable deposit, or — for a deposit-free plan — a
    pre-authorisation hold instead of the deposit. Amounts in fen (integers: exact sums and comparisons in SQL
on every database, as Stripe counts them); the money filters show yuan.

    ``status`` follows bff/payments/machine.py; ``attempt_key`` is the Idempotency-Key of the attempt in
    flight, kept until Stripe has answered definitively, so a retry after a lost answer never charges twice."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("application_id", "kind"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # upfront | deposit | hold
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[str] = mapped_column(String(20), index=True)
    intent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    captured: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255), nullable=True)
    next_action_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the dealer's share (分账) of an upfront payment, paid out through Stripe Connect once it is captured
    dealer_share: Mapped[int] = mapped_column(BigInteger, default=0)
    transfer_status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # due | sending | sent | failed
    transfer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # each retry after a refusal is a new attempt with its own Idempotency-Key (Stripe replays a refused key)
    transfer_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    transfer_error: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RefundRow(Base):
    """A refund of (part of) a captured payment, asked by ops staff with a reason; never above what is left."""

    __tablename__ = "payment_refunds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # fen
    reason: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    stripe_refund_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


#: the webhook events refused (signed, but not about a payment as we made it): their own partial index, newest last,
#: serves the list /payments shows ops on every load without reading the whole, ever-growing table. Queries say it
#: in these very words, so that the planner sees the index applies (PostgreSQL "Partial Indexes": the query's
#: condition must match the index's; SQLite ≥ 3.8 https://sqlite.org/partialindex.html §2.2)
REFUSED_EVENT = "outcome LIKE 'refused%'"


class StripeEventRow(Base):
    """Each webhook event once: a replay finds its id here and changes nothing."""

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_refused", "received_at", "id", postgresql_where=text(REFUSED_EVENT),
                            sqlite_where=text(REFUSED_EVENT)),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    intent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created: Mapped[int] = mapped_column(Integer)  # Stripe's event time (unix seconds)
    outcome: Mapped[str] = mapped_column(String(64))  # what it did: applied, ignored (why)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeaseTermRow(Base):
    """A delivered lease's term and its settlement (结清): the term starts on the day the dealer confirms the
    handover (交车) and ends ``term_months`` later; ops close it in good standing (with a deduction from the
    security, and its reason, or none), then the settle job refunds the deposit and releases the hold.

    ``settlement``: NULL while the term runs; ``due`` once ops closed it; ``settled`` when the money is back;
    ``attention`` when Stripe refused a step (ops look, then retry). Amounts in fen."""

    __tablename__ = "lease_terms"

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    term_months: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date] = mapped_column(Date)  # Asia/Shanghai calendar days
    ends_on: Mapped[date] = mapped_column(Date, index=True)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_by: Mapped[str] = mapped_column(String(36))
    delivered_by_label: Mapped[str] = mapped_column(String(254))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    closed_by_label: Mapped[str | None] = mapped_column(String(254), nullable=True)
    deduction: Mapped[int] = mapped_column(BigInteger, default=0)
    deduction_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    settlement: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    settle_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    settle_attempts: Mapped[int] = mapped_column(Integer, default=0)  # ops' retries after Stripe refused a step
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)  # what the settlement refunded
    captured: Mapped[int] = mapped_column(BigInteger, default=0)  # what it captured from a live hold
    settle_note: Mapped[str | None] = mapped_column(String(255), nullable=True)


class HandoverRow(Base):
    """The handover record of a lease ready for delivery (交接确认书, issue 16): the dealer records the vehicle's
    state at delivery (``prepared``; again until it is signed), then the customer confirms it with a one-time code
    and a signature (``signed``: the contract service signed, stored and logged the record, whose day is the
    commencement date 起租日 the term and every rent run from) or refuses the vehicle (``refused``, with the reason:
    Civil Code art. 740). ``items``: a JSON list of item codes; ``record``: the contract service's record (JSON)."""

    __tablename__ = "handovers"

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16))
    odometer_km: Mapped[int] = mapped_column(Integer)
    keys: Mapped[int] = mapped_column(Integer)
    items: Mapped[str] = mapped_column(Text, default="[]")
    note: Mapped[str] = mapped_column(String(500), default="")
    prepared_by: Mapped[str] = mapped_column(String(36))
    prepared_by_label: Mapped[str] = mapped_column(String(254))
    prepared_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refused_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PrivacyRequestRow(Base):
    """A person's request about their personal information (PIPL arts. 44–48): to see (``access``), copy, correct or
    delete it, to withdraw a consent, or to have its processing explained; ``open`` until ops answer it
    (``answered``) or refuse it with the reason (``refused``) by ``due_at`` (bff/privacy/services.py)."""

    __tablename__ = "privacy_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # access | copy | correct | delete | withdraw | explain
    detail: Mapped[str] = mapped_column(String(1000))  # what the person asks, in their words
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | answered | refused
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    answered_by_label: Mapped[str | None] = mapped_column(String(254), nullable=True)
    answer: Mapped[str | None] = mapped_column(String(2000), nullable=True)


#: an application's request still pending (the customer gathering, or the officer to look): one at a time
PENDING_REQUEST = "status IN ('open', 'submitted')"


class DocumentRequestRow(Base):
    """Documents a risk officer asked the customer for (bff/documents): ``open`` while the customer gathers them
    (the review's SLA clock stands still from ``requested_at`` to ``submitted_at``), ``submitted`` back with the
    officer, then ``accepted``, ``returned`` (asked again: a new request follows) or ``cancelled``."""

    __tablename__ = "document_requests"
    __table_args__ = (Index("uq_document_requests_pending", "application_id", unique=True,
                            postgresql_where=text(PENDING_REQUEST), sqlite_where=text(PENDING_REQUEST)),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    case_id: Mapped[str] = mapped_column(String(64), index=True)  # the risk service's review case
    kinds: Mapped[str] = mapped_column(String(200))  # comma-separated: income_proof, bank_statement, …
    note: Mapped[str] = mapped_column(String(500))
    due_on: Mapped[date] = mapped_column(Date)  # a day in Asia/Shanghai
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | submitted | accepted | returned | cancelled
    requested_by: Mapped[str] = mapped_column(String(36))
    requested_by_label: Mapped[str] = mapped_column(String(254))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DocumentPageRow(Base):
    """One file the customer sent for a request (an image re-encoded as JPEG, or a PDF of ``pages`` pages), kept in
    object storage like the ID images; ``deleted_at`` once removed (the object goes with it)."""

    __tablename__ = "document_pages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("document_requests.id"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    object_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(32))
    pages: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JobErrorRow(Base):
    """The error of one failed attempt of a job (infra/jobs.py): procrastinate keeps the job's state, not why it
    failed. Deleted with its job (a foreign key to procrastinate's ``procrastinate_jobs``, which these models do
    not describe: procrastinate owns its tables, :func:`ours`)."""

    __tablename__ = "job_errors"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeaseRow(Base):
    """The lease in force (issue 18): created with the signed handover record (infra/servicing.py), one per
    application; its servicing terms frozen from the signed contract (contract/document/servicing_terms.py), money in
    fen. ``closed_through``: the last business date whose close of business has processed it (the close's progress
    marker: a run killed midway resumes with the leases not yet closed through its date)."""

    __tablename__ = "leases"
    __table_args__ = (Index("ix_leases_status_closed_through", "status", "closed_through"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), unique=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    contract_id: Mapped[str] = mapped_column(String(64))
    contract_number: Mapped[str] = mapped_column(String(64))
    handover_record_id: Mapped[str] = mapped_column(String(64))
    handover_sha256: Mapped[str] = mapped_column(String(64))
    starts_on: Mapped[date] = mapped_column(Date)  # 起租日, Asia/Shanghai
    ends_on: Mapped[date] = mapped_column(Date)
    term: Mapped[int] = mapped_column(Integer)
    timing: Mapped[str] = mapped_column(String(8))  # arrears | advance
    financed_amount: Mapped[int] = mapped_column(BigInteger)
    residual: Mapped[int] = mapped_column(BigInteger)
    monthly_payment: Mapped[int] = mapped_column(BigInteger)
    deposit: Mapped[int] = mapped_column(BigInteger)
    nominal_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    late_fee_daily_rate: Mapped[Decimal] = mapped_column(Numeric(10, 6))
    late_fee_base: Mapped[str] = mapped_column(String(16))  # overdue_amount (逾期金额) | principal
    grace_days: Mapped[int] = mapped_column(Integer)  # business days after the due day (0: 自逾期之日起)
    default_cost_cap: Mapped[Decimal | None] = mapped_column(Numeric(6, 4), nullable=True)
    settlement_any_day: Mapped[bool] = mapped_column(Boolean)  # False: on a rent's due day only (older contracts)
    settlement_fee_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    settlement_day_count: Mapped[str] = mapped_column(String(8))
    settlement_notice_working_days: Mapped[int] = mapped_column(Integer)
    terms_source: Mapped[str] = mapped_column(String(8))  # contract | legacy
    terms: Mapped[str] = mapped_column(Text)  # the terms as the contract service stated them (JSON)
    status: Mapped[str] = mapped_column(String(16))  # active | settled (结清, early) | ended (the term ran out)
    closed_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    settled_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # the settlement date of a settled lease
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InstalmentRow(Base):
    """One rent of a lease in force (``kind`` rent, ``number`` 1…term) or its final rent (``final_rent``, the balloon,
    number term + 1, due on the term's last day), amounts in fen as the contract's schedule splits them. ``state``:
    pending (not yet due) → due → paid | partly_paid | overdue (unpaid after its last day: the due day, moved to the
    next business day, plus the grace) | waived. ``penalty_through``: the last day whose late charge is accrued."""

    __tablename__ = "instalments"
    __table_args__ = (
        UniqueConstraint("lease_id", "number"),
        # the close of business's reads of a batch's leases (migration 0028): what is open up to a date, what is
        # late, what owes a late charge — each a few rows a lease, not the whole schedule
        Index("ix_instalments_open", "lease_id", "due_on",
              postgresql_where=text("state IN ('pending', 'due', 'partly_paid', 'overdue')")),
        Index("ix_instalments_late", "lease_id", "overdue_since",
              postgresql_where=text("overdue_since IS NOT NULL AND state NOT IN ('paid', 'waived', 'settled')")),
        Index("ix_instalments_penalty_unpaid", "lease_id", postgresql_where=text("penalty_accrued > paid_penalty")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # rent | final_rent | purchase_price | return_charges (0023)
    due_on: Mapped[date] = mapped_column(Date)  # Asia/Shanghai
    amount: Mapped[int] = mapped_column(BigInteger)
    principal: Mapped[int] = mapped_column(BigInteger)
    interest: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))
    paid_principal: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_interest: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_penalty: Mapped[int] = mapped_column(BigInteger, default=0)
    waived: Mapped[int] = mapped_column(BigInteger, default=0)
    penalty_accrued: Mapped[int] = mapped_column(BigInteger, default=0)
    penalty_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    overdue_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    settled_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ServicingMovementRow(Base):
    """A money movement of a lease in force, keyed to the instalment it touched: paid at signing, a payment's
    allocation, a day's late charge, a waiver… Amounts in fen, signed; ``key`` makes each one book once."""

    __tablename__ = "servicing_movements"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalments.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    value_date: Mapped[date] = mapped_column(Date)  # the business date it counts from
    principal: Mapped[int] = mapped_column(BigInteger, default=0)
    interest: Mapped[int] = mapped_column(BigInteger, default=0)
    penalty: Mapped[int] = mapped_column(BigInteger, default=0)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BusinessDateRow(Base):
    """The business date every process reads (one row, ``id`` 1): the day whose close of business runs next. It moves
    on one calendar day only when that day's close is complete."""

    __tablename__ = "business_date"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    current: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CloseRunRow(Base):
    """The close of business of one business date (unique): ``running`` until every active lease is closed through it,
    then ``done``; what it did, batch by batch, in the batches' own transactions."""

    __tablename__ = "close_runs"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(12))  # running | done
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=1)  # how many times it was started (a resumed run: 2 …)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    leases: Mapped[int] = mapped_column(Integer, default=0)
    marked_due: Mapped[int] = mapped_column(Integer, default=0)
    marked_overdue: Mapped[int] = mapped_column(Integer, default=0)
    penalty: Mapped[int] = mapped_column(BigInteger, default=0)  # late charges accrued, fen
    last_lease_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class BusinessCalendarRow(Base):
    """A day of China's published business calendar that ops loaded (``leaseline servicing calendar load``): a
    holiday (休) on a weekday or a make-up working day (班) on a weekend; it overrides the chinese-calendar package
    and the weekend rule (servicing/calendar.py)."""

    __tablename__ = "business_calendar"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # holiday | workday
    name: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(255), default="")
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CollectionMandateRow(Base):
    """The customer's authorisation of automatic rent collection (issue 18 §3, migration 0018): a card saved through a
    Stripe SetupIntent (``card``) or a bank's 协议支付 direct-debit agreement (``direct_debit``), with the mandate text
    accepted (its version and fingerprint); ``auto_collect`` is the customer's on/off. ``status``: pending | active |
    revoked."""

    __tablename__ = "collection_mandates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    auto_collect: Mapped[bool] = mapped_column(Boolean)
    customer_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payment_method: Mapped[str | None] = mapped_column(String(64), nullable=True)
    setup_intent: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    agreement_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bank: Mapped[str | None] = mapped_column(String(64), nullable=True)
    account_last4: Mapped[str | None] = mapped_column(String(8), nullable=True)
    text_version: Mapped[str] = mapped_column(String(32))
    text_sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CollectionAttemptRow(Base):
    """One attempt to collect money for a lease in force (issue 18 §3): the customer paying on the phone
    (``trigger`` customer, a Stripe PaymentIntent) or an automatic collection (``auto``: a direct debit or an
    off-session card charge) for one instalment (or, ``instalment_id`` NULL, all that is due now). ``key`` is our
    Idempotency-Key (unique: a retry never makes a second attempt); ``provider_ref`` the PaymentIntent or the bank's
    order. ``status``: created | processing (a delayed result, polled after ``poll_after``) | requires_action |
    succeeded | failed | canceled. Amounts in fen."""

    __tablename__ = "collection_attempts"
    __table_args__ = (UniqueConstraint("channel", "provider_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalments.id"), nullable=True, index=True)
    mandate_id: Mapped[str | None] = mapped_column(ForeignKey("collection_mandates.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))  # stripe | direct_debit
    trigger: Mapped[str] = mapped_column(String(8))  # customer | auto
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[str] = mapped_column(String(20), index=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    provider_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    business_date: Mapped[date] = mapped_column(Date)
    failure_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(255), nullable=True)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    poll_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # what it pays (migration 0021): rent | settlement (``subject_id`` the settlement quote) | prepayment (the
    # prepayment)
    purpose: Mapped[str] = mapped_column(String(16), default="rent", server_default="rent")
    subject_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LeaseReceiptRow(Base):
    """A succeeded payment booked into a lease in force, once by its ``key`` (the payment's idempotency key: a webhook
    replay, a double tap or two workers find it here and book nothing). ``applied``: what the allocation booked onto
    instalments (servicing_movements); ``surplus``: what was left (all of it for a lease no longer active), refunded
    automatically (``refund_reason`` surplus | lease_closed; ``refund_status`` pending | succeeded | failed)."""

    __tablename__ = "lease_receipts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("collection_attempts.id"), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # stripe | direct_debit
    # the provider's payment (a PaymentIntent, a bank's order): reconciliation looks receipts up by it
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    applied: Mapped[int] = mapped_column(BigInteger)
    surplus: Mapped[int] = mapped_column(BigInteger)
    value_date: Mapped[date] = mapped_column(Date)  # the business date it was booked on
    refund_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    refund_status: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    refund_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)



class ServicingReminderRow(Base):
    """A text about a rent (issue 18 §4, migration 0019) the close of business deferred (``kind`` before_due, or
    overdue_N: N days after the rent became overdue), once per lease, instalment and kind (a replayed close finds it
    here and defers nothing). ``status``: queued → sent | skipped (paid meanwhile, no number) | refused (by the SMS
    platform); ``business_date`` the close that deferred it."""

    __tablename__ = "servicing_reminders"
    __table_args__ = (UniqueConstraint("lease_id", "instalment_id", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"))
    instalment_id: Mapped[int] = mapped_column(ForeignKey("instalments.id"))
    kind: Mapped[str] = mapped_column(String(16))
    business_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))
    detail: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LeaseArrearsRow(Base):
    """A lease in arrears as the close of business last changed it (migrations 0019, 0030): the first overdue day of
    its oldest unpaid overdue rent, its bucket (M1 1–30 days past due, M2 31–60, M3 over 60) and since when, the rents
    overdue and what is unpaid of them, in fen. Written only when one of those changed; the days past due and the late
    charges, which change with the calendar, are read from the lease's last close and its instalments
    (infra/arrears.py). Out of arrears: no row."""

    __tablename__ = "lease_arrears"

    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    bucket: Mapped[str] = mapped_column(String(4))
    bucket_since: Mapped[date] = mapped_column(Date)
    oldest_overdue_since: Mapped[date] = mapped_column(Date)
    instalments_overdue: Mapped[int] = mapped_column(Integer)
    overdue_amount: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CollateralFlagRow(Base):
    """A lease that reached M3 (over 60 days past due), flagged once for the collateral team (GPS location,
    repossession: the telemetry issue reads it), with the business date and the time (migration 0019)."""

    __tablename__ = "collateral_flags"

    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    flagged_on: Mapped[date] = mapped_column(Date)
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    days_past_due: Mapped[int] = mapped_column(Integer)


class ArrearsLogRow(Base):
    """The collections history of a lease (migration 0019): ``kind`` contact (what ops recorded: an outcome code, a
    note, a promise-to-pay date), bucket (the close saw it enter ``bucket``, or leave arrears: NULL) or flag (M3,
    for the collateral team)."""

    __tablename__ = "arrears_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    business_date: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_label: Mapped[str] = mapped_column(String(128), default="")
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    promise_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    bucket: Mapped[str | None] = mapped_column(String(4), nullable=True)

class SettlementQuoteRow(Base):
    """An early-settlement quote (提前结清, issue 18 §5, migration 0021) asked for ``settles_on`` on the business date
    ``business_date``, its lines in fen as :func:`servicing.settlement.settlement_quote_on` counted them (``quote``:
    the whole quote as JSON, with each line's label and basis), payable until ``valid_until``. ``status``: offered (one
    per lease) → paid (the lease is settled) | expired (the close of business after ``valid_until``) | superseded (a
    new quote was asked). ``requested_by``: ``customer`` or ``staff:<id>``."""

    __tablename__ = "settlement_quotes"
    __table_args__ = (
        Index("uq_settlement_quotes_offered", "lease_id", unique=True, postgresql_where=text("status = 'offered'")),
        Index("ix_settlement_quotes_valid_until", "valid_until", postgresql_where=text("status = 'offered'")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    business_date: Mapped[date] = mapped_column(Date)
    settles_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    outstanding_principal: Mapped[int] = mapped_column(BigInteger)
    accrued_interest: Mapped[int] = mapped_column(BigInteger)
    early_settlement_fee: Mapped[int] = mapped_column(BigInteger)
    arrears: Mapped[int] = mapped_column(BigInteger)
    penalties: Mapped[int] = mapped_column(BigInteger)
    paid_ahead_interest: Mapped[int] = mapped_column(BigInteger)
    deposit_offset: Mapped[int] = mapped_column(BigInteger)
    amount_due: Mapped[int] = mapped_column(BigInteger)  # negative: the lessor refunds the difference
    quote: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    requested_by: Mapped[str] = mapped_column(String(64))
    attempt_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # migration 0025: the late charges the settlement booked when paid (at most ``penalties``; the rest refunded)
    penalties_booked: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # migration 0027: the business date it was paid (the payment or the confirmation booked), on or before
    # ``settles_on`` (the settlement day; a bank's late answer may be after it)
    paid_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class PrepaymentRow(Base):
    """A partial prepayment (issue 18 §5, migration 0021): ``amount`` fen off the principal after rent
    ``after_number``, re-amortised as the customer chose (``option`` shorter_term | lower_rent: ``new_term`` rents left,
    ``new_rent`` each), both options as shown (``preview``, JSON). ``status``: offered (one per lease) → paid → applied
    (the schedule re-amortised) | expired. Migration 0024: ``accrued_interest`` (signed fen: the interest of the days
    since the balance's date, paid with the amount or credited off it) and ``schedule`` (JSON, once applied: the
    schedule as it applied it, which the schedule annex states)."""

    __tablename__ = "prepayments"
    __table_args__ = (
        Index("uq_prepayments_offered", "lease_id", unique=True, postgresql_where=text("status = 'offered'")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    business_date: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    option: Mapped[str] = mapped_column(String(16))
    after_number: Mapped[int] = mapped_column(Integer)
    new_term: Mapped[int] = mapped_column(Integer)
    new_rent: Mapped[int] = mapped_column(BigInteger)
    preview: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    requested_by: Mapped[str] = mapped_column(String(64))
    attempt_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accrued_interest: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    schedule: Mapped[str | None] = mapped_column(Text, nullable=True)


class LeaseDocumentRow(Base):
    """A document the contract service signs for a lease in force (migration 0021): ``kind``
    settlement_certificate (结清证明, ``subject_id`` the paid quote) or schedule_annex (the schedule after a
    prepayment, ``subject_id`` the prepayment), once per kind and subject. ``status``: requested → ready (the
    contract service's ``document_id``, its ``sha256`` and its evidence-log index) | failed (``error``; retried)."""

    __tablename__ = "lease_documents"
    __table_args__ = (UniqueConstraint("kind", "subject_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(12))
    document_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    evidence_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # migration 0026: the customer's text that it is ready — '' → sending (claimed) → sent | refused | no_mobile,
    # ``text_detail`` why it was not sent, ``text_at`` when claimed or decided (bff/servicing/settled.py)
    text_status: Mapped[str] = mapped_column(String(12), default="", server_default="")
    text_detail: Mapped[str] = mapped_column(String(255), default="", server_default="")
    text_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MortgageReleaseRow(Base):
    """The dealer's task to release the car's mortgage (抵押解除) once its lease is settled (migration 0021): open on
    ``opened_on`` → released (on ``released_on`` at ``office``, the registration's ``reference``, by ``done_by``)."""

    __tablename__ = "mortgage_releases"
    __table_args__ = (Index("ix_mortgage_releases_dealer_id", "dealer_id", "status"),)

    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(12))  # open | released
    opened_on: Mapped[date] = mapped_column(Date)
    released_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    office: Mapped[str] = mapped_column(String(128), default="", server_default="")
    reference: Mapped[str] = mapped_column(String(64), default="", server_default="")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    done_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EndOfTermRow(Base):
    """The lessee's choice at the end of the term (issue 18 §6, migration 0023), one per lease: ``option`` purchase
    (the final rent and the purchase price 留购价 paid, the car kept: ``purchase_price`` fen, collected as an instalment
    of kind ``purchase_price``) | return (the dealer's inspection: ``mileage_km``, ``damage_items`` and ``photo_keys``
    as JSON lists, the charges, what the deposit covers ``deposit_deduction``, ``refund`` of the rest, ``owed`` what it
    does not cover) | refinance (the final rent financed by ``refinance_application_id``). ``terms``: the figures and
    the product's return terms as shown when chosen (JSON). ``status``: chosen → inspected (a return) → ended."""

    __tablename__ = "end_of_term"
    __table_args__ = (
        CheckConstraint("option IN ('purchase', 'return', 'refinance')", name="option"),
        CheckConstraint("damage_charge >= 0 AND excess_mileage_charge >= 0 AND deposit_deduction >= 0 "
                        "AND refund >= 0 AND owed >= 0", name="amounts"),
        Index("ix_end_of_term_dealer_id", "dealer_id", "status"),
    )

    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    option: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    chosen_on: Mapped[date] = mapped_column(Date)  # the business date
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    chosen_by: Mapped[str] = mapped_column(String(64))  # customer | staff:<id>
    terms: Mapped[str] = mapped_column(Text)
    purchase_price: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    mileage_km: Mapped[int | None] = mapped_column(Integer, nullable=True)
    photo_keys: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    damage_items: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    damage_charge: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    excess_mileage_charge: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    deposit_deduction: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refund: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    owed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    inspected_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    inspected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refinance_application_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

class CreditReportRow(Base):
    """A month's credit report (征信报送, issue 18 §7, migration 0022), one per ``period`` (YYYY-MM) as of its last
    day: ``status`` queued (the first close of the next month asked for it) → built (``record_count`` records in a file
    of ``file_sha256``; the file itself, with names and ID numbers, is never stored) → submitted (the bureau's
    ``batch_no``, ``accepted`` and ``rejected`` counts, ``errors``: JSON list of each rejected record's account id,
    masked name and code). ``withheld``: rents overdue at the month end not reported overdue (no notice in time)."""

    __tablename__ = "credit_reports"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))
    record_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status_counts: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    withheld: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    file_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    batch_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    accepted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errors: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    detail: Mapped[str] = mapped_column(String(255), default="", server_default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CreditReportNoticeRow(Base):
    """The text before an overdue report (《征信业管理条例》 art. 15, migration 0022), once per lease and ``period``:
    deferred by the close of ``business_date`` (the period's notice day) for ``overdue_amount`` fen overdue then.
    ``status``: queued → sent | skipped (paid meanwhile, no number) | refused (by the SMS platform)."""

    __tablename__ = "credit_report_notices"
    __table_args__ = (UniqueConstraint("lease_id", "period"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"))
    period: Mapped[str] = mapped_column(String(7), index=True)
    business_date: Mapped[date] = mapped_column(Date)
    overdue_amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))
    detail: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """For alembic's comparison of the database with these models (``include_object``): procrastinate's tables,
    types and functions are its own (migration 0012), as is the foreign key from ``job_errors`` to its jobs."""
    if name and name.startswith("procrastinate_"):
        return False
    if type_ == "foreign_key_constraint" and getattr(getattr(obj, "referred_table", None), "name", "").startswith(
            "procrastinate_"):
        return False
    return True


class JournalEntryRow(Base):
    """A journal entry of the general ledger (issue 19, migration 0029), posted once by its ``key`` (the event that
    caused it) in that event's transaction. ``value_date``: the event's business date; ``booked_on``: the day it
    counts in the books — the value date, or the first open day after the last closed month when that month is
    closed (late posting, the original date kept). Append-only: the database refuses updates and deletes (a
    correction is a reversal, ``reverses_id``) and refuses lines that do not balance."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    value_date: Mapped[date] = mapped_column(Date)
    booked_on: Mapped[date] = mapped_column(Date, index=True)
    lease_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    dealer_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    memo: Mapped[str] = mapped_column(String(255), default="")
    chart_version: Mapped[str] = mapped_column(String(16))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"), nullable=True, unique=True)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JournalLineRow(Base):
    """One side of a journal entry: an account of the chart (its Beancount name) and an amount in fen on one side,
    with the lease and dealer it belongs to (the sub-ledgers)."""

    __tablename__ = "journal_lines"
    __table_args__ = (CheckConstraint("debit >= 0 AND credit >= 0 AND (debit > 0) <> (credit > 0)", name="one_side"),
                      Index("ix_journal_lines_account_entry", "account", "entry_id"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account: Mapped[str] = mapped_column(String(80))
    debit: Mapped[int] = mapped_column(BigInteger, default=0)
    credit: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    dealer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


class LedgerPeriodRow(Base):
    """A closed month of the books (issue 19 §4, migration 0029): nothing posts into it; an event dated in it is
    booked on the first day of the next open month. ``month``: its first day."""

    __tablename__ = "ledger_periods"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_by: Mapped[str] = mapped_column(String(36))
    approved_by: Mapped[str] = mapped_column(String(36))


class LedgerCloseRequestRow(Base):
    """A request to close a month of the books (issue 19 §4, migration 0034): made by one ops user, approved by another
    (four eyes: the database refuses an approval by the requester), or withdrawn; at most one pending and one approved
    a month. ``checks``: what the close's checks found when it was asked (JSON, infra/month_close.py)."""

    __tablename__ = "ledger_close_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'withdrawn')", name="close_request_status"),
        CheckConstraint("status <> 'approved' OR (decided_by IS NOT NULL AND decided_by <> requested_by)",
                        name="close_request_four_eyes"),
        Index("uq_ledger_close_requests_pending", "month", unique=True, postgresql_where=text("status = 'pending'")),
        Index("uq_ledger_close_requests_approved", "month", unique=True, postgresql_where=text("status = 'approved'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    month: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(36))
    requested_by_label: Mapped[str] = mapped_column(String(254))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checks: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    decided_by_label: Mapped[str | None] = mapped_column(String(254), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InvoiceRequestRow(Base):
    """An e-invoice (数电发票) Leaseline asks the invoice platform for (issue 19 §3, migration 0031,
    infra/invoicing.py): one per rent paid in full (``rent:<instalment>``) and per early settlement paid
    (``settlement:<quote>``), a red-letter one (``kind`` red) against the blue invoice it reverses (``original_id``) for
    a refund or a correction, and the blue one reissued after a red (``original_id``: the invoice it replaces). Its
    ``id`` is the platform's idempotency key (流水号). ``facts``: what was paid (JSON, fen), from which ``lines`` (JSON,
    the face's lines as sent) are made when it is sent; ``amount`` 价税合计, ``net`` and ``tax`` in fen (negative when
    red). The buyer's name and ID number are PII: AES-GCM (infra.pii, contexts ``invoice_buyer_name:<id>`` and
    ``invoice_buyer_id:<id>``), a masked copy beside. ``status``: requested → issued | rejected | pending (→ issued |
    rejected)."""

    __tablename__ = "invoice_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    application_id: Mapped[str] = mapped_column(String(36))
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # blue | red
    purpose: Mapped[str] = mapped_column(String(16))  # rent | settlement | refund | correction | reissue
    instalment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    receipt_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    quote_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    original_id: Mapped[str | None] = mapped_column(ForeignKey("invoice_requests.id"), nullable=True, index=True)
    reason_code: Mapped[str | None] = mapped_column(String(2), nullable=True)  # 冲红原因 01–04
    reason: Mapped[str] = mapped_column(String(255), default="")
    reissue: Mapped[bool] = mapped_column(Boolean, default=False)  # a red whose issue is followed by a reissue
    tax_point: Mapped[date] = mapped_column(Date)
    facts: Mapped[str] = mapped_column(Text, default="{}")
    lines: Mapped[str] = mapped_column(Text, default="[]")
    amount: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tax: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    buyer_name_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    buyer_id_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    buyer_id_masked: Mapped[str] = mapped_column(String(24), default="")
    status: Mapped[str] = mapped_column(String(12), index=True)
    platform: Mapped[str] = mapped_column(String(16), default="")
    number: Mapped[str | None] = mapped_column(String(20), nullable=True, unique=True)
    issued_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    confirmation: Mapped[str | None] = mapped_column(String(40), nullable=True)  # 红字发票信息确认单
    error_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxInvoiceRow(Base):
    """What the sandbox invoice platform issued (infra/invoice_sandbox.py, migration 0031): specimens, never invoices.
    ``request_key``: the request's 流水号 (the same key, the same invoice); ``payload``: the request as received, the
    buyer's ID number masked; ``polls``: the looks at a pending one."""

    __tablename__ = "sandbox_invoices"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    request_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # blue | red
    status: Mapped[str] = mapped_column(String(12))  # issued | pending
    payload: Mapped[str] = mapped_column(Text)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    original_number: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    confirmation: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
