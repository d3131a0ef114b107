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
post nothing, the receipt that pays one credits Income:Lease:LateCharges.

**VAT** (issue 19 §3, books/vat.py; rents are VAT-inclusive): the receivable stays gross (the lease payments with tax,
as the schedule and the customer see them); the tax each rent carries waits in Liabilities:Tax:VAT:Pending
(待转销项税额) until its tax point, the payment date the contract fixes (its due date), then becomes output VAT.

- **commencement VAT**, key ``lease:<id>:vat``, dated the start, in the commencement's transaction: Dr
  Liabilities:Tax:VAT:Input = Σ tax_on_principal (the car's VAT as the rents carry it: the lessor bought the car; the
  dealer's own VAT invoice is not captured yet), Dr Assets:LeaseReceivable:Unearned = Σ tax_on_interest (unearned
  income is net of VAT: Σ (interest − tax_on_interest), what books/income.py spreads); Cr
  Liabilities:Tax:VAT:Pending = Σ tax, every rent and the final rent under the rule in force on its due date.
- **a rent's tax point**, key ``vat:<instalment id>``, dated its due date, posted by the close of business for the rents
  falling due (infra/vat_points.py): Dr Liabilities:Tax:VAT:Pending / Cr Liabilities:Tax:VAT:Output = its tax.
- **late charges received** (a receipt's, a refinancing's): a 价外费用 of the service, taxed when received under the
  rule of the lease's structure on that day: Cr Income:Lease:LateCharges the charge less its included tax, Cr
  Liabilities:Tax:VAT:Output the included tax."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from books.accounts import BANK
from books.accounts import DEALERS
from books.accounts import DISBURSEMENTS
from books.accounts import LATE_CHARGES
from books.accounts import OTHER_RECEIVABLE
from books.accounts import RECEIVABLE
from books.accounts import STRIPE_CLEARING
from books.accounts import UNAPPLIED
from books.accounts import UNEARNED
from books.accounts import VAT_INPUT
from books.accounts import VAT_OUTPUT
from books.accounts import VAT_PENDING
from books.entries import Entry
from books.entries import UnpostableEntry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.vat import RentTax
from books.vat import TaxPolicy
from books.vat import included_tax
from books.vat import load_tax_policy
from books.vat import rent_tax

#: the instalments that are lease payments (租赁收款额: the receivable's sub-ledger); any other kind (purchase_price,
#: return_charges) is a charge outside them
LEASE_PAYMENTS = ("rent", "final_rent")
#: a lease's structure when its terms state none (plans/product.py Title: the only one offered)
DIRECT = "direct"
#: the kinds of the VAT entries: the commencement's, a rent's tax point
VAT_COMMENCED, VAT_TAX_POINT = "vat_commenced", "vat_tax_point"
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


def structure_of(terms: Mapping[str, Any]) -> str:
    """The lease's structure as its frozen terms state it (contract/document/servicing_terms.py), direct when they
    state none (contracts before it was stated: direct was the only one offered)."""
    return str(terms.get("structure") or DIRECT)


def rent_taxes(structure: str, rents: Iterable[tuple[date, int, int]],
               policy: TaxPolicy | None = None) -> list[RentTax]:
    """The VAT of each of ``rents`` (due date, amount, interest in fen) under the rule in force on its due date (its
    tax point). Raises :class:`books.vat.NoRuleInForce` for a rent no rule covers."""
    found = policy or load_tax_policy()
    return [rent_tax(found.rule(structure, due_on), amount, interest) for due_on, amount, interest in rents]


def commencement_vat(lease_id: str, dealer_id: str, starts_on: date, taxes: Iterable[RentTax]) -> Entry | None:
    """The VAT of the lease's rents and final rent (``taxes``: each one's :func:`books.vat.rent_tax` under the rule in
    force on its due date) put in Pending at the commencement: the principal's share against input VAT, the
    interest's against unearned income."""
    rows = list(taxes)
    return entry(f"lease:{lease_id}:vat", VAT_COMMENCED, starts_on, [
        debit(VAT_INPUT, sum(t.tax_on_principal for t in rows)),
        debit(UNEARNED, sum(t.tax_on_interest for t in rows)),
        credit(VAT_PENDING, sum(t.tax for t in rows)),
    ], "起租待转销项税额 VAT of the lease payments, pending their tax points", lease_id=lease_id, dealer_id=dealer_id)


def tax_point(instalment_id: int, lease_id: str, dealer_id: str, due_on: date, tax: int) -> Entry | None:
    """A rent's tax point (its due date: the payment date the contract fixes): its ``tax`` (fen) from Pending to
    output VAT."""
    return entry(f"vat:{instalment_id}", VAT_TAX_POINT, due_on, [debit(VAT_PENDING, tax), credit(VAT_OUTPUT, tax)],
                 "租金纳税义务发生 output VAT of a rent falling due", lease_id=lease_id, dealer_id=dealer_id)


def late_charge_vat(amount: int, on: date, structure: str = DIRECT, policy: TaxPolicy | None = None) -> int:
    """The VAT included in ``amount`` fen of late charges received on ``on`` (a 价外费用 of the lease's service, under
    its structure's rule that day)."""
    if not amount:
        return 0
    return included_tax((policy or load_tax_policy()).rule(structure, on), amount)


def paid_at_signing(lease_id: str, dealer_id: str, starts_on: date, amount: int) -> Entry | None:
    """Rent 1 (in advance) paid with the amounts due at signing, applied from what the upfront payment held for it."""
    return entry(f"lease:{lease_id}:paid_at_signing", "rent_paid_at_signing", starts_on, [
        debit(UNAPPLIED, amount), credit(RECEIVABLE, amount),
    ], "首期租金随签约应付款项支付 rent 1 paid at signing", lease_id=lease_id, dealer_id=dealer_id)


def receipt(receipt_id: str, lease_id: str, dealer_id: str, *, source: str, value_date: date, amount: int,
            applied: Iterable[Applied] = (), held: int = 0, surplus: int = 0, structure: str = DIRECT,
            policy: TaxPolicy | None = None) -> Entry | None:
    """A payment booked into the lease (``amount`` fen from ``source``): what it paid of each instalment
    (``applied``), what it holds for a settlement or a prepayment (``held``) and its ``surplus`` (to refund); the late
    charges it paid are income net of their VAT (the lease's ``structure``'s rule on ``value_date``, each instalment's
    rounded on its own). Raises
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
    # each instalment's late charge taxed on its own (rounded once per instalment and receipt), as its e-invoice
    # carries it (infra/invoicing.py: the rent's late charge line, Σ of its receipts' taxes)
    tax = sum(late_charge_vat(p.penalty, value_date, structure, policy) for p in parts)
    return entry(f"receipt:{receipt_id}", "rent_collected", value_date, [
        debit(cash_account(source), amount),
        credit(RECEIVABLE, lease_payments),
        credit(OTHER_RECEIVABLE, other),
        credit(LATE_CHARGES, penalty - tax),
        credit(VAT_OUTPUT, tax),
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
               principal: int, interest: int, penalty: int, structure: str = DIRECT,
               policy: TaxPolicy | None = None) -> Entry | None:
    """The old lease's final rent paid off by the new lease's funding: the new lease's price of the car (owed on its
    commencement) pays off what the old one still owed of its final rent and its late charge (income net of its VAT,
    the old lease's ``structure``'s rule on ``day``)."""
    paid = principal + interest + penalty
    tax = late_charge_vat(penalty, day, structure, policy)
    return entry(f"lease:{old_lease_id}:refinanced", "refinanced", day, [
        debit(DEALERS, paid, lease_id=new_lease_id, dealer_id=new_dealer_id),
        credit(RECEIVABLE, principal + interest, lease_id=old_lease_id, dealer_id=old_dealer_id),
        credit(LATE_CHARGES, penalty - tax, lease_id=old_lease_id, dealer_id=old_dealer_id),
        credit(VAT_OUTPUT, tax, lease_id=old_lease_id, dealer_id=old_dealer_id),
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
