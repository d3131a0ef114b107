"""The lease after delivery: the handover (交车) that starts the term, the closing (结清) at its end, and the settle
job that moves the money; and what the ops view shows of them (bff/payments/ops_views.py).

Closing the term (租期届满结算) by hand: for a lease not serviced here (no lease in force: its rents collected outside
this system) the end is a decision of the lessor's ops, not of a clock. A lease serviced here ends by its
end-of-term choice instead (infra/end_of_term.py: purchase, return or refinance, its deposit settled in the
transaction that ends it) or by early settlement (结清: infra/settlements.py); ops' closing form is hidden for it:
- the term starts when the customer signs the handover record (交接确认书, bff/payments/handover.py) of a
  ``ready_for_delivery`` lease whose security is in place — on the record's day, the commencement date (起租日) the
  contract counts the term and every rent from — and ends on the same calendar day ``term`` months later
  (Asia/Shanghai; the 31st becomes the month's last day);
- from that day on the lease is listed as due for closing; ops close it in good standing, with a deduction
  (fen, a reason required) of at most what is left of the deposit, or none. A 免押 lease holds no security by
  then (its hold lapsed within 7 days of being placed, before the handover), so its limit is 0 and a default is
  collected outside Leaseline;
- the settle job (``leaseline payments settle``, and the worker's payments.settle job) then refunds the deposit less the
  deduction — one refund per lease (per ops' retry after Stripe refused one), its id derived from the lease,
  through the refund path: amount reserved first, ``refund:<refund>`` key, evidence entry; the deduction is fixed
  when ops close the lease, and nothing moved ever exceeds what is left at settlement time. Running it again, or
  twice at once, moves nothing more; Stripe unreachable leaves the settlement due, Stripe refusing a step marks
  it for ops' attention (they retry from the lease's page); a lease that fails unexpectedly is logged and left
  due, and the run goes on with the others.
The handover, the closing and each money movement go to the audit log and to the evidence log.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.payments.common import DELIVERABLE
from bff.payments.common import record_audit
from bff.payments.common import utc_now
from bff.payments.common import yuan
from bff.payments.intents import IntentSync
from bff.payments.machine import CLOSED
from bff.payments.machine import DELIVERED
from bff.payments.machine import deduction_limit
from bff.payments.machine import due_for_closing
from bff.payments.machine import hold_lapsed_unsecured
from bff.payments.machine import plan_settlement
from bff.payments.machine import secured
from bff.payments.machine import term_end
from infra.applications import Application
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.payments import PaymentDeclined
from infra.payments import PaymentGateway
from infra.payments import PaymentRefused
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable
from infra.payments_store import LeaseLine
from infra.payments_store import LeaseTerm
from infra.payments_store import Payment
from infra.payments_store import SqlPayments

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: a settle run that stopped (a crash) without letting go of a lease lets another take it after this long
SETTLE_STALE = timedelta(minutes=5)
#: the namespace of the settlement refunds' ids, derived from the lease: one refund per lease, whatever the runs
SETTLEMENT_REFUNDS = uuid.UUID("6f1d9a52-3c55-4d8e-9a57-6a0c1f3b2e10")


class SettlementService:
    def __init__(self, store: SqlPayments, gateway: PaymentGateway, repo: SqlApplications, intents: IntentSync,
                 clock: Callable[[], datetime] = utc_now, audit: SqlAuditLog | None = None,
                 stale_after: timedelta = SETTLE_STALE) -> None:
        self.store, self.gateway, self.repo, self.intents = store, gateway, repo, intents
        self.clock, self.audit, self.stale_after = clock, audit, stale_after

    # -- the handover (交车) and the closing (结清); the ops view ------------------------------------------------
    def today(self) -> date:
        """Today in Asia/Shanghai: terms start and end on calendar days there."""
        return self.clock().astimezone(SHANGHAI).date()

    def term(self, app: Application) -> LeaseTerm | None:
        """The lease's term, once the vehicle has been handed over."""
        return self.store.term(app.id)

    def security(self, application_id: str) -> tuple[int, int]:
        """``(what is left of the captured deposit, the amount of a hold still live on the card)`` in fen. A hold
        past its window counts for nothing even before the resumer marks it expired: Stripe has let it go."""
        deposit_left = hold_live = 0
        for p in self.store.for_application(application_id):
            if p.kind == "deposit" and p.status == "succeeded":
                deposit_left = p.refundable
            elif p.kind == "hold" and self._live(p):
                hold_live = p.amount
        return deposit_left, hold_live

    def unsecured(self, application_id: str) -> bool:
        """A 免押 lease whose card hold lapsed with no deposit in its place: nothing secures it (after the handover
        nothing replaces it)."""
        return hold_lapsed_unsecured((p.kind, p.status) for p in self.store.for_application(application_id))

    def _live(self, hold: Payment) -> bool:
        """A hold still authorised on the card: ``held`` and within its window."""
        return hold.status == "held" and (hold.held_until is None or hold.held_until > self.clock())

    def check_deliverable(self, app: Application) -> None:
        """Raise NotAllowed unless the lease may be handed over now: paid, ready for delivery, its security in place
        (a hold lapses after 7 days: it is placed again, or the deposit paid, first)."""
        if app.status != DELIVERABLE:
            raise NotAllowed("wrong_state", "只有已付清、待交车的租赁可以确认交车",
                             "Only a paid lease that is ready for delivery can be handed over")
        if not secured((p.kind, p.status) for p in self.store.for_application(app.id)):
            raise NotAllowed("not_secured", "担保已失效（预授权已过期）：请客户重新预授权或支付保证金后再交车",
                             "The security has lapsed (the card hold expired): the customer places the hold again "
                             "or pays the deposit before the handover")

    def hand_over(self, actor: Actor, app: Application, *, starts_on: date, handed_over_by: tuple[str, str],
                  record: Mapping[str, Any], ends_on: date | None = None) -> LeaseTerm:
        """The vehicle was handed over (交车): ``ready_for_delivery`` → ``delivered``, the term starting on
        ``starts_on`` — the day of the signed handover record (交接确认书, bff/payments/handover.py; its id and hash
        go with the evidence entry), the commencement date (起租日) every rent is dated from — and ending ``term``
        months later (or on ``ends_on``). ``handed_over_by``: the dealer staff member who handed it over (id,
        label); ``actor``: who confirmed (the customer). Called in the transaction that records the record; a
        second call returns the term the first one started."""
        if app.status in (DELIVERED, CLOSED) and (found := self.store.term(app.id)) is not None:
            return found
        self.check_deliverable(app)
        months = int(app.plan["quote"]["term"])
        # ``ends_on``: a contract generated before the commencement clause keeps the end its schedule fixed
        ends = ends_on or term_end(starts_on, months)
        now = self.clock()
        by_id, by_label = handed_over_by
        with self.repo.db.transaction():  # the handover and its evidence entry together
            term = self.store.start_term(
                app.id, dealer_id=app.dealer_id, from_status=DELIVERABLE, to_status=DELIVERED, term_months=months,
                starts_on=starts_on, ends_on=ends, actor_kind=actor.kind, actor_id=actor.id, delivered_by=by_id,
                delivered_by_label=by_label, now=now,
                note=f"交车 handover; term {starts_on.isoformat()} – {ends.isoformat()}; "
                     f"record {str(record.get('sha256', ''))[:16]}")
            if term is not None:
                self.repo.outbox_add(app.id, f"delivery:{app.id}", "delivery", {
                    "starts_on": starts_on.isoformat(), "ends_on": ends.isoformat(), "term_months": months,
                    "by": actor.kind, "handover_record_sha256": str(record.get("sha256", "")),
                    "handover_ledger_index": record.get("ledger_index")}, now)
        if term is None:  # another tap or device handed it over a moment ago
            found = self.store.term(app.id)
            if found is None:
                raise NotAllowed("wrong_state", "只有已付清、待交车的租赁可以确认交车",
                                 "Only a paid lease that is ready for delivery can be handed over")
            return found
        record_audit(self.audit, "lease.handover", actor, app.dealer_id, app.id, {
            "starts_on": starts_on.isoformat(), "ends_on": ends.isoformat(), "term_months": months,
            "handed_over_by": by_id, "record_sha256": str(record.get("sha256", ""))})
        return term

    def close(self, actor: Actor, app: Application, deduction: int, reason: str) -> LeaseTerm:
        """Ops close a lease in good standing on or after its term's end (结清): ``delivered`` → ``closed``, with
        ``deduction`` fen kept from the security (at most what is left of the deposit, plus a hold still live — none
        in practice: a hold lapses before the handover; a reason required) or none. The settle job then moves the
        money (:meth:`settle`)."""
        reason = " ".join(reason.split())[:255]
        term = self.store.term(app.id)
        if app.status != DELIVERED or term is None:
            raise NotAllowed("wrong_state", "只有租期中的租赁可以结清", "Only a lease on hire can be closed")
        if self.store.serviced(app.id):  # checked again by close_term, in its transaction
            raise NotAllowed("serviced", "这份租约由租后服务结束并结算保证金（期满选择、提前结清），不在此结清",
                             "This lease's end and its deposit are settled by servicing (the end-of-term choice or an "
                             "early settlement), not closed here")
        if not due_for_closing(term.ends_on, self.today()):
            raise NotAllowed("not_due", f"租期尚未结束（{term.ends_on.isoformat()} 到期），不能结清",
                             f"The term has not ended yet (it ends on {term.ends_on.isoformat()})")
        if deduction < 0:
            raise NotAllowed("deduction", "扣款金额不能为负数", "The deduction cannot be negative")
        if deduction > 0 and not reason:
            raise NotAllowed("reason", "扣款须填写原因", "Give the reason for the deduction")
        deposit_left, hold_live = self.security(app.id)
        limit = deduction_limit(deposit_left, hold_live)
        if deduction > limit:
            raise NotAllowed("deduction", f"扣款不能超过保证金（最多 ¥{yuan(limit)}）",
                             f"The deduction cannot be more than the deposit (at most ¥{yuan(limit)})")
        plan = plan_settlement(deduction, deposit_left, hold_live)
        now = self.clock()
        with self.repo.db.transaction():  # the closing and its evidence entry together
            closed = self.store.close_term(
                app.id, from_status=DELIVERED, to_status=CLOSED, deduction=deduction, reason=reason,
                actor_id=actor.id, actor_label=actor.label, now=now,
                note=f"结清 closed in good standing; deduction ¥{yuan(deduction)}" + (f": {reason}" if reason else ""))
            if closed is not None:
                self.repo.outbox_add(app.id, f"lease_closed:{app.id}", "lease_closed", {
                    "ends_on": closed.ends_on.isoformat(), "deduction": yuan(deduction), "currency": "CNY",
                    "reason_sha256": hashlib.sha256(reason.encode()).hexdigest() if reason else None,
                    "refund_due": yuan(plan.refund), "capture_due": yuan(plan.capture), "by": actor.kind}, now)
        if closed is None:
            raise NotAllowed("wrong_state", "这笔租赁已经结清", "This lease has been closed already")
        record_audit(self.audit, "lease.close", actor, app.dealer_id, app.id, {
            "deduction_fen": deduction, "reason": reason, "deposit_refund_fen": plan.refund,
            "hold_capture_fen": plan.capture, "release_hold": plan.release})
        return closed

    def leases_to_close(self, dealer_id: str | None = None) -> list[LeaseLine]:
        """Leases on hire whose term has ended and that ops have not closed yet (``dealer_id`` None: every dealer) —
        not those with a lease in servicing: its end settles the deposit (infra/end_of_term.py), and closing it here
        too would refund the deposit the end of term applies."""
        return [line for line in self.store.leases(dealer_id=dealer_id, ending_by=self.today(), settlements=(None,),
                                                   unserviced=True)
                if line.application_status == DELIVERED]

    def open_settlements(self, dealer_id: str | None = None) -> list[LeaseLine]:
        """Closed leases whose money has not all moved yet: due, or waiting for ops' attention."""
        return self.store.leases(dealer_id=dealer_id, settlements=("due", "attention"))

    def settle(self, only: str | None = None) -> dict[str, list[str]]:
        """Move the money of every closed lease whose settlement is due (the job behind ``leaseline payments settle``
        and the worker's ``payments.settle`` job), or of the lease ``only``: application ids by outcome — ``settled``,
        ``waiting`` (Stripe unreachable, a refund still being sent, or an unexpected error, logged: due again next run),
        ``attention`` (Stripe refused a step)."""
        outcome: dict[str, list[str]] = {"settled": [], "waiting": [], "attention": []}
        now = self.clock()
        for term in self.store.settlements_due(now - self.stale_after, only=only):
            if not self.store.claim_settlement(term.application_id, now, now - self.stale_after):
                continue  # another run has it
            try:
                result = self._settle_one(term, now)
            except Exception:  # one lease's bug or bad data must not stop the others' settlements
                log.exception("settling lease %s failed; it stays due", term.application_id)
                result = "waiting"
            if result == "waiting":  # let go: the next run tries again (unless a newer run took it meanwhile)
                self.store.finish_settlement(term.application_id, "due", claim=now)
            outcome[result].append(term.application_id)
        return outcome

    def _settle_one(self, term: LeaseTerm, claim: datetime) -> str:
        app_id = term.application_id
        lines = {p.kind: p for p in self.store.for_application(app_id)}
        deposit, hold = lines.get("deposit"), lines.get("hold")
        refund_id = settlement_refund_id(app_id, term.settle_attempts)
        made = self.store.refund(refund_id)
        # what the deposit held before this settlement's own refund (so that a second run plans the same)
        deposit_left = deposit.refundable if deposit is not None and deposit.status == "succeeded" else 0
        if made is not None and made.status != "failed":
            deposit_left += made.amount
        # A hold is not live at settlement in practice (it lapses 7 days after it is placed, before the handover,
        # and a term lasts a month at least); one recorded live is still released, or the rest of the deduction
        # captured from it, under keys of this attempt (a retry must not replay Stripe's earlier refusal).
        hold_live = hold.amount if hold is not None and self._live(hold) else 0
        if hold is not None and hold.status == "captured":  # captured by an earlier run that stopped short
            hold_live = hold.captured
        plan = plan_settlement(term.deduction, deposit_left, hold_live)
        notes: list[str] = []
        # 1. the deposit, less the deduction, back to the customer: one refund per lease
        if made is None and plan.refund > 0 and deposit is not None and deposit.intent_id:
            made = self.store.add_refund_once(refund_id, deposit.id, plan.refund,
                                              "租期结束退还保证金 deposit refund at the end of the term",
                                              term.closed_by)
            if made is None:  # the deposit was refunded by hand meanwhile: nothing is left to send
                notes.append("deposit refunded elsewhere")
            else:
                try:
                    sent = self.gateway.refund(deposit.intent_id, amount=made.amount,
                                               idempotency_key=f"refund:{made.id}", reason="requested_by_customer",
                                               metadata={"refund_id": made.id, "payment_id": deposit.id,
                                                         "settlement": app_id})
                except PaymentsUnavailable:
                    return "waiting"  # reserved and pending: RefundService.retry_refunds sends it again (same key)
                except (PaymentRefused, PaymentDeclined) as exc:
                    log.error("Stripe refused the settlement refund %s: %s", made.id, exc)
                    self.store.finish_refund(made.id, None, "failed")
                    return self._attention(term, claim, f"refund refused: {exc}"[:255])
                self.store.finish_refund(made.id, sent.id, "succeeded" if sent.status != "failed" else "failed")
                made = self.store.refund(refund_id)
        if made is not None:
            if made.status == "pending":
                return "waiting"
            if made.status == "failed":
                return self._attention(term, claim, "the deposit refund failed")
            self.repo.outbox_add(app_id, f"refund:{made.id}", "refund", {
                "payment_id": made.payment_id, "kind": "deposit", "amount": yuan(made.amount), "currency": "CNY",
                "stripe_refund": made.stripe_refund_id, "settlement": True}, self.clock())
        # 2. a hold still live: the rest of the deduction captured from it, or the hold released
        if hold is not None and hold_live and hold.status == "held" and hold.intent_id:
            attempt = term.settle_attempts
            try:
                if plan.capture > 0:
                    intent = self.gateway.capture(hold.intent_id, amount=plan.capture,
                                                  idempotency_key=f"settle-capture:{app_id}:{attempt}")
                else:
                    intent = self.gateway.cancel(hold.intent_id, idempotency_key=f"settle-release:{app_id}:{attempt}")
            except PaymentsUnavailable:
                return "waiting"
            except (PaymentRefused, PaymentDeclined) as exc:
                log.error("Stripe refused to settle the hold %s: %s", hold.id, exc)
                try:  # perhaps it lapsed or was settled at Stripe already: follow what Stripe says
                    intent = self.gateway.retrieve_intent(hold.intent_id)
                except PaymentsError:
                    return self._attention(term, claim, f"hold refused: {exc}"[:255])
            hold = self.intents.apply_intent(hold.id, intent)
            if hold.status == "held":
                return self._attention(term, claim, "the hold could not be released or captured")
        if plan.uncovered:
            notes.append(f"¥{yuan(plan.uncovered)} of the deduction not covered")
        refunded = self.settlement_refunded(app_id, term.settle_attempts)
        captured = hold.captured if hold is not None and hold.status == "captured" and plan.capture else 0
        if not self.store.finish_settlement(app_id, "settled", claim=claim, settled_at=self.clock(), refunded=refunded,
                                            captured=captured, settle_note="; ".join(notes)[:255] or None):
            return "waiting"  # a newer run took the lease over (this one was taken for stale): it records the outcome
        record_audit(self.audit, "lease.settle", None, term.dealer_id, app_id, {
            "deposit_refund_fen": refunded, "hold": hold.status if hold is not None else None,
            "uncovered_fen": plan.uncovered})
        return "settled"

    def _attention(self, term: LeaseTerm, claim: datetime, why: str) -> str:
        if not self.store.finish_settlement(term.application_id, "attention", claim=claim, settle_note=why[:255]):
            return "waiting"  # a newer run has the lease
        record_audit(self.audit, "lease.settle", None, term.dealer_id, term.application_id, {"attention": why},
                     outcome="failure")
        return "attention"

    def settlement_refunded(self, application_id: str, attempts: int) -> int:
        """What the settlement refunded of the deposit (fen): the succeeded refunds of every attempt up to
        ``attempts`` (an earlier attempt may have refunded it before a later step needed ops' retry)."""
        total = 0
        for attempt in range(attempts + 1):
            made = self.store.refund(settlement_refund_id(application_id, attempt))
            if made is not None and made.status == "succeeded":
                total += made.amount
        return total

    def retry_settlement(self, actor: Actor, app: Application) -> dict[str, list[str]]:
        """Ops dealt with what Stripe refused: the settlement is due again, and tried now."""
        if not self.store.reopen_settlement(app.id):
            raise NotAllowed("wrong_state", "这笔结清无需重试", "This settlement needs no retry")
        record_audit(self.audit, "lease.settle_retry", actor, app.dealer_id, app.id, {})
        return self.settle(only=app.id)


def settlement_refund_id(application_id: str, attempt: int = 0) -> str:
    """The id of a lease's settlement refund: derived from the lease (and ops' retry after a refusal), so each
    attempt makes at most one."""
    return str(uuid.uuid5(SETTLEMENT_REFUNDS, f"{application_id}:deposit:{attempt}"))
