"""A real phone's ID card photos on a Pixel 7 (issue 17 §3): the camera's 4000×3000 files, the card 60–90 % of the
picture's width, turned and tilted a little on a table. The page uploads the 1280 px copy it made for the side
check instead of the camera's file (js/id-card.js), and the server finds the card in the photo before reading it:
the name and the number come out exact."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page
from playwright.sync_api import expect

from infra.applications import Scope
from kyc import specimens
from tests.common import card_photos
from tests.common import faces
from tests.e2e.waiting import wait_until
from tests.integration.test_applications import consent
from tests.integration.test_applications import start
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import sign_in

CARD = specimens.person(name="诸葛思远", seed=1733)


@pytest.fixture(scope="module")
def camera_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("camera")
    portrait = faces.id_portrait(faces.photo("obama.jpg"), size=(250, 306))
    rng = random.Random(1733)
    front, back = folder / "IMG_0001.jpg", folder / "IMG_0002.jpg"
    front.write_bytes(card_photos.photographed(specimens.front(CARD, portrait), rng))
    back.write_bytes(card_photos.photographed(specimens.back(CARD), rng))
    return front, back


def test_camera_photos_go_up_reduced_and_their_card_is_read(page: Page, live_server: Any,
                                                             camera_files: tuple[Path, Path]) -> None:
    base = live_server.url
    with sign_in(base, SALES_A) as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        page.context.add_cookies([{"name": c.name, "value": c.value, "url": base} for c in s.cookies])
    page.goto(f"/applications/{app_id}/id-card")
    camera = max(p.stat().st_size for p in camera_files)
    page.locator("#front").set_input_files(str(camera_files[0]))
    page.locator("#back").set_input_files(str(camera_files[1]))
    for side in ("front", "back"):  # the side check answered, and the reduced copy took the camera file's place
        wait_until(page, f"(() => {{ const f = document.querySelector('#{side}').files[0]; "
                         f"const state = document.querySelector('[data-side={side}]').dataset.state; "
                         f"return f && f.size < {camera // 2} && f.type === 'image/jpeg' && "
                         "['ok', 'retake'].includes(state); })()", 30)

    page.get_by_test_id("upload-id").click()
    expect(page.get_by_test_id("id-ok")).to_be_visible(timeout=60_000)
    services = live_server.app.extensions["leaseline"]
    draft = services.applications.draft(services.applications.repo.get(app_id, Scope()))
    assert (draft["name"], draft["id_number"]) == (CARD.name, CARD.id_number)
    kept = services.applications.repo.documents(app_id, ("id_front", "id_back"))
    assert len(kept) == 2
    for doc in kept:  # what was uploaded and kept: the page's copy, not the camera's 12 MP
        assert max(Image.open(io.BytesIO(services.store.get(doc.object_key))).size) == 1280
