"""On a phone (Pixel 7): the resend countdown of a code screen and the step counter of the application's pages
(issue 17 §8). The page's own script counts down; the server refuses to text again meanwhile."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from playwright.sync_api import Page
from playwright.sync_api import expect
from sqlalchemy import update

from infra.db.models import InvitationRow
from tests.e2e.test_kyc import sign_in
from tests.integration.test_applications import SALES_A
from tests.integration.test_auth import sign_in as sign_in_session
from tests.integration.test_invitations import invite

MOBILE = "13900170901"
PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"


def texts_to(live_server: Any, mobile: str) -> int:
    return len(live_server.app.extensions["leaseline"].outbox.latest(50, to=mobile))


def test_a_code_screen_counts_down_before_a_new_code(page: Page, live_server: Any) -> None:
    with sign_in_session(live_server.url, SALES_A) as sales:
        _, link = invite(live_server.url, sales, MOBILE)
    page.goto(link)
    page.get_by_test_id("send-code").click()
    # where the code went, masked; the button waits, the text counts down by itself
    expect(page.get_by_test_id("code-sent")).to_have_text("已发送至 139****0901")
    button, countdown = page.get_by_test_id("send-code"), page.get_by_test_id("resend-countdown")
    expect(button).to_be_disabled()
    expect(countdown).to_have_text(re.compile(r"^(60|59) 秒后可重新发送$"))
    expect(countdown).to_have_text(re.compile(r"^5[0-7] 秒后可重新发送$"), timeout=6000)
    expect(button).to_be_disabled()
    # the server keeps the same minute: a resend posted anyway texts nothing
    sent = texts_to(live_server, MOBILE)
    form = page.locator("form[data-countdown]")
    page.evaluate("form => { form.querySelector('[data-resend]').disabled = false; form.requestSubmit(); }",
                  form.element_handle())
    expect(page.get_by_test_id("code-sent")).to_be_visible()
    assert texts_to(live_server, MOBILE) == sent
    # the minute almost over (as if the code was texted 57 s ago): the button comes back by itself, then texts anew
    invitations = live_server.app.extensions["leaseline"].invitations
    invitation = invitations.identify(link.rstrip("/").rsplit("/", 1)[-1])
    assert invitation is not None
    with invitations.repo.db.session() as session:
        session.execute(update(InvitationRow).where(InvitationRow.id == invitation.id).values(
            code_sent_at=datetime.now(UTC) - timedelta(seconds=57)))
    page.reload()
    expect(button).to_be_disabled()
    expect(button).to_be_enabled(timeout=5000)
    expect(countdown).to_be_hidden()
    button.click()
    expect(button).to_be_disabled()
    assert texts_to(live_server, MOBILE) == sent + 1


def test_each_page_of_the_application_says_which_step_it_is(page: Page, live_server: Any) -> None:
    sign_in(page, SALES_A)
    page.goto("/plans/byd-han-ev?down=20&term=36")
    page.get_by_test_id("apply").click()
    page.get_by_test_id("start-application").click()
    expect(page).to_have_url(re.compile(r"/consent$"))
    counter = page.get_by_test_id("step-counter")
    expect(counter).to_have_text("第 1 步，共 6 步")
    app_id = page.url.split("/applications/")[1].split("/")[0]
    page.get_by_test_id("consent-sensitive_pi").check()
    page.get_by_test_id("consent-credit_reporting").check()
    page.get_by_test_id("consent-face_recognition").check()
    page.get_by_test_id("consent-continue").click()
    expect(page).to_have_url(re.compile(r"/id-card$"))
    expect(counter).to_have_text("第 2 步，共 6 步")
    for path, n in (("steps/customer", 3), ("steps/work", 3), ("face", 4), ("contract", 5), ("payment", 6)):
        page.goto(f"/applications/{app_id}/{path}")
        expect(counter).to_have_text(f"第 {n} 步，共 6 步")
        expect(page.locator("progress.step-progress")).to_have_attribute("value", str(n))
    # the dealer's own step (the car's VIN) is no step of the customer's
    page.goto(f"/applications/{app_id}/steps/vehicle")
    expect(page.locator("#f-vin")).to_be_visible()
    expect(counter).to_have_count(0)


def test_the_step_counter_is_in_english_too(live_server: Any) -> None:
    with sign_in_session(live_server.url, SALES_A) as s:
        r = s.get(f"{live_server.url}/applications/new", params={"vehicle": "byd-han-ev", "plan": PLAN},
                  timeout=10)
        assert r.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert token
        r = s.post(f"{live_server.url}/applications", data={"vehicle": "byd-han-ev", "plan": PLAN,
                                                            "csrf_token": token.group(1)}, timeout=10)
        page = s.get(r.url + "?lang=en", timeout=10).text
        assert "Step 1 of 6" in page, page[:2000]
