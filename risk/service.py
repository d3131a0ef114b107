"""The risk service's use cases: assess an application, read assessments, work the review queue.

Orchestration only: parsing lives in :mod:`risk.snapshot`, the decision in :mod:`risk.rules` (pure), data in
:mod:`risk.providers`, scoring behind :class:`risk.scoring.Model`. Domain errors here (:class:`NotFound`,
:class:`Conflict`, :class:`NotAllowed`) are mapped to HTTP by :mod:`risk.errors`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from infra.db.engine import Database
from infra.pii import PiiVault
from risk import providers as data
from risk.db.models import AssessmentRow
from risk.db.models import ProviderCacheRow
from risk.db.models import ReviewCaseRow
from risk.db.models import ReviewDecisionRow
from risk.rules import History
from risk.rules import Policy
from risk.rules import evaluate
from risk.scoring import Model
from risk.snapshot import Snapshot
from risk.snapshot import mask_id_number
from risk.snapshot import mask_name

log = logging.getLogger(__name__)

OFFICER_ROLES = ("risk_officer_t1", "risk_officer_t2")
DECISIONS = ("approve", "decline", "counter_offer")
LIVE = ("approve", "refer")
DEALER_EXPOSURE_TTL = 5.0
REVIEW_REASONS = {
    "approve": ("人工审核批准", "Approved on manual review"),
    "decline": ("人工审核拒绝", "Declined on manual review"),
    "counter_offer": ("人工审核给出调整方案", "Approved on manual review with a counter-offer"),
}


class NotFound(LookupError):
    """No such assessment or review case."""


class Conflict(Exception):
    """The action does not fit the current state (claimed by another officer, already decided, …)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class NotAllowed(Exception):
    """The officer's role may not do this (a tier-2 case needs risk_officer_t2)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class CounterOffer:
    down_payment: Decimal | None = None
    term: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.down_payment is not None:
            out["down_payment"] = f"{self.down_payment:.2f}"
        if self.term is not None:
            out["term"] = self.term
        return out


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


class RiskService:
    """Assessments and the review queue over one database."""

    def __init__(self, db: Database, policy: Policy, model: Model, hub: data.ProviderHub, vault: PiiVault,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.policy = policy
        self.model = model
        self.hub = hub
        self.vault = vault
        self.clock = clock
        self._exposure: dict[str, tuple[Decimal, float]] = {}
        self._exposure_lock = threading.Lock()

    # --- assessments ----------------------------------------------------------------------------------------

    def assess(self, snapshot: Snapshot, idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Assess ``snapshot``; ``(assessment, created)``. The same application id again returns the first one."""
        a = snapshot.applicant
        id_hash = self.vault.lookup_hash(a.id_number, "id_number")
        mobile_hash = self.vault.lookup_hash(a.mobile, "mobile") if a.mobile else None
        device_hash = self.vault.lookup_hash(f"{snapshot.device.ip}|{snapshot.device.user_agent_hash}", "device")
        now = self.clock()

        # one read-only unit of work: the existing assessment, cached provider answers, the history counts
        with self.db.session() as session:
            existing = self._existing_in(session, snapshot.application_id, idempotency_key, now)
            if existing is not None:
                return existing, False
            cached = {row.provider: row.response for row in session.scalars(select(ProviderCacheRow).where(
                ProviderCacheRow.subject_hash == id_hash, ProviderCacheRow.expires_at > now))}
            history = self._history(session, snapshot, id_hash, mobile_hash, device_hash, now)
        subject = data.Subject(a.id_number, id_hash, a.name, a.monthly_income)
        gathered = self.hub.gather(subject, cached)
        scored = snapshot.as_dict()
        bank = gathered.responses.get("bank", {})
        if not scored.get("bank_account") and bank.get("status"):  # the bank-statement check, when we had none
            scored["bank_account"] = {"status": bank["status"]}
        model = self.model.assess(scored)
        facts = data.facts(gathered)
        sandbox = any(bool(r.get("sandbox")) for r in gathered.responses.values()) or not gathered.responses

        decision = evaluate(snapshot, model, facts, history, self.policy)
        stored = snapshot.as_dict()
        stored["applicant"]["id_number"] = mask_id_number(a.id_number)
        stored["applicant"]["name"] = mask_name(a.name)
        stored["applicant"].pop("mobile", None)
        # a short write transaction with inserts only (on SQLite it holds the write lock for a moment)
        try:
            with self.db.session() as session:
                row = AssessmentRow(
                    id=uuid.uuid4().hex, application_id=snapshot.application_id, idempotency_key=idempotency_key,
                    dealer_id=snapshot.dealer_id, id_hash=id_hash, mobile_hash=mobile_hash, device_hash=device_hash,
                    financed_amount=snapshot.plan.financed_amount, snapshot=stored,
                    providers=data.summary(gathered), auto_outcome=decision.outcome, outcome=decision.outcome,
                    tier=decision.tier, score=model.score, pd=round(model.pd, 6),
                    reasons=[r.as_dict() for r in decision.reasons],
                    conditions=[c.as_dict() for c in decision.conditions],
                    policy_version=self.policy.version, model_version=self.model.version, sandbox=sandbox,
                    decided_by="" if decision.outcome == "refer" else "auto", created_at=now,
                    decided_at=None if decision.outcome == "refer" else now)
                session.add(row)
                if decision.outcome == "refer":
                    hours = self.policy.sla_hours_tier2 if decision.tier == 2 else self.policy.sla_hours_tier1
                    row.review = ReviewCaseRow(id=uuid.uuid4().hex, tier=decision.tier, state="open",
                                               sla_due_at=now + timedelta(hours=hours), created_at=now)
                session.flush()
                self._cache(session, gathered, id_hash, now)
                result = self._assessment_json(row, now)
        except IntegrityError:  # a concurrent request for the same application (or key) won the race
            with self.db.session() as session:
                existing = self._existing_in(session, snapshot.application_id, idempotency_key, self.clock())
            if existing is None:
                raise
            return existing, False
        if decision.outcome in LIVE:
            self._dealer_exposure_add(snapshot.dealer_id, snapshot.plan.financed_amount)
        log.info("assessment %s application %s: %s tier %s pd %.4f", result["id"], snapshot.application_id,
                 result["outcome"], result["tier"], model.pd)
        return result, True

    def _existing_in(self, session: Session, application_id: str, idempotency_key: str | None,
                     now: datetime) -> dict[str, Any] | None:
        row = session.scalar(select(AssessmentRow).where(AssessmentRow.application_id == application_id))
        if row is not None:
            return self._assessment_json(row, now)
        if idempotency_key:
            other = session.scalar(select(AssessmentRow.application_id).where(
                AssessmentRow.idempotency_key == idempotency_key))
            if other is not None:
                raise Conflict("idempotency_key_reused", "This Idempotency-Key was used for another application.")
        return None

    def _dealer_exposure(self, session: Session, dealer_id: str) -> Decimal:
        """Total financed (approved or referred) through a dealer. A dealer has many applications, so the sum
        is cached per process for ``DEALER_EXPOSURE_TTL`` seconds: the limit is coarse (¥200m in policy v1)
        and a few seconds' staleness is far below one vehicle's share of it."""
        now = time.monotonic()
        with self._exposure_lock:
            hit = self._exposure.get(dealer_id)
            if hit is not None and hit[1] > now:
                return hit[0]
        t = AssessmentRow
        total = Decimal(str(session.scalar(select(func.coalesce(func.sum(t.financed_amount), 0)).where(
            t.dealer_id == dealer_id, t.outcome.in_(LIVE))) or 0))
        with self._exposure_lock:
            self._exposure[dealer_id] = (total, now + DEALER_EXPOSURE_TTL)
        return total

    def _dealer_exposure_add(self, dealer_id: str, amount: Decimal) -> None:
        with self._exposure_lock:
            hit = self._exposure.get(dealer_id)
            if hit is not None:
                self._exposure[dealer_id] = (hit[0] + amount, hit[1])

    def _history(self, session: Session, snapshot: Snapshot, id_hash: str, mobile_hash: str | None,
                 device_hash: str, now: datetime) -> History:
        p = self.policy
        since = now - timedelta(hours=p.window_hours)
        live_since = now - timedelta(days=p.multi_vehicle_window_days)
        t = AssessmentRow
        live = t.outcome.in_(LIVE)
        same_id, live_dealer, exposure = session.execute(select(
            func.count(case((t.created_at >= since, 1))),
            func.count(case((live & (t.dealer_id == snapshot.dealer_id) & (t.created_at >= live_since), 1))),
            func.coalesce(func.sum(case((live, t.financed_amount))), 0),
        ).where(t.id_hash == id_hash)).one()
        same_mobile = session.scalar(select(func.count()).where(
            t.mobile_hash == mobile_hash, t.created_at >= since)) if mobile_hash else 0
        same_device = session.scalar(select(func.count()).where(t.device_hash == device_hash, t.created_at >= since))
        dealer = self._dealer_exposure(session, snapshot.dealer_id)
        return History(same_id=int(same_id), same_mobile=int(same_mobile or 0), same_device=int(same_device or 0),
                       live_same_dealer=int(live_dealer), customer_exposure=Decimal(str(exposure)),
                       dealer_exposure=Decimal(str(dealer or 0)))

    def _cache(self, session: Session, gathered: data.Gathered, id_hash: str, now: datetime) -> None:
        """Upsert the fresh answers in one statement (a concurrent assessment of the same person may race)."""
        rows = [{"provider": name, "subject_hash": id_hash, "response": gathered.responses[name], "fetched_at": now,
                 "expires_at": now + timedelta(seconds=self.hub.ttl(name))} for name in gathered.fresh]
        if not rows:
            return
        upsert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
        statement = upsert(ProviderCacheRow).values(rows)
        session.execute(statement.on_conflict_do_update(
            index_elements=["provider", "subject_hash"],
            set_={"response": statement.excluded.response, "fetched_at": statement.excluded.fetched_at,
                  "expires_at": statement.excluded.expires_at}))

    def get(self, assessment_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(AssessmentRow, assessment_id)
            if row is None:
                raise NotFound("assessment")
            return self._assessment_json(row, self.clock())

    def find(self, application_id: str | None, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.session() as session:
            query = select(AssessmentRow).order_by(AssessmentRow.created_at.desc()).limit(limit)
            if application_id is not None:
                query = query.where(AssessmentRow.application_id == application_id)
            now = self.clock()
            return [self._assessment_json(row, now) for row in session.scalars(query)]

    def _assessment_json(self, row: AssessmentRow, now: datetime) -> dict[str, Any]:
        return {
            "id": row.id, "application_id": row.application_id, "dealer_id": row.dealer_id,
            "outcome": row.outcome, "tier": row.tier, "score": row.score, "pd": row.pd,
            "reasons": row.reasons, "conditions": row.conditions, "policy_version": row.policy_version,
            "model_version": row.model_version, "sandbox": row.sandbox, "auto_outcome": row.auto_outcome,
            "decided_by": row.decided_by or None, "financed_amount": f"{row.financed_amount:.2f}",
            "providers": row.providers,
            "review": self._review_json(row.review, now, with_assessment=False) if row.review else None,
            "created_at": _iso(row.created_at), "decided_at": _iso(row.decided_at),
        }

    # --- review queue ---------------------------------------------------------------------------------------

    def _review_json(self, case_row: ReviewCaseRow, now: datetime, with_assessment: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": case_row.id, "assessment_id": case_row.assessment_id, "tier": case_row.tier,
            "state": case_row.state, "claimed_by": case_row.claimed_by, "claimed_at": _iso(case_row.claimed_at),
            "created_at": _iso(case_row.created_at), "sla_due_at": _iso(case_row.sla_due_at),
            "age_seconds": max(int((now - case_row.created_at).total_seconds()), 0),
            "overdue": case_row.state != "decided" and now > case_row.sla_due_at,
            "final_decision": case_row.final_decision, "decided_at": _iso(case_row.decided_at),
            "approvals_needed": 2 if case_row.tier == 2 else 1,
            "decisions": [{"officer_id": d.officer_id, "officer_role": d.officer_role, "decision": d.decision,
                           "comment": d.comment, "counter_offer": d.counter_offer, "decided_at": _iso(d.created_at)}
                          for d in case_row.decisions],
        }
        if with_assessment:
            a = case_row.assessment
            out["application_id"] = a.application_id
            out["assessment"] = self._assessment_json(a, now) | {"review": None, "snapshot": a.snapshot}
        return out

    def reviews(self, state: str | None, tier: int | None, limit: int = 100) -> list[dict[str, Any]]:
        """The queue, most urgent (earliest SLA) first."""
        query = select(ReviewCaseRow).order_by(ReviewCaseRow.sla_due_at, ReviewCaseRow.id).limit(limit)
        if state is not None:
            query = query.where(ReviewCaseRow.state == state)
        if tier is not None:
            query = query.where(ReviewCaseRow.tier == tier)
        with self.db.session() as session:
            now = self.clock()
            return [self._review_json(row, now) for row in session.scalars(query)]

    def review(self, case_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(ReviewCaseRow, case_id)
            if row is None:
                raise NotFound("review")
            return self._review_json(row, self.clock())

    @staticmethod
    def _check_role(row: ReviewCaseRow, role: str) -> None:
        if row.tier == 2 and role != "risk_officer_t2":
            raise NotAllowed("A tier-2 case needs a risk_officer_t2.")

    def claim(self, case_id: str, officer_id: str, role: str) -> dict[str, Any]:
        """Take a case: open → claimed. Claiming again by the same officer is a no-op."""
        try:
            with self.db.session() as session:
                row = session.get(ReviewCaseRow, case_id)
                if row is None:
                    raise NotFound("review")
                self._check_role(row, role)
                if row.state == "decided":
                    raise Conflict("already_decided", "The case is already decided.")
                if any(d.officer_id == officer_id for d in row.decisions):
                    raise Conflict("four_eyes", "You already decided this case; a different officer must decide.")
                if row.state == "claimed" and row.claimed_by != officer_id:
                    raise Conflict("claimed_by_another", "Another officer has claimed the case.")
                if row.state != "claimed":
                    now = self.clock()
                    row.state, row.claimed_by, row.claimed_at = "claimed", officer_id, now
                session.flush()
                return self._review_json(row, self.clock())
        except StaleDataError:
            raise Conflict("claimed_by_another", "Another officer claimed the case at the same moment.") from None

    def decide(self, case_id: str, officer_id: str, role: str, decision: str, comment: str,
               counter_offer: CounterOffer | None) -> dict[str, Any]:
        """Record an officer's decision; tier 1 is final, tier 2 is final when two different officers agree."""
        try:
            with self.db.session() as session:
                row = session.get(ReviewCaseRow, case_id)
                if row is None:
                    raise NotFound("review")
                self._check_role(row, role)
                if row.state == "decided":
                    raise Conflict("already_decided", "The case is already decided.")
                if row.state != "claimed" or row.claimed_by != officer_id:
                    raise Conflict("not_claimed", "Claim the case before deciding it.")
                now = self.clock()
                offer = counter_offer.as_dict() if counter_offer else None
                row.decisions.append(ReviewDecisionRow(officer_id=officer_id, officer_role=role, decision=decision,
                                                       comment=comment, counter_offer=offer, created_at=now))
                agreeing = {d.officer_id for d in row.decisions if d.decision == decision}
                if row.tier < 2 or len(agreeing) >= 2:
                    self._finalise(row, decision, offer, now)
                else:  # four eyes: wait for a second, different officer
                    row.state, row.claimed_by, row.claimed_at = "open", None, None
                session.flush()
                return self._review_json(row, now)
        except StaleDataError:
            raise Conflict("concurrent_update", "The case changed at the same moment; reload it.") from None

    @staticmethod
    def _finalise(row: ReviewCaseRow, decision: str, offer: dict[str, Any] | None, now: datetime) -> None:
        row.state, row.final_decision, row.decided_at = "decided", decision, now
        row.claimed_by = row.claimed_by  # kept: who completed it
        a = row.assessment
        a.outcome = "decline" if decision == "decline" else "approve"
        zh, en = REVIEW_REASONS[decision]
        a.reasons = [*a.reasons, {"code": f"REVIEW_{decision.upper()}", "text_zh": zh, "text_en": en}]
        if decision == "counter_offer" and offer:
            terms = ", ".join(f"{k}={v}" for k, v in offer.items())
            a.conditions = [*a.conditions, {"code": "COUNTER_OFFER", "text_zh": f"按调整方案批准：{terms}",
                                            "text_en": f"Approved on these terms: {terms}", **offer}]
        a.decided_by, a.decided_at = "review", now
