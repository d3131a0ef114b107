"""Leases in force for handovers signed before servicing began (issue 18 §1): a handover record signed while "rents
were collected outside Leaseline" has no lease row. ``leaseline servicing backfill`` opens each one from its record as
the contract service states it (the same :meth:`infra.servicing.SqlServicing.open_lease` the handover's transaction
calls), and books every rent that fell due before servicing took over (``paid_through``) as collected outside
Leaseline — one ``collected_outside`` movement each, dated its due day, and its posting (books/lease.py) —, so
that the close of business does not find years of rents overdue and charge late fees on money the lessor already
has. What was not collected is for ops to book (a payment, a waiver) with the evidence; the command says what it
assumed.

**VAT** (issue 19 §3): opening the lease puts its rents' VAT in Pending (``lease:<id>:vat``, infra/servicing.py). The
rents due through ``paid_through`` reached their tax points — their due dates, the payment dates the contract fixes —
before Leaseline took the lease over: the backfill posts each one's tax point in its transaction (``vat:<instalment
id>``: Dr Pending / Cr Output, its tax under the rule in force on its due date), **dated its due date** (the tax point
itself; a due date in a closed month is booked on the first day of the first open month, its date kept:
infra/books.py's closed-month rule), so that Pending holds only the rents still to fall due and Output the tax of
those months. Whatever the lessor declared of that tax outside Leaseline when it fell due, the VAT summary of the months
these entries are booked in shows it too: ops tell them apart by their key (the rent's) and their value date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import select

from books.lease import LEASE_PAYMENTS
from books.lease import collected_outside
from books.lease import tax_point
from books.vat import load_tax_policy
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
from infra.vat_catchup import instalment_tax
from infra.vat_catchup import structure

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
            # their tax points came before Leaseline took the lease over: each on its due date (see the docstring)
            lease = session.get(LeaseRow, lease_id)
            assert lease is not None
            policy, kind = load_tax_policy(), structure(lease)
            post(session, [tax_point(row.id, lease_id, dealer_id, row.due_on, instalment_tax(policy, kind, row).tax)
                           for row in rows if row.kind in LEASE_PAYMENTS], now)
            return Backfilled(lease_id, len(rows), sum(r.amount for r in rows))
