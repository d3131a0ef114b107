"""Documents on request, what a crash or a storage stall leaves behind: a document page's object whose row was never
written (``DocumentService._keep`` stores the object before its row) or whose removal failed in storage is found by
the orphan sweep once older than its grace period, as the ID images are; a page a live row names stays."""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

import pytest

from tests.integration.test_kyc_cleanup import everything
from tests.integration.test_kyc_cleanup import later
from tests.integration.test_kyc_cleanup import new_application
from tests.integration.test_kyc_cleanup import own  # noqa: F401 (the fixture)

pytestmark = pytest.mark.db
KINDS = ["income_proof", "bank_statement", "driving_licence"]


def put_page(app: Any, application: Any, kind: str, *, row: bool, deleted: bool = False) -> str:
    """A document page stored as DocumentService._keep stores it: the object, then (``row``) its row."""
    from infra.documents import SqlDocuments
    from infra.storage import object_key

    svc = app.extensions["leaseline"]
    key = object_key(application.dealer_id, application.id, f"doc_{kind}", f"{uuid.uuid4().hex}.jpg")
    stored = svc.store.put(key, b"\xff\xd8 not really a jpeg", "image/jpeg", {"application": application.id})
    if row:
        docs = SqlDocuments(svc.db)
        request = next(iter(docs.for_application(application.id)), None) or docs.add_request(
            application_id=application.id, dealer_id=application.dealer_id, case_id=str(uuid.uuid4()), kinds=KINDS,
            note="n", due_on=date(2026, 12, 10), requested_by="officer", requested_by_label="officer",
            now=datetime.now(UTC))  # the application's one pending request
        page = docs.add_page(request.id, application.id, kind=kind, object_key=key, sha256=stored.sha256,
                             size=stored.size, content_type="image/jpeg", pages=1)
        assert page is not None
        if deleted:
            docs.mark_deleted(request.id, page.id, datetime.now(UTC))
    return key


def test_the_sweep_deletes_document_pages_no_live_row_names(own: Any) -> None:  # noqa: F811
    svc = own.extensions["leaseline"]
    a = new_application(own)
    kept = put_page(own, a, "income_proof", row=True)
    never_written = put_page(own, a, "bank_statement", row=False)
    removed = put_page(own, a, "driving_licence", row=True, deleted=True)  # its storage delete failed
    folder = f"tenants/{a.dealer_id}/applications/{a.id}/"
    report = everything(own)  # within the grace period: maybe an upload in flight
    assert set(svc.store.list_keys(folder)) == {kept, never_written, removed} and report["deleted"] == 0
    report = everything(own, now=later(own))
    assert report["deleted"] >= 2
    assert svc.store.list_keys(folder) == [kept]
