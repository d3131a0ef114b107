"""The person's rights over their personal information (PIPL arts. 15, 44–48, 50), over real HTTP with a real database
and object store: a customer asks, ops see the request with its due date (15 calendar days: bff/privacy/services.py)
and answer it, or refuse it with a reason, and the customer reads the answer; withdrawing the consent to face
recognition deletes the application's face images at once and is audited; a customer sees only their own
applications' requests, staff of another dealer nothing, a salesperson answers nothing; what was typed stays after
an error."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from bff.privacy.services import SHANGHAI
from bff.privacy.services import due_from
from infra.applications import Scope
from infra.db.models import utcnow
from infra.storage import object_key
from tests.integration.test_applications import SALES_B
from tests.integration.test_applications import consent
from tests.integration.test_applications import invited_customer
from tests.integration.test_applications import start
from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
OPS = "ops@demo.leaseline.cn"
ADMIN_B = "admin.xihu@demo.leaseline.cn"
MOBILE, OTHER_MOBILE = "13700137301", "13700137302"


def components(app: Any) -> Any:
    return app.extensions["leaseline"]


@pytest.fixture(scope="module")
def customer(bff_server: Any, app: Any) -> Iterator[tuple[requests.Session, str]]:
    """An invited customer's phone and their own application (consents given: the notice, the credit
    authorisation, face recognition)."""
    s = invited_customer(bff_server.url, app, MOBILE)
    app_id = start(bff_server.url, s)
    consent(bff_server.url, s, app_id)
    yield s, app_id
    s.close()


def page(s: requests.Session, base: str, app_id: str, **params: str) -> requests.Response:
    return s.get(f"{base}/applications/{app_id}/privacy", params=params, timeout=TIMEOUT, allow_redirects=False)


def send(s: requests.Session, base: str, path: str, form_page: str, **data: str) -> requests.Response:
    return s.post(f"{base}{path}", data={**data, "csrf_token": csrf(s, f"{base}{form_page}")}, timeout=TIMEOUT,
                  allow_redirects=False)


def ask(s: requests.Session, base: str, app_id: str, **data: str) -> requests.Response:
    return send(s, base, f"/applications/{app_id}/privacy/requests", f"/applications/{app_id}/privacy", **data)


def reply(s: requests.Session, base: str, request_id: str, **data: str) -> requests.Response:
    return send(s, base, f"/ops/privacy/{request_id}/answer", "/ops/privacy", **data)


def audited(app: Any, action: str, target: str) -> list[Any]:
    return [e for e in components(app).audit.search(action=action, limit=500) if e.target == target]


def test_a_customer_asks_ops_answer_by_the_due_date_and_the_customer_reads_the_answer(
        bff_server: Any, app: Any, customer: tuple[requests.Session, str]) -> None:
    base, (s, app_id) = bff_server.url, customer
    c = components(app)
    mine = page(s, base, app_id)
    assert mine.status_code == 200 and mine.headers["Cache-Control"] == "no-store"
    assert "我的个人信息" in mine.text and 'data-testid="request-form"' in mine.text
    assert 'data-testid="withdraw-face_recognition"' in mine.text  # optional: withdrawn here, at once
    why = mine.text.split('data-testid="why-sensitive_pi"', 1)[1].split("</p>", 1)[0]
    assert "合同" in why and "第十三条" in why  # needed for the contract, said plainly, with the article
    assert 'data-testid="withdraw-sensitive_pi"' not in mine.text
    r = ask(s, base, app_id, kind="access", detail="请告诉我你们保存了我的哪些收入信息")
    assert r.status_code == 303 and r.headers["Location"].endswith("notice=submitted#requests")
    request = next(x for x in c.privacy.for_application(c.applications.repo.get(app_id, Scope()))
                   if x.kind == "access")
    assert (request.kind, request.status, request.detail) == ("access", "open", "请告诉我你们保存了我的哪些收入信息")
    assert request.due_at == due_from(request.received_at)
    assert timedelta(days=15) <= request.due_at - request.received_at < timedelta(days=16)
    due = request.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert due.endswith("23:59:59")
    [entry] = [e for e in audited(app, "privacy.request_submitted", app_id) if e.details["request"] == request.id]
    assert entry.details["kind"] == "access" and "收入" not in str(entry.details)  # the person's words stay out
    # an overdue request of the same application (received 20 days ago) comes before it on ops' list
    received = utcnow() - timedelta(days=20)
    late = c.privacy.store.add(application_id=app_id, dealer_id=request.dealer_id, kind="copy", detail="复制",
                               received_at=received, due_at=due_from(received))
    with sign_in(base, OPS) as ops:
        account = ops.get(f"{base}/account", timeout=TIMEOUT).text
        assert 'data-testid="go-privacy-requests"' in account
        listed = ops.get(f"{base}/ops/privacy", timeout=TIMEOUT)
        assert listed.status_code == 200 and listed.headers["Cache-Control"] == "no-store"
        ids = re.findall(r'data-request="([0-9a-f-]{36})"', listed.text)
        assert ids.index(late.id) < ids.index(request.id)
        card = listed.text.split(f'data-request="{request.id}"', 1)[1].split("</section>", 1)[0]
        assert f'data-testid="request-due">{due}<' in card and 'data-testid="request-overdue"' not in card
        assert 'data-testid="request-overdue"' in listed.text.split(f'data-request="{late.id}"', 1)[1].split(
            "</section>", 1)[0]
        # a refusal needs its reason: 422, the choice kept
        r = reply(ops, base, request.id, status="refused", answer="  ")
        assert r.status_code == 422 and 'data-testid="error-answer"' in r.text and "拒绝须说明理由" in r.text
        form = r.text.split(f'data-request="{request.id}"', 1)[1].split("</section>", 1)[0]
        assert 'value="refused" checked' in form
        r = reply(ops, base, request.id, status="answered", answer="您的收入信息：月收入、单位名称，见附件。")
        assert r.status_code == 303
        assert request.id not in ops.get(f"{base}/ops/privacy", timeout=TIMEOUT).text  # open ones only
        again = reply(ops, base, request.id, status="refused", answer="重复")
        assert again.status_code == 409  # the first answer stands
        r = reply(ops, base, late.id, status="refused", answer="同一请求已答复，请见上一条")
        assert r.status_code == 303
    answered = c.privacy.get(request.id)
    assert answered.status == "answered" and answered.answered_by_label == OPS
    assert [(e.details["request"], e.details["overdue"]) for e in audited(app, "privacy.request_answered", app_id)
            ] == [(request.id, False)]
    assert [(e.details["request"], e.details["overdue"]) for e in audited(app, "privacy.request_refused", app_id)
            ] == [(late.id, True)]
    shown = page(s, base, app_id).text
    assert "您的收入信息：月收入、单位名称，见附件。" in shown and "已答复" in shown and "同一请求已答复" in shown
    assert OPS not in shown  # the customer reads the answer, not which of the staff wrote it
    english = page(s, base, app_id, lang="en").text
    assert "Your personal information" in english and "Answered" in english and "Refused" in english


def test_what_was_typed_stays_after_an_error(bff_server: Any, customer: tuple[requests.Session, str]) -> None:
    base, (s, app_id) = bff_server.url, customer
    r = ask(s, base, app_id, kind="", detail="我想更正住址 <b>")
    assert r.status_code == 422 and 'data-testid="error-kind"' in r.text
    assert html.escape("我想更正住址 <b>", quote=False) in r.text  # kept, and escaped
    r = ask(s, base, app_id, kind="correct", detail="长" * 1001)
    assert r.status_code == 422 and 'data-testid="error-detail"' in r.text and "1001" in r.text
    assert '<option value="correct" selected>' in r.text and "长" * 1001 in r.text
    r = ask(s, base, app_id, kind="erase_everything", detail="请删除")
    assert r.status_code == 422 and 'data-testid="error-kind"' in r.text and "请删除" in r.text
    # a consent the lease needs is not withdrawn here (a request instead); an unknown one neither
    for purpose in ("sensitive_pi", "made_up", ""):
        r = send(s, base, f"/applications/{app_id}/privacy/withdraw", f"/applications/{app_id}/privacy",
                 purpose=purpose)
        assert r.status_code == 422 and 'data-testid="error-purpose"' in r.text, purpose


def test_withdrawing_the_face_consent_deletes_the_face_images_now_and_is_audited(
        bff_server: Any, app: Any) -> None:
    base, c = bff_server.url, components(app)
    with invited_customer(base, app, "13700137303") as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        application = c.applications.repo.get(app_id, Scope())
        c.store.ensure_bucket()
        kept = {}
        for kind, biometric in (("id_front", False), ("id_portrait", True), ("selfie", True), ("frame_blink", True)):
            key = object_key(application.dealer_id, app_id, kind, f"{kind}.jpg")
            stored = c.store.put(key, b"\xff\xd8 not really a jpeg", "image/jpeg")
            kept[kind] = c.applications.repo.add_document(app_id, kind=kind, object_key=key, sha256=stored.sha256,
                                                          size=1, content_type="image/jpeg", biometric=biometric)
        prefix = f"tenants/{application.dealer_id}/applications/{app_id}/"
        assert len(c.store.list_keys(prefix)) == 4
        shown = page(s, base, app_id).text
        assert "人脸图像将立即删除" in shown
        r = send(s, base, f"/applications/{app_id}/privacy/withdraw", f"/applications/{app_id}/privacy",
                 purpose="face_recognition")
        assert r.status_code == 303 and r.headers["Location"].endswith("notice=withdrawn#consents")
        # the face images are gone, rows and objects; the ID card's photo (the notice's purpose) stays
        assert [d.kind for d in c.applications.repo.documents(app_id)] == ["id_front"]
        assert c.store.list_keys(prefix) == [kept["id_front"].object_key]
        face = [x for x in c.applications.repo.consents(app_id) if x.purpose == "face_recognition"]
        assert len(face) == 1 and face[0].withdrawn_at is not None
        assert all(x.withdrawn_at is None for x in c.applications.repo.consents(app_id)
                   if x.purpose != "face_recognition")
        [entry] = audited(app, "privacy.consent_withdrawn", app_id)
        assert entry.details == {"purpose": "face_recognition"} and entry.actor_label.startswith("customer:")
        [erased] = audited(app, "privacy.data_erased", app_id)
        assert erased.details == {"purpose": "face_recognition", "items": 3}
        after = page(s, base, app_id).text
        assert 'data-testid="withdrawn-face_recognition"' in after
        assert 'data-testid="withdraw-face_recognition"' not in after
        again = send(s, base, f"/applications/{app_id}/privacy/withdraw", f"/applications/{app_id}/privacy",
                     purpose="face_recognition")
        assert again.status_code == 409 and 'data-testid="privacy-error"' in again.text
        assert len(audited(app, "privacy.consent_withdrawn", app_id)) == 1


def test_each_sees_only_their_own_and_only_ops_answer(bff_server: Any, app: Any,
                                                     customer: tuple[requests.Session, str]) -> None:
    base, (s, app_id) = bff_server.url, customer
    c = components(app)
    r = ask(s, base, app_id, kind="explain", detail="为什么需要我的工作单位？")
    assert r.status_code == 303
    request = next(x for x in c.privacy.for_application(c.applications.repo.get(app_id, Scope()))
                   if x.detail == "为什么需要我的工作单位？")
    # another customer: neither the page nor a request nor a withdrawal on this application
    with invited_customer(base, app, OTHER_MOBILE) as other:
        theirs = start(base, other)
        assert page(other, base, app_id).status_code == 404
        assert send(other, base, f"/applications/{app_id}/privacy/requests", f"/applications/{theirs}/privacy",
                    kind="access", detail="x").status_code == 404
        assert send(other, base, f"/applications/{app_id}/privacy/withdraw", f"/applications/{theirs}/privacy",
                    purpose="face_recognition").status_code == 404
        assert "为什么需要我的工作单位" not in page(other, base, theirs).text
        assert other.get(f"{base}/ops/privacy", timeout=TIMEOUT, allow_redirects=False).status_code == 302
    # staff of another dealer: 404
    for email in (SALES_B, ADMIN_B):
        with sign_in(base, email) as staff:
            assert page(staff, base, app_id).status_code == 404, email
    # the dealer's staff read the requests, without the form or the withdraw buttons; they act for no one
    with sign_in(base, ADMIN_A) as admin:
        shown = page(admin, base, app_id)
        assert shown.status_code == 200 and "为什么需要我的工作单位？" in shown.text
        assert 'data-testid="request-form"' not in shown.text and 'data-testid="withdraw-' not in shown.text
        assert send(admin, base, f"/applications/{app_id}/privacy/requests", f"/applications/{app_id}/privacy",
                    kind="access", detail="x").status_code == 403
        detail = admin.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
        assert f'href="/applications/{app_id}/privacy" data-testid="go-privacy"' in detail
    # a salesperson (or a dealer's admin) answers nothing
    for email in (SALES_A, ADMIN_A):
        with sign_in(base, email) as staff:
            assert staff.get(f"{base}/ops/privacy", timeout=TIMEOUT).status_code == 403, email
            token = csrf(staff, f"{base}/applications/{app_id}/privacy")
            r = staff.post(f"{base}/ops/privacy/{request.id}/answer", timeout=TIMEOUT, allow_redirects=False,
                           data={"status": "answered", "answer": "好的", "csrf_token": token})
            assert r.status_code == 403, email
    assert c.privacy.get(request.id).status == "open"
    with sign_in(base, OPS) as ops:
        assert reply(ops, base, "00000000-0000-0000-0000-000000000000", status="answered",
                     answer="x").status_code == 404
        assert reply(ops, base, request.id, status="maybe", answer="x").status_code == 422
    # the customer's own application page links to their page
    assert f'href="/applications/{app_id}/privacy" data-testid="go-privacy"' in s.get(
        f"{base}/applications/{app_id}", timeout=TIMEOUT).text
