"""The contract queue's position on the waiting page (issue 17 §14): the applications approved before this one whose
contract job has not started yet, every dealer's (they share the queue), in the order they were approved — not by
their last write, which a note or a VIN moves."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy import update

from infra.db.models import ApplicationRow
from infra.db.models import DealerRow

pytestmark = pytest.mark.db


def _approved(repo: Any, dealer_id: str) -> str:
    app = repo.create(dealer_id=dealer_id, owner_id=None, invitation_id=None, vehicle_id="v", vehicle_label="v",
                      plan_code="p", plan={}, draft_enc="", mobile_masked="", mobile_hash=None, actor_kind="system",
                      actor_id="test")
    assert repo.transition(app.id, allowed_from=("draft",), to="approved", actor_kind="system", actor_id="risk")
    return str(app.id)


def test_the_queue_position_counts_those_approved_before_in_approval_order(app: Flask) -> None:
    c = app.extensions["leaseline"]
    repo = c.applications.repo
    with c.db.session() as session:
        dealers = list(session.scalars(select(DealerRow.id).limit(2)))
    first, mine, later = _approved(repo, dealers[0]), _approved(repo, dealers[-1]), _approved(repo, dealers[0])
    with c.db.session() as session:  # the first is written again after the others were approved (a note, say)
        session.execute(update(ApplicationRow).where(ApplicationRow.id == first).values(updated_at=datetime.now(UTC)))
    ahead = {a: repo.contracts_ahead(a) for a in (first, mine, later)}
    assert ahead[mine] == ahead[first] + 1 and ahead[later] == ahead[mine] + 1, ahead
    # one whose job has started is no longer queued ahead of anyone
    repo.begin_contract_attempt(first)
    assert repo.contracts_ahead(mine) == ahead[mine] - 1 and repo.contracts_ahead(later) == ahead[later] - 1
