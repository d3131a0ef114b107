"""Documents on request on the customer's Pixel 7 (issue 17 §9): the risk officer asked for proof of income; the
customer opens the link from the text, takes a photo of the first page, picks the second from the phone's files, sees
both listed with their previews, removes one and takes it again, and sends them; the case is back with the officer."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from infra.applications import Scope
from tests.integration.test_applications import invited_customer
from tests.integration.test_applications import make_card_images
from tests.integration.test_auth import sign_in
from tests.integration.test_documents import ask
from tests.integration.test_documents import new_mobile
from tests.integration.test_documents import page_image
from tests.integration.test_documents import wait_text
from tests.integration.test_reviews import RISK1
from tests.integration.test_reviews import claim
from tests.integration.test_reviews import persona_id
from tests.integration.test_reviews import to_risk


def _referred(live_server: Any, app_id: str, timeout: float = 30) -> dict[str, Any]:
    repo = live_server.app.extensions["leaseline"].applications.repo
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = repo.get(app_id, Scope())
        if app.status == "referred" and app.risk_result.get("review"):
            return dict(app.risk_result["review"])
        time.sleep(0.3)
    raise AssertionError("the application was not referred")


@pytest.mark.console(r"the server responded with a status of 422")  # the file that is not a picture, refused
def test_the_customer_photographs_two_pages_and_sends_them_from_the_phone(
        browser: Browser, playwright: Playwright, live_server: Any) -> None:
    base, mobile = live_server.url, new_mobile()
    app_id = to_risk(base, make_card_images(), persona_id("91", "9"), mobile=mobile)
    case = _referred(live_server, app_id)
    with sign_in(base, RISK1) as risk:
        assert claim(base, risk, case["id"]).status_code == 200
        r = ask(base, risk, case["id"], {"kinds": ["income_proof"], "note": "单位盖章的收入证明，共两页", "due_on": ""})
        assert r.status_code == 200, r.text[:300]
    text = wait_text(live_server.app, mobile, "补充材料")
    link = re.search(r"https?://\S+", text).group(0)  # type: ignore[union-attr]

    # the customer's phone, signed in by the invitation's code (as in tests/e2e/test_handoff.py, done over HTTP)
    signed_in = invited_customer(base, live_server.app, mobile)
    phone = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
    try:
        phone.add_cookies([{"name": c.name, "value": c.value or "", "url": base} for c in signed_in.cookies])
        page = phone.new_page()
        page.goto(link)
        expect(page.get_by_test_id("documents-note")).to_contain_text("单位盖章的收入证明")
        camera = page.get_by_test_id("camera-income_proof")
        assert camera.get_attribute("capture") == "environment"
        assert page.get_by_test_id("file-income_proof").get_attribute("accept") == "image/*,application/pdf"
        # page 1 from the camera: sent as soon as it is taken (js/documents.js), listed with its preview
        camera.set_input_files({"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": page_image("JPEG")})
        pages = page.get_by_test_id("pages-income_proof").locator("li")
        expect(pages).to_have_count(1)
        # nothing left to add by hand: "add these pages" (for a phone without JavaScript) is not offered, whose
        # press sent the empty inputs and answered 请拍照或选择文件 above the page just added
        expect(page.get_by_test_id("add-income_proof")).to_be_hidden()
        expect(page.get_by_test_id("camera-income_proof")).to_be_visible()
        # page 2 from the phone's files
        page.get_by_test_id("file-income_proof").set_input_files(
            {"name": "page2.png", "mimeType": "image/png", "buffer": page_image("PNG")})
        expect(pages).to_have_count(2)
        expect(pages.first.locator("img")).to_be_visible()
        assert pages.first.locator("img").evaluate("img => img.naturalWidth") > 0  # the preview really loads
        # a file that is not a picture: refused beside the document, nothing added
        page.get_by_test_id("file-income_proof").set_input_files(
            {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"just some text"})
        expect(page.locator("p.field-error[data-field=income_proof]")).to_contain_text("只能上传照片")
        expect(pages).to_have_count(2)
        # the second page was blurred: removed and taken again
        pages.nth(1).get_by_test_id("remove-page").click()
        expect(pages).to_have_count(1)
        camera = page.get_by_test_id("camera-income_proof")
        camera.set_input_files({"name": "IMG_0002.jpg", "mimeType": "image/jpeg", "buffer": page_image("JPEG")})
        expect(pages).to_have_count(2)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing off the screen
        page.get_by_test_id("send-documents").click()
        expect(page.get_by_test_id("documents-sent")).to_be_visible()
    finally:
        phone.close()
        signed_in.close()
    with sign_in(base, RISK1) as risk:
        queue = risk.get(f"{base}/reviews", timeout=10).text
        assert f'<li data-case="{case["id"]}"' in queue and "queue-documents-back" in queue


def big_photo(seed: int) -> bytes:
    """A phone camera's photo of about 8 MB (noise does not compress): three of them are more than one post may
    carry (24 MB), each is within the 10 MB a file may be."""
    import io

    from PIL import Image

    rng = __import__("random").Random(seed)
    image = Image.frombytes("RGB", (2800, 2400), rng.randbytes(2800 * 2400 * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    assert 6 * 1024 * 1024 < len(out.getvalue()) < 10 * 1024 * 1024, len(out.getvalue())
    return out.getvalue()


def test_several_big_photos_chosen_at_once_are_each_sent_and_listed(
        browser: Browser, playwright: Playwright, live_server: Any) -> None:
    """Four gallery photos of a bank statement chosen at once (about 32 MB together): each is sent on its own, so
    none meets the size limit of a post, and all four are listed — not the generic 'upload too large' page."""
    base, mobile = live_server.url, new_mobile()
    app_id = to_risk(base, make_card_images(), persona_id("91", "8"), mobile=mobile)
    case = _referred(live_server, app_id)
    with sign_in(base, RISK1) as risk:
        assert claim(base, risk, case["id"]).status_code == 200
        r = ask(base, risk, case["id"], {"kinds": ["bank_statement"], "note": "近六个月银行流水", "due_on": ""})
        assert r.status_code == 200, r.text[:300]
    signed_in = invited_customer(base, live_server.app, mobile)
    phone = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
    try:
        phone.add_cookies([{"name": c.name, "value": c.value or "", "url": base} for c in signed_in.cookies])
        page = phone.new_page()
        page.goto(f"/applications/{app_id}/documents")
        page.get_by_test_id("file-bank_statement").set_input_files(
            [{"name": f"IMG_{n}.jpg", "mimeType": "image/jpeg", "buffer": big_photo(n)} for n in range(4)])
        expect(page.get_by_test_id("pages-bank_statement").locator("li")).to_have_count(4, timeout=60_000)
        expect(page.locator("p.field-error")).to_have_count(0)
    finally:
        phone.close()
