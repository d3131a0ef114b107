"""A partial prepayment from the customer's phone (issue 18 §5), over real HTTP with localstripe (TEST MODE): bad
amounts are 4xx pages keeping what was typed; both options are offered; a superseded or expired offer cannot be paid;
the chosen option is paid once (a double tap, a second payment of an applied offer refunded in full); the schedule is
re-amortised in place and reconciles to the fen (numpy-financial's number of rents), the final rent moved to the new
end; the ``servicing.prepaid`` job is deferred with it; a lease in arrears is refused."""

from __future__ import annotations

import math
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import numpy_financial as npf
import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bff.servicing.collect import rent_collection
from infra.collections import PREPAYMENT
from infra.db.models import InstalmentRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import LeaseRow
from infra.db.models import PrepaymentRow
from infra.db.models import ServicingMovementRow
from infra.servicing import SqlServicing
from tests.common.leases import open_lease_for
from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_returning_customer import join

pytestmark = pytest.mark.db


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


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
            assert valid_until == rows[1].due_on - timedelta(days=1)
            s.execute(update(PrepaymentRow).where(PrepaymentRow.id == prepayment_id)
                      .values(valid_until=today - timedelta(days=1)))
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
            prepayment = s.get(PrepaymentRow, prepayment_id)
            jobs = s.execute(text("SELECT queue_name FROM procrastinate_jobs WHERE task_name = 'servicing.prepaid' "
                                  "AND args->>'prepayment_id' = :id"), {"id": prepayment_id}).all()
        assert lease is not None and prepayment is not None
        assert lease.term == 1 + left and lease.monthly_payment == rent and prepayment.status == "applied"
        assert [r.number for r in rows] == list(range(1, lease.term + 2)) and rows[-1].kind == "final_rent"
        assert rows[-1].amount == residual and rows[-1].due_on == lease.ends_on < rows[0].due_on + timedelta(days=400)
        assert sum(r.principal for r in rows[1:]) == after and all(r.amount == r.principal + r.interest for r in rows)
        assert all(r.amount == rent for r in rows[1:-2]) and rows[-2].amount <= rent
        assert [tuple(x) for x in receipts] == [(3_000_000, 3_000_000)] and [m.principal for m in moves] == [-3_000_000]
        assert len(jobs) == 1
        # a second payment of the applied prepayment (another form, another attempt) applies nothing: refunded
        collection = rent_collection(c, app.config["SETTINGS"])
        paid = collection.pay_by_hand(lease, "d" * 32, payment_method="pm_card_visa", purpose=PREPAYMENT,
                                      subject_id=prepayment_id, amount=3_000_000)
        assert paid.receipt is not None and paid.receipt.applied == 0 and paid.receipt.surplus == 3_000_000
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
