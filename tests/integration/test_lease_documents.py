"""What follows a settled lease or a prepayment (issue 18 §5), over real HTTP with the suite's contract service: the
``servicing.settled`` task opens the dealer's mortgage release once and has the contract service sign the settlement
certificate once (run again: the same document, nothing added), the customer is texted once by the worker with the
link to their lease page, where the lessee downloads the certificate and sees their receipts; ``servicing.prepaid``
has the schedule annex signed. The contract service's endpoint refuses figures that do not reconcile (422, field
errors), a key reused with other figures (409) and a contract it does not have (404). The release desk: the dealer's
staff and ops see the release, another dealer's staff do not find it, a wrong form is a 422 keeping what was typed,
and the release is recorded once."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import update

from bff.servicing.settled import lease_documents
from contract.document.render import BEIJING
from infra.db.models import ApplicationRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseDocumentRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import LeaseRow
from infra.db.models import MortgageReleaseRow
from infra.db.models import PrepaymentRow
from infra.db.models import SettlementQuoteRow
from tests.common.leases import open_lease_for
from tests.integration.test_applications import start
from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_contract_handover import contract_snapshot
from tests.integration.test_contract_service import sign_body
from tests.integration.test_invitations import SALES_A
from tests.integration.test_returning_customer import join

pytestmark = pytest.mark.db
MOBILE = "13700138851"
SIGNING = 60  # seconds: rendering and signing on a loaded machine
OPS, XIHU = "ops@demo.leaseline.cn", "admin.xihu@demo.leaseline.cn"
SALES_B = "sales.b.pudong@demo.leaseline.cn"  # a second salesperson of SALES_A's dealer
NOTICE = timedelta(days=5)  # the settlement day after the day it was paid: the contract's notice


def today() -> date:
    return datetime.now(BEIJING).date()


def signed_contract(contract_server: Any, application_id: str) -> dict[str, Any]:
    r = requests.post(
        f"{contract_server.url}/api/v1/contracts",
        json=contract_snapshot(application_id),
        headers=contract_server.headers(),
        timeout=TIMEOUT,
    )
    assert r.status_code == 201, r.text[:500]
    r = requests.post(
        f"{contract_server.url}/api/v1/contracts/{r.json()['id']}/signatures",
        json=sign_body(),
        headers=contract_server.headers(),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text[:800]
    return dict(r.json())


@pytest.fixture(scope="module")
def settled(bff_server: Any, app: Any, contract_server: Any) -> Any:
    """A customer's lease of 12 rents from 40 days ago, on a contract the contract service signed, paid off today by a
    quote for a settlement day 5 days ahead (the contract's notice; as infra/settlements.py leaves it: the lease's
    settled_on the quote's, its paid_on today), one rent received with a surplus refunded."""
    base, svc = bff_server.url, app.extensions["leaseline"]
    customer, _ = join(base, app, MOBILE)
    application_id = start(base, customer)
    lease_id = open_lease_for(app, application_id, today() - timedelta(days=40))
    contract = signed_contract(contract_server, application_id)
    quote_id = str(uuid.uuid4())
    with svc.db.session() as s:
        s.execute(
            update(LeaseRow)
            .where(LeaseRow.id == lease_id)
            .values(
                contract_id=contract["id"],
                contract_number=contract["number"],
                status="settled",
                settled_on=today() + NOTICE,
            )
        )
        draft = svc.applications.draft(svc.applications.repo.get(application_id, _all()))
        s.execute(
            update(ApplicationRow)
            .where(ApplicationRow.id == application_id)
            .values(
                draft_enc=svc.vault.encrypt(json.dumps({**draft, "mobile": MOBILE}), f"application:{application_id}")
            )
        )
        # 98 000.00 + 245.00 + 2 940.00 + 12.30 − 10 000.00 = 91 197.30
        s.add(
            SettlementQuoteRow(
                id=quote_id,
                lease_id=lease_id,
                business_date=today(),
                settles_on=today() + NOTICE,
                valid_until=today() + NOTICE,
                outstanding_principal=9_800_000,
                accrued_interest=24_500,
                early_settlement_fee=294_000,
                arrears=0,
                penalties=1_230,
                paid_ahead_interest=0,
                deposit_offset=1_000_000,
                amount_due=9_119_730,
                quote="{}",
                status="paid",
                requested_by="customer",
                settled_at=datetime.now(BEIJING),
                paid_on=today(),
            )
        )
        s.add(
            LeaseReceiptRow(
                id=str(uuid.uuid4()),
                key=f"receipt-{quote_id}",
                lease_id=lease_id,
                source="stripe",
                amount=9_120_000,
                applied=9_119_730,
                surplus=270,
                value_date=today(),
                refund_reason="surplus",
                refund_status="succeeded",
            )
        )
    yield {
        "customer": customer,
        "lease_id": lease_id,
        "quote_id": quote_id,
        "contract": contract,
        "application_id": application_id,
    }
    customer.close()


def _all() -> Any:
    from tests.integration.test_applications import _all as everything

    return everything()


def rows(app: Any, model: Any, lease_id: str) -> list[Any]:
    with app.extensions["leaseline"].db.session() as s:
        found = list(s.scalars(select(model).where(model.lease_id == lease_id)))
        s.expunge_all()
        return found


def texts(app: Any, word: str = "结清", timeout: float = 30) -> list[str]:
    """The customer's texts saying ``word`` once the suite's worker has sent one (servicing.document_text)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            m.body
            for m in app.extensions["leaseline"].outbox.latest(10, to=MOBILE)
            if "我的租赁" in m.body and word in m.body
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_settled_lease_gets_its_certificate_its_release_and_one_text(
    bff_server: Any, app: Any, contract_server: Any, settled: Any
) -> None:
    svc, lease_id = app.extensions["leaseline"], settled["lease_id"]
    tasks = lease_documents(svc, bff_server.url)
    tasks.settled(lease_id, settled["quote_id"])
    [doc] = rows(app, LeaseDocumentRow, lease_id)
    assert (doc.kind, doc.subject_id, doc.status, doc.attempts) == (
        "settlement_certificate",
        settled["quote_id"],
        "ready",
        1,
    )
    assert doc.sha256 and doc.evidence_index is not None
    [release] = rows(app, MortgageReleaseRow, lease_id)
    assert (release.status, release.dealer_id) == ("open", svc.accounts.by_email(SALES_A)[0].dealer_id)
    assert release.opened_on == today()  # the day it was paid: the settlement day is ahead, the release recordable now
    # run again (a retry): the same document, no second release or text
    tasks.settled(lease_id, settled["quote_id"])
    assert [(d.id, d.document_id, d.attempts) for d in rows(app, LeaseDocumentRow, lease_id)] == [
        (doc.id, doc.document_id, 1)
    ]
    assert len(rows(app, MortgageReleaseRow, lease_id)) == 1
    [sms] = texts(app)
    assert settled["contract"]["number"] in sms and f"/leases/{lease_id} " in sms  # the worker's public URL
    # the evidence log has the certificate's entry under the application
    r = requests.get(
        f"{contract_server.url}/api/v1/ledger/subjects/{settled['application_id']}/entries",
        headers=contract_server.headers("ledger:read"),
        timeout=TIMEOUT,
    )
    assert "settlement_certificate_signed" in [e["kind"] for e in r.json()["entries"]]
    # the entry records both days: the settlement day and the day it was paid
    opened = requests.get(
        f"{contract_server.url}/api/v1/ledger/openings/{doc.evidence_index}",
        headers=contract_server.headers("ledger:read"),
        timeout=TIMEOUT,
    )
    entry = json.loads(base64.b64decode(opened.json()["bundle"]["opening"]["entry"]))
    assert (entry["kind"], entry["data"]["settled_on"], entry["data"]["paid_on"]) == (
        "settlement_certificate_signed",
        (today() + NOTICE).isoformat(),
        today().isoformat(),
    )

    # the lessee's lease page lists it with the receipts, and the PDF downloads, never cached
    customer, base = settled["customer"], bff_server.url
    page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT)
    assert page.status_code == 200 and 'data-testid="doc-settlement_certificate" data-status="ready"' in page.text
    # paid off today, settled on the quote's day: both shown
    assert f'data-settled-on="{(today() + NOTICE).isoformat()}" data-paid-on="{today().isoformat()}"' in page.text
    assert f"已付清（{today().isoformat()}），结清日 {(today() + NOTICE).isoformat()}。" in page.text
    assert 'data-testid="receipt" data-amount="9120000" data-surplus="270" data-refund="succeeded"' in page.text
    link = re.search(r'href="(/leases/[^"]+/documents/[^"]+\.pdf)"', page.text)
    assert link is not None
    pdf = customer.get(f"{base}{link.group(1)}", timeout=TIMEOUT)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and "no-store" in pdf.headers["Cache-Control"]
    import hashlib

    assert hashlib.sha256(pdf.content).hexdigest() == doc.sha256
    with sign_in(base, XIHU) as other:  # another dealer's staff: as if there were none
        assert other.get(f"{base}{link.group(1)}", timeout=TIMEOUT, allow_redirects=False).status_code == 404
    # the text's outcome is kept on the document: sent; one the platform refused is shown to staff, and never resent
    deadline = time.monotonic() + 10
    while rows(app, LeaseDocumentRow, lease_id)[0].text_status != "sent" and time.monotonic() < deadline:
        time.sleep(0.1)
    [texted] = rows(app, LeaseDocumentRow, lease_id)
    assert texted.text_status == "sent" and texted.text_at is not None
    with svc.db.session() as s:
        s.execute(
            update(LeaseDocumentRow)
            .where(LeaseDocumentRow.id == doc.id)
            .values(text_status="refused", text_detail="FailedOperation.PhoneNumberInBlacklist: 号码在黑名单中")
        )
    tasks.document_text(doc.id)
    assert len(texts(app, timeout=0)) == 1
    with sign_in(base, SALES_A) as sales:
        staff_view = sales.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
    assert 'data-testid="doc-text" data-text="refused"' in staff_view and "号码在黑名单中" in staff_view
    assert 'data-testid="doc-text"' not in customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
    # anyone holding the certificate can check it on the public page: ours, intact, the certificate of that contract
    with requests.Session() as anyone:
        token = re.search(r'name="csrf_token" value="([^"]+)"', anyone.get(f"{base}/verify", timeout=TIMEOUT).text)
        assert token
        verdict = anyone.post(f"{base}/verify", data={"csrf_token": token.group(1)},
                              files={"file": ("certificate.pdf", pdf.content, "application/pdf")}, timeout=60)
    assert verdict.status_code == 200 and 'data-valid="true"' in verdict.text
    assert f"合同 {settled['contract']['number']} 的结清证明完整无改动" in verdict.text


def test_the_contract_service_refuses_figures_that_do_not_add_up_and_a_reused_key(
    contract_server: Any, settled: Any
) -> None:
    url = f"{contract_server.url}/api/v1/contracts/{settled['contract']['id']}/servicing-documents"
    body = {
        "kind": "settlement_certificate",
        "subject_id": f"q-{uuid.uuid4().hex[:8]}",
        "settlement": {
            "settled_on": (today() + NOTICE).isoformat(),  # ahead of the service's clock: a business date, accepted
            "paid_on": today().isoformat(),
            "outstanding_principal": "100.00",
            "accrued_interest": "0.00",
            "early_settlement_fee": "3.00",
            "arrears": "0.00",
            "penalties": "0.00",
            "paid_ahead_interest": "0.00",
            "deposit_offset": "0.00",
            "amount_due": "103.01",
        },
    }
    r = requests.post(url, json=body, headers=contract_server.headers(), timeout=SIGNING)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "settlement.amount_due", r.text[:300]
    body["settlement"]["amount_due"] = "103.00"
    # the dates against the contract, never the service's clock: not settled decades past the contract's end (nor on
    # 9999-12-31), not paid before the contract was signed nor more than 31 days after the settlement day; both
    # required
    for dates, field, code in (
        ({"settled_on": "2090-01-01"}, "settlement.settled_on", "after_term"),
        ({"settled_on": "9999-12-31"}, "settlement.settled_on", "after_term"),
        ({"paid_on": "2001-01-01"}, "settlement.paid_on", "before_signing"),
        (
            {"paid_on": (today() + NOTICE + timedelta(days=32)).isoformat()},
            "settlement.paid_on",
            "paid_after_settlement",
        ),
        ({"paid_on": None}, "settlement.paid_on", "invalid"),
    ):
        wrong = {**body, "settlement": {**body["settlement"], **dates}}
        r = requests.post(url, json=wrong, headers=contract_server.headers(), timeout=SIGNING)
        assert r.status_code == 422, r.text[:300]
        assert (r.json()["errors"][0]["field"], r.json()["errors"][0]["code"]) == (field, code), dates
    # an annex whose rows leave a balance outstanding, or whose dates are decades past the contract's end
    rows = [
        {
            "number": 2,
            "due_date": "2090-02-01",
            "rent": "11.00",
            "principal": "10.00",
            "interest": "1.00",
            "balance": "90.00",
        }
    ]
    annex = {
        "kind": "schedule_annex",
        "subject_id": f"p-{uuid.uuid4().hex[:8]}",
        "annex": {
            "effective_on": "2090-01-01",
            "prepaid": "10.00",
            "option": "lower_rent",
            "rents_paid": 1,
            "balance_before": "110.00",
            "balance_after": "100.00",
            "rows": rows,
        },
    }
    r = requests.post(url, json=annex, headers=contract_server.headers(), timeout=SIGNING)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "annex.rows.0.balance", r.text[:300]
    rows[0].update(rent="101.00", principal="100.00", balance="0.00")
    r = requests.post(url, json=annex, headers=contract_server.headers(), timeout=SIGNING)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "after_term", r.text[:300]
    first = requests.post(url, json=body, headers=contract_server.headers(), timeout=SIGNING)
    again = requests.post(url, json=body, headers=contract_server.headers(), timeout=SIGNING)
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    body["settlement"].update(early_settlement_fee="4.00", amount_due="104.00")
    r = requests.post(url, json=body, headers=contract_server.headers(), timeout=SIGNING)
    assert r.status_code == 409 and "subject_reused" in r.text
    r = requests.post(
        f"{contract_server.url}/api/v1/contracts/{'0' * 32}/servicing-documents",
        json=body,
        headers=contract_server.headers(),
        timeout=TIMEOUT,
    )
    assert r.status_code == 404
    r = requests.post(url, json=body, headers=contract_server.headers("contract:read"), timeout=TIMEOUT)
    assert r.status_code == 403


def test_a_prepayment_gets_its_schedule_annex(bff_server: Any, app: Any, settled: Any) -> None:
    svc, lease_id = app.extensions["leaseline"], settled["lease_id"]
    prepayment_id = str(uuid.uuid4())
    with svc.db.session() as s:
        # the schedule as the prepayment applied it (infra/prepayments.py applied_schedule): here the rents after
        # rent 1 and the final rent as they stand; the annex states it, whatever the instalments become later
        after = s.scalars(
            select(InstalmentRow)
            .where(InstalmentRow.lease_id == lease_id, InstalmentRow.number > 1)
            .order_by(InstalmentRow.number)
        ).all()
        balance = balance_after = sum(i.principal for i in after)
        listed = []
        for i in after:
            balance -= i.principal
            listed.append(
                {
                    "number": i.number,
                    "due_on": i.due_on.isoformat(),
                    "amount": i.amount,
                    "principal": i.principal,
                    "interest": i.interest,
                    "balance": balance,
                    "final": i.kind == "final_rent",
                }
            )
        schedule = {"balance_before": balance_after + 2_000_000, "balance_after": balance_after, "rows": listed}
        s.add(
            PrepaymentRow(
                id=prepayment_id,
                lease_id=lease_id,
                business_date=today(),
                valid_until=today(),
                amount=2_000_000,
                option="lower_rent",
                after_number=1,
                new_term=12,
                new_rent=1,
                preview="{}",
                status="applied",
                requested_by="customer",
                schedule=json.dumps(schedule),
            )
        )
    lease_documents(svc, bff_server.url).prepaid(lease_id, prepayment_id)
    [annex] = [d for d in rows(app, LeaseDocumentRow, lease_id) if d.kind == "schedule_annex"]
    assert annex.status == "ready" and annex.subject_id == prepayment_id
    with svc.db.session() as s:
        left = s.scalars(
            select(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number > 1)
        ).all()
        assert len(left) == len(listed) == 12  # rents 2–12 and the final rent, each a row of the annex
    [sms] = texts(app, "还款计划")
    assert "20000.00" in sms and "减少月供" in sms


def test_the_release_desk_records_the_release_once(bff_server: Any, app: Any, settled: Any) -> None:
    from bff.auth.passwords import hash_secret
    from tests.integration.test_auth import DEMO_PASSWORD

    base, lease_id = bff_server.url, settled["lease_id"]
    url = f"{base}/servicing/releases/{lease_id}"
    with sign_in(base, XIHU) as other:
        assert other.get(url, timeout=TIMEOUT, allow_redirects=False).status_code == 404
        assert f'data-lease="{lease_id}"' not in other.get(f"{base}/servicing/releases", timeout=TIMEOUT).text
    # another salesperson of the same dealer, who did not sell this lease: as on the lease page, as if there were none
    accounts = app.extensions["leaseline"].accounts
    accounts.ensure_user(
        SALES_B, "另一位销售", "sales", accounts.by_email(SALES_A)[0].dealer_id, hash_secret(DEMO_PASSWORD), None, []
    )
    with sign_in(base, SALES_B) as colleague:
        assert colleague.get(url, timeout=TIMEOUT, allow_redirects=False).status_code == 404
        assert f'data-lease="{lease_id}"' not in colleague.get(f"{base}/servicing/releases", timeout=TIMEOUT).text
        done = {"released_on": date.today().isoformat(), "office": "车管所", "reference": "X-1"}
        r = colleague.post(
            url,
            data={**done, "csrf_token": csrf(colleague, f"{base}/servicing/releases")},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        assert r.status_code == 404
    with sign_in(base, ADMIN_A) as admin:  # the dealer's admin sees every release of the dealer
        assert f'data-lease="{lease_id}"' in admin.get(f"{base}/servicing/releases", timeout=TIMEOUT).text
    with sign_in(base, OPS) as ops:
        assert f'data-lease="{lease_id}"' in ops.get(f"{base}/servicing/releases", timeout=TIMEOUT).text
    with sign_in(base, SALES_A) as sales:
        desk = sales.get(f"{base}/servicing/releases", timeout=TIMEOUT)
        assert desk.status_code == 200 and f'data-lease="{lease_id}"' in desk.text
        assert settled["contract"]["number"] in desk.text
        # the car in the page's language, as the lease page names it (walk-through 62: BYD Han EV in Chinese)
        assert "比亚迪 汉EV" in desk.text and "BYD Han EV" not in desk.text
        assert "比亚迪 汉EV" in sales.get(url, timeout=TIMEOUT).text
        typed = {
            "released_on": "2001-01-01",
            "office": "上海市公安局交警总队车辆管理所",
            "reference": "",
            "note": "原件已交客户",
        }
        token = csrf(sales, url)  # the session's token, for the post after the form is gone
        r = sales.post(url, data={**typed, "csrf_token": token}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'data-testid="error-released_on"' in r.text
        assert 'data-testid="error-reference"' in r.text and "上海市公安局交警总队车辆管理所" in r.text
        assert "原件已交客户" in r.text
        day = rows(app, MortgageReleaseRow, lease_id)[0].opened_on
        done = {**typed, "released_on": day.isoformat(), "reference": "JY-2026-0001"}
        r = sales.post(url, data={**done, "csrf_token": token}, timeout=TIMEOUT)
        assert r.status_code == 200 and 'data-status="released"' in r.text and "JY-2026-0001" in r.text
        r = sales.post(url, data={**done, "csrf_token": token}, timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 409
    [release] = rows(app, MortgageReleaseRow, lease_id)
    assert (release.status, release.released_on, release.reference) == ("released", day, "JY-2026-0001")
