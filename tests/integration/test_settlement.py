"""Early settlement on the phone (issue 18 §5), over real HTTP with localstripe (TEST MODE): the lessee requests the
quote shown on the lease page, pays it, and the lease is settled — its movements reconcile to the fen with a figure
worked by hand; the same form twice and Stripe's answer replayed book it once; a payment for the settled lease is
refunded; the close of business expires a quote, which is then refused with the figure for the earliest date; a quote
the deposit covers is confirmed without paying, the refund recorded."""

from __future__ import annotations

import re
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bff.servicing.collect import rent_collection
from bff.servicing.settled import money
from bff.servicing.settled import settlement_body
from infra.collections import SqlCollections
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingMovementRow
from infra.db.models import SettlementQuoteRow
from infra.end_of_term import SqlEndOfTerm
from infra.servicing import BatchEvents
from infra.servicing import SqlServicing
from infra.settlements import close_hook
from tests.common.leases import PART_PAID
from tests.common.leases import fall_behind
from tests.common.leases import late_charge
from tests.common.leases import open_lease_for
from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_returning_customer import join

pytestmark = pytest.mark.db


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _attr(page: str, testid: str, name: str) -> str:
    tag = re.search(rf'<[^>]*data-testid="{testid}"[^>]*>', page)
    assert tag is not None, testid
    return re.search(rf'{name}="([^"]*)"', tag.group(0)).group(1)  # type: ignore[union-attr]


def _lease(app: Any, base: str, customer: Any) -> str:
    """A lease handed over 40 days ago (12 rents in arrears, a final rent, a deposit of ¥10,000), its rent 1 paid."""
    c = app.extensions["leaseline"]
    lease_id = open_lease_for(app, start(base, customer), SqlServicing(c.db).business_date() - timedelta(days=40))
    with c.db.session() as s:
        s.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number == 1).values(
            state="paid", paid_principal=InstalmentRow.principal, paid_interest=InstalmentRow.interest))
    return lease_id


def _request(customer: Any, base: str, lease_id: str) -> Any:
    """The lease page's 申请结清 (the quote for the earliest date) → the quote's page."""
    page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
    settle_on = _attr(page, "settlement", "data-settles-on")
    done = customer.post(f"{base}/leases/{lease_id}/settlement",
                         data={"csrf_token": _csrf(page), "settle_on": settle_on}, timeout=TIMEOUT)
    assert done.status_code == 200 and done.history[0].status_code == 303, done.text[:500]
    return done


def test_the_lessee_requests_and_pays_a_settlement_and_the_lease_is_settled(
        bff_server: Any, app: Any, stripe_server: Any) -> None:
    base, c = bff_server.url, app.extensions["leaseline"]
    customer, _ = join(base, app, "13700138721")
    with customer:
        lease_id = _lease(app, base, customer)
        # bad input: a date outside the term — the lease page again, the field error, the date kept
        page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
        bad = customer.post(f"{base}/leases/{lease_id}/settlement",
                            data={"csrf_token": _csrf(page), "settle_on": "2099-01-01"}, timeout=TIMEOUT)
        assert bad.status_code == 422 and 'id="settle_on-error"' in bad.text and 'value="2099-01-01"' in bad.text
        shown = _request(customer, base, lease_id)
        quote_url = shown.url.split("?")[0]
        quote_id = _attr(shown.text, "settle", "data-quote")
        amount = int(_attr(shown.text, "settle", "data-amount-due"))
        assert 'data-testid="test-mode"' in shown.text and 'data-testid="valid-until"' in shown.text
        # the figure worked by hand: the balance after rent 1, its interest (ACT/360, half-up) from rent 1's due date
        # to the settlement date, the fee of 3 %, less the deposit held
        with c.db.session() as s:
            lease = s.get(LeaseRow, lease_id)
            rents = s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)).all()
            q = s.get(SettlementQuoteRow, quote_id)
            assert lease is not None and q is not None
            balance = lease.financed_amount - rents[0].principal
            days = (q.settles_on - rents[0].due_on).days
            deposit = lease.deposit
        assert deposit == 1_000_000 and rents[1].due_on > q.settles_on  # nothing else due by then: no arrears
        interest = int((Decimal(balance) * Decimal("0.0599") * days / 360).quantize(Decimal(1), ROUND_HALF_UP))
        fee = int((Decimal(balance) * Decimal("0.03")).quantize(Decimal(1), ROUND_HALF_UP))
        assert amount == balance + interest + fee - deposit
        # a tampered amount, an old page (no token): 4xx, nothing paid
        sent = {"csrf_token": _csrf(shown.text), "token": re.search(r'name="token" value="(\w+)"', shown.text)
                .group(1), "method": "visa", "amount": str(amount)}  # type: ignore[union-attr]
        assert customer.post(f"{quote_url}/pay", data={**sent, "amount": "1"}, timeout=TIMEOUT).status_code == 422
        assert customer.post(f"{quote_url}/pay", data={**sent, "token": ""}, timeout=TIMEOUT).status_code == 400
        # paid in TEST MODE; the same form again (a double tap) charges nothing more
        first = customer.post(f"{quote_url}/pay", data=sent, timeout=TIMEOUT, allow_redirects=False)
        again = customer.post(f"{quote_url}/pay", data=sent, timeout=TIMEOUT, allow_redirects=False)
        assert first.status_code == again.status_code == 303
        assert first.headers["Location"] == again.headers["Location"]
        settled = customer.get(base + first.headers["Location"], timeout=TIMEOUT)
        assert 'data-testid="settled"' in settled.text and 'data-status="paid"' in settled.text
        # paid off on the business date it was booked, settled on the quote's day (the contract's notice later: ahead)
        paid_on = SqlServicing(c.db).business_date()
        assert q.settles_on > paid_on and 'data-ahead="true"' in settled.text
        assert f'data-testid="paid-on">{paid_on.isoformat()}<' in settled.text
        assert f'data-testid="settled-on">{q.settles_on.isoformat()}<' in settled.text
        # Stripe's answer applied again (a webhook replayed): booked before, nothing more
        with c.db.session() as s:
            receipts = s.execute(select(LeaseReceiptRow.reference, LeaseReceiptRow.applied, LeaseReceiptRow.surplus)
                                 .where(LeaseReceiptRow.lease_id == lease_id)).all()
        assert [(r.applied, r.surplus) for r in receipts] == [(amount, 0)]
        replay = rent_collection(c, app.config["SETTINGS"]).apply_intent(
            stripe_server.gateway().retrieve_intent(receipts[0].reference))
        assert replay.receipt is not None and replay.receipt.replay
        # the lease settled; its movements reconcile to the fen; the certificate's job deferred with it
        with c.db.session() as s:
            lease = s.get(LeaseRow, lease_id)
            assert lease is not None and lease.status == "settled" and lease.settled_on == q.settles_on
            assert s.get(SettlementQuoteRow, quote_id).paid_on == paid_on  # type: ignore[union-attr]
            moves = s.scalars(select(ServicingMovementRow).where(
                ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.key.like(f"settlement:{quote_id}:%"))
            ).all()
            states = dict(s.execute(select(InstalmentRow.number, InstalmentRow.state).where(
                InstalmentRow.lease_id == lease_id)).all())
            jobs = s.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'servicing.settled' "
                                  "AND args->>'quote_id' = :q AND args->>'lease_id' = :l"),
                             {"q": quote_id, "l": lease_id}).scalar_one()
        total = sum(m.principal + m.interest + m.penalty for m in moves)
        assert total == -amount
        assert sum(m.principal + m.interest + m.penalty for m in moves if m.kind != "settlement_deposit") \
            == -(amount + deposit)
        assert {m.kind: m.interest for m in moves}["settlement_interest"] == -interest
        assert {m.kind: m.penalty for m in moves}["settlement_fee"] == -fee
        assert states[1] == "paid" and all(states[n] == "settled" for n in range(2, 14)), states
        assert jobs == 1
        lease_page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
        assert 'data-testid="lease-settled"' in lease_page and 'data-testid="pay-now"' not in lease_page
        # a payment that reaches the settled lease anyway (another tab's, a late transfer): refunded automatically
        late = SqlCollections(c.db).book(lease_id=lease_id, amount=amount, source="stripe", key=f"late:{uuid.uuid4()}",
                                         order=("penalty", "interest", "principal"), now=datetime.now(UTC))
        assert late.applied == 0 and late.refund_reason == "lease_closed" and late.refund_status == "pending"
        # and the page refuses to pay it again
        assert customer.post(f"{quote_url}/pay", data={**sent, "token": uuid.uuid4().hex},
                             timeout=TIMEOUT).status_code == 409


def test_a_settlement_books_the_late_charges_owed_when_it_is_paid_and_refunds_the_rest(
        bff_server: Any, app: Any, stripe_server: Any) -> None:
    """The quote counts the late charges through its settlement day (the most that may be owed); paid days before
    it, the settlement books those owed on the business date it is paid — rent 2's charge accrued by the closes, less
    what a hand payment after the quote paid of it (R1 #8), and nothing for rent 3, paid before its last day to pay
    (R1 #7) — and refunds the rest of the payment: the movements are the amount less the refund, to the fen."""
    base, c = bff_server.url, app.extensions["leaseline"]
    customer, _ = join(base, app, "13700138723")
    with customer:
        today = SqlServicing(c.db).business_date()
        lease_id = open_lease_for(app, start(base, customer), today - timedelta(days=70))
        rows = fall_behind(app, lease_id, today)  # rent 1 paid, rent 2 overdue: charged through yesterday
        second, third = rows[2], rows[3]
        last_day = SqlServicing(c.db).calendar().last_day_to_pay(third.due_on, 0)
        settles_on = last_day + timedelta(days=3)  # rent 3 fallen due by then, and late for 3 days
        assert today < third.due_on and rows[4].due_on > settles_on
        page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
        shown = customer.post(f"{base}/leases/{lease_id}/settlement", data={
            "csrf_token": _csrf(page), "settle_on": settles_on.isoformat()}, timeout=TIMEOUT)
        assert shown.status_code == 200 and shown.history[0].status_code == 303, shown.text[:500]
        quote_id = _attr(shown.text, "settle", "data-quote")
        amount = int(_attr(shown.text, "settle", "data-amount-due"))
        # by hand: rent 2's charge on what is unpaid of it from the day after its due day through the settlement day,
        # rent 3's for the 3 days after its last day to pay
        unpaid = second.amount - PART_PAID - second.interest
        quoted = late_charge(unpaid, (settles_on - second.due_on).days) + late_charge(third.amount, 3)
        with c.db.session() as s:
            assert s.get(SettlementQuoteRow, quote_id).penalties == quoted  # type: ignore[union-attr]
        # ¥5.00 paid by hand after the quote: to rent 2's late charge first (the quote still holds: same arrears)
        hand = SqlCollections(c.db).book(lease_id=lease_id, amount=500, source="stripe", key=f"hand:{uuid.uuid4()}",
                                         order=("penalty", "interest", "principal"), now=datetime.now(UTC))
        assert hand.applied == 500
        sent = {"csrf_token": _csrf(shown.text), "token": uuid.uuid4().hex, "method": "visa", "amount": str(amount)}
        settled = customer.post(f"{shown.url.split('?')[0]}/pay", data=sent, timeout=TIMEOUT)
        assert 'data-testid="settled"' in settled.text, settled.text[:500]
        # owed today: rent 2's charge accrued through yesterday less the ¥5.00; rent 3 is not late
        owed = second.penalty_accrued - 500
        refund = quoted - owed
        with c.db.session() as s:
            q = s.get(SettlementQuoteRow, quote_id)
            assert q is not None and (q.status, q.penalties_booked) == ("paid", owed)
            receipt = s.execute(select(LeaseReceiptRow.applied, LeaseReceiptRow.surplus, LeaseReceiptRow.refund_reason)
                                .where(LeaseReceiptRow.attempt_id.is_not(None),
                                       LeaseReceiptRow.lease_id == lease_id)).one()
            moves = s.scalars(select(ServicingMovementRow).where(
                ServicingMovementRow.key.like(f"settlement:{quote_id}:%"))).all()
            paid_charges = {r.number: r.paid_penalty for r in s.scalars(select(InstalmentRow).where(
                InstalmentRow.lease_id == lease_id))}
            lease = s.get(LeaseRow, lease_id)
            assert lease is not None and lease.status == "settled"
            s.expunge(q)
        assert tuple(receipt) == (amount - refund, refund, "surplus")
        assert sum(m.principal + m.interest + m.penalty for m in moves) == -(amount - refund)
        assert -sum(m.penalty for m in moves if m.kind != "settlement_fee") == owed
        assert "settlement_charges" not in {m.kind for m in moves}  # nothing left to accrue by today
        assert paid_charges[2] == second.penalty_accrued and paid_charges[3] == 0
        # the settled page and the certificate's figures: the charges booked, the refund
        assert _attr(settled.text, "charges-booked", "data-amount") == str(owed)
        assert _attr(settled.text, "payment-refund", "data-refund") == str(refund)
        body = settlement_body(lease, q)["settlement"]
        assert (body["penalties"], body["amount_due"]) == (money(owed), money(amount - refund))


def test_an_expired_quote_is_refused_with_the_new_figure_and_one_the_deposit_covers_is_confirmed(
        bff_server: Any, app: Any, stripe_server: Any) -> None:
    base, c = bff_server.url, app.extensions["leaseline"]
    customer, _ = join(base, app, "13700138722")
    with customer:
        lease_id = _lease(app, base, customer)
        shown = _request(customer, base, lease_id)
        quote_url, quote_id = shown.url.split("?")[0], _attr(shown.text, "settle", "data-quote")
        # the close of business of the quote's last day expires it (its hook, in the batch's transaction)
        today = SqlServicing(c.db).business_date()
        with c.db.session() as s:
            s.execute(update(SettlementQuoteRow).where(SettlementQuoteRow.id == quote_id).values(valid_until=today))
            close_hook(BatchEvents(today - timedelta(days=1), s, (lease_id,), (), ()))
            assert s.get(SettlementQuoteRow, quote_id).status == "offered"  # type: ignore[union-attr]
            close_hook(BatchEvents(today, s, (lease_id,), (), ()))
            close_hook(BatchEvents(today, s, (lease_id,), (), ()))  # run again: nothing more
            assert s.get(SettlementQuoteRow, quote_id).status == "expired"  # type: ignore[union-attr]
        refused = customer.get(quote_url, timeout=TIMEOUT).text
        assert 'data-testid="quote-refused"' in refused and 'data-testid="fresh-quote"' in refused
        assert 'data-testid="pay-form"' not in refused
        paid = customer.post(f"{quote_url}/pay", data={"csrf_token": _csrf(refused), "token": uuid.uuid4().hex,
                                                       "method": "visa"}, timeout=TIMEOUT)
        assert paid.status_code == 409 and 'data-testid="fresh-quote"' in paid.text
        # a foreign quote id: not found
        assert customer.get(f"{base}/leases/{lease_id}/settlement/{uuid.uuid4()}", timeout=TIMEOUT).status_code == 404
        # the end of the term chosen (a purchase: its price an instalment) after a quote was requested: the quote is
        # not paid (409, nothing charged), a payment already under way is refunded in full when booked — the quote
        # superseded, the purchase price left to pay —, and no quote may be requested any more: the lease and quote
        # pages say why and link the end-of-term page
        asked = customer.post(f"{base}/leases/{lease_id}/settlement", data={
            "csrf_token": _csrf(refused), "settle_on": _attr(refused, "fresh-quote", "data-settles-on")},
            timeout=TIMEOUT)
        late_url, late_id = asked.url.split("?")[0], _attr(asked.text, "settle", "data-quote")
        late_amount = int(_attr(asked.text, "settle", "data-amount-due"))
        SqlEndOfTerm(c.db).choose(lease_id, "purchase", by="customer", terms={}, purchase_price=2_000_000,
                                  now=datetime.now(UTC))
        eot_link = f'href="/leases/{lease_id}/end-of-term"'
        paid = customer.post(f"{late_url}/pay", data={
            "csrf_token": _csrf(asked.text), "token": uuid.uuid4().hex, "method": "visa",
            "amount": str(late_amount)}, timeout=TIMEOUT)
        assert paid.status_code == 409 and 'data-testid="settle-end-of-term"' in paid.text and eot_link in paid.text
        assert 'data-testid="fresh-quote"' not in paid.text and 'data-testid="pay-form"' not in paid.text
        repo, now = SqlCollections(c.db), datetime.now(UTC)
        under_way, _ = repo.start_attempt(lease_id=lease_id, amount=late_amount, channel="stripe", trigger="customer",
                                          key=f"pay:{lease_id}:{uuid.uuid4().hex}", business_date=today, now=now,
                                          purpose="settlement", subject_id=late_id)
        booked = repo.book(lease_id=lease_id, amount=late_amount, source="stripe", key=f"eot:{uuid.uuid4()}",
                           order=("penalty", "interest", "principal"), attempt_id=under_way.id, now=now)
        assert (booked.applied, booked.surplus, booked.refund_reason) == (0, late_amount, "surplus")
        with c.db.session() as s:
            assert s.get(SettlementQuoteRow, late_id).status == "superseded"  # type: ignore[union-attr]
            assert s.get(LeaseRow, lease_id).status == "active"  # type: ignore[union-attr]
            assert s.scalars(select(ServicingMovementRow.id).where(
                ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.key.like("settlement:%"))).all() == []
            price = s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id,
                                                          InstalmentRow.kind == "purchase_price")).one()
            assert (price.state, price.paid_principal) == ("pending", 0)
        page = customer.get(late_url, timeout=TIMEOUT).text
        assert 'data-testid="settle-end-of-term"' in page and 'data-testid="fresh-quote"' not in page
        again = customer.post(f"{base}/leases/{lease_id}/settlement", data={"csrf_token": _csrf(refused)},
                              timeout=TIMEOUT)
        assert again.status_code == 409 and 'data-testid="settlement-end-of-term"' in again.text
        assert eot_link in again.text and "已选择期满处理方式" in again.text
        assert 'data-testid="request-settlement"' not in again.text and 'data-testid="quote-lines"' not in again.text
        with c.db.session() as s:  # as if it had not been chosen, for what follows
            s.execute(delete(InstalmentRow).where(InstalmentRow.id == price.id))
            s.execute(delete(EndOfTermRow).where(EndOfTermRow.lease_id == lease_id))
        # a deposit larger than what is owed: nothing to pay, the customer confirms, the refund recorded
        with c.db.session() as s:
            s.execute(update(LeaseRow).where(LeaseRow.id == lease_id).values(deposit=LeaseRow.financed_amount * 2))
        fresh = customer.post(f"{base}/leases/{lease_id}/settlement", data={
            "csrf_token": _csrf(refused), "settle_on": _attr(refused, "fresh-quote", "data-settles-on")},
            timeout=TIMEOUT)
        amount = int(_attr(fresh.text, "settle", "data-amount-due"))
        assert amount < 0 and 'data-testid="confirm-form"' in fresh.text and 'data-testid="pay-form"' not in fresh.text
        confirm_url = fresh.url.split("?")[0] + "/confirm"
        done = [customer.post(confirm_url, data={"csrf_token": _csrf(fresh.text)}, timeout=TIMEOUT) for _ in range(2)]
        assert [d.status_code for d in done] == [200, 200] and 'data-testid="settled"' in done[1].text
        assert _attr(done[1].text, "refund-due", "data-refund") == str(-amount)
        with c.db.session() as s:
            assert s.get(LeaseRow, lease_id).status == "settled"  # type: ignore[union-attr]
            # the confirmation booked on the business date: the day it was paid
            confirmed = s.get(SettlementQuoteRow, _attr(fresh.text, "settle", "data-quote"))
            assert confirmed is not None and confirmed.paid_on == today
            moves = s.scalars(select(ServicingMovementRow).where(ServicingMovementRow.lease_id == lease_id,
                                                                 ServicingMovementRow.key.like("settlement:%"))).all()
            assert sum(m.principal + m.interest + m.penalty for m in moves) == -amount
            assert len({m.key for m in moves}) == len(moves)
            # nothing paid for it: the one receipt is the refunded payment above
            assert len(s.execute(select(LeaseReceiptRow.id).where(LeaseReceiptRow.lease_id == lease_id)).all()) == 1
