"""The end of the term's postings (issue 19 §1), pure: the facts infra/end_of_term.py gathers in the transaction of
each event in, its entry out.

- **a charge outside the lease payments** (an instalment the end of the term adds: the purchase price 留购价 when the
  lessee keeps the car, a returned car's damage and excess-mileage charges), key ``charge:<instalment id>``, dated the
  business date it was added: Dr Assets:Receivable:Lessees / Cr Income:Other:Fees (其他业务收入). The purchase price
  is the lessor's income on transferring the car it no longer carries (the finance lease's receivable replaced it at
  commencement); the charges are income as the design states (return charges: Income:Other:Fees). Either is then
  collected like a rent (the receipt credits Assets:Receivable:Lessees, books/lease.py).
- **the deposit applied** (each ``deposit_offset`` movement: the close of the term's last day for a purchase, the
  return's inspection), key ``deposit_offset:<lease>:<instalment id>`` (the movement's own key), dated its day: Dr
  Liabilities:Deposits:Lessees = what it paid; Cr Assets:LeaseReceivable:Payments = the principal and interest of a
  rent or the final rent; Cr Assets:Receivable:Lessees = those of a charge outside them; Cr Income:Lease:LateCharges =
  a late charge (income when collected). What the deposit does not need is refunded by the ``payments.settle`` job
  when the lease ends (origination's refund posting, Dr Deposits / Cr Clearing:Stripe), not here.

Not posted (yet): the returned car offsetting the final rent (``car_returned``): the chart has no account for a
vehicle taken back (the unguaranteed residual value, 未担保余值, or the car as an asset held for sale); until it has,
the final rent of a returned car stays in Assets:LeaseReceivable:Payments.
"""

from __future__ import annotations

from datetime import date

from books.entries import Entry
from books.entries import credit
from books.entries import debit
from books.entries import entry

RECEIVABLE = "Assets:LeaseReceivable:Payments"
OTHER_RECEIVABLE = "Assets:Receivable:Lessees"
DEPOSITS = "Liabilities:Deposits:Lessees"
LATE_CHARGES = "Income:Lease:LateCharges"
FEES = "Income:Other:Fees"
#: the instalments that are lease payments (books/lease.py LEASE_PAYMENTS)
LEASE_PAYMENTS = ("rent", "final_rent")
LABELS = {"purchase_price": "留购价 purchase price", "return_charges": "退车费用 return charges"}


def charged(instalment_id: int, kind: str, lease_id: str, dealer_id: str, day: date, amount: int) -> Entry | None:
    """A charge the end of the term adds to what the lessee owes, outside the lease payments."""
    return entry(f"charge:{instalment_id}", "end_of_term_charge", day, [
        debit(OTHER_RECEIVABLE, amount), credit(FEES, amount),
    ], LABELS.get(kind, kind), lease_id=lease_id, dealer_id=dealer_id)


def deposit_applied(lease_id: str, dealer_id: str, instalment_id: int, kind: str, day: date, *, principal: int,
                    interest: int, penalty: int) -> Entry | None:
    """The deposit applied to one instalment: what it paid of its principal, interest and late charge."""
    lease_payment = kind in LEASE_PAYMENTS
    return entry(f"deposit_offset:{lease_id}:{instalment_id}", "deposit_applied", day, [
        debit(DEPOSITS, principal + interest + penalty),
        credit(RECEIVABLE if lease_payment else OTHER_RECEIVABLE, principal + interest),
        credit(LATE_CHARGES, penalty),
    ], f"保证金抵扣 the deposit applied to {LABELS.get(kind, kind)}", lease_id=lease_id, dealer_id=dealer_id)
