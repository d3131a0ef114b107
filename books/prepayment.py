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

**VAT** (issue 19 §3, books/vat.py; rents are VAT-inclusive, unearned income net of their VAT):

- the interest line is a lump sum received on the day: its included tax under the rule in force that day (``rule``),
  rounded once — the main entry credits Income:Lease:Interest net and Liabilities:Tax:VAT:Output the tax (a negative
  line, interest credited back, debits both);
- **``prepayment:<id>:vat``** (kind ``vat_reamortised``): the pending VAT follows the new schedule. The rents after K
  (and the final rent, which a shorter term moves) have not reached their tax point: Liabilities:Tax:VAT:Pending holds
  Σ tax of them as they were (``before``: each one's books/vat.py ``rent_tax`` under the rule in force on its due
  date) and must hold Σ tax of them as they are now (``after``: a cancelled rent none). The difference, exactly: Dr
  Pending = Σ tax before − Σ tax after; Cr Output = Σ tax_on_principal before − after (the principal prepaid is paid
  on the day: its tax falls due then); Cr Assets:LeaseReceivable:Unearned = Σ tax_on_interest before − after (the
  interest the re-amortisation drops is no longer charged: the unearned income held it net). A figure that comes out
  negative (a rent's rounding) posts on the other side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from books.accounts import INTEREST
from books.accounts import RECEIVABLE
from books.accounts import UNAPPLIED
from books.accounts import UNEARNED
from books.accounts import VAT_OUTPUT
from books.accounts import VAT_PENDING
from books.entries import Entry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.income import income_entry
from books.vat import RentTax
from books.vat import Rule
from books.vat import included_tax

#: the kind of the entry that moves a re-amortisation's pending VAT to the new schedule
VAT_REAMORTISED = "vat_reamortised"


@dataclass(frozen=True)
class Prepaid:
    """A prepayment as applied (fen): the principal ``amount``, the signed ``accrued_interest`` line, the
    ``interest_dropped`` by the re-amortisation, and ``excess``: what the months recognised beyond the new schedule's
    spread through the last month end before ``day`` (0: none). VAT: ``rule`` in force on ``day`` (None: no VAT, the
    postings of before it); ``before`` and ``after`` the VAT of the rents after K (and the final rent) as they were
    and as they are (see the module's docstring)."""

    prepayment_id: str
    lease_id: str
    dealer_id: str
    day: date
    amount: int
    accrued_interest: int
    interest_dropped: int
    excess: int = 0
    rule: Rule | None = None
    before: tuple[RentTax, ...] = ()
    after: tuple[RentTax, ...] = ()

    @property
    def interest_tax(self) -> int:
        """The VAT included in the interest line (signed fen; 0 without a rule)."""
        return included_tax(self.rule, self.accrued_interest) if self.rule is not None and self.accrued_interest \
            else 0


def prepaid(p: Prepaid) -> list[Entry]:
    """The prepayment's entries (see the module's docstring)."""
    main = entry(f"prepayment:{p.prepayment_id}", "prepayment", p.day, [
        debit(UNAPPLIED, p.amount + p.accrued_interest),
        debit(UNEARNED, p.interest_dropped),
        credit(RECEIVABLE, p.amount + p.interest_dropped),
        credit(INTEREST, p.accrued_interest - p.interest_tax),
        credit(VAT_OUTPUT, p.interest_tax),
    ], f"部分提前还款 partial prepayment {p.prepayment_id}: principal {p.amount} fen, interest line "
       f"{p.accrued_interest} fen (VAT {p.interest_tax} fen), interest no longer owed {p.interest_dropped} fen",
        lease_id=p.lease_id, dealer_id=p.dealer_id)
    out = [main] if main is not None else []

    def total(rows: tuple[RentTax, ...], part: str) -> int:
        return sum(int(getattr(t, part)) for t in rows)

    vat = entry(f"prepayment:{p.prepayment_id}:vat", VAT_REAMORTISED, p.day, [
        debit(VAT_PENDING, total(p.before, "tax") - total(p.after, "tax")),
        credit(VAT_OUTPUT, total(p.before, "tax_on_principal") - total(p.after, "tax_on_principal")),
        credit(UNEARNED, total(p.before, "tax_on_interest") - total(p.after, "tax_on_interest")),
    ], f"部分提前还款 待转销项税额随新还款计划 the pending VAT follows the re-amortised schedule {p.prepayment_id}",
        lease_id=p.lease_id, dealer_id=p.dealer_id)
    if vat is not None:
        out.append(vat)
    reversed_ = income_entry(f"income:{p.lease_id}:prepayment:{p.prepayment_id}", p.day, -max(0, p.excess),
                             f"融资收益冲回 finance income the re-amortised schedule no longer holds, {p.excess} fen",
                             lease_id=p.lease_id, dealer_id=p.dealer_id)
    if reversed_ is not None:
        out.append(reversed_)
    return out
