"""E-invoices on the pages (issue 19 §3), over real HTTP with the suite's worker issuing them on the sandbox platform:
the lessee sees their invoices on their lease page (我的租赁: number, date, amount, tax, status) and downloads each as
the platform's specimen PDF (never cached, the ID number masked), and nobody else does (another customer, another
dealer's staff: 404); a rejection is visible to ops (the lease page, the list of invoices to look at, the failed job
on /ops/jobs) and sent again once put right; ops correct an invoice (red-letter, then reissued); and the upfront
payment's refund that reaches rent 1 (paid at signing, invoiced) reverses its invoice and reissues what was kept."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from infra.applications import Scope
from infra.collections import SqlCollections
from infra.db.models import ApplicationRow
from infra.db.models import InvoiceRequestRow
from infra.db.models import JournalLineRow
from infra.servicing import SqlServicing
from kyc.idnumber import check_digit
from kyc.masking import mask_id_number
from plans.policy import load_policy
from tests.common.leases import open_lease_for
from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_returning_customer import join

pytestmark = pytest.mark.db
GOOD_ID = "31011519880214123" + check_digit("31011519880214123")
BAD_ID = GOOD_ID[:17] + next(c for c in "0123456789X" if c != GOOD_ID[17])
OPS, XIHU, ADMIN_A = "ops@demo.leaseline.cn", "admin.xihu@demo.leaseline.cn", "admin.pudong@demo.leaseline.cn"
INVOICE_ROW = re.compile(r'<tr data-testid="invoice"([^>]*)>')
ATTRS = re.compile(r'([a-z][\w-]*)="([^"]*)"')


def answers(app: Any, application_id: str, **values: str) -> None:
    """The application's answers with ``values`` (encrypted as the app keeps them)."""
    svc = app.extensions["leaseline"]
    draft = svc.applications.draft(svc.applications.repo.get(application_id, Scope()))
    with svc.db.session() as s:
        s.execute(update(ApplicationRow).where(ApplicationRow.id == application_id).values(
            draft_enc=svc.vault.encrypt(json.dumps({**draft, **values}), f"application:{application_id}"),
            customer_name=values.get("name", "")))


def leased(base: str, app: Any, mobile: str, id_number: str) -> tuple[requests.Session, str]:
    """A customer's lease handed over 40 days ago, their answers naming them, what is due paid (rent 1 in full)."""
    customer, _ = join(base, app, mobile)
    application_id = start(base, customer)
    answers(app, application_id, name="周测试", id_number=id_number)
    db = app.extensions["leaseline"].db
    lease_id = open_lease_for(app, application_id, SqlServicing(db).business_date() - timedelta(days=40))
    collections = SqlCollections(db)
    due = sum(o.total for o in collections.owed(lease_id))
    assert due > 0
    collections.book(lease_id=lease_id, amount=due, source="direct_debit", key=f"inv-{uuid.uuid4()}",
                     order=load_policy().allocation_order, now=datetime.now(UTC))
    return customer, lease_id


def wait_for(app: Any, lease_id: str, wanted: dict[tuple[str, str], str], timeout: float = 90) -> list[Any]:
    """The lease's requests once each (kind, purpose) of ``wanted`` is in its status (the suite's worker)."""
    deadline = time.monotonic() + timeout
    while True:
        with app.extensions["leaseline"].db.session() as s:
            rows = list(s.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.lease_id == lease_id)))
        found = {(r.kind, r.purpose): r.status for r in rows}
        if all(found.get(k) == v for k, v in wanted.items()):
            return rows
        assert time.monotonic() < deadline, f"invoices {found}, waiting for {wanted}"
        time.sleep(0.3)


def shown(page: str) -> list[dict[str, str]]:
    return [dict(ATTRS.findall(tag)) for tag in INVOICE_ROW.findall(page)]


def test_the_lessee_sees_and_downloads_their_invoices_and_nobody_else_does(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, lease_id = leased(base, app, "13700138961", GOOD_ID)
    [rent] = wait_for(app, lease_id, {("blue", "rent"): "issued"})
    with customer:
        page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT)
        assert page.status_code == 200
        [row] = shown(page.text)
        assert (row["data-status"], row["data-number"], row["data-amount"], row["data-tax"]) == (
            "issued", rent.number, str(rent.amount), str(rent.tax))
        assert 'data-testid="invoice-specimens"' in page.text and "Buyer's ID number" not in page.text
        assert rent.buyer_id_masked not in page.text  # the customer's list names no ID number
        pdf = customer.get(f"{base}/leases/{lease_id}/invoices/{rent.id}.pdf", timeout=TIMEOUT)
        assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
        assert "no-store" in pdf.headers["Cache-Control"]
        words = subprocess.run(["pdftotext", "-", "-"], input=pdf.content, capture_output=True, check=True,
                               timeout=60).stdout.decode("utf-8")
        assert "样票" in words and "SPECIMEN" in words and rent.number in words
        assert mask_id_number(GOOD_ID) in words and GOOD_ID not in words
    # another customer, another dealer's staff: not found; the dealer's admin and ops: the page, the ID masked
    other, _ = join(base, app, "13700138962")
    with other:
        assert other.get(f"{base}/leases/{lease_id}/invoices/{rent.id}.pdf", timeout=TIMEOUT).status_code == 404
    with sign_in(base, XIHU) as xihu:
        assert xihu.get(f"{base}/leases/{lease_id}/invoices/{rent.id}.pdf", timeout=TIMEOUT).status_code == 404
    with sign_in(base, ADMIN_A) as admin:
        page = admin.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
        assert mask_id_number(GOOD_ID) in page and GOOD_ID not in page
        assert 'data-testid="invoice-correct"' not in page  # a dealer's admin does not correct invoices
        assert admin.get(f"{base}/leases/{lease_id}/invoices/{uuid.uuid4()}.pdf", timeout=TIMEOUT).status_code == 404


def test_ops_see_a_rejection_send_it_again_and_correct_an_invoice(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, lease_id = leased(base, app, "13700138963", BAD_ID)
    customer.close()
    [rent] = wait_for(app, lease_id, {("blue", "rent"): "rejected"})
    assert rent.error_code == "SBX4003"
    with sign_in(base, OPS) as ops:
        listed = ops.get(f"{base}/servicing/invoices", timeout=TIMEOUT).text
        assert f'data-invoice="{rent.id}"' in listed and "SBX4003" in listed
        jobs = ops.get(f"{base}/ops/jobs?state=failed", timeout=TIMEOUT).text
        assert "invoices.issue" in jobs and f"invoice request {rent.id}" in jobs and "SBX4003" in jobs
        lease_page = f"{base}/leases/{lease_id}"
        page = ops.get(lease_page, timeout=TIMEOUT).text
        assert 'data-testid="invoice-error"' in page and 'data-testid="invoice-retry"' in page
        # the ID number put right, the request sent again from the lease page: issued under the same key
        answers(app, rent.application_id, name="周测试", id_number=GOOD_ID)
        sent = ops.post(f"{base}/leases/{lease_id}/invoices/{rent.id}/retry",
                        data={"csrf_token": csrf(ops, lease_page)}, timeout=TIMEOUT, allow_redirects=False)
        assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/leases/{lease_id}#invoices")
        [issued] = wait_for(app, lease_id, {("blue", "rent"): "issued"})
        assert issued.id == rent.id and issued.buyer_id_masked == mask_id_number(GOOD_ID)
        assert f'data-invoice="{rent.id}"' not in ops.get(f"{base}/servicing/invoices", timeout=TIMEOUT).text

        # a correction: a reason is required; then the red-letter invoice and the invoice issued again
        url = f"{base}/leases/{lease_id}/invoices/{rent.id}/correct"
        assert ops.post(url, data={"csrf_token": csrf(ops, lease_page), "reason": " "}, timeout=TIMEOUT,
                        allow_redirects=False).status_code == 422
        done = ops.post(url, data={"csrf_token": csrf(ops, lease_page), "reason": "购买方名称有误"}, timeout=TIMEOUT,
                        allow_redirects=False)
        assert done.status_code == 303
        assert ops.post(url, data={"csrf_token": csrf(ops, lease_page), "reason": "again"}, timeout=TIMEOUT,
                        allow_redirects=False).status_code == 409  # reversed already
        rows = wait_for(app, lease_id, {("blue", "rent"): "issued", ("red", "correction"): "issued",
                                        ("blue", "reissue"): "issued"})
        red = next(r for r in rows if r.kind == "red")
        reissued = next(r for r in rows if r.purpose == "reissue")
        assert red.amount == -issued.amount and red.original_id == issued.id and reissued.amount == issued.amount
        listed = {r["data-invoice"]: r for r in shown(ops.get(lease_page, timeout=TIMEOUT).text)}
        assert listed[red.id]["data-kind"] == "red" and listed[red.id]["data-amount"] == str(-issued.amount)
        assert listed[reissued.id]["data-status"] == "issued"
    with sign_in(base, ADMIN_A) as admin:  # a dealer's admin may not correct
        assert admin.post(url, data={"csrf_token": csrf(admin, f"{base}/leases/{lease_id}"), "reason": "x"},
                          timeout=TIMEOUT, allow_redirects=False).status_code == 403


def test_a_refund_reaching_rent_1_after_the_commencement_leaves_its_invoice_standing(bff_server: Any) -> None:
    """Rents in advance: rent 1 is paid at signing out of the upfront payment, and invoiced when the lease opens. A
    refund made outside Leaseline that reaches it (infra/payments_store.py raise_refunded) leaves the rent owed again
    (the books: Dr Assets:Receivable:Lessees, the sale and its Output VAT unchanged): its invoice stands, no red-letter
    invoice (a 销售折让 is for a refund that reduces the sale)."""
    from books.origination import to_fen
    from tests.integration.test_books_lease import START
    from tests.integration.test_books_payments import UPFRONT_EXTRAS
    from tests.integration.test_payments import SALES_A
    from tests.integration.test_payments import opened
    from tests.integration.test_payments import pay
    from tests.integration.test_payments import signed_application
    from tests.integration.test_servicing_close import open_lease
    from tests.integration.test_servicing_close import record

    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    store = components.payments.store
    app_id = signed_application(app, UPFRONT_EXTRAS)
    answers(app, app_id, name="吴测试", id_number=GOOD_ID)
    quote = components.applications.repo.get(app_id, Scope()).plan["quote"]
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        assert pay(sales, base, app_id, upfront.id).status_code == 200
    fees, first = to_fen(quote["credit_fees"]), to_fen(quote["schedule"][0]["payment"])
    premiums = upfront.amount - to_fen(quote["down_payment"]) - fees - first
    lease_id = open_lease(SqlServicing(components.db), record(START, timing="advance"), app_id)
    assert lease_id is not None
    [rent] = wait_for(app, lease_id, {("blue", "rent"): "issued"})
    assert store.raise_refunded(upfront.id, fees + premiums + 500)  # 5.00 of the first rent given back
    with app.extensions["leaseline"].db.session() as s:
        rows = list(s.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.lease_id == lease_id)))
        owed = s.execute(select(func.sum(JournalLineRow.debit - JournalLineRow.credit)).where(
            JournalLineRow.account == "Assets:Receivable:Lessees", JournalLineRow.lease_id == lease_id)).scalar()
    assert [(r.id, r.kind, r.status) for r in rows] == [(rent.id, "blue", "issued")]
    assert owed == 500  # the 5.00 given back is owed again: the rent and its invoice stand
