"""One car, one lease (walk-through finding 6: LSVAU218XN2183294, already 王小明's car on a lease in force, was accepted
for 张三 through contract and handover): the vehicle step refuses a VIN another application past its draft and not
ended holds, 409 with the reason and the form as typed, correctable; a draft does not hold the car, an ended
application gives it back."""

from __future__ import annotations

from typing import Any

import pytest

from infra.applications import Scope
from tests.common.vins import fresh_vin
from tests.integration.test_applications import consent
from tests.integration.test_applications import post
from tests.integration.test_applications import start
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import sign_in
from tests.integration.test_vehicle_by_dealer import _set

pytestmark = pytest.mark.db


def test_a_vin_another_application_holds_is_refused_as_typed(bff_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    stored = app.extensions["leaseline"].applications
    vin = fresh_vin()
    with sign_in(base, SALES_A) as sales:
        first, second = start(base, sales), start(base, sales)
        for app_id in (first, second):
            consent(base, sales, app_id)
        url = f"{base}/applications/{second}/steps/vehicle"
        # the first application's car, given while both are drafts: a draft holds no car (it may be left unfinished)
        assert post(sales, f"{base}/applications/{first}/steps/vehicle", {"vin": vin, "condition": "new"}) \
            .status_code == 200
        # submitted, it holds the car: the second is refused, the page as typed (in lower case, with spaces: the
        # same car), the VIN the field to correct, nothing saved
        _set(app, first, status="submitted")
        typed = {"vin": f"{vin[:8].lower()} {vin[8:]}", "condition": "used", "mileage": "12000"}
        r = post(sales, url, typed)
        assert r.status_code == 409 and r.headers.get("X-Form-Refused") == "1", r.text[:300]
        assert f"车架号 {vin} 已用于另一份在办的申请或租赁" in r.text
        assert f'value="{typed["vin"]}"' in r.text and 'value="12000"' in r.text
        assert 'data-field="vin"' in r.text and 'data-testid="save-step"' in r.text  # correctable in place
        assert "vin" not in stored.draft(stored.repo.get(second, Scope()))
        # another car: saved
        other = fresh_vin()
        assert post(sales, url, {"vin": other, "condition": "new"}).status_code == 200
        assert stored.draft(stored.repo.get(second, Scope()))["vin"] == other
        # the first application withdrawn: its car is free again
        _set(app, first, status="withdrawn")
        assert post(sales, url, {"vin": vin, "condition": "new"}).status_code == 200
        assert stored.draft(stored.repo.get(second, Scope()))["vin"] == vin
        # and now the second holds it (past its draft): the first cannot take it back
        _set(app, second, status="approved")
        _set(app, first, status="submitted")
        r = post(sales, f"{base}/applications/{first}/steps/vehicle", {"vin": vin, "condition": "new"})
        assert r.status_code == 409 and "已用于另一份在办的申请或租赁" in r.text
