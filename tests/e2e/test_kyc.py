"""The 刷脸 moment in a real browser (Chromium, Pixel 7): consent → ID card photos (OCR pre-fills the form)
→ details, one step saved while offline and sent once back online → submit → selfie and liveness frames
through the fake camera fed from a real face photo → the outcome, explained, on the phone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from bff.demo import DEMO_PASSWORD
from infra.applications import Scope
from kyc import specimens as idcards
from tests.common import faces
from tests.common.vins import fresh_vin
from tests.e2e.conftest import ARGS
from tests.e2e.conftest import CHROMIUM
from tests.e2e.waiting import wait_until

CARD = idcards.SAMPLES[1]


@pytest.fixture(scope="module")
def camera_browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A Chromium whose fake camera films a real face photo (RECIPES.md: an .mjpeg made with Pillow)."""
    video = faces.mjpeg(faces.photo("obama2.jpg"), tmp_path_factory.mktemp("camera") / "face.mjpeg")
    browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                         args=[*ARGS, f"--use-file-for-fake-video-capture={video}"])
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def card_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("card")
    portrait = faces.id_portrait(faces.photo("obama.jpg"), size=(358, 441))
    front, back = folder / "front.jpg", folder / "back.jpg"
    idcards.front(CARD, portrait).save(front, "JPEG", quality=92)
    idcards.back(CARD).save(back, "JPEG", quality=92)
    return front, back


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("form button[type=submit]").last.click()
    expect(page.get_by_test_id("signed-in")).to_be_visible()


def test_consent_id_card_offline_step_and_face_check_on_a_phone(
    camera_browser: Browser, playwright: Playwright, live_server: Any, card_files: tuple[Path, Path]
) -> None:
    context = camera_browser.new_context(base_url=live_server.url, **playwright.devices["Pixel 7"])
    context.grant_permissions(["camera"], origin=live_server.url)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        sign_in(page, "sales.pudong@demo.leaseline.cn")
        page.goto("/plans/byd-han-ev?down=20&term=36")
        page.get_by_test_id("apply").click()
        page.get_by_test_id("start-application").click()

        # consent first: three separate choices, nothing pre-ticked
        expect(page).to_have_url(re.compile(r"/consent$"))
        assert not page.get_by_test_id("consent-sensitive_pi").is_checked()
        assert not page.get_by_test_id("consent-credit_reporting").is_checked()
        page.get_by_test_id("consent-sensitive_pi").check()
        page.get_by_test_id("consent-credit_reporting").check()
        page.get_by_test_id("consent-face_recognition").check()
        page.get_by_test_id("consent-continue").click()

        # the ID card: two photos, read in the background with a progress indicator, then pre-filled
        expect(page).to_have_url(re.compile(r"/id-card$"))
        page.locator("#front").set_input_files(str(card_files[0]))
        page.locator("#back").set_input_files(str(card_files[1]))
        page.get_by_test_id("upload-id").click()
        expect(page.get_by_test_id("id-ok")).to_be_visible(timeout=30_000)
        page.get_by_test_id("to-customer").click()
        expect(page.locator("#f-id_number")).to_have_value(CARD.id_number)
        expect(page.locator("#f-name")).to_have_value(CARD.name)
        page.locator("#f-mobile").fill("13900139011")
        page.locator("#f-id_valid_to").fill(CARD.valid_to.isoformat() if CARD.valid_to else "长期")
        page.get_by_test_id("save-step").click()

        # work and finances: the network goes away; the answers wait on the phone and are sent once
        expect(page).to_have_url(re.compile(r"/steps/work$"))
        app_id = page.url.split("/applications/")[1].split("/")[0]
        repo = live_server.app.extensions["leaseline"].applications.repo
        version = repo.get(app_id, Scope()).version
        page.locator("#f-employment").select_option("employed")
        page.locator("#f-employer").fill("上海某某科技有限公司")
        page.locator("#f-employment_years").fill("6")
        page.locator("#f-monthly_income").fill("28000")
        page.locator("#f-housing").select_option("rent")
        page.locator("#f-dependants").fill("1")
        page.locator("#f-existing_loans").fill("0")
        page.locator("#f-monthly_repayments").fill("0")
        context.set_offline(True)
        page.get_by_test_id("save-step").click()
        expect(page.locator("[data-offline-note]")).to_be_visible()
        assert page.evaluate("JSON.parse(localStorage.getItem('leaseline-outbox')).length") == 1
        assert repo.get(app_id, Scope()).version == version  # nothing reached the server
        context.set_offline(False)
        # sent once back online: the phone goes on to what follows the step, and says it was sent (issue 17 §7)
        expect(page).not_to_have_url(re.compile(r"/steps/work$"), timeout=15_000)
        expect(page.get_by_test_id("sent-note")).to_be_visible()
        wait_until(page, "JSON.parse(localStorage.getItem('leaseline-outbox') || '[]').length === 0", 10)
        saved = repo.get(app_id, Scope())
        assert saved.version == version + 1  # applied exactly once
        draft = live_server.app.extensions["leaseline"].applications.draft(saved)
        assert draft["employer"] == "上海某某科技有限公司" and draft["monthly_income"] == "28000"

        # the vehicle, then submit
        page.goto(f"/applications/{app_id}/steps/vehicle")
        page.locator("#f-vin").fill(fresh_vin())  # one car, one lease: a car of its own
        page.get_by_test_id("save-step").click()
        expect(page).to_have_url(re.compile(rf"/applications/{app_id}$"))
        page.get_by_test_id("submit-application").click()

        # the face check: the fake camera films a photo (it cannot blink or turn): the phone says so
        expect(page).to_have_url(re.compile(r"/face$"))
        page.get_by_test_id("start-camera").click()
        result = page.locator("[data-testid=check][data-state=done]")
        expect(result).to_be_visible(timeout=60_000)
        outcome = result.get_attribute("data-outcome")
        assert outcome == "fail", outcome  # no blink, no head turn: liveness refuses a still picture
        expect(result).to_contain_text("未检测到眨眼")
        expect(result).to_contain_text("人脸差异度")  # the match itself is explained too
        assert repo.get(app_id, Scope()).face_attempts == 1
        assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        context.close()
