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
- Cr Income:Other:Fees = the early-settlement fee;
- Cr Liabilities:Unapplied:Lessees = what the settlement gives back beyond the deposit (every rent paid ahead: the
  interest paid ahead given back exceeds what is owed and the deposit): owed to the lessee, to be refunded.

**``income:<lease>:settlement:<quote>``** (kind ``finance_income``, books/income.py's; keyed in the ``income:`` family
with the monthly entries, so that a check of what was recognised may read the keys or the kind): the settled lease's
finance income made final on its day — what its kept rents' interest (the rents it does not replace) holds beyond what
the months recognised, Dr Unearned / Cr Income:Lease:Interest; or, when the months recognised more than the kept rents
hold (part of a replaced rent's period), that part reversed, Dr Income:Lease:Interest / Cr Unearned. After it the
lease's unearned income is nothing and its finance income is exactly Σ interest of the kept rents: the interest waived
is never recognised, and the monthly job has nothing left to post for it.

**VAT** (issue 19 §3, books/vat.py; rents are VAT-inclusive, unearned income net of their VAT):

- what the settlement charges of its own — the interest to the day (with the principal difference: in advance rent K's
  interest given back, a negative figure), the fee, the late charges it collects — is a lump sum received on its day:
  each carries its included tax under the rule in force that day (``rule``), rounded once; the main entry credits
  the income net and Liabilities:Tax:VAT:Output the tax (a negative figure debits it: tax given back with the
  interest);
- **``settlement:<quote>:vat``** (kind ``vat_replaced``): the VAT of the rents the settlement replaces. Those whose tax
  point has not come (``pending``: every rent due after the settlement day) hold it in Liabilities:Tax:VAT:Pending:
  Dr Pending = Σ tax; their principal is paid on the settlement's day, so its share is taxed then, Cr Output = Σ
  tax_on_principal; their interest is no longer charged (waived, or paid ahead and given back), so its share goes
  back to the unearned income that held the interest net, Cr Unearned = Σ tax_on_interest. A replaced rent whose tax
  point came already (``taxed``: a final rent due by the settlement day) had its tax moved to Output: only its
  interest's share comes back, Dr Output / Cr Unearned. After it the lease's Pending holds nothing (infra/settlements.py
  posts the tax points of the rents the settlement pays that fell due since the lease was last closed, ``vat:<id>``:
  a settled lease is never closed again).

The income entry's ``kept_interest`` is the kept rents' interest net of its VAT (finance income is net:
books/income.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from books.accounts import DEPOSITS
from books.accounts import FEES
from books.accounts import INTEREST
from books.accounts import LATE_CHARGES
from books.accounts import RECEIVABLE
from books.accounts import UNAPPLIED
from books.accounts import UNEARNED
from books.accounts import VAT_OUTPUT
from books.accounts import VAT_PENDING
from books.entries import Entry
from books.entries import Line
from books.entries import UnpostableEntry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.income import income_entry
from books.vat import RentTax
from books.vat import Rule
from books.vat import included_tax

#: the kind of the entry that moves the VAT of rents an event replaces before their tax point
VAT_REPLACED = "vat_replaced"


@dataclass(frozen=True)
class Settled:
    """A settlement as ``_settle`` books it (fen). ``amount_settled``: the quote's amount less its late charges not
    owed (negative: the deposit exceeds what is owed); ``held``: what the payment applied (0 when nothing was paid:
    the deposit covers it); ``deposit_offset``: the quote's deposit line; ``owed``: principal and interest the
    touched instalments still owed; ``interest_replaced``: Σ interest of the rents replaced (unpaid and paid ahead);
    ``kept_interest``: Σ interest of the lease's other rents, net of its VAT; ``recognised``: finance income
    recognised before. VAT: ``rule`` in force on ``day`` (None: no VAT, the postings of before it), ``pending`` the
    VAT of each replaced rent whose tax point has not come, ``taxed`` of each whose tax point came already."""

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
    rule: Rule | None = None
    pending: tuple[RentTax, ...] = ()
    taxed: tuple[RentTax, ...] = ()

    @property
    def deposit_kept(self) -> int:
        """The deposit the settlement keeps: the offset less what it refunds (a negative amount settled)."""
        return max(0, self.deposit_offset - max(0, -self.amount_settled))

    @property
    def beyond_deposit(self) -> int:
        """What the settlement gives back beyond the deposit (a negative amount settled larger than the deposit
        offset: the interest paid ahead of the replaced rents, every rent paid ahead): owed to the lessee, held in
        Liabilities:Unapplied:Lessees to be refunded (fen)."""
        return max(0, -self.amount_settled - self.deposit_offset)

    def tax(self, amount: int) -> int:
        """The VAT included in ``amount`` fen the settlement charges on its day (signed; 0 without a rule)."""
        return included_tax(self.rule, amount) if self.rule is not None and amount else 0


def taken_back(pending: Iterable[RentTax], taxed: Iterable[RentTax], principal_to: str) -> list[Line]:
    """The lines that move the VAT of rents an event takes off the schedule: ``pending`` (their tax point not come:
    their tax in Liabilities:Tax:VAT:Pending) and ``taxed`` (come: in Output). Each one's interest share goes back to
    the unearned income (the interest is no longer charged; Unearned held it net); its principal share to
    ``principal_to`` — Output when the principal is paid by the event (taxed on its day), another account when it is
    not (a returned car's). Netted by account, debit-positive."""
    net: dict[str, int] = defaultdict(int)
    for rows, source in ((list(pending), VAT_PENDING), (list(taxed), VAT_OUTPUT)):
        for t in rows:
            net[source] += t.tax
            net[principal_to] -= t.tax_on_principal
            net[UNEARNED] -= t.tax_on_interest
    return [Line(account, max(v, 0), max(-v, 0)) for account, v in net.items() if v]


def settled(s: Settled) -> list[Entry]:
    """The settlement's entries (see the module's docstring). Raises :class:`UnpostableEntry` when the facts do not
    balance (``_settle``'s movements and the quote disagree)."""
    if s.held != max(0, s.amount_settled) and s.held != 0:
        raise UnpostableEntry(f"settlement:{s.quote_id}: {s.held} fen held for an amount settled of "
                              f"{s.amount_settled}")
    interest = s.accrued_interest + s.principal_difference
    vat = {"interest": s.tax(interest), "fee": s.tax(s.fee), "charges": s.tax(s.charges)}
    main = entry(f"settlement:{s.quote_id}", "settlement", s.day, [
        debit(UNAPPLIED, s.held),
        debit(DEPOSITS, s.deposit_kept),
        debit(UNEARNED, s.interest_replaced),
        credit(RECEIVABLE, s.owed),
        credit(LATE_CHARGES, s.charges - vat["charges"]),
        credit(INTEREST, interest - vat["interest"]),
        credit(FEES, s.fee - vat["fee"]),
        credit(VAT_OUTPUT, sum(vat.values())),
        credit(UNAPPLIED, s.beyond_deposit),
    ], f"提前结清 early settlement {s.quote_id}: interest to the day {s.accrued_interest} fen, fee {s.fee} fen, "
       f"late charges {s.charges} fen, deposit kept {s.deposit_kept} fen; VAT {vat['interest']}/{vat['fee']}/"
       f"{vat['charges']} fen", lease_id=s.lease_id, dealer_id=s.dealer_id)
    out = [main] if main is not None else []
    replaced = entry(f"settlement:{s.quote_id}:vat", VAT_REPLACED, s.day, taken_back(s.pending, s.taxed, VAT_OUTPUT),
                     f"提前结清 被替代租金的待转销项税额 VAT of the rents the settlement {s.quote_id} replaces: "
                     "principal's share taxed, interest's back to unearned income", lease_id=s.lease_id,
                     dealer_id=s.dealer_id)
    if replaced is not None:
        out.append(replaced)
    income = income_entry(
        f"income:{s.lease_id}:settlement:{s.quote_id}", s.day, s.kept_interest - s.recognised,
        f"融资收益 finance income to the settlement day: the kept rents' interest {s.kept_interest} fen, "
        f"{s.recognised} fen recognised before", lease_id=s.lease_id, dealer_id=s.dealer_id)
    if income is not None:
        out.append(income)
    return out
