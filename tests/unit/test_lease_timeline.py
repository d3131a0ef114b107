"""One timeline for the schedule, the APR and the contract (issue 16): the APR the contract discloses is the one
its own dates give. The balloon (尾款, now the final rent 尾付租金) was stated
"于末期租金支付日与末期租金一并支付" — in advance mode month n − 1 — while the APR priced it at month n: 36 months
with a 30 % balloon disclosed 7.18 % where the contract's dates gave 7.27 %. Here every timing is priced from the
dates the contract states (its schedule, and the final rent's and the purchase price's amounts and dates read from
the rendered text), with numpy-financial's IRR as the independent reference."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from datetime import date
from decimal import Decimal

import numpy_financial as npf
import pytest

from contract.document import from_snapshot
from contract.document.render import render_html
from plans.quote import TIMINGS
from plans.quote import Timing
from plans.timeline import add_months
from plans.timeline import months_between
from plans.timeline import timeline
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
START = date(2027, 1, 31)  # a month end: the due dates clamp to shorter months
CN_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")


def _months(start: date, later: date) -> int:
    """Calendar months from ``start`` to ``later`` (dates a whole number of months apart, month ends clamped)."""
    return (later.year - start.year) * 12 + later.month - start.month


def _clause(html: str, name: str) -> str:
    found = re.search(rf"<li>{name}：[^<]*?(?:<span[^>]*>[^<]*</span>[^<]*?)*</li>", html)
    assert found is not None, f"the contract has no {name} clause"
    return found.group(0)


def _date_in(clause: str) -> date:
    found = CN_DATE.search(clause)
    assert found is not None, f"the clause names no date: {clause}"
    return date(*(int(x) for x in found.groups()))


def _amount_in(clause: str) -> Decimal:
    found = re.search(r"¥([\d,]+\.\d{2})", clause)
    assert found is not None, f"the clause names no amount: {clause}"
    return Decimal(found.group(1).replace(",", ""))


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize(("term", "residual"), [(12, "0.50"), (36, "0.30"), (24, "0"), (60, "0.20")])
def test_the_disclosed_apr_is_the_one_the_contract_s_own_dates_give(timing: Timing, term: int,
                                                                     residual: str) -> None:
    vehicle, q = make_quote(term, residual=residual, timing=timing)
    data = from_snapshot(snapshot_from(vehicle, q, start=START))
    html = render_html(data)
    plan = data.plan
    flows: dict[int, Decimal] = defaultdict(Decimal)
    # at signing: the car less the down payment (and the financed premiums, goods bought on credit), less what is
    # paid for credit at once and the deposit
    flows[0] += plan.price - plan.down_payment + plan.financed_premiums - plan.upfront_fees - plan.deposit
    for row in data.schedule:
        flows[_months(START, row.due_date)] -= row.payment
    if plan.residual > 0:  # the final rent (尾付租金) on the day its clause names
        flows[_months(START, _date_in(_clause(html, "尾付租金")))] -= plan.residual
    price = _clause(html, "留购价")  # the title's price, in the total payable and the APR, on its clause's day
    assert _amount_in(price) == plan.purchase_price > 0
    flows[_months(START, _date_in(price))] -= _amount_in(price)
    flows[_months(START, plan.ends_on)] += plan.deposit  # refunded at the end of the term
    values = [float(flows[m]) for m in range(max(flows) + 1)]
    assert abs(float(npf.irr(values)) * 12 - float(plan.apr)) <= 1e-6, (values[:2], values[-2:])
    # the term ends n months after its start, the last rent in arrears on that day, in advance a month before
    assert plan.ends_on == add_months(START, term)
    assert data.schedule[-1].due_date == (plan.ends_on if timing == "arrears" else add_months(START, term - 1))


def test_the_timeline_counts_each_date_from_the_start_and_months_between_inverts_it() -> None:
    line = timeline(date(2027, 1, 31), 13, "arrears")
    assert line.rent_dates[:3] == (date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30))  # no drift to the 28th
    assert line.ends_on == line.rent_dates[-1] == date(2028, 2, 29) and line.balloon_due == line.ends_on
    ahead = timeline(date(2027, 1, 31), 12, "advance")
    assert ahead.rent_dates[0] == date(2027, 1, 31) and ahead.rent_dates[-1] == date(2027, 12, 31)
    assert ahead.ends_on == date(2028, 1, 31)
    for n, day in enumerate(line.rent_dates, 1):
        assert months_between(line.starts_on, day) == n
    assert months_between(date(2027, 1, 31), date(2027, 2, 27)) == 0


def test_a_stated_term_end_must_be_the_schedule_s_and_an_unstated_one_is_derived() -> None:
    from contract.document import ContractDataError

    vehicle, q = make_quote(24, residual="0.30", timing="advance")
    snapshot = snapshot_from(vehicle, q, start=START)
    assert from_snapshot(snapshot).plan.ends_on == date(2029, 1, 31)
    del snapshot["plan"]["ends_on"]  # generated before the term's end was stated
    assert from_snapshot(snapshot).plan.ends_on == date(2029, 1, 31)
    snapshot["plan"]["ends_on"] = "2028-12-31"  # the last rent's day: the balloon a month early
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(snapshot)
    assert refused.value.field == "plan.ends_on"
