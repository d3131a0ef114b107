"""The car's facts are the dealer's (issue 17 §5): the customer's own phone never asks for the VIN or new/used; the
salesperson gives them on the application's page, and the contract waits for them, saying so to staff."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from sqlalchemy import update

from infra.db.models import ApplicationRow
from tests.common.vins import fresh_vin
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import VIN
from tests.integration.test_applications import WORK
from tests.integration.test_applications import _all
from tests.integration.test_applications import confirm_card
from tests.integration.test_applications import consent
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import start
from tests.integration.test_applications import upload_card
from tests.integration.test_applications import wait_check
from tests.integration.test_applications import wait_status
from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import invite
from tests.integration.test_invitations import latest_code
from tests.integration.test_invitations import request_code
from tests.integration.test_reviews import persona_id

pytestmark = pytest.mark.db
PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"


@pytest.fixture(scope="module")
def card_images() -> tuple[bytes, bytes]:
    return make_card_images()


def _set(app: Any, app_id: str, **values: Any) -> None:
    """Put the application in a state directly (its contract's answer, its attempts): no job runs for it."""
    with app.extensions["leaseline"].applications.repo.db.session() as session:
        session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(**values))


def customer_session(base: str, app: Any, mobile: str) -> requests.Session:
    """A customer signed in through the salesperson's invitation (their own phone)."""
    with sign_in(base, SALES_A) as sales:
        _, link = invite(base, sales, mobile)
    customer = requests.Session()
    request_code(customer, link)
    r = post(customer, f"{link}/verify", {"code": latest_code(app, mobile)}, form_url=link)
    assert r.status_code == 200 and "/plans/" in r.url, r.text[:300]
    return customer


def applied(base: str, s: requests.Session, card_images: tuple[bytes, bytes], mobile: str,
            id_number: str) -> str:
    """An application with consent, the ID card and the applicant's two steps answered by ``s``; its id."""
    r = post(s, f"{base}/applications", {"vehicle": "byd-han-ev", "plan": PLAN},
             form_url=f"{base}/applications/new?vehicle=byd-han-ev&plan={PLAN}")
    assert r.status_code == 200 and "/consent" in r.url, r.text[:300]
    app_id = r.url.rsplit("/", 2)[-2]
    assert post(s, f"{base}/applications/{app_id}/consent", {"sensitive_pi": "yes", "credit_reporting": "yes"}) \
        .status_code == 200
    r = upload_card(base, s, app_id, *card_images)
    assert r.status_code == 202 and 'data-outcome="ok"' in wait_check(s, base, app_id, r.text)
    confirm_card(base, s, app_id)
    assert post(s, f"{base}/applications/{app_id}/steps/customer", {**CUSTOMER, "mobile": mobile,
                                                                    "id_number": id_number}).status_code == 200
    r = post(s, f"{base}/applications/{app_id}/steps/work", WORK)
    assert r.status_code == 200, r.text[:500]
    return app_id


def test_the_customer_is_never_asked_for_the_vin(bff_server: Any, card_images: tuple[bytes, bytes]) -> None:
    base, app = bff_server.url, bff_server.app
    mobile, vin = "13900170501", fresh_vin()  # a car of its own (one car, one lease: the suite shares a database)
    with customer_session(base, app, mobile) as customer:
        app_id = applied(base, customer, card_images, mobile, CUSTOMER["id_number"])
        # after the work step the customer's phone goes to the application, with no vehicle step anywhere
        page = customer.get(f"{base}/applications/{app_id}", timeout=TIMEOUT)
        assert "/steps/vehicle" not in page.text and 'data-testid="submit-application"' in page.text
        assert customer.get(f"{base}/applications/{app_id}/steps/vehicle", timeout=TIMEOUT).status_code == 404
        r = post(customer, f"{base}/applications/{app_id}/steps/vehicle", {"vin": vin, "condition": "new"},
                 form_url=f"{base}/applications/{app_id}")
        assert r.status_code == 404
        # submitted without the car's facts: they are the dealer's
        r = post(customer, f"{base}/applications/{app_id}/submit", form_url=f"{base}/applications/{app_id}")
        assert r.status_code == 200 and "submit-application" not in r.text, r.text[:500]
    stored = app.extensions["leaseline"].applications
    assert stored.repo.get(app_id, _all()).status == "submitted"
    assert "vin" not in stored.draft(stored.repo.get(app_id, _all()))
    # the salesperson sees that the VIN is owed, and gives it after submission (validated by its check digit)
    with sign_in(base, SALES_A) as sales:
        page = sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
        assert 'data-testid="vehicle-missing"' in page and 'data-testid="go-vehicle"' in page
        url = f"{base}/applications/{app_id}/steps/vehicle"
        r = post(sales, url, {"vin": vin[:8] + "0" + vin[9:], "condition": "new"})
        assert r.status_code == 422 and 'data-field="vin"' in r.text
        assert vin[:8] + "0" + vin[9:] in r.text  # nothing typed is lost
        r = post(sales, url, {"vin": vin, "condition": "new"})
        assert r.status_code == 200 and r.url.endswith(f"/applications/{app_id}"), r.text[:300]
        assert 'data-testid="vehicle-missing"' not in r.text
    assert stored.draft(stored.repo.get(app_id, _all()))["vin"] == vin


def test_the_contract_waits_for_the_vin_and_tells_the_salesperson(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:
    base, app = bff_server.url, bff_server.app
    vin = fresh_vin()  # a car of its own (one car, one lease: the suite shares a database)
    with sign_in(base, SALES_A) as sales:
        sales.headers["User-Agent"] = "phone-vehicle-by-dealer"
        app_id = applied(base, sales, card_images, "13900170502", persona_id("10"))  # approved automatically
        assert post(sales, f"{base}/applications/{app_id}/submit",
                    form_url=f"{base}/applications/{app_id}").status_code == 200
        assert post(sales, f"{base}/applications/{app_id}/counter",
                    form_url=f"{base}/applications/{app_id}").status_code == 200
    with sign_in(base, ADMIN_A) as admin:
        assert post(admin, f"{base}/applications/{app_id}/review", {"decision": "kyc_passed", "note": "柜台核对原件"},
                    form_url=f"{base}/applications/{app_id}").status_code == 200
    repo = app.extensions["leaseline"].applications.repo
    with sign_in(base, SALES_A) as sales:
        wait_status(sales, base, app_id, ("contract_pending",), timeout=40)
        for _ in range(100):
            if (repo.get(app_id, _all()).contract or {}).get("error"):
                break
            time.sleep(0.2)
        assert repo.get(app_id, _all()).contract["error"] == "vehicle_details"
        contract = sales.get(f"{base}/applications/{app_id}/contract", timeout=TIMEOUT).text
        assert "合同正在等待车辆信息：请填写车架号等车辆信息（在申请页面）" in contract  # the staff's wording
        page = sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
        assert 'data-testid="vehicle-missing"' in page and "等待销售顾问填写车架号" in page
        # the answer is of the last attempt, and no other is begun while the contract waits for the salesperson
        waiting = repo.get(app_id, _all())
        assert waiting.contract["attempt"] == waiting.contract_attempts
        # the salesperson gives the car's facts (a mistyped VIN first: saved with its error, nothing requested): the
        # contract is generated at once, with the VIN corrected
        wrong = vin[:8] + "0" + vin[9:]
        r = post(sales, f"{base}/applications/{app_id}/steps/vehicle", {"vin": wrong, "condition": "new"})
        assert r.status_code == 422 and 'data-field="vin"' in r.text
        assert post(sales, f"{base}/applications/{app_id}/steps/vehicle", {"vin": vin, "condition": "new"}) \
            .status_code == 200
        wait_status(sales, base, app_id, ("contract_ready",), timeout=40)
        text = sales.get(f"{base}/applications/{app_id}/contract/text.html", timeout=TIMEOUT)
        assert text.status_code == 200 and vin in text.text and wrong not in text.text
        # once generated, the car's facts are the contract's: no longer changed
        r = post(sales, f"{base}/applications/{app_id}/steps/vehicle", {"vin": vin, "condition": "used",
                                                                        "mileage": "100"},
                 form_url=f"{base}/applications/{app_id}")
        assert r.status_code == 409


def test_the_vin_is_corrected_only_while_the_contract_waits_for_it_and_no_attempt_runs(bff_server: Any) -> None:
    """Issue 17 §5: once the contract is requested, the car's facts are what it is drafted from. While it waits for
    them (its last attempt refused for ``vehicle_details``) the salesperson corrects them; while an attempt runs
    (begun since that answer: ``contract_attempts`` counts them, the answer records its own) or the contract waits
    for anything else, they are refused (409) with the page as typed, and the draft keeps its VIN."""
    base, app = bff_server.url, bff_server.app
    stored = app.extensions["leaseline"].applications
    typed = {"vin": VIN, "condition": "used", "mileage": "12000"}
    with sign_in(base, SALES_A) as sales:
        app_id = start(base, sales)
        consent(base, sales, app_id)
        url, page = f"{base}/applications/{app_id}/steps/vehicle", f"{base}/applications/{app_id}"
        waiting = json.dumps({"error": "vehicle_details", "detail": "no VIN", "attempt": 1})
        for contract, attempts in (("{}", 1),  # the first attempt drafts the contract now
                                   (waiting, 2),  # it waited for the VIN, and another attempt has begun since
                                   (json.dumps({"error": "plan_changed", "detail": "-", "attempt": 1}), 1)):
            _set(app, app_id, status="contract_pending", contract_result=contract, contract_attempts=attempts)
            assert 'data-testid="go-vehicle"' not in sales.get(page, timeout=TIMEOUT).text
            r = post(sales, url, typed, form_url=page)
            assert r.status_code == 409, (contract, attempts, r.status_code)
            assert 'data-testid="vehicle-locked"' in r.text and "车辆信息不能修改" in r.text
            assert f'value="{VIN}"' in r.text and 'value="12000"' in r.text  # nothing typed is lost
            assert "vin" not in stored.draft(stored.repo.get(app_id, _all()))
        # the attempt answered: the contract waits for the VIN, which may be given now (an invalid one is saved,
        # as typed, with its error; the contract is requested again only with a valid one)
        _set(app, app_id, contract_result=waiting, contract_attempts=1)
        assert 'data-testid="go-vehicle"' in sales.get(page, timeout=TIMEOUT).text
        wrong = VIN[:8] + "0" + VIN[9:]
        r = post(sales, url, {**typed, "vin": wrong})
        assert r.status_code == 422 and 'data-field="vin"' in r.text and 'data-testid="vehicle-locked"' not in r.text
        assert stored.draft(stored.repo.get(app_id, _all()))["vin"] == wrong
        # a contract generated: the car's facts are the contract's
        _set(app, app_id, status="contract_ready", contract_result=json.dumps({"id": "c1", "number": "N1"}))
        r = post(sales, url, typed, form_url=page)
        assert r.status_code == 409 and 'data-testid="vehicle-locked"' in r.text and f'value="{VIN}"' in r.text
        assert stored.draft(stored.repo.get(app_id, _all()))["vin"] == wrong
