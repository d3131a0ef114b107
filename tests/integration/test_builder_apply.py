"""The builder's "apply" never starts an application for a plan the lending policy refuses (issue 17 §7 review): the
builder sends the plan on to the confirmation page (bff/plans/views.py _apply), which prices it again and checks it
against the policy itself — no form to start it, the reasons shown — and starting it is refused as well."""

from __future__ import annotations

from typing import Any

import pytest

from bff.plans.forms import BuilderForm
from bff.plans.forms import decode
from tests.integration.test_applications import VEHICLE
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
REFUSED = "0-36-0-ctpl+damage+tpl_1m-D-f-a"  # no down payment: below the policy's minimum for a new car


def test_applying_for_a_plan_the_policy_refuses_starts_nothing(app: Any, bff_server: Any) -> None:
    base, svc = bff_server.url, app.extensions["leaseline"]
    choice = decode(REFUSED)
    assert choice is not None
    vehicle = svc.plans.vehicle(VEHICLE)
    assert "down_payment_below_minimum" in {r.code for r in svc.plans.evaluate(vehicle, choice).reasons}
    params = [*BuilderForm.from_choice(choice, svc.plans.product).query_pairs(), ("apply", REFUSED)]
    with sign_in(base, SALES_A) as sales:
        r = sales.get(f"{base}/plans/{VEHICLE}", params=params, timeout=TIMEOUT)
        assert r.status_code == 200 and "/applications/new" in r.url, r.url
        assert 'data-testid="start-application"' not in r.text  # the confirmation page checked the plan itself
        assert 'class="verdict bad"' in r.text
        assert 'data-testid="quote-note"' in r.text  # a quote shown: the builder's footnote (a lease's page has none)
        started = sales.post(f"{base}/applications", timeout=TIMEOUT, allow_redirects=False,
                             data={"vehicle": VEHICLE, "plan": REFUSED, "csrf_token": csrf(sales, f"{base}/account")})
        assert started.status_code == 422
