"""A partial prepayment's postings (部分提前还款, issue 19 §1), pure: the facts infra/prepayments.py
``book_prepayment`` gathers in its own transaction in, its entries out.

**``prepayment:<id>``** (kind ``prepayment``), dated the business date it was applied:

- Dr Liabilities:Unapplied:Lessees = the payment applied (the amount and the interest line: the receipt, books/lease.py
  ``receipt``, credited it to Unapplied);
- Cr Assets:LeaseReceivable:Payments = the principal paid (the rents after K hold that much less principal) and the
  interest the re-amortisation drops (Σ interest of the rents after K before, less after: a shorter term's cancelled
  rents' and the lower rents'), Dr Assets:LeaseReceivable:Unearned = that interest (it leaves with them);
- Cr Income:Lease:Interest = the accrued-interest line (the interest of the amount for the days since the balance's
  date): a debit when negative (interest the lessee paid ahead on the amount, credited off the payment).

**``income:<lease>:prepayment:<id>``** (kind ``finance_income``, books/income.py's), only when the months recognised
more than the re-amortised schedule holds through the last month end before the prepayment (part of a period whose
interest it lowered): that excess reversed, Dr Income:Lease:Interest / Cr Unearned, so that the monthly job goes on from
the new schedule's own spread and never recognises more than it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from books.accounts import INTEREST
from books.accounts import RECEIVABLE
from books.accounts import UNAPPLIED
from books.accounts import UNEARNED
from books.entries import Entry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.income import income_entry


@dataclass(frozen=True)
class Prepaid:
    """A prepayment as applied (fen): the principal ``amount``, the signed ``accrued_interest`` line, the
    ``interest_dropped`` by the re-amortisation, and ``excess``: what the months recognised beyond the new schedule's
    spread through the last month end before ``day`` (0: none)."""

    prepayment_id: str
    lease_id: str
    dealer_id: str
    day: date
    amount: int
    accrued_interest: int
    interest_dropped: int
    excess: int = 0


def prepaid(p: Prepaid) -> list[Entry]:
    """The prepayment's entries (see the module's docstring)."""
    main = entry(f"prepayment:{p.prepayment_id}", "prepayment", p.day, [
        debit(UNAPPLIED, p.amount + p.accrued_interest),
        debit(UNEARNED, p.interest_dropped),
        credit(RECEIVABLE, p.amount + p.interest_dropped),
        credit(INTEREST, p.accrued_interest),
    ], f"部分提前还款 partial prepayment {p.prepayment_id}: principal {p.amount} fen, interest line "
       f"{p.accrued_interest} fen, interest no longer owed {p.interest_dropped} fen", lease_id=p.lease_id,
        dealer_id=p.dealer_id)
    out = [main] if main is not None else []
    reversed_ = income_entry(f"income:{p.lease_id}:prepayment:{p.prepayment_id}", p.day, -max(0, p.excess),
                             f"融资收益冲回 finance income the re-amortised schedule no longer holds, {p.excess} fen",
                             lease_id=p.lease_id, dealer_id=p.dealer_id)
    if reversed_ is not None:
        out.append(reversed_)
    return out
