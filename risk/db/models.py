"""The risk service's tables (SQLAlchemy 2 typed models). Schema changes go through its Alembic migrations.

Every table is prefixed ``risk_`` and the migration history lives in ``risk_alembic_version``, so the service
can share a PostgreSQL database with the BFF (or use its own database or schema).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from infra.db.models import NAMING
from infra.db.models import UTCDateTime


class RiskBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AssessmentRow(RiskBase):
    """One application's assessment. The snapshot is stored with the ID number masked; ``id_hash`` is the
    keyed hash (HMAC, infra.pii) used for velocity and exposure look-ups."""

    __tablename__ = "risk_assessments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    application_id: Mapped[str] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    dealer_id: Mapped[str] = mapped_column(String(64))
    id_hash: Mapped[str] = mapped_column(String(64))
    mobile_hash: Mapped[str | None] = mapped_column(String(64))
    device_hash: Mapped[str] = mapped_column(String(64))
    financed_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    providers: Mapped[dict[str, Any]] = mapped_column(JSON)
    auto_outcome: Mapped[str] = mapped_column(String(8))
    #: the outcome before the dealer-level rules (risk.rules.Decision.base_outcome): the dealer-monitoring rate
    base_outcome: Mapped[str] = mapped_column(String(8))
    #: a fraud or velocity signal fired (risk.rules.FRAUD_SIGNALS): the dealer-monitoring fraud rate
    fraud_signal: Mapped[bool] = mapped_column(Boolean, server_default=false())
    outcome: Mapped[str] = mapped_column(String(8))
    tier: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    pd: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    policy_version: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(64))
    sandbox: Mapped[bool] = mapped_column(Boolean)
    decided_by: Mapped[str] = mapped_column(String(8))  # auto | review | (empty while referred)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    review: Mapped[ReviewCaseRow | None] = relationship(back_populates="assessment", lazy="selectin")

    __table_args__ = (
        Index("ix_risk_assessments_id_hash_created", "id_hash", "created_at"),
        Index("ix_risk_assessments_mobile_hash_created", "mobile_hash", "created_at"),
        Index("ix_risk_assessments_device_hash_created", "device_hash", "created_at"),
        Index("ix_risk_assessments_dealer_outcome", "dealer_id", "outcome"),
        # covers the dealer-monitoring query: a window of created_at grouped by dealer, read from the index alone
        Index("ix_risk_assessments_dealer_window", "created_at", "dealer_id", "base_outcome", "fraud_signal"),
    )


class ReviewCaseRow(RiskBase):
    """A referred assessment in the human review queue. Tier 2 needs two different officers agreeing."""

    __tablename__ = "risk_review_cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("risk_assessments.id"), unique=True)
    tier: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(8))  # open | claimed | decided
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sla_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    final_decision: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=0)  # optimistic lock against concurrent claims

    assessment: Mapped[AssessmentRow] = relationship(back_populates="review", lazy="selectin")
    decisions: Mapped[list[ReviewDecisionRow]] = relationship(
        back_populates="case", lazy="selectin", order_by="ReviewDecisionRow.id")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_risk_review_cases_state_due", "state", "sla_due_at"),)


class ReviewDecisionRow(RiskBase):
    """One officer's decision on a case (one per officer per case)."""

    __tablename__ = "risk_review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("risk_review_cases.id"))
    officer_id: Mapped[str] = mapped_column(String(64))
    officer_role: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))  # approve | decline | counter_offer
    comment: Mapped[str] = mapped_column(Text)
    counter_offer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case: Mapped[ReviewCaseRow] = relationship(back_populates="decisions")

    __table_args__ = (UniqueConstraint("case_id", "officer_id"),)


class ProviderCacheRow(RiskBase):
    """A data provider's answer, cached by the keyed hash of the ID number (never the number)."""

    __tablename__ = "risk_provider_cache"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # read by subject (every provider's answer about one person): the primary key leads with the provider
    __table_args__ = (Index("ix_risk_provider_cache_subject_hash", "subject_hash"),)
