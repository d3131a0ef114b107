"""What the payment services share: the application states in which a lease pays, amounts in fen and yuan, the
payment a request names, and the audit entry of a payment's or a lease's event."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from infra.applications import Application
from infra.audit import SqlAuditLog
from infra.payments_store import Payment
from infra.payments_store import SqlPayments

#: application states in which payments exist and may be paid
PAYING = ("signed", "ready_for_delivery")  # after the handover nothing is payable: a lapsed hold is not replaced
DELIVERABLE = "ready_for_delivery"


def utc_now() -> datetime:
    """The services' default clock."""
    return datetime.now(UTC)


def fen(amount: str | Decimal) -> int:
    """Yuan (a string or Decimal with at most two decimals, as the frozen quote has) → fen."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(value * 100)


def yuan(amount_fen: int) -> str:
    return f"{Decimal(amount_fen) / 100:.2f}"


def own_payment(store: SqlPayments, app: Application, payment_id: str) -> Payment:
    """The payment ``payment_id`` of ``app``; :class:`NotAllowed` (``not_found``) for any other."""
    payment = store.get(payment_id)
    if payment is None or payment.application_id != app.id:
        raise NotAllowed("not_found", "没有这笔付款", "No such payment")
    return payment


def record_audit(audit: SqlAuditLog | None, action: str, actor: Actor | None, dealer_id: str | None, target: str,
                 details: dict[str, object], outcome: str = "success", system: str = "system:settle") -> None:
    """An entry in the audit log (none without one): ``actor``'s, or the ``system``'s when no one acted."""
    if audit is None:
        return
    audit.append(action, outcome, actor_id=actor.id if actor else None,
                 actor_label=actor.label if actor else system, dealer_id=dealer_id, target=target,
                 ip=actor.ip if actor else "", user_agent=actor.user_agent if actor else "", details=details)
