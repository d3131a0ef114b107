"""The ID card's side, told as soon as a photo is chosen (issue 17 §10): POST /applications/<id>/id-card/side over
real HTTP — the side and what to tell the person, scoped as the upload it precedes (role, dealer, owner, consent,
draft, CSRF, size), bad input a 4xx JSON answer, and nothing stored."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests
from PIL import Image
from sqlalchemy import text

from infra.applications import Scope
from tests.integration.test_applications import consent
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import start
from tests.integration.test_auth import RISK1
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
SALES_B = "sales.xihu@demo.leaseline.cn"


@pytest.fixture(scope="module")
def card_images() -> tuple[bytes, bytes]:
    return make_card_images()


def ask(s: requests.Session, base: str, app_id: str, side: str, photo: bytes | None, *,
        token: bool = True) -> requests.Response:
    """What the ID-card page's script sends when a photo is chosen (pwa/static/js/id-card.js)."""
    headers = {"X-CSRFToken": csrf(s, f"{base}/login")} if token else {}
    files = {"photo": ("photo.jpg", photo, "image/jpeg")} if photo is not None else None
    return s.post(f"{base}/applications/{app_id}/id-card/side", data={"side": side}, files=files, headers=headers,
                  timeout=TIMEOUT, allow_redirects=False)


def refusal(r: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers["Content-Type"]
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["message"], body
    return body


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 130, 140)).save(out, "PNG")
    return out.getvalue()


def test_the_side_of_a_chosen_photo_is_told_at_once_and_nothing_is_kept(app: Any, bff_server: Any,
                                                                       card_images: tuple[bytes, bytes]) -> None:
    base, (front, back) = bff_server.url, card_images
    repo = app.extensions["leaseline"].applications.repo
    with sign_in(base, SALES_A) as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        version = repo.get(app_id, Scope()).version

        r = ask(s, base, app_id, "front", front)
        assert r.status_code == 200, r.text[:300]
        assert r.headers["Content-Type"] == "application/json"
        assert "no-store" in r.headers["Cache-Control"]
        body = r.json()
        assert {k: body[k] for k in ("side", "expected", "ok", "code", "swap", "framed")} == {
            "side": "front", "expected": "front", "ok": True, "code": "ok", "swap": False, "framed": True}
        assert body["message"] == "已识别为人像面"
        print(f"side check of a front over HTTP: {body['ms']} ms (server)")

        # the back chosen for the front: said plainly, with the swap offered; and the other way round
        body = ask(s, base, app_id, "front", back).json()
        assert (body["side"], body["ok"], body["code"], body["swap"]) == ("back", False, "wrong_side", True)
        assert body["message"] == "这张是国徽面，请拍人像面"
        body = ask(s, base, app_id, "back", front).json()
        assert (body["side"], body["ok"], body["message"]) == ("front", False, "这张是人像面，请拍国徽面")
        body = ask(s, base, app_id, "back", back).json()
        assert (body["side"], body["ok"]) == ("back", True)
        # a photo of no card: unknown, retake
        body = ask(s, base, app_id, "front", png((900, 600))).json()
        assert (body["side"], body["ok"], body["code"]) == ("unknown", False, "no_card")
        assert "重拍" in body["message"]

        # bad input: a 4xx JSON answer, never a 500 or an HTML page
        refusal(ask(s, base, app_id, "front", b"not a photo at all"), 422, "image_not_image")
        refusal(ask(s, base, app_id, "front", png((240, 150))), 422, "image_too_small")
        refusal(ask(s, base, app_id, "front", b""), 422, "image_empty")
        refusal(ask(s, base, app_id, "front", None), 422, "missing")
        refusal(ask(s, base, app_id, "sideways", front), 422, "side")
        refusal(ask(s, base, app_id, "front", front, token=False), 400, "csrf")
        refusal(ask(s, base, app_id, "front", b"\xff\xd8" + b"0" * (10 * 1024 * 1024 + 100_000)), 413,
                "image_too_large")
        s.cookies.set("locale", "en")  # in the person's language
        assert ask(s, base, app_id, "front", back).json()["message"] == \
            "This photo is the back (emblem side): take the front (photo side)"

        # nothing was kept: no image, no check, the draft as it was
        assert repo.documents(app_id) == []
        assert repo.latest_check(app_id, "id_card") is None
        assert repo.get(app_id, Scope()).version == version


def test_the_side_check_is_scoped_as_the_upload(app: Any, bff_server: Any, card_images: tuple[bytes, bytes]) -> None:
    base, front = bff_server.url, card_images[0]
    with sign_in(base, SALES_A) as s:
        mine = start(base, s)
        consent(base, s, mine)
        unconsented = start(base, s)
        submitted = start(base, s)
        consent(base, s, submitted)
        refusal(ask(s, base, unconsented, "front", front), 409, "consent_required")
        with app.extensions["leaseline"].db.session() as session:
            session.execute(text("UPDATE applications SET status = 'submitted' WHERE id = :id"), {"id": submitted})
        refusal(ask(s, base, submitted, "front", front), 409, "not_editable")
    with sign_in(base, SALES_B) as other_dealer:  # another dealer's salesperson: not found, as the page
        refusal(ask(other_dealer, base, mine, "front", front), 404, "not_found")
    officer = sign_in(base, RISK1)  # a lessor role sees applications but does not edit them
    refusal(ask(officer, base, mine, "front", front), 403, "forbidden")
    with requests.Session() as anonymous:  # signed out: to the sign-in, as every page
        r = ask(anonymous, base, mine, "front", front)
        assert r.status_code == 302 and "/login" in r.headers["Location"]
