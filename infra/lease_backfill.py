"""Leases in force for handovers signed before servicing began (issue 18 §1): a handover record signed while "rents
were collected outside Leaseline" has no lease row. ``leaseline servicing backfill`` opens each one from its record as
the contract service states it (the same :meth:`infra.servicing.SqlServicing.open_lease` the handover's transaction
calls), and books every rent that fell due before servicing took over (``paid_through``) as collected outside
Leaseline — one ``collected_outside`` movement each, dated its due day, and its posting (books/lease.py) —, so
that the close of business does not find years of rents overdue and charge late fees on money the lessor already
has. What was not collected is for ops to book (a payment, a waiver) with the evidence; the command says what it
assumed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import select

from books.lease import collected_outside
from infra.books import post
from infra.db.engine import Database
from infra.db.models import ApplicationRow
from infra.db.models import HandoverRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import ServicingMovementRow
from infra.handovers import SIGNED
from infra.servicing import PAID
from infra.servicing import PENDING
from infra.servicing import LeasePlan
from infra.servicing import SqlServicing

#: an application whose car was handed over and whose term runs (a closed one's lease is over: not opened)
DELIVERED = "delivered"


@dataclass(frozen=True)
class Unserviced:
    """A signed handover whose application has no lease in force."""

    application_id: str
    dealer_id: str
    contract_id: str


@dataclass(frozen=True)
class Backfilled:
    lease_id: str
    collected_outside: int  # rents booked as collected outside Leaseline
    amount: int  # their total, fen


class SqlLeaseBackfill:
    def __init__(self, db: Database) -> None:
        self.db = db

    def unserviced(self, limit: int = 1000) -> list[Unserviced]:
        """Signed handovers without a lease whose term still runs — the application delivered, its term not closed by
        ops (a lease closed before servicing began is over: opening it would report it active to the bureau and offer
        its end of term again) —, oldest application first (at most ``limit``)."""
        with self.db.session() as session:
            rows = session.execute(
                select(HandoverRow.application_id, HandoverRow.dealer_id, ApplicationRow.contract_id)
                .join(ApplicationRow, ApplicationRow.id == HandoverRow.application_id)
                .outerjoin(LeaseRow, LeaseRow.application_id == HandoverRow.application_id)
                .outerjoin(LeaseTermRow, LeaseTermRow.application_id == HandoverRow.application_id)
                .where(HandoverRow.status == SIGNED, LeaseRow.id.is_(None), ApplicationRow.status == DELIVERED,
                       LeaseTermRow.settlement.is_(None))
                .order_by(HandoverRow.signed_at, HandoverRow.application_id).limit(limit)).all()
        return [Unserviced(a, d, c or "") for a, d, c in rows]

    def open(self, application_id: str, dealer_id: str, plan: LeasePlan, paid_through: date,
             now: datetime) -> Backfilled | None:
        """Open the lease of ``plan`` with every instalment due on or before ``paid_through`` booked as collected
        outside Leaseline, in one transaction; None when the application has its lease already (run twice: nothing
        more)."""
        with self.db.transaction() as session:
            lease_id = SqlServicing(self.db).open_lease(session, application_id, dealer_id, plan, now)
            if lease_id is None:
                return None
            rows = list(session.scalars(select(InstalmentRow).where(
                InstalmentRow.lease_id == lease_id, InstalmentRow.state == PENDING,
                InstalmentRow.due_on <= paid_through).order_by(InstalmentRow.number).with_for_update()))
            for row in rows:
                row.state, row.settled_on, row.updated_at = PAID, row.due_on, now
                row.paid_principal, row.paid_interest = row.principal, row.interest
                session.add(ServicingMovementRow(
                    lease_id=lease_id, instalment_id=row.id, kind="collected_outside", value_date=row.due_on,
                    principal=-row.principal, interest=-row.interest, penalty=0,
                    key=f"collected_outside:{lease_id}:{row.number}", booked_at=now,
                    note=f"服务启用前已在系统外收取 collected outside Leaseline before {paid_through.isoformat()}"))
            session.flush()
            post(session, [collected_outside(lease_id, dealer_id, row.number, row.due_on, row.principal, row.interest)
                           for row in rows], now)
            return Backfilled(lease_id, len(rows), sum(r.amount for r in rows))
