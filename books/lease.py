"""The lease's own postings (issue 19 §1), pure: the facts of one event of a lease in force in, its journal entry out
(:func:`books.entries.entry`: integer fen, zero lines dropped, None when the event moved no money). infra gathers the
facts in the event's transaction and posts what these return (:func:`infra.books.post`), each keyed by our records so
that a replay posts nothing twice.

- **commencement** (the lease row created: the handover's transaction, a backfill), key ``lease:<id>:commenced``,
  dated the lease's start: Dr Assets:LeaseReceivable:Payments = Σ amount of its rents and final rent (the lease
  payments receivable, 租赁收款额); Cr Assets:LeaseReceivable:Unearned = Σ interest (未实现融资收益); Cr
  Liabilities:Payable:Dealers = Σ principal — the net investment, owed to the dealer for the car. Σ principal of the
  rents and the final rent is the financed amount exactly: :func:`infra.servicing.lease_plan` refuses a handover record
  where it is not (the final rent is the residual, all principal), so the dealer's credit is ``leases.financed_amount``.
- **rent 1 paid at signing** (rents in advance), key ``lease:<id>:paid_at_signing``, dated the start: the first rent
  was in the upfront payment, captured before the lease existed (origination's posting): Dr
  Liabilities:Unapplied:Lessees / Cr Assets:LeaseReceivable:Payments. The upfront payment's posting credits the first
  rent to Unapplied (money of the lessee not yet applied); the lease applies it when it commences.
- **a receipt** (a ``lease_receipts`` row booked), key ``receipt:<receipt id>``, dated its business date: Dr the
  money's account (:func:`cash_account`: Stripe's clearing, or the collections bank account for a direct debit) =
  the amount; Cr Assets:LeaseReceivable:Payments = principal and interest applied to rents and the final rent; Cr
  Assets:Receivable:Lessees = principal applied to charges outside the lease payments (a purchase price, a returned
  car's charges: instalments the end of the term adds); Cr Income:Lease:LateCharges = late charges applied; Cr
  Liabilities:Unapplied:Lessees = the surplus, and all of a payment for a settlement or a prepayment (``held``): those
  are applied by their own postings (``settlement:<quote>``, ``prepayment:<id>``) from Unapplied, so that the cash is
  debited once, here, whatever the settlement or prepayment does with it.
- **a surplus refunded** (the refund's success), key ``receipt:<id>:refund``: Dr Liabilities:Unapplied:Lessees / Cr
  the same money account. A refund that failed posts nothing: the surplus stays owed to the lessee.
- **collected outside Leaseline** (a backfill's rents due before servicing took over), key
  ``collected_outside:<lease>:<number>``, dated the rent's due day: Dr Assets:Bank:Collections / Cr
  Assets:LeaseReceivable:Payments.
- **the final rent paid off by a refinancing** (the new lease's funding, infra/servicing.py ``_pay_off_refinanced``),
  key ``lease:<old id>:refinanced``, dated the new lease's start: Dr Liabilities:Payable:Dealers on the NEW lease (its
  funding, the price of the car it buys out, is not paid to anyone: it pays off the old lease) / Cr
  Assets:LeaseReceivable:Payments (principal and interest) and Cr Income:Lease:LateCharges (a late charge paid off) on
  the OLD lease.
- **the dealer paid for the car** (放款: the lessor pays the dealer the price of the car it financed, by bank
  transfer, apart from the down payment's share; ops record the payment: ``leaseline books fund-dealer``,
  infra/dealer_funding.py), key ``dealer_funding:<lease id>``, dated the day the bank paid: Dr
  Liabilities:Payable:Dealers / Cr Assets:Bank:Disbursements (银行存款—付款账户), what the lease's commencement still
  owes the dealer (its financed amount less what a refinancing paid off with it). The commencement is the payable
  falling due; this, its payment.
- **write-off**: Leaseline has none yet (no code writes a lease off); none is posted.

Penalty interest (罚息) is income when collected (its collectability is not probable before): the close's late charges
post nothing, the receipt that pays one credits Income:Lease:LateCharges. VAT is not split yet (issue 19 §3): rents post
gross."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from books.accounts import BANK
from books.accounts import DEALERS
from books.accounts import DISBURSEMENTS
from books.accounts import LATE_CHARGES
from books.accounts import OTHER_RECEIVABLE
from books.accounts import RECEIVABLE
from books.accounts import STRIPE_CLEARING
from books.accounts import UNAPPLIED
from books.accounts import UNEARNED
from books.entries import Entry
from books.entries import UnpostableEntry
from books.entries import credit
from books.entries import debit
from books.entries import entry

#: the instalments that are lease payments (租赁收款额: the receivable's sub-ledger); any other kind (purchase_price,
#: return_charges) is a charge outside them
LEASE_PAYMENTS = ("rent", "final_rent")
#: where a receipt's money lands, by ``lease_receipts.source``
CASH_ACCOUNTS = {"stripe": STRIPE_CLEARING, "direct_debit": BANK}


@dataclass(frozen=True)
class Scheduled:
    """One instalment as the lease's schedule states it (fen)."""

    kind: str
    amount: int
    principal: int
    interest: int


@dataclass(frozen=True)
class Applied:
    """What a payment paid of one instalment (fen, each ≥ 0)."""

    kind: str
    principal: int
    interest: int
    penalty: int


def cash_account(source: str) -> str:
    """The account a receipt's money lands in: Stripe's clearing for a card payment, the collections bank account
    for a bank's direct debit. Raises :class:`UnpostableEntry` for a source the books do not know."""
    try:
        return CASH_ACCOUNTS[source]
    except KeyError:
        raise UnpostableEntry(f"a receipt from {source!r}: no account for its money") from None


def commenced(lease_id: str, dealer_id: str, starts_on: date, schedule: Iterable[Scheduled]) -> Entry | None:
    """The lease's commencement: its lease payments receivable against the unearned income and the dealer's price of
    the car (the net investment). Only rents and the final rent count (a lease opens with nothing else)."""
    rows = [s for s in schedule if s.kind in LEASE_PAYMENTS]
    for s in rows:
        if s.amount != s.principal + s.interest or s.principal < 0 or s.interest < 0:
            raise UnpostableEntry(f"lease {lease_id}: an instalment of {s.amount} fen is not its principal "
                                  f"{s.principal} plus its interest {s.interest}")
    return entry(f"lease:{lease_id}:commenced", "lease_commenced", starts_on, [
        debit(RECEIVABLE, sum(s.amount for s in rows)),
        credit(UNEARNED, sum(s.interest for s in rows)),
        credit(DEALERS, sum(s.principal for s in rows), dealer_id=dealer_id),
    ], "起租 lease commenced", lease_id=lease_id, dealer_id=dealer_id)


def paid_at_signing(lease_id: str, dealer_id: str, starts_on: date, amount: int) -> Entry | None:
    """Rent 1 (in advance) paid with the amounts due at signing, applied from what the upfront payment held for it."""
    return entry(f"lease:{lease_id}:paid_at_signing", "rent_paid_at_signing", starts_on, [
        debit(UNAPPLIED, amount), credit(RECEIVABLE, amount),
    ], "首期租金随签约应付款项支付 rent 1 paid at signing", lease_id=lease_id, dealer_id=dealer_id)


def receipt(receipt_id: str, lease_id: str, dealer_id: str, *, source: str, value_date: date, amount: int,
            applied: Iterable[Applied] = (), held: int = 0, surplus: int = 0) -> Entry | None:
    """A payment booked into the lease (``amount`` fen from ``source``): what it paid of each instalment
    (``applied``), what it holds for a settlement or a prepayment (``held``) and its ``surplus`` (to refund). Raises
    :class:`UnpostableEntry` when they do not add up to the amount."""
    parts = list(applied)
    if any(p.principal < 0 or p.interest < 0 or p.penalty < 0 for p in parts) or held < 0 or surplus < 0:
        raise UnpostableEntry(f"receipt {receipt_id}: a negative part")
    lease_payments = sum(p.principal + p.interest for p in parts if p.kind in LEASE_PAYMENTS)
    other = sum(p.principal + p.interest for p in parts if p.kind not in LEASE_PAYMENTS)
    penalty = sum(p.penalty for p in parts)
    if lease_payments + other + penalty + held + surplus != amount:
        raise UnpostableEntry(f"receipt {receipt_id}: {amount} fen received, {lease_payments + other + penalty} "
                              f"applied + {held} held + {surplus} surplus")
    return entry(f"receipt:{receipt_id}", "rent_collected", value_date, [
        debit(cash_account(source), amount),
        credit(RECEIVABLE, lease_payments),
        credit(OTHER_RECEIVABLE, other),
        credit(LATE_CHARGES, penalty),
        credit(UNAPPLIED, held + surplus),
    ], f"收款 payment received ({source})", lease_id=lease_id, dealer_id=dealer_id)


def surplus_refunded(receipt_id: str, lease_id: str, dealer_id: str, *, source: str, value_date: date,
                     surplus: int) -> Entry | None:
    """A receipt's surplus (or a closed lease's whole payment) refunded to the lessee by the way it came."""
    return entry(f"receipt:{receipt_id}:refund", "surplus_refunded", value_date, [
        debit(UNAPPLIED, surplus), credit(cash_account(source), surplus),
    ], "多收款项退还 surplus refunded", lease_id=lease_id, dealer_id=dealer_id)


def collected_outside(lease_id: str, dealer_id: str, number: int, due_on: date, principal: int,
                      interest: int, *, paid_on: date | None = None) -> Entry | None:
    """A rent due before servicing took over, collected outside Leaseline (the backfill): into the collections
    account on its due day (or ``paid_on``: the synthetic portfolio's rents, paid on their day)."""
    return entry(f"collected_outside:{lease_id}:{number}", "collected_outside", paid_on or due_on, [
        debit(BANK, principal + interest), credit(RECEIVABLE, principal + interest),
    ], f"服务启用前已在系统外收取 rent {number} collected outside Leaseline", lease_id=lease_id, dealer_id=dealer_id)


def refinanced(old_lease_id: str, old_dealer_id: str, new_lease_id: str, new_dealer_id: str, day: date, *,
               principal: int, interest: int, penalty: int) -> Entry | None:
    """The old lease's final rent paid off by the new lease's funding: the new lease's price of the car (owed on its
    commencement) pays off what the old one still owed of its final rent and its late charge."""
    paid = principal + interest + penalty
    return entry(f"lease:{old_lease_id}:refinanced", "refinanced", day, [
        debit(DEALERS, paid, lease_id=new_lease_id, dealer_id=new_dealer_id),
        credit(RECEIVABLE, principal + interest, lease_id=old_lease_id, dealer_id=old_dealer_id),
        credit(LATE_CHARGES, penalty, lease_id=old_lease_id, dealer_id=old_dealer_id),
    ], f"尾付租金由再融资租赁 {new_lease_id} 付清 the final rent paid off by the refinancing", lease_id=old_lease_id,
        dealer_id=old_dealer_id)


def dealer_funded(lease_id: str, dealer_id: str, paid_on: date, amount: int, reference: str = "") -> Entry | None:
    """The dealer paid by bank transfer for the car the lease financed (``amount`` fen, what the lease owes it):
    the dealers' payable its commencement credited, settled from the disbursements account. Raises
    :class:`UnpostableEntry` for a negative amount."""
    if amount < 0:
        raise UnpostableEntry(f"lease {lease_id}: a negative payment to the dealer ({amount} fen)")
    return entry(f"dealer_funding:{lease_id}", "dealer_funded", paid_on, [
        debit(DEALERS, amount), credit(DISBURSEMENTS, amount),
    ], f"支付经销商车款 the dealer paid for the car {reference}".strip(), lease_id=lease_id, dealer_id=dealer_id)
