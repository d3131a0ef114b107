"""VAT brought into the books of leases that commenced before it (issue 19 §3): ``leaseline books vat-catchup
[--dry-run] [--json]``, and :func:`ensure` for an event of such a lease (a settlement, a prepayment, a returned car)
that must find its rents' VAT in Pending before it moves it.

A lease opened before the books posted VAT has no ``lease:<id>:vat`` entry: its rents' tax never went to
Liabilities:Tax:VAT:Pending, its unearned income holds the interest gross, and the months recognised it gross. For each
such lease **in force** (``active``), in one transaction a batch, under the lease's row lock and its finance-income lock
(infra/finance_income.py ``lock_leases``):

- its **commencement VAT** (books/lease.py ``commencement_vat``, key ``lease:<id>:vat``), dated its start, from its
  rents and final rent **as they stand** (a re-amortised rent's figures; a cancelled rent none; a rent an event took
  off the schedule — ``settled``, ``waived`` — none: it has no VAT left to wait for), each under the rule in force on
  its due date for the lease's structure;
- the **tax point** of each of those rents the close of business has passed (due on or before the lease's
  ``closed_through``: the close posts only the rents falling due after it), key ``vat:<instalment id>``, dated its due
  date; and of each received in full before its due date (a rent paid ahead: the receipt is its tax point, as a receipt
  posts it now — infra/vat_points.py), dated the day it was — the rents due after it are the close's, as for any
  lease;
- the **income recognised gross** before: the months recognised the interest with its tax; from now on the schedule's
  spread is net (books/income.py). What was recognised beyond the net spread through the last month end before the
  business date is taken back on the business date, ``income:<lease>:vat`` (kind ``finance_income``: Dr
  Income:Lease:Interest / Cr Unearned), so that the months after it go on from the net figure, and the correction is
  shown as one entry on the day it is made instead of lowering the months after it.

Dated so, an entry whose month is closed is booked on the first day of the first open month, its own date kept as its
value date (infra/books.py ``booked_on``: the closed-month rule). Everything is keyed: run again, a lease that has its
``lease:<id>:vat`` is not read, and a key posted already is skipped — nothing is posted twice.

A lease that ended or was settled before VAT was posted is left as it is (counted in ``closed``): its events were
booked gross when they happened — its settlement, its end of term — and bringing VAT in now would mean re-taxing each
of them; the tax of those months was declared outside Leaseline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from books import lease as books_lease
from books.entries import Entry
from books.income import income_entry
from books.income import recognised_through
from books.lease import LEASE_PAYMENTS
from books.lease import structure_of
from books.vat import RentTax
from books.vat import TaxPolicy
from books.vat import load_tax_policy
from books.vat import rent_tax
from infra.books import post
from infra.db.engine import Database
from infra.db.models import InstalmentRow
from infra.db.models import JournalEntryRow
from infra.db.models import LeaseRow
from infra.finance_income import lock_leases
from infra.finance_income import recognised
from infra.finance_income import schedules
from infra.servicing import ACTIVE
from infra.servicing import current_business_date

ONE_DAY = timedelta(days=1)
#: leases a transaction
BATCH = 500
#: rents an event took off the schedule before their tax point: no VAT of theirs waits in Pending
NO_PENDING = ("cancelled", "settled", "waived")
#: a rent received in full
PAID = "paid"

#: active leases without their commencement VAT, after ``last`` (keyset), oldest id first
_MISSING = ("SELECT l.id FROM leases l WHERE l.status = :active AND l.id > :last {only} AND NOT EXISTS "
            "(SELECT 1 FROM journal_entries je WHERE je.key = 'lease:' || l.id || :suffix) ORDER BY l.id LIMIT :limit")
_CLOSED = ("SELECT count(*) FROM leases l WHERE l.status <> :active {only} AND NOT EXISTS "
           "(SELECT 1 FROM journal_entries je WHERE je.key = 'lease:' || l.id || :suffix)")


@dataclass
class CatchUp:
    """What a catch-up posted (or would post, ``dry_run``): leases brought in, entries, the VAT put in Pending, the
    tax moved to Output by the tax points, the income taken back (fen); ``closed``: leases without VAT left as they
    are (ended or settled before it)."""

    dry_run: bool = False
    leases: int = 0
    entries: int = 0
    pending: int = 0
    output: int = 0
    income_reversed: int = 0
    closed: int = 0
    lease_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "leases": self.leases, "entries": self.entries, "pending": self.pending,
                "output": self.output, "income_reversed": self.income_reversed, "closed": self.closed}


def structure(lease: LeaseRow) -> str:
    """The lease's structure as its frozen terms state it (books/lease.py ``structure_of``: direct when none)."""
    try:
        terms = json.loads(lease.terms or "{}")
    except ValueError:
        terms = {}
    return structure_of(terms if isinstance(terms, dict) else {})


def instalment_tax(policy: TaxPolicy, structure_name: str, row: InstalmentRow) -> RentTax:
    """The VAT a rent or the final rent carries as it stands, under the rule in force on its due date (its tax
    point): what the commencement put in Pending for it (or an event moved there since)."""
    return rent_tax(policy.rule(structure_name, row.due_on), row.amount, row.interest)


def tax_point_on(lease: LeaseRow, row: InstalmentRow) -> date | None:
    """The day a rent's tax point came, when the close or a receipt would have posted it by now (None: still to come,
    the close's): its due date once the close has passed it (``closed_through``), or the day it was received in full
    when that came first (a rent paid ahead: infra/vat_points.py, the receipt posts it that day)."""
    if lease.closed_through is not None and row.due_on <= lease.closed_through:
        return row.due_on
    if row.state == PAID and row.settled_on is not None:
        return min(row.due_on, row.settled_on)
    return None


def posted(session: Session, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` the journal holds."""
    if not keys:
        return set()
    return set(session.scalars(select(JournalEntryRow.key).where(JournalEntryRow.key.in_(list(keys)))))


def _entries(session: Session, leases: Sequence[LeaseRow], day: date, policy: TaxPolicy,
             done: CatchUp) -> list[Entry]:
    """The catch-up's entries of ``leases`` (locked, active, without their commencement VAT), counted in ``done``."""
    ids = [lease.id for lease in leases]
    lock_leases(session, ids)  # what they recognised, read after any income run on them
    rows: dict[str, list[InstalmentRow]] = {lease_id: [] for lease_id in ids}
    for row in session.scalars(select(InstalmentRow).where(
            InstalmentRow.lease_id.in_(ids), InstalmentRow.kind.in_(LEASE_PAYMENTS),
            InstalmentRow.state.not_in(NO_PENDING)).order_by(InstalmentRow.lease_id, InstalmentRow.number)):
        rows[row.lease_id].append(row)
    before, spread = recognised(session, ids), schedules(session, leases, policy)
    through = day.replace(day=1) - ONE_DAY  # the last month end before the business date
    out: list[Entry] = []
    for lease in leases:
        name = structure(lease)
        taxes = [(row, instalment_tax(policy, name, row)) for row in rows[lease.id]]
        made = books_lease.commencement_vat(lease.id, lease.dealer_id, lease.starts_on, [t for _, t in taxes])
        if made is not None:
            out.append(made)
            done.pending += sum(t.tax for _, t in taxes)
        for row, tax in taxes:
            on = tax_point_on(lease, row)
            if on is not None:
                point = books_lease.tax_point(row.id, lease.id, lease.dealer_id, on, tax.tax)
                if point is not None:
                    out.append(point)
        excess = before.get(lease.id, 0) - recognised_through(spread[lease.id], through)
        if excess > 0:
            reversed_ = income_entry(
                f"income:{lease.id}:vat", day, -excess,
                f"融资收益冲回 finance income recognised with its VAT before VAT was posted, {excess} fen taken back "
                f"(the net spread through {through.isoformat()})", lease_id=lease.id, dealer_id=lease.dealer_id)
            if reversed_ is not None:
                out.append(reversed_)
                done.income_reversed += excess
        done.leases += 1
        done.lease_ids.append(lease.id)
    fresh = posted(session, [e.key for e in out])
    kept = [e for e in out if e.key not in fresh]
    done.output += sum(e.total for e in kept if e.kind == books_lease.VAT_TAX_POINT)
    done.entries += len(kept)
    return kept


def ensure(session: Session, lease: LeaseRow, now: datetime, policy: TaxPolicy | None = None) -> bool:
    """Bring the VAT of ``lease`` (locked by the caller, in its transaction) into the books if it has none yet (see
    the module's docstring), before an event moves it; whether anything was posted."""
    if lease.status != ACTIVE or posted(session, [f"lease:{lease.id}:vat"]):
        return False
    done = CatchUp()
    return bool(post(session, _entries(session, [lease], current_business_date(session), policy or load_tax_policy(),
                                       done), now))


class _DryRun(Exception):
    """Raised at the end of a dry run's batch: its transaction rolls back, nothing of it is kept."""


def catch_up(db: Database, now: datetime, *, dry_run: bool = False, batch: int = BATCH,
             policy: TaxPolicy | None = None, only: Sequence[str] | None = None) -> CatchUp:
    """Bring VAT into the books of every active lease without it (or of those of ``only``: lease ids or contract
    numbers; see the module's docstring), a batch a transaction; ``dry_run``: count what would be posted and post
    nothing."""
    found = policy or load_tax_policy()
    done, last = CatchUp(dry_run=dry_run), ""
    where = "" if only is None else "AND (l.id = ANY(:only) OR l.contract_number = ANY(:only))"
    missing, closed = text(_MISSING.format(only=where)), text(_CLOSED.format(only=where))
    params: dict[str, object] = {"active": ACTIVE, "suffix": ":vat"} | ({} if only is None else {"only": list(only)})
    while True:
        try:
            with db.session() as session:
                ids = list(session.scalars(missing, {**params, "last": last, "limit": batch}))
                if not ids:
                    done.closed = int(session.execute(closed, params).scalar_one())
                    return done
                last = ids[-1]
                locked = list(session.scalars(select(LeaseRow).where(LeaseRow.id.in_(ids)).order_by(LeaseRow.id)
                                              .with_for_update()))
                have = posted(session, [f"lease:{lease.id}:vat" for lease in locked])
                # settled meanwhile (left as it is), or brought in meanwhile by an event (ensure): not again
                leases = [lease for lease in locked if lease.status == ACTIVE and f"lease:{lease.id}:vat" not in have]
                entries = _entries(session, leases, current_business_date(session), found, done)
                if dry_run:
                    raise _DryRun
                post(session, entries, now)
        except _DryRun:
            continue
