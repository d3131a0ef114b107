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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any
from typing import Generic
from typing import TypeVar

from sqlalchemy import JSON
from sqlalchemy import Connection
from sqlalchemy import ScalarSelect
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement

from infra.db.engine import Database
from infra.pii import PiiVault
from risk import providers as data
from risk.db.models import AssessmentRow
from risk.db.models import ReviewCaseRow
from risk.db.models import ReviewDecisionRow
from risk.db.models import RiskBase
from risk.rules import Decision
from risk.rules import History
from risk.rules import ModelView
from risk.rules import Policy
from risk.rules import Rates
from risk.rules import evaluate
from risk.scoring import Model
from risk.snapshot import Snapshot
from risk.snapshot import mask_id_number
from risk.snapshot import mask_name

log = logging.getLogger(__name__)
T = TypeVar("T")

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


# --- prebuilt statements (compiled once per dialect and reused through SQLAlchemy's statement cache) -----------

_A = RiskBase.metadata.tables["risk_assessments"]
_P = RiskBase.metadata.tables["risk_provider_cache"]


def _count(*where: ColumnElement[bool]) -> ScalarSelect[int]:
    return select(func.count()).select_from(_A).where(*where).scalar_subquery()


_SINCE = _A.c.created_at >= bindparam("since")
_LIVE = or_(*(_A.c.outcome == outcome for outcome in LIVE))  # not IN: no expanding parameter to render


def _lookup(answers: ColumnElement[Any]) -> Select[Any]:
    """The assessment already made for this application id, the application that used this Idempotency-Key,
    the history counts (velocity by ID number, mobile and device; live financings of this customer through this
    dealer; the customer's exposure) and the providers' unexpired answers about this person (``answers``: a
    JSON array of ``[provider, response]`` pairs, aggregated by the dialect's own function), in one round trip."""
    return select(
        select(_A.c.id).where(_A.c.application_id == bindparam("application_id")).scalar_subquery().label("existing"),
        select(_A.c.application_id).where(_A.c.idempotency_key == bindparam("idempotency_key"))
        .scalar_subquery().label("key_owner"),
        _count(_A.c.id_hash == bindparam("id_hash"), _SINCE).label("same_id"),
        _count(_A.c.mobile_hash == bindparam("mobile_hash"), _SINCE).label("same_mobile"),
        _count(_A.c.device_hash == bindparam("device_hash"), _SINCE).label("same_device"),
        _count(_A.c.id_hash == bindparam("id_hash"), _A.c.dealer_id == bindparam("dealer_id"), _LIVE,
               _A.c.created_at >= bindparam("live_since")).label("live_same_dealer"),
        select(func.coalesce(func.sum(_A.c.financed_amount), 0)).where(_A.c.id_hash == bindparam("id_hash"), _LIVE)
        .scalar_subquery().label("customer_exposure"),
        select(answers).where(_P.c.subject_hash == bindparam("id_hash"), _P.c.expires_at > bindparam("now"))
        .scalar_subquery().label("cached"),
    )


LOOKUP_POSTGRESQL = _lookup(func.json_agg(func.json_build_array(_P.c.provider, _P.c.response), type_=JSON))
DEALER_EXPOSURE = select(func.coalesce(func.sum(_A.c.financed_amount), 0)).where(
    _A.c.dealer_id == bindparam("dealer_id"), _LIVE)
#: every dealer's (dealer_id, assessed, approved before the dealer rules, with a fraud signal) in the window
DEALER_RATES = select(_A.c.dealer_id, func.count(), func.count(case((_A.c.base_outcome == "approve", 1))),
                      func.count(case((_A.c.fraud_signal, 1)))).where(_SINCE).group_by(_A.c.dealer_id)
INSERT_ASSESSMENT = insert(_A)
INSERT_CASE = insert(RiskBase.metadata.tables["risk_review_cases"])


def _upsert_cache(dialect_insert: Any) -> Any:
    statement = dialect_insert(_P)
    return statement.on_conflict_do_update(
        index_elements=["provider", "subject_hash"],
        set_={"response": statement.excluded.response, "fetched_at": statement.excluded.fetched_at,
              "expires_at": statement.excluded.expires_at})


UPSERT_CACHE_POSTGRESQL = _upsert_cache(postgresql_insert)


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


@dataclass(frozen=True)
class DealerStats:
    """Every dealer's :class:`Rates` over the dealer-monitoring window and the portfolio's (their sum)."""

    dealers: dict[str, Rates]
    portfolio: Rates

    @classmethod
    def of(cls, rows: Iterable[tuple[str, int, int, int]]) -> DealerStats:
        """From ``(dealer_id, assessed, approved, fraud)`` rows."""
        dealers = {dealer: Rates(int(assessed), int(approved), int(fraud))
                   for dealer, assessed, approved, fraud in rows}
        values = dealers.values()
        return cls(dealers, Rates(sum(r.assessed for r in values), sum(r.approved for r in values),
                                  sum(r.fraud for r in values)))


class Reused(Generic[T]):
    """A value read again at most every ``ttl`` seconds (per process). When it has expired, one thread reads
    it again while the others keep the previous value rather than queueing behind that read; only the very
    first read is waited for. ``ttl`` 0 reads on every call."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._value: tuple[T, float] | None = None  # (value, expires at)
        self._lock = threading.Lock()

    def get(self, read: Callable[[], T]) -> T:
        if self.ttl <= 0:
            return read()
        held = self._value
        if held is not None and (held[1] > self._clock() or not self._lock.acquire(blocking=False)):
            return held[0]  # fresh, or stale while another thread reads the new value
        if held is None:
            self._lock.acquire()
        try:
            held = self._value
            if held is None or held[1] <= self._clock():
                held = self._value = (read(), self._clock() + self.ttl)
            return held[0]
        finally:
            self._lock.release()


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


class RiskService:
    """Assessments and the review queue over one database."""

    def __init__(self, db: Database, policy: Policy, model: Model, hub: data.ProviderHub, vault: PiiVault,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), dealer_stats_ttl: float = 30.0) -> None:
        self.db = db
        self.policy = policy
        self.model = model
        self.hub = hub
        self.vault = vault
        self.clock = clock
        self._exposure: dict[str, tuple[Decimal, float]] = {}
        self._exposure_lock = threading.Lock()
        self._dealer_stats: Reused[DealerStats] = Reused(dealer_stats_ttl)
        self._lookup = LOOKUP_POSTGRESQL
        self._upsert_cache = UPSERT_CACHE_POSTGRESQL

    def close(self) -> None:
        """Nothing of its own to release (the database's pool is the composition root's)."""

    # --- assessments ----------------------------------------------------------------------------------------

    def assess(self, snapshot: Snapshot, idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Assess ``snapshot``; ``(assessment, created)``. The same application id again returns the first one.

        One pooled connection per assessment: one read in autocommit (the existing assessment, the history counts
        and the cached provider answers: :func:`_lookup`), then a short write transaction with inserts only. The
        statements are prebuilt Core statements: building ORM statements per request was most of an
        assessment's CPU time."""
        a = snapshot.applicant
        id_hash = self.vault.lookup_hash(a.id_number, "id_number")
        mobile_hash = self.vault.lookup_hash(a.mobile, "mobile") if a.mobile else None
        device_hash = self.vault.lookup_hash(f"{snapshot.device.ip}|{snapshot.device.user_agent_hash}", "device")
        now = self.clock()
        p = self.policy
        with self.db.engine.connect() as conn:
            # reads outside a transaction (each statement is consistent on its own): PostgreSQL is spared a BEGIN
            # and a ROLLBACK round trip, and no snapshot is held while the providers are asked
            conn.execution_options(isolation_level="AUTOCOMMIT")
            found = conn.execute(self._lookup, {
                "application_id": snapshot.application_id, "idempotency_key": idempotency_key,
                "id_hash": id_hash, "mobile_hash": mobile_hash, "device_hash": device_hash,
                "dealer_id": snapshot.dealer_id, "since": now - timedelta(hours=p.window_hours),
                "live_since": now - timedelta(days=p.multi_vehicle_window_days), "now": now}).one()
            if found.existing is not None or found.key_owner is not None:  # known application, or a reused key
                existing = self._existing(snapshot.application_id, idempotency_key)
                if existing is not None:
                    return existing, False
            cached: dict[str, dict[str, Any]] = dict(found.cached or ())
            dealer, portfolio = self._dealer_rates(conn, snapshot.dealer_id, now)
            history = History(same_id=int(found.same_id), same_mobile=int(found.same_mobile),
                              same_device=int(found.same_device), live_same_dealer=int(found.live_same_dealer),
                              customer_exposure=Decimal(str(found.customer_exposure or 0)),
                              dealer_exposure=self._dealer_exposure(conn, snapshot.dealer_id), dealer=dealer,
                              portfolio=portfolio)

            subject = data.Subject(a.id_number, id_hash, a.name, a.monthly_income)
            gathered = self.hub.gather(subject, cached)
            plain = snapshot.as_dict()
            scored = dict(plain)
            bank = gathered.responses.get("bank", {})
            if not scored.get("bank_account") and bank.get("status"):  # the bank-statement check, when we had none
                scored["bank_account"] = {"status": bank["status"]}
            model = self.model.assess(scored)
            decision = evaluate(snapshot, model, data.facts(gathered), history, p)

            row, case_row, fresh = self._rows(snapshot, idempotency_key, (id_hash, mobile_hash, device_hash), plain,
                                              gathered, model, decision, now)
            # a short write transaction with inserts only
            conn.rollback()  # ends SQLAlchemy's autobegun transaction only: nothing reaches the database
            conn.execution_options(isolation_level=conn.default_isolation_level)
            try:
                with conn.begin():
                    conn.execute(INSERT_ASSESSMENT, row)
                    if case_row is not None:
                        conn.execute(INSERT_CASE, case_row)
                    if fresh:  # a concurrent assessment of the same person may race: upsert
                        conn.execute(self._upsert_cache, fresh)
            except IntegrityError:  # a concurrent request for the same application (or key) won the race
                existing = self._existing(snapshot.application_id, idempotency_key)
                if existing is None:
                    raise
                return existing, False
        if decision.outcome in LIVE:
            self._dealer_exposure_add(snapshot.dealer_id, snapshot.plan.financed_amount)
        log.info("assessment %s application %s: %s tier %s pd %.4f", row["id"], snapshot.application_id,
                 decision.outcome, decision.tier, model.pd)
        return self._new_assessment_json(row, case_row), True

    def _rows(self, snapshot: Snapshot, idempotency_key: str | None, hashes: tuple[str, str | None, str],
              plain: dict[str, Any], gathered: data.Gathered, model: ModelView, decision: Decision,
              now: datetime) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        """What an assessment inserts: its row, its review case when referred, the providers' fresh answers."""
        a, p = snapshot.applicant, self.policy
        id_hash, mobile_hash, device_hash = hashes
        stored = {**plain, "applicant": {**plain["applicant"], "id_number": mask_id_number(a.id_number),
                                         "name": mask_name(a.name)}}
        stored["applicant"].pop("mobile", None)
        referred = decision.outcome == "refer"
        sandbox = any(bool(r.get("sandbox")) for r in gathered.responses.values()) or not gathered.responses
        row: dict[str, Any] = {
            "id": uuid.uuid4().hex, "application_id": snapshot.application_id, "idempotency_key": idempotency_key,
            "dealer_id": snapshot.dealer_id, "id_hash": id_hash, "mobile_hash": mobile_hash,
            "device_hash": device_hash, "financed_amount": snapshot.plan.financed_amount, "snapshot": stored,
            "providers": data.summary(gathered), "auto_outcome": decision.outcome, "outcome": decision.outcome,
            "base_outcome": decision.base_outcome, "fraud_signal": decision.fraud_signal, "tier": decision.tier,
            "score": model.score, "pd": round(model.pd, 6), "reasons": [r.as_dict() for r in decision.reasons],
            "conditions": [c.as_dict() for c in decision.conditions], "policy_version": p.version,
            "model_version": self.model.version, "sandbox": sandbox, "decided_by": "" if referred else "auto",
            "created_at": now, "decided_at": None if referred else now}
        case_row: dict[str, Any] | None = None
        if referred:
            hours = p.sla_hours_tier2 if decision.tier == 2 else p.sla_hours_tier1
            case_row = {"id": uuid.uuid4().hex, "assessment_id": row["id"], "tier": decision.tier, "state": "open",
                        "claimed_by": None, "claimed_at": None, "sla_due_at": now + timedelta(hours=hours),
                        "created_at": now, "decided_at": None, "final_decision": None, "version": 0}
        fresh = [{"provider": name, "subject_hash": id_hash, "response": gathered.responses[name], "fetched_at": now,
                  "expires_at": now + timedelta(seconds=self.hub.ttl(name))} for name in gathered.fresh]
        return row, case_row, fresh

    def _existing(self, application_id: str, idempotency_key: str | None) -> dict[str, Any] | None:
        with self.db.session() as session:
            return self._existing_in(session, application_id, idempotency_key, self.clock())

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

    def _dealer_exposure(self, conn: Connection, dealer_id: str) -> Decimal:
        """Total financed (approved or referred) through a dealer. A dealer has many applications, so the sum
        is cached per process for ``DEALER_EXPOSURE_TTL`` seconds: the limit is coarse (¥200m in policy v1)
        and a few seconds' staleness is far below one vehicle's share of it."""
        now = time.monotonic()
        with self._exposure_lock:
            hit = self._exposure.get(dealer_id)
            if hit is not None and hit[1] > now:
                return hit[0]
        total = Decimal(str(conn.scalar(DEALER_EXPOSURE, {"dealer_id": dealer_id}) or 0))
        with self._exposure_lock:
            self._exposure[dealer_id] = (total, now + DEALER_EXPOSURE_TTL)
        return total

    def _dealer_exposure_add(self, dealer_id: str, amount: Decimal) -> None:
        with self._exposure_lock:
            hit = self._exposure.get(dealer_id)
            if hit is not None:
                self._exposure[dealer_id] = (hit[0] + amount, hit[1])

    def _dealer_rates(self, conn: Connection, dealer_id: str, now: datetime) -> tuple[Rates, Rates]:
        """This dealer's and the whole portfolio's automatic outcomes over the policy's dealer window, from one
        grouped query over every dealer, reused per process for ``dealer_stats_ttl`` seconds (a coarse
        monitoring signal over days needs no fresher data)."""
        stats = self._dealer_stats.get(lambda: DealerStats.of(conn.execute(DEALER_RATES, {
            "since": now - timedelta(days=self.policy.dealer_window_days)})))
        return stats.dealers.get(dealer_id, Rates()), stats.portfolio

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

    @staticmethod
    def _new_assessment_json(row: dict[str, Any], case_row: dict[str, Any] | None) -> dict[str, Any]:
        """:meth:`_assessment_json` of an assessment just inserted, from the inserted values."""
        review = None
        if case_row is not None:
            review = {
                "id": case_row["id"], "assessment_id": row["id"], "tier": case_row["tier"], "state": "open",
                "claimed_by": None, "claimed_at": None, "created_at": _iso(case_row["created_at"]),
                "sla_due_at": _iso(case_row["sla_due_at"]), "age_seconds": 0, "overdue": False,
                "final_decision": None, "decided_at": None, "approvals_needed": 2 if case_row["tier"] == 2 else 1,
                "decisions": [],
            }
        return {
            "id": row["id"], "application_id": row["application_id"], "dealer_id": row["dealer_id"],
            "outcome": row["outcome"], "tier": row["tier"], "score": row["score"], "pd": row["pd"],
            "reasons": row["reasons"], "conditions": row["conditions"], "policy_version": row["policy_version"],
            "model_version": row["model_version"], "sandbox": row["sandbox"], "auto_outcome": row["auto_outcome"],
            "decided_by": row["decided_by"] or None, "financed_amount": f"{row['financed_amount']:.2f}",
            "providers": row["providers"], "review": review,
            "created_at": _iso(row["created_at"]), "decided_at": _iso(row["decided_at"]),
        }

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

    def reviews(self, state: str | None, tier: int | None, limit: int = 100,
                officer_id: str | None = None) -> list[dict[str, Any]]:
        """The queue, most urgent (earliest SLA) first; with ``officer_id``, the cases that officer decided (one
        decision per officer per case), their latest decision first."""
        if officer_id is None:
            query = select(ReviewCaseRow).order_by(ReviewCaseRow.sla_due_at, ReviewCaseRow.id).limit(limit)
        else:
            query = (select(ReviewCaseRow)
                     .join(ReviewDecisionRow, (ReviewDecisionRow.case_id == ReviewCaseRow.id)
                           & (ReviewDecisionRow.officer_id == officer_id))
                     .order_by(ReviewDecisionRow.created_at.desc(), ReviewDecisionRow.id.desc()).limit(limit))
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
