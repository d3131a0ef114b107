"""The month's finance income of every lease (issue 19 §1), posted once per lease and month: key
``income:<lease>:<YYYY-MM>``, value date the month's last day, Dr Assets:LeaseReceivable:Unearned / Cr
Income:Lease:Interest, by the rule of books/income.py (the schedule's interest of each rent period spread over its days,
cumulative through the month end rounded once, less what was recognised before) — **net of VAT** (issue 19 §3): each
rent's interest less the tax it includes (books/vat.py, the rule in force on its due date for the lease's structure),
what the commencement left in Unearned (books/lease.py ``commencement_vat``).

**What was recognised before** (``recognised``) is read from the journal: the lease's net credit to
Income:Lease:Interest in entries of kind ``finance_income`` — the monthly entries, and the adjustments a settlement or
a prepayment posts in its own transaction (books/settlement.py, books/prepayment.py: the kept rents' interest
recognised to the settlement day, income reversed that a re-amortised schedule no longer holds). Other interest lines
(a settlement's interest to the day, a prepayment's interest line) are not the schedule's and are not counted.

**Set-based.** :func:`recognise_month` walks the leases that commenced by the month end (a settled one excepted:
its settlement made its income final) in batches of
:data:`BATCH` (keyset on the id), each batch one transaction: one read of the batch's instalments (cancelled rents left
out, a settled rent's interest taken as none: waived or given back, never recognised; a waived rent's — a returned
car's final rent — as what it was paid), one of what each recognised
before, one of their prepaid principal (for the effective-interest figure), one :func:`infra.books.post` of the
batch's entries. A lease whose schedule is wholly recognised posts nothing (``entry`` drops it). Run again — a retried
job, ``leaseline books income --month`` by hand — it posts nothing twice (the key), and a month recognised already
gives the next month nothing it took (the cumulative rule).

Each entry's memo shows the effective-interest figure at the lease's implicit rate and its difference from the
schedule's (books/income.py): posted is the schedule's figure, the difference shown, never hidden.

**One at a time per lease.** Each batch takes its leases' finance-income locks (:func:`lock_leases`, advisory,
to the end of its transaction) before it reads what they recognised; a settlement's, a prepayment's and a returned
car's income entries take the same lock. Two runs at once — months M and M+1 deferred by a close catching up, the
command by hand beside the job, a settlement's final income beside a batch — so never both count the same income:
the second reads what the first posted.

The job (``books.finance_income``, args ``{"month": "YYYY-MM"}``, queueing lock per month, procrastinate lock
``books.finance_income``: the months' jobs one after the other) is deferred by the close of
business in the transaction that finishes a month's last day (infra/servicing.py ``finish_close``); bff/worker.py
registers it. A month whose last day is not closed yet is refused (:class:`MonthNotClosed`).

Penalty interest (罚息) is recognised when collected (the receipt's posting), never here and never by the close.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from books.accounts import INTEREST
from books.entries import Entry
from books.income import FINANCE_INCOME
from books.income import LeaseSchedule
from books.income import Rent
from books.income import effective_through
from books.income import income_entry
from books.income import month_end
from books.income import recognised_through
from books.vat import TaxPolicy
from books.vat import included_tax
from books.vat import load_tax_policy
from books.vat import rent_tax
from infra import books
from infra.db.engine import Database
from infra.db.models import BusinessDateRow
from infra.db.models import InstalmentRow
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingMovementRow
from infra.jobs import Job
from infra.servicing import any_of
from infra.vat_points import lease_structure

TASK, QUEUE = "books.finance_income", "servicing"
ONE_DAY = timedelta(days=1)
KIND = FINANCE_INCOME
#: leases a transaction
BATCH = 1_000
#: instalments of the lease's schedule (a purchase price, a return's charges are not: no interest)
SCHEDULE_KINDS = ("rent", "final_rent")
#: a settled lease's income was made final by its settlement (books/settlement.py): nothing is left to recognise
SETTLED_LEASE = "settled"
#: states whose interest is not the lease's to earn: a cancelled rent (zeroed), a rent a settlement replaced
NOT_EARNED = ("cancelled", "settled")
#: a rent waived (the returned car offsetting the final rent, infra/end_of_term.py): it earns only the interest it was
#: paid before; the interest waived is never recognised (books/end_of_term.py reversed what the months had of it)
WAIVED = "waived"


class MonthNotClosed(ValueError):
    """The month's last day has not been closed yet (the business date is not past it)."""


@dataclass(frozen=True)
class MonthResult:
    month: str
    leases: int  # leases read
    posted: int  # entries posted now
    amount: int  # fen posted now
    difference: int  # effective − schedule over the entries posted now (fen)


def income_key(lease_id: str, month: str) -> str:
    return f"income:{lease_id}:{month}"


def lock_leases(session: Session, lease_ids: Sequence[str]) -> None:
    """Hold each lease's finance-income lock to the end of ``session``'s transaction (a transaction-scoped advisory
    lock on the hash of ``income:<lease>``), taken in the order of the hashes (two batches never wait on each other in a
    circle). Whoever reads what a lease recognised (:func:`recognised`) to post its income takes it first: the monthly
    job's batch, a settlement's, a prepayment's and a returned car's income entries. The second of two at once then
    reads what the first posted."""
    if lease_ids:
        session.execute(text(
            "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT hashtext('income:' || id) AS k "
            "FROM unnest(CAST(:ids AS varchar[])) AS id ORDER BY 1) AS locks"), {"ids": sorted(set(lease_ids))})


def recognised(session: Session, lease_ids: Sequence[str]) -> dict[str, int]:
    """Each lease's finance income recognised so far (fen): its net credit to Income:Lease:Interest in entries of
    kind ``finance_income``."""
    if not lease_ids:
        return {}
    rows = session.execute(
        select(JournalLineRow.lease_id, func.sum(JournalLineRow.credit - JournalLineRow.debit))
        .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
        .where(JournalLineRow.lease_id == any_of(list(lease_ids)), JournalLineRow.account == INTEREST,
               JournalEntryRow.kind == KIND)
        .group_by(JournalLineRow.lease_id)).all()
    return {str(lease_id): int(total) for lease_id, total in rows}


def schedules(session: Session, leases: Sequence[LeaseRow],
              policy: TaxPolicy | None = None) -> dict[str, LeaseSchedule]:
    """The current schedule of each lease (books/income.py): its rents and final rent as they stand, a cancelled rent
    left out, a settled one with no interest, a waived one with the interest it was paid only — each with the VAT it
    carries under the rule in force on its due date for the lease's structure (books/vat.py), so that the spread earns
    the interest net of its VAT: ``tax_on_interest`` is the tax included in the interest earned, ``tax`` the rent's."""
    found = policy or load_tax_policy()
    structures = {lease.id: lease_structure(lease.terms) for lease in leases}
    rents: dict[str, list[Rent]] = defaultdict(list)
    for lease_id, due_on, amount, interest, paid, state in session.execute(
            select(InstalmentRow.lease_id, InstalmentRow.due_on, InstalmentRow.amount, InstalmentRow.interest,
                   InstalmentRow.paid_interest, InstalmentRow.state)
            .where(InstalmentRow.lease_id == any_of([lease.id for lease in leases]),
                   InstalmentRow.kind.in_(SCHEDULE_KINDS), InstalmentRow.state != "cancelled")):
        earned = 0 if state in NOT_EARNED else min(interest, paid) if state == WAIVED else interest
        rule = found.rule(structures[lease_id], due_on)
        tax = rent_tax(rule, amount, max(0, min(interest, amount))).tax if amount >= 0 else 0
        rents[lease_id].append(Rent(due_on, earned, amount, tax, included_tax(rule, earned)))
    return {lease.id: LeaseSchedule(lease.starts_on, lease.ends_on, lease.timing, tuple(rents[lease.id]))
            for lease in leases}


def prepaid(session: Session, lease_ids: Sequence[str]) -> dict[str, list[tuple[date, int]]]:
    """The principal each lease prepaid (its ``prepayment`` movements): flows of the implicit rate."""
    out: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for lease_id, day, principal in session.execute(
            select(ServicingMovementRow.lease_id, ServicingMovementRow.value_date, ServicingMovementRow.principal)
            .where(ServicingMovementRow.lease_id == any_of(list(lease_ids)),
                   ServicingMovementRow.kind == "prepayment")):
        out[lease_id].append((day, -principal))
    return out


def month_entry(lease: LeaseRow, schedule: LeaseSchedule, month: str, before: int,
                others: Sequence[tuple[date, int]] = ()) -> tuple[Entry | None, int]:
    """The month's entry of one lease (None: nothing to recognise) and the effective-interest difference it shows."""
    end = month_end(month)
    target = recognised_through(schedule, end)
    amount = max(0, target - before)  # as books.income.month_income: the spread through the month end, less before
    if not amount:
        return None, 0
    # the net investment, net of VAT as the spread (books/income.py): the rents' principal less its tax
    invest = sum(r.net_amount for r in schedule.rents) - schedule.interest + sum(a for _, a in others)
    previous = end.replace(day=1) - ONE_DAY
    figures = effective_through(schedule, end, previous, net_investment=invest, others=others)
    if figures is None:
        shown, difference = "no implicit rate", 0
    else:
        now_eff, before_eff = figures
        # the effective figure's month against the schedule's (a month that took up earlier months' income, after a
        # re-amortisation, compares with its own spread: target − the previous month end's)
        spread = target - min(recognised_through(schedule, previous), target)
        difference = (now_eff - before_eff) - spread
        shown = f"effective {now_eff - before_eff} fen, difference {difference:+d} fen"
    item = income_entry(income_key(lease.id, month), end, amount,
                        f"融资收益 finance income {month}: schedule {amount} fen; {shown}", lease_id=lease.id,
                        dealer_id=lease.dealer_id)
    return item, difference


def recognise_month(db: Database, month: str, now: datetime, *, batch: int = BATCH,
                    only: Sequence[str] | None = None) -> MonthResult:
    """Post ``month``'s finance income of every lease that commenced by its end (or of those of ``only``), in
    batches (see the module's docstring). Raises :class:`MonthNotClosed` while the month's last day is not closed."""
    end = month_end(month)
    with db.session() as session:
        current = session.execute(select(BusinessDateRow.current).where(BusinessDateRow.id == 1)).scalar_one()
    if current <= end:
        raise MonthNotClosed(f"{month} is not closed: the business date is {current.isoformat()}")
    last, read, posted, amount, difference = "", 0, 0, 0, 0
    while True:
        with db.session() as session:
            query = select(LeaseRow).where(LeaseRow.starts_on <= end, LeaseRow.status != SETTLED_LEASE,
                                           LeaseRow.id > last)
            if only is not None:
                query = query.where(LeaseRow.id.in_(list(only)))
            leases = list(session.scalars(query.order_by(LeaseRow.id).limit(batch)))
            if not leases:
                break
            last = leases[-1].id
            read += len(leases)
            ids = [lease.id for lease in leases]
            lock_leases(session, ids)  # a run beside this one (another month, by hand, a settlement) waits
            found, before, others = schedules(session, leases), recognised(session, ids), prepaid(session, ids)
            entries: list[Entry] = []
            for lease in leases:
                item, diff = month_entry(lease, found[lease.id], month, before.get(lease.id, 0),
                                         others.get(lease.id, ()))
                if item is not None:
                    entries.append(item)
                    difference += diff
            done = set(session.scalars(select(JournalEntryRow.key).where(
                JournalEntryRow.key.in_([e.key for e in entries])))) if entries else set()
            fresh = [e for e in entries if e.key not in done]
            posted += len(books.post(session, fresh, now))
            amount += sum(e.total for e in fresh)
    return MonthResult(month, read, posted, amount, difference)


class FinanceIncome:
    """The ``books.finance_income`` task and ``leaseline books income``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def run(self, month: str) -> MonthResult:
        """Post ``month``'s finance income (:func:`recognise_month`), now."""
        from infra.db.models import utcnow

        return recognise_month(self.db, month, utcnow())


def defer_month(session: Session, month: str) -> None:
    """Queue ``month``'s recognition in ``session``'s transaction (the close that finished its last day), once while
    one is waiting (its queueing lock); the months' jobs run one at a time (their lock, ``books.finance_income``: a
    close catching up several days defers several months)."""
    Job(TASK, {"month": month}, QUEUE, queueing_lock=f"{TASK}:{month}", lock=TASK).defer(session)
