"""The receivable at the handover (issue 18 §0–§1), over real HTTP with the real contract service: the customer signs
the handover record, and in the same transaction the lease in force is created — its rents to the fen as the priced
plan's schedule splits them, dated from the record's day on an independent month count, its servicing terms those
the contract states; signing again creates no second lease."""

from __future__ import annotations

import calendar
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from bff.servicing.backfill import backfill
from infra.servicing import SqlServicing
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import _all
from tests.integration.test_applications import post
from tests.integration.test_auth import sign_in
from tests.integration.test_contract_journey import card_images  # noqa: F401 — a fixture
from tests.integration.test_contract_journey import last_code
from tests.integration.test_handover import beijing_today
from tests.integration.test_handover import confirm
from tests.integration.test_handover import lease_url
from tests.integration.test_handover import prepare
from tests.integration.test_handover import ready_for_delivery

pytestmark = pytest.mark.db


def months_later(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def fen(value: object) -> int:
    return int(Decimal(str(value)) * 100)


def test_the_signed_handover_record_starts_the_lease_in_force_with_the_contract_s_schedule(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    app_id = ready_for_delivery(bff_server, card_images)
    servicing = SqlServicing(c.db)
    with sign_in(base, SALES_A) as sales:
        assert prepare(sales, base, app_id).status_code == 303
        assert servicing.lease(app_id) is None  # nothing is receivable before the record is signed
        r = post(sales, f"{base}/applications/{app_id}/handover/code", form_url=lease_url(base, app_id))
        assert r.status_code == 200
        r = confirm(sales, base, app_id, code=last_code(app, CUSTOMER["mobile"]))
        assert r.status_code == 303, r.text[-1500:]
    stored = c.applications.repo.get(app_id, _all())
    handover = c.handovers.get(stored)
    found = servicing.lease(app_id)
    assert found is not None and handover is not None
    lease, rows = found
    quote = stored.plan["quote"]
    term, timing, first = int(quote["term"]), quote["timing"], 0 if quote["timing"] == "advance" else 1
    starts_on = handover.starts_on
    assert starts_on == lease.starts_on == beijing_today() and lease.ends_on == months_later(starts_on, term)
    assert (lease.application_id, lease.dealer_id, lease.term, lease.timing) == (app_id, stored.dealer_id, term,
                                                                                 timing)
    assert lease.handover_sha256 == handover.sha256 and lease.contract_id == stored.contract_id
    # each rent as the priced plan's schedule splits it, to the fen, on its day
    rents = [r for r in rows if r.kind == "rent"]
    assert [(r.number, r.due_on, r.amount, r.principal, r.interest) for r in rents] == [
        (row["period"], months_later(starts_on, row["period"] - 1 + first), fen(row["payment"]),
         fen(row["principal"]), fen(row["interest"])) for row in quote["schedule"]]
    finals = [r for r in rows if r.kind == "final_rent"]
    assert [(f.amount, f.due_on) for f in finals] == ([(fen(quote["residual"]), lease.ends_on)]
                                                      if fen(quote["residual"]) else [])
    assert sum(r.principal for r in rows) == fen(quote["financed_amount"]) == lease.financed_amount
    assert [r.state for r in rents] == (["paid"] if timing == "advance" else ["pending"]) + ["pending"] * (term - 1)
    # the servicing terms the contract states (the product's late charge within the policy's cap; its settlement)
    product, policy = c.plans.product, c.plans.policy
    assert lease.late_fee_daily_rate == policy.late_fee_daily_rate(product.late_fee_daily_rate,
                                                                   Decimal(quote["annual_rate"]))
    assert lease.default_cost_cap == policy.default_cost_cap and lease.terms_source == "contract"
    assert (lease.settlement_any_day, lease.settlement_fee_rate, lease.settlement_day_count) == (
        True, product.early_settlement.fee_rate, product.early_settlement.day_count)
    assert lease.grace_days == 0 and lease.late_fee_base == "overdue_amount" and lease.status == "active"
    # the record signed again (a retry after a lost answer) signs and creates nothing more
    assert not c.handovers.store.mark_signed(app_id, handover.record, starts_on, datetime.now(UTC))
    again = servicing.lease(app_id)
    assert again is not None and again[0].id == lease.id and len(again[1]) == len(rows)
    # a handover signed before servicing began has no lease: the backfill opens it from the contract service's
    # record, the rents due through the cut-over booked as collected outside Leaseline, once
    with c.db.session() as s:
        for table in ("servicing_movements", "instalments", "leases"):
            s.execute(text(f"DELETE FROM {table} WHERE {'id' if table == 'leases' else 'lease_id'} = :lease"),
                      {"lease": lease.id})
    assert servicing.lease(app_id) is None
    cut_over = rents[1].due_on  # two rents fell due before servicing took over
    [dry] = [o for o in backfill(c, paid_through=cut_over, now=datetime.now(UTC), dry_run=True)
             if o.application_id == app_id]
    assert (dry.result, dry.collected_outside) == ("would_open", 2) and servicing.lease(app_id) is None
    [done] = [o for o in backfill(c, paid_through=cut_over, now=datetime.now(UTC)) if o.application_id == app_id]
    reopened = servicing.lease(app_id)
    assert reopened is not None and done.result == "opened" and done.lease_id == reopened[0].id
    assert [(r.number, r.kind, r.due_on, r.amount, r.principal, r.interest) for r in reopened[1]] == [
        (r.number, r.kind, r.due_on, r.amount, r.principal, r.interest) for r in rows]
    assert [r.state for r in reopened[1]][:3] == ["paid", "paid", "pending"]
    assert done.amount_fen == sum(r.amount for r in rents[:2]) and done.collected_outside == 2
    outside = [m for m in servicing.movements(reopened[0].id) if m.kind == "collected_outside"]
    assert sorted(m.value_date for m in outside) == [r.due_on for r in rents[:2]]
    assert -sum(m.principal + m.interest for m in outside) == done.amount_fen
    assert [o for o in backfill(c, paid_through=cut_over, now=datetime.now(UTC)) if o.application_id == app_id] == []
    # a lease ops closed before servicing began is over: the backfill does not open it again
    with c.db.session() as s:
        for table in ("servicing_movements", "instalments", "leases"):
            s.execute(text(f"DELETE FROM {table} WHERE {'id' if table == 'leases' else 'lease_id'} = :lease"),
                      {"lease": reopened[0].id})
        s.execute(text("UPDATE applications SET status = 'closed' WHERE id = :id"), {"id": app_id})
    assert [o for o in backfill(c, paid_through=cut_over, now=datetime.now(UTC)) if o.application_id == app_id] == []
    assert servicing.lease(app_id) is None
