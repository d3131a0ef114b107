"""A wrong one-time code, then the browser's refresh (walk-through finding 3, its follow-up): each code form answers a
refused code with Post/Redirect/Get — a 303 to the form's own page, the error said once (carried by the server-side
session, never in the URL) — so that a refresh asks for the page instead of posting the same code again, which
counted another failed try. 我的租赁's code, the contract's signing code and the handover's confirmation code; what
was given with the code (the drawn signature, the ticked boxes) comes back with the error, once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from bff.demo_journeys import signature_data_url
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import _all
from tests.integration.test_applications import post
from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_contract_journey import card_images  # noqa: F401 — a fixture
from tests.integration.test_contract_journey import contract_ready
from tests.integration.test_contract_journey import last_code
from tests.integration.test_handover import lease_url
from tests.integration.test_handover import prepare
from tests.integration.test_handover import shown_version
from tests.integration.test_invitations import latest_code
from tests.integration.test_returning_customer import ask_code
from tests.integration.test_returning_customer import form_token
from tests.integration.test_returning_customer import join
from tests.integration.test_returning_customer import phone
from tests.integration.test_returning_customer import texted
from tests.integration.test_returning_customer import wrong_code

pytestmark = pytest.mark.db


def _other(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_my_leases_code_wrong_then_refreshed_counts_one_try(bff_server: Any, app: Any) -> None:
    customer, _ = join(bff_server.url, app, "13700137040")
    with customer:
        start(bff_server.url, customer)
    client = phone(app, "10.0.7.1")
    ask_code(client, "13700137040")
    texted(app)
    mobile_hash = app.extensions["leaseline"].vault.lookup_hash("13700137040", "mobile")[:64]

    def tries() -> int:
        with app.extensions["leaseline"].db.session() as session:
            return int(session.execute(text("SELECT attempts FROM returning_codes WHERE mobile_hash = :h"),
                                       {"h": mobile_hash}).scalar_one())

    wrong = client.post("/mine/code", data={"code": wrong_code(app, "13700137040"),
                                            "csrf_token": form_token(client, "/mine/code")})
    assert wrong.status_code == 303 and wrong.headers["Location"] == "/mine/code"  # nothing of the error in the URL
    shown = client.get("/mine/code").get_data(as_text=True)
    assert 'id="code-error"' in shown and 'aria-invalid="true"' in shown and 'id="code"' in shown
    assert tries() == 1
    again = client.get("/mine/code").get_data(as_text=True)  # the refresh: a GET, the error said once
    assert 'id="code"' in again and 'id="code-error"' not in again and "137****7040" in again
    assert tries() == 1
    done = client.post("/mine/code", data={"code": latest_code(app, "13700137040"),
                                           "csrf_token": form_token(client, "/mine/code")})
    assert done.status_code == 303 and done.headers["Location"].endswith("/mine")


def _tries(app: Any, app_id: str, purpose: str) -> int:
    with app.extensions["leaseline"].db.session() as session:
        return int(session.execute(text(
            "SELECT attempts FROM signing_codes WHERE application_id = :a AND purpose = :p "
            "ORDER BY created_at DESC LIMIT 1"), {"a": app_id, "p": purpose}).scalar_one())


def test_signing_and_handover_codes_wrong_then_refreshed_count_one_try_and_keep_the_signature(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base, app = bff_server.url, bff_server.app
    app_id = contract_ready(bff_server, card_images)
    page = f"/applications/{app_id}/contract"
    drawn = signature_data_url()
    with sign_in(base, SALES_A) as sales:
        assert post(sales, f"{base}{page}/code", form_url=f"{base}{page}").status_code == 200
        code = last_code(app, CUSTOMER["mobile"])
        # the contract: a wrong code with the boxes ticked and the signature drawn
        r = sales.post(f"{base}{page}/sign", data={"read": "yes", "telemetry": "yes", "signature": drawn,
                                                   "code": _other(code), "csrf_token": csrf(sales, base + page)},
                       timeout=60, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == f"{page}#sign-error"
        shown = sales.get(base + page, timeout=TIMEOUT).text
        assert re.search(r'id="sign-error"[^>]*data-field="code"', shown) and "验证码错误或已过期" in shown
        assert f'name="signature" value="{drawn}"' in shown  # what was given comes back: drawn, ticked
        assert re.search(r'name="read" value="yes" checked', shown)
        assert re.search(r'name="telemetry" value="yes" checked', shown)
        assert _tries(app, app_id, "contract") == 1
        again = sales.get(base + page, timeout=TIMEOUT).text  # the refresh
        assert 'data-testid="sign-form"' in again and 'data-testid="sign-error"' not in again
        assert "验证码错误或已过期" not in again and drawn not in again
        assert _tries(app, app_id, "contract") == 1
        # the right code signs (one wrong try of five spent)
        r = sales.post(f"{base}{page}/sign", data={"read": "yes", "signature": drawn, "code": code,
                                                   "csrf_token": csrf(sales, base + page)}, timeout=60)
        assert r.status_code == 200 and 'data-testid="contract-signed"' in r.text, r.text[-1500:]
        c = app.extensions["leaseline"]
        application = c.applications.repo.get(app_id, _all())
        for payment in c.payments.checkout.payments(application):
            assert c.payments.checkout.pay(application, payment.id, "pm_card_visa").status in ("succeeded", "held")

        # the handover record: a wrong code with the vehicle accepted and the signature drawn
        assert prepare(sales, base, app_id).status_code == 303
        lease = lease_url(base, app_id)
        assert post(sales, f"{base}/applications/{app_id}/handover/code", form_url=lease).status_code == 200
        code = last_code(app, CUSTOMER["mobile"])
        r = sales.post(f"{base}/applications/{app_id}/handover/sign", timeout=60, allow_redirects=False,
                       data={"accepted": "yes", "signature": drawn, "code": _other(code),
                             "version": shown_version(sales, base, app_id), "csrf_token": csrf(sales, lease)})
        assert r.status_code == 303 and r.headers["Location"] == f"/applications/{app_id}/lease#sign-error"
        shown = sales.get(lease, timeout=TIMEOUT).text
        assert re.search(r'id="sign-error"[^>]*data-field="code"', shown)
        assert f'name="signature" value="{drawn}"' in shown
        assert re.search(r'name="accepted" value="yes" checked', shown)
        assert _tries(app, app_id, "handover") == 1
        again = sales.get(lease, timeout=TIMEOUT).text  # the refresh
        assert 'data-testid="handover-sign-form"' in again and 'data-testid="sign-error"' not in again
        assert drawn not in again and not re.search(r'name="accepted" value="yes" checked', again)
        assert _tries(app, app_id, "handover") == 1
        r = sales.post(f"{base}/applications/{app_id}/handover/sign", timeout=60, allow_redirects=False,
                       data={"accepted": "yes", "signature": drawn, "code": code,
                             "version": shown_version(sales, base, app_id), "csrf_token": csrf(sales, lease)})
        assert r.status_code == 303 and r.headers["Location"].endswith(f"/applications/{app_id}/lease")
        assert app.extensions["leaseline"].applications.repo.get(app_id, _all()).status == "delivered"
