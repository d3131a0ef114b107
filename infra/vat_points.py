"""The VAT of a lease's rents in the books (issue 19 §3; books/lease.py, books/vat.py): put in Pending at the
commencement, moved to output VAT at each rent's tax point.

- :func:`commencement_vat` — the entry ``lease:<id>:vat`` of a lease being opened (infra/servicing.py ``open_lease``):
  each rent's and the final rent's tax under the rule in force on its due date, for the lease's structure (its frozen
  terms' ``structure``; direct when they state none), and the tax point of a rent due on the start (rent 1 in advance).
- :func:`post_tax_points` — the close of business's: every rent and final rent of a batch's leases whose due date (the
  payment date the contract fixes: its tax point) has come since the lease was last closed — ``closed_through`` <
  due date ≤ the day closed, every due date up to the day for a lease never closed — posts ``vat:<instalment id>``,
  dated its due date: Dr Liabilities:Tax:VAT:Pending / Cr Liabilities:Tax:VAT:Output = its tax, computed on the rent as
  it stands (a re-amortised rent's new figures: the event that rewrote it moved its pending VAT to them). Paid or
  not: the tax falls due with the contract's date, not with the money (a rent paid ahead, rent 1 paid at signing,
  alike). A rent a settlement replaced, a prepayment cancelled or a returned car's waiver took before its date posts
  none (the event took its pending VAT: H1b's postings). One read and one :func:`infra.books.post` per batch, in the
  batch's transaction; a date closed again posts nothing (the close skips the leases closed through it, and the keys
  post once); a close after a gap (a lease not closed for days, a backfilled lease) posts each rent due in between,
  once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Sequence
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

#: the rents of a batch's leases falling due since each was last closed (the structure read from the lease's frozen
#: terms for those rows only)
_FALLING_DUE = text(
    "SELECT i.id, i.lease_id, l.dealer_id, i.due_on, i.amount, i.interest, "
    "COALESCE(CAST(l.terms AS jsonb) ->> 'structure', :direct) AS structure "
    "FROM instalments i JOIN leases l ON l.id = i.lease_id "
    "WHERE i.lease_id = ANY(:ids) AND i.kind = ANY(:kinds) AND i.state <> ALL(:excluded) AND i.due_on <= :day "
    "AND (l.closed_through IS NULL OR i.due_on > l.closed_through)")


def lease_structure(terms: str | dict[str, Any]) -> str:
    """The structure a lease's frozen terms (the JSON text of ``leases.terms``, or its dict) state."""
    found = json.loads(terms) if isinstance(terms, str) else terms
    return structure_of(found if isinstance(found, dict) else {})


def commencement_vat(lease_id: str, dealer_id: str, starts_on: date, structure: str,
                     instalments: Iterable[tuple[int, str, date, int, int]],
                     policy: TaxPolicy | None = None) -> list[Entry]:
    """The commencement's VAT entry of a lease whose ``instalments`` are (id, kind, due date, amount, interest) — its
    rents and final rent, each under the rule in force on its due date — and the tax point of each due on or before
    the start (rent 1 in advance, paid at signing: its tax point is the start itself)."""
    rents = [(inst_id, due_on, amount, interest) for inst_id, kind, due_on, amount, interest in instalments
             if kind in LEASE_PAYMENTS]
    taxes = books_lease.rent_taxes(structure, [(due_on, amount, interest) for _, due_on, amount, interest in rents],
                                   policy)
    made = [books_lease.commencement_vat(lease_id, dealer_id, starts_on, taxes)]
    made += [books_lease.tax_point(inst_id, lease_id, dealer_id, due_on, tax.tax)
             for (inst_id, due_on, _, _), tax in zip(rents, taxes, strict=True) if due_on <= starts_on]
    return [item for item in made if item is not None]


def tax_points(session: Session, day: date, lease_ids: Sequence[str],
               policy: TaxPolicy | None = None) -> list[Entry]:
    """The tax points of ``lease_ids``'s rents falling due through ``day`` since each lease was last closed."""
    if not lease_ids:
        return []
    found = policy or load_tax_policy()
    out: list[Entry] = []
    for inst_id, lease_id, dealer_id, due_on, amount, interest, structure in session.execute(_FALLING_DUE, {
            "ids": list(lease_ids), "kinds": list(LEASE_PAYMENTS), "excluded": list(NO_TAX_POINT), "day": day,
            "direct": books_lease.DIRECT}):
        tax = rent_tax(found.rule(structure, due_on), int(amount), int(interest)).tax
        made = books_lease.tax_point(int(inst_id), lease_id, dealer_id, due_on, tax)
        if made is not None:
            out.append(made)
    return out


def post_tax_points(session: Session, day: date, lease_ids: Sequence[str], now: datetime,
                    policy: TaxPolicy | None = None) -> int:
    """Post the tax points of ``lease_ids``'s rents falling due through ``day`` (see the module's docstring) in
    ``session``'s transaction, in one :func:`infra.books.post`; the number posted now."""
    return len(post(session, tax_points(session, day, lease_ids, policy), now))
