"""A double tap on 签署合同 on a phone (Pixel 7, issue 17 §1): the contract is signed once and the page shows it
signed, never "验证码错误或已过期"; the button is disabled while its request runs. The signature canvas reads its
pixels back without Chrome's willReadFrequently warning (issue 17, Also)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from infra.applications import Scope
from tests.e2e.test_contract_browser import draw
from tests.e2e.test_contract_browser import last_code
from tests.e2e.test_kyc import sign_in
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import sign_in as http_sign_in
from tests.integration.test_applications import wait_status
from tests.integration.test_contract_journey import explain
from tests.integration.test_reviews import persona_id
from tests.integration.test_reviews import to_risk

#: two taps 40 ms apart: the second while the first's request is on its way (a tap is not a synchronous pair of
#: clicks, which the browser would fold into one navigation)
DOUBLE_TAP = """(button) => new Promise((done) => {
  button.click();
  const busy = {disabled: button.disabled, ariaBusy: button.getAttribute("aria-busy")};
  setTimeout(() => { button.click(); done(busy); }, 40);
})"""


@pytest.fixture(scope="module")
def ready(live_server: Any) -> str:
    """An application approved automatically whose contract is ready to sign, the key terms explained."""
    base = live_server.url
    app_id = to_risk(base, make_card_images(), persona_id("10"))
    with http_sign_in(base, SALES_A) as sales:
        wait_status(sales, base, app_id, ("contract_ready",), timeout=90)
        assert explain(base, sales, app_id).status_code == 200
    return app_id


def test_a_double_tap_on_sign_signs_once_and_shows_the_contract_signed(page: Page, live_server: Any,
                                                                        ready: str) -> None:
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if "willReadFrequently" in m.text else None)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/contract/sign" in r.url else None)
    sign_in(page, SALES_A)
    page.goto(f"/applications/{ready}/contract")
    page.get_by_test_id("send-code").click()
    expect(page.get_by_test_id("code-sent")).to_be_visible()
    page.get_by_test_id("sign-read").check()
    page.get_by_test_id("sign-code").fill(last_code(live_server))
    for _ in range(4):  # a signature of several strokes: the canvas is read back after each one
        draw(page)
    # a canvas read back after every stroke asks for a context kept for reading (Chrome warned without it)
    assert page.get_by_test_id("signature-pad").evaluate(
        "(c) => c.getContext('2d').getContextAttributes().willReadFrequently") is True
    busy = page.get_by_test_id("sign-submit").evaluate(DOUBLE_TAP)
    expect(page.get_by_test_id("contract-signed")).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("contract")).to_have_attribute("data-status", "signed")
    expect(page.get_by_test_id("sign-error")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("验证码错误或已过期")
    assert busy == {"disabled": True, "ariaBusy": "true"}, busy  # the button waits for its answer
    assert len(posts) == 1, posts  # the second tap sent nothing
    stored = live_server.app.extensions["leaseline"].applications.repo.get(ready, Scope())
    assert stored.status == "signed"
    assert [s["role"] for s in stored.contract["signatures"]].count("lessee") == 1
    assert not warnings, warnings
