"""A lease in force for a customer's application, quickly (the page tests of issue 18 §8): the signed handover
record as the contract service states it (tests/integration/test_servicing_close.py ``record``), opened through
:meth:`infra.servicing.SqlServicing.open_lease` as the handover's transaction opens it, and a history of payments
and arrears written as the close of business and the payments would leave it."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy import update

from infra.db.models import ApplicationRow
from infra.db.models import InstalmentRow
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from plans.inputs import parse_quote_request
from plans.policy import load_policy
from plans.quote import Quote
from plans.quote import quote
from tests.integration.test_servicing_close import LATE_FEE
from tests.integration.test_servicing_close import record

#: what rent 2 has paid of its principal when it falls behind (its interest paid in full)
PART_PAID = 5_000
ONE_DAY = timedelta(days=1)


def priced(*, term: int = 12, residual_ratio: str = "0.2") -> Quote:
    """The priced plan of :func:`tests.integration.test_servicing_close.record` (the same figures)."""
    return quote(parse_quote_request({
        "price": "200000", "down_ratio": "0.2", "term": str(term), "rate": "0.0599", "residual_ratio": residual_ratio,
        "timing": "arrears", "deposit_ratio": "0.05"}, load_policy()))


def open_lease_for(flask_app: Any, application_id: str, starts_on: date, *, residual_ratio: str = "0.2") -> str:
    """The application handed over (delivered) with its lease starting on ``starts_on``: 12 rents in arrears and a
    final rent; its id."""
    c = flask_app.extensions["leaseline"]
    handover = record(starts_on, residual_ratio=residual_ratio)
    with c.db.session() as s:
        dealer_id = s.execute(select(ApplicationRow.dealer_id).where(ApplicationRow.id == application_id)).scalar_one()
        s.execute(update(ApplicationRow).where(ApplicationRow.id == application_id).values(status="delivered"))
        lease_id = SqlServicing(c.db).open_lease(s, application_id, dealer_id, lease_plan(handover),
                                                 datetime.now(UTC))
    assert lease_id is not None
    return lease_id


def late_charge(unpaid_fen: int, days: int) -> int:
    """unpaid × daily rate × days, half-up to the fen once (the contract's clause, reckoned independently)."""
    return int((Decimal(unpaid_fen) / 100 * LATE_FEE * days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
               * 100)


def fall_behind(flask_app: Any, lease_id: str, business_date: date) -> dict[int, InstalmentRow]:
    """Rent 1 paid on its day; rent 2 (fallen due before ``business_date``) paid in part — its interest and
    :data:`PART_PAID` of its principal — and overdue from the day after its due day, its late charge accrued through
    the day before the business date (the last close). The instalments by number, as stored."""
    c = flask_app.extensions["leaseline"]
    with c.db.session() as s:
        rows = {r.number: r for r in s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id))}
        first, second = rows[1], rows[2]
        assert second.due_on < business_date - ONE_DAY, "rent 2 must have fallen due before the last close"
        first.state, first.paid_principal, first.paid_interest = "paid", first.principal, first.interest
        first.settled_on = first.due_on
        second.state, second.paid_principal, second.paid_interest = "overdue", PART_PAID, second.interest
        second.overdue_since, second.penalty_through = second.due_on + ONE_DAY, business_date - ONE_DAY
        second.penalty_accrued = late_charge(second.amount - PART_PAID - second.interest,
                                             (business_date - ONE_DAY - second.due_on).days)
        s.flush()
        return {n: rows[n] for n in sorted(rows)}
