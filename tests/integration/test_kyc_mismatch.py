"""Issue 17 §3, the reviewer's side: a typed value that differs from what OCR read on the ID card is shown beside
it, with the card's crop of that field, served only to whoever may see the KYC images, audit-logged, never cached."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import _all
from tests.integration.test_applications import confirm_card
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import ready_to_submit
from tests.integration.test_applications import upload_card
from tests.integration.test_applications import wait_check
from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in


@pytest.fixture(scope="module")
def card_images() -> tuple[bytes, bytes]:
    return make_card_images()


def test_a_reviewer_sees_typed_and_read_side_by_side_with_the_card_crop(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    base = bff_server.url
    svc = app.extensions["leaseline"].applications
    typed = CUSTOMER["name"][:-1] + "国"  # one character typed differently from the card
    with sign_in(base, SALES_A) as s:
        app_id = ready_to_submit(base, s, card_images)
        assert post(s, f"{base}/applications/{app_id}/steps/customer", {**CUSTOMER, "name": typed}).status_code == 200
        assert post(s, f"{base}/applications/{app_id}/submit", form_url=f"{base}/applications/{app_id}") \
            .status_code == 200
        moved = svc.face_outcome(app_id, "pass", {})
        assert moved is not None and moved.status == "kyc_review"
        # the salesperson may not see the images: which field differs, no values, no crop
        page = s.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
        assert 'data-testid="ocr-mismatch"' in page and 'data-testid="mismatch-row"' not in page
        assert s.get(f"{base}/applications/{app_id}/card-field/name", timeout=TIMEOUT).status_code == 403
    with sign_in(base, ADMIN_A) as admin:
        page = admin.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
        row = page.split('data-testid="mismatch-row" data-field="name"', 1)[1].split("</tr>", 1)[0]
        assert f'data-testid="mismatch-typed">{typed}<' in row
        assert f'data-testid="mismatch-read">{CUSTOMER["name"]}<' in row
        assert f'/applications/{app_id}/card-field/name"' in row
        crop = admin.get(f"{base}/applications/{app_id}/card-field/name", timeout=TIMEOUT)
        assert crop.status_code == 200 and crop.headers["Content-Type"] == "image/jpeg"
        assert "no-store" in crop.headers["Cache-Control"]
        image = Image.open(io.BytesIO(crop.content))
        assert image.width > 2 * image.height  # a line of the card, not the whole card
        assert admin.get(f"{base}/applications/{app_id}/card-field/vin", timeout=TIMEOUT).status_code == 404
    viewed = app.extensions["leaseline"].audit.search(action="pii.document_viewed")
    assert any(e.target == app_id and (e.details or {}).get("kind") == "card_field:name" for e in viewed)


def test_an_unconfirmed_reading_cannot_be_submitted_and_a_confirmed_one_is_not_asked_again(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    """_ocr_confirmed was written and never read: an application went in with the card's reading unchecked."""
    base = bff_server.url
    with sign_in(base, SALES_A) as s:
        app_id = ready_to_submit(base, s, card_images, confirm=False)
        r = post(s, f"{base}/applications/{app_id}/submit", form_url=f"{base}/applications/{app_id}")
        assert r.status_code == 422 and "请先核对身份证信息" in r.text, r.text[:500]
        assert 'href="#ocr-confirm"' in r.text and 'id="ocr-confirm"' in r.text
        assert app.extensions["leaseline"].applications.repo.get(app_id, _all()).status == "draft"
        confirm_card(base, s, app_id)
        page = s.get(f"{base}/applications/{app_id}/id-card", timeout=TIMEOUT).text
        assert 'data-testid="ocr-confirmed"' in page and 'id="ocr-confirm"' not in page
        r = post(s, f"{base}/applications/{app_id}/submit", form_url=f"{base}/applications/{app_id}")
        assert r.status_code == 200 and "请先核对身份证信息" not in r.text
        assert app.extensions["leaseline"].applications.repo.get(app_id, _all()).status != "draft"


def test_a_retake_fills_in_the_new_reading_and_the_form_shows_what_the_card_says(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    """The first photo's reading (王建 for 王建国) stayed through a retake; where the form differs from the
    reading, the reading is shown beside the field."""
    base = bff_server.url
    svc = app.extensions["leaseline"].applications
    with sign_in(base, SALES_A) as s:
        app_id = ready_to_submit(base, s, card_images, confirm=False)
        wrong = CUSTOMER["name"][:-1]
        svc.merge_draft(app_id, lambda d: {**d, "name": wrong, "_ocr": json.dumps(
            {**json.loads(d["_ocr"]), "name": wrong}, ensure_ascii=False)})  # as a first photo misread it
        r = upload_card(base, s, app_id, *card_images)
        assert 'data-outcome="ok"' in wait_check(s, base, app_id, r.text)
        assert svc.draft(svc.repo.get(app_id, _all()))["name"] == CUSTOMER["name"]
        svc.merge_draft(app_id, lambda d: {**d, "address": "北京市"})  # typed by the person: kept, read shown
        page = s.get(f"{base}/applications/{app_id}/id-card", timeout=TIMEOUT).text
        field = page.split('data-testid="ocr-field" data-field="address"', 1)[1].split("</div>", 1)[0]
        assert 'value="北京市"' in field and f'data-testid="ocr-read">卡上识别为：{CUSTOMER["address"]}<' in field


def test_the_crop_comes_from_the_photo_that_was_read_not_a_newer_upload(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    base = bff_server.url
    ll = app.extensions["leaseline"]
    with sign_in(base, SALES_A) as s:
        app_id = ready_to_submit(base, s, card_images)
    with sign_in(base, ADMIN_A) as admin:
        before = admin.get(f"{base}/applications/{app_id}/card-field/name", timeout=TIMEOUT)
        assert before.status_code == 200
        application = ll.applications.repo.get(app_id, _all())
        ll.kyc._keep(application, "id_front", Image.new("RGB", (856, 540), (20, 20, 20)), biometric=False)  # pending
        after = admin.get(f"{base}/applications/{app_id}/card-field/name", timeout=TIMEOUT)
        assert after.status_code == 200 and after.content == before.content
