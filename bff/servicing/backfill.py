"""``leaseline servicing backfill`` (issue 18 §1): a lease in force for each handover signed before servicing began,
from its record as the contract service states it, the rents due before servicing took over booked as collected
outside Leaseline (infra/lease_backfill.py). Each lease is its own transaction and audit event; a record the contract
service cannot give now, or that does not state a lease (:func:`infra.servicing.lease_plan` refuses it), is reported
and left for the next run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from datetime import datetime

from bff.bootstrap import Services
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.lease_backfill import SqlLeaseBackfill
from infra.servicing import lease_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    application_id: str
    result: str  # opened | would_open | exists | unavailable | refused | unreadable
    lease_id: str | None = None
    collected_outside: int = 0
    amount_fen: int = 0
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"application_id": self.application_id, "result": self.result, "lease_id": self.lease_id,
                "collected_outside": self.collected_outside, "amount": f"{self.amount_fen / 100:.2f}",
                "detail": self.detail}


def backfill(services: Services, *, paid_through: date, now: datetime, dry_run: bool = False,
             limit: int = 1000) -> list[Outcome]:
    """Open the leases of the signed handovers that have none (at most ``limit``), the rents due on or before
    ``paid_through`` booked as collected outside; with ``dry_run`` only say what would be opened."""
    repo, outcomes = SqlLeaseBackfill(services.db), []
    for item in repo.unserviced(limit):
        try:
            record = services.contract.handover(item.contract_id)
        except ServiceUnavailable as exc:
            outcomes.append(Outcome(item.application_id, "unavailable", detail=str(exc)[:200]))
            continue
        except ServiceRefused as exc:
            outcomes.append(Outcome(item.application_id, "refused", detail=f"{exc.status}"))
            continue
        try:
            plan = lease_plan(record)
        except ValueError as exc:
            log.error("handover of application %s: %s", item.application_id, exc)
            outcomes.append(Outcome(item.application_id, "unreadable", detail=str(exc)[:200]))
            continue
        if dry_run:
            due = [i for i in plan.instalments if i.due_on <= paid_through]
            outcomes.append(Outcome(item.application_id, "would_open", None, len(due), sum(i.amount for i in due)))
            continue
        with services.db.transaction():  # the lease and its audit event together
            done = repo.open(item.application_id, item.dealer_id, plan, paid_through, now)
            if done is not None:
                services.audit.append(
                    "servicing.lease_backfilled", "success", actor_id=None, actor_label="system:backfill",
                    dealer_id=item.dealer_id, target=done.lease_id,
                    details={"application": item.application_id, "paid_through": paid_through.isoformat(),
                             "collected_outside": done.collected_outside, "amount_fen": done.amount})
        if done is None:
            outcomes.append(Outcome(item.application_id, "exists"))
            continue
        outcomes.append(Outcome(item.application_id, "opened", done.lease_id, done.collected_outside, done.amount))
    return outcomes
