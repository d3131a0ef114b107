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
"""

from __future__ import annotations

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
    "expired": frozenset({"processing", "requires_action", "failed", "held"}),  # a new authorisation
}


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


#: webhook event types and the intent status each one reports
EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.amount_capturable_updated": "requires_capture",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "canceled",
}
