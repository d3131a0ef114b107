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
