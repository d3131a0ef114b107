"""Issue 17 §3, the reviewer's side: a typed value that differs from what OCR read on the ID card is shown beside
it, with the card's crop of that field, served only to whoever may see the KYC images, audit-logged, never cached."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import ready_to_submit
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
