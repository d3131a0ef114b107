"""Where staff land after signing in (issue 17 §11): the dealer's staff on their work page (today's applications,
what waits for them, the customers they shared a plan with: their own tenant only), the lessor's on their queue;
the account page stays one link away."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from bff.demo import DEMO_PASSWORD
from tests.common.totp import fresh_code
from tests.integration.test_applications import PLAN
from tests.integration.test_applications import SALES_B
from tests.integration.test_applications import VEHICLE
from tests.integration.test_applications import card_images  # noqa: F401 — a fixture
from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_invitations import invite

pytestmark = pytest.mark.db


def signed_in_landing(base: str, email: str) -> tuple[requests.Session, requests.Response]:
    """Sign in as ``email`` (with the second factor when the role needs it); the page it lands on."""
    s = requests.Session()
    r = s.post(f"{base}/login", timeout=TIMEOUT,
               data={"email": email, "password": DEMO_PASSWORD, "csrf_token": csrf(s, f"{base}/login")})
    if r.url.endswith("/login/second-factor"):
        r = s.post(r.url, timeout=TIMEOUT,
                   data={"code": fresh_code(email), "csrf_token": csrf(s, f"{base}/login/second-factor")})
    assert r.status_code == 200, (r.url, r.text[:300])
    return s, r


def start(app: Any, email: str, name: str) -> str:
    """A draft application of ``email``'s, with the customer's name given."""
    from bff.applications.services import Actor
    from infra.applications import Scope

    svc = app.extensions["leaseline"]
    owner = svc.accounts.by_email(email)[0]
    actor = Actor("staff", owner.id, owner.email, Scope(dealer_id=owner.dealer_id), dealer_id=owner.dealer_id,
                  owner_id=owner.id)
    application = svc.applications.start(actor, VEHICLE, PLAN)
    svc.applications.repo.update_draft(application.id, lambda row: {"customer_name": name})
    return str(application.id)


def test_a_salesperson_lands_on_their_work(app: Any, bff_server: Any) -> None:
    base = bff_server.url
    mine = start(app, SALES_A, "林晓东")
    theirs = start(app, SALES_B, "西湖客户")  # another dealer's
    with requests.Session() as sales:
        sales.post(f"{base}/login", timeout=TIMEOUT,
                   data={"email": SALES_A, "password": DEMO_PASSWORD, "csrf_token": csrf(sales, f"{base}/login")})
        invite(base, sales, "13900000117")
    s, landing = signed_in_landing(base, SALES_A)
    with s:
        assert landing.url == f"{base}/desk", landing.url
        page = landing.text
        today = re.search(r'data-testid="desk-today".*?</section>', page, re.S)
        waiting = re.search(r'data-testid="desk-waiting".*?</section>', page, re.S)
        shared = re.search(r'data-testid="desk-shared".*?</section>', page, re.S)
        assert today and waiting and shared, page[:500]
        assert mine in today.group(0) and "林晓东" in today.group(0)
        assert mine in waiting.group(0)  # a draft waits for the details, with the salesperson
        assert theirs not in page and "西湖客户" not in page  # another dealer's work is not theirs
        assert "139****0117" in shared.group(0) and "13900000117" not in page  # the invited customer, masked
        assert s.get(f"{base}/account", timeout=TIMEOUT).status_code == 200  # still one link away
        assert 'href="/account"' in page


def test_a_submitted_application_without_the_cars_details_waits_for_the_salesperson(app: Any, bff_server: Any) -> None:
    """The VIN and new or used are the dealer's to give after submission (issue 17 §5): until then it waits for them."""
    from sqlalchemy import text

    waiting, given = start(app, SALES_A, "陈一"), start(app, SALES_A, "陈二")
    svc = app.extensions["leaseline"]
    svc.applications.merge_draft(given, lambda d: {**d, "vin": "LSVAU218XN2183294", "condition": "new"})
    with svc.db.session() as session:  # both submitted and through the identity check
        session.execute(text("UPDATE applications SET status = 'kyc_passed' WHERE id IN (:a, :b)"),
                        {"a": waiting, "b": given})
    s, landing = signed_in_landing(bff_server.url, SALES_A)
    with s:
        section = re.search(r'data-testid="desk-waiting".*?</section>', landing.text, re.S)
        assert section, landing.text[:500]
        item = re.search(rf'<li data-application="{waiting}">.*?</li>', section.group(0), re.S)
        assert item and "车架号" in item.group(0), section.group(0)
        assert given not in section.group(0)


def test_a_dealer_admin_sees_the_dealers_work(app: Any, bff_server: Any) -> None:
    mine = start(app, SALES_A, "王小二")
    s, landing = signed_in_landing(bff_server.url, ADMIN_A)
    with s:
        assert landing.url == f"{bff_server.url}/desk" and mine in landing.text


@pytest.mark.parametrize(("email", "path"), [("risk1@demo.leaseline.cn", "/reviews"),
                                             ("ops@demo.leaseline.cn", "/payments"),
                                             ("auditor@demo.leaseline.cn", "/account")])
def test_the_lessors_staff_land_on_their_queue(bff_server: Any, email: str, path: str) -> None:
    s, landing = signed_in_landing(bff_server.url, email)
    with s:
        assert landing.url == f"{bff_server.url}{path}", landing.url
        # the work page is the dealer's: not theirs
        assert s.get(f"{bff_server.url}/desk", timeout=TIMEOUT, allow_redirects=False).status_code == 403


def test_a_requested_page_still_wins_over_the_landing(bff_server: Any) -> None:
    base = bff_server.url
    s = requests.Session()
    with s:
        r = s.post(f"{base}/login", timeout=TIMEOUT, data={"email": SALES_A, "password": DEMO_PASSWORD,
                                                          "next": "/applications",
                                                          "csrf_token": csrf(s, f"{base}/login")})
        assert r.url == f"{base}/applications"


def test_an_older_application_without_the_cars_details_waits_behind_more_newer_ones_than_the_list_shows(
        app: Any) -> None:
    """The car's facts live in the encrypted draft: the list of those still owing them must not be cut to the 30
    most recently updated applications before it is filtered, or an older one without a VIN drops off the page."""
    from datetime import timedelta
    from uuid import uuid4

    from sqlalchemy import text

    from bff.pwa.desk import desk
    from infra.db.models import utcnow

    svc = app.extensions["leaseline"]
    dealer = svc.accounts.by_email(SALES_A)[0].dealer_id
    email = f"sales-{uuid4().hex[:8]}@demo.leaseline.cn"  # a salesperson of their own: only these applications
    user_id = svc.accounts.create_staff(email, "新销售", "sales", dealer)
    older = start(app, email, "车架号待填")
    given = [start(app, email, f"已填{i}") for i in range(31)]  # more than the 30 the list shows, all newer
    for application_id in given:
        svc.applications.merge_draft(application_id, lambda d: {**d, "vin": "LSVAU218XN2183294", "condition": "new"})
    with svc.db.session() as session:
        session.execute(text("UPDATE applications SET status = 'kyc_passed', updated_at = :at WHERE id = :id"),
                        {"id": older, "at": utcnow() - timedelta(days=2)})
        session.execute(text("UPDATE applications SET status = 'kyc_passed' WHERE owner_id = :owner AND id != :id"),
                        {"owner": user_id, "id": older})
    with app.test_request_context():
        waiting = desk(svc.accounts.get(user_id)).waiting
    assert [(a.id, step) for a, step in waiting] == [(older, "vehicle")]


def test_an_application_whose_draft_cannot_be_read_does_not_take_the_work_page_down(app: Any,
                                                                                   bff_server: Any) -> None:
    """Seen in a whole-suite run: one application whose draft was not a PII token of a known key (a damaged row, a
    key retired too early) made /desk answer 500 for the whole dealer. It is logged and left off the list."""
    from sqlalchemy import text

    damaged, fine = start(app, SALES_A, "坏行"), start(app, SALES_A, "好行")
    svc = app.extensions["leaseline"]
    with svc.db.session() as session:
        session.execute(text("UPDATE applications SET status = 'kyc_passed' WHERE id IN (:a, :b)"),
                        {"a": damaged, "b": fine})
        kept = session.execute(text("SELECT draft_enc FROM applications WHERE id = :a"), {"a": damaged}).scalar_one()
        session.execute(text("UPDATE applications SET draft_enc = 'not-a-token' WHERE id = :a"), {"a": damaged})
    try:
        s, landing = signed_in_landing(bff_server.url, SALES_A)
        with s:
            section = re.search(r'data-testid="desk-waiting".*?</section>', landing.text, re.S)
            assert section, landing.text[:500]
            assert fine in section.group(0) and damaged not in section.group(0)
    finally:  # the suite's other tests share the database
        with svc.db.session() as session:
            session.execute(text("UPDATE applications SET draft_enc = :d WHERE id = :a"), {"a": damaged, "d": kept})


def _waiting_item(page: str, app_id: str) -> str | None:
    section = re.search(r'data-testid="desk-waiting".*?</section>', page, re.S)
    assert section, page[:500]
    item = re.search(rf'<li data-application="{app_id}">.*?</li>', section.group(0), re.S)
    return item.group(0) if item else None


def test_an_identity_to_verify_waits_for_the_dealer_admin_not_the_salesperson(app: Any, bff_server: Any) -> None:
    """The README walk-through: 张三 waited for the counter check (身份审核中), which only the dealer's admin may
    decide, yet was not under the admin's 待您处理. It is now, with what to do; the salesperson (who may not decide
    it: four eyes) is not asked to."""
    from sqlalchemy import text

    checked = start(app, SALES_A, "柜台核验")
    svc = app.extensions["leaseline"]
    svc.applications.merge_draft(checked, lambda d: {**d, "vin": "LSVAU218XN2183294", "condition": "new"})
    with svc.db.session() as session:
        session.execute(text("UPDATE applications SET status = 'kyc_review' WHERE id = :a"), {"a": checked})
    s, landing = signed_in_landing(bff_server.url, ADMIN_A)
    with s:
        item = _waiting_item(landing.text, checked)
        assert item and "下一步（您）：核验客户身份（身份证原件）" in item, landing.text[:3000]
    s, landing = signed_in_landing(bff_server.url, SALES_A)
    with s:
        assert _waiting_item(landing.text, checked) is None and checked in landing.text  # today's, not theirs


def test_a_draft_with_every_step_done_waits_to_be_submitted(app: Any, bff_server: Any,
                                                            card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """The walk-through's 孙敏: every step ✓ and only 提交申请 left, the work page still said to fill in the details
    with the customer."""
    from tests.integration.test_applications import ready_to_submit
    from tests.integration.test_applications import sign_in

    base = bff_server.url
    with sign_in(base, SALES_A) as sales:
        done = ready_to_submit(base, sales, card_images)
    started = start(app, SALES_A, "刚开始")
    s, landing = signed_in_landing(base, SALES_A)
    with s:
        item = _waiting_item(landing.text, done)
        assert item and "下一步（您）：各项资料已填写完整，请提交申请" in item and "填写资料" not in item, item
        item = _waiting_item(landing.text, started)
        assert item and "下一步（您）：与客户一起填写资料" in item, item


def test_a_customer_who_applied_is_no_longer_mirrored_nor_listed_on_a_shared_plan(app: Any, bff_server: Any) -> None:
    """The walk-through: after the lease the salesperson's 客户屏幕 still followed what the customer browsed
    later (60 期 while the lease is 36 期), showed the QR code and "链接仅可使用一次" for the used link, and
    正在看您分享方案的客户 listed customers who had long since applied. While the customer chooses, it follows
    them."""
    from sqlalchemy import text

    from tests.integration.test_applications import start as start_as
    from tests.integration.test_auth import sign_in
    from tests.integration.test_invitations import latest_code
    from tests.integration.test_invitations import request_code

    base, mobile = bff_server.url, "13900000131"
    with sign_in(base, SALES_A) as sales, requests.Session() as customer:
        page, link = invite(base, sales, mobile)
        invitation_id = page.rsplit("/", 1)[-1]
        request_code(customer, link)
        customer.post(f"{link}/verify", data={"code": latest_code(app, mobile), "csrf_token": csrf(customer, link)},
                      timeout=TIMEOUT)
        customer.get(f"{base}/plans/byd-han-ev?down=20&term=48", timeout=TIMEOUT)
        status = sales.get(page, headers={"HX-Request": "true"}, timeout=TIMEOUT).text
        assert 'data-testid="customer-term">48 期' in status and 'hx-trigger="every 3s"' in status
        desk = sales.get(f"{base}/desk", timeout=TIMEOUT).text
        assert f'data-invitation="{invitation_id}"' in desk  # on the shared plan
        applied = start_as(base, customer)  # 36 months
        with app.extensions["leaseline"].db.session() as session:
            session.execute(text("UPDATE applications SET status = 'delivered' WHERE id = :a"), {"a": applied})
        customer.get(f"{base}/plans/byd-han-ev?down=20&term=60", timeout=TIMEOUT)  # browsing later
        status = sales.get(page, headers={"HX-Request": "true"}, timeout=TIMEOUT).text
        assert 'data-testid="customer-applied"' in status and 'data-testid="applied-term">36 期' in status
        assert "customer-term" not in status and "60 期" not in status and "hx-trigger" not in status
        assert f'href="/applications/{applied}"' in status
        reloaded = sales.get(page, timeout=TIMEOUT).text
        assert 'data-testid="link-used"' in reloaded and 'class="qr"' not in reloaded
        assert "链接仅可使用一次" not in reloaded and 'data-testid="copy-link"' not in reloaded
        desk = sales.get(f"{base}/desk", timeout=TIMEOUT).text
        assert f'data-invitation="{invitation_id}"' not in desk
