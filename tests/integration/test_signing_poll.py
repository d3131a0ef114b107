"""The customer's contract page waiting for the key terms to be explained (pwa/templates/applications/contract.html
#signing) asks for its signing part every 3 s — and, a phone left on the page, kept doing so for hours. Past ten
minutes of waiting it asks every 30 s: the server sets the interval from how long the contract has been ready."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_vehicle_by_dealer import _set
from tests.integration.test_vehicle_by_dealer import customer_session

pytestmark = pytest.mark.db
TRIGGER = re.compile(r'<div id="signing"[^>]*hx-trigger="([^"]+)"')


def test_the_wait_for_the_explanation_is_polled_less_often_after_ten_minutes(bff_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    repo = app.extensions["leaseline"].applications.repo
    with customer_session(base, app, "13900170601") as customer:
        app_id = start(base, customer)
        # the contract ready to sign, not yet explained: the customer's page waits for the dealer's staff
        assert repo.transition(app_id, allowed_from=("draft",), to="contract_ready", actor_kind="system",
                               actor_id="contract") is not None
        _set(app, app_id, contract_id=f"c-{app_id[:8]}",
             contract_result=json.dumps({"id": f"c-{app_id[:8]}", "number": "LL-POLL-1"}))

        def trigger() -> str:
            part = customer.get(f"{base}/applications/{app_id}/contract", params={"part": "signing"},
                                headers={"HX-Request": "true"}, timeout=TIMEOUT)
            assert part.status_code == 200 and 'data-testid="not-explained"' in part.text, part.text[:500]
            found = TRIGGER.search(part.text)
            assert found, part.text[:500]
            return found.group(1)

        assert trigger() == "every 3s"
        back(app, app_id, minutes=9)  # nine minutes on: still every 3 s
        assert trigger() == "every 3s"
        back(app, app_id, minutes=2)  # past ten minutes: every 30 s
        assert trigger() == "every 30s"


def back(app: Any, app_id: str, minutes: int) -> None:
    """The contract became ready ``minutes`` earlier than recorded (its event moved back: the clock moved on)."""
    with app.extensions["leaseline"].db.session() as session:
        session.execute(text("UPDATE application_events SET at = at - make_interval(mins => :m) "
                             "WHERE application_id = :a AND to_status = 'contract_ready'"), {"m": minutes, "a": app_id})
