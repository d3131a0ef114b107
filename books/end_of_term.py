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

- **the returned car offsetting the final rent** (the return's inspection waives what is left of it: its
  ``car_returned`` movement), in the inspection's transaction, dated its business date, two entries:
  ``car_returned:<lease>:<instalment id>`` (kind ``car_returned``): Cr Assets:LeaseReceivable:Payments = the principal
  and interest waived; Dr Assets:LeaseReceivable:Unearned = the interest waived (it leaves the books with the rent);
  Dr Assets:Vehicles:Returned = the principal, the car's carrying amount (held for sale: the account's code is
  provisional, see the chart). The late charge waived posts nothing (late charges are income when collected).
  ``income:<lease>:car_returned:<instalment id>`` (kind ``finance_income``, the monthly entries' family, as a
  settlement's ``income:<lease>:settlement:<quote>``): the lease's finance income brought to what its schedule without
  the waived interest earned through the day (``earned``, books/income.py) from what was recognised before —
  the months may have recognised part of the final rent's period: reversed, Dr Income:Lease:Interest / Cr Unearned;
  or the kept rents' interest of the days since the last month end, Dr Unearned / Cr Income:Lease:Interest. The
  interest waived is never income; the monthly job (infra/finance_income.py, a waived rent earning only the interest
  it was paid) has nothing of it left to post.
"""

from __future__ import annotations

from datetime import date

from books.accounts import DEPOSITS
from books.accounts import FEES
from books.accounts import LATE_CHARGES
from books.accounts import OTHER_RECEIVABLE
from books.accounts import RECEIVABLE
from books.accounts import UNEARNED
from books.accounts import VEHICLES_RETURNED
from books.entries import Entry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.income import income_entry

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


def car_returned(lease_id: str, dealer_id: str, instalment_id: int, day: date, *, principal: int, interest: int,
                 earned: int, recognised: int) -> list[Entry]:
    """The returned car offsetting the final rent (see the module's docstring): ``principal`` and ``interest`` what
    was left of it (waived), ``earned`` the lease's finance income its schedule without that interest holds through
    ``day``, ``recognised`` what was recognised before (fen)."""
    out: list[Entry] = []
    offset = entry(f"car_returned:{lease_id}:{instalment_id}", "car_returned", day, [
        debit(VEHICLES_RETURNED, principal), debit(UNEARNED, interest), credit(RECEIVABLE, principal + interest),
    ], f"车辆退还，抵扣尾付租金 the returned car offsets the final rent: principal {principal} fen, interest "
       f"{interest} fen", lease_id=lease_id, dealer_id=dealer_id)
    if offset is not None:
        out.append(offset)
    income = income_entry(f"income:{lease_id}:car_returned:{instalment_id}", day, earned - recognised,
                          f"融资收益 finance income to the return: {earned} fen earned without the waived interest, "
                          f"{recognised} fen recognised before", lease_id=lease_id, dealer_id=dealer_id)
    if income is not None:
        out.append(income)
    return out
