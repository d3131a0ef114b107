"""The lease sub-ledger's check (issue 19 §2): each lease's receivable and unearned income in the general ledger equal
what its instalments say, to the fen, at a date.

For a lease at the date D, from the journal lines with its lease id in entries booked on or before D:

- **Assets:LeaseReceivable:Payments** (debit − credit) = what its rents and final rent still owe: each one's amount
  plus its movements dated D or before (a movement lowers what it owes: a payment, rent 1 paid at signing, a rent
  collected outside Leaseline, a deposit applied, a refinancing, a settlement, a returned car), less the interest an
  early settlement no longer asks of a rent it replaced (the instalment's ``waived``, once that settlement's movement is
  dated D or before). Charges outside the lease payments (a purchase price, a returned car's charges) are not in it.
- **Assets:LeaseReceivable:Unearned** (credit − debit) = the interest of its rents and final rent still on the books
  less the interest recognised as income through D. On the books: each one's interest, less the interest a returned
  car's offset took off it, and none of it once an early settlement paid on or before D replaced it (a rent due after
  the settlement day, or the final rent: its interest not owed and what was paid of it ahead, given back, leave
  Unearned with it — books/settlement.py). Recognised: Unearned's net debit in the entries of kind ``finance_income``
  (books/income.py FINANCE_INCOME: the monthly ``income:<lease>:<YYYY-MM>``, a settlement's or a prepayment's
  ``…:income`` — every entry that moves schedule interest between Unearned and Income:Lease:Interest; one that gives
  income back counts back).

**Net of VAT and the VAT pending** (issue 19 §3; books/vat.py, books/lease.py): each instalment's interest on the books
counts net of the tax it includes (tax_on_interest = half_up(interest·τ/(1+τ)) under the rule in force on its due date
for the lease's structure: the commencement left Unearned net), and a third account is checked:

- **Liabilities:Tax:VAT:Pending** (credit − debit) = Σ tax of its rents and final rent whose tax point has not come by D
  (due date after D, and not received in full by D — a rent paid ahead is taxed the day it is: infra/vat_points.py),
  each on its amount and interest as it stands, under the rule of its due date — none for a rent a settlement paid on or
  before D replaced, nor for one a returned car's waiver dated D or before took (their events take their pending VAT
  back). A lease commenced before VAT was posted has no ``lease:<id>:vat``: it differs until its VAT is brought in.

The tax is computed in SQL from each rule's exact τ/(1+τ) (its numerator and denominator), rounded half up once as
books/vat.py does (integer division of bigints), so that the check is one statement whatever the number of leases.

Instalments are read as they stand, their movements by date. A partial prepayment rewrites the rents after it in
place (infra/prepayments.py): before the day it was applied (its ``prepayment:<id>`` movement's date) the schedule
owed its amount more principal and the interest it dropped more interest — the interest the rents after it held before
(the offer's ``old.interest_left``, as the customer was shown it) less what the applied schedule's rents hold (its
``rows``) —, added back for a date before it; with VAT, the old rents' figures are not kept per rent: the tax of the
interest it dropped and the pending VAT it moved are added back as the prepayment's own entries (keys
``prepayment:<id>`` and ``prepayment:<id>:…``, finance income aside) posted them — credits to Unearned, the net debit
to Pending —, which the check at any date after it tests against the applied schedule. A lease counts from its
start (``starts_on`` ≤ D).

Both sides on the ledger's dates: an entry dated in a month closed when it was posted is booked on the first day after
that month (infra/books.py ``booked_on``), and the closed books do not hold it before. The schedule's events it books
(a commencement, a movement dated in the closed month) count from that day too: what the lease's entries dated D or
before but booked after D post to the two accounts (finance income aside: ``recognised`` is read as booked) is taken
off the schedule's figures at D. An event the books never posted still differs from its own date; a late entry that
posts the wrong amount differs from the day it is booked. (The closed month counted is the one closed when the event
was posted — its entry's ``booked_on`` —, not the latest: events posted before a month was closed keep their dates.)

Set-based: three aggregate statements — the journal, the instalments with their movements, the prepayments applied
after D —, whatever the number of leases (the 100,000-lease portfolio), or only ``lease_ids``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from books.accounts import RECEIVABLE
from books.accounts import UNEARNED
from books.accounts import VAT_PENDING
from books.income import FINANCE_INCOME
from books.lease import DIRECT
from books.lease import LEASE_PAYMENTS
from books.vat import TaxPolicy
from books.vat import load_tax_policy

#: the movement of an early settlement on an instalment (infra/settlements.py): a rent it replaced keeps the interest it
#: no longer owes in ``waived`` (what it still owed is nothing from the day the settlement was paid)
SETTLEMENT_MOVE = "settlement"
#: movements that take a rent's interest off the books (infra/end_of_term.py: the returned car offsets the final rent)
WAIVER_MOVES = ("car_returned",)
#: a partial prepayment applied (infra/prepayments.py APPLIED)
PREPAYMENT_APPLIED = "applied"


@dataclass(frozen=True)
class LeaseDifference:
    """A lease whose ledger balance in ``account`` is not what its schedule says (fen: the receivable debit-positive,
    the unearned income and the VAT pending credit-positive)."""

    lease_id: str
    account: str
    ledger: int
    schedule: int

    @property
    def difference(self) -> int:
        return self.ledger - self.schedule


_LEDGER = """
SELECT jl.lease_id,
       COALESCE(SUM(jl.debit - jl.credit) FILTER (WHERE jl.account = :receivable AND je.booked_on <= :on), 0)
           AS receivable,
       COALESCE(SUM(jl.credit - jl.debit) FILTER (WHERE jl.account = :unearned AND je.booked_on <= :on), 0)
           AS unearned,
       COALESCE(SUM(jl.debit - jl.credit) FILTER (WHERE jl.account = :unearned AND je.kind = :income
                                                   AND je.booked_on <= :on), 0) AS recognised,
       COALESCE(SUM(jl.debit - jl.credit) FILTER (WHERE jl.account = :receivable AND je.booked_on > :on), 0)
           AS receivable_late,
       COALESCE(SUM(jl.credit - jl.debit) FILTER (WHERE jl.account = :unearned AND je.kind <> :income
                                                   AND je.booked_on > :on), 0) AS unearned_late,
       COALESCE(SUM(jl.credit - jl.debit) FILTER (WHERE jl.account = :pending AND je.booked_on <= :on), 0)
           AS pending,
       COALESCE(SUM(jl.credit - jl.debit) FILTER (WHERE jl.account = :pending AND je.booked_on > :on), 0)
           AS pending_late
FROM journal_lines jl JOIN journal_entries je ON je.id = jl.entry_id
WHERE jl.account IN (:receivable, :unearned, :pending) AND je.value_date <= :on AND jl.lease_id IS NOT NULL {only}
GROUP BY jl.lease_id
"""

_SCHEDULE = """
WITH moves AS (
    SELECT m.instalment_id,
           SUM(m.principal + m.interest) AS owed_change,
           SUM(CASE WHEN m.kind = ANY(:waivers) THEN -m.interest ELSE 0 END) AS interest_waived,
           BOOL_OR(m.kind = ANY(:waivers)) AS waived,
           BOOL_OR(m.kind = :settlement) AS settled
    FROM servicing_movements m
    WHERE m.instalment_id IS NOT NULL AND m.value_date <= :on {only_m}
    GROUP BY m.instalment_id),
rules AS (
    SELECT * FROM unnest(CAST(:r_structures AS varchar[]), CAST(:r_from AS date[]), CAST(:r_to AS date[]),
                         CAST(:r_num AS bigint[]), CAST(:r_den AS bigint[]), CAST(:r_whole AS boolean[]))
        AS r(structure, starts_on, ends_on, num, den, whole)),
inst AS (
    SELECT i.lease_id, i.kind, i.state, i.due_on, i.settled_on, i.amount, i.interest, i.waived AS waived_fen,
           mv.owed_change,
           mv.interest_waived, mv.waived, mv.settled, q.id AS quote_id, q.settles_on, r.num, r.den, r.whole
    FROM instalments i JOIN leases l ON l.id = i.lease_id
    LEFT JOIN moves mv ON mv.instalment_id = i.id
    LEFT JOIN settlement_quotes q ON q.lease_id = i.lease_id AND q.status = 'paid' AND q.paid_on <= :on
    LEFT JOIN rules r ON r.structure = COALESCE(CAST(l.terms AS jsonb) ->> 'structure', :direct)
                     AND i.due_on >= r.starts_on AND (r.ends_on IS NULL OR i.due_on <= r.ends_on)
    WHERE i.kind = ANY(:kinds) AND l.starts_on <= :on {only_i}),
figures AS (
    SELECT lease_id,
           amount + COALESCE(owed_change, 0)
               - CASE WHEN state = 'settled' AND settled THEN waived_fen ELSE 0 END AS owed,
           CAST(CASE WHEN quote_id IS NOT NULL AND state <> 'waived' AND NOT (kind = 'rent' AND due_on <= settles_on)
                     THEN 0 ELSE interest - COALESCE(interest_waived, 0) END AS bigint) AS interest,
           CASE WHEN due_on > :on AND NOT (state = 'settled' AND COALESCE(settled, FALSE))
                     AND NOT COALESCE(waived, FALSE) AND num IS NOT NULL
                     AND NOT (state = 'paid' AND settled_on IS NOT NULL AND settled_on <= :on)
                THEN (2 * (CASE WHEN whole THEN amount ELSE interest END) * num + den) / (2 * den)
                ELSE 0 END AS pending,
           num, den
    FROM inst)
SELECT lease_id, SUM(owed) AS receivable,
       SUM(interest - CASE WHEN num IS NULL OR interest <= 0 THEN 0 ELSE (2 * interest * num + den) / (2 * den) END)
           AS net_interest,
       SUM(pending) AS pending
FROM figures
GROUP BY lease_id
"""


_PREPAID = """
SELECT p.lease_id, SUM(p.amount),
       SUM(CAST(CAST(p.preview AS jsonb) #>> '{{old,interest_left}}' AS bigint)
           - (SELECT COALESCE(SUM(CAST(r ->> 'interest' AS bigint)), 0)
              FROM jsonb_array_elements(CAST(p.schedule AS jsonb) -> 'rows') AS r
              WHERE NOT CAST(r ->> 'final' AS boolean))),
       SUM((SELECT COALESCE(SUM(jl.credit) FILTER (WHERE jl.account = :unearned), 0)
            FROM journal_entries je JOIN journal_lines jl ON jl.entry_id = je.id
            WHERE (je.key = 'prepayment:' || p.id OR je.key LIKE 'prepayment:' || p.id || ':%')
              AND je.kind <> :income AND jl.lease_id = p.lease_id)),
       SUM((SELECT COALESCE(SUM(jl.debit - jl.credit) FILTER (WHERE jl.account = :pending), 0)
            FROM journal_entries je JOIN journal_lines jl ON jl.entry_id = je.id
            WHERE (je.key = 'prepayment:' || p.id OR je.key LIKE 'prepayment:' || p.id || ':%')
              AND je.kind <> :income AND jl.lease_id = p.lease_id))
FROM prepayments p JOIN servicing_movements m ON m.key = 'prepayment:' || p.id JOIN leases l ON l.id = p.lease_id
WHERE p.status = :applied AND m.value_date > :on AND l.starts_on <= :on {only_p}
GROUP BY p.lease_id
"""


def _rules(policy: TaxPolicy) -> dict[str, Any]:
    """The policy's rules as the arrays of the schedule's ``rules`` table: each rate's τ/(1+τ) as an exact fraction
    (num/den), and whether it taxes the whole rent or its interest only."""
    fractions = [r.fraction / (1 + r.fraction) for r in policy.rules]
    return {"r_structures": [r.structure for r in policy.rules], "r_from": [r.effective_from for r in policy.rules],
            "r_to": [r.effective_to for r in policy.rules], "r_num": [f.numerator for f in fractions],
            "r_den": [f.denominator for f in fractions], "r_whole": [r.base == "consideration" for r in policy.rules]}


def lease_differences(session: Session, lease_ids: Sequence[str] | None = None, *, on: date,
                      policy: TaxPolicy | None = None) -> list[LeaseDifference]:
    """Every lease (or each of ``lease_ids``) whose Assets:LeaseReceivable:Payments or :Unearned balance in the
    ledger through ``on`` is not what its instalments say (see the module's docstring), by lease and account; empty
    when the sub-ledger reconciles to the fen."""
    params: dict[str, Any] = {"on": on, "receivable": RECEIVABLE, "unearned": UNEARNED, "income": FINANCE_INCOME,
                              "pending": VAT_PENDING, "waivers": list(WAIVER_MOVES), "settlement": SETTLEMENT_MOVE,
                              "kinds": list(LEASE_PAYMENTS), "applied": PREPAYMENT_APPLIED, "direct": DIRECT,
                              **_rules(policy or load_tax_policy())}
    only = only_m = only_i = only_p = ""
    if lease_ids is not None:
        if not lease_ids:
            return []
        params["ids"] = list(lease_ids)
        only, only_m, only_i, only_p = ("AND jl.lease_id = ANY(:ids)", "AND m.lease_id = ANY(:ids)",
                                        "AND i.lease_id = ANY(:ids)", "AND p.lease_id = ANY(:ids)")
    ledger: dict[str, tuple[int, int, int, int]] = {}
    late: dict[str, tuple[int, int, int]] = {}
    for r in session.execute(text(_LEDGER.format(only=only)), params):
        ledger[r[0]] = (int(r[1]), int(r[2]), int(r[3]), int(r[6]))
        late[r[0]] = (int(r[4]), int(r[5]), int(r[7]))
    schedule = {r[0]: (int(r[1]), int(r[2]), int(r[3]))
                for r in session.execute(text(_SCHEDULE.format(only_m=only_m, only_i=only_i)), params)}
    for lease_id, principal, interest, vat_on_interest, pending in session.execute(
            text(_PREPAID.format(only_p=only_p)), params):
        owed, held, waiting = schedule.get(lease_id, (0, 0, 0))
        schedule[lease_id] = (owed + int(principal) + int(interest), held + int(interest) - int(vat_on_interest),
                              waiting + int(pending))
    found: list[LeaseDifference] = []
    for lease_id in sorted(set(ledger) | set(schedule)):
        receivable, unearned, recognised, pending = ledger.get(lease_id, (0, 0, 0, 0))
        owed, interest, waiting = schedule.get(lease_id, (0, 0, 0))
        owed_late, interest_late, pending_late = late.get(lease_id, (0, 0, 0))
        owed, interest, waiting = owed - owed_late, interest - interest_late, waiting - pending_late
        if receivable != owed:
            found.append(LeaseDifference(lease_id, RECEIVABLE, receivable, owed))
        if unearned != interest - recognised:
            found.append(LeaseDifference(lease_id, UNEARNED, unearned, interest - recognised))
        if pending != waiting:
            found.append(LeaseDifference(lease_id, VAT_PENDING, pending, waiting))
    return found
