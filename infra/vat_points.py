"""The VAT of a lease's rents in the books (issue 19 §3; books/lease.py, books/vat.py): put in Pending at the
commencement, moved to output VAT at each rent's tax point.

**A rent's tax point** (财税〔2016〕36号 附件1 第四十五条, books/tax_policy.toml): the payment date the written contract
fixes — its due date — or, when the rent is received in full before it, the day it is (收讫销售款项 comes first; its
e-invoice is issued that day too, infra/invoicing.py, and an invoice issued first is a tax point of its own). A rent
received in part ahead keeps its due date (the part is not split: a simplification, the rest of it being owed then).

- :func:`commencement_vat` — the entry ``lease:<id>:vat`` of a lease being opened (infra/servicing.py ``open_lease``):
  each rent's and the final rent's tax under the rule in force on its due date, for the lease's structure (its frozen
  terms' ``structure``; direct when they state none), and the tax point of a rent due on the start (rent 1 in advance,
  paid at signing).
- :func:`falling_due` — the close of business's, from the rows each batch reads already (its open rents due through the
  day: no query of its own): every open rent or final rent of a lease whose due date came since the lease was last
  closed (``closed_through`` < due date ≤ the day; every due date up to the day for a lease never closed) posts
  ``vat:<instalment id>``, dated its due date: Dr Liabilities:Tax:VAT:Pending / Cr Liabilities:Tax:VAT:Output = its
  tax, computed on the rent as it stands (a re-amortised rent's new figures: the event that rewrote it moved its
  pending VAT to them). One :func:`infra.books.post` per batch, in the batch's transaction; a date closed again posts
  nothing (the close skips the leases closed through it, and the keys post once); a close after a gap (a lease not
  closed for days, a backfilled one) posts each rent due in between, once.
- :func:`paid_ahead` — a rent received in full before the close passed its due date (infra/collections.py, the
  receipt's transaction; a final rent paid off by a refinancing): its tax point that day, the same key, so that the
  close (which reads open rents only) has nothing left of it.
- :func:`post_tax_points` — every rent of some leases whose tax point came through a day and is not posted yet, in any
  state (a rent a settlement replaced, a prepayment cancelled or a returned car's waiver took before its date
  excepted: the event took its pending VAT): what the closes and the receipts through that day post, for a lease they
  did not see (tests, a repair).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from books import lease as books_lease
from books.entries import Entry
from books.lease import LEASE_PAYMENTS
from books.lease import structure_of
from books.vat import TaxPolicy
from books.vat import load_tax_policy
from books.vat import rent_tax
from infra.books import post

#: instalments whose pending VAT an event took before their tax point (a settlement's replaced rents, a prepayment's
#: cancelled ones, a returned car's waived final rent): no tax point
NO_TAX_POINT = ("settled", "cancelled", "waived")
#: a rent received in full: its tax point the day it was (``settled_on``) when that came before its due date
PAID = "paid"

#: the rents of some leases whose tax point came through a day (the earlier of the due date and the day received in
#: full), any state but those an event took (their structure read from the lease's frozen terms for those rows only)
_COME = text(
    "SELECT i.id, i.lease_id, l.dealer_id, LEAST(i.due_on, CASE WHEN i.state = :paid THEN i.settled_on END) AS point, "
    "i.due_on, i.amount, i.interest, COALESCE(CAST(l.terms AS jsonb) ->> 'structure', :direct) AS structure "
    "FROM instalments i JOIN leases l ON l.id = i.lease_id "
    "WHERE i.lease_id = ANY(:ids) AND l.id = ANY(:ids) AND i.kind = ANY(:kinds) AND i.state <> ALL(:excluded) "
    "AND LEAST(i.due_on, CASE WHEN i.state = :paid THEN i.settled_on END) <= :day")


def lease_structure(terms: str | dict[str, Any]) -> str:
    """The structure a lease's frozen terms (the JSON text of ``leases.terms``, or its dict) state."""
    found = json.loads(terms) if isinstance(terms, str) else terms
    return structure_of(found if isinstance(found, dict) else {})


def commencement_vat(lease_id: str, dealer_id: str, starts_on: date, structure: str,
                     instalments: Iterable[tuple[int, str, date, int, int]],
                     policy: TaxPolicy | None = None, received_on: date | None = None) -> list[Entry]:
    """The commencement's VAT entry of a lease whose ``instalments`` are (id, kind, due date, amount, interest) — its
    rents and final rent, each under the rule in force on its due date — and the tax point of each due on or before
    the start (rent 1 in advance, paid at signing): the day the upfront payment that paid it was received
    (``received_on``: 预收款, the day received) when that came before its due date, else its due date."""
    rents = [(inst_id, due_on, amount, interest) for inst_id, kind, due_on, amount, interest in instalments
             if kind in LEASE_PAYMENTS]
    taxes = books_lease.rent_taxes(structure, [(due_on, amount, interest) for _, due_on, amount, interest in rents],
                                   policy)
    made = [books_lease.commencement_vat(lease_id, dealer_id, starts_on, taxes)]
    made += [books_lease.tax_point(inst_id, lease_id, dealer_id, min(due_on, received_on or due_on), tax.tax)
             for (inst_id, due_on, _, _), tax in zip(rents, taxes, strict=True) if due_on <= starts_on]
    return [item for item in made if item is not None]


def tax_point_of(policy: TaxPolicy, structure: str, inst_id: int, lease_id: str, dealer_id: str, on: date,
                 due_on: date, amount: int, interest: int) -> Entry | None:
    """``vat:<inst_id>`` dated ``on`` (its tax point: the earlier of its due date and the day it was received in full,
    附件1 第四十五条): the tax of the rent under the rule in force on that day. (The commencement put it in Pending
    under its due date's rule: the two differ only for a rent received before a rate change and due after it, which
    no lease of Leaseline's has.)"""
    tax = rent_tax(policy.rule(structure, on), amount, interest).tax
    return books_lease.tax_point(inst_id, lease_id, dealer_id, on, tax)


@dataclass(frozen=True)
class LeaseOfBatch:
    """What the close knows of a lease of its batch: when it was last closed, its dealer and its frozen terms."""

    id: str
    dealer_id: str
    closed_through: date | None
    terms: str


def falling_due(leases: Mapping[str, LeaseOfBatch], rows: Iterable[tuple[int, str, str, date, int, int]],
                policy: TaxPolicy | None = None) -> list[Entry]:
    """The tax points of a batch's open ``rows`` (id, lease id, kind, due date, amount, interest: the rents due
    through the day closed) whose due date came since their lease was last closed."""
    found = policy or load_tax_policy()
    structures: dict[str, str] = {}
    out: list[Entry] = []
    for inst_id, lease_id, kind, due_on, amount, interest in rows:
        lease = leases[lease_id]
        if kind not in LEASE_PAYMENTS or (lease.closed_through is not None and due_on <= lease.closed_through):
            continue
        if lease_id not in structures:
            structures[lease_id] = lease_structure(lease.terms)
        made = tax_point_of(found, structures[lease_id], inst_id, lease_id, lease.dealer_id, due_on, due_on, amount,
                            interest)
        if made is not None:
            out.append(made)
    return out


def paid_ahead(lease_id: str, dealer_id: str, closed_through: date | None, terms: str, day: date,
               rows: Iterable[tuple[int, str, date, int, int]], policy: TaxPolicy | None = None) -> list[Entry]:
    """The tax points of rents received in full on ``day`` (``rows``: id, kind, due date, amount, interest of the
    rents it paid in full) whose due date the close has not passed yet (after the lease's ``closed_through``): dated
    ``day`` — before the due date, the receipt is the tax point (a rent due on ``day`` itself: the same day)."""
    found = policy or load_tax_policy()
    structure = lease_structure(terms)
    out: list[Entry] = []
    for inst_id, kind, due_on, amount, interest in rows:
        if kind not in LEASE_PAYMENTS or (closed_through is not None and due_on <= closed_through):
            continue
        made = tax_point_of(found, structure, inst_id, lease_id, dealer_id, min(day, due_on), due_on, amount,
                            interest)
        if made is not None:
            out.append(made)
    return out


def tax_points(session: Session, day: date, lease_ids: Sequence[str],
               policy: TaxPolicy | None = None) -> list[Entry]:
    """The tax points of ``lease_ids``'s rents whose tax point came through ``day`` (see :func:`post_tax_points`)."""
    if not lease_ids:
        return []
    found = policy or load_tax_policy()
    out: list[Entry] = []
    for inst_id, lease_id, dealer_id, point, due_on, amount, interest, structure in session.execute(_COME, {
            "ids": list(lease_ids), "kinds": list(LEASE_PAYMENTS), "excluded": list(NO_TAX_POINT), "day": day,
            "paid": PAID, "direct": books_lease.DIRECT}):
        made = tax_point_of(found, structure, int(inst_id), lease_id, dealer_id, point, due_on, int(amount),
                            int(interest))
        if made is not None:
            out.append(made)
    return out


def post_tax_points(session: Session, day: date, lease_ids: Sequence[str], now: datetime,
                    policy: TaxPolicy | None = None) -> int:
    """Post every tax point of ``lease_ids``'s rents that came through ``day`` and is not posted yet (the keys: one
    posted already is skipped), in ``session``'s transaction, in one :func:`infra.books.post`; the number posted now."""
    return len(post(session, tax_points(session, day, lease_ids, policy), now))
