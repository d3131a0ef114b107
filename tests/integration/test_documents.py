"""Documents on request (issue 17 §9), over real HTTP with the real risk service, worker, S3 and SMS sandbox: a risk
officer asks for documents, the customer gets a text with the link, uploads photos and a PDF on their phone (bad
files refused with the reason beside the document), sends them, and the case is back in the officer's queue with
the time it waited for the customer left out of its SLA; nobody else reaches the pages."""

from __future__ import annotations

import io
import random
import re
import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from PIL import Image
from PIL import ImageDraw

from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import SALES_B
from tests.integration.test_applications import invited_customer
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import wait_status
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_reviews import RISK1
from tests.integration.test_reviews import case_of
from tests.integration.test_reviews import claim
from tests.integration.test_reviews import decide
from tests.integration.test_reviews import persona_id
from tests.integration.test_reviews import to_risk

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def card_images() -> tuple[bytes, bytes]:
    return make_card_images()


def page_image(fmt: str, text: str = "收入证明") -> bytes:
    """A photographed page: white paper with lines of 'text', as PNG or JPEG."""
    image = Image.new("RGB", (900, 1200), "white")
    draw = ImageDraw.Draw(image)
    for y in range(80, 1100, 60):
        draw.rectangle((60, y, 60 + random.randrange(300, 780), y + 18), fill=(40, 40, 40))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def pdf(pages: int) -> bytes:
    """A PDF of ``pages`` scanned pages (Pillow writes a real PDF)."""
    images = [Image.open(io.BytesIO(page_image("PNG"))).convert("RGB") for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


def new_mobile() -> str:
    return f"139{random.randrange(10**8):08d}"


def referred_case(bff_server: Any, card_images: tuple[bytes, bytes], mobile: str, serial: str) -> tuple[str, dict]:
    """A thin-file application of the customer with ``mobile``, referred to a tier 1 officer: (its id, the case)."""
    base = bff_server.url
    app_id = to_risk(base, card_images, persona_id("91", serial), mobile=mobile)
    with sign_in(base, SALES_A) as sales:
        wait_status(sales, base, app_id, ("referred",))
    return app_id, case_of(bff_server, app_id)


def ask(base: str, risk: requests.Session, case_id: str, data: dict[str, Any]) -> requests.Response:
    url = f"{base}/reviews/{case_id}"
    return risk.post(f"{url}/documents", data={**data, "csrf_token": csrf(risk, url)}, timeout=TIMEOUT)


def wait_text(app: Any, mobile: str, needle: str, timeout: float = 20) -> str:
    """The newest text to ``mobile`` containing ``needle`` (the worker sends it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for sms in app.extensions["leaseline"].outbox.latest(5, to=mobile):
            if needle in sms.body:
                return str(sms.body)
        time.sleep(0.2)
    raise AssertionError(f"no text with {needle!r} to {mobile}")


def upload(s: requests.Session, base: str, app_id: str, docs_id: str, kind: str,
           files: list[tuple[str, bytes, str]]) -> requests.Response:
    url = f"{base}/applications/{app_id}/documents"
    return s.post(f"{url}/{docs_id}/pages", data={"kind": kind, "csrf_token": csrf(s, url)},
                  files=[("file", f) for f in files], timeout=TIMEOUT)


def send(s: requests.Session, base: str, app_id: str, docs_id: str) -> requests.Response:
    url = f"{base}/applications/{app_id}/documents"
    return s.post(f"{url}/{docs_id}/submit", data={"csrf_token": csrf(s, url)}, timeout=TIMEOUT)


def _hours_left(row: str) -> int:
    found = re.search(r'data-testid="queue-sla">[^<\d]*(\d+)小时', row)
    assert found, row
    return int(found.group(1))


def _queue_row(page: str, case_id: str) -> str:
    row = next((c for c in page.split('<li data-case="')[1:] if c.startswith(case_id)), None)
    assert row is not None, f"case {case_id} not in the officer's queue"
    return row.split("</li>")[0]


def test_an_officer_asks_for_documents_and_the_customer_sends_them_from_the_phone(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    from sqlalchemy import select

    from infra.db.models import AuditEventRow
    from infra.db.models import DocumentRequestRow

    base, mobile = bff_server.url, new_mobile()
    app_id, case = referred_case(bff_server, card_images, mobile, "7")
    with sign_in(base, RISK1) as risk:
        page = risk.get(f"{base}/reviews/{case['id']}", timeout=TIMEOUT).text
        assert 'data-testid="document-requests"' in page and 'data-testid="request-documents-form"' not in page
        assert claim(base, risk, case["id"]).status_code == 200
        before = _hours_left(_queue_row(risk.get(f"{base}/reviews", timeout=TIMEOUT).text, case["id"]))
        # nothing chosen, no note: both named, the date kept
        r = ask(base, risk, case["id"], {"due_on": ""})
        assert r.status_code == 422 and 'data-field="kinds"' in r.text and 'data-field="note"' in r.text
        r = ask(base, risk, case["id"], {"kinds": ["income_proof", "bank_statement"], "note": "近 6 个月的银行流水",
                                         "due_on": "2001-01-01"})
        assert r.status_code == 422 and 'data-field="due_on"' in r.text and "近 6 个月的银行流水" in r.text
        r = ask(base, risk, case["id"], {"kinds": ["income_proof", "bank_statement"], "note": "近 6 个月的银行流水",
                                         "due_on": ""})
        assert r.status_code == 200 and r.url.endswith(f"/reviews/{case['id']}"), r.text[:500]
        assert 'data-status="open"' in r.text
        # said on the case page, where the officer asked, not later on the queue
        assert 'data-testid="review-flash"' in r.text and "已发送材料请求" in r.text
        # the case waits for the customer: out of the queue, listed apart
        queue = risk.get(f"{base}/reviews", timeout=TIMEOUT).text
        assert "已发送材料请求" not in queue
        assert f'<li data-case="{case["id"]}"' not in queue and f'data-waiting-case="{case["id"]}"' in queue
    text = wait_text(app, mobile, "补充材料")
    assert "收入证明、银行流水" in text and f"/applications/{app_id}/documents" in text

    customer = invited_customer(base, app, mobile)
    link = re.search(r"https?://\S+", text).group(0)  # type: ignore[union-attr]
    # the application's own page says what is asked and leads there too (not only the text message)
    detail = customer.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
    assert 'data-testid="documents-wanted"' in detail and "收入证明、银行流水" in detail
    assert f'href="/applications/{app_id}/documents"' in detail
    page = customer.get(link, timeout=TIMEOUT)
    assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
    assert "近 6 个月的银行流水" in page.text and 'accept="image/*,application/pdf"' in page.text
    assert 'capture="environment"' in page.text
    docs_id = re.search(r'data-request="([0-9a-f-]{36})"', page.text).group(1)  # type: ignore[union-attr]

    # refused by their content, whatever the name or type the browser gave: the reason beside the document
    r = upload(customer, base, app_id, docs_id, "income_proof", [("payslip.png", b"not a picture at all", "image/png")])
    assert r.status_code == 422 and 'data-field="income_proof"' in r.text and "只能上传照片" in r.text
    r = upload(customer, base, app_id, docs_id, "bank_statement", [("s.pdf", b"%PDF-1.4 broken", "application/pdf")])
    assert r.status_code == 422 and 'data-field="bank_statement"' in r.text and "PDF" in r.text
    r = upload(customer, base, app_id, docs_id, "bank_statement", [("big.pdf", pdf(21), "application/pdf")])
    assert r.status_code == 422 and "20 页" in r.text
    assert 'data-page="' not in r.text  # nothing stored

    # two photographed pages of the income proof (a PNG and a JPEG), sending only them is refused by name
    r = upload(customer, base, app_id, docs_id, "income_proof", [("p1.png", page_image("PNG"), "image/png"),
                                                                 ("p2.jpg", page_image("JPEG"), "image/jpeg")])
    assert r.status_code == 200 and r.text.count('data-page="') == 2, r.text[:800]
    r = send(customer, base, app_id, docs_id)
    assert r.status_code == 422 and 'data-field="bank_statement"' in r.text and "银行流水" in r.text
    r = upload(customer, base, app_id, docs_id, "bank_statement", [("s.pdf", pdf(2), "application/pdf")])
    assert r.status_code == 200 and "PDF，2 页" in r.text and r.text.count('data-page="') == 3
    # a page removed (to retake it) is gone, from the list and from the bucket
    first = re.search(r'data-page="([0-9a-f-]{36})"', r.text).group(1)  # type: ignore[union-attr]
    docs = app.extensions["leaseline"]
    from bff.documents import document_service

    service = document_service(docs)
    key = next(p.object_key for p in service.repo.pages(docs_id) if p.id == first)
    assert docs.store.head(key).server_side_encryption == "AES256"
    url = f"{base}/applications/{app_id}/documents"
    r = customer.post(f"{url}/{docs_id}/pages/{first}/delete", data={"csrf_token": csrf(customer, url)},
                      timeout=TIMEOUT)
    assert r.status_code == 200 and r.text.count('data-page="') == 2 and first not in r.text
    assert key not in docs.store.list_keys(key.rsplit("/", 1)[0] + "/")
    r = upload(customer, base, app_id, docs_id, "income_proof", [("retake.jpg", page_image("JPEG"), "image/jpeg")])
    assert r.status_code == 200 and r.text.count('data-page="') == 3
    r = send(customer, base, app_id, docs_id)
    assert r.status_code == 200 and 'data-testid="documents-sent"' in r.text
    # sent: nothing more can change
    r = upload(customer, base, app_id, docs_id, "income_proof", [("late.png", page_image("PNG"), "image/png")])
    assert r.status_code == 409

    # the customer took two hours: the clock stood still for them
    with docs.db.session() as session:
        row = session.get(DocumentRequestRow, docs_id)
        row.requested_at -= timedelta(hours=2)
    with sign_in(base, RISK1) as risk:
        row = _queue_row(risk.get(f"{base}/reviews", timeout=TIMEOUT).text, case["id"])
        assert 'data-testid="queue-documents-back"' in row
        assert _hours_left(row) >= before + 1  # about two hours more than before the request (minus the test's time)
        page = risk.get(f"{base}/reviews/{case['id']}", timeout=TIMEOUT).text
        assert 'data-testid="sla-paused"' in page and "2小时" in page.split('data-testid="sla-paused"')[1][:200]
        links = re.findall(r'href="(/reviews/[^"]+/pages/[^"]+)"', page)
        assert len(links) == 3
        shown = [risk.get(base + link, timeout=TIMEOUT) for link in links]
        assert all(r.status_code == 200 and "no-store" in r.headers["Cache-Control"] for r in shown)
        assert sorted(r.headers["Content-Type"] for r in shown) == ["application/pdf", "image/jpeg", "image/jpeg"]
        assert all(r.content[:3] == b"\xff\xd8\xff" or r.content.startswith(b"%PDF") for r in shown)
        # what the customer sent never runs as our page: sandboxed, and a PDF is a download, not shown inline
        assert all(r.headers["Content-Security-Policy"] == "sandbox" for r in shown)
        assert {r.headers["Content-Disposition"].split(";")[0] for r in shown
                if r.headers["Content-Type"] == "application/pdf"} == {"attachment"}
        with docs.db.session() as session:
            logged = session.scalars(select(AuditEventRow).where(AuditEventRow.action == "pii.document_viewed",
                                                                 AuditEventRow.target == app_id)).all()
            assert len(logged) == 3 and {e.actor_label for e in logged} == {RISK1}
        # a page whose object is gone is not found (not "unavailable"), and no view of it is logged
        gone = next(p for p in service.repo.pages(docs_id) if p.content_type == "image/jpeg")
        docs.store.delete(gone.object_key)
        missing = next(link for link in links if link.endswith(gone.id))
        assert risk.get(base + missing, timeout=TIMEOUT).status_code == 404
        with docs.db.session() as session:
            assert len(session.scalars(select(AuditEventRow).where(AuditEventRow.action == "pii.document_viewed",
                                                                   AuditEventRow.target == app_id)).all()) == 3
        url = f"{base}/reviews/{case['id']}"
        r = risk.post(f"{url}/documents/{docs_id}/accept", data={"csrf_token": csrf(risk, url)}, timeout=TIMEOUT)
        assert r.status_code == 200 and 'data-status="accepted"' in r.text


def test_another_customer_or_another_dealer_never_reaches_the_pages(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    base, mobile = bff_server.url, new_mobile()
    app_id, case = referred_case(bff_server, card_images, mobile, "8")
    with sign_in(base, RISK1) as risk:
        assert claim(base, risk, case["id"]).status_code == 200
        r = ask(base, risk, case["id"], {"kinds": ["driving_licence"], "note": "驾驶证正副页", "due_on": ""})
        assert r.status_code == 200
    wait_text(app, mobile, "驾驶证")
    customer = invited_customer(base, app, mobile)
    page = customer.get(f"{base}/applications/{app_id}/documents", timeout=TIMEOUT).text
    docs_id = re.search(r'data-request="([0-9a-f-]{36})"', page).group(1)  # type: ignore[union-attr]
    r = upload(customer, base, app_id, docs_id, "driving_licence", [("d.png", page_image("PNG"), "image/png")])
    page_id = re.search(r'data-page="([0-9a-f-]{36})"', r.text).group(1)  # type: ignore[union-attr]
    mine = f"/applications/{app_id}/documents/{docs_id}/pages/{page_id}"
    assert customer.get(base + mine, timeout=TIMEOUT).status_code == 200
    # a kind not asked for is refused
    r = upload(customer, base, app_id, docs_id, "bank_statement", [("b.png", page_image("PNG"), "image/png")])
    assert r.status_code == 422

    stranger = invited_customer(base, app, new_mobile())
    for path in (f"/applications/{app_id}/documents", mine):
        assert stranger.get(base + path, timeout=TIMEOUT).status_code == 404, path
    url = f"{base}/applications/{app_id}/documents"
    r = stranger.post(f"{url}/{docs_id}/submit", data={"csrf_token": csrf(stranger, f"{base}/applications")},
                      timeout=TIMEOUT)
    assert r.status_code == 404
    with sign_in(base, SALES_B) as other_dealer:
        assert other_dealer.get(base + mine, timeout=TIMEOUT).status_code == 404
        assert other_dealer.get(f"{base}/reviews/{case['id']}/documents/{docs_id}/pages/{page_id}",
                                timeout=TIMEOUT).status_code == 403
    with sign_in(base, SALES_A) as own_dealer:  # the customer's pages are theirs: staff use the review screen
        assert own_dealer.get(base + mine, timeout=TIMEOUT).status_code == 403
    # the page of another request id, or the request under another case, is not found
    with sign_in(base, RISK1) as risk:
        assert risk.get(f"{base}/reviews/{case['id']}/documents/{'0' * 36}/pages/{page_id}",
                        timeout=TIMEOUT).status_code == 404
        # sent, but the photo is of the wrong side: asked again with a new note, a new request goes out
        assert send(customer, base, app_id, docs_id).status_code == 200
        again = send(customer, base, app_id, docs_id)  # a second tap on 送出: it was sent, and the page says so
        assert again.status_code == 200 and 'data-testid="documents-sent"' in again.text
        assert 'data-testid="documents-error"' not in again.text
        url = f"{base}/reviews/{case['id']}"
        r = risk.post(f"{url}/documents/{docs_id}/again", data={"note": "", "csrf_token": csrf(risk, url)},
                      timeout=TIMEOUT)
        assert r.status_code == 422 and 'data-field="note"' in r.text
        r = risk.post(f"{url}/documents/{docs_id}/again", timeout=TIMEOUT,
                      data={"note": "请拍驾驶证副页", "csrf_token": csrf(risk, url)})
        assert r.status_code == 200 and 'data-status="returned"' in r.text and 'data-status="open"' in r.text
    page = customer.get(f"{base}/applications/{app_id}/documents", timeout=TIMEOUT).text
    assert "请拍驾驶证副页" in page and docs_id not in page  # the new request, its pages to take again


def test_a_case_decided_elsewhere_closes_its_request_and_the_customer_can_no_longer_send(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    """Only a referred application takes documents; a decision that reaches the BFF by the "already decided" path
    (the first answer lost) closes the open request as the officer's own decision does."""
    from infra.db.models import ApplicationRow
    from infra.db.models import DocumentRequestRow

    base, mobile = bff_server.url, new_mobile()
    app_id, case = referred_case(bff_server, card_images, mobile, "5")
    with sign_in(base, RISK1) as risk:
        assert claim(base, risk, case["id"]).status_code == 200
        r = ask(base, risk, case["id"], {"kinds": ["income_proof"], "note": "工资单", "due_on": ""})
        assert r.status_code == 200
    customer = invited_customer(base, app, mobile)
    page = customer.get(f"{base}/applications/{app_id}/documents", timeout=TIMEOUT).text
    docs_id = re.search(r'data-request="([0-9a-f-]{36})"', page).group(1)  # type: ignore[union-attr]
    r = upload(customer, base, app_id, docs_id, "income_proof", [("p.png", page_image("PNG"), "image/png")])
    assert r.status_code == 200
    svc = app.extensions["leaseline"]
    # the application left "referred" while the request stayed open: nothing more is taken, said plainly
    with svc.db.session() as session:
        session.get(ApplicationRow, app_id).status = "approved"
    r = upload(customer, base, app_id, docs_id, "income_proof", [("q.png", page_image("PNG"), "image/png")])
    assert r.status_code == 409 and "已有审核结果" in r.text, r.text[:300]
    r = send(customer, base, app_id, docs_id)
    assert r.status_code == 409 and "已有审核结果" in r.text
    with svc.db.session() as session:
        session.get(ApplicationRow, app_id).status = "referred"
    # decided in the risk service; the officer's press then finds it decided and applies it
    officer = svc.accounts.by_email(RISK1)[0]
    svc.risk.client.decide(case["id"], officer.id, officer.role, "approve", "收入稳定")
    with sign_in(base, RISK1) as risk:
        decide(base, risk, case["id"], "approve", "收入稳定")
    with svc.db.session() as session:
        assert session.get(DocumentRequestRow, docs_id).status == "cancelled"
        assert session.get(ApplicationRow, app_id).status != "referred"  # approved, then on to its contract


def test_the_text_messages_link_opened_without_a_session_signs_the_customer_in_and_lands_on_the_documents(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    """A customer's session ends long before a request is due: the link in the text sends a signed-out phone to the
    customer's own sign-in (我的租赁, by mobile number and code — not the staff sign-in), and back to the documents."""
    from urllib.parse import urlsplit

    from tests.integration.test_invitations import latest_code
    from tests.integration.test_returning_customer import ask_code
    from tests.integration.test_returning_customer import form_token
    from tests.integration.test_returning_customer import phone
    from tests.integration.test_returning_customer import texted

    base, mobile = bff_server.url, new_mobile()
    app_id, case = referred_case(bff_server, card_images, mobile, "4")
    invited_customer(base, app, mobile).close()  # the customer's phone joined once; that session is gone
    _started_through_its_invitation(app, app_id, mobile)
    with sign_in(base, RISK1) as risk:
        assert claim(base, risk, case["id"]).status_code == 200
        r = ask(base, risk, case["id"], {"kinds": ["driving_licence"], "note": "驾驶证正页", "due_on": ""})
        assert r.status_code == 200
    path = urlsplit(re.search(r"https?://\S+", wait_text(app, mobile, "驾驶证")).group(0)).path  # type: ignore[union-attr]
    client = phone(app, f"10.9.{random.randrange(256)}.{random.randrange(256)}")
    opened = client.get(path)
    assert opened.status_code == 302, opened.status_code
    to = opened.headers["Location"]
    assert "/mine/sign-in" in to and "/login" not in to and "next=" in to, to
    assert client.get(to).status_code == 200
    assert ask_code(client, mobile).status_code == 303
    texted(app)
    done = client.post("/mine/code", data={"code": latest_code(app, mobile),
                                           "csrf_token": form_token(client, "/mine/code")})
    assert done.status_code == 303 and done.headers["Location"].endswith(path), done.headers.get("Location")
    page = client.get(path).get_data(as_text=True)
    assert "驾驶证正页" in page and 'data-request="' in page


def _started_through_its_invitation(app: Any, app_id: str, mobile: str) -> None:
    """The application as the customer starts it on their phone from the salesperson's invitation (我的租赁 signs
    in to those: bff/invitations/returning.py)."""
    from sqlalchemy import select

    from infra.db.models import ApplicationRow
    from infra.db.models import InvitationRow

    svc = app.extensions["leaseline"]
    with svc.db.session() as session:
        invitation = session.scalars(select(InvitationRow).where(
            InvitationRow.mobile_hash == svc.vault.lookup_hash(mobile, "mobile"),
            InvitationRow.opened_at.is_not(None))).one()
        session.get(ApplicationRow, app_id).invitation_id = invitation.id


def test_pages_too_large_to_send_together_are_refused_on_the_documents_page(
        bff_server: Any, app: Any, card_images: tuple[bytes, bytes]) -> None:
    """A browser without the page's script sends every chosen photo in one post: over the size a post may carry
    (24 MB) the answer is the documents page with the reason at its top (413), not the generic error page, and
    nothing is stored."""
    base, mobile = bff_server.url, new_mobile()
    app_id, case = referred_case(bff_server, card_images, mobile, "6")
    with sign_in(base, RISK1) as risk:
        assert claim(base, risk, case["id"]).status_code == 200
        r = ask(base, risk, case["id"], {"kinds": ["bank_statement"], "note": "流水", "due_on": ""})
        assert r.status_code == 200
    customer = invited_customer(base, app, mobile)
    page = customer.get(f"{base}/applications/{app_id}/documents", timeout=TIMEOUT).text
    docs_id = re.search(r'data-request="([0-9a-f-]{36})"', page).group(1)  # type: ignore[union-attr]
    photo = b"\xff\xd8\xff\xe0" + bytes(9 * 2**20)  # the size of three gallery photos; never read that far
    r = upload(customer, base, app_id, docs_id, "bank_statement", [(f"{n}.jpg", photo, "image/jpeg") for n in range(3)])
    assert r.status_code == 413, r.status_code
    assert 'data-testid="documents-error"' in r.text and "逐个添加" in r.text, r.text[:400]
    assert 'data-testid="pages-bank_statement"' not in r.text  # nothing stored
