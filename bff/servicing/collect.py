"""Collecting rent (issue 18 §3): every payment into a lease in force booked exactly once, the customer paying on the
phone through Stripe, and automatic collection through the :class:`infra.collections.Collector` port.

**Booking** (:meth:`RentCollection.book`): a succeeded payment — its amount in fen, its source, our idempotency key
— is allocated over what the lease owes now in the policy's order (``[servicing] allocation_order``, default late
charge → interest → principal, oldest instalment first; servicing.allocation), each instalment's paid parts and state
updated and one servicing movement per instalment touched, in one transaction under the lease's row lock
(infra/collections.py ``SqlCollections.book``). The key is booked once: a webhook replayed, a double tap, two workers
find the receipt and book nothing. A surplus — and the whole of a payment for a lease no longer active — is refunded
at once through the payment gateway (or the bank) with the key ``refund:receipt:<receipt>``, reported in the audit log
(``servicing.payment_refunded``) and the log; a refund whose answer was lost is looked up, then sent again, by the
``servicing.retry_refunds`` sweep.

**Paying on the phone** (bff/servicing/pay.py): :meth:`RentCollection.pay_by_hand` makes one attempt per form the
page served (its token is in the attempt's key, so a double tap charges once), a Stripe PaymentIntent for what is due
now or for one chosen instalment, Idempotency-Key the attempt's key; it books on Stripe's answer, and on the webhook
(:meth:`RentCollection.on_stripe_event`) — whichever comes first books, the other is a replay. Declines never lock
anyone out: each try is a new attempt.

**Automatic collection**, on the due date as the mandate says (the next business day when it is not one): the close
of business of the day before (it runs just after midnight, when that day has begun in Beijing) makes in its hook
(:meth:`RentCollection.close_hook`), in the batch's transaction, one attempt per rent to collect that day on a lease
whose customer's mandate has automatic collection on (and for the purchase price, less the deposit that pays it first;
never the final rent), and defers one ``servicing.collect`` job for it, not before the day's window for texts opens
(09:00 Beijing by default: the policy's ``[reminders]`` ``send_from``; :func:`servicing.arrears.send_at`). The job
(:meth:`RentCollection.collect`) cancels the debit when another payment that may pay the rent is in flight (the
customer paying on the phone, a settlement, a prepayment: infra/collections.py ``in_flight``; no text), else asks
the collector with the attempt's key (the same charge on a retry), a success is booked, a delayed result (a bank's
``processing``) is polled by the ``servicing.poll_collections`` sweep. A failure — insufficient funds, an agreement
revoked (the mandate is then revoked too), a card declined or needing the customer's bank — however it is learnt (the
job, or Stripe's webhook first), defers with it one ``servicing.text_not_collected`` job
(:meth:`RentCollection.text_not_collected`), sent by day (a failure learnt at night waits for the window to open): the
customer gets a link to pay by hand (``rent_not_collected``, once per attempt; nothing when the rent was paid
meanwhile).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from bff.payments.common import utc_now
from bff.payments.common import yuan
from infra.applications import Scope
from infra.audit import SqlAuditLog
from infra.collections import AUTO
from infra.collections import CREATED
from infra.collections import CUSTOMER
from infra.collections import DIRECT_DEBIT
from infra.collections import FAILED
from infra.collections import FINAL
from infra.collections import PROCESSING
from infra.collections import RENT_PAYMENT
from infra.collections import REQUIRES_ACTION
from infra.collections import STRIPE
from infra.collections import SUCCEEDED
from infra.collections import Attempt
from infra.collections import Collected
from infra.collections import CollectionUnavailable
from infra.collections import Collector
from infra.collections import Owed
from infra.collections import Receipt
from infra.collections import SandboxDirectDebit
from infra.collections import SqlCollections
from infra.collections import StripeOffSession
from infra.db.models import LeaseRow
from infra.jobs import Job
from infra.jobs import defer_jobs
from infra.payments import Intent
from infra.payments import PaymentDeclined
from infra.payments import PaymentGateway
from infra.payments import PaymentRefused
from infra.payments import PaymentsUnavailable
from infra.servicing import ACTIVE
from infra.servicing import BatchEvents
from infra.servicing import CloseHook
from infra.sms import SmsSender
from servicing.allocation import Component
from servicing.arrears import send_at

if TYPE_CHECKING:
    from bff.bootstrap import Services
    from bff.config import Settings

log = logging.getLogger(__name__)
#: a delayed result is asked about again after this long
POLL_AFTER = timedelta(minutes=5)
#: a refund still pending this long (its answer lost, or Stripe away) is looked up and sent again
REFUND_RETRY_AFTER = timedelta(minutes=1)
#: what marks our rent PaymentIntents' metadata (the down payment's carry ``payment_id``)
ATTEMPT_META = "collection_attempt"
#: the Payment Element's payment method types for a rent (card, Alipay, WeChat Pay: as the down payment)
RENT_METHODS = ("card", "alipay", "wechat_pay")
#: when automatic collections run and their failures are texted, Beijing time (the policy's [reminders] window)
DAY_WINDOW = (time(9), time(20))
COLLECT_TASK, TEXT_TASK, QUEUE = "servicing.collect", "servicing.text_not_collected", "servicing"


class CannotPay(Exception):
    """A payment the customer cannot make now (nothing due, the lease closed, an instalment not theirs)."""

    def __init__(self, code: str, text_zh: str, text_en: str) -> None:
        super().__init__(code)
        self.code, self.text_zh, self.text_en = code, text_zh, text_en


@dataclass(frozen=True)
class PayOutcome:
    """A payment by hand: the attempt as it is now, the Stripe intent (for the Payment Element: its client secret),
    and the receipt when it was booked."""

    attempt: Attempt
    intent: Intent | None
    receipt: Receipt | None


class RentCollection:
    """``collectors``: the automatic collection adapters by channel (``direct_debit``, ``stripe``); ``mobile_of``: the
    customer's mobile number of an application (None: no text); ``pay_link``: the address of a lease's pay page, for
    the text; ``window``: when automatic collections run and their failures are texted (Beijing time)."""

    def __init__(self, repo: SqlCollections, gateway: PaymentGateway, collectors: Mapping[str, Collector], *,
                 order: Sequence[str], sms: SmsSender | None = None,
                 mobile_of: Callable[[str], str | None] = lambda application_id: None,
                 pay_link: Callable[[str], str] = lambda lease_id: f"/leases/{lease_id}/pay",
                 audit: SqlAuditLog | None = None, clock: Callable[[], datetime] = utc_now,
                 refund_retry_after: timedelta = REFUND_RETRY_AFTER,
                 window: tuple[time, time] = DAY_WINDOW, retry_days: Sequence[int] = ()) -> None:
        self.repo, self.gateway, self.collectors = repo, gateway, dict(collectors)
        self.order = cast(tuple[Component, ...], tuple(order))
        self.sms, self.mobile_of, self.pay_link, self.audit, self.clock = sms, mobile_of, pay_link, audit, clock
        self.refund_retry_after, self.window = refund_retry_after, window
        #: business days after a failed automatic collection's day on which it is tried again (the policy's)
        self.retry_days = tuple(retry_days)

    # -- 1. booking a payment once -----------------------------------------------------------------------------------
    def book(self, lease_id: str, amount: int, source: str, key: str, *, reference: str | None = None,
             attempt_id: str | None = None, instalment_id: int | None = None) -> Receipt:
        """Book the succeeded payment ``key`` into the lease once (see the module's docstring); a surplus or a payment
        for a closed lease is refunded at once (or by the retry sweep when the refund cannot be sent now)."""
        receipt = self.repo.book(lease_id=lease_id, amount=amount, source=source, key=key, order=self.order,
                                 reference=reference, attempt_id=attempt_id, instalment_id=instalment_id,
                                 now=self.clock())
        if receipt.replay:
            log.info("payment %s for lease %s booked before: nothing booked again", key, lease_id)
            return receipt
        log.info("payment %s for lease %s: %s fen booked, %s to refund", key, lease_id, receipt.applied,
                 receipt.surplus)
        if receipt.refund_status == "pending":
            self._refund(receipt)
            return self.repo.receipt(key) or receipt
        return receipt

    def _refund(self, receipt: Receipt) -> bool:
        """Send the refund of ``receipt``'s surplus; True once it is recorded. Stripe (or the bank) away: it stays
        pending for :meth:`retry_refunds`."""
        key = f"refund:receipt:{receipt.id}"
        try:
            if receipt.source == STRIPE:
                ref = self._stripe_refund(receipt, key)
            else:
                ref = self.collectors[receipt.source].refund(receipt.reference or "", amount=receipt.surplus, key=key)
            status = "succeeded"
        except (PaymentsUnavailable, CollectionUnavailable) as exc:
            log.warning("refund of payment %s could not be sent now (%s): retried later", receipt.key, exc)
            return False
        except (PaymentRefused, PaymentDeclined, ValueError) as exc:
            log.error("refund of payment %s refused: %s", receipt.key, exc)
            ref, status = None, "failed"
        if not self.repo.finish_refund(receipt.id, status, ref, self.clock()):
            return True  # another process recorded it first
        why = "lease_closed" if receipt.refund_reason == "lease_closed" else "surplus"
        log.warning("payment %s for lease %s: %s fen refunded automatically (%s): %s", receipt.key, receipt.lease_id,
                    receipt.surplus, why, status)
        if self.audit is not None:
            self.audit.append("servicing.payment_refunded", "success" if status == "succeeded" else "failure",
                              actor_id=None, actor_label="system:collections", target=receipt.lease_id,
                              details={"receipt": receipt.id, "payment": receipt.key, "reason": why,
                                       "amount_fen": receipt.surplus, "received_fen": receipt.amount,
                                       "source": receipt.source, "reference": receipt.reference, "refund": ref})
        return True

    def _stripe_refund(self, receipt: Receipt, key: str) -> str:
        if not receipt.reference:
            raise ValueError("a Stripe payment without its PaymentIntent")
        metadata = {"receipt_id": receipt.id, "lease_id": receipt.lease_id}
        return self.gateway.refund(receipt.reference, amount=receipt.surplus, idempotency_key=key,
                                   reason="requested_by_customer", metadata=metadata).id

    def retry_refunds(self) -> int:
        """The ``servicing.retry_refunds`` sweep: refunds still pending after :data:`REFUND_RETRY_AFTER` — the refund
        Stripe made for ours if there is one (its metadata names our receipt: Stripe keeps idempotency keys 24 hours,
        localstripe none), else sent again with its first key."""
        done = 0
        for receipt in self.repo.pending_refunds():
            if self.clock() - receipt.booked_at < self.refund_retry_after:
                continue
            if receipt.source == STRIPE and receipt.reference:
                try:
                    made = next((r for r in self.gateway.list_refunds(payment_intent=receipt.reference)
                                 if r.metadata.get("receipt_id") == receipt.id), None)
                except PaymentsUnavailable:
                    return done
                if made is not None:
                    if self.repo.finish_refund(receipt.id, "succeeded", made.id, self.clock()):
                        done += 1
                    continue
            done += self._refund(receipt)
        return done

    # -- 2. paying by hand (Stripe) --------------------------------------------------------------------------------
    def due_now(self, lease_id: str, instalment_id: int | None = None) -> list[Owed]:
        return [o for o in self.repo.owed(lease_id, instalment_id) if o.total > 0]

    def pay_by_hand(self, lease: LeaseRow, token: str, *, instalment_id: int | None = None,
                    payment_method: str | None = None, methods: Sequence[str] | None = None,
                    return_url: str | None = None, purpose: str = RENT_PAYMENT, subject_id: str | None = None,
                    amount: int | None = None) -> PayOutcome:
        """One attempt to pay what ``lease`` owes now (or its instalment ``instalment_id``), keyed by the page's
        ``token``: the same token again (a double tap, the form sent again) sends nothing to Stripe and answers the
        first attempt. With ``payment_method`` (TEST MODE) the intent is confirmed at once and booked on Stripe's
        answer; without it (the Payment Element) it is made unconfirmed for the browser to confirm. Another
        ``purpose`` than rent (a settlement quote, a prepayment: ``subject_id``) pays the ``amount`` its caller
        checked, booked by :meth:`infra.collections.SqlCollections.book` for that purpose."""
        key = f"pay:{lease.id}:{token}"[:120]
        first = self.repo.attempt_by_key(key)
        if first is not None:  # this form was sent before: its attempt, as it is now
            return self._as_is(first)
        if lease.status != ACTIVE:
            raise CannotPay("closed", "这份租约已结清，无需付款", "This lease is closed: nothing is to be paid")
        if purpose == RENT_PAYMENT:
            owed = self.due_now(lease.id, instalment_id)
            if instalment_id is not None and not owed:
                raise CannotPay("no_instalment", "这一期无需付款", "Nothing is to be paid on this instalment")
            amount = sum(o.total for o in owed)
            if amount <= 0:
                raise CannotPay("nothing_due", "目前没有应付的租金", "No rent is due now")
        elif amount is None or amount <= 0 or subject_id is None:
            raise ValueError(f"a {purpose} payment needs its amount and its subject")
        attempt, created = self.repo.start_attempt(
            lease_id=lease.id, amount=amount, channel=STRIPE, trigger=CUSTOMER, key=key,
            business_date=self.repo.business_date(), now=self.clock(), instalment_id=instalment_id,
            purpose=purpose, subject_id=subject_id)
        if not created:
            return self._as_is(attempt)
        metadata = {ATTEMPT_META: attempt.id, "lease_id": lease.id, "kind": purpose,
                    "instalment": str(instalment_id or ""), "subject": subject_id or ""}
        try:
            intent = self.gateway.create_intent(
                amount=amount, currency="cny", idempotency_key=attempt.key, metadata=metadata,
                payment_method=payment_method, confirm=payment_method is not None,
                description=f"Leaseline {lease.contract_number} {purpose}", return_url=return_url,
                methods=None if payment_method is not None else (methods or RENT_METHODS))
        except PaymentDeclined as exc:
            values: dict[str, Any] = {"failure_code": (exc.code or "declined")[:40],
                                      "failure_message": (exc.message or "")[:255]}
            if exc.intent is not None:
                values["provider_ref"] = exc.intent.id
            moved = self.repo.move(attempt.id, (attempt.status,), FAILED, self.clock(), **values)
            return PayOutcome(moved or attempt, None, None)
        except PaymentsUnavailable:
            self.repo.move(attempt.id, (attempt.status,), FAILED, self.clock(), failure_code="unavailable")
            raise
        except PaymentRefused as exc:
            log.error("Stripe refused the rent payment %s: %s", attempt.id, exc)
            moved = self.repo.move(attempt.id, (attempt.status,), FAILED, self.clock(), failure_code="refused")
            return PayOutcome(moved or attempt, None, None)
        self.repo.move(attempt.id, (attempt.status,), attempt.status, self.clock(), provider_ref=intent.id)
        return self.apply_intent(intent)

    def _as_is(self, attempt: Attempt) -> PayOutcome:
        intent = None
        if attempt.provider_ref and attempt.status not in FINAL:
            intent = self.gateway.retrieve_intent(attempt.provider_ref)
            return self.apply_intent(intent)
        return PayOutcome(attempt, intent, self.repo.receipt(attempt.key))

    def refresh(self, attempt: Attempt) -> PayOutcome:
        """The attempt as Stripe has it now (the Payment Element's return, 3-D Secure done, "check again")."""
        if not attempt.provider_ref or attempt.channel != STRIPE:
            return PayOutcome(attempt, None, self.repo.receipt(attempt.key))
        return self.apply_intent(self.gateway.retrieve_intent(attempt.provider_ref))

    def apply_intent(self, intent: Intent) -> PayOutcome:
        """Bring our attempt in line with Stripe's PaymentIntent (asked from Stripe, never a webhook's body): booked
        when it succeeded (once: the attempt's key), failed with its code, waiting for the customer's bank."""
        attempt_id = intent.metadata.get(ATTEMPT_META, "")
        attempt = self.repo.attempt(attempt_id) if attempt_id else None
        if attempt is None or (attempt.provider_ref not in (None, intent.id)) or intent.currency.lower() != "cny":
            raise LookupError(f"{intent.id} is not the intent of a rent payment of ours")
        now = self.clock()
        if attempt.provider_ref is None:
            attempt = self.repo.move(attempt.id, (attempt.status,), attempt.status, now, provider_ref=intent.id) or \
                attempt
        if intent.status == "succeeded" and intent.amount_received > 0:
            receipt = self.book(attempt.lease_id, intent.amount_received, STRIPE, attempt.key, reference=intent.id,
                                attempt_id=attempt.id, instalment_id=attempt.instalment_id)
            return PayOutcome(self.repo.attempt(attempt.id) or attempt, intent, receipt)
        if attempt.status not in FINAL:
            if intent.status == "requires_action":
                attempt = self.repo.move(attempt.id, (attempt.status,), REQUIRES_ACTION, now,
                                         job=self._text_job(attempt)) or attempt
            elif intent.status == "processing":
                attempt = self.repo.move(attempt.id, (attempt.status,), PROCESSING, now,
                                         poll_after=now + POLL_AFTER) or attempt
            elif intent.status == "canceled" or (intent.status == "requires_payment_method" and intent.last_error):
                attempt = self.repo.move(attempt.id, (attempt.status,), FAILED, now, job=self._text_job(attempt),
                                         failure_code=(intent.last_error or intent.status)[:40]) or attempt
        return PayOutcome(attempt, intent, self.repo.receipt(attempt.key))

    def on_stripe_event(self, kind: str, obj: Mapping[str, Any], intent_id: str | None) -> str | None:
        """A Stripe webhook event about one of our rent PaymentIntents (bff/payments/webhooks.py hands over the
        events that name no down payment): the intent is asked from Stripe and applied (:meth:`apply_intent`); None
        for an event that is not about a rent."""
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict) or ATTEMPT_META not in metadata or not kind.startswith("payment_intent."):
            return None
        if intent_id is None:
            return "refused: no PaymentIntent id"
        try:
            intent = self.gateway.retrieve_intent(intent_id)
        except PaymentRefused:
            return "refused: unknown to Stripe"
        try:
            done = self.apply_intent(intent)
        except LookupError:
            return "refused: not a rent payment of ours"
        if done.receipt is not None:
            return "applied: rent booked" if not done.receipt.replay else "ignored: rent booked before"
        return f"applied: rent {done.attempt.status}"

    # -- 3. automatic collection ---------------------------------------------------------------------------------
    def close_hook(self, events: BatchEvents) -> None:
        """The close of business's hook (:func:`collection_hook`)."""
        collection_hook(self.repo, self.clock, self.window, self.retry_days)(events)

    def collect(self, attempt_id: str) -> str:
        """The ``servicing.collect`` job: the attempt's charge asked of its collector with the attempt's key (a retry
        of the job asks again with the same key: the same charge), then booked, polled later, or — failed — the
        customer texted a link to pay by hand. Returns the attempt's status."""
        attempt = self.repo.attempt(attempt_id)
        if attempt is None:
            return "missing"
        if attempt.status in FINAL or attempt.status == REQUIRES_ACTION:
            return attempt.status
        if attempt.status == PROCESSING and attempt.provider_ref:
            if attempt.poll_after is not None and attempt.poll_after > self.clock():
                return PROCESSING  # the bank answers later: asked again by the poll, not before
            return self._settle(attempt, self.collectors[attempt.channel].status(attempt.provider_ref))
        mandate = self.repo.mandate(attempt.mandate_id) if attempt.mandate_id else None
        lease = self.repo.lease(attempt.lease_id)
        if mandate is None or mandate.status != "active" or lease is None or lease.status != ACTIVE:
            moved = self.repo.move(attempt.id, ("created",), "canceled", self.clock(), failure_code="no_mandate")
            return (moved or attempt).status
        if attempt.channel not in self.collectors:  # no adapter for it here (no bank's direct debit in production)
            return self._settle(attempt, Collected(FAILED, None, 0, "no_collector", "no collector for the channel"))
        owed = sum(o.total for o in self.due_now(attempt.lease_id, attempt.instalment_id))
        if owed <= 0:  # paid by hand meanwhile
            moved = self.repo.move(attempt.id, ("created",), "canceled", self.clock(), failure_code="paid")
            return (moved or attempt).status
        other = self.repo.another_in_flight(attempt, self.clock())
        if other is not None:  # a payment that may pay it began since the close (or still runs): no second debit
            log.info("collection %s canceled: %s payment %s of the lease is in flight (%s)", attempt.id,
                     other.purpose, other.id, other.status)
            moved = self.repo.move(attempt.id, ("created",), "canceled", self.clock(), failure_code="in_flight")
            return (moved or attempt).status
        amount = min(owed, attempt.amount)
        collected = self.collectors[attempt.channel].collect(
            amount=amount, key=attempt.key, mandate=mandate,
            metadata={ATTEMPT_META: attempt.id, "lease_id": attempt.lease_id, "kind": "rent", "trigger": AUTO})
        return self._settle(attempt, collected)

    def _settle(self, attempt: Attempt, collected: Collected) -> str:
        now = self.clock()
        if collected.ref and attempt.provider_ref is None:
            attempt = self.repo.move(attempt.id, (attempt.status,), attempt.status, now,
                                     provider_ref=collected.ref) or attempt
        if collected.status == SUCCEEDED:
            self.book(attempt.lease_id, collected.amount, attempt.channel, attempt.key, reference=collected.ref,
                      attempt_id=attempt.id, instalment_id=attempt.instalment_id)
            return SUCCEEDED
        if collected.status == PROCESSING:
            moved = self.repo.move(attempt.id, ("created", PROCESSING), PROCESSING, now,
                                   polls=attempt.polls + (attempt.status == PROCESSING), poll_after=now + POLL_AFTER)
            return (moved or attempt).status
        to = REQUIRES_ACTION if collected.status == REQUIRES_ACTION else FAILED
        moved = self.repo.move(attempt.id, ("created", PROCESSING), to, now, job=self._text_job(attempt),
                               failure_code=(collected.code or to)[:40],
                               failure_message=(collected.message or "")[:255] or None, poll_after=None)
        if collected.code == "agreement_revoked" and attempt.mandate_id:
            self._revoked_at_the_bank(attempt)
        # None: moved first by another process (Stripe's webhook), which deferred the text: the attempt as it is now
        return (moved or self.repo.attempt(attempt.id) or attempt).status

    def _text_job(self, attempt: Attempt) -> Job | None:
        """The ``servicing.text_not_collected`` job an automatic attempt's failure defers with it (by day: a failure
        learnt at night waits for the window's opening); none for a payment the customer makes on the phone."""
        if attempt.trigger != AUTO:
            return None
        return Job(TEXT_TASK, {"attempt_id": attempt.id}, QUEUE, queueing_lock=f"{TEXT_TASK}:{attempt.id}",
                   at=send_at(self.clock(), *self.window))

    def _revoked_at_the_bank(self, attempt: Attempt) -> None:
        """The bank says the customer revoked the 协议支付 agreement: the mandate is revoked here too (no debit is
        tried under it again; the customer pays by hand or gives a new mandate), audit-logged once."""
        assert attempt.mandate_id is not None
        if not self.repo.revoke_mandate(attempt.mandate_id, self.clock()):
            return
        log.warning("collection %s: the bank says the agreement was revoked: mandate %s revoked", attempt.id,
                    attempt.mandate_id)
        if self.audit is not None:
            self.audit.append("servicing.mandate_revoked", "success", actor_id=None, actor_label="system:collections",
                              target=attempt.lease_id, details={"mandate": attempt.mandate_id, "attempt": attempt.id,
                                                                "reason": "agreement_revoked"})

    def poll(self) -> int:
        """The ``servicing.poll_collections`` sweep: delayed results asked about again."""
        done = 0
        for attempt in self.repo.to_poll(self.clock()):
            try:
                self.collect(attempt.id)
            except CollectionUnavailable as exc:
                log.warning("collection %s: the collector is away (%s)", attempt.id, exc)
                return done
            done += 1
        return done

    def text_not_collected(self, attempt_id: str) -> None:
        """The ``servicing.text_not_collected`` job: text the customer, once per attempt, that the rent was not
        collected and where to pay it by hand — nothing when the attempt has not failed (3-D Secure done meanwhile)
        or the rent was paid meanwhile. SmsUnavailable goes to the worker, which tries again later."""
        attempt = self.repo.attempt(attempt_id)
        if self.sms is None or attempt is None or attempt.status not in (FAILED, REQUIRES_ACTION):
            return
        if attempt.instalment_id is not None and not self.due_now(attempt.lease_id, attempt.instalment_id):
            log.info("collection %s failed, but the rent was paid meanwhile: no text", attempt.id)
            return
        lease = self.repo.lease(attempt.lease_id)
        mobile = self.mobile_of(lease.application_id) if lease is not None else None
        if lease is None or not mobile:
            log.warning("collection %s failed (%s): no mobile number to text", attempt.id, attempt.failure_code)
            return
        if not self.repo.claim_notice(attempt.id, self.clock()):
            return
        try:
            self.sms.send(mobile, "rent_not_collected", {"amount": yuan(attempt.amount),
                                                         "link": self.pay_link(lease.id)}, dealer_id=lease.dealer_id)
        except Exception:
            self.repo.release_notice(attempt.id)  # the job's retry texts it
            raise



class RentReconciliation:
    """Stripe's rent PaymentIntents (ours carry :data:`ATTEMPT_META`) compared with our attempts and receipts, for
    bff/payments/reconciliation.py (``leaseline payments reconcile``, /payments): read only, it reports and changes
    nothing. Use one per run: :meth:`unseen` reports what :meth:`check` did not meet."""

    def __init__(self, repo: SqlCollections) -> None:
        self.repo, self.seen = repo, set[str]()

    def check(self, intent: Intent) -> list[dict[str, Any]]:
        """The disagreements about one of Stripe's intents (none for an intent that is no rent of ours)."""
        attempt_id = intent.metadata.get(ATTEMPT_META)
        if not attempt_id:
            return []
        attempt = self.repo.attempt(attempt_id)
        if attempt is None:
            return [{"problem": "unknown_rent_attempt", "intent": intent.id, "attempt": attempt_id}]
        if attempt.provider_ref != intent.id:
            if intent.status == "succeeded":  # money taken on an intent we do not follow
                return [{"problem": "untracked_intent", "intent": intent.id, "attempt": attempt.id}]
            return []
        self.seen.add(attempt.id)
        receipts = self.repo.receipts_of(intent.id)
        booked = sum(r.amount for r in receipts)
        refunded = sum(r.surplus for r in receipts if r.refund_status == "succeeded")
        problems: list[dict[str, Any]] = []
        if intent.status == "succeeded" and not receipts:
            problems.append({"problem": "rent_not_booked", "intent": intent.id, "attempt": attempt.id,
                             "stripe": intent.amount_received})
        elif booked != intent.amount_received:
            problems.append({"problem": "rent_booked", "intent": intent.id, "attempt": attempt.id, "ours": booked,
                             "stripe": intent.amount_received})
        if refunded != intent.amount_refunded:
            problems.append({"problem": "rent_refunded", "intent": intent.id, "attempt": attempt.id,
                             "ours": refunded, "stripe": intent.amount_refunded})
        return problems

    def unseen(self) -> list[dict[str, Any]]:
        """Our rent payments that succeeded on an intent Stripe did not list."""
        return [{"problem": "missing_at_stripe", "attempt": a.id, "intent": a.provider_ref}
                for a in self.repo.charged(STRIPE) if a.id not in self.seen]


def collection_hook(repo: SqlCollections, clock: Callable[[], datetime] = utc_now,
                    window: tuple[time, time] = DAY_WINDOW, retry_days: Sequence[int] = ()) -> CloseHook:
    """The close of business's hook: in the close of date B, for the rents of a batch's leases to collect on B + 1
    (their due date, or the next business day; SqlCollections.plan_collections) under a mandate with automatic
    collection on, one attempt each (key ``auto:<instalment>:<B + 1>``) and its ``servicing.collect`` job, not before
    ``window`` opens (the close of B runs just after midnight: the debit goes at 09:00 on B + 1), in the batch's
    transaction — deferred with the change or not at all; a date closed again defers nothing new (a job of the
    attempt already waiting collects it). A collection that failed is tried again ``retry_days`` business days after
    its collection day (key ``auto:<instalment>:<that day>``). The batch's attempts are made by one statement and
    their jobs deferred by one (:func:`infra.collections.defer_jobs`)."""

    def hook(events: BatchEvents) -> None:
        now = clock()
        at = send_at(now, *window)
        defer_jobs(events.session, [
            Job(COLLECT_TASK, {"attempt_id": a.id}, QUEUE, queueing_lock=f"{COLLECT_TASK}:{a.id}", at=at)
            for a in repo.plan_collections(events.session, events.lease_ids, events.business_date, now, retry_days)
            if a.status == CREATED])

    return hook


_built: dict[int, RentCollection] = {}


def rent_collection(services: Services, settings: Settings) -> RentCollection:
    """The rent collection of ``services`` (built once per process and services): Stripe through the payment gateway
    for rents paid on the phone and saved cards, the sandbox bank's direct debit (never in production: no bank is
    wired there, and an agreement's rent is then paid by hand), the policy's allocation order; Stripe's webhook events
    about rents are handed to it."""
    found = _built.get(id(services))
    if found is not None:
        return found
    gateway = services.payments.checkout.gateway
    collectors: dict[str, Collector] = {STRIPE: StripeOffSession(settings.stripe_secret_key, gateway,
                                                                 api_base=settings.stripe_api_base or None)}
    if settings.env != "production":
        collectors[DIRECT_DEBIT] = SandboxDirectDebit()
    # where the text about a rent not collected sends the customer: the public address's /leases/<lease>/pay (the
    # page asks the customer to sign in through 我的租赁 first when needed); validated at start-up (bff/config.py)
    base = settings.public_url

    def mobile_of(application_id: str) -> str | None:
        app = services.applications.repo.get(application_id, Scope())
        return services.applications.draft(app).get("mobile") if app is not None else None

    reminders = services.plans.policy.reminders
    built = RentCollection(SqlCollections(services.db), gateway, collectors,
                           order=services.plans.policy.allocation_order, sms=services.sms, mobile_of=mobile_of,
                           pay_link=lambda lease_id: f"{base}/leases/{lease_id}/pay", audit=services.audit,
                           window=(reminders.send_from, reminders.send_until),
                           retry_days=services.plans.policy.collection_retry_days)
    services.payments.webhooks.others.append(built.on_stripe_event)
    _built[id(services)] = built
    return built
