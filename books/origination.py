"""Posting rules of the money a signed lease moves before and around its delivery (issue 19 §1), pure: the facts of
each event in, an :class:`~books.entries.Entry` out (None when the event moved no money). infra/payments_store.py
gathers the facts and posts the entries in the transaction of the state change; infra/stripe_books.py posts Stripe's
fees and payouts from its balance transactions.

What the upfront payment is made of (bff/payments/checkout.py ``lines``; plans/quote.py ``due_at_signing``): what is
due at signing less the deposit, that is the down payment, the upfront fees, the upfront insurance premiums and —
rents paid in advance — the first rent. The frozen plan on the application names the down payment, the credit fees,
whether the extras (fees and premiums) are financed, the timing and the schedule (:func:`upfront_parts`); the
premiums are what is left.

- upfront captured (key ``payment:<payment>:captured``): Dr Assets:Clearing:Stripe = captured;
  Cr Liabilities:Payable:Dealers = the down payment (the dealer sells the car: its share, 分账, paid out through
  Stripe Connect), Cr Income:Other:Fees = the upfront fees (the lessor's), Cr Liabilities:Payable:Insurers = the
  upfront premiums (the lessee's own insurance, collected for the insurer: never the lessor's income),
  Cr Liabilities:Unapplied:Lessees = the first rent paid in advance (money of the lessee held until the lease
  commences: the receivable does not exist before the handover; the commencement applies it to rent 1, which
  infra/servicing.py records as ``paid_at_signing``);
- deposit captured: Dr Clearing:Stripe / Cr Liabilities:Deposits:Lessees;
- 免押 hold captured by ops on default: Dr Clearing:Stripe / Cr Deposits — the money taken is security held in cash,
  the lessee's until it is applied or refunded, never income by itself: what it covers (unpaid rent, late charges, …)
  is a receivable where servicing booked one, and crediting Income:Other:Fees would count that income twice;
- the deduction of ops' closing (bff/payments/settlement.py ``close``; only a lease with no lease in servicing: a
  serviced lease's end applies its deposit through servicing), key ``deduction:<application>``, in the closing's
  transaction: Dr Liabilities:Deposits:Lessees / Cr Income:Other:Fees = the part of the deduction the deposit still
  holds. The deduction pays sums due under the contract and left unpaid (bff/payments/machine.py ``DEDUCTIBLE``: rent,
  late charges, the purchase price, taxes/fines/premiums the lessor paid, a return's shortfall), but for a lease
  outside servicing the books hold no receivable for any of them (no commencement, no instalments): crediting
  Assets:Receivable:Lessees would leave a credit balance nothing clears, so what is kept is income when kept. The
  part a live hold covers is captured by the settle job: that capture credits its ``kept`` part to Income:Other:Fees
  (and any rest to Deposits), so the kept money never sits in the lessee's deposit;
- a refund (key ``refund:<refund>``; one made outside Leaseline and reported by Stripe, ``payment:<payment>:
  refunded:<total>``): Cr Clearing:Stripe; the debit undoes what the capture credited — for a deposit or a hold
  Liabilities:Deposits:Lessees; for the upfront payment its parts in a fixed order, the lessor's own first (fees,
  premiums, the first rent) and the dealer's down payment last (a refund reaching it leaves the dealer owing it
  back when the share was paid out already), each refund taking the slice after what earlier refunds took
  (:func:`refund_slices`: cumulative, so the refunds of a payment never take a part twice). Once the lease has
  commenced, its commencement applied the first rent to rent 1 (paid at signing) and servicing does not reopen it:
  ops' refunds then give back the fees and premiums only (:func:`refundable_once_commenced`; infra/payments_store.py
  refuses more), and what a refund made outside Leaseline gives back of the first rent is owed by the lessee again,
  Dr Assets:Receivable:Lessees (never Unapplied, which no longer holds it);
- the dealer's share transferred (key ``transfer:<payment>``): Dr Liabilities:Payable:Dealers / Cr Clearing:Stripe;
- processor fees from Stripe's balance transactions (key ``fee:<balance transaction>``): Dr Expenses:Finance:
  ProcessorFees / Cr Clearing:Stripe (a fee Stripe gives back: the other way round);
- Stripe's payouts to the lessor's bank (key ``payout:<balance transaction>``): Dr Assets:Bank:Collections /
  Cr Clearing:Stripe (a payout failed or cancelled: the other way round).

Entries of the origination carry the dealer, and the lease once it exists (a settlement's deposit refund); before the
handover no lease exists, and the application is named in the memo.

**VAT** (issue 19 §3, books/vat.py): what the lessor credits to Income:Other:Fees — the upfront fees, a closing's
deduction kept (from the deposit, or from a hold's capture) — is consideration of the lease's service received then
(价外费用 of it: a fee, sums due under the contract): each credit is income net of the VAT it includes under the rule in
force on its day for the lease's structure (``rule``; None: no VAT, the postings of before it), Cr
Liabilities:Tax:VAT:Output the tax, rounded once. A refund of fees gives back the tax with them, exactly: the fees kept
after it carry included_tax(kept), so a refund takes included_tax(kept before) − included_tax(kept after) off
Output (cumulative: the refunds of a payment give back the capture's tax to the fen, never more), under the rule of
the capture (its ``rule``)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from books.accounts import BANK
from books.accounts import DEALERS
from books.accounts import DEPOSITS
from books.accounts import FEES
from books.accounts import INSURERS
from books.accounts import OTHER_RECEIVABLE as LESSEES
from books.accounts import PROCESSOR_FEES
from books.accounts import STRIPE_CLEARING as STRIPE
from books.accounts import UNAPPLIED
from books.accounts import VAT_OUTPUT
from books.entries import Entry
from books.entries import Line
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.vat import Rule
from books.vat import included_tax

#: the parts of the upfront payment, in the order a refund gives them back (the lessor's own first)
REFUND_ORDER = ("fees", "premiums", "first_rent", "down_payment")
#: the account each part of the upfront payment is credited to on capture
PART_ACCOUNTS = {"down_payment": DEALERS, "fees": FEES, "premiums": INSURERS, "first_rent": UNAPPLIED}


@dataclass(frozen=True)
class UpfrontParts:
    """What an upfront payment is made of, in fen."""

    down_payment: int = 0
    fees: int = 0
    premiums: int = 0
    first_rent: int = 0

    @property
    def total(self) -> int:
        return self.down_payment + self.fees + self.premiums + self.first_rent

    def part(self, name: str) -> int:
        return int(getattr(self, name))


def to_fen(amount: object) -> int:
    """Yuan as the frozen plan writes them (``"1234.50"``) → fen, rounded half-up once; 0 for what is no amount."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return 0
    return int(value * 100) if value.is_finite() else 0


def upfront_parts(plan: Mapping[str, Any], amount: int) -> UpfrontParts:
    """The parts of an upfront payment of ``amount`` fen under the application's frozen ``plan`` (bff/applications/
    services.py ``_plan_json``): the down payment, the first rent when rents are paid in advance, the upfront fees
    (the quote's credit fees when the extras are not financed: plans/product.py finances all of them or none), and the
    premiums as the rest. Each part is at most what is left of ``amount`` (taken in that order), so the parts always
    add up to ``amount`` exactly, whatever the plan says."""
    quote: Mapping[str, Any] = plan.get("quote") or {}
    choice: Mapping[str, Any] = plan.get("choice") or {}
    schedule: Sequence[Mapping[str, Any]] = quote.get("schedule") or []
    advance = (quote.get("timing") or choice.get("timing")) == "advance"
    financed = bool(choice.get("extras_financed", True))
    wanted = {"down_payment": to_fen(quote.get("down_payment", 0)),
              "first_rent": to_fen(schedule[0].get("payment", 0)) if advance and schedule else 0,
              "fees": 0 if financed else to_fen(quote.get("credit_fees", 0))}
    left = max(0, amount)
    taken: dict[str, int] = {}
    for name in ("down_payment", "first_rent", "fees"):
        taken[name] = min(max(0, wanted[name]), left)
        left -= taken[name]
    return UpfrontParts(taken["down_payment"], taken["fees"], left, taken["first_rent"])


def fee_tax(rule: Rule | None, amount: int) -> int:
    """The VAT included in ``amount`` fen of fees (or a deduction kept) under ``rule`` (0 without one)."""
    return included_tax(rule, amount) if rule is not None and amount else 0


def fees_lines(rule: Rule | None, amount: int) -> list[Line]:
    """Fees of ``amount`` fen credited net of their VAT, the VAT to output."""
    tax = fee_tax(rule, amount)
    return [credit(FEES, amount - tax), credit(VAT_OUTPUT, tax)]


def captured(payment_id: str, kind: str, amount: int, value_date: date, *, parts: UpfrontParts | None = None,
             dealer_id: str | None = None, lease_id: str | None = None, application_id: str = "",
             kept: int = 0, rule: Rule | None = None) -> Entry | None:
    """The entry of a payment of ``kind`` (upfront, deposit, hold) captured for ``amount`` fen (key
    ``payment:<payment>:captured``). The upfront payment needs its ``parts`` (:func:`upfront_parts` of the captured
    amount). A hold captured for a closing's deduction: ``kept`` fen of it (at most the amount) are the deduction
    kept, credited to fees; the rest is the lessee's deposit. Fees are credited net of their VAT under ``rule``."""
    key = f"payment:{payment_id}:captured"
    if kept and kind != "hold":
        raise ValueError(f"{key}: only a hold is captured for a deduction kept")
    memo = f"{kind} captured, application {application_id}".strip()
    if kind == "upfront":
        if parts is None or parts.total != amount:
            raise ValueError(f"{key}: the upfront parts must add up to the {amount} fen captured")
        lines = [debit(STRIPE, amount)] + [credit(PART_ACCOUNTS[name], parts.part(name)) for name in
                                           ("down_payment", "premiums", "first_rent")] + fees_lines(rule, parts.fees)
        return entry(key, "upfront_captured", value_date, lines, memo, lease_id=lease_id, dealer_id=dealer_id)
    if kind in ("deposit", "hold"):
        fees = min(max(0, kept), amount)
        return entry(key, f"{kind}_captured", value_date, [
            debit(STRIPE, amount), *fees_lines(rule, fees), credit(DEPOSITS, amount - fees)], memo,
            lease_id=lease_id, dealer_id=dealer_id)
    raise ValueError(f"{key}: no posting rule for a payment of kind {kind!r}")


def deposit_kept(application_id: str, amount: int, value_date: date, *, dealer_id: str | None = None,
                 reason: str = "", rule: Rule | None = None) -> Entry | None:
    """The deduction ops keep from the deposit when they close a lease outside servicing (key
    ``deduction:<application>``, the closing's transaction): Dr Liabilities:Deposits:Lessees / Cr Income:Other:Fees
    (``amount``: the part of the deduction the deposit still held covers), net of its VAT under ``rule``."""
    return entry(f"deduction:{application_id}", "deposit_kept", value_date,
                 [debit(DEPOSITS, amount), *fees_lines(rule, amount)],
                 f"结清扣款 deduction kept, application {application_id}: {reason}".strip(" :"), dealer_id=dealer_id)


def refund_slices(parts: UpfrontParts, before: int, amount: int) -> dict[str, int]:
    """What a refund of ``amount`` fen gives back of each part of an upfront payment, after earlier refunds of
    ``before`` fen: the parts laid end to end in :data:`REFUND_ORDER`, this refund the slice [before, before +
    amount) of them. Never more than the parts hold (a refund beyond them raises ValueError: the payment store
    refuses to refund more than was captured)."""
    if before < 0 or amount < 0 or before + amount > parts.total:
        raise ValueError(f"a refund of {amount} after {before} does not fit a payment of {parts.total}")
    slices: dict[str, int] = {}
    start = 0
    for name in REFUND_ORDER:
        size = parts.part(name)
        low, high = max(start, before), min(start + size, before + amount)
        slices[name] = max(0, high - low)
        start += size
    return slices


def refundable_once_commenced(parts: UpfrontParts) -> int:
    """What of an upfront payment may be refunded in all once the lease commenced (fen): the parts :data:`REFUND_ORDER`
    gives back before the first rent (the lessor's fees, the premiums). The commencement applied the first rent to
    rent 1 (paid at signing) and servicing does not reopen a rent, so a refund reaching it is refused (and with it the
    down payment after it). Rents in arrears (no first rent in it): all of it, as before the commencement."""
    if not parts.first_rent:
        return parts.total
    return sum(parts.part(name) for name in REFUND_ORDER[:REFUND_ORDER.index("first_rent")])


def refunded(key: str, kind: str, amount: int, value_date: date, *, before: int = 0,
             parts: UpfrontParts | None = None, dealer_id: str | None = None, lease_id: str | None = None,
             memo: str = "", commenced: bool = False, rule: Rule | None = None) -> Entry | None:
    """The entry of a refund of ``amount`` fen of a captured payment of ``kind`` (key ``refund:<refund>``, or
    ``payment:<payment>:refunded:<total>`` for one made outside Leaseline): Cr Clearing:Stripe; Dr what the capture
    credited (:func:`refund_slices` of the upfront payment's ``parts`` after the ``before`` fen refunded earlier).
    Once the lease ``commenced`` the first rent is not in Unapplied any more (rent 1 paid at signing applied it):
    what a refund gives back of it — only one made outside Leaseline: ours are refused
    (:func:`refundable_once_commenced`) — is owed back by the lessee, Dr Assets:Receivable:Lessees. The fees given
    back take their VAT with them under the capture's ``rule``: the tax of the fees kept before less the tax of those
    kept after (cumulative, exact)."""
    if kind == "upfront":
        if parts is None:
            raise ValueError(f"{key}: an upfront refund needs the payment's parts")
        slices = refund_slices(parts, before, amount)
        accounts = {**PART_ACCOUNTS, "first_rent": LESSEES} if commenced else PART_ACCOUNTS
        lines: list[Line] = [debit(accounts[name], slices[name]) for name in REFUND_ORDER if name != "fees"]
        kept = parts.fees - refund_slices(parts, 0, before)["fees"]
        tax = fee_tax(rule, kept) - fee_tax(rule, kept - slices["fees"])
        lines += [debit(FEES, slices["fees"] - tax), debit(VAT_OUTPUT, tax)]
    elif kind in ("deposit", "hold"):
        lines = [debit(DEPOSITS, amount)]
    else:
        raise ValueError(f"{key}: no posting rule for a refund of a payment of kind {kind!r}")
    return entry(key, "payment_refunded", value_date, [*lines, credit(STRIPE, amount)], memo or f"{kind} refunded",
                 lease_id=lease_id, dealer_id=dealer_id)


def dealer_share_paid(payment_id: str, amount: int, value_date: date, *, dealer_id: str | None = None,
                      lease_id: str | None = None, transfer_id: str = "") -> Entry | None:
    """The dealer's share (分账) transferred to its Stripe Connect account (key ``transfer:<payment>``)."""
    return entry(f"transfer:{payment_id}", "dealer_share_paid", value_date,
                 [debit(DEALERS, amount), credit(STRIPE, amount)], f"dealer share transferred {transfer_id}".strip(),
                 lease_id=lease_id, dealer_id=dealer_id)


def processor_fee(transaction_id: str, fee: int, value_date: date, memo: str = "") -> Entry | None:
    """Stripe's fee on one balance transaction (key ``fee:<transaction>``); a negative fee (given back) reverses."""
    return entry(f"fee:{transaction_id}", "processor_fee", value_date,
                 [debit(PROCESSOR_FEES, fee), credit(STRIPE, fee)], memo or "Stripe fee")


def payout(transaction_id: str, amount: int, value_date: date, memo: str = "") -> Entry | None:
    """Stripe's payout of ``amount`` fen (positive: out of the Stripe balance) to the lessor's bank (key
    ``payout:<transaction>``); a negative amount (a payout failed or cancelled, back in the balance) reverses."""
    return entry(f"payout:{transaction_id}", "stripe_payout", value_date, [debit(BANK, amount), credit(STRIPE, amount)],
                 memo or "Stripe payout")
