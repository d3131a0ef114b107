"""An early settlement's postings (提前结清, issue 19 §1), pure: the facts infra/settlements.py ``_settle`` gathers in
the settlement's own transaction in, two entries out.

**``settlement:<quote>``** (kind ``settlement``), dated the business date it was paid (or confirmed):

- Dr Liabilities:Unapplied:Lessees = what the customer's payment applied (``held``: the receipt, books/lease.py
  ``receipt``, credited the whole payment it applied to Unapplied; its surplus — the quote's late charges not owed on
  the day, what the quote over-counted — stays there and is refunded by the receipt's refund);
- Dr Liabilities:Deposits:Lessees = the deposit kept (the deposit offset, less what the settlement refunds of it when
  the deposit exceeds what is owed: the ``payments.settle`` job refunds the rest, origination's refund posting);
- Dr Assets:LeaseReceivable:Unearned = the interest of the rents the settlement replaces (the interest no longer owed,
  waived, and the interest paid ahead of them, given back): it leaves with them;
- Cr Assets:LeaseReceivable:Payments = what the instalments still owed of principal and interest: the arrears paid,
  the replaced rents' principal repaid and their interest no longer owed;
- Cr Income:Lease:LateCharges = the late charges the settlement collects (accrued, and those not accrued yet);
- Cr Income:Lease:Interest = the interest accrued to the settlement day (the quote's line), and the quote's
  principal less the replaced rents' (signed: in advance the quote's principal is rent K's balance less its interest,
  the interest of the days after the settlement day that rent K paid ahead: a debit, income given back);
- Cr Income:Other:Fees = the early-settlement fee.

**``income:<lease>:settlement:<quote>``** (kind ``finance_income``, books/income.py's; keyed in the ``income:`` family
with the monthly entries, so that a check of what was recognised may read the keys or the kind): the settled lease's
finance income made final on its day — what its kept rents' interest (the rents it does not replace) holds beyond what
the months recognised, Dr Unearned / Cr Income:Lease:Interest; or, when the months recognised more than the kept rents
hold (part of a replaced rent's period), that part reversed, Dr Income:Lease:Interest / Cr Unearned. After it the
lease's unearned income is nothing and its finance income is exactly Σ interest of the kept rents: the interest waived
is never recognised, and the monthly job has nothing left to post for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from books.accounts import DEPOSITS
from books.accounts import FEES
from books.accounts import INTEREST
from books.accounts import LATE_CHARGES
from books.accounts import RECEIVABLE
from books.accounts import UNAPPLIED
from books.accounts import UNEARNED
from books.entries import Entry
from books.entries import UnpostableEntry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.income import income_entry


@dataclass(frozen=True)
class Settled:
    """A settlement as ``_settle`` books it (fen). ``amount_settled``: the quote's amount less its late charges not
    owed (negative: the deposit exceeds what is owed); ``held``: what the payment applied (0 when nothing was paid:
    the deposit covers it); ``deposit_offset``: the quote's deposit line; ``owed``: principal and interest the
    touched instalments still owed; ``interest_replaced``: Σ interest of the rents replaced (unpaid and paid ahead);
    ``kept_interest``: Σ interest of the lease's other rents; ``recognised``: finance income recognised before."""

    quote_id: str
    lease_id: str
    dealer_id: str
    day: date
    amount_settled: int
    held: int
    deposit_offset: int
    owed: int
    interest_replaced: int
    charges: int
    accrued_interest: int
    principal_difference: int
    fee: int
    kept_interest: int
    recognised: int

    @property
    def deposit_kept(self) -> int:
        """The deposit the settlement keeps: the offset less what it refunds (a negative amount settled)."""
        return max(0, self.deposit_offset - max(0, -self.amount_settled))


def settled(s: Settled) -> list[Entry]:
    """The settlement's entries (see the module's docstring). Raises :class:`UnpostableEntry` when the facts do not
    balance (``_settle``'s movements and the quote disagree)."""
    if s.held != max(0, s.amount_settled) and s.held != 0:
        raise UnpostableEntry(f"settlement:{s.quote_id}: {s.held} fen held for an amount settled of "
                              f"{s.amount_settled}")
    main = entry(f"settlement:{s.quote_id}", "settlement", s.day, [
        debit(UNAPPLIED, s.held),
        debit(DEPOSITS, s.deposit_kept),
        debit(UNEARNED, s.interest_replaced),
        credit(RECEIVABLE, s.owed),
        credit(LATE_CHARGES, s.charges),
        credit(INTEREST, s.accrued_interest),
        credit(INTEREST, s.principal_difference),
        credit(FEES, s.fee),
    ], f"提前结清 early settlement {s.quote_id}: interest to the day {s.accrued_interest} fen, fee {s.fee} fen, "
       f"late charges {s.charges} fen, deposit kept {s.deposit_kept} fen", lease_id=s.lease_id,
        dealer_id=s.dealer_id)
    out = [main] if main is not None else []
    income = income_entry(
        f"income:{s.lease_id}:settlement:{s.quote_id}", s.day, s.kept_interest - s.recognised,
        f"融资收益 finance income to the settlement day: the kept rents' interest {s.kept_interest} fen, "
        f"{s.recognised} fen recognised before", lease_id=s.lease_id, dealer_id=s.dealer_id)
    if income is not None:
        out.append(income)
    return out
