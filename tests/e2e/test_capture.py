"""The capture screens on a small phone (issue 17, item 10): while the face check films, the instruction and the
progress through the challenge stay on screen on a 360×640 phone — the camera's picture must not push them
below the fold (the walk-through found the prompt at y≈806 of the Pixel 7's 839 px under a ~430 px video)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser
from playwright.sync_api import expect

from tests.e2e.test_kyc import camera_browser  # noqa: F401 - the fixture: a fake camera filming a real face
from tests.e2e.waiting import wait_until
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import ready_to_submit
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import sign_in

SMALL_PHONE = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 3, "is_mobile": True,
               "has_touch": True}


def visible_in_viewport(page: Any, selector: str) -> bool:
    return bool(page.evaluate("""(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
        return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }""", selector))


def test_the_face_check_keeps_its_instruction_and_progress_on_a_small_phone(
        camera_browser: Browser, live_server: Any) -> None:  # noqa: F811 - the imported fixture
    base = live_server.url
    with sign_in(base, SALES_A) as s:
        submitted = ready_to_submit(base, s, make_card_images())
        r = post(s, f"{base}/applications/{submitted}/submit", form_url=f"{base}/applications/{submitted}")
        assert r.status_code == 200 and r.url.endswith("/face"), r.url
        cookies = [{"name": c.name, "value": c.value, "url": base} for c in s.cookies]
    context = camera_browser.new_context(base_url=base, locale="zh-CN", **SMALL_PHONE)
    context.grant_permissions(["camera"], origin=base)
    context.add_cookies(cookies)
    try:
        page = context.new_page()
        page.goto(f"/applications/{submitted}/face")
        page.get_by_test_id("start-camera").click()
        # filming: the picture is shown, the first instruction is given
        wait_until(page, "!document.querySelector('[data-video]').hidden && "
                         "document.querySelector('[data-prompt]').textContent.trim() !== ''", 20)
        assert visible_in_viewport(page, "[data-prompt]"), "the instruction is below the fold"
        assert visible_in_viewport(page, ".camera .challenge"), "the challenge's progress is below the fold"
        assert visible_in_viewport(page, "[data-video]"), "the camera's picture is not on screen"
        expect(page.locator("[data-prompt]")).not_to_be_empty()
    finally:
        context.close()
