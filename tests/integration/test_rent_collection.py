"""Collecting rent (issue 18 §3) on a real PostgreSQL database of its own and localstripe: a payment booked into a
lease exactly once (two threads, a webhook replayed, a double tap), a partial payment allocated to the fen (late
charge → interest → principal, oldest first: checked against a hand reckoning), a surplus and a payment for a closed
lease refunded at Stripe and reported, the sandbox bank's direct debit (success, insufficient funds, agreement revoked,
a delayed result) started by the close of business, and a card declined three times that still pays by hand."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import stripe
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bff.payments.reconciliation import Reconciliation
from bff.servicing.close import CloseOfBusiness
from bff.servicing.collect import ATTEMPT_META
from bff.servicing.collect import CannotPay
from bff.servicing.collect import RentCollection
from bff.servicing.mandates import MANDATE_VERSION
from infra.audit import SqlAuditLog
from infra.collections import DIRECT_DEBIT
from infra.collections import STRIPE
from infra.collections import SandboxDirectDebit
from infra.collections import SqlCollections
from infra.collections import StripeOffSession
from infra.db import Database
from infra.db.models import AuditEventRow
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import PaymentRow
from infra.db.models import ServicingMovementRow
from infra.payments_store import SqlPayments
from infra.servicing import SqlServicing
from infra.sms import SandboxOutboxSms
from plans.policy import load_policy
from tests.conftest import postgres_database
from tests.integration.test_servicing_close import DEALER
from tests.integration.test_servicing_close import late_charge
from tests.integration.test_servicing_close import open_lease
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
MOBILE = "13900000018"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from infra.db.migrate import upgrade

    for found in postgres_database("leaseline_collect"):
        upgrade(found)
        yield found


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(url: str, stripe_server: Any) -> Iterator[dict[str, Any]]:
    """Empty servicing tables, a dealer, the collection service on localstripe and the sandbox bank."""
    database = Database(url)
    with database.session() as s:
        s.execute(text("TRUNCATE lease_receipts, collection_attempts, collection_mandates, servicing_movements, "
                       "instalments, leases, close_runs, business_calendar, sms_outbox, audit_events CASCADE"))
        s.execute(text("DELETE FROM procrastinate_jobs"))
        if s.get(DealerRow, DEALER) is None:
            s.add(DealerGroupRow(id="g-servicing", name="servicing group"))
            s.flush()
            s.add(DealerRow(id=DEALER, group_id="g-servicing", name="servicing dealer", city="上海"))
    clock, gateway = Clock(), stripe_server.gateway()
    collectors = {DIRECT_DEBIT: SandboxDirectDebit(),
                  STRIPE: StripeOffSession(stripe_server.secret_key, gateway, api_base=stripe_server.api_base)}
    svc = RentCollection(SqlCollections(database), gateway, collectors, order=load_policy().allocation_order,
                         sms=SandboxOutboxSms(database), mobile_of=lambda application_id: MOBILE,
                         pay_link=lambda lease_id: f"https://leaseline.example/leases/{lease_id}/pay", clock=clock,
                         audit=SqlAuditLog(database), refund_retry_after=timedelta(0))
    yield {"db": database, "svc": svc, "clock": clock, "servicing": SqlServicing(database), "gateway": gateway,
           "stripe": stripe_server}
    database.dispose()


def rows(db: Database, lease_id: str) -> list[InstalmentRow]:
    with db.session() as s:
        return list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))


def payments(db: Database, lease_id: str) -> list[ServicingMovementRow]:
    with db.session() as s:
        return list(s.scalars(select(ServicingMovementRow).where(
            ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.kind == "payment")
            .order_by(ServicingMovementRow.id)))


def overdue_lease(w: dict[str, Any], starts_on: date, through: date) -> str:
    """A lease from ``starts_on``, its business dates closed through ``through``."""
    lease_id = open_lease(w["servicing"], record(starts_on))
    assert lease_id is not None
    w["servicing"].start_business_date(starts_on + timedelta(days=28), w["clock"]())
    CloseOfBusiness(w["servicing"], clock=w["clock"]).close_until(through)
    return lease_id


def test_a_rent_paid_twice_books_once(world: dict[str, Any]) -> None:
    w, svc = world, world["svc"]
    lease_id = overdue_lease(w, date(2026, 3, 10), date(2026, 4, 14))  # rent 1 due 10 April, overdue 11–14
    first = rows(w["db"], lease_id)[0]
    assert first.state == "overdue" and first.penalty_accrued > 0
    due = first.amount + first.penalty_accrued
    lease = svc.repo.lease(lease_id)
    assert [o.total for o in svc.due_now(lease_id)] == [due]
    # the customer pays on the phone (TEST MODE: confirmed at once), and taps twice: one attempt, one charge
    paid = svc.pay_by_hand(lease, "form-1", payment_method="pm_card_visa")
    again = svc.pay_by_hand(lease, "form-1", payment_method="pm_card_visa")
    assert paid.receipt is not None and paid.receipt.applied == due and paid.receipt.surplus == 0
    assert again.attempt.id == paid.attempt.id and again.receipt is not None and again.receipt.id == paid.receipt.id
    intent = w["gateway"].retrieve_intent(paid.attempt.provider_ref)
    assert intent.status == "succeeded" and intent.metadata[ATTEMPT_META] == paid.attempt.id
    # Stripe's webhook, replayed, and two workers applying the same intent at once: nothing more is booked
    outcomes: list[Any] = []
    threads = [threading.Thread(target=lambda: outcomes.append(svc.apply_intent(intent))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    event = {"id": intent.id, "metadata": intent.metadata}
    assert svc.on_stripe_event("payment_intent.succeeded", event, intent.id) == "ignored: rent booked before"
    assert svc.on_stripe_event("payment_intent.succeeded", event, intent.id) == "ignored: rent booked before"
    assert svc.on_stripe_event("payment_intent.succeeded", {"metadata": {"payment_id": "x"}}, intent.id) is None
    assert {o.receipt.id for o in outcomes} == {paid.receipt.id} and all(o.receipt.replay for o in outcomes)
    with w["db"].session() as s:
        assert s.execute(select(LeaseReceiptRow.amount)).scalars().all() == [due]
    [moved] = payments(w["db"], lease_id)
    first = rows(w["db"], lease_id)[0]
    assert (-moved.penalty, -moved.interest, -moved.principal) == (first.penalty_accrued, first.interest,
                                                                   first.principal)
    assert first.state == "paid" and first.settled_on == date(2026, 4, 15)
    # a second payment of the same rent (another tab): nothing is owed, all of it refunded at Stripe
    with pytest.raises(CannotPay):  # nothing is due now: no payment is made
        svc.pay_by_hand(lease, "form-2", payment_method="pm_card_visa")
    stray = w["gateway"].create_intent(amount=5000, currency="cny", idempotency_key="stray", metadata={},
                                       payment_method="pm_card_visa", confirm=True)
    assert svc.book(lease_id, 5000, STRIPE, "stray", reference=stray.id).refund_status == "succeeded"
    assert sum(r.amount for r in w["gateway"].list_refunds(payment_intent=stray.id)) == 5000
    # reconciliation with Stripe: the rent booked as Stripe has it; a rent Stripe took but we did not book is reported
    unbooked, _ = svc.repo.start_attempt(lease_id=lease_id, amount=4200, channel=STRIPE, trigger="customer",
                                         key="pay:unbooked", business_date=date(2026, 4, 15), now=w["clock"]())
    taken = w["gateway"].create_intent(amount=4200, currency="cny", idempotency_key="unbooked", confirm=True,
                                       metadata={ATTEMPT_META: unbooked.id}, payment_method="pm_card_visa")
    svc.repo.move(unbooked.id, ("created",), "created", w["clock"](), provider_ref=taken.id)
    problems = [p for p in Reconciliation(SqlPayments(w["db"]), w["gateway"]).reconcile()
                if p.get("attempt") in (paid.attempt.id, unbooked.id)]
    assert problems == [{"problem": "rent_not_booked", "intent": taken.id, "attempt": unbooked.id, "stripe": 4200}]


def test_a_partial_payment_is_allocated_to_the_fen_late_charge_interest_principal_oldest_first(
        world: dict[str, Any]) -> None:
    w, svc = world, world["svc"]
    lease_id = overdue_lease(w, date(2026, 2, 10), date(2026, 4, 14))  # rents 1 (10 March) and 2 (10 April) overdue
    one, two = rows(w["db"], lease_id)[:2]
    assert one.state == two.state == "overdue" and one.penalty_accrued > 0 < two.penalty_accrued
    # by hand: all of rent 1 (late charge, interest, principal), then rent 2's late charge and interest and 1234.56
    # yuan of its principal
    amount = one.penalty_accrued + one.amount + two.penalty_accrued + two.interest + 123456
    receipt = svc.book(lease_id, amount, DIRECT_DEBIT, "dd:partial", reference="ddsb_0_x")
    assert (receipt.applied, receipt.surplus, receipt.refund_status) == (amount, 0, None)
    one, two, three = rows(w["db"], lease_id)[:3]
    assert (one.state, one.paid_penalty, one.paid_interest, one.paid_principal) == (
        "paid", one.penalty_accrued, one.interest, one.principal)
    assert (two.state, two.paid_penalty, two.paid_interest, two.paid_principal) == (
        "overdue", two.penalty_accrued, two.interest, 123456)
    assert three.state == "pending" and three.paid_principal == 0
    moves = payments(w["db"], lease_id)
    paid_on = date(2026, 4, 15)
    assert [(m.instalment_id, m.value_date) for m in moves] == [(one.id, paid_on), (two.id, paid_on)]
    assert -sum(m.penalty + m.interest + m.principal for m in moves) == amount
    # one rule for a day's late charge: it runs on what was left unpaid at the end of the day — a payment counts for
    # the day it is made on. Rent 1, paid in full on 15 April, is charged nothing for that day; rent 2, paid in part,
    # is charged for it on what is left of it (its principal less 1234.56), as for the days after
    CloseOfBusiness(w["servicing"], clock=w["clock"]).close_until(date(2026, 4, 16))
    with w["db"].session() as s:
        charged = s.execute(select(ServicingMovementRow.instalment_id, ServicingMovementRow.value_date,
                                   ServicingMovementRow.penalty).where(
            ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.kind == "late_charge",
            ServicingMovementRow.value_date > date(2026, 4, 14))).all()
    assert sorted((i, d, p) for i, d, p in charged) == [
        (two.id, date(2026, 4, 15), late_charge(two.principal - 123456, 1)),
        (two.id, date(2026, 4, 16), late_charge(two.principal - 123456, 1))]


def test_a_payment_for_a_closed_lease_is_refunded_and_reported(world: dict[str, Any]) -> None:
    w, svc = world, world["svc"]
    lease_id = overdue_lease(w, date(2026, 3, 10), date(2026, 4, 10))
    lease = svc.repo.lease(lease_id)
    paid = w["gateway"].create_intent(amount=250000, currency="cny", idempotency_key="closed-1",
                                      metadata={"lease_id": lease_id}, payment_method="pm_card_visa", confirm=True)
    with w["db"].session() as s:
        s.execute(update(LeaseRow).where(LeaseRow.id == lease.id).values(status="settled"))
    receipt = svc.book(lease_id, 250000, STRIPE, "closed-1", reference=paid.id)
    assert (receipt.applied, receipt.surplus, receipt.refund_reason, receipt.refund_status) == (
        0, 250000, "lease_closed", "succeeded")
    assert payments(w["db"], lease_id) == [] and rows(w["db"], lease_id)[0].paid_principal == 0
    [refund] = w["gateway"].list_refunds(payment_intent=paid.id)
    assert refund.amount == 250000 and refund.metadata["receipt_id"] == receipt.id
    assert svc.book(lease_id, 250000, STRIPE, "closed-1", reference=paid.id).replay  # refunded once
    assert len(list(w["gateway"].list_refunds(payment_intent=paid.id))) == 1
    with w["db"].session() as s:
        [audit] = s.scalars(select(AuditEventRow).where(AuditEventRow.action == "servicing.payment_refunded"))
    assert audit.target == lease_id and '"lease_closed"' in audit.details and "250000" in audit.details


def test_the_sandbox_bank_s_direct_debit_collects_refuses_or_answers_later(world: dict[str, Any]) -> None:
    w, svc = world, world["svc"]
    leases: dict[str, str] = {}
    for digit in "0678":  # success, insufficient funds, agreement revoked, a delayed result
        lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))  # rent 1 due Friday 10 April
        assert lease_id is not None
        lease = svc.repo.lease(lease_id)
        svc.repo.add_mandate(application_id=lease.application_id, kind=DIRECT_DEBIT, agreement_no=f"XY2026041{digit}",
                             bank="沙箱银行", account_last4="621" + digit, text_version="2026.12", text_sha256="0" * 64,
                             language="zh", now=w["clock"]())
        leases[digit] = lease_id
    bare = open_lease(w["servicing"], record(date(2026, 3, 10)))  # no mandate: paid by hand, nothing collected
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    # the close of the day before the due date starts the debits (at once here: it is 10:00 in Beijing)
    CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook]).close(date(2026, 4, 9))
    attempts = {d: svc.repo.attempts(lease_id) for d, lease_id in leases.items()}
    assert all(len(a) == 1 for a in attempts.values()) and svc.repo.attempts(bare or "") == []
    # one job per attempt, deferred with the close
    assert sorted(jobs(w["db"], "servicing.collect")) == sorted((a[0].id, None) for a in attempts.values())
    for digit, lease_id in leases.items():
        rent = rows(w["db"], lease_id)[0]
        assert attempts[digit][0].amount == rent.amount and attempts[digit][0].key == f"auto:{rent.id}:2026-04-10"
        assert svc.collect(attempts[digit][0].id) == {"0": "succeeded", "6": "failed", "7": "failed",
                                                      "8": "processing"}[digit]
        assert svc.collect(attempts[digit][0].id) in ("succeeded", "failed", "processing")  # a retried job: once
    assert rows(w["db"], leases["0"])[0].state == "paid" and len(payments(w["db"], leases["0"])) == 1
    assert [svc.repo.attempt(attempts[d][0].id).failure_code for d in "67"] == ["insufficient_funds",
                                                                                 "agreement_revoked"]
    assert rows(w["db"], leases["6"])[0].state == "pending" and rows(w["db"], leases["8"])[0].state == "pending"
    # the agreement revoked at the bank: the mandate is revoked here too (and audit-logged), the other kept
    mandates = {d: svc.repo.mandate(attempts[d][0].mandate_id or "") for d in "67"}
    assert {d: m.status for d, m in mandates.items() if m is not None} == {"6": "active", "7": "revoked"}
    # each failure texted the customer once (its own job), with the link to pay by hand
    failed = [attempts[d][0].id for d in "67"]
    assert sorted(jobs(w["db"], "servicing.text_not_collected")) == sorted((a, None) for a in failed)
    for attempt_id in failed * 2:
        svc.text_not_collected(attempt_id)
    texts = [m.body for m in svc.sms.latest(to=MOBILE)]
    assert len(texts) == 2 and all("未能自动扣款" in t for t in texts)
    assert {t.rsplit("/leases/", 1)[1] for t in texts} == {f"{leases['6']}/pay", f"{leases['7']}/pay"}
    # the delayed result settles on a later poll (not before its time)
    assert svc.poll() == 0
    w["clock"].now += timedelta(minutes=6)
    assert svc.poll() == 1
    assert svc.repo.attempt(attempts["8"][0].id).status == "succeeded" and rows(w["db"], leases["8"])[0].state == "paid"
    # the same date closed again makes no second attempt
    before = {d: len(svc.repo.attempts(lease_id)) for d, lease_id in leases.items()}
    CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook]).close(date(2026, 4, 9))
    assert {d: len(svc.repo.attempts(lease_id)) for d, lease_id in leases.items()} == before


def test_a_card_declined_three_times_still_pays_by_hand(world: dict[str, Any]) -> None:
    w, svc = world, world["svc"]
    lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))
    assert lease_id is not None
    lease = svc.repo.lease(lease_id)
    client = stripe.StripeClient(w["stripe"].secret_key, base_addresses={"api": w["stripe"].api_base})
    customer = client.v1.customers.create({"description": "lessee"})
    client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    svc.repo.add_mandate(application_id=lease.application_id, kind="card", customer_ref=customer.id,
                         payment_method="pm_card_chargeCustomerFail", text_version="2026.12", text_sha256="0" * 64,
                         language="zh", now=w["clock"]())
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook]).close(date(2026, 4, 9))
    [auto] = svc.repo.attempts(lease_id)
    rent = rows(w["db"], lease_id)[0]
    for n in range(3):  # the automatic attempt and two more by the collector: each declined
        attempt, _ = svc.repo.start_attempt(lease_id=lease_id, amount=rent.amount, channel=STRIPE, trigger="auto",
                                            key=f"auto:{rent.id}:retry{n}", business_date=date(2026, 4, 11),
                                            now=w["clock"](), instalment_id=rent.id, mandate_id=auto.mandate_id)
        assert svc.collect(auto.id if n == 0 else attempt.id) == "failed"
    assert {a.failure_code for a in svc.repo.attempts(lease_id) if a.status == "failed"} == {"card_declined"}
    # the customer pays by hand on the phone: nothing holds them back
    done = svc.pay_by_hand(lease, "after-declines", payment_method="pm_card_visa")
    assert done.attempt.status == "succeeded" and done.receipt is not None and done.receipt.applied == rent.amount
    assert rows(w["db"], lease_id)[0].state == "paid"


def test_the_final_rent_is_not_debited_automatically(world: dict[str, Any]) -> None:
    """The balloon is paid as the customer chooses at the end of the term (buy the car, return it, refinance): the
    mandate collects rents only."""
    w, svc = world, world["svc"]
    lease_id = open_lease(w["servicing"], record(date(2025, 4, 10), residual_ratio="0.3"))
    assert lease_id is not None
    lease = svc.repo.lease(lease_id)
    svc.repo.add_mandate(application_id=lease.application_id, kind=DIRECT_DEBIT, agreement_no="XY20260410",
                         bank="沙箱银行", account_last4="6210", text_version="2026.12", text_sha256="0" * 64,
                         language="zh", now=w["clock"]())
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())  # the eve of rent 12 and the balloon
    CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook]).close(date(2026, 4, 9))
    *_, twelve, final = rows(w["db"], lease_id)
    assert (twelve.kind, final.kind, final.due_on) == ("rent", "final_rent", twelve.due_on)
    attempted = {a.instalment_id for a in svc.repo.attempts(lease_id)}
    assert twelve.id in attempted and final.id not in attempted


def jobs(db: Database, task: str) -> list[tuple[str, datetime | None]]:
    """The waiting jobs of ``task``: (their attempt, when they may run — None: at once)."""
    with db.session() as s:
        return [(a, at) for a, at in s.execute(text(
            "SELECT args->>'attempt_id', scheduled_at FROM procrastinate_jobs WHERE task_name = :task AND "
            "status = 'todo' ORDER BY id"), {"task": task})]


def test_the_debit_goes_on_the_due_date_by_day_and_a_failure_is_texted_by_day(world: dict[str, Any]) -> None:
    """The worker closes 9 April at 00:03 on 10 April in Beijing: that close starts the debit of the rents due on 10
    April, at 09:00 that day, as the mandate says (on the due date). All that day the rent is due now, not 'ahead',
    and not yet late. A failure's text (rent_not_collected) is a job of its own, sent by day: reported at night, it
    waits for 09:00."""
    w, svc = world, world["svc"]
    leases = {}
    for digit in "67":  # insufficient funds; the agreement revoked at the bank
        lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))  # rent 1 due Friday 10 April
        assert lease_id is not None
        lease = svc.repo.lease(lease_id)
        svc.repo.add_mandate(application_id=lease.application_id, kind=DIRECT_DEBIT, agreement_no=f"XY2026041{digit}",
                             bank="沙箱银行", account_last4="621" + digit, text_version="2026.12", text_sha256="0" * 64,
                             language="zh", now=w["clock"]())
        leases[digit] = lease_id
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    w["clock"].now = datetime(2026, 4, 9, 16, 3, tzinfo=UTC)  # the worker's periodic close: 00:03 on 10 April
    done = CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook]).close_due()
    assert [o.business_date for o in done] == [date(2026, 4, 9)]
    [short], [revoked] = (svc.repo.attempts(leases[d]) for d in "67")
    rent = rows(w["db"], leases["6"])[0]
    assert (short.instalment_id, short.key, short.amount) == (rent.id, f"auto:{rent.id}:2026-04-10", rent.amount)
    nine = datetime(2026, 4, 10, 1, 0, tzinfo=UTC)  # 09:00 on 10 April in Beijing
    assert sorted(jobs(w["db"], "servicing.collect")) == sorted([(short.id, nine), (revoked.id, nine)])
    assert [o.instalment_id for o in svc.due_now(leases["6"])] == [rent.id]  # due today: due now, not ahead
    w["clock"].now = nine
    assert svc.collect(short.id) == "failed"
    assert rows(w["db"], leases["6"])[0].state == "pending"  # not late: it may still be paid today
    assert jobs(w["db"], "servicing.text_not_collected") == [(short.id, None)]  # by day: at once
    assert list(svc.sms.latest(to=MOBILE)) == []  # the job sends it, once
    svc.text_not_collected(short.id)
    svc.text_not_collected(short.id)
    [sent] = svc.sms.latest(to=MOBILE)
    assert "未能自动扣款" in sent.body and sent.body.endswith(f"/leases/{leases['6']}/pay")
    # a failure reported at night (the job retried late, a bank answering late): its text waits for 09:00
    w["clock"].now = datetime(2026, 4, 10, 14, 30, tzinfo=UTC)  # 22:30 in Beijing
    assert svc.collect(revoked.id) == "failed"
    assert jobs(w["db"], "servicing.text_not_collected")[-1] == (revoked.id, datetime(2026, 4, 11, 1, 0, tzinfo=UTC))
    assert len(list(svc.sms.latest(to=MOBILE))) == 1


class WebhookFirst:
    """The saved card's collector, with Stripe's webhook about the charge delivered before its own answer is back
    (Stripe sends payment_intent.payment_failed as soon as the charge fails)."""

    channel = STRIPE

    def __init__(self, real: StripeOffSession, svc: RentCollection) -> None:
        self.real, self.svc, self.outcomes = real, svc, list[str | None]()

    def collect(self, **asked: Any) -> Any:
        answer = self.real.collect(**asked)
        attempt = asked["metadata"][ATTEMPT_META]  # localstripe's decline names no intent: found as Stripe sends it
        [intent] = [i for i in self.svc.gateway.list_intents() if i.metadata.get(ATTEMPT_META) == attempt]
        self.outcomes.append(self.svc.on_stripe_event("payment_intent.payment_failed",
                                                      {"id": intent.id, "metadata": intent.metadata}, intent.id))
        return answer

    def status(self, ref: str) -> Any:
        return self.real.status(ref)

    def refund(self, ref: str, *, amount: int, key: str) -> str:
        return self.real.refund(ref, amount=amount, key=key)


def test_a_declined_card_s_webhook_before_the_job_s_answer_still_texts_once(world: dict[str, Any]) -> None:
    w, svc = world, world["svc"]
    lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))
    assert lease_id is not None
    lease = svc.repo.lease(lease_id)
    client = stripe.StripeClient(w["stripe"].secret_key, base_addresses={"api": w["stripe"].api_base})
    customer = client.v1.customers.create({"description": "lessee"})
    client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    svc.repo.add_mandate(application_id=lease.application_id, kind="card", customer_ref=customer.id,
                         payment_method="pm_card_chargeCustomerFail", text_version="2026.12", text_sha256="0" * 64,
                         language="zh", now=w["clock"]())
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook]).close(date(2026, 4, 9))
    [auto] = svc.repo.attempts(lease_id)
    svc.collectors[STRIPE] = first = WebhookFirst(svc.collectors[STRIPE], svc)
    assert svc.collect(auto.id) == "failed"  # the webhook moved it first: the job reports the attempt as it is
    assert first.outcomes == ["applied: rent failed"]
    assert jobs(w["db"], "servicing.text_not_collected") == [(auto.id, None)]
    svc.text_not_collected(auto.id)
    [sent] = svc.sms.latest(to=MOBILE)
    assert "未能自动扣款" in sent.body


def test_receipts_are_found_by_the_provider_s_reference_through_an_index(world: dict[str, Any]) -> None:
    """Reconciliation looks up the receipts of each of Stripe's intents by its reference (receipts_of)."""
    with world["db"].session() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(s.execute(text("EXPLAIN SELECT * FROM lease_receipts WHERE reference = 'pi_x'")).scalars())
    assert "ix_lease_receipts_reference" in plan, plan


def test_a_failed_debit_is_tried_again_on_the_policy_s_business_days_until_paid_or_revoked(
        world: dict[str, Any]) -> None:
    """Insufficient funds on the collection day (Friday 10 April 2026): the policy's retries come 2 and 5 business
    days later (Tuesday 14 and Friday 17 April), each keyed by its day, for what the rent owes then (its late charge
    too once overdue); a revoked agreement is never tried again; a rent paid by hand meanwhile is not debited."""
    w, svc = world, world["svc"]
    svc.retry_days = (2, 5)
    leases = {}
    for digit in "67":  # insufficient funds; the agreement revoked at the bank
        lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))  # rent 1 due Friday 10 April
        assert lease_id is not None
        lease = svc.repo.lease(lease_id)
        svc.repo.add_mandate(application_id=lease.application_id, kind=DIRECT_DEBIT, agreement_no=f"XY2026041{digit}",
                             bank="沙箱银行", account_last4="621" + digit, text_version="2026.12", text_sha256="0" * 64,
                             language="zh", now=w["clock"]())
        leases[digit] = lease_id
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    close = CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook])
    keys: dict[str, list[str]] = {d: [] for d in leases}
    for day in (date(2026, 4, 9) + timedelta(days=n) for n in range(10)):  # closes of 9 … 18 April
        close.close(day)
        for digit, lease_id in leases.items():
            for attempt in svc.repo.attempts(lease_id):
                if attempt.key not in keys[digit]:
                    keys[digit].append(attempt.key)
                    assert svc.collect(attempt.id) == "failed"
    rent = rows(w["db"], leases["6"])[0]
    assert keys["6"] == [f"auto:{rent.id}:2026-04-10", f"auto:{rent.id}:2026-04-14", f"auto:{rent.id}:2026-04-17"]
    assert len(keys["7"]) == 1  # revoked at the bank on the first try: never again
    last = [a for a in svc.repo.attempts(leases["6"]) if a.key.endswith("2026-04-17")][0]
    assert rows(w["db"], leases["6"])[0].state == "overdue"
    with w["db"].session() as s:  # the late charge accrued by the close that made the attempt (16 April)
        charged = s.scalar(select(func.sum(ServicingMovementRow.penalty)).where(
            ServicingMovementRow.instalment_id == rent.id, ServicingMovementRow.value_date <= date(2026, 4, 16)))
    assert charged and last.amount == rent.amount + charged
    assert close.close(date(2026, 4, 18)) is not None and len(svc.repo.attempts(leases["6"])) == 3  # replayed


def test_a_rent_paid_by_hand_after_a_failed_debit_is_not_debited_again(world: dict[str, Any]) -> None:
    w, svc = world, world["svc"]
    svc.retry_days = (2,)
    lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))
    assert lease_id is not None
    lease = svc.repo.lease(lease_id)
    svc.repo.add_mandate(application_id=lease.application_id, kind=DIRECT_DEBIT, agreement_no="XY20260416",
                         bank="沙箱银行", account_last4="6216", text_version="2026.12", text_sha256="0" * 64,
                         language="zh", now=w["clock"]())
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    close = CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook])
    close.close(date(2026, 4, 9))
    [first] = svc.repo.attempts(lease_id)
    assert svc.collect(first.id) == "failed"
    close.close(date(2026, 4, 10))
    done = svc.pay_by_hand(lease, "by-hand", payment_method="pm_card_visa")
    assert done.receipt is not None and rows(w["db"], lease_id)[0].state == "paid"
    for day in (date(2026, 4, 11), date(2026, 4, 12), date(2026, 4, 13)):
        close.close(day)
    assert [a.key for a in svc.repo.attempts(lease_id) if a.trigger == "auto"] == [first.key]


def direct_debit(w: dict[str, Any], lease_id: str, digit: str, version: str = MANDATE_VERSION) -> None:
    """The lease's customer gives the sandbox bank's direct-debit mandate (``digit``: its answer), automatic on, in
    the words of ``version``."""
    lease = w["svc"].repo.lease(lease_id)
    w["svc"].repo.add_mandate(application_id=lease.application_id, kind=DIRECT_DEBIT, agreement_no=f"XY2026041{digit}",
                              bank="沙箱银行", account_last4="621" + digit, text_version=version,
                              text_sha256="0" * 64, language="zh", now=w["clock"]())


def test_a_retry_waits_while_another_payment_of_the_rent_is_in_flight(world: dict[str, Any]) -> None:
    """Rent 1 (due Friday 10 April) was not collected; its retry comes 2 business days later (Tuesday 14 April, made
    by the close of the 13th). Not while a payment that may pay it is in flight — a settlement or a prepayment, the
    customer's 'everything due now', a payment of that rent, whether still processing at the bank (however long) or
    confirmed minutes ago —, else it is debited twice (or the settlement finds the arrears changed and refunds
    itself). A customer's attempt left created or waiting for 3-D Secure more than an hour (CUSTOMER_IN_FLIGHT: a pay
    page left open) no longer holds the retry back, nor does a payment of another instalment (booked to it alone).
    The job re-checks before it asks the bank: a payment begun since the close cancels the debit (no text)."""
    w, svc = world, world["svc"]
    svc.retry_days = (2,)
    cases = ("settlement", "prepayment", "everything_processing", "rent_requires_action", "abandoned",
             "another_rent", "none")
    leases = {}
    for case in cases:
        lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))  # rent 1 due Friday 10 April
        assert lease_id is not None
        direct_debit(w, lease_id, "6")  # insufficient funds
        leases[case] = lease_id
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    close = CloseOfBusiness(w["servicing"], clock=w["clock"], hooks=[svc.close_hook])
    for day in (date(2026, 4, 9), date(2026, 4, 10), date(2026, 4, 11), date(2026, 4, 12)):
        close.close(day)
        for lease_id in leases.values():
            for attempt in svc.repo.attempts(lease_id):
                if attempt.status == "created":
                    assert svc.collect(attempt.id) == "failed"
    close_time = datetime(2026, 4, 13, 16, 5, tzinfo=UTC)  # the worker's close of 13 April: 00:05 on the 14th
    for case, lease_id in leases.items():
        one, two = rows(w["db"], lease_id)[:2]
        purpose, instalment, status, ago = {
            "settlement": ("settlement", None, "processing", timedelta(days=2)),
            "prepayment": ("prepayment", None, "created", timedelta(minutes=20)),
            "everything_processing": ("rent", None, "processing", timedelta(days=3)),
            "rent_requires_action": ("rent", one.id, "requires_action", timedelta(minutes=10)),
            "abandoned": ("rent", None, "created", timedelta(hours=2)),
            "another_rent": ("rent", two.id, "created", timedelta(minutes=5)),
        }.get(case, (None, None, None, None))
        if purpose is None:
            continue
        assert ago is not None and status is not None
        attempt, _ = svc.repo.start_attempt(
            lease_id=lease_id, amount=one.amount, channel=STRIPE, trigger="customer", key=f"pay:{lease_id}:{case}",
            business_date=date(2026, 4, 13), now=close_time - ago, instalment_id=instalment, purpose=purpose,
            subject_id=None if purpose == "rent" else "q-1")
        if status != "created":
            svc.repo.move(attempt.id, ("created",), status, close_time - ago)
    w["clock"].now = close_time
    close.close(date(2026, 4, 13))
    retried = {case for case, lease_id in leases.items()
               if any(a.key.endswith(":2026-04-14") for a in svc.repo.attempts(lease_id))}
    assert retried == {"abandoned", "another_rent", "none"}
    # the retry's job, at 09:00 on the 14th: the customer began paying everything due now at 08:50 — no debit
    w["clock"].now = datetime(2026, 4, 14, 1, 0, tzinfo=UTC)
    [retry] = [a for a in svc.repo.attempts(leases["none"]) if a.key.endswith(":2026-04-14")]
    svc.repo.start_attempt(lease_id=leases["none"], amount=retry.amount, channel=STRIPE, trigger="customer",
                           key=f"pay:{leases['none']}:0850", business_date=date(2026, 4, 14),
                           now=w["clock"]() - timedelta(minutes=10))
    texts_before = len(jobs(w["db"], "servicing.text_not_collected"))
    assert svc.collect(retry.id) == "canceled"
    retry = svc.repo.attempt(retry.id)
    assert retry is not None and retry.failure_code == "in_flight" and retry.provider_ref is None
    assert len(jobs(w["db"], "servicing.text_not_collected")) == texts_before  # nothing to text: no debit failed
    # the page abandoned two hours before, and another rent's payment, hold nothing back: the bank is asked
    for case in ("abandoned", "another_rent"):
        [retry] = [a for a in svc.repo.attempts(leases[case]) if a.key.endswith(":2026-04-14")]
        assert svc.collect(retry.id) == "failed" and svc.repo.attempt(retry.id).failure_code == "insufficient_funds"


def test_the_purchase_price_is_debited_on_its_day_less_the_deposit(world: dict[str, Any]) -> None:
    """A lessee who keeps the car owes the purchase price (留购价) on the term's last day, and their automatic
    collection takes it (infra/end_of_term.py) — what the deposit will not cover of it: on that day's close the
    deposit goes first to the purchase price, then to the final rent (the contract's 第五条), so the debit is the price
    less the deposit left, and nothing when the deposit covers it. The final rent is never debited automatically."""
    from infra.end_of_term import SqlEndOfTerm
    from infra.end_of_term import end_of_term_hook

    w, svc = world, world["svc"]
    leases = {}
    # ¥15,000: beyond the ¥10,000 deposit; ¥100: the deposit covers it; ¥15,001: under a mandate of the first words,
    # which named rents and late charges only
    for price in (1_500_000, 10_000, 1_500_100):
        lease_id = open_lease(w["servicing"], record(date(2025, 4, 10), residual_ratio="0.3"))  # ends 10 April 2026
        assert lease_id is not None
        direct_debit(w, lease_id, "0", "2026.12-1" if price == 1_500_100 else MANDATE_VERSION)  # the debit succeeds
        lease = svc.repo.lease(lease_id)
        assert lease is not None and lease.deposit == 1_000_000
        with w["db"].session() as s:  # its term running, its deposit paid at signing: held for the end
            s.add(LeaseTermRow(application_id=lease.application_id, dealer_id=DEALER, term_months=12,
                               starts_on=date(2025, 4, 10), ends_on=date(2026, 4, 10), delivered_at=w["clock"](),
                               delivered_by="dealer", delivered_by_label="dealer"))
            s.add(PaymentRow(id=str(uuid.uuid4()), application_id=lease.application_id, dealer_id=DEALER,
                             kind="deposit", amount=1_000_000, status="succeeded", captured=1_000_000, refunded=0,
                             created_at=w["clock"](), updated_at=w["clock"]()))
        SqlEndOfTerm(w["db"]).choose(lease_id, "purchase", by="customer", terms={}, purchase_price=price,
                                     now=w["clock"]())
        leases[price] = lease_id
    w["servicing"].start_business_date(date(2026, 4, 9), w["clock"]())
    close = CloseOfBusiness(w["servicing"], clock=w["clock"],
                            hooks=[lambda events: end_of_term_hook(events, w["clock"]()), svc.close_hook])
    close.close(date(2026, 4, 9))  # the eve of the term's last day
    for price, lease_id in leases.items():
        *_, twelve, final, purchase = rows(w["db"], lease_id)
        assert (twelve.kind, final.kind, purchase.kind) == ("rent", "final_rent", "purchase_price")
        attempts = {a.instalment_id: a for a in svc.repo.attempts(lease_id)}
        assert final.id not in attempts and attempts[twelve.id].amount == twelve.amount
        if price in (10_000, 1_500_100):
            assert purchase.id not in attempts  # the deposit covers it; the mandate's words do not name it
            continue
        debit = attempts[purchase.id]
        assert (debit.amount, debit.key) == (500_000, f"auto:{purchase.id}:2026-04-10")
        assert svc.collect(debit.id) == "succeeded"
    close.close(date(2026, 4, 10))  # the term's last day: the deposit applied, the purchase price first
    del leases[1_500_100]  # its purchase price is paid on the phone
    for price, lease_id in leases.items():
        *_, final, purchase = rows(w["db"], lease_id)
        assert purchase.state == "paid" and purchase.paid_principal == price
        with w["db"].session() as s:
            offset = dict(s.execute(select(ServicingMovementRow.instalment_id, -ServicingMovementRow.principal).where(
                ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.kind == "deposit_offset")).all())
        rest = 1_000_000 - min(price, 1_000_000)
        assert offset == {purchase.id: min(price, 1_000_000), **({final.id: rest} if rest else {})}
        assert final.paid_principal + final.paid_interest == rest  # the final rent: the deposit's rest, no debit


def test_the_close_starts_a_batch_s_collections_in_a_fixed_number_of_statements(world: dict[str, Any]) -> None:
    """The close of 100,000 leases stays within its minute only if a batch's automatic collections cost a few
    statements, not a few per rent: their attempts are made by one INSERT and their jobs by one call, whether the
    batch collects one rent or many."""
    from sqlalchemy import event

    w, svc = world, world["svc"]
    svc.retry_days = (2, 5)  # as the policy's: the failed ones looked for too
    counted: dict[int, int] = {}
    for n in (1, 6):
        for _ in range(n):
            lease_id = open_lease(w["servicing"], record(date(2026, 3, 10)))
            assert lease_id is not None
            direct_debit(w, lease_id, "0")
        with w["db"].session() as s:
            ids = tuple(s.scalars(select(LeaseRow.id).where(~LeaseRow.id.in_(
                select(text("lease_id")).select_from(text("collection_attempts"))))))
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)  # noqa: B023 -- the listener is removed before the next loop

        event.listen(w["db"].engine, "before_cursor_execute", count)
        try:
            with w["db"].session() as s:
                from infra.servicing import BatchEvents

                svc.close_hook(BatchEvents(date(2026, 4, 9), s, ids, (), ()))
        finally:
            event.remove(w["db"].engine, "before_cursor_execute", count)
        assert len(svc.repo.attempts(ids[0])) == 1 and len(ids) == n
        counted[n] = len(statements)
    assert counted[1] == counted[6] <= 6, counted
    assert len(jobs(w["db"], "servicing.collect")) == 7
