"""Sending verified applications to the risk service, and never losing one when it is down.

kyc_passed → risk_pending (recorded at once) → the snapshot goes out from the worker pool; the answer moves
the application to approved / declined / referred. When the risk service cannot be reached the application
stays ``risk_pending`` with the next attempt booked (backoff up to a minute); a resumer thread in every BFF
process sends what is due, and the same application id always yields the same assessment (idempotent), so
a resend after a lost answer decides nothing twice.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bff.applications.jobs import ProcessLocalPool
from bff.applications.offers import offer_from
from bff.applications.services import ApplicationService
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.clients.risk import RiskClient
from infra.logs import request_id
from kyc.idnumber import check_id_number

log = logging.getLogger(__name__)
OUTCOME_STATUS = {"approve": "approved", "decline": "declined", "refer": "referred"}
REVIEW_STATUS = {"approve": "approved", "decline": "declined", "counter_offer": "counter_offer"}
RECONCILE_EVERY = 15  # resumer ticks between two looks at the referred applications
_ALL = Scope()


def status_for(result: dict[str, Any], final_review: str | None = None) -> str:
    """The application's status for a risk answer (or a review's final decision): an approval that asks for
    new terms (a counter-offer, a higher down payment, a deposit) waits for the customer's answer."""
    status = REVIEW_STATUS[final_review] if final_review else OUTCOME_STATUS.get(str(result.get("outcome")),
                                                                                 "referred")
    return "counter_offer" if status == "approved" and offer_from(result) is not None else status


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60, 2 ** max(0, attempts - 1)))


class RiskDispatch:
    def __init__(self, repo: SqlApplications, apps: ApplicationService, client: RiskClient, pool: ProcessLocalPool,
                 *, resume_every: float = 2.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.repo, self.apps, self.client, self.pool = repo, apps, client, pool
        self.resume_every, self.clock = resume_every, clock
        #: the least time before a resend: one call's whole budget (timeouts × retries), so that another
        #: process's resumer does not send an application while this call is still waiting
        self.min_retry = timedelta(seconds=20)
        #: more work the resumer does on each tick (the contract requests, the evidence outbox)
        self.also: list[Callable[[], object]] = []
        self._resumer: threading.Thread | None = None
        self._resumer_pid = 0
        self._stop = threading.Event()

    # -- the snapshot --------------------------------------------------------------------------------------
    def snapshot(self, app: Application) -> dict[str, Any]:
        """What the risk service needs, built from the application (answers decrypted in memory only)."""
        draft = self.apps.draft(app)
        id_check = check_id_number(draft.get("id_number", ""))
        quote, choice, vehicle = app.plan["quote"], app.plan["choice"], app.plan["vehicle"]
        face = self.repo.latest_check(app.id, "face")
        face_detail = face.detail if face is not None and face.state == "done" else {}
        events = self.repo.events(app.id)
        manual = any(e.note == "counter_verification" for e in events) or any(
            e.to_status == "kyc_passed" and e.actor_kind == "staff" for e in events)

        def integer(name: str) -> int | None:
            value = draft.get(name, "")
            return int(value) if value.isdigit() else None

        return {
            "application_id": app.id,
            "dealer_id": app.dealer_id,
            "applicant": {
                "age": id_check.age, "id_number": id_check.normalized, "name": draft.get("name", ""),
                "monthly_income": _money(draft.get("monthly_income", "0")), "employment": draft.get("employment", ""),
                "employment_years": integer("employment_years"), "housing": draft.get("housing", ""),
                "dependants": integer("dependants") or 0, "existing_loans": integer("existing_loans") or 0,
                "monthly_repayments": _money(draft.get("monthly_repayments", "0")),
            },
            "vehicle": {"id": vehicle["id"], "make": vehicle["make"], "model": vehicle["model"],
                        "price": vehicle["price"], "condition": draft.get("condition", "new"),
                        "vin": draft.get("vin", "").upper(), "mileage": integer("mileage")},
            "plan": {"term": quote["term"], "down_payment": quote["down_payment"],
                     "financed_amount": quote["financed_amount"], "monthly_payment": quote["monthly_payment"],
                     "residual": quote["residual"], "deposit": quote["deposit"],
                     "deposit_free": bool(choice["deposit_free"]), "apr": quote["apr"]},
            "kyc": {"status": "kyc_passed",
                    "face_distance": (face_detail.get("match") or {}).get("distance"),
                    "liveness": (face_detail.get("liveness") or {}).get("passed"), "manual": manual},
            "device": {"ip": draft.get("_device_ip") or "unknown",
                       "user_agent_hash": draft.get("_device_ua") or "unknown"},
        }

    # -- sending -------------------------------------------------------------------------------------------
    def request(self, application_id: str) -> None:
        """kyc_passed → risk_pending, then send (from the pool). Safe to call more than once."""
        moved = self.repo.transition(application_id, allowed_from=("kyc_passed",), to="risk_pending",
                                     actor_kind="system", actor_id="risk")
        if moved is not None:
            self.pool.submit(self.send, application_id)

    def send(self, application_id: str) -> str | None:
        """Send one due application; returns its new status, or None when it is not due or not reachable."""
        now = self.clock()
        current = self.repo.get(application_id, _ALL)
        if current is None:
            return None
        retry_at = now + max(_backoff(current.risk_attempts + 1), self.min_retry)
        if not self.repo.claim_risk_send(application_id, now, retry_at):
            return None
        app = self.repo.get(application_id, _ALL)
        assert app is not None
        try:
            result = self.client.assess(self.snapshot(app))
        except ServiceUnavailable as exc:
            log.warning("risk service unavailable for %s (attempt %s): %s", application_id, app.risk_attempts, exc)
            return None
        except ServiceRefused as exc:  # our snapshot was refused: a bug to fix, kept pending and logged
            log.error("risk service refused the snapshot of %s: %s %s", application_id, exc.status, exc.body)
            return None
        moved = self.apps.approved(self.repo.record_risk(
            application_id, assessment_id=str(result.get("id", "")), result=result, to=status_for(result),
            note=f"risk:{result.get('outcome')}"))
        return moved.status if moved else None

    def reconcile_referred(self) -> int:
        """Referred applications whose review the risk service has finished (an answer lost on the way, or
        a decision taken elsewhere): apply the final decision. Returns how many moved."""
        moved = 0
        for app in self.repo.referred():
            if not app.risk_assessment_id:
                continue
            try:
                assessment = self.client.assessment(app.risk_assessment_id)
            except (ServiceUnavailable, ServiceRefused):
                return moved
            review = assessment.get("review") or {}
            final = str(review.get("final_decision") or "")
            if review.get("state") == "decided" and final in REVIEW_STATUS:
                if self.apps.approved(self.repo.record_risk(
                        app.id, assessment_id=app.risk_assessment_id, result=assessment,
                        to=status_for(assessment, final), allowed_from=("referred",), note=f"review:{final}")):
                    moved += 1
        return moved

    def resume_due(self) -> int:
        """Send every application whose (re)send is due; returns how many were decided now."""
        decided = 0
        for application_id in self.repo.due_for_risk(self.clock()):
            token = request_id.set(f"resend-{uuid.uuid4().hex[:16]}")  # each resend traceable on its own
            try:
                if self.send(application_id) is not None:
                    decided += 1
            finally:
                request_id.reset(token)
        return decided

    # -- the resumer thread ---------------------------------------------------------------------------------
    def start_resumer(self) -> None:
        """A daemon thread in this process that sends what is due every ``resume_every`` seconds."""
        import os

        if self._resumer is not None and self._resumer.is_alive() and self._resumer_pid == os.getpid():
            return

        def run(work: Callable[[], object]) -> None:
            # each job on its own: one that fails (the database briefly away, a bug) does not starve the others
            try:
                work()
            except SQLAlchemyError as exc:  # one line, try again on the next tick
                log.warning("resumer: database unavailable in %s (%s)", getattr(work, "__qualname__", work),
                            type(exc).__name__)
            except Exception:
                log.exception("resumer: %s", getattr(work, "__qualname__", work))

        def loop() -> None:
            ticks = 0
            while not self._stop.wait(self.resume_every):
                ticks += 1
                run(self.resume_due)
                for work in self.also:
                    run(work)
                if ticks % RECONCILE_EVERY == 0:
                    run(self.reconcile_referred)

        self._resumer_pid = os.getpid()
        self._resumer = threading.Thread(target=loop, name="risk-resumer", daemon=True)
        self._resumer.start()

    def stop_resumer(self, wait: float = 10.0) -> None:
        """Stop the resumer thread and wait (at most ``wait`` seconds) for the tick it is in to end."""
        self._stop.set()
        if self._resumer is not None and self._resumer.is_alive() and self._resumer is not threading.current_thread():
            self._resumer.join(wait)


def _money(raw: str) -> str:
    from plans.money import to_decimal

    try:
        return f"{to_decimal(raw):.2f}"
    except ValueError:
        return "0.00"
