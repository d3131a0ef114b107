"""Documents on request, two presses at once: two officers (or tabs) asking for documents on the same case open one
request, the second told it is pending (409), however their checks interleave."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

import pytest

from tests.integration.test_kyc_cleanup import new_application
from tests.integration.test_kyc_cleanup import own  # noqa: F401 (the fixture)

pytestmark = pytest.mark.db
NOW = datetime.now(UTC)


def service(app: Any) -> Any:
    from bff.documents import document_service

    return document_service(app.extensions["leaseline"])


def test_two_requests_made_at_once_open_only_one(own: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from bff.documents.services import Refused

    docs, a = service(own), new_application(own)
    # both checks ran before either request was written: each saw no pending request
    monkeypatch.setattr(docs.repo, "for_application", lambda application_id: [])
    kwargs = {"officer_id": "o", "officer_label": "o", "link": "https://x/", "now": NOW}
    docs.request(a, "case-1", ["income_proof"], "工资单", date(2026, 12, 10), **kwargs)
    with pytest.raises(Refused) as refused:
        docs.request(a, "case-1", ["bank_statement"], "流水", date(2026, 12, 10), **kwargs)
    assert refused.value.status == 409 and refused.value.errors[0].code == "pending"
    monkeypatch.undo()
    assert [r.kinds for r in docs.repo.for_application(a.id)] == [("income_proof",)]


def test_a_page_removed_while_the_request_is_sent_stays_with_what_was_sent(own: Any) -> None:  # noqa: F811
    """The applicant's other tab removes a page of the request it still shows open, after the send: refused, and the
    officer gets every page that was sent."""
    from bff.documents.services import Refused

    docs, a = service(own), new_application(own)
    made = docs.request(a, "case-2", ["income_proof"], "工资单", date(2026, 12, 10), officer_id="o",
                        officer_label="o", link="https://x/", now=NOW)
    store = own.extensions["leaseline"].store
    store.ensure_bucket()
    key = f"tenants/{a.dealer_id}/applications/{a.id}/doc_income_proof/page.jpg"
    stored = store.put(key, b"\xff\xd8\xff page", "image/jpeg")
    page = docs.repo.add_page(made.id, a.id, kind="income_proof", object_key=key, sha256=stored.sha256,
                              size=stored.size, content_type="image/jpeg", pages=1)
    assert docs.repo.move(made.id, allowed_from=("open",), to="submitted", now=NOW) is not None
    with pytest.raises(Refused) as refused:
        docs.remove(made, page, NOW)  # ``made`` as the other tab read it: still open
    assert refused.value.status == 409
    assert [p.id for p in docs.repo.pages(made.id)] == [page.id] and store.head(key).size == stored.size

