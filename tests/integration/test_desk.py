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
