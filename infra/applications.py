"""Credit applications in SQL: the rows, their transitions, consents, KYC documents and checks.

Scoping is not decided here: callers pass a :class:`Scope` built in one place (``bff.applications.access``)
and every read goes through :meth:`SqlApplications._scoped`, so no query can forget the tenant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import object_session

from infra.db.engine import Database
from infra.db.models import ApplicationEventRow
from infra.db.models import ApplicationRow
from infra.db.models import ConsentRow
from infra.db.models import EvidenceOutboxRow
from infra.db.models import IdempotencyRow
from infra.db.models import KycCheckRow
from infra.db.models import KycDocumentRow
from infra.db.models import SigningCodeRow
from infra.db.models import utcnow


@dataclass(frozen=True)
class Scope:
    """Which applications a caller may see: all (lessor), a dealer's, a salesperson's own, or a customer's."""

    dealer_id: str | None = None  # None: every dealer (lessor roles)
    owner_id: str | None = None  # a salesperson: only the applications they own
    mobile_hash: str | None = None  # a customer: only their own (by verified mobile)


@dataclass(frozen=True)
class Application:
    id: str
    dealer_id: str
    owner_id: str | None
    invitation_id: str | None
    status: str
    vehicle_id: str
    vehicle_label: str
    plan_code: str
    plan: dict[str, Any]
    draft_enc: str
    customer_name: str
    id_masked: str
    id_hash: str | None
    mobile_masked: str
    mobile_hash: str | None
    face_attempts: int
    version: int
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    risk_assessment_id: str | None = None
    risk_result: dict[str, Any] = field(default_factory=dict)
    risk_attempts: int = 0
    contract_id: str | None = None
    contract: dict[str, Any] = field(default_factory=dict)
    contract_attempts: int = 0


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    application_id: str
    key: str
    kind: str
    data: dict[str, Any]
    occurred_at: datetime
    attempts: int


@dataclass(frozen=True)
class Event:
    at: datetime
    actor_kind: str
    actor_id: str
    from_status: str
    to_status: str
    note: str


@dataclass(frozen=True)
class Consent:
    purpose: str
    text_version: str
    text_sha256: str
    given_at: datetime
    actor_kind: str
    withdrawn_at: datetime | None = None  # a withdrawn consent no longer counts (its row stays, as evidence)


@dataclass(frozen=True)
class Document:
    id: str
    application_id: str
    kind: str
    object_key: str
    sha256: str
    size: int
    content_type: str
    biometric: bool
    created_at: datetime
    deleted_at: datetime | None


#: a check's ``detail`` while it runs: the ids of the documents it is about (the upload's, then what its job keeps)
CHECK_DOCUMENTS = "documents"
#: a running check's ``outcome`` once its job has its result and is applying it (:meth:`SqlApplications.claim_finish`)
FINISHING = "finishing"


@dataclass(frozen=True)
class Check:
    id: str
    application_id: str
    kind: str
    state: str
    outcome: str
    detail: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


def _app(r: ApplicationRow) -> Application:
    return Application(r.id, r.dealer_id, r.owner_id, r.invitation_id, r.status, r.vehicle_id, r.vehicle_label,
                       r.plan_code, json.loads(r.plan_json), r.draft_enc, r.customer_name, r.id_masked, r.id_hash,
                       r.mobile_masked, r.mobile_hash, r.face_attempts, r.version, r.created_at, r.updated_at,
                       r.submitted_at, r.decided_at, r.risk_assessment_id, json.loads(r.risk_result or "{}"),
                       r.risk_attempts, r.contract_id, json.loads(r.contract_result or "{}"),
                       r.contract_attempts)


def _doc(r: KycDocumentRow) -> Document:
    return Document(r.id, r.application_id, r.kind, r.object_key, r.sha256, r.size, r.content_type, r.biometric,
                    r.created_at, r.deleted_at)


def _check(r: KycCheckRow) -> Check:
    return Check(r.id, r.application_id, r.kind, r.state, r.outcome, json.loads(r.detail), r.created_at,
                 r.finished_at)


class SqlApplications:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads, always scoped ------------------------------------------------------------------------------
    @staticmethod
    def _scoped(stmt: Select[tuple[ApplicationRow]], scope: Scope) -> Select[tuple[ApplicationRow]]:
        if scope.dealer_id is not None:
            stmt = stmt.where(ApplicationRow.dealer_id == scope.dealer_id)
        if scope.owner_id is not None:
            stmt = stmt.where(ApplicationRow.owner_id == scope.owner_id)
        if scope.mobile_hash is not None:
            stmt = stmt.where(ApplicationRow.mobile_hash == scope.mobile_hash)
        return stmt

    def get(self, application_id: str, scope: Scope) -> Application | None:
        """The application ``application_id`` names exactly (a longer id is none: never the one its first 36
        characters name, which a URL's id with characters after it would reach under rate limits keyed on the URL's
        id), if ``scope`` sees it."""
        if len(application_id) != 36:
            return None
        stmt = self._scoped(select(ApplicationRow).where(ApplicationRow.id == application_id), scope)
        with self.db.session() as session:
            row = session.scalars(stmt).first()
            return _app(row) if row else None

    def search(self, scope: Scope, *, statuses: Sequence[str] = (), text: str = "", hashes: Sequence[str] = (),
               limit: int = 50, offset: int = 0, updated_since: datetime | None = None) -> list[Application]:
        """Newest first (the id breaks ties, so that pages by ``offset`` neither repeat nor skip a row). ``text``
        matches the name or the id prefix; ``hashes`` the ID or mobile look-up hash; ``updated_since`` keeps those
        updated at or after it."""
        stmt = self._scoped(select(ApplicationRow), scope).order_by(
            ApplicationRow.updated_at.desc(), ApplicationRow.id).limit(limit).offset(offset)
        if updated_since is not None:
            stmt = stmt.where(ApplicationRow.updated_at >= updated_since)
        if statuses:
            stmt = stmt.where(ApplicationRow.status.in_(list(statuses)))
        if text or hashes:
            clauses = []
            if text:
                escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                clauses += [ApplicationRow.customer_name.like(f"%{escaped}%", escape="\\"),
                            ApplicationRow.id.like(f"{escaped.lower()}%", escape="\\")]
            if hashes:
                clauses += [ApplicationRow.id_hash.in_(list(hashes)), ApplicationRow.mobile_hash.in_(list(hashes))]
            stmt = stmt.where(or_(*clauses))
        with self.db.session() as session:
            return [_app(r) for r in session.scalars(stmt)]

    def applied_through(self, invitation_ids: Sequence[str]) -> set[str]:
        """Those of ``invitation_ids`` through which the customer submitted an application (past its draft): the
        customer has moved on from the plan the invitation shared."""
        if not invitation_ids:
            return set()
        stmt = select(ApplicationRow.invitation_id).where(
            ApplicationRow.invitation_id.in_(list(invitation_ids)), ApplicationRow.status != "draft").distinct()
        with self.db.session() as session:
            return {str(i) for i in session.scalars(stmt) if i}

    def counts(self, scope: Scope) -> dict[str, int]:
        stmt = self._scoped(select(ApplicationRow), scope).subquery()
        with self.db.session() as session:
            rows = session.execute(select(stmt.c.status, func.count()).group_by(stmt.c.status)).all()
            return {status: int(n) for status, n in rows}

    # -- writes --------------------------------------------------------------------------------------------
    def create(self, *, dealer_id: str, owner_id: str | None, invitation_id: str | None, vehicle_id: str,
               vehicle_label: str, plan_code: str, plan: dict[str, Any], draft_enc: str, mobile_masked: str,
               mobile_hash: str | None, actor_kind: str, actor_id: str) -> Application:
        now = utcnow()
        row = ApplicationRow(
            id=str(uuid.uuid4()), dealer_id=dealer_id, owner_id=owner_id, invitation_id=invitation_id,
            status="draft", vehicle_id=vehicle_id, vehicle_label=vehicle_label[:160], plan_code=plan_code[:120],
            plan_json=json.dumps(plan, ensure_ascii=False), draft_enc=draft_enc, customer_name="", id_masked="",
            mobile_masked=mobile_masked, mobile_hash=mobile_hash, face_attempts=0, version=1, created_at=now,
            updated_at=now)
        with self.db.session() as session:
            session.add(row)
            session.flush()
            session.add(ApplicationEventRow(application_id=row.id, at=now, actor_kind=actor_kind, actor_id=actor_id,
                                            from_status="", to_status="draft", note=""))
            return _app(row)

    def update_draft(self, application_id: str, change: Callable[[ApplicationRow], dict[str, Any]],
                     allowed: Sequence[str] | None = None) -> Application | None:
        """Read, change and write the draft in one transaction under a row lock, so that two devices (or the
        OCR job) saving at once never overwrite each other's answers. ``change`` gets the locked row and
        returns the columns to set. None when the application is not in one of the ``allowed`` states."""
        with self.db.session() as session:  # the row is locked (FOR UPDATE), across processes
            row = session.get(ApplicationRow, application_id, with_for_update=True)
            if row is None or (allowed is not None and row.status not in allowed):
                return None
            for column, value in change(row).items():
                setattr(row, column, value)
            row.version += 1
            row.updated_at = utcnow()
            session.flush()
            return _app(row)

    def vin_holder(self, row: ApplicationRow, vin_hash: str, statuses: Sequence[str]) -> str | None:
        """Inside :meth:`update_draft` (``row``: its locked row): the id of another application in one of
        ``statuses`` whose car has this VIN (its keyed hash), if any. Saves of one VIN wait for each other until
        their transaction ends (an advisory lock on the hash), so two applications giving it at once cannot both
        find it free: the second sees the first's once it commits."""
        session = object_session(row)
        assert session is not None, "vin_holder is called with update_draft's row"
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"vin:{vin_hash}"))))
        return session.scalar(select(ApplicationRow.id).where(
            ApplicationRow.vin_hash == vin_hash, ApplicationRow.id != row.id,
            ApplicationRow.status.in_(list(statuses))).order_by(ApplicationRow.created_at).limit(1))

    def transition(self, application_id: str, *, allowed_from: Sequence[str], to: str, actor_kind: str,
                   actor_id: str, note: str = "", count_face_attempt: bool = False) -> Application | None:
        """Move to ``to`` if the status is one of ``allowed_from`` (checked under a row lock), and record it.
        Returns None when the application was not in an allowed state (someone else moved it first)."""
        now = utcnow()
        with self.db.session() as session:
            row = session.get(ApplicationRow, application_id, with_for_update=True)
            if row is None or row.status not in allowed_from:
                return None
            if count_face_attempt:
                row.face_attempts += 1
            previous = row.status
            if previous != to:
                session.add(ApplicationEventRow(application_id=row.id, at=now, actor_kind=actor_kind,
                                                actor_id=actor_id, from_status=previous, to_status=to,
                                                note=note[:2000]))
            row.status = to
            row.updated_at = now
            if to == "submitted" and row.submitted_at is None:
                row.submitted_at = now
            if to in ("kyc_passed", "kyc_failed"):
                row.decided_at = now
            row.version += 1
            session.flush()
            return _app(row)

    def replace_plan(self, application_id: str, *, allowed_from: Sequence[str], to: str, plan_code: str,
                     plan: dict[str, Any], actor_kind: str, actor_id: str, note: str = "") -> Application | None:
        """Swap the frozen plan (the customer accepted new terms) and move to ``to``, under a row lock, with
        the event. None when the application was not in an allowed state (answered already, elsewhere)."""
        now = utcnow()
        with self.db.session() as session:
            row = session.get(ApplicationRow, application_id, with_for_update=True)
            if row is None or row.status not in allowed_from:
                return None
            session.add(ApplicationEventRow(application_id=row.id, at=now, actor_kind=actor_kind, actor_id=actor_id,
                                            from_status=row.status, to_status=to, note=note[:2000]))
            row.status, row.plan_code = to, plan_code[:120]
            row.plan_json = json.dumps(plan, ensure_ascii=False)
            row.updated_at = now
            row.version += 1
            session.flush()
            return _app(row)

    def claim_signing(self, application_id: str, purpose: str, pressed: str, now: datetime,
                      stale_before: datetime) -> tuple[str | None, Application | None]:
        """A committed claim on signing ``purpose`` (``contract``, ``handover``) of an application by one press
        (its digest), kept in its contract record under ``signing:<purpose>`` while the contract service signs:
        the row is locked only for this update, never during the service call (issue 17 §1). Returns the claim's
        token (None: another request holds a claim taken after ``stale_before``) and the application as it is."""
        key = f"signing:{purpose}"
        with self.db.session() as session:
            row = session.get(ApplicationRow, application_id, with_for_update=True, populate_existing=True)
            if row is None:
                return None, None
            contract = json.loads(row.contract_result or "{}")
            held = contract.get(key) or {}
            if held and datetime.fromisoformat(str(held.get("at"))) >= stale_before:
                return None, _app(row)
            token = uuid.uuid4().hex
            contract[key] = {"press": pressed, "token": token, "at": now.isoformat()}
            row.contract_result = json.dumps(contract, ensure_ascii=False, default=str)
            session.flush()
            return token, _app(row)

    def release_signing(self, application_id: str, purpose: str, token: str) -> None:
        """Drop the claim ``token`` took (:meth:`claim_signing`), if it is still the claim."""
        key = f"signing:{purpose}"
        with self.db.session() as session:
            row = session.get(ApplicationRow, application_id, with_for_update=True, populate_existing=True)
            contract = json.loads(row.contract_result or "{}") if row is not None else {}
            if row is not None and (contract.get(key) or {}).get("token") == token:
                del contract[key]
                row.contract_result = json.dumps(contract, ensure_ascii=False, default=str)

    def events(self, application_id: str) -> list[Event]:
        stmt = select(ApplicationEventRow).where(ApplicationEventRow.application_id == application_id) \
            .order_by(ApplicationEventRow.id)
        with self.db.session() as session:
            return [Event(r.at, r.actor_kind, r.actor_id, r.from_status, r.to_status, r.note)
                    for r in session.scalars(stmt)]

    # -- risk ---------------------------------------------------------------------------------------------
    def referred(self, limit: int = 20) -> list[Application]:
        """Applications with a risk officer, least recently checked first (for reconciliation)."""
        stmt = select(ApplicationRow).where(ApplicationRow.status == "referred") \
            .order_by(ApplicationRow.updated_at).limit(limit)
        with self.db.session() as session:
            return [_app(r) for r in session.scalars(stmt)]

    def begin_risk_attempt(self, application_id: str) -> bool:
        """Count one attempt to send an application to the risk service: False when it is no longer waiting."""
        stmt = (update(ApplicationRow).where(ApplicationRow.id == application_id)
                .where(ApplicationRow.status == "risk_pending")
                .values(risk_attempts=ApplicationRow.risk_attempts + 1))
        with self.db.session() as session:
            return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def record_risk(self, application_id: str, *, assessment_id: str, result: dict[str, Any], to: str,
                    allowed_from: Sequence[str] = ("risk_pending",), actor_kind: str = "system",
                    actor_id: str = "risk", note: str = "") -> Application | None:
        """Store the risk service's answer and move to ``to`` (from an allowed state), with the event."""
        now = utcnow()
        with self.db.session() as session:
            row = session.get(ApplicationRow, application_id, with_for_update=True)
            if row is None or row.status not in allowed_from:
                return None
            session.add(ApplicationEventRow(application_id=row.id, at=now, actor_kind=actor_kind, actor_id=actor_id,
                                            from_status=row.status, to_status=to, note=note[:2000]))
            row.status, row.risk_assessment_id = to, assessment_id[:64]
            row.risk_result = json.dumps(result, ensure_ascii=False, default=str)
            row.updated_at = now
            row.version += 1
            session.flush()
            return _app(row)

    # -- contract ------------------------------------------------------------------------------------------
    def begin_contract_attempt(self, application_id: str) -> bool:
        """Count one attempt to request an application's contract (approved → contract_pending, recorded in its
        history like every other move, once: the first attempt makes it): False when it has one already or is no
        longer approved."""
        with self.db.session() as session:
            row = session.get(ApplicationRow, application_id, with_for_update=True)
            if row is None or row.status not in ("approved", "contract_pending"):
                return False
            row.contract_attempts += 1
            if row.status == "approved":
                now = utcnow()
                session.add(ApplicationEventRow(application_id=row.id, at=now, actor_kind="system",
                                                actor_id="contract", from_status="approved",
                                                to_status="contract_pending", note=""))
                row.status, row.updated_at = "contract_pending", now
                row.version += 1
            return True

    def record_contract(self, application_id: str, *, contract: dict[str, Any], to: str,
                        allowed_from: Sequence[str], actor_kind: str = "system", actor_id: str = "contract",
                        note: str = "") -> Application | None:
        """Store the contract service's answer and move to ``to`` (from an allowed state), with the event."""
        now = utcnow()
        with self.db.session() as session:
            row = session.get(ApplicationRow, application_id, with_for_update=True)
            if row is None or row.status not in allowed_from:
                return None
            if row.status != to:
                session.add(ApplicationEventRow(application_id=row.id, at=now, actor_kind=actor_kind,
                                                actor_id=actor_id, from_status=row.status, to_status=to,
                                                note=note[:2000]))
            row.status, row.contract_id = to, str(contract.get("id", ""))[:64] or row.contract_id
            row.contract_result = json.dumps(contract, ensure_ascii=False, default=str)
            row.updated_at = now
            row.version += 1
            session.flush()
            return _app(row)

    def contract_durations(self, limit: int = 20) -> list[float]:
        """Seconds from approval to a contract ready to sign, of the ``limit`` contracts generated last (any
        dealer's: durations only, the waiting page's estimate of what "usually" is)."""
        ready = (select(ApplicationEventRow.application_id, ApplicationEventRow.at)
                 .where(ApplicationEventRow.to_status == "contract_ready")
                 .order_by(ApplicationEventRow.id.desc()).limit(limit)).subquery()
        approved = (select(ApplicationEventRow.application_id, func.max(ApplicationEventRow.at).label("at"))
                    .where(ApplicationEventRow.to_status == "approved",
                           ApplicationEventRow.application_id.in_(select(ready.c.application_id)))
                    .group_by(ApplicationEventRow.application_id)).subquery()
        stmt = select(ready.c.at, approved.c.at).join(approved, approved.c.application_id == ready.c.application_id)
        with self.db.session() as session:
            return [(done - start).total_seconds() for done, start in session.execute(stmt) if done >= start]

    def contracts_ahead(self, application_id: str) -> int:
        """How many approved applications wait for their contract job before this one: every dealer's (they share
        the contract queue), approved earlier — by the time of their approval (its event), the order their jobs
        were queued in, not by ``updated_at``, which any later write (a note, a VIN) moves."""
        approved_at = (select(ApplicationEventRow.application_id, func.max(ApplicationEventRow.at).label("at"))
                       .where(ApplicationEventRow.to_status == "approved")
                       .group_by(ApplicationEventRow.application_id)).subquery()
        mine = select(approved_at.c.at).where(approved_at.c.application_id == application_id).scalar_subquery()
        stmt = select(func.count()).select_from(ApplicationRow).join(
            approved_at, approved_at.c.application_id == ApplicationRow.id).where(
            ApplicationRow.status == "approved", ApplicationRow.id != application_id, approved_at.c.at < mine)
        with self.db.session() as session:
            return int(session.scalar(stmt) or 0)

    def add_signing_code(self, application_id: str, code_hash: str, expires_at: datetime,
                         purpose: str = "contract") -> str:
        """A one-time code for ``purpose`` (``contract``: signing it; ``handover``: confirming the handover)."""
        row = SigningCodeRow(id=str(uuid.uuid4()), application_id=application_id, code_hash=code_hash,
                             purpose=purpose, expires_at=expires_at, attempts=0, created_at=utcnow())
        with self.db.session() as session:
            session.add(row)
        return row.id

    def add_signing_code_unless_recent(self, application_id: str, code_hash: str, expires_at: datetime,
                                       purpose: str, texted_after: datetime) -> str | None:
        """:meth:`add_signing_code`, unless a code for ``purpose`` was made after ``texted_after`` (None then): the
        check and the insert under one transaction-scoped advisory lock of the application and purpose, so that two
        requests at once (a double tap) make one code; released at commit, before the text is sent."""
        with self.db.session() as session:
            session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"signing_code:{application_id}:"
                                                                             f"{purpose}"))))
            last = session.scalar(select(func.max(SigningCodeRow.created_at)).where(
                SigningCodeRow.application_id == application_id, SigningCodeRow.purpose == purpose))
            if last is not None and last > texted_after:
                return None
            row = SigningCodeRow(id=str(uuid.uuid4()), application_id=application_id, code_hash=code_hash,
                                 purpose=purpose, expires_at=expires_at, attempts=0, created_at=utcnow())
            session.add(row)
            return row.id

    def discard_signing_code(self, code_id: str) -> None:
        """Drop a code that could not be texted: it never stood, and holds no resend countdown."""
        with self.db.session() as session:
            session.execute(delete(SigningCodeRow).where(SigningCodeRow.id == code_id))

    def last_code_at(self, application_id: str, purpose: str = "contract") -> datetime | None:
        """When the latest one-time code for ``purpose`` was texted (the resend countdown: bff/resend.py)."""
        stmt = (select(func.max(SigningCodeRow.created_at)).where(SigningCodeRow.application_id == application_id)
                .where(SigningCodeRow.purpose == purpose))
        with self.db.session() as session:
            return session.scalar(stmt)

    def check_signing_code(self, application_id: str, matches: Callable[[str], bool], now: datetime,
                           max_attempts: int, purpose: str = "contract",
                           again_since: datetime | None = None) -> str | None:
        """The id of the latest unexpired code for ``purpose`` if ``matches`` its hash (then marked verified), else
        None; every try counts against the code under a row lock, and a code is good for ``max_attempts`` tries.
        A code verified after ``again_since`` matches again: the same press sent twice (a double tap, a press
        again after the service's answer was lost) is the same signer, not a wrong code."""
        stmt = (select(SigningCodeRow).where(SigningCodeRow.application_id == application_id,
                                             SigningCodeRow.purpose == purpose)
                .order_by(SigningCodeRow.created_at.desc()).limit(1).with_for_update())
        with self.db.session() as session:
            row = session.scalar(stmt)
            if row is None or row.expires_at <= now or row.attempts >= max_attempts:
                return None
            row.attempts += 1
            if not matches(row.code_hash):
                return None
            if row.verified_at is None:
                row.verified_at = now
                return row.id
            return row.id if again_since is not None and row.verified_at >= again_since else None

    def verified_code(self, application_id: str, code_id: str, since: datetime,
                      purpose: str = "contract") -> datetime | None:
        """When code ``code_id`` of this application, for ``purpose``, was verified, if after ``since``."""
        with self.db.session() as session:
            row = session.get(SigningCodeRow, code_id) if len(code_id) <= 36 else None
            if (row is None or row.application_id != application_id or row.purpose != purpose
                    or row.verified_at is None):
                return None
            return row.verified_at if row.verified_at >= since else None

    # -- evidence outbox -----------------------------------------------------------------------------------
    def outbox_add(self, application_id: str, key: str, kind: str, data: dict[str, Any],
                   occurred_at: datetime) -> None:
        """Queue an evidence entry (once per ``key``: a repeat is ignored)."""
        try:
            with self.db.session() as session:
                session.add(EvidenceOutboxRow(application_id=application_id, key=key[:128], kind=kind,
                                              data=json.dumps(data, ensure_ascii=False, sort_keys=True),
                                              occurred_at=occurred_at, attempts=0))
        except IntegrityError:
            pass

    def outbox_due(self, now: datetime, limit: int = 50) -> list[OutboxEntry]:
        stmt = (select(EvidenceOutboxRow).where(EvidenceOutboxRow.sent_at.is_(None))
                .where(or_(EvidenceOutboxRow.next_at.is_(None), EvidenceOutboxRow.next_at <= now))
                .order_by(EvidenceOutboxRow.id).limit(limit))
        with self.db.session() as session:
            return [OutboxEntry(r.id, r.application_id, r.key, r.kind, json.loads(r.data), r.occurred_at, r.attempts)
                    for r in session.scalars(stmt)]

    def outbox_done(self, entry_id: int, now: datetime) -> None:
        """The entry is in the log. Where (its index) is the contract service's to say, by subject: a copy kept
        here went stale when the first log moved into the commitment log (every index one higher)."""
        with self.db.session() as session:
            session.execute(update(EvidenceOutboxRow).where(EvidenceOutboxRow.id == entry_id).values(sent_at=now))

    def outbox_retry(self, entry_id: int, next_at: datetime) -> None:
        with self.db.session() as session:
            session.execute(update(EvidenceOutboxRow).where(EvidenceOutboxRow.id == entry_id)
                            .values(next_at=next_at, attempts=EvidenceOutboxRow.attempts + 1))

    def outbox_entry(self, application_id: str, key: str) -> OutboxEntry | None:
        """The evidence entry queued under ``key`` for this application (sent or not), or None."""
        stmt = select(EvidenceOutboxRow).where(EvidenceOutboxRow.application_id == application_id,
                                               EvidenceOutboxRow.key == key[:128])
        with self.db.session() as session:
            r = session.scalar(stmt)
            return (OutboxEntry(r.id, r.application_id, r.key, r.kind, json.loads(r.data), r.occurred_at, r.attempts)
                    if r is not None else None)

    def outbox(self, application_id: str) -> list[tuple[str, datetime | None]]:
        """(kind, when it was sent or None while unsent) of an application's evidence, oldest first."""
        stmt = (select(EvidenceOutboxRow.kind, EvidenceOutboxRow.sent_at)
                .where(EvidenceOutboxRow.application_id == application_id).order_by(EvidenceOutboxRow.id))
        with self.db.session() as session:
            return [(k, i) for k, i in session.execute(stmt)]

    # -- consent ---------------------------------------------------------------------------------------------
    def add_consent(self, application_id: str, *, purpose: str, text_version: str, text_sha256: str,
                    actor_kind: str, ip: str, user_agent: str) -> None:
        with self.db.session() as session:
            session.add(ConsentRow(application_id=application_id, purpose=purpose, text_version=text_version,
                                   text_sha256=text_sha256, given_at=utcnow(), actor_kind=actor_kind, ip=ip[:64],
                                   user_agent=user_agent[:255]))

    def consents(self, application_id: str) -> list[Consent]:
        """Every consent row of the application, oldest first, the withdrawn ones included (``withdrawn_at``): a
        purpose given again after a withdrawal has a newer row."""
        stmt = select(ConsentRow).where(ConsentRow.application_id == application_id).order_by(ConsentRow.id)
        with self.db.session() as session:
            return [Consent(r.purpose, r.text_version, r.text_sha256, r.given_at, r.actor_kind, r.withdrawn_at)
                    for r in session.scalars(stmt)]

    def withdraw_consent(self, application_id: str, purpose: str, now: datetime) -> bool:
        """Mark the application's consent to ``purpose`` withdrawn at ``now``; False when there is none in force
        (never given, or withdrawn already: the first withdrawal's time stands)."""
        stmt = (update(ConsentRow).where(ConsentRow.application_id == application_id, ConsentRow.purpose == purpose,
                                         ConsentRow.withdrawn_at.is_(None)).values(withdrawn_at=now))
        with self.db.session() as session:
            return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    # -- documents -------------------------------------------------------------------------------------------
    def add_document(self, application_id: str, *, kind: str, object_key: str, sha256: str, size: int,
                     content_type: str, biometric: bool, check_id: str | None = None) -> Document | None:
        """Record a stored document. With ``check_id`` (a document a check's job makes, such as the ID portrait it
        cuts out), it is listed among the check's documents (``detail["documents"]``) in the same transaction,
        so that giving the check up (:meth:`give_up_check`) finds it; None, and nothing recorded, when that
        check is no longer running (given up as lost meanwhile)."""
        row = KycDocumentRow(id=str(uuid.uuid4()), application_id=application_id, kind=kind, object_key=object_key,
                             sha256=sha256, size=size, content_type=content_type, biometric=biometric,
                             created_at=utcnow())
        with self.db.session() as session:
            if check_id is not None:
                check = self._running(session, check_id)
                if check is None:
                    return None
                detail = json.loads(check.detail)
                check.detail = json.dumps({**detail, CHECK_DOCUMENTS: [*detail.get(CHECK_DOCUMENTS, []), row.id]})
            session.add(row)
            session.flush()
            return _doc(row)

    def documents(self, application_id: str, kinds: Sequence[str] = ()) -> list[Document]:
        stmt = select(KycDocumentRow).where(KycDocumentRow.application_id == application_id,
                                            KycDocumentRow.deleted_at.is_(None)).order_by(KycDocumentRow.created_at)
        if kinds:
            stmt = stmt.where(KycDocumentRow.kind.in_(list(kinds)))
        with self.db.session() as session:
            return [_doc(r) for r in session.scalars(stmt)]

    def biometrics_due(self, decided_before: datetime, limit: int = 500) -> list[Document]:
        """Biometric images of applications decided before ``decided_before`` and not yet deleted."""
        stmt = (select(KycDocumentRow).join(ApplicationRow, ApplicationRow.id == KycDocumentRow.application_id)
                .where(KycDocumentRow.biometric.is_(True), KycDocumentRow.deleted_at.is_(None))
                .where(or_(ApplicationRow.decided_at < decided_before,
                           # never decided (abandoned, or stuck): counted from the last activity
                           (ApplicationRow.decided_at.is_(None)) & (ApplicationRow.updated_at < decided_before)))
                .limit(limit))
        with self.db.session() as session:
            return [_doc(r) for r in session.scalars(stmt)]

    def mark_deleted(self, document_id: str) -> None:
        with self.db.session() as session:
            row = session.get(KycDocumentRow, document_id)
            if row is not None and row.deleted_at is None:
                row.deleted_at = utcnow()

    def live_object_keys(self, application_ids: Sequence[str]) -> set[str]:
        """The object keys that rows not marked deleted refer to, among the documents of ``application_ids``
        (by the indexed application id: a document's object lives under its application's folder)."""
        if not application_ids:
            return set()
        stmt = select(KycDocumentRow.object_key).where(KycDocumentRow.application_id.in_(list(application_ids)),
                                                       KycDocumentRow.deleted_at.is_(None))
        with self.db.session() as session:
            return set(session.scalars(stmt))

    # -- checks (jobs) ---------------------------------------------------------------------------------------
    def add_check(self, application_id: str, kind: str, detail: dict[str, Any] | None = None) -> Check:
        """A queued check; ``detail`` until it finishes (e.g. the documents it is about)."""
        row = KycCheckRow(id=str(uuid.uuid4()), application_id=application_id, kind=kind, state="queued",
                          outcome="", detail=json.dumps(detail or {}), created_at=utcnow())
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return _check(row)

    def update_check(self, check_id: str, *, state: str, outcome: str = "", detail: dict[str, Any] | None = None) \
            -> None:
        with self.db.session() as session:
            row = session.get(KycCheckRow, check_id)
            if row is None:
                return
            row.state, row.outcome = state, outcome
            if detail is not None:
                row.detail = json.dumps(detail, ensure_ascii=False, default=str)
            if state in ("done", "error"):
                row.finished_at = utcnow()

    def start_check(self, check_id: str) -> bool:
        """queued → running for exactly one worker; False if it was given up (or started) meanwhile."""
        stmt = update(KycCheckRow).where(KycCheckRow.id == check_id, KycCheckRow.state == "queued") \
            .values(state="running")
        with self.db.session() as session:
            return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined,no-any-return]

    # Each change below is one conditional UPDATE, so that a job and whoever gives its check up (the phone's
    # next poll, in any process) never both win: the row lock taken by the UPDATE orders them, and the loser's
    # condition no longer holds.
    @staticmethod
    def _running(session: Any, check_id: str) -> KycCheckRow | None:
        """Lock the check if it is running and its job not yet finishing; the row, read under that lock."""
        stmt = update(KycCheckRow).where(KycCheckRow.id == check_id, KycCheckRow.state == "running",
                                         KycCheckRow.outcome == "").values(state="running")
        if session.execute(stmt).rowcount != 1:
            return None
        return session.get(KycCheckRow, check_id)  # type: ignore[no-any-return]

    def claim_finish(self, check_id: str) -> bool:
        """The running check's job has its result and is about to apply it (``outcome`` :data:`FINISHING`, the
        state stays ``running``): from now on it is not given up before the hard limit. False when it was given
        up as lost meanwhile (the job then keeps nothing)."""
        with self.db.session() as session:
            check = self._running(session, check_id)
            if check is not None:
                check.outcome = FINISHING
            return check is not None

    def finish_check(self, check_id: str, *, state: str, outcome: str, detail: dict[str, Any]) -> bool:
        """running → ``state`` (done, error) with the job's result; False when the check was given up meanwhile
        (a lost check stays lost)."""
        stmt = update(KycCheckRow).where(KycCheckRow.id == check_id, KycCheckRow.state == "running").values(
            state=state, outcome=outcome, detail=json.dumps(detail, ensure_ascii=False, default=str),
            finished_at=utcnow())
        with self.db.session() as session:
            return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def give_up_check(self, check_id: str, *, finishing: bool = False) -> Check | None:
        """queued or running → error/lost, once; a check whose job is finishing only with ``finishing`` (past the
        hard limit). The check as given up (its detail lists its documents), or None when it finished or was
        given up meanwhile."""
        outcomes = ["", FINISHING] if finishing else [""]
        stmt = update(KycCheckRow).where(KycCheckRow.id == check_id, KycCheckRow.state.in_(["queued", "running"]),
                                         KycCheckRow.outcome.in_(outcomes)) \
            .values(state="error", outcome="lost", finished_at=utcnow())
        with self.db.session() as session:
            if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get(KycCheckRow, check_id)
            return _check(row) if row is not None else None

    def check(self, application_id: str, check_id: str) -> Check | None:
        with self.db.session() as session:
            row = session.get(KycCheckRow, check_id) if len(check_id) <= 36 else None
            return _check(row) if row is not None and row.application_id == application_id else None

    def latest_check(self, application_id: str, kind: str) -> Check | None:
        stmt = select(KycCheckRow).where(KycCheckRow.application_id == application_id, KycCheckRow.kind == kind) \
            .order_by(KycCheckRow.created_at.desc()).limit(1)
        with self.db.session() as session:
            row = session.scalars(stmt).first()
            return _check(row) if row else None

    # -- idempotency -----------------------------------------------------------------------------------------
    def remember(self, scope: str, key: str, status: int, location: str = "") -> bool:
        """Record a handled request; False when ``(scope, key)`` was handled before (a replay)."""
        try:
            with self.db.session() as session:
                session.add(IdempotencyRow(scope=scope[:64], key=key[:64], status=status, location=location[:255],
                                           created_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def forget(self, scope: str, key: str) -> None:
        """Drop a reservation whose request failed, so that the same key may be tried again."""
        if not key:
            return
        with self.db.session() as session:
            row = session.get(IdempotencyRow, (scope[:64], key[:64]))
            if row is not None and row.status == 0:
                session.delete(row)

    def settle(self, scope: str, key: str, status: int, location: str) -> None:
        """Record the answer of a request whose key was reserved with :meth:`remember`."""
        with self.db.session() as session:
            row = session.get(IdempotencyRow, (scope[:64], key[:64]))
            if row is not None:
                row.status, row.location = status, location[:255]

    def recall(self, scope: str, key: str) -> tuple[int, str] | None:
        with self.db.session() as session:
            row = session.get(IdempotencyRow, (scope[:64], key[:64]))
            return (row.status, row.location) if row else None
