"""Capture guidance on the ID card step, on a Pixel 7 (issue 17 §10): each side's outline and the tip, the chosen
photo shown in it, the side it shows told before the upload — a back chosen for the front is said plainly, with the
swap offered and the upload held back — 重拍 replacing the photo, and the right photos going on to the read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page
from playwright.sync_api import expect

from infra.applications import Scope
from kyc import specimens
from tests.common import faces
from tests.e2e.test_lease_browser import assert_no_inline_style
from tests.e2e.waiting import wait_until
from tests.integration.test_applications import consent
from tests.integration.test_applications import start
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import sign_in

CARD = specimens.person(name="周雨桐", seed=1710)


@pytest.fixture(scope="module")
def card_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("card")
    portrait = faces.id_portrait(faces.photo("obama.jpg"), size=(358, 441))
    front, back = folder / "front.jpg", folder / "back.jpg"
    specimens.front(CARD, portrait).save(front, "JPEG", quality=92)
    specimens.back(CARD).save(back, "JPEG", quality=92)
    return front, back


def preview(page: Page, side: str) -> str:
    """The preview's source once its picture has loaded (a blob: URL of the chosen file, which the CSP allows)."""
    selector = f"[data-testid=id-preview-{side}]"
    wait_until(page, f"(() => {{ const i = document.querySelector('{selector}'); "
                     "return !i.hidden && i.complete && i.naturalWidth > 0; })()", 10)
    return str(page.locator(selector).get_attribute("src"))


def test_a_back_chosen_for_the_front_is_said_before_upload_and_retaken(page: Page, live_server: Any,
                                                                       card_files: tuple[Path, Path]) -> None:
    front, back = (str(p) for p in card_files)
    base = live_server.url
    with sign_in(base, SALES_A) as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        page.context.add_cookies([{"name": c.name, "value": c.value, "url": base} for c in s.cookies])
    page.goto(f"/applications/{app_id}/id-card")

    # the guide: each side's outline, named, and the one-line tip
    expect(page.get_by_test_id("id-tip")).to_have_text("平放、光线充足、四角完整、避免反光")
    for side, name in (("front", "人像面"), ("back", "国徽面")):
        frame = page.get_by_test_id(f"id-side-{side}").locator("[data-frame]")
        expect(frame).to_be_visible()
        expect(frame).to_contain_text(name)
        box = frame.bounding_box()
        assert box is not None and abs(box["width"] / box["height"] - 85.6 / 54) < 0.02, box  # the card's shape
        assert page.locator(f"#{side}").get_attribute("capture") == "environment"

    # the back chosen for the front: said before anything is uploaded, the upload held back, the swap offered
    page.locator("#front").set_input_files(back)
    first = preview(page, "front")
    assert first.startswith("blob:")
    verdict = page.get_by_test_id("id-verdict-front")
    expect(verdict).to_have_text("这张是国徽面，请拍人像面")
    expect(page.get_by_test_id("upload-id")).to_be_disabled()
    expect(page.get_by_test_id("id-blocked")).to_be_visible()
    expect(page.get_by_test_id("id-swap-front")).to_be_visible()

    # used as the back instead: it moves there, recognised; the front is empty again and the upload free
    page.get_by_test_id("id-swap-front").click()
    expect(page.get_by_test_id("id-verdict-back")).to_have_text("已识别为国徽面")
    assert preview(page, "back").startswith("blob:")
    expect(page.get_by_test_id("id-preview-front")).to_be_hidden()
    expect(page.get_by_test_id("id-retake-front")).to_be_hidden()  # (no photo there to retake)
    expect(page.get_by_test_id("upload-id")).to_be_enabled()

    # the back chosen for the front once more, then 重拍: the picker again, and the new photo replaces it
    page.locator("#front").set_input_files(back)
    expect(verdict).to_have_text("这张是国徽面，请拍人像面")
    wrong = preview(page, "front")
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("id-retake-front").click()
    chooser.value.set_files(front)
    expect(verdict).to_have_text("已识别为人像面")
    replaced = preview(page, "front")
    assert replaced.startswith("blob:") and replaced != wrong
    expect(page.get_by_test_id("id-blocked")).to_be_hidden()
    expect(page.get_by_test_id("id-swap-front")).to_be_hidden()  # nothing to swap: it is the front

    # nothing was stored by the checks; a 360 × 640 phone shows the step without sideways scrolling
    services = live_server.app.extensions["leaseline"]
    assert services.applications.repo.documents(app_id) == []
    page.set_viewport_size({"width": 360, "height": 640})
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    frame = page.get_by_test_id("id-side-front").locator("[data-frame]").bounding_box()
    assert frame is not None and frame["x"] >= 0 and frame["x"] + frame["width"] <= 360, frame

    # the right photos: uploaded and read
    assert_no_inline_style(page)  # the previews, verdicts and buttons js/id-card.js set: no inline style (CSP)
    page.get_by_test_id("upload-id").click()
    expect(page.get_by_test_id("id-ok")).to_be_visible(timeout=30_000)
    assert_no_inline_style(page)  # the card read, swapped in by htmx
    draft = services.applications.draft(services.applications.repo.get(app_id, Scope()))
    assert draft["name"] == CARD.name and draft["id_number"] == CARD.id_number


@pytest.mark.console(r"status of 422")  # the photo too small, refused on purpose (its side check, its upload)
def test_a_refused_photo_keeps_the_other_and_the_card_read_shows_what_to_check_first(
        page: Page, live_server: Any, card_files: tuple[Path, Path], tmp_path: Path) -> None:
    """Walk-through finding 10: a photo the upload refused (422) emptied both inputs, and once the card was read the
    empty upload form and its primary button stayed above the fields to check."""
    front, back = (str(p) for p in card_files)
    small = tmp_path / "small.jpg"
    Image.new("RGB", (280, 176), "white").save(small, "JPEG")
    base = live_server.url
    with sign_in(base, SALES_A) as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        page.context.add_cookies([{"name": c.name, "value": c.value, "url": base} for c in s.cookies])
    page.goto(f"/applications/{app_id}/id-card")
    page.locator("#front").set_input_files(front)
    expect(page.get_by_test_id("id-verdict-front")).to_have_text("已识别为人像面")
    chosen = preview(page, "front")
    page.locator("#back").set_input_files(str(small))
    wait_until(page, "!['checking', undefined].includes(document.querySelector('[data-side=back]').dataset.state)", 15)

    # the upload refuses the back (too small): said there and above the form; the front stays chosen, as it was
    page.get_by_test_id("upload-id").click()
    expect(page.get_by_test_id("upload-error")).to_contain_text("照片太小（280×176）")
    expect(page.get_by_test_id("id-verdict-back")).to_contain_text("照片太小（280×176）")
    assert page.locator("#front").evaluate("input => input.files.length") == 1
    assert preview(page, "front") == chosen
    expect(page.get_by_test_id("id-verdict-front")).to_have_text("已识别为人像面")

    # only the back taken again: uploaded and read
    page.locator("#back").set_input_files(back)
    expect(page.get_by_test_id("id-verdict-back")).to_have_text("已识别为国徽面")
    page.get_by_test_id("upload-id").click()
    expect(page.get_by_test_id("ocr-confirm")).to_be_visible(timeout=30_000)

    # read: what to check comes first, its first field in view; the upload form under it, closed, a secondary button
    def first_field_in_view() -> None:
        box = page.locator("[data-testid=ocr-field] input").first.bounding_box()
        height = page.viewport_size["height"] if page.viewport_size else 0
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height, (box, height)
        again = page.get_by_test_id("id-again")
        expect(again.locator("summary")).to_have_text("重新拍摄身份证")
        assert again.evaluate("details => details.open") is False
        expect(page.get_by_test_id("upload-id")).to_be_hidden()
        expect(page.get_by_test_id("upload-id")).to_have_class("secondary")
        form = page.get_by_test_id("ocr-confirm").bounding_box()
        below = again.bounding_box()
        assert form is not None and below is not None and below["y"] > form["y"] + form["height"] - 1

    first_field_in_view()  # as the reading arrives (the upload button was below the fold)
    page.reload()  # and as the page opens, at its top
    page.evaluate("window.scrollTo(0, 0)")
    first_field_in_view()
    page.get_by_test_id("id-again").locator("summary").click()  # to photograph the card again: there
    expect(page.get_by_test_id("upload-id")).to_be_visible()
