"""The end of the term on the phone (issue 18 §6), over real HTTP: a lease 30 days from its end shows the options with
their figures; the lessee keeps the car (the purchase price added as an instalment, the deposit applied on the last
day by the close's hook, the lease ended once paid); another returns it and the dealer inspects it on the phone
(odometer, damage items, a photo): the charges from the product file come out of the deposit, the rest is refunded,
the lease ends. Who may do what: the lessee chooses, staff read, only the lease's dealer inspects."""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy import update

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.applications.services import reused_identity
from infra.applications import Scope
from infra.db.models import ApplicationEventRow
from infra.db.models import ApplicationRow
from infra.db.models import AuditEventRow
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import KycCheckRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import MortgageReleaseRow
from infra.db.models import PaymentRow
from infra.db.models import ServicingMovementRow
from infra.end_of_term import SqlEndOfTerm
from infra.end_of_term import end_of_term_hook
from infra.servicing import BatchEvents
from infra.servicing import SqlServicing
from infra.servicing import _awaiting_return
from infra.servicing import load_business_calendar
from plans.timeline import add_months
from tests.common.leases import open_lease_for
from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import SALES_A
from tests.integration.test_returning_customer import join

pytestmark = pytest.mark.db
DEPOSIT = 1_000_000  # 5 % of ¥200,000 (tests.common.leases.priced)
ATTRS = re.compile(r'([a-z][\w-]*)="([^"]*)"')


def attrs(page: str, testid: str) -> dict[str, str]:
    found = re.search(rf'<[a-z]+ [^>]*data-testid="{testid}"[^>]*>', page)
    assert found, (testid, page[-1500:])
    return dict(ATTRS.findall(found.group(0)))


def near_its_end(app: Any, base: str, mobile: str) -> tuple[Any, str, date]:
    """A lessee whose 12-month lease ends 30 days after the business date, every rent but the final one paid."""
    customer, _ = join(base, app, mobile)
    application_id = start(base, customer)
    business_date = SqlServicing(app.extensions["leaseline"].db).business_date()
    starts_on = business_date
    while add_months(starts_on, 12) > business_date + timedelta(days=30):
        starts_on -= timedelta(days=1)
    lease_id = open_lease_for(app, application_id, starts_on)
    now = datetime.now(UTC)
    with app.extensions["leaseline"].db.session() as s:
        s.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.kind == "rent").values(
            state="paid", paid_principal=InstalmentRow.principal, paid_interest=InstalmentRow.interest,
            settled_on=InstalmentRow.due_on))
        # what the handover leaves (bff/payments/settlement.py): the term running, the deposit paid at signing
        lease = s.get(LeaseRow, lease_id)
        s.add(LeaseTermRow(application_id=application_id, dealer_id=lease.dealer_id, term_months=12,
                           starts_on=lease.starts_on, ends_on=lease.ends_on, delivered_at=now, delivered_by="sales",
                           delivered_by_label="sales", deduction=0))
        s.add(PaymentRow(id=str(uuid.uuid4()), application_id=application_id, dealer_id=lease.dealer_id,
                         kind="deposit", amount=DEPOSIT, status="succeeded", intent_id=f"pi_{uuid.uuid4().hex[:20]}",
                         captured=DEPOSIT, refunded=0, created_at=now, updated_at=now))
    return customer, lease_id, business_date


def rows(app: Any, lease_id: str) -> dict[str, InstalmentRow]:
    with app.extensions["leaseline"].db.session() as s:
        return {r.kind: r for r in s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id))}


def audits(s: Any, lease_id: str) -> list[AuditEventRow]:
    """The lease's end-of-term audit entries, oldest first."""
    return list(s.scalars(select(AuditEventRow).where(
        AuditEventRow.target == f"lease:{lease_id}", AuditEventRow.action.like("end_of_term.%"))
        .order_by(AuditEventRow.id)))


def close_hook(app: Any, lease_id: str, day: date) -> None:
    with app.extensions["leaseline"].db.session() as s:
        end_of_term_hook(BatchEvents(day, s, (lease_id,), (), ()), datetime.now(UTC))


def test_the_lessee_keeps_the_car_the_deposit_offsets_on_the_last_day_and_the_lease_ends(
        bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, lease_id, _ = near_its_end(app, base, "13700138811")
    final = rows(app, lease_id)["final_rent"]
    final_rent = final.principal + final.interest
    with app.extensions["leaseline"].db.session() as s:  # a contract that states its notice: 45 days, not a fixed 30
        lease = s.get(LeaseRow, lease_id)
        lease.terms = json.dumps({**json.loads(lease.terms or "{}"), "end_of_term": {"notice_days": 45}})
    with customer:
        page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
        block = attrs(page, "end-of-term")
        assert block["data-notice"] == "45" and "45" in page
        assert block["data-chosen"] == "" and int(block["data-purchase-to-pay"]) == final_rent + 10_000 - DEPOSIT
        url = f"{base}/leases/{lease_id}/end-of-term"
        r = customer.get(url, timeout=TIMEOUT)
        assert r.status_code == 200 and int(attrs(r.text, "opt-purchase")["data-to-pay"]) == final_rent - 990_000
        assert attrs(r.text, "return-terms")["data-allowance"] == "20000"
        # no option: refused, nothing recorded
        r = customer.post(url, data={"option": "lease-forever", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'data-testid="eot-error"' in r.text
        # staff read the page, never choose for the lessee; another dealer's staff: no such lease
        with sign_in(base, SALES_A) as sales:
            assert sales.get(url, timeout=TIMEOUT).status_code == 200
            assert sales.post(url, data={"option": "purchase", "csrf_token": csrf(sales, url)},
                              timeout=TIMEOUT).status_code == 403
        with sign_in(base, "admin.xihu@demo.leaseline.cn") as xihu:
            assert xihu.get(url, timeout=TIMEOUT, allow_redirects=False).status_code == 404
        r = customer.post(url, data={"option": "purchase", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 200 and attrs(r.text, "eot-head")["data-option"] == "purchase"
        assert {a["data-kind"] for a in map(dict, (ATTRS.findall(t) for t in re.findall(
            r'<li [^>]*data-testid="eot-pay"[^>]*>', r.text)))} == {"final_rent", "purchase_price"}
        # a second choice: refused
        r = customer.post(url, data={"option": "return", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 409
    price = rows(app, lease_id)["purchase_price"]
    assert (price.amount, price.principal, price.interest, price.due_on, price.state) == (
        10_000, 10_000, 0, final.due_on, "pending")

    # ops' closing page (结清, bff/payments/settlement.py) neither lists nor closes a lease the servicing ends: its
    # term past its end there, it would have refunded the whole deposit the end of term applies too
    svc = app.extensions["leaseline"]
    settlement = svc.payments.settlement
    with svc.db.session() as s:
        application_id = s.get(LeaseRow, lease_id).application_id
        s.execute(update(LeaseTermRow).where(LeaseTermRow.application_id == application_id).values(
            ends_on=settlement.today() - timedelta(days=1)))
    assert application_id not in {line.term.application_id for line in settlement.leases_to_close()}
    with sign_in(base, "ops@demo.leaseline.cn") as ops_user:  # nor offers its close form (posting it: 409)
        shown = ops_user.get(f"{base}/applications/{application_id}/lease", timeout=TIMEOUT).text
        assert 'data-testid="close"' not in shown and 'data-testid="serviced"' in shown
    ops = Actor("staff", "ops", "ops", Scope(), None)
    with pytest.raises(NotAllowed) as refused:
        settlement.close(ops, svc.applications.repo.get(application_id, Scope()), 0, "")
    assert refused.value.code == "serviced"
    # a term ops closed before (its deposit refunded by the settle job): the end of term applies none of it. Said
    # as "settled", the settle job's last state: "due" would be taken by the suite's worker (it runs every queue)
    # and settled for real meanwhile, refunding the deposit the rest of this test applies
    with svc.db.session() as s:
        s.execute(update(LeaseTermRow).where(LeaseTermRow.application_id == application_id).values(
            settlement="settled"))
    close_hook(app, lease_id, final.due_on)
    assert rows(app, lease_id)["purchase_price"].state == "pending"
    with svc.db.session() as s:
        assert not s.scalars(select(ServicingMovementRow).where(
            ServicingMovementRow.lease_id == lease_id, ServicingMovementRow.kind == "deposit_offset")).all()
        # the term still running, ¥100 of the deposit refunded by hand meanwhile: only what the deposit holds applies
        s.execute(update(LeaseTermRow).where(LeaseTermRow.application_id == application_id).values(settlement=None))
        s.execute(update(PaymentRow).where(PaymentRow.application_id == application_id).values(refunded=10_000))

    # the close of the last day: the deposit pays the purchase price, then 980,000 fen of the final rent (once)
    close_hook(app, lease_id, final.due_on)
    close_hook(app, lease_id, final.due_on + timedelta(days=1))
    after = rows(app, lease_id)
    assert after["purchase_price"].state == "paid"
    assert after["final_rent"].paid_principal + after["final_rent"].paid_interest == 980_000
    with app.extensions["leaseline"].db.session() as s:
        eot = s.get(EndOfTermRow, lease_id)
        assert eot is not None and (eot.deposit_deduction, eot.refund, eot.status) == (DEPOSIT - 10_000, 0, "chosen")
        # the rest of the final rent paid (as the pay page books it): the next close ends the lease
        s.execute(update(InstalmentRow).where(InstalmentRow.id == after["final_rent"].id).values(
            state="paid", paid_principal=InstalmentRow.principal, paid_interest=InstalmentRow.interest))
    close_hook(app, lease_id, final.due_on + timedelta(days=2))
    with app.extensions["leaseline"].db.session() as s:
        assert s.get(LeaseRow, lease_id).status == "ended"
        assert (s.get(EndOfTermRow, lease_id).status, s.get(EndOfTermRow, lease_id).ended_on) == (
            "ended", final.due_on + timedelta(days=2))
        term = s.get(LeaseTermRow, application_id)
        # nothing left for the settle job (which the suite's worker may have run already: settled, nothing refunded)
        assert term.settlement in ("due", "settled") and term.deduction == DEPOSIT - 10_000
        # the car is the customer's: the dealer's mortgage release opened with the ending, dated the day it ended
        release = s.get(MortgageReleaseRow, lease_id)
        assert release is not None and (release.status, release.opened_on) == ("open", final.due_on + timedelta(days=2))
    close_hook(app, lease_id, final.due_on + timedelta(days=3))  # ended already: no second release, no second audit
    with app.extensions["leaseline"].db.session() as s:
        assert s.get(MortgageReleaseRow, lease_id).opened_on == final.due_on + timedelta(days=2)
        audit = audits(s, lease_id)
        assert [(a.action, a.actor_label) for a in audit] == [
            ("end_of_term.chosen", "customer"), ("end_of_term.ended", "system:close")]
        assert json.loads(audit[0].details) == {"option": "purchase", "purchase_price": 10_000}
        assert json.loads(audit[1].details) == {"option": "purchase", "purchase_price": 10_000, "charges": 0,
                                                "deposit_applied": DEPOSIT - 10_000, "refund": 0}
    # the lease over: its end-of-term page says so and when, with nothing to choose; the lease page does not link it
    with customer:
        over = customer.get(f"{base}/leases/{lease_id}/end-of-term", timeout=TIMEOUT).text
        assert attrs(over, "eot-over")["data-status"] == "ended"
        assert (final.due_on + timedelta(days=2)).isoformat() in over.split('data-testid="eot-over"')[1]
        assert 'data-testid="eot-form"' not in over and 'data-testid="eot-pay"' not in over
        assert "/end-of-term" not in customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def phone_photo() -> bytes:
    """A photo as a phone takes one: more than the app-wide 1 MB a form may post."""
    out = io.BytesIO()
    Image.frombytes("RGB", (1280, 960), os.urandom(1280 * 960 * 3)).save(out, "JPEG", quality=95)
    assert 1024 * 1024 < len(out.getvalue()) < 10 * 1024 * 1024
    return out.getvalue()


def test_the_dealer_inspects_a_returned_car_on_the_phone_and_the_deposit_pays_the_charges(
        bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, lease_id, business_date = near_its_end(app, base, "13700138812")
    with app.extensions["leaseline"].db.session() as s:
        lease = s.get(LeaseRow, lease_id)
    with customer:
        url = f"{base}/leases/{lease_id}/end-of-term"
        r = customer.post(url, data={"option": "return", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 200 and 'data-testid="eot-awaiting-inspection"' in r.text
        assert 'data-testid="eot-inspection-awaited"' in customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
    # awaiting the inspection: the close neither marks the final rent overdue nor charges it late (infra/servicing.py)
    db = app.extensions["leaseline"].db
    final_id = rows(app, lease_id)["final_rent"].id
    with db.session() as s:
        assert _awaiting_return(s, [final_id]) == {final_id}
    # not inspected 10 days (the policy's) after the term's end: on ops' desk
    ends_on = lease.ends_on
    assert [r.lease_id for r in SqlEndOfTerm(db).desk(None, ends_on + timedelta(days=11), 10).returns].count(lease_id)
    assert lease_id not in [r.lease_id for r in SqlEndOfTerm(db).desk(None, ends_on + timedelta(days=10), 10).returns]
    with sign_in(base, "ops@demo.leaseline.cn") as ops:
        assert f'data-lease="{lease_id}"' in ops.get(f"{base}/servicing/end-of-term", timeout=TIMEOUT).text
    inspection = f"{base}/servicing/returns/{lease_id}/inspection"
    with sign_in(base, "ops@demo.leaseline.cn") as ops:  # the lessor's ops do not take cars back
        assert ops.get(inspection, timeout=TIMEOUT, allow_redirects=False).status_code == 403
    with sign_in(base, "admin.xihu@demo.leaseline.cn") as xihu:  # another dealer
        assert xihu.get(inspection, timeout=TIMEOUT, allow_redirects=False).status_code == 404
    photos = object_key_prefix(app, lease.application_id)
    app.extensions["leaseline"].store.ensure_bucket()
    with sign_in(base, SALES_A) as sales:
        assert sales.get(inspection, timeout=TIMEOUT).status_code == 200
        # before the term's end (its terms allow no earlier return): refused, what was typed kept, nothing stored
        r = sales.post(inspection, data={"mileage": "20100", "notes": "早到", "csrf_token": csrf(sales, inspection)},
                       files={"photos": ("car.jpg", photo(), "image/jpeg")}, timeout=TIMEOUT)
        assert r.status_code == 409 and ends_on.isoformat() in r.text and 'value="20100"' in r.text, r.text[-800:]
        assert "早到" in r.text and getattr(SqlEndOfTerm(db).get(lease_id), "status", None) == "chosen"
        assert app.extensions["leaseline"].store.list_keys(photos) == []
    with db.session() as s:  # the term's last day comes
        s.execute(update(LeaseRow).where(LeaseRow.id == lease_id).values(ends_on=business_date))
    with sign_in(base, SALES_A) as sales:
        # a reading in superscript digits (str.isdigit() says yes, int() says no): 422, not 500
        r = sales.post(inspection, data={"mileage": "²", "csrf_token": csrf(sales, inspection)},
                       files={"photos": ("car.jpg", photo(), "image/jpeg")}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'value="²"' in r.text and 'id="error-mileage"' in r.text
        # notes with a control character (one that hides or reorders text): 422, the rest kept
        r = sales.post(inspection, data={"mileage": "20100", "notes": "前挡\u202e裂纹",
                                         "csrf_token": csrf(sales, inspection)},
                       files={"photos": ("car.jpg", photo(), "image/jpeg")}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'id="error-notes"' in r.text and 'value="20100"' in r.text
        # a reading that is no number: 422, what was typed kept, nothing recorded
        r = sales.post(inspection, data={"mileage": "20l00", "damage": ["windscreen"], "notes": "前挡裂纹",
                                         "csrf_token": csrf(sales, inspection)},
                       files={"photos": ("car.jpg", photo(), "image/jpeg")}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'value="20l00"' in r.text and "前挡裂纹" in r.text
        assert 'id="error-mileage"' in r.text and 'value="windscreen" checked' in r.text
        assert app.extensions["leaseline"].store.list_keys(photos) == []
        # 20,100 km: 100 over the 20,000 allowed × ¥0.50 = ¥50.00; the windscreen ¥1,500.00 (a phone's photo, > 1 MB)
        r = sales.post(inspection, data={"mileage": "20100", "damage": ["windscreen"], "notes": "前挡裂纹",
                                         "csrf_token": csrf(sales, inspection)},
                       files={"photos": ("car.jpg", phone_photo(), "image/jpeg")}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text[-1500:]
        done = attrs(r.text, "inspection-done")
        assert (int(done["data-excess"]), int(done["data-damage"]), int(done["data-deduction"]),
                int(done["data-refund"]), int(done["data-owed"])) == (5_000, 150_000, 155_000, DEPOSIT - 155_000, 0)
        assert done["data-status"] == "ended"
        # posted again (another tab): refused, and its photo stored on the way removed again
        r = sales.post(inspection, data={"mileage": "20100", "csrf_token": csrf(sales, inspection)},
                       files={"photos": ("car.jpg", photo(), "image/jpeg")}, timeout=TIMEOUT)
        assert r.status_code == 409
        assert len(app.extensions["leaseline"].store.list_keys(photos)) == 1
    after = rows(app, lease_id)
    assert after["final_rent"].state == "waived" and after["return_charges"].state == "paid"
    with app.extensions["leaseline"].db.session() as s:
        eot = s.get(EndOfTermRow, lease_id)
        assert eot is not None and eot.mileage_km == 20_100 and json.loads(eot.damage_items) == ["windscreen"]
        keys = json.loads(eot.photo_keys)
        assert len(keys) == 1 and keys[0].startswith("tenants/")
        assert s.get(LeaseRow, lease_id).status == "ended"
        # the deposit settled with the ending: the term closed keeping what the deposit paid, the rest due for the
        # settle job's refund; the application closed
        term = s.get(LeaseTermRow, lease.application_id)
        assert (term.deduction, term.closed_by) == (155_000, "system")
        # due for the settle job's refund — which the suite's own worker may have run already (its refund of this
        # test's deposit, made without a Stripe payment, then wants ops' attention)
        assert term.settlement in ("due", "settled", "attention"), term.settlement
        assert s.get(ApplicationRow, lease.application_id).status == "closed"
        assert _awaiting_return(s, [final_id]) == set()  # inspected: nothing paused any more
        assert s.get(MortgageReleaseRow, lease_id) is None  # the car came back: nothing to release
        audit = audits(s, lease_id)
        assert [a.action for a in audit] == ["end_of_term.chosen", "end_of_term.inspected", "end_of_term.ended"]
        assert audit[1].actor_id == audit[2].actor_id and audit[1].actor_id is not None  # the dealer's staff
        figures = {"option": "return", "charges": 155_000, "deposit_applied": 155_000, "refund": DEPOSIT - 155_000}
        assert json.loads(audit[1].details) == {**figures, "owed": 0}
        assert json.loads(audit[2].details) == {**figures, "purchase_price": 0}
    assert app.extensions["leaseline"].store.get(keys[0])[:2] == b"\xff\xd8"  # the photo, stored as a JPEG


def object_key_prefix(app: Any, application_id: str) -> str:
    """Where a return's photos are stored (bff/servicing/end_of_term.py)."""
    with app.extensions["leaseline"].db.session() as s:
        dealer_id = s.get(ApplicationRow, application_id).dealer_id
    return f"tenants/{dealer_id}/applications/{application_id}/return_photo/"


def test_refinancing_the_final_rent_makes_a_new_application_the_lessee_opens(bff_server: Any, app: Any) -> None:
    """The lessee who refinances gets a new application pre-filled from the lease's (same dealer, invitation and car;
    the final rent as the used car's price; the identity check reused within the policy's 90 days), once."""
    base = bff_server.url
    customer, lease_id, _ = near_its_end(app, base, "13700138813")
    svc = app.extensions["leaseline"]
    with svc.db.session() as s:
        old_id = s.get(LeaseRow, lease_id).application_id
    # the lease's application passed its identity check an hour ago (its card valid for long): reused
    svc.applications.merge_draft(old_id, lambda d: {**d, "name": "王小明", "id_number": "110101199003074514",
                                                    "id_valid_to": "长期"}, editable_only=False)
    with svc.db.session() as s:
        s.add(ApplicationEventRow(application_id=old_id, at=datetime.now(UTC) - timedelta(hours=1),
                                  actor_kind="system", actor_id="kyc", from_status="submitted",
                                  to_status="kyc_passed", note="face_match_pass"))
    final = rows(app, lease_id)["final_rent"]
    with customer:
        url = f"{base}/leases/{lease_id}/end-of-term"
        # no term for the new plan: 422, the option kept, nothing recorded
        r = customer.post(url, data={"option": "refinance", "term": "7", "csrf_token": csrf(customer, url)},
                          timeout=TIMEOUT)
        assert r.status_code == 422 and 'data-testid="term-error"' in r.text
        assert re.search(r'value="refinance" checked', r.text)
        r = customer.post(url, data={"option": "refinance", "term": "²", "csrf_token": csrf(customer, url)},
                          timeout=TIMEOUT)  # str.isdigit() says yes, int() says no: 422, not 500
        assert r.status_code == 422 and 'data-testid="term-error"' in r.text
        assert SqlEndOfTerm(svc.db).get(lease_id) is None
        r = customer.post(url, data={"option": "refinance", "term": "24", "csrf_token": csrf(customer, url)},
                          timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 303 and "/applications/" in r.headers["Location"], r.text[-800:]
        new_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        assert customer.get(base + r.headers["Location"], timeout=TIMEOUT).status_code == 200  # theirs to open
        # again (a double tap): the same application
        again = f"{base}/leases/{lease_id}/end-of-term/refinance"
        r = customer.post(again, data={"term": "24", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT,
                          allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"].endswith(new_id)
        assert attrs(customer.get(url, timeout=TIMEOUT).text, "eot-refinance")["data-application"] == new_id
        assert attrs(customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text, "end-of-term")[
            "data-notice"] == ""  # its terms state no notice: no figure named
        assert f"/applications/{new_id}" in attrs(customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text,
                                                  "eot-refinance-link")["href"]
        assert new_id in customer.get(f"{base}/mine", timeout=TIMEOUT).text  # 我的租赁 lists it
    with svc.db.session() as s:
        assert s.get(EndOfTermRow, lease_id).refinance_application_id == new_id
        old, new = s.get(ApplicationRow, old_id), s.get(ApplicationRow, new_id)
        assert (new.dealer_id, new.invitation_id, new.vehicle_id, new.mobile_hash, new.status) == (
            old.dealer_id, old.invitation_id, old.vehicle_id, old.mobile_hash, "draft")
        plan = json.loads(new.plan_json)
        assert plan["refinance"]["lease_id"] == lease_id
        assert plan["vehicle"]["price"] == f"{(final.principal + final.interest) / 100:.2f}"
        assert plan["choice"]["term"] == 24 and plan["choice"]["down_ratio"] == "0.30"
        assert new.id_hash == old.id_hash and new.customer_name == "王小明"
        check = s.scalars(select(KycCheckRow).where(KycCheckRow.application_id == new_id)).one()
        assert (check.kind, check.state, check.outcome) == ("id_card", "done", "ok")
        assert json.loads(check.detail)["reused_from"] == old_id
    assert reused_identity(svc.applications.draft(svc.applications.repo.get(new_id, Scope())), old.id_hash,
                           datetime.now(UTC)) == old_id
    # the new lease handed over with the old final rent still open: on ops' end-of-term desk, to pay off by hand
    with svc.db.session() as s:
        s.execute(update(ApplicationRow).where(ApplicationRow.id == new_id).values(status="delivered"))
    with sign_in(base, "ops@demo.leaseline.cn") as ops:
        desk = ops.get(f"{base}/servicing/end-of-term", timeout=TIMEOUT).text
        line = attrs(desk, f'desk-refinance" data-lease="{lease_id}')
        assert line["data-application"] == new_id and int(line["data-left"]) == final.principal + final.interest
    with sign_in(base, "admin.xihu@demo.leaseline.cn") as xihu:  # another dealer's: not theirs
        assert lease_id not in xihu.get(f"{base}/servicing/end-of-term", timeout=TIMEOUT).text
    # the new lease opened (its handover signed): the old final rent paid off by it in that transaction, once
    business_date = SqlServicing(svc.db).business_date()
    open_lease_for(app, new_id, business_date)
    paid = rows(app, lease_id)["final_rent"]
    assert (paid.state, paid.paid_principal, paid.paid_interest, paid.settled_on) == (
        "paid", final.principal, final.interest, business_date)
    with svc.db.session() as s:
        moved = s.scalars(select(ServicingMovementRow).where(ServicingMovementRow.lease_id == lease_id,
                                                              ServicingMovementRow.kind == "refinanced")).one()
        assert (moved.key, moved.instalment_id, moved.principal, moved.interest) == (
            f"refinanced:{lease_id}", paid.id, -final.principal, -final.interest)
    with sign_in(base, "ops@demo.leaseline.cn") as ops:  # funded: off the desk; the desk in the header's menu
        desk = ops.get(f"{base}/servicing/end-of-term", timeout=TIMEOUT).text
        assert lease_id not in desk and attrs(desk, "nav-end-of-term")["href"] == "/servicing/end-of-term"
    close_hook(app, lease_id, business_date)  # the close ends the old lease and settles its deposit
    with svc.db.session() as s:
        assert s.get(LeaseRow, lease_id).status == "ended"
        assert s.get(EndOfTermRow, lease_id).status == "ended"
        term = s.scalars(select(LeaseTermRow).where(LeaseTermRow.application_id == old_id)).one()
        assert (term.settlement, term.deduction) == ("due", 0)  # the whole deposit refunded


def test_a_refinance_not_approved_may_be_changed_within_5_working_days_of_the_result(bff_server: Any,
                                                                                       app: Any) -> None:
    """第七条: a refinance declined, the lessee may choose another way within 5 working days of the result (the
    decline's day in Beijing time) — the options shown again with the deadline; after it, the page says to contact the
    dealer and the choice stands. Keeping the car then adds the purchase price and unlinks the declined application."""
    base = bff_server.url
    customer, lease_id, business_date = near_its_end(app, base, "13700138817")
    svc = app.extensions["leaseline"]
    url = f"{base}/leases/{lease_id}/end-of-term"
    with customer:
        r = customer.post(url, data={"option": "refinance", "term": "24", "csrf_token": csrf(customer, url)},
                          timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 303, r.text[-800:]
        new_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        # still under review: the choice stands (409 chosen), nothing to choose again
        r = customer.post(url, data={"option": "purchase", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 409 and 'data-testid="eot-rechoose"' not in r.text
    shanghai = ZoneInfo("Asia/Shanghai")
    with svc.db.session() as s:  # declined at 10:00 Beijing time 20 days before the business date: too late
        s.execute(update(ApplicationRow).where(ApplicationRow.id == new_id).values(status="declined"))
        event = ApplicationEventRow(application_id=new_id, at=datetime.combine(
            business_date - timedelta(days=20), time(10), tzinfo=shanghai), actor_kind="system", actor_id="risk",
            from_status="submitted", to_status="declined", note="decline")
        s.add(event)
        s.flush()
        event_id = event.id
    with customer:
        page = customer.get(url, timeout=TIMEOUT).text
        assert 'data-testid="eot-rechoose-closed"' in page and 'data-testid="eot-form"' not in page
        r = customer.post(url, data={"option": "purchase", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 409
    assert SqlEndOfTerm(svc.db).get(lease_id).option == "refinance"
    with svc.db.session() as s:  # declined today (Beijing time): open for 5 working days
        s.execute(update(ApplicationEventRow).where(ApplicationEventRow.id == event_id).values(
            at=datetime.combine(business_date, time(10), tzinfo=shanghai)))
        until = load_business_calendar(s).add_business_days(business_date, 5)
    with customer:
        page = customer.get(url, timeout=TIMEOUT).text
        assert attrs(page, "eot-rechoose")["data-until"] == until.isoformat()
        assert 'data-testid="eot-form"' in page and 'value="refinance"' not in page  # another way: not again
        # refinancing again, or nothing chosen: 422, what was chosen kept, nothing changed
        r = customer.post(url, data={"option": "refinance", "term": "24", "csrf_token": csrf(customer, url)},
                          timeout=TIMEOUT)
        assert r.status_code == 422 and 'data-testid="eot-error"' in r.text
        r = customer.post(url, data={"option": "", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'data-testid="eot-rechoose"' in r.text
        assert SqlEndOfTerm(svc.db).get(lease_id).option == "refinance"
        r = customer.post(url, data={"option": "purchase", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT,
                          allow_redirects=False)
        assert r.status_code == 303, r.text[-800:]
        # chosen again: once — the row no longer a refinance, a second change refused
        r = customer.post(url, data={"option": "return", "csrf_token": csrf(customer, url)}, timeout=TIMEOUT)
        assert r.status_code == 409
    chosen = SqlEndOfTerm(svc.db).get(lease_id)
    assert (chosen.option, chosen.refinance_application_id, chosen.status) == ("purchase", None, "chosen")
    assert rows(app, lease_id)["purchase_price"].principal == chosen.purchase_price > 0
    with svc.db.session() as s:
        assert [(a.action, json.loads(a.details)["option"]) for a in audits(s, lease_id)] == [
            ("end_of_term.chosen", "refinance"), ("end_of_term.chosen_again", "purchase")]


def test_a_lease_without_a_final_rent_offers_keeping_the_car_only_and_says_arrears_are_paid_first(
        bff_server: Any, app: Any) -> None:
    """Walk-through 77: a lease with no final rent (0 % residual) was offered to refinance ¥0.00 and to return the car
    against a final rent of ¥0; its contract (第七条) has the title pass once everything is paid, no other option.
    What is owed now was one "overdue rent" line mixing a rent due but not late with the late charges."""
    base = bff_server.url
    customer, lease_id, business_date = near_its_end(app, base, "13700138809")
    before = rows(app, lease_id)
    with app.extensions["leaseline"].db.session() as s:
        s.execute(update(LeaseRow).where(LeaseRow.id == lease_id).values(residual=0))  # its final rent none
        s.execute(update(InstalmentRow).where(InstalmentRow.id == before["final_rent"].id).values(
            state="cancelled", number=-InstalmentRow.number, amount=0, principal=0, interest=0))
        late, due = (s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id,
                                                           InstalmentRow.number == n)).one() for n in (10, 11))
        late.state, late.paid_principal, late.paid_interest = "overdue", 0, 0
        late.overdue_since, late.penalty_accrued = late.due_on + timedelta(days=1), 1234
        due.state, due.paid_principal, due.paid_interest, due.due_on = "due", 0, 0, business_date
        owed = late.amount + due.amount
    url = f"{base}/leases/{lease_id}/end-of-term"
    with customer:
        page = customer.get(url, timeout=TIMEOUT).text
        form = page.split('data-testid="eot-form"')[1]
        assert 'data-testid="opt-purchase"' in form
        assert 'data-testid="opt-return"' not in form and 'data-testid="opt-refinance"' not in form
        assert "¥0.00" not in form and "尾付租金 ¥" not in page  # no final rent to speak of
        assert int(attrs(page, "eot-due-now")["data-amount"]) == owed
        assert int(attrs(page, "eot-late-charges")["data-amount"]) == 1234
        assert "逾期租金" not in form
        assert 'data-testid="eot-arrears-first"' in page  # in arrears: paid first, whatever is chosen
        block = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text.split('data-testid="end-of-term"')[1]
        assert 'data-testid="eot-return"' not in block and 'data-testid="eot-refinance"' not in block
        for option in ("return", "refinance"):  # not the contract's: refused, nothing recorded
            r = customer.post(url, data={"option": option, "term": "12", "csrf_token": csrf(customer, url)},
                              timeout=TIMEOUT)
            assert r.status_code == 422 and 'data-testid="eot-error"' in r.text, option
        assert SqlEndOfTerm(app.extensions["leaseline"].db).get(lease_id) is None
