"""An id in a URL names one row exactly: a longer one (an application id with characters after it) is no row at all,
never the row its first 36 characters name — else ``/applications/<id>x/…`` reached the application under a rate
limit of its own (the limits are keyed on the id in the URL: bff/applications/access.py ``per_application``)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

import pytest
from PIL import Image

from infra.applications import Scope
from infra.arrears import SqlArrears
from infra.db.models import LeaseTermRow
from infra.documents import SqlDocuments
from infra.payments_store import SqlPayments
from tests.common.leases import open_lease_for
from tests.integration.test_applications import consent
from tests.integration.test_applications import start
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db


def test_an_id_with_characters_after_it_is_not_found(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    photo = io.BytesIO()
    Image.new("RGB", (100, 100), (120, 130, 140)).save(photo, "PNG")  # too small: refused (422) once found
    with sign_in(base, SALES_A) as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        token = csrf(s, f"{base}/login")
        answers = {suffix: s.post(f"{base}/applications/{app_id}{suffix}/id-card/side", data={"side": "front"},
                                  files={"photo": ("p.png", photo.getvalue(), "image/png")},
                                  headers={"X-CSRFToken": token}, timeout=TIMEOUT).status_code
                   for suffix in ("", "x", "0")}
        assert answers == {"": 422, "x": 404, "0": 404}
        assert s.get(f"{base}/applications/{app_id}x", timeout=TIMEOUT).status_code == 404
        leased = start(base, s)
    # each repository's read by id: the row by its id, nothing by a longer one
    c = app.extensions["leaseline"]
    user = c.accounts.by_email(SALES_A)[0]
    dealer = c.accounts.dealer(user.dealer_id)
    check = c.applications.repo.add_check(app_id, "id_card")
    lease_id = open_lease_for(app, leased, date(2026, 1, 5))
    now = datetime.now(UTC)
    with c.db.session() as session:
        session.add(LeaseTermRow(application_id=app_id, dealer_id=user.dealer_id, term_months=12,
                                 starts_on=date(2026, 1, 5), ends_on=date(2027, 1, 5), delivered_at=now,
                                 delivered_by=user.id, delivered_by_label="probe"))
    documents = SqlDocuments(c.db)
    request_id = documents.add_request(application_id=app_id, dealer_id=user.dealer_id, case_id="case", kinds=["x"],
                                       note="", due_on=date(2026, 2, 1), requested_by=user.id,
                                       requested_by_label="probe", now=now).id
    invitation_id = c.invitations_repo.create(dealer_id=user.dealer_id, created_by=user.id, mobile="13900000036",
                                              vehicle_id=None, plan_code=None, nonce_hash=uuid.uuid4().hex * 2,
                                              expires_at=now).id
    reads = {"application": lambda suffix: c.applications.repo.get(app_id + suffix, Scope()),
             "check": lambda suffix: c.applications.repo.check(app_id, check.id + suffix),
             "user": lambda suffix: c.accounts.get(user.id + suffix),
             "secrets": lambda suffix: c.accounts.secrets_of(user.id + suffix),
             "dealer": lambda suffix: c.accounts.dealer(user.dealer_id + suffix),
             "group": lambda suffix: c.accounts.group(dealer.group_id + suffix),
             "invitation": lambda suffix: c.invitations_repo.get(invitation_id + suffix),
             "document request": lambda suffix: documents.get(request_id + suffix),
             "lease term": lambda suffix: SqlPayments(c.db).term(app_id + suffix),
             "collections case": lambda suffix: SqlArrears(c.db).case(lease_id + suffix, None)}
    assert {name: read("") is not None for name, read in reads.items()} == dict.fromkeys(reads, True)
    assert {name: read("x") for name, read in reads.items()} == dict.fromkeys(reads)
