"""Sending verified applications to the risk service, and never losing one when it is down.

kyc_passed → risk_pending and its ``risk.send`` job, in one transaction; a worker sends the snapshot and the
answer moves the application to approved / declined / referred (and an approval's contract job is deferred with
that move). When the risk service cannot be reached the job is retried with backoff (bff/worker.py) and the
application stays ``risk_pending``, its attempts on screen; the same application id always yields the same
assessment (idempotent), so a resend after a lost answer decides nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from bff.applications.offers import offer_from
from bff.applications.services import ApplicationService
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.clients.risk import RiskClient
from infra.jobs import JobQueue
from kyc.idnumber import check_id_number

log = logging.getLogger(__name__)
OUTCOME_STATUS = {"approve": "approved", "decline": "declined", "refer": "referred"}
REVIEW_STATUS = {"approve": "approved", "decline": "declined", "counter_offer": "counter_offer"}
_ALL = Scope()


def status_for(result: dict[str, Any], final_review: str | None = None) -> str:
    """The application's status for a risk answer (or a review's final decision): an approval that asks for
    new terms (a counter-offer, a higher down payment, a deposit) waits for the customer's answer."""
    status = REVIEW_STATUS[final_review] if final_review else OUTCOME_STATUS.get(str(result.get("outcome")),
                                                                                 "referred")
    return "counter_offer" if status == "approved" and offer_from(result) is not None else status


class RiskDispatch:
    def __init__(self, repo: SqlApplications, apps: ApplicationService, client: RiskClient, jobs: JobQueue) -> None:
        self.repo, self.apps, self.client, self.jobs = repo, apps, client, jobs

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
        """kyc_passed → risk_pending, with its ``risk.send`` job in the same transaction. Safe to call again."""
        with self.repo.db.transaction():
            moved = self.repo.transition(application_id, allowed_from=("kyc_passed",), to="risk_pending",
                                         actor_kind="system", actor_id="risk")
            if moved is not None:
                self.jobs.defer("risk.send", {"application_id": application_id}, queue="risk",
                                lock=f"risk.send:{application_id}", queueing_lock=f"risk.send:{application_id}")

    def send(self, application_id: str) -> str | None:
        """The ``risk.send`` task: send one pending application and record the answer; returns its new status, or
        None when it is no longer pending (a retry after the answer was recorded). Raises ServiceUnavailable
        (retried) when the risk service cannot be reached, ServiceRefused (a bug: the job fails, for ops)."""
        if not self.repo.begin_risk_attempt(application_id):
            return None
        app = self.repo.get(application_id, _ALL)
        assert app is not None
        try:
            result = self.client.assess(self.snapshot(app))
        except ServiceUnavailable as exc:
            log.warning("risk service unavailable for %s (attempt %s): %s", application_id, app.risk_attempts, exc)
            raise
        except ServiceRefused as exc:  # our snapshot was refused: a bug to fix, kept pending and logged
            log.error("risk service refused the snapshot of %s: %s %s", application_id, exc.status, exc.body)
            raise
        with self.repo.db.transaction():  # the decision and the jobs it causes (the contract) together
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
                with self.repo.db.transaction():
                    if self.apps.approved(self.repo.record_risk(
                            app.id, assessment_id=app.risk_assessment_id, result=assessment,
                            to=status_for(assessment, final), allowed_from=("referred",), note=f"review:{final}")):
                        moved += 1
        return moved


def _money(raw: str) -> str:
    from plans.money import to_decimal

    try:
        return f"{to_decimal(raw):.2f}"
    except ValueError:
        return "0.00"
