"""The dealer paid for the car (放款, issue 19 §1-2): the lessor pays each dealer, by bank transfer and apart from the
down payment's share (bff/payments/payouts.py), the price of the car a lease financed. Leaseline does not make that
transfer; until now nothing recorded it, so the dealers' payable the commencements credit (books/lease.py
``commenced``: the payable falling due when the lease opens) only grew. Ops record each payment the bank made
(``leaseline books fund-dealer``): the lease's journal entry ``dealer_funding:<lease id>`` (books/lease.py
``dealer_funded``: Dr Liabilities:Payable:Dealers / Cr Assets:Bank:Disbursements) and an audit event, in one
transaction, under the lease's lock, once — a second record of the same lease posts nothing.

What the lease owes its dealer for the car is read from the journal: the net credit of Liabilities:Payable:Dealers on
the lease's lines in the entries about the car's price (:data:`CAR_KINDS`: its commencement's financed amount, less what
a refinancing paid off with it, books/lease.py ``refinanced``, less this payment) — not the down payment's share, whose
capture and transfer may name the lease too (books/origination.py) and are the Connect payouts' business. The amount ops
give must be that figure (a bank transfer of another amount is a question for the dealer, not a payment to record as the
car's), dated the day the bank paid, from the lease's start to today."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from books.lease import DEALERS
from books.lease import dealer_funded
from infra.books import entry_of
from infra.books import post
from infra.db.engine import Database
from infra.db.models import AuditEventRow
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseRow

#: the entries that move what a lease owes its dealer for the car (books/lease.py: commenced, refinanced, dealer_funded)
CAR_KINDS = ("lease_commenced", "refinanced", "dealer_funded")
#: the audit event of a payment recorded
ACTION = "books.dealer_funded"


class FundingRefused(Exception):
    """The payment cannot be recorded as given (no such lease, nothing owed, another amount, a wrong day)."""


@dataclass(frozen=True)
class Funding:
    lease_id: str
    contract_number: str
    dealer_id: str
    starts_on: date
    owed: int  # fen still owed to the dealer for the car (0 once paid)
    paid: int  # fen recorded as paid by ``dealer_funding:<lease>`` (0: not yet)


def funding_key(lease_id: str) -> str:
    return f"dealer_funding:{lease_id}"


def _owed(session: Session, lease_ids: list[str] | None = None) -> dict[str, int]:
    stmt = (select(JournalLineRow.lease_id, func.sum(JournalLineRow.credit - JournalLineRow.debit))
            .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
            .where(JournalLineRow.account == DEALERS, JournalLineRow.lease_id.is_not(None),
                   JournalEntryRow.kind.in_(CAR_KINDS))
            .group_by(JournalLineRow.lease_id))
    if lease_ids is not None:
        stmt = stmt.where(JournalLineRow.lease_id.in_(lease_ids))
    return {lease_id: int(owed) for lease_id, owed in session.execute(stmt)}


def fundings_due(db: Database) -> list[Funding]:
    """Every lease whose dealer is still owed for its car (by start, then contract number)."""
    with db.session() as session:
        owed = {lease_id: fen for lease_id, fen in _owed(session).items() if fen > 0}
        rows = session.execute(select(LeaseRow.id, LeaseRow.contract_number, LeaseRow.dealer_id, LeaseRow.starts_on)
                               .where(LeaseRow.id.in_(list(owed)))).all() if owed else []
    return sorted((Funding(r.id, r.contract_number, r.dealer_id, r.starts_on, owed[r.id], 0) for r in rows),
                  key=lambda f: (f.starts_on, f.contract_number))


def fund_dealer(db: Database, lease_id: str, *, amount: int, paid_on: date, today: date, reference: str,
                actor_label: str, now: datetime) -> Funding:
    """Record that the bank paid the lease's dealer ``amount`` fen for the car on ``paid_on`` (``reference``: the
    bank's); what was recorded. A lease recorded as paid already is answered as it stands (nothing posted again).
    Raises :class:`FundingRefused` with the reason otherwise."""
    with db.session() as session:
        found = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()).scalars().all() \
            or session.execute(select(LeaseRow).where(LeaseRow.contract_number == lease_id).limit(2)
                               .with_for_update()).scalars().all()
        if len(found) != 1:
            raise FundingRefused(f"{lease_id}: no such lease (a lease id or a contract number)" if not found else
                                 f"{lease_id}: more than one lease has this contract number: give the lease's id")
        lease = found[0]
        done = entry_of(session, funding_key(lease.id))
        if done is not None:
            paid = sum(line.debit for line in done.lines if line.account == DEALERS)
            return Funding(lease.id, lease.contract_number, lease.dealer_id, lease.starts_on,
                           _owed(session, [lease.id]).get(lease.id, 0), paid)
        owed = _owed(session, [lease.id]).get(lease.id, 0)
        if owed <= 0:
            raise FundingRefused(f"lease {lease.contract_number}: nothing is owed to its dealer for the car "
                                 "(no commencement posted, or a refinancing paid it all off)")
        if amount != owed:
            raise FundingRefused(f"lease {lease.contract_number}: its dealer is owed {owed / 100:.2f} for the car, "
                                 f"not {amount / 100:.2f}: record the payment of that amount only")
        if not lease.starts_on <= paid_on <= today:
            raise FundingRefused(f"lease {lease.contract_number}: the payment's day {paid_on.isoformat()} is not from "
                                 f"the lease's start {lease.starts_on.isoformat()} to today {today.isoformat()}")
        item = dealer_funded(lease.id, lease.dealer_id, paid_on, owed, reference)
        post(session, [item], now)
        session.add(AuditEventRow(
            at=now, action=ACTION, outcome="success", actor_id=None, actor_label=actor_label[:254],
            dealer_id=lease.dealer_id, target=lease.id, ip="", user_agent="",
            details=json.dumps({"amount_fen": owed, "paid_on": paid_on.isoformat(), "reference": reference,
                                "contract_number": lease.contract_number}, ensure_ascii=False)))
        return Funding(lease.id, lease.contract_number, lease.dealer_id, lease.starts_on, 0, owed)

