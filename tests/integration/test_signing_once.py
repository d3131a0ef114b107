"""A signature is given once, whatever the taps (issue 17 §1): the same code and signature sent again — one after
the other, or both at once — land on the signed contract (or handover record), signed once, never on an error;
and the application's history records every transition once (issue 17 §14)."""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from bff.demo_journeys import signature_data_url
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import _all
from tests.integration.test_applications import post
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_contract_journey import card_images  # noqa: F401 — a fixture
from tests.integration.test_contract_journey import contract_ready
from tests.integration.test_contract_journey import last_code
from tests.integration.test_handover import lease_url
from tests.integration.test_handover import prepare
from tests.integration.test_handover import ready_for_delivery
from tests.integration.test_handover import shown_version

pytestmark = pytest.mark.db


def _twin(s: requests.Session) -> requests.Session:
    """A second connection of the same browser session (a double tap's second request)."""
    twin = requests.Session()
    twin.cookies.update(s.cookies)
    return twin


def _sign_form(base: str, s: requests.Session, app_id: str, code: str) -> dict[str, str]:
    return {"read": "yes", "signature": signature_data_url(), "code": code,
            "csrf_token": csrf(s, f"{base}/applications/{app_id}/contract")}


def _lessee_signatures(bff_server: Any, app_id: str) -> int:
    c = bff_server.app.extensions["leaseline"]
    contract = c.contracts.client.contract(c.applications.repo.get(app_id, _all()).contract_id)
    return [s["role"] for s in contract["signatures"]].count("lessee")


def _signed_page(r: requests.Response) -> None:
    """The answer shows the signed contract: no error, the signed badge."""
    assert r.status_code == 200, (r.status_code, r.text[-1500:])
    assert 'data-testid="contract-signed"' in r.text and 'data-testid="sign-error"' not in r.text
    assert "验证码错误或已过期" not in r.text and 'data-status="signed"' in r.text


def _ready_with_code(bff_server: Any, card_images: tuple[bytes, bytes]) -> tuple[str, str]:  # noqa: F811
    base, app = bff_server.url, bff_server.app
    app_id = contract_ready(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        r = post(sales, f"{base}/applications/{app_id}/contract/code",
                 form_url=f"{base}/applications/{app_id}/contract")
        assert r.status_code == 200
    return app_id, last_code(app, CUSTOMER["mobile"])


def test_the_same_signature_sent_twice_in_a_row_lands_on_the_signed_contract(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base = bff_server.url
    app_id, code = _ready_with_code(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        form = _sign_form(base, sales, app_id, code)
        url = f"{base}/applications/{app_id}/contract/sign"
        first = sales.post(url, data=form, timeout=60)
        second = sales.post(url, data=form, timeout=60)
        _signed_page(first)
        _signed_page(second)
        # another code is not this signature again: the contract is signed already (nothing signs twice)
        other = sales.post(url, data={**form, "code": "000000" if code != "000000" else "111111"}, timeout=60)
        assert other.status_code == 409
    assert _lessee_signatures(bff_server, app_id) == 1
    events = bff_server.app.extensions["leaseline"].applications.repo.events(app_id)
    assert [(e.from_status, e.to_status) for e in events].count(("contract_ready", "signed")) == 1


def test_a_double_tap_s_two_requests_at_once_sign_once_and_both_show_it_signed(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base = bff_server.url
    app_id, code = _ready_with_code(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        form = _sign_form(base, sales, app_id, code)
        url = f"{base}/applications/{app_id}/contract/sign"
        sessions = [sales, _twin(sales)]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda s: s.post(url, data=form, timeout=60), sessions))
    for answer in answers:
        _signed_page(answer)
    assert _lessee_signatures(bff_server, app_id) == 1
    events = bff_server.app.extensions["leaseline"].applications.repo.events(app_id)
    assert [(e.from_status, e.to_status) for e in events].count(("contract_ready", "signed")) == 1


def test_a_journey_s_history_has_every_transition_once(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """Approved → preparing the contract → ready to sign → signed, each once, on the application's page too."""
    base = bff_server.url
    app_id, code = _ready_with_code(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        _signed_page(sales.post(f"{base}/applications/{app_id}/contract/sign",
                                data=_sign_form(base, sales, app_id, code), timeout=60))
        page = sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
    events = bff_server.app.extensions["leaseline"].applications.repo.events(app_id)
    moves = [(e.from_status, e.to_status) for e in events]
    assert [move for move, n in Counter(moves).items() if n > 1] == [], moves
    journey = [("risk_pending", "approved"), ("approved", "contract_pending"),
               ("contract_pending", "contract_ready"), ("contract_ready", "signed")]
    assert [m for m in moves if m in journey] == journey, moves
    for from_status, to_status in journey:
        assert page.count(f'data-from="{from_status}" data-to="{to_status}"') == 1, (from_status, to_status)


def _confirm_form(base: str, s: requests.Session, app_id: str, code: str) -> dict[str, str]:
    return {"accepted": "yes", "signature": signature_data_url(), "code": code,
            "version": shown_version(s, base, app_id), "csrf_token": csrf(s, lease_url(base, app_id))}


def _handover_ready(bff_server: Any, card_images: tuple[bytes, bytes]) -> str:  # noqa: F811
    base = bff_server.url
    app_id = ready_for_delivery(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        assert prepare(sales, base, app_id).status_code == 303
        r = post(sales, f"{base}/applications/{app_id}/handover/code", form_url=lease_url(base, app_id))
        assert r.status_code == 200
    return app_id


def _handed_over(bff_server: Any, app_id: str, answers: list[requests.Response]) -> None:
    """Each answer goes to the lease page, the record signed once and the term started once."""
    c = bff_server.app.extensions["leaseline"]
    for answer in answers:
        assert answer.status_code == 303, (answer.status_code, answer.text[-1500:])
        assert answer.headers["Location"].endswith(f"/applications/{app_id}/lease")
    events = c.applications.repo.events(app_id)
    assert [e.to_status for e in events].count("delivered") == 1
    assert [e["kind"] for e in c.contract.evidence(app_id)].count("handover_signed") == 1


def test_the_same_handover_confirmation_twice_in_a_row_lands_on_the_signed_record(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base, app = bff_server.url, bff_server.app
    app_id = _handover_ready(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        form = _confirm_form(base, sales, app_id, last_code(app, CUSTOMER["mobile"]))
        url = f"{base}/applications/{app_id}/handover/sign"
        answers = [sales.post(url, data=form, timeout=60, allow_redirects=False) for _ in range(2)]
    _handed_over(bff_server, app_id, answers)


def test_a_double_tap_on_the_handover_confirmation_signs_the_record_once(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base, app = bff_server.url, bff_server.app
    app_id = _handover_ready(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        form = _confirm_form(base, sales, app_id, last_code(app, CUSTOMER["mobile"]))
        url = f"{base}/applications/{app_id}/handover/sign"
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda s: s.post(url, data=form, timeout=60, allow_redirects=False),
                                    [sales, _twin(sales)]))
    _handed_over(bff_server, app_id, answers)


def test_the_waiting_page_shows_where_the_contract_really_is_and_texts_when_it_is_late(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """Issue 17 §14: "几秒后即可签署" was shown for 44 s. The page says what happens (queued, drafted, retried),
    how long it has taken against recent contracts, that one may leave; a contract ready late is texted."""
    import time
    from datetime import UTC
    from datetime import datetime
    from datetime import timedelta

    from sqlalchemy import update

    from infra.db.models import ApplicationEventRow
    from infra.db.models import ApplicationRow
    from tests.integration.test_applications import wait_status
    from tests.integration.test_reviews import persona_id
    from tests.integration.test_reviews import to_risk

    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    dispatch, repo = c.contracts, c.applications.repo
    real = dispatch.client.client.base_url
    since = datetime.now(UTC)
    dispatch.client.client.base_url = "http://127.0.0.1:9"  # nothing listens there: the contract waits
    try:
        app_id = to_risk(base, card_images, persona_id("10"))
        with sign_in(base, SALES_A) as sales:
            wait_status(sales, base, app_id, ("contract_pending",), timeout=40)
            page = sales.get(f"{base}/applications/{app_id}/contract", timeout=TIMEOUT).text
            assert 'data-testid="contract-progress"' in page and "几秒" not in page
            assert re.search(r'data-stage="(generating|retrying)"', page)
            assert "已等待" in page and 'data-testid="contract-leave"' in page
            masked = repo.get(app_id, _all()).mobile_masked
            assert masked and f"2 分钟内仍未生成，生成后我们会发短信通知 {masked}。" in page
            usual = dispatch.progress(repo.get(app_id, _all())).usual
            assert (f"最近的合同一般在批准后 {usual} 秒内生成" in page) if usual else "最近的合同" not in page
            with c.db.session() as session:  # its job not started yet: queued, behind those approved before it
                session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(status="approved"))
            page = sales.get(f"{base}/applications/{app_id}/contract", timeout=TIMEOUT).text
            assert 'data-stage="queued"' in page and "排队等待生成" in page
            with c.db.session() as session:  # approved 5 minutes ago: late, and said so
                session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(
                    status="contract_pending", contract_next_at=datetime.now(UTC)))
                session.execute(update(ApplicationEventRow).where(
                    ApplicationEventRow.application_id == app_id, ApplicationEventRow.to_status == "approved").values(
                    at=datetime.now(UTC) - timedelta(minutes=5)))
            page = sales.get(f"{base}/applications/{app_id}/contract", timeout=TIMEOUT).text
            assert f"已超过 2 分钟。合同生成后，我们会立即发短信通知 {masked}" in page
    finally:
        dispatch.client.client.base_url = real
    with sign_in(base, SALES_A) as sales:  # the service is back: the contract is generated, the customer texted
        wait_status(sales, base, app_id, ("contract_ready",), timeout=90)
    # the text is its own job (contract.text_ready), deferred with the contract and run by the worker after it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _texted_ready_since(c, since):
        time.sleep(0.5)
    assert _texted_ready_since(c, since), [m.body for m in c.outbox.latest(5, to=CUSTOMER["mobile"])]
    moves = [(e.from_status, e.to_status) for e in repo.events(app_id)]
    assert moves.count(("approved", "contract_pending")) == 1 and moves.count(("contract_pending",
                                                                                "contract_ready")) == 1, moves


def _another_drawing() -> str:
    """A signature drawn differently from :func:`signature_data_url` (another press, the same code)."""
    import base64
    import io

    from PIL import Image
    from PIL import ImageDraw

    image = Image.new("RGBA", (600, 240), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(40, 60), (200, 200), (380, 50), (560, 190)], fill=(16, 24, 60, 255), width=8)
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_another_drawing_with_the_same_code_on_a_signed_contract_is_refused(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """Issue 17 §1: only the very press that signed lands on the signed contract; the same code with another
    drawing is another signature, refused (409), and nothing is signed again."""
    base = bff_server.url
    app_id, code = _ready_with_code(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        form = _sign_form(base, sales, app_id, code)
        url = f"{base}/applications/{app_id}/contract/sign"
        _signed_page(sales.post(url, data=form, timeout=60))
        other = sales.post(url, data={**form, "signature": _another_drawing()}, timeout=60)
        assert other.status_code == 409, (other.status_code, other.text[-800:])
    assert _lessee_signatures(bff_server, app_id) == 1


def _row_free(bff_server: Any, app_id: str) -> bool:
    """Whether another connection can take the application's row lock at once (nobody holds it)."""
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from infra.db.models import ApplicationRow

    db = bff_server.app.extensions["leaseline"].db
    with db.engine.connect() as connection:
        try:
            connection.execute(select(ApplicationRow.id).where(ApplicationRow.id == app_id)
                               .with_for_update(nowait=True)).all()
            return True
        except OperationalError:  # "could not obtain lock on row": a request holds it
            return False
        finally:
            connection.rollback()


def test_the_application_is_not_locked_while_the_contract_service_signs(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """Issue 17 §1: the signing (up to ~18 s with retries) holds no row lock on the application: every other write
    to it, and a pooled database connection, would wait for the contract service."""
    base = bff_server.url
    app_id, code = _ready_with_code(bff_server, card_images)
    client = bff_server.app.extensions["leaseline"].contracts.client
    real, seen = client.sign, []

    def observed(contract_id: str, body: dict[str, Any]) -> dict[str, Any]:
        seen.append(_row_free(bff_server, app_id))
        return real(contract_id, body)

    client.sign = observed
    try:
        with sign_in(base, SALES_A) as sales:
            _signed_page(sales.post(f"{base}/applications/{app_id}/contract/sign",
                                    data=_sign_form(base, sales, app_id, code), timeout=60))
    finally:
        del client.sign
    assert seen == [True]


def test_the_late_contract_s_text_is_sent_again_when_the_sms_platform_was_away(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """Issue 17 §14: the text promised by the waiting page ("我们会短信通知您") is a job deferred with the contract's
    arrival, retried when the SMS platform is away — not a call inside the contract job, lost on its first error."""
    import time
    from datetime import UTC
    from datetime import datetime
    from datetime import timedelta

    from sqlalchemy import update

    from infra.db.models import ApplicationEventRow
    from infra.sms import SmsUnavailable
    from tests.integration.test_applications import wait_status
    from tests.integration.test_reviews import persona_id
    from tests.integration.test_reviews import to_risk

    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    dispatch = c.contracts
    real_url, real_send, failed = dispatch.client.client.base_url, dispatch.sms.send, []
    dispatch.client.client.base_url = "http://127.0.0.1:9"  # the contract waits

    def away_once(to: str, template: str, params: Any, dealer_id: str | None = None) -> None:
        if template == "contract_ready" and not failed:
            failed.append(to)
            raise SmsUnavailable("the SMS platform is away")
        real_send(to, template, params, dealer_id=dealer_id)

    try:
        app_id = to_risk(base, card_images, persona_id("10"))
        with sign_in(base, SALES_A) as sales:
            wait_status(sales, base, app_id, ("contract_pending",), timeout=40)
        with c.db.session() as session:  # approved 5 minutes ago: late
            session.execute(update(ApplicationEventRow).where(
                ApplicationEventRow.application_id == app_id, ApplicationEventRow.to_status == "approved").values(
                at=datetime.now(UTC) - timedelta(minutes=5)))
        dispatch.sms.send = away_once
        since = datetime.now(UTC)
        dispatch.client.client.base_url = real_url
        with sign_in(base, SALES_A) as sales:
            wait_status(sales, base, app_id, ("contract_ready",), timeout=90)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _texted_ready_since(c, since):
            time.sleep(0.5)
    finally:
        dispatch.client.client.base_url = real_url
        del dispatch.sms.send
    assert failed, "the text was not attempted"
    assert _texted_ready_since(c, since)


def _texted_ready_since(c: Any, since: Any) -> bool:
    return any("合同已生成，可以签署了" in m.body and m.at >= since for m in c.outbox.latest(5, to=CUSTOMER["mobile"]))


def test_a_double_tap_on_send_code_texts_one_code(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """Issue 17 §8: two send-code requests at once (a double tap) text one code, not two: the check of the last
    code and the new code's record are one step. The read of the last code is slowed here so that both requests
    would read it before either records its code."""
    import time
    from datetime import UTC
    from datetime import datetime

    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    app_id = contract_ready(bff_server, card_images)
    repo = c.applications.repo
    real = repo.last_code_at

    def slow(application_id: str, purpose: str = "contract") -> Any:
        found = real(application_id, purpose)
        time.sleep(0.5)
        return found

    since = datetime.now(UTC)
    repo.last_code_at = slow
    try:
        with sign_in(base, SALES_A) as sales:
            url, form_url = f"{base}/applications/{app_id}/contract/code", f"{base}/applications/{app_id}/contract"
            form = {"csrf_token": csrf(sales, form_url)}
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda s: s.post(url, data=form, timeout=60), [sales, _twin(sales)]))
    finally:
        del repo.last_code_at
    assert [a.status_code for a in answers] == [200, 200], [a.text[-500:] for a in answers]
    texts = [m for m in c.outbox.latest(10, to=CUSTOMER["mobile"]) if m.at >= since and "签署融资租赁合同" in m.body]
    assert len(texts) == 1, texts
