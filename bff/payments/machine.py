"""The payment state machine: what Stripe's answers and webhook events may change, in any order.

    pending ──pay──► processing ──► succeeded                 (automatic capture: upfront, deposit)
                         │     └──► held ──capture──► captured (manual capture: the 免押 hold)
                         │                 └─release/expiry──► released | expired ──hold again──► processing …
                         ├──► requires_action ──the bank confirms──► succeeded | held
                         └──► failed ──pay again (a new attempt)──► processing …
    processing ──Stripe unreachable──► pending (the same attempt key: a retry never charges twice)

Events arrive late, twice or out of order (Stripe does not promise an order): a transition not in ALLOWED is
ignored, so a late "payment failed" of an earlier attempt never undoes a success, and a replay is a no-op.
Pure: no I/O; the service applies what ``advance`` allows.

Money moves only with an accepted transition (issue 14): the amount Stripe received is written when the payment moves
into ``succeeded`` or ``captured``, and never by an event that the machine ignores. Stripe's lifecycle
(https://docs.stripe.com/payments/paymentintents/lifecycle) makes that enough: ``succeeded`` and ``canceled`` are
final, so ``amount_received`` never changes once an intent succeeded; a hold's capture (all of it, or less with
``amount_to_capture``: the rest is released at once) is ``requires_capture`` → ``succeeded``, our ``held`` →
``captured`` (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method); capturing passes through
``processing``, which for a held payment is ignored. We ask for neither multicapture nor incremental
authorisation, the only ways an intent's amounts change while it stays ``requires_capture``, so a same-status event
never carries money of its own. ``expired`` is our clock's estimate that the card's authorisation window ended
(Stripe then cancels the intent): later events of that intent do not revive it — a new authorisation is a new
attempt, claimed by the service itself — except Stripe saying it was captured after all (a capture sent just before
the window closed), which is money taken.

An intent is the payment's only if it is the one we asked Stripe for: the amount of the line, in CNY, with the
capture method of its kind (:func:`mismatch`); what it received must fit the move (:func:`receipt_problem`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from plans.timeline import add_months

STATUSES = ("pending", "processing", "requires_action", "failed", "held", "succeeded", "captured", "released",
            "expired")
#: the statuses in which the lease's money is secured (delivery may go ahead)
SECURED = frozenset({"succeeded", "held", "captured"})
#: a new attempt may start from these
PAYABLE = frozenset({"pending", "failed", "expired"})
FINAL = frozenset({"succeeded", "captured", "released"})

ALLOWED: dict[str, frozenset[str]] = {
    "pending": frozenset({"processing", "requires_action", "failed", "held", "succeeded"}),
    "processing": frozenset({"pending", "requires_action", "failed", "held", "succeeded"}),
    "requires_action": frozenset({"processing", "failed", "held", "succeeded"}),
    "failed": frozenset({"processing", "requires_action", "held", "succeeded"}),
    "held": frozenset({"captured", "released", "expired"}),
    "succeeded": frozenset(),
    "captured": frozenset(),
    "released": frozenset(),
    # a new authorisation is claimed by the service (a new attempt), never moved to by the lapsed intent's events;
    # only a capture that reached Stripe before the window closed still counts
    "expired": frozenset({"captured"}),
}
#: our statuses in which Stripe has taken the money: what it received is final there
CAPTURED = frozenset({"succeeded", "captured"})


def from_intent(status: str, manual_capture: bool) -> str:
    """Our status for a Stripe PaymentIntent status."""
    if status == "succeeded":
        return "captured" if manual_capture else "succeeded"
    if status == "canceled":
        return "released" if manual_capture else "failed"
    return {"requires_capture": "held", "requires_action": "requires_action", "processing": "processing",
            "requires_payment_method": "failed", "requires_confirmation": "pending"}.get(status, "processing")


def advance(current: str, target: str) -> str | None:
    """``target`` when the machine allows ``current`` → ``target``; None for a no-op or a refused move."""
    if target == current or target not in ALLOWED.get(current, frozenset()):
        return None
    return target


def mismatch(kind: str, amount: int, *, intent_amount: int, currency: str, manual: bool) -> str | None:
    """Why a PaymentIntent is not one we created for a line of ``kind`` and ``amount`` fen (in CNY; the 免押 hold with
    manual capture, a charge with automatic capture), or None when it fits."""
    if intent_amount != amount:
        return f"amount {intent_amount} is not {amount}"
    if currency.lower() != "cny":
        return f"currency {currency[:8]!r} is not cny"
    if manual != (kind == "hold"):
        return f"capture {'manual' if manual else 'automatic'} is not that of the {kind}"
    return None


def receipt_problem(target: str, amount: int, received: int) -> str | None:
    """Why ``received`` fen cannot be what a payment of ``amount`` fen received on moving to ``target``, or None: an
    automatic capture takes the whole amount (we never ask for partial authorisations); a hold's capture takes more
    than nothing and at most the hold."""
    if target == "succeeded" and received != amount:
        return f"received {received} of {amount}"
    if target == "captured" and not 0 < received <= amount:
        return f"captured {received} of a hold of {amount}"
    return None


#: webhook event types and the intent status each one reports
EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.amount_capturable_updated": "requires_capture",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "canceled",
}


# -- after delivery: the lease's term and its settlement (结清) -----------------------------------------------------
#
#     ready_for_delivery ──the dealer confirms the handover (交车), security in place──► delivered (the term starts)
#     delivered ──on or after the term's end, ops close it in good standing (a deduction, with its reason, or none)──►
#         closed, its settlement due ──the settle job──► settled        (the deposit less the deduction refunded)
#                                                  └──► attention
#                                                        └─ops retry─► due
#
# A 免押 card hold lasts 7 days and a term at least a month: by the term's end the hold has lapsed, and after the
# handover nothing replaces it (see ``hold_lapsed_unsecured``), so a 免押 lease holds no security at settlement.
#
#: the application states of a lease after delivery
DELIVERED = "delivered"
CLOSED = "closed"
SETTLEMENTS = ("due", "settled", "attention")


def term_end(starts_on: date, months: int) -> date:
    """The day a term of ``months`` that started on ``starts_on`` (the handover) ends: the contract counts the term
    "自本合同生效且车辆交付承租人之日起" (from the vehicle's delivery), so the same calendar day ``months`` later."""
    if months < 1:
        raise ValueError("a term has at least one month")
    return add_months(starts_on, months)  # plans.timeline: the contract's own term end


def due_for_closing(ends_on: date, today: date) -> bool:
    """A running lease is due for closing (listed for ops) from its end day on (Asia/Shanghai calendar days)."""
    return today >= ends_on


def hold_lapsed_unsecured(lines: Iterable[tuple[str, str]]) -> bool:
    """Whether the lease's 免押 card hold has lapsed with no deposit paid in its place, so that nothing secures the
    lease: after the handover a lapsed hold is not replaced (the deposit is asked for only while paying)."""
    kinds = dict(lines)
    return kinds.get("hold") == "expired" and kinds.get("deposit") not in SECURED


def secured(lines: Iterable[tuple[str, str]]) -> bool:
    """Whether the lease's security is in place: every ``(kind, status)`` line secured, where a deposit that
    replaced a lapsed hold, or the renewed hold, is enough on its own (the rule of ``IntentSync.check_ready``)."""
    found = list(lines)
    kinds = {kind: status for kind, status in found}
    if "hold" in kinds and "deposit" in kinds:
        either = kinds["hold"] if kinds["hold"] in SECURED else kinds["deposit"]
        found = [(k, s) for k, s in found if k not in ("hold", "deposit")] + [("security", either)]
    return bool(found) and all(status in SECURED for _, status in found)


#: what may be kept from a deposit (or taken from a live hold) at closing: sums the contract makes due and left
#: unpaid (its §5: "应付未付的款项"), each named — not damage, cleaning or any other reason typed in (issue 16 §5)
DEDUCTIBLE = {
    "rent": ("未付租金（含尾付租金）", "Unpaid rent (the final rent included)"),
    "late_charge": ("逾期违约金", "Late charges"),
    "purchase_price": ("留购价", "Purchase price"),
    "paid_for_lessee": ("出租人代付的应由承租人承担的税费、罚款或保险费（附凭证）",
                        "Taxes, fines or premiums the lessee bears and the lessor paid (with the voucher)"),
    "return_shortfall": ("退还车辆评估价值不足尾付租金的差额",
                         "Shortfall of a returned car's value below the final rent"),
}


def deduction_reason(item: str, details: str) -> str:
    """What is kept with a deduction: the sum due it covers (``DEDUCTIBLE``, in Chinese) and ops' details."""
    return f"{DEDUCTIBLE[item][0]}：{details.strip()}"


def deduction_limit(deposit_refundable: int, hold_live: int) -> int:
    """The most a closing may deduct (fen): what is left of the deposit plus a hold still live on the card (none in
    practice: a hold lapses long before a term ends, so a 免押 lease's limit is 0)."""
    return max(0, deposit_refundable) + max(0, hold_live)


@dataclass(frozen=True)
class SettlementPlan:
    """What settling a closed lease moves, in fen."""

    refund: int  # back to the customer from the deposit
    capture: int  # taken from a live hold: the part of the deduction the deposit did not cover
    release: bool  # release the live hold (nothing of it is captured)
    uncovered: int  # the part of the deduction nothing covers any more (a manual refund, a lapsed hold since)


def plan_settlement(deduction: int, deposit_refundable: int, hold_live: int) -> SettlementPlan:
    """The deduction comes out of the deposit first, then out of a live hold; the rest of the deposit is refunded
    and a hold nothing is captured from is released. Never refunds more than is left of the deposit, never
    captures more than the hold, never takes more than the deduction."""
    if deduction < 0:
        raise ValueError("a deduction is not negative")
    deposit_refundable, hold_live = max(0, deposit_refundable), max(0, hold_live)
    from_deposit = min(deduction, deposit_refundable)
    from_hold = min(deduction - from_deposit, hold_live)
    return SettlementPlan(refund=deposit_refundable - from_deposit, capture=from_hold,
                          release=hold_live > 0 and from_hold == 0,
                          uncovered=deduction - from_deposit - from_hold)
