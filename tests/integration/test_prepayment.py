"""A partial prepayment from the customer's phone (issue 18 §5), over real HTTP with localstripe (TEST MODE): bad
amounts are 4xx pages keeping what was typed (1e26 too); both options are offered, with the interest of the days since
the last rent added to the amount and explained; a superseded or expired offer cannot be paid; the chosen option is
paid once (a double tap, a second payment of an applied offer refunded in full); the schedule is re-amortised in place
and reconciles to the fen (numpy-financial's number of rents), the final rent moved to the new end, the rents no
longer needed cancelled (kept); the ``servicing.prepaid`` job is deferred with it; a lease in arrears is refused.

On the database alone (:func:`test_a_shorter_term_keeps_what_refers_to_its_dropped_rents`): a declined payment ahead of
a rent the shorter term drops does not stop the booking (the rent is cancelled, not deleted); a payment of a later rent
under way refuses the offer and the booking (refunded in full); the schedule annex states the schedule its prepayment
applied, even after a second prepayment the same day."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any

import numpy_financial as npf
import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bff.servicing.collect import rent_collection
from bff.servicing.settled import annex_body
from infra.collections import PREPAYMENT
from infra.collections import SqlCollections
from infra.db.models import ApplicationRow
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import LeaseRow
from infra.db.models import PrepaymentRow
from infra.db.models import ServicingMovementRow
from infra.lease_documents import SqlLeaseDocuments
from infra.prepayments import PrepaymentRefused
from infra.prepayments import SqlPrepayments
from infra.servicing import SqlServicing
from plans.policy import load_policy
from tests.common.leases import open_lease_for
from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_returning_customer import join

pytestmark = pytest.mark.db


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


def interest(amount: int, since: date, today: date) -> int:
    """amount × 5.99% × days / 360, half-up to the fen once (the contract's rate, ACT/360), reckoned here."""
    return int((Decimal(amount) * Decimal("0.0599") * (today - since).days / 360).quantize(
        Decimal("1"), rounding=ROUND_HALF_UP))


def test_the_lessee_prepays_part_chooses_a_shorter_term_and_pays_once(bff_server: Any, app: Any,
                                                                     stripe_server: Any) -> None:
    base, c = bff_server.url, app.extensions["leaseline"]
    today = SqlServicing(c.db).business_date()
    customer, _ = join(base, app, "13700139918")
    with customer:
        lease_id = open_lease_for(app, start(base, customer), today - timedelta(days=40))  # rent 1 fell due
        with c.db.session() as s:
            s.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number == 1)
                      .values(state="paid", paid_principal=InstalmentRow.principal,
                              paid_interest=InstalmentRow.interest))
            lease = s.get(LeaseRow, lease_id)
            assert lease is not None
            rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                                  .order_by(InstalmentRow.number)))
            rent, residual, term = lease.monthly_payment, lease.residual, lease.term
        balance = lease.financed_amount - rows[0].principal
        url = f"{base}/leases/{lease_id}/prepay"
        assert 'data-testid="prepay-link"' in customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
        page = customer.get(url, timeout=TIMEOUT)
        assert page.status_code == 200 and f'data-balance="{balance}"' in page.text
        # bad amounts: 4xx with the field's error and what was typed
        for typed, code in (("abc", "not_a_number"), ("500", "too_small"), (f"{balance / 100:.2f}", "too_large"),
                            ("1e26", "too_large"), ("1E+30", "too_large"), ("9" * 31, "too_large")):
            bad = customer.post(url, data={"csrf_token": csrf_of(page.text), "amount": typed}, timeout=TIMEOUT)
            assert bad.status_code == 422 and f'data-code="{code}"' in bad.text and f'value="{typed}"' in bad.text
        # two requests: the second supersedes the first
        offers = []
        for typed in ("20,000", "30000"):
            made = customer.post(url, data={"csrf_token": csrf_of(page.text), "amount": typed}, timeout=TIMEOUT,
                                 allow_redirects=False)
            assert made.status_code == 303
            offers.append(base + made.headers["Location"] if made.headers["Location"].startswith("/")
                          else made.headers["Location"])
        old, offer = (customer.get(o, timeout=TIMEOUT).text for o in offers)
        assert 'data-status="superseded"' in old and 'data-testid="prepay-pay-form"' not in old
        assert customer.post(offers[0] + "/pay", data={"csrf_token": csrf_of(old), "token": "b" * 32,
                                                       "option": "lower_rent", "method": "visa"},
                             timeout=TIMEOUT).status_code == 409
        # both options, with numpy-financial's figures: the lower rent, and the rents left at the same rent
        after = balance - 3_000_000
        r = 0.0599 / 12
        lower = -npf.pmt(r, term - 1, after / 100, -residual / 100)
        lower_shown = re.search(r'data-option="lower_rent" data-value="(\d+)"', offer)  # the rent's row comes first
        assert lower_shown is not None and abs(int(lower_shown.group(1)) / 100 - lower) <= 0.005 + 1e-6
        left = math.ceil(npf.nper(r, -rent / 100, after / 100, -residual / 100))
        assert f'data-option="shorter_term" data-value="{left}"' in offer and left < term - 1
        # an expired offer cannot be paid
        prepayment_id = offers[1].rsplit("/", 1)[1]
        with c.db.session() as s:
            found = s.get(PrepaymentRow, prepayment_id)
            assert found is not None
            valid_until = found.valid_until
            assert valid_until == today  # the interest is counted to the day
            # arrears: rent 1's due date is the balance's; the ¥30,000 bore interest since, added to the payment
            adj = interest(3_000_000, rows[0].due_on, today)
            assert found.accrued_interest == adj > 0
            s.execute(update(PrepaymentRow).where(PrepaymentRow.id == prepayment_id)
                      .values(valid_until=today - timedelta(days=1)))
        assert f'data-total="{3_000_000 + adj}"' in offer and 'data-testid="interest-explained"' in offer
        expired = customer.get(offers[1], timeout=TIMEOUT).text
        assert 'data-status="expired"' in expired
        assert customer.post(offers[1] + "/pay", data={"csrf_token": csrf_of(expired), "token": "c" * 32,
                                                       "option": "shorter_term", "method": "visa"},
                             timeout=TIMEOUT).status_code == 409
        with c.db.session() as s:
            s.execute(update(PrepaymentRow).where(PrepaymentRow.id == prepayment_id).values(valid_until=valid_until))
        # an option not offered: 422, nothing paid; then the shorter term, paid (the form sent twice: once)
        offer = customer.get(offers[1], timeout=TIMEOUT).text
        sent = {"csrf_token": csrf_of(offer), "token": token_of(offer), "method": "visa"}
        assert customer.post(offers[1] + "/pay", data={**sent, "option": "longer"}, timeout=TIMEOUT).status_code == 422
        sent = {**sent, "token": token_of(customer.get(offers[1], timeout=TIMEOUT).text), "option": "shorter_term"}
        first = customer.post(offers[1] + "/pay", data=sent, timeout=TIMEOUT, allow_redirects=False)
        again = customer.post(offers[1] + "/pay", data=sent, timeout=TIMEOUT, allow_redirects=False)
        assert first.status_code == again.status_code == 303 and first.headers["Location"] == again.headers["Location"]
        done = customer.get(base + first.headers["Location"], timeout=TIMEOUT).text
        assert 'data-outcome="succeeded"' in done and 'data-testid="prepay-applied"' in done, done[:3000]
        # the schedule re-amortised in place: rents 2…1 + left, the principal after rent 1 adds up to the balance less
        # the amount (the final rent's included), the final rent moved to the new end; one movement; the job
        with c.db.session() as s:
            lease = s.get(LeaseRow, lease_id)
            rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                                  .order_by(InstalmentRow.number)))
            receipts = s.execute(select(LeaseReceiptRow.amount, LeaseReceiptRow.applied).where(
                LeaseReceiptRow.lease_id == lease_id)).all()
            moves = s.execute(select(ServicingMovementRow.principal).where(
                ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.kind == "prepayment")).all()
            interest_moves = [tuple(m) for m in s.execute(select(
                ServicingMovementRow.principal, ServicingMovementRow.interest).where(
                ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.kind == "prepayment_interest"))]
            prepayment = s.get(PrepaymentRow, prepayment_id)
            jobs = s.execute(text("SELECT queue_name FROM procrastinate_jobs WHERE task_name = 'servicing.prepaid' "
                                  "AND args->>'prepayment_id' = :id"), {"id": prepayment_id}).all()
        assert lease is not None and prepayment is not None
        assert lease.term == 1 + left and lease.monthly_payment == rent and prepayment.status == "applied"
        # the rents no longer needed are cancelled, not deleted: zeroed, their numbers negated for the final rent's
        cancelled = [r for r in rows if r.state == "cancelled"]
        rows = [r for r in rows if r.state != "cancelled"]
        assert sorted(-r.number for r in cancelled) == list(range(lease.term + 1, 13))
        assert all(r.amount == r.principal == r.interest == 0 for r in cancelled)
        assert [r.number for r in rows] == list(range(1, lease.term + 2)) and rows[-1].kind == "final_rent"
        assert rows[-1].amount == residual and rows[-1].due_on == lease.ends_on < rows[0].due_on + timedelta(days=400)
        assert sum(r.principal for r in rows[1:]) == after and all(r.amount == r.principal + r.interest for r in rows)
        assert all(r.amount == rent for r in rows[1:-2]) and rows[-2].amount <= rent
        assert [tuple(x) for x in receipts] == [(3_000_000 + adj, 3_000_000 + adj)]
        assert [m.principal for m in moves] == [-3_000_000]
        assert interest_moves == [(0, -adj)]
        assert len(jobs) == 1
        # a second payment of the applied prepayment (another form, another attempt) applies nothing: refunded
        collection = rent_collection(c, app.config["SETTINGS"])
        paid = collection.pay_by_hand(lease, "d" * 32, payment_method="pm_card_visa", purpose=PREPAYMENT,
                                      subject_id=prepayment_id, amount=3_000_000 + adj)
        assert paid.receipt is not None and paid.receipt.applied == 0 and paid.receipt.surplus == 3_000_000 + adj
        with c.db.session() as s:
            assert sum(r.principal for r in s.scalars(select(InstalmentRow).where(
                InstalmentRow.lease_id == lease_id, InstalmentRow.number > 1))) == after
        # the lease page shows the new schedule and quotes a settlement on it
        lease_page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT)
        assert lease_page.status_code == 200 and lease_page.text.count('data-testid="instalment"') == lease.term + 1
        # in arrears (rent 2 fell due and is unpaid): refused, the arrears first
        with c.db.session() as s:
            s.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number == 2)
                      .values(due_on=today - timedelta(days=2), state="overdue",
                              overdue_since=today - timedelta(days=1), updated_at=datetime.now(UTC)))
        refused = customer.get(url, timeout=TIMEOUT).text
        assert 'data-testid="prepay-refused" data-code="arrears"' in refused
        assert customer.post(url, data={"csrf_token": csrf_of(refused), "amount": "10000"},
                             timeout=TIMEOUT).status_code == 409


def _delivered_application(c: Any) -> str:
    """An application of a dealer of its own, handed over (no customer, no pages: the database alone)."""
    group, dealer, application_id = f"g-{uuid.uuid4().hex[:12]}", f"d-{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    with c.db.session() as s:
        s.add(DealerGroupRow(id=group, name="prepayment group"))
        s.flush()
        s.add(DealerRow(id=dealer, group_id=group, name="prepayment dealer", city="上海"))
        s.flush()
        s.add(ApplicationRow(id=application_id, dealer_id=dealer, status="approved", vehicle_id="v", vehicle_label="v",
                             plan_code="p", plan_json="{}", draft_enc=""))
    return application_id


def _prepay(c: Any, lease_id: str, amount: int, option: str, key: str) -> tuple[str, int, int]:
    """Offer, choose and pay (the total) as the pages do: (prepayment id, total paid, what the booking applied)."""
    today, repo, collections = SqlServicing(c.db).business_date(), SqlPrepayments(c.db), SqlCollections(c.db)
    offer = repo.offer(lease_id, amount, "customer", datetime.now(UTC))
    repo.choose(lease_id, offer.id, option)
    attempt, _ = collections.start_attempt(lease_id=lease_id, amount=offer.total, channel="stripe", trigger="customer",
                                           key=key, business_date=today, now=datetime.now(UTC), purpose=PREPAYMENT,
                                           subject_id=offer.id)
    repo.attach(offer.id, attempt.id)
    receipt = collections.book(lease_id=lease_id, amount=offer.total, source="stripe", key=key,
                               order=load_policy().allocation_order, reference="pi_" + key, attempt_id=attempt.id,
                               now=datetime.now(UTC))
    return offer.id, offer.total, receipt.applied


def test_a_shorter_term_keeps_what_refers_to_its_dropped_rents(app: Any) -> None:
    c = app.extensions["leaseline"]
    today = SqlServicing(c.db).business_date()
    lease_id = open_lease_for(app, _delivered_application(c), today - timedelta(days=40))  # rent 1 fell due
    collections, now = SqlCollections(c.db), datetime.now(UTC)
    with c.db.session() as s:
        s.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number == 1)
                  .values(state="paid", paid_principal=InstalmentRow.principal, paid_interest=InstalmentRow.interest))
        rents = list(s.scalars(select(InstalmentRow).where(
            InstalmentRow.lease_id == lease_id, InstalmentRow.kind == "rent").order_by(InstalmentRow.number)))
    # the customer tried to pay the last rent ahead: declined (the attempt names the rent, a foreign key)
    ahead, _ = collections.start_attempt(lease_id=lease_id, amount=rents[-1].amount, channel="stripe",
                                         trigger="customer", key=f"pay:{lease_id}:ahead", business_date=today, now=now,
                                         instalment_id=rents[-1].id)
    collections.move(ahead.id, ("created",), "failed", now, failure_code="card_declined")
    # a payment of rent 3 waiting for the customer's bank: no offer (409), and an offer made before it is not applied
    waiting, _ = collections.start_attempt(lease_id=lease_id, amount=rents[2].amount, channel="stripe",
                                           trigger="customer", key=f"pay:{lease_id}:waiting", business_date=today,
                                           now=now, instalment_id=rents[2].id)
    collections.move(waiting.id, ("created",), "requires_action", now)
    with pytest.raises(PrepaymentRefused) as under_way:
        SqlPrepayments(c.db).offer(lease_id, 2_000_000, "customer", now)
    assert (under_way.value.status, under_way.value.error.code) == (409, "under_way")
    assert "第 3 期" in under_way.value.error.text_zh
    collections.move(waiting.id, ("requires_action",), "canceled", now)
    offer = SqlPrepayments(c.db).offer(lease_id, 2_000_000, "customer", now)
    SqlPrepayments(c.db).choose(lease_id, offer.id, "lower_rent")
    again, _ = collections.start_attempt(lease_id=lease_id, amount=rents[2].amount, channel="stripe",
                                         trigger="customer", key=f"pay:{lease_id}:again", business_date=today,
                                         now=now, instalment_id=rents[2].id)
    collections.move(again.id, ("created",), "processing", now)
    attempt, _ = collections.start_attempt(lease_id=lease_id, amount=offer.total, channel="stripe", trigger="customer",
                                           key=f"pay:{lease_id}:late", business_date=today, now=now,
                                           purpose=PREPAYMENT, subject_id=offer.id)
    refused = collections.book(lease_id=lease_id, amount=offer.total, source="stripe", key=attempt.key,
                               order=load_policy().allocation_order, attempt_id=attempt.id, now=now)
    assert (refused.applied, refused.surplus, refused.refund_status) == (0, offer.total, "pending")
    collections.move(again.id, ("processing",), "failed", now, failure_code="card_declined")

    # the shorter term: rents dropped, the declined attempt's among them; booked, the money applied, nothing deleted
    first_id, total, applied = _prepay(c, lease_id, 3_000_000, "shorter_term", f"pay:{lease_id}:p1")
    adj = interest(3_000_000, rents[0].due_on, today)
    assert applied == total == 3_000_000 + adj
    with c.db.session() as s:
        rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))
        lease = s.get(LeaseRow, lease_id)
        assert lease is not None
        term = lease.term
    kept = [r for r in rows if r.state != "cancelled"]
    cancelled = {-r.number: r for r in rows if r.state == "cancelled"}
    assert [r.number for r in kept] == list(range(1, term + 2)) and kept[-1].kind == "final_rent"
    assert sorted(cancelled) == list(range(term + 1, 13)) and rents[-1].id in {r.id for r in cancelled.values()}
    assert all(r.amount == r.principal == r.interest == 0 for r in cancelled.values())

    # the annex of the first states what it applied, even once a second one (the same day) changed the schedule
    docs = SqlLeaseDocuments(c.db)
    first = docs.prepayment(first_id)
    assert first is not None and first.accrued_interest == adj
    body_then = annex_body(first)
    annex = body_then["annex"]
    assert [r["number"] for r in annex["rows"]] == [r.number for r in kept[1:]]
    assert [r["rent"] for r in annex["rows"]] == [f"{Decimal(r.amount) / 100:.2f}" for r in kept[1:]]
    assert annex["balance_after"] == f"{Decimal(sum(r.principal for r in kept[1:])) / 100:.2f}"
    assert annex["rows"][-1]["final"] and annex["rows"][-1]["balance"] == "0.00"
    _, _, applied = _prepay(c, lease_id, 1_500_000, "lower_rent", f"pay:{lease_id}:p2")
    assert applied > 0
    first = docs.prepayment(first_id)
    assert first is not None and annex_body(first) == body_then
