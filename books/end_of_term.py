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

**VAT** (issue 19 §3, books/vat.py; each function takes the ``rule`` in force on the event's day, None: no VAT, the
postings of before it):

- a charge (the purchase price, a return's charges) is consideration of the same service (价外费用 for the charges),
  taxed when charged: Cr Income:Other:Fees its amount less the included tax, Cr Liabilities:Tax:VAT:Output the tax.
  (Its tax point: the day it is charged, the day the claim to it arises — before the purchase price's due date —: the
  income and its tax go together.)
- the deposit applied to a late charge: received then, income net of its included tax, Output the tax. Applied to a
  rent or a charge: nothing more (a rent's tax moves to Output at its tax point, a charge's was taxed when charged).
- the returned car's final rent, never charged: ``car_returned:<lease>:<instalment id>:vat`` (kind ``vat_waived``)
  takes the VAT of what is waived of it (its tax less the tax of what was paid of it: ``waived``) out of
  Liabilities:Tax:VAT:Pending — or out of Output when its tax point (its due date) came before the inspection
  (``taxed``) —: the interest's share back to Assets:LeaseReceivable:Unearned (the unearned income held the interest
  net), the principal's share off Assets:Vehicles:Returned: the car comes back at its principal less that share, its
  cost without the VAT the lessor deducted as input VAT when it bought it. The design's "Dr Pending / Cr Input"
  would give up a deduction the lessor keeps: the car is held for sale, not among the input VAT that may not be
  deducted (财税〔2016〕36号 附件1 第二十七条), and its sale will bear output VAT of its own.
"""

from __future__ import annotations

from datetime import date

from books.accounts import DEPOSITS
from books.accounts import FEES
from books.accounts import LATE_CHARGES
from books.accounts import OTHER_RECEIVABLE
from books.accounts import RECEIVABLE
from books.accounts import UNEARNED
from books.accounts import VAT_OUTPUT
from books.accounts import VEHICLES_RETURNED
from books.entries import Entry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.income import income_entry
from books.settlement import taken_back
from books.vat import RentTax
from books.vat import Rule
from books.vat import included_tax

#: the instalments that are lease payments (books/lease.py LEASE_PAYMENTS)
LEASE_PAYMENTS = ("rent", "final_rent")
LABELS = {"purchase_price": "留购价 purchase price", "return_charges": "退车费用 return charges"}
#: the kind of the entry that takes a waived rent's VAT back
VAT_WAIVED = "vat_waived"


def _tax(rule: Rule | None, amount: int) -> int:
    return included_tax(rule, amount) if rule is not None and amount else 0


def charged(instalment_id: int, kind: str, lease_id: str, dealer_id: str, day: date, amount: int,
            rule: Rule | None = None) -> Entry | None:
    """A charge the end of the term adds to what the lessee owes, outside the lease payments: income net of the VAT
    it includes under ``rule``."""
    tax = _tax(rule, amount)
    return entry(f"charge:{instalment_id}", "end_of_term_charge", day, [
        debit(OTHER_RECEIVABLE, amount), credit(FEES, amount - tax), credit(VAT_OUTPUT, tax),
    ], LABELS.get(kind, kind), lease_id=lease_id, dealer_id=dealer_id)


def deposit_applied(lease_id: str, dealer_id: str, instalment_id: int, kind: str, day: date, *, principal: int,
                    interest: int, penalty: int, rule: Rule | None = None) -> Entry | None:
    """The deposit applied to one instalment: what it paid of its principal, interest and late charge (income net of
    the VAT it includes under ``rule``)."""
    lease_payment = kind in LEASE_PAYMENTS
    tax = _tax(rule, penalty)
    return entry(f"deposit_offset:{lease_id}:{instalment_id}", "deposit_applied", day, [
        debit(DEPOSITS, principal + interest + penalty),
        credit(RECEIVABLE if lease_payment else OTHER_RECEIVABLE, principal + interest),
        credit(LATE_CHARGES, penalty - tax),
        credit(VAT_OUTPUT, tax),
    ], f"保证金抵扣 the deposit applied to {LABELS.get(kind, kind)}", lease_id=lease_id, dealer_id=dealer_id)


def waived_tax(whole: RentTax, paid: RentTax) -> RentTax:
    """The VAT of what is waived of a rent: its tax (``whole``) less the tax of what was paid of it (``paid``: the
    rent's paid principal and interest under the same rule), share by share, so that what stays is exactly the paid
    part's."""
    return RentTax(rule=whole.rule, amount=whole.amount - paid.amount, interest=whole.interest - paid.interest,
                   taxable=whole.taxable - paid.taxable, net=whole.net - paid.net, tax=whole.tax - paid.tax,
                   tax_on_interest=whole.tax_on_interest - paid.tax_on_interest,
                   tax_on_principal=whole.tax_on_principal - paid.tax_on_principal)


def car_returned(lease_id: str, dealer_id: str, instalment_id: int, day: date, *, principal: int, interest: int,
                 earned: int, recognised: int, waived: RentTax | None = None, taxed: bool = False) -> list[Entry]:
    """The returned car offsetting the final rent (see the module's docstring): ``principal`` and ``interest`` what
    was left of it (waived), ``earned`` the lease's finance income its schedule without that interest holds through
    ``day``, ``recognised`` what was recognised before (fen); ``waived`` the VAT of what is waived
    (:func:`waived_tax`), in Pending — in Output when ``taxed`` (its tax point came before)."""
    out: list[Entry] = []
    offset = entry(f"car_returned:{lease_id}:{instalment_id}", "car_returned", day, [
        debit(VEHICLES_RETURNED, principal), debit(UNEARNED, interest), credit(RECEIVABLE, principal + interest),
    ], f"车辆退还，抵扣尾付租金 the returned car offsets the final rent: principal {principal} fen, interest "
       f"{interest} fen", lease_id=lease_id, dealer_id=dealer_id)
    if offset is not None:
        out.append(offset)
    if waived is not None:
        vat = entry(f"car_returned:{lease_id}:{instalment_id}:vat", VAT_WAIVED, day,
                    taken_back([] if taxed else [waived], [waived] if taxed else [], VEHICLES_RETURNED),
                    "车辆退还 尾付租金不再收取 其税额转回 VAT of the final rent the returned car offsets, taken back",
                    lease_id=lease_id, dealer_id=dealer_id)
        if vat is not None:
            out.append(vat)
    income = income_entry(f"income:{lease_id}:car_returned:{instalment_id}", day, earned - recognised,
                          f"融资收益 finance income to the return: {earned} fen earned without the waived interest, "
                          f"{recognised} fen recognised before", lease_id=lease_id, dealer_id=dealer_id)
    if income is not None:
        out.append(income)
    return out
