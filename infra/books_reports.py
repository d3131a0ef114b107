"""What the books' reports read (issue 19 §4; books/reports.py makes them): balances and monthly movements from the
journal, each instalment's outstanding lease payments at a date, the VAT lines with what tells their rate, a dealer's
journal lines. Every figure by the day an entry is booked (``booked_on``: a late entry counts in the open month it was
booked in, as the closed months were reported), amounts in fen; each read is one set-based statement."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from books.accounts import DEALERS
from books.accounts import FEES
from books.lease import LEASE_PAYMENTS
from books.lease import structure_of
from books.reports import VAT_INPUT
from books.reports import VAT_OUTPUT
from books.reports import DealerLine
from books.reports import Outstanding
from books.reports import VatMovement
from books.reports import identify
from books.vat import NoRuleInForce
from books.vat import load_tax_policy
from infra.db.models import DealerRow
from infra.db.models import JournalEntryRow as E
from infra.db.models import JournalLineRow as L
from infra.db.models import LeaseRow


def balances_at(session: Session, on: date) -> dict[str, int]:
    """Each account's closing balance at the end of ``on`` (fen, debit-positive; every account with a line booked
    through that day)."""
    return {account: int(fen) for account, fen in session.execute(
        select(L.account, func.sum(L.debit - L.credit)).join(E, L.entry_id == E.id).where(E.booked_on <= on)
        .group_by(L.account))}


def first_booked(session: Session) -> date | None:
    """The first day anything was booked (None: an empty journal)."""
    return session.execute(select(func.min(E.booked_on))).scalar_one()


def monthly_movements(session: Session, start: date, end: date) -> dict[tuple[str, str], int]:
    """(``YYYY-MM``, account) → the net movement (fen, debit-positive) of entries booked from ``start`` to ``end``."""
    month = func.to_char(E.booked_on, "YYYY-MM")
    return {(m, account): int(fen) for m, account, fen in session.execute(
        select(month, L.account, func.sum(L.debit - L.credit)).join(E, L.entry_id == E.id)
        .where(E.booked_on >= start, E.booked_on <= end).group_by(month, L.account))}


_OUTSTANDING = """
WITH moves AS (
    SELECT m.instalment_id, SUM(m.principal + m.interest) AS owed_change, BOOL_OR(m.kind = 'settlement') AS settled
    FROM servicing_movements m JOIN instalments i ON i.id = m.instalment_id
    WHERE m.value_date <= :on AND i.kind = ANY(:kinds)
    GROUP BY m.instalment_id),
owed AS (
    SELECT i.lease_id, l.dealer_id,
           CASE WHEN i.overdue_since <= :on THEN :on - i.overdue_since + 1 ELSE 0 END AS dpd,
           i.amount + COALESCE(mv.owed_change, 0)
           - CASE WHEN i.state = 'settled' AND mv.settled THEN i.waived ELSE 0 END AS owed
    FROM instalments i JOIN leases l ON l.id = i.lease_id
    LEFT JOIN moves mv ON mv.instalment_id = i.id
    WHERE i.kind = ANY(:kinds) AND l.starts_on <= :on)
SELECT lease_id, dealer_id, dpd, SUM(owed) FROM owed GROUP BY lease_id, dealer_id, dpd HAVING SUM(owed) <> 0
"""


def outstanding(session: Session, on: date) -> list[Outstanding]:
    """What the lease payments (rents, final rents) of every lease begun by ``on`` still owed at the end of ``on``,
    by lease and days past due: each instalment's amount and its movements dated then or before (a rent an early
    settlement replaced owes nothing of the interest it waived, as infra/books_reconcile.py counts it), its days past
    due then counted from its first overdue day (servicing/arrears.py ``days_past_due``; 0 when it was not overdue by
    then). Summed in the database by lease and days past due: a row or a few a lease, not one an instalment."""
    return [Outstanding(lease_id, dealer_id, int(dpd), int(owed)) for lease_id, dealer_id, dpd, owed in
            session.execute(text(_OUTSTANDING), {"on": on, "kinds": list(LEASE_PAYMENTS)})]


_VAT = """
SELECT to_char(je.booked_on, 'YYYY-MM') AS month, je.value_date, je.lease_id, jl.account,
       SUM(jl.credit - jl.debit) AS net,
       (SELECT COALESCE(SUM(x.credit - x.debit), 0) FROM journal_lines x
         WHERE x.entry_id = je.id AND x.account LIKE 'Income:%') AS income,
       i.amount, i.interest
FROM journal_lines jl JOIN journal_entries je ON je.id = jl.entry_id
LEFT JOIN instalments i ON i.id = CASE WHEN je.key ~ '^vat:[0-9]{1,18}$'
                                       THEN CAST(split_part(je.key, ':', 2) AS bigint) END
WHERE jl.account IN (:output, :input) AND je.booked_on >= :start AND je.booked_on <= :end
GROUP BY je.booked_on, je.id, je.value_date, je.lease_id, jl.account, i.amount, i.interest
"""


def vat_movements(session: Session, start: date, end: date) -> list[VatMovement]:
    """Each entry's net output VAT (credit-positive) and input VAT (debit-positive) booked from ``start`` to ``end``,
    the output's rate identified from what the entry tells (books/reports.py ``identify_rate``): a rent's tax point
    (key ``vat:<instalment>``) by the rent's amount (the tax in it) or its interest (a sale-and-leaseback taxes the
    interest only), an entry crediting income by that income (without the tax) and income and tax together — one
    debiting them (a refund of a fee, a reversal) by their sizes, the same way. A line
    whose entry tells no base that gives its tax exactly (a settlement moving the replaced rents' pending VAT, a sum
    of taxes each rounded) takes the rate of the rule the tax policy (books/tax_policy.toml) puts in force for its
    lease's structure on the entry's date; one of no lease, or under no rule, stays not identified. Each line's
    taxable amount is the base its rate was identified on, less its tax (a rent's amount, its interest) or as it is
    (the income): None for a line whose rate came from the policy (its entry tells no base)."""
    found: list[VatMovement] = []
    unknown: list[tuple[int, str, date]] = []  # (index in found, lease, value date) of the rates not identified
    for month, value_date, lease_id, account, net, income, amount, interest in session.execute(text(_VAT), {
            "output": VAT_OUTPUT, "input": VAT_INPUT, "start": start, "end": end}):
        net = int(net)
        if account == VAT_INPUT:
            found.append(VatMovement(month, account, None, -net))
            continue
        gross = [int(amount)] if amount is not None else []
        gross += [int(interest)] if interest is not None else []
        # a refund, a reversal: the tax and its income given back (debits), their sizes telling the rate as the
        # charge's did
        told = identify(abs(net), gross=[*gross, abs(int(income)) + abs(net)], net=[abs(int(income))])
        if told is None:
            if lease_id is not None:
                unknown.append((len(found), lease_id, value_date))
            found.append(VatMovement(month, account, None, net))
        else:  # the taxable amount signed as the tax: a refund's negative
            found.append(VatMovement(month, account, told[0], net, told[1] if net > 0 else -told[1]))
    if unknown:
        policy = load_tax_policy()
        structures = {lease_id: structure_of(json.loads(terms or "{}")) for lease_id, terms in session.execute(
            select(LeaseRow.id, LeaseRow.terms).where(LeaseRow.id.in_({lease for _i, lease, _d in unknown})))}
        for index, lease_id, value_date in unknown:
            try:
                rate = policy.rule(structures[lease_id], value_date).rate if lease_id in structures else None
            except NoRuleInForce:
                rate = None
            line = found[index]
            found[index] = VatMovement(line.month, line.account, rate, line.amount)
    return found


_DEALER_LINES = """
SELECT je.booked_on, je.value_date, je.key, je.kind, jl.account, jl.debit, jl.credit,
       COALESCE(l.contract_number, la.contract_number) AS contract,
       COALESCE(jl.lease_id, je.lease_id) AS lease_id, COALESCE(p.application_id, rp.application_id) AS application_id
FROM journal_lines jl JOIN journal_entries je ON je.id = jl.entry_id
LEFT JOIN leases l ON l.id = COALESCE(jl.lease_id, je.lease_id)
LEFT JOIN payments p ON (je.key LIKE 'payment:%' OR je.key LIKE 'transfer:%') AND p.id = split_part(je.key, ':', 2)
LEFT JOIN payment_refunds r ON je.key LIKE 'refund:%' AND r.id = split_part(je.key, ':', 2)
LEFT JOIN payments rp ON rp.id = r.payment_id
LEFT JOIN leases la ON la.application_id = COALESCE(p.application_id, rp.application_id)
WHERE jl.dealer_id = :dealer AND jl.account IN (:dealers, :fees) AND je.booked_on <= :end
"""


def dealer_lines(session: Session, dealer_id: str, end: date) -> list[DealerLine]:
    """The dealer's lines of Liabilities:Payable:Dealers and of fees booked through ``end``, each named by its lease's
    contract number (before the lease exists: its application's, ``申请 <first 8 of its id>``)."""
    found = []
    for booked, value, key, kind, account, debit, credit, contract, lease_id, application_id in session.execute(
            text(_DEALER_LINES), {"dealer": dealer_id, "dealers": DEALERS, "fees": FEES,
                                                     "end": end}):
        reference = contract or (f"#{application_id[:8]}" if application_id else (lease_id or "")[:8] or "—")
        found.append(DealerLine(booked, value, key, kind, reference, account, int(debit), int(credit)))
    return found


@dataclass(frozen=True)
class DealerBalance:
    dealer_id: str
    name: str
    city: str
    leases: int
    owed: int  # what the lessor owes the dealer at the date (fen, credit-positive)


def dealer_balances(session: Session, on: date) -> list[DealerBalance]:
    """Every dealer with what the lessor owes it (Liabilities:Payable:Dealers, its lines booked through ``on``) and its
    leases begun by then, by name."""
    owed: dict[str, int] = defaultdict(int)
    for dealer_id, fen in session.execute(
            select(L.dealer_id, func.sum(L.credit - L.debit)).join(E, L.entry_id == E.id)
            .where(L.account == DEALERS, E.booked_on <= on, L.dealer_id.is_not(None)).group_by(L.dealer_id)):
        owed[dealer_id] = int(fen)
    counts = {str(d): int(n) for d, n in session.execute(select(LeaseRow.dealer_id, func.count())
                                                         .where(LeaseRow.starts_on <= on).group_by(LeaseRow.dealer_id))}
    return [DealerBalance(d.id, d.name, d.city, int(counts.get(d.id, 0)), owed.get(d.id, 0))
            for d in session.scalars(select(DealerRow).order_by(DealerRow.name))]


def dealer_names(session: Session) -> dict[str, str]:
    """Every dealer's name by id."""
    return {str(i): str(n) for i, n in session.execute(select(DealerRow.id, DealerRow.name))}
