"""A declined card, then the browser's refresh (re-walk finding 1): the down payment's and the rent's pay forms answer a
declined payment with Post/Redirect/Get — a 303 to the payment page, the decline and the chosen card said once
(carried by the server-side session, never in the URL) — so that Chromium's refresh asks for the page instead of
posting the payment again, which sent another charge attempt to Stripe."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select

from infra.db.models import CollectionAttemptRow
from tests.integration.test_applications import start
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import intents
from tests.integration.test_payments import opened
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application
from tests.integration.test_rent_pay import form
from tests.integration.test_rent_pay import open_overdue_lease
from tests.integration.test_returning_customer import join

pytestmark = pytest.mark.db
DECLINE = "payment-error"
SELECTED = '<option value="declined" selected>'


def test_a_declined_down_payment_refreshed_is_not_sent_again(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    page = f"/applications/{app_id}/payment"
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        r = sales.post(f"{base}/applications/{app_id}/payments/{upfront.id}/pay",
                       data={"method": "declined", "csrf_token": csrf(sales, base + page)}, timeout=TIMEOUT,
                       allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == f"{page}#payments"
        declined = payments(app, app_id)["upfront"]
        assert declined.status == "failed" and declined.attempts == 1
        charged = len(intents(stripe_server, upfront.id))
        shown = sales.get(base + page, timeout=TIMEOUT).text
        assert f'data-testid="{DECLINE}"' in shown and "未扣款" in shown  # the decline, in the customer's words
        assert SELECTED in shown and 'data-testid="pay-form-upfront"' in shown  # the card chosen, ready to change
        again = sales.get(base + page, timeout=TIMEOUT).text  # the refresh: a GET, the decline said once
        assert f'data-testid="{DECLINE}"' not in again and SELECTED not in again
        assert payments(app, app_id)["upfront"].attempts == 1 and len(intents(stripe_server, upfront.id)) == charged


def test_a_declined_rent_refreshed_is_not_sent_again(bff_server: Any, app: Any, stripe_server: Any) -> None:
    base = bff_server.url
    customer, _ = join(base, app, "13700138861")
    with customer:
        lease_id, _due = open_overdue_lease(app, start(base, customer))
        page = f"/leases/{lease_id}/pay"

        def tries() -> int:
            with app.extensions["leaseline"].db.session() as s:
                return int(s.scalar(select(func.count()).select_from(CollectionAttemptRow)
                                    .where(CollectionAttemptRow.lease_id == lease_id)) or 0)

        r = customer.post(base + page, data={**form(customer.get(base + page, timeout=TIMEOUT).text),
                                             "method": "declined", "instalment": "all"},
                          timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == f"{page}#rent"
        assert tries() == 1
        shown = customer.get(base + page, timeout=TIMEOUT).text
        # the decline said once, by the attempt's outcome (walk-through 46: it was said twice, as an error too)
        assert 'data-testid="pay-error"' not in shown and shown.count("未扣款") == 1
        assert 'data-outcome="failed"' in shown
        assert SELECTED in shown and 'data-testid="pay-form"' in shown
        again = customer.get(base + page, timeout=TIMEOUT).text
        assert 'data-testid="pay-error"' not in again and 'data-outcome=' not in again and SELECTED not in again
        assert tries() == 1
