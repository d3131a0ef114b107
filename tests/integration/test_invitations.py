"""Customer hand-off over real HTTP: invitation, QR, SMS sandbox code, single use, lockout, live status."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
SALES_A = "sales.pudong@demo.leaseline.cn"
SALES_A2 = "admin.pudong@demo.leaseline.cn"
SALES_B = "sales.xihu@demo.leaseline.cn"
PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"


def invite(base: str, s: requests.Session, mobile: str, vehicle: str = "byd-han-ev",
           plan: str = PLAN) -> tuple[str, str]:
    """Create an invitation; returns (its page URL, the customer link)."""
    r = s.post(f"{base}/invitations", data={"mobile": mobile, "vehicle": vehicle, "plan": plan,
                                             "csrf_token": csrf(s, f"{base}/invitations")}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    link = re.search(r'data-testid="invitation-link">([^<]+)<', r.text)
    assert link, r.text[:500]
    return r.url, link.group(1)


def latest_code(app: Any, mobile: str) -> str:
    sms = app.extensions["leaseline"].outbox.latest(1, to=mobile)
    assert sms, "no text message in the sandbox outbox"
    return re.search(r"(\d{6})", sms[0].body).group(1)  # type: ignore[union-attr]


def request_code(customer: requests.Session, link: str) -> None:
    r = customer.post(f"{link}/code", data={"csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
    assert r.status_code == 200


def test_the_whole_hand_off(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    with sign_in(base, SALES_A) as sales, requests.Session() as customer:
        page, link = invite(base, sales, "13800138001")
        assert sales.get(page + "/qr.svg", timeout=TIMEOUT).headers["Content-Type"].startswith("image/svg+xml")
        opened = customer.get(link, timeout=TIMEOUT)
        assert opened.status_code == 200 and "138****8001" in opened.text and "13800138001" not in opened.text
        request_code(customer, link)
        r = customer.post(f"{link}/verify", data={"code": latest_code(app, "13800138001"),
                                                   "csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
        assert r.status_code == 200 and "/plans/byd-han-ev" in r.url and "term=36" in r.url
        # The customer changes the plan; the salesperson's status block (polled by htmx) shows it.
        assert customer.get(f"{base}/plans/byd-han-ev?down=30&term=48", headers={"HX-Request": "true"},
                            timeout=TIMEOUT).status_code == 200
        status = sales.get(page, headers={"HX-Request": "true"}, timeout=TIMEOUT).text
        assert 'data-testid="customer-term">48' in status and "<html" not in status
        # The link worked once.
        assert requests.get(link, timeout=TIMEOUT).status_code == 410


def test_five_wrong_codes_lock_the_invitation(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    with sign_in(base, SALES_A) as sales, requests.Session() as customer:
        page, link = invite(base, sales, "13800138002")
        request_code(customer, link)
        right = latest_code(app, "13800138002")
        wrong = "000000" if right != "000000" else "111111"
        statuses = []
        for _ in range(5):
            statuses.append(customer.post(f"{link}/verify", data={"code": wrong, "csrf_token": csrf(customer, link)},
                                          timeout=TIMEOUT, allow_redirects=False).status_code)
            customer.get(link, timeout=TIMEOUT)  # the form again by GET (Post/Redirect/Get): a refresh counts nothing
        assert statuses == [303, 303, 303, 303, 410]
        assert customer.get(link, timeout=TIMEOUT).status_code == 410
        assert "status" in sales.get(page, timeout=TIMEOUT).text
    events = app.extensions["leaseline"].audit.search(action="invitation.code")
    assert sum(e.outcome == "failure" for e in events) >= 5


@pytest.mark.parametrize("mangle", [
    lambda link: link[:-3] + ("abc" if not link.endswith("abc") else "xyz"),  # tampered signature
    lambda link: link.rsplit("/", 1)[0] + "/not-a-token",  # forged
])
def test_tampered_or_forged_links_leak_nothing(bff_server: Any, mangle: Any) -> None:
    with sign_in(bff_server.url, SALES_A) as sales:
        _, link = invite(bff_server.url, sales, "13800138003")
    r = requests.get(mangle(link), timeout=TIMEOUT)
    assert r.status_code == 410 and "138" not in r.text and "Traceback" not in r.text


def test_an_expired_link_is_refused(bff_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    import bff.invitations.services as invitation_services
    from infra.db.models import utcnow

    with sign_in(bff_server.url, SALES_A) as sales:
        _, link = invite(bff_server.url, sales, "13800138004")
    monkeypatch.setattr(invitation_services, "utcnow", lambda: utcnow() + timedelta(hours=24, minutes=1))
    assert requests.get(link, timeout=TIMEOUT).status_code == 410


def test_bad_mobile_is_explained_and_kept(bff_server: Any) -> None:
    base = bff_server.url
    with sign_in(base, SALES_A) as sales:
        r = sales.post(f"{base}/invitations", data={"mobile": "12345", "vehicle": "byd-han-ev",
                                                    "csrf_token": csrf(sales, f"{base}/invitations")}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'value="12345"' in r.text and "11 位" in r.text


def test_invitations_are_scoped_to_their_creator_and_dealer(bff_server: Any) -> None:
    base = bff_server.url
    with sign_in(base, SALES_A) as sales:
        page, _ = invite(base, sales, "13800138005")
    with sign_in(base, SALES_B) as other_dealer:
        assert other_dealer.get(page, timeout=TIMEOUT).status_code == 404
    with sign_in(base, SALES_A2) as admin_same_dealer:  # the dealer admin sees the dealer's invitations
        assert admin_same_dealer.get(page, timeout=TIMEOUT).status_code == 200


def test_the_sms_sandbox_is_labelled_and_staff_only(bff_server: Any) -> None:
    base = bff_server.url
    assert requests.get(f"{base}/dev/outbox", timeout=TIMEOUT, allow_redirects=False).status_code == 302
    with sign_in(base, SALES_A) as sales:
        page = sales.get(f"{base}/dev/outbox", timeout=TIMEOUT).text
        assert "未真实发送" in page or "NOT sent" in page
