"""The commencement date (起租日, issue 16): a new contract says the term and every rent run from the day of the signed
handover record, that its schedule is dated from an estimated start, and how each date moves with the real one; the
handover record then dates each rent by exactly that rule (checked here against an independent calendar reckoning,
not plans.timeline). A contract generated before keeps its old sentence."""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Any

import pytest

from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.handover import handover_data
from contract.document.render import render_html
from plans.quote import Timing
from tests.unit.test_contract_document import example_snapshot
from tests.unit.test_contract_document import generated_before
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def same_day_months_later(start: date, months: int) -> date:
    """The contract's words: the day of the month ``months`` later that has the start's number, else that
    month's last day."""
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    return date(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]))


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_a_new_contract_says_the_dates_run_from_the_signed_handover_record(timing: Timing) -> None:
    vehicle, q = make_quote(timing=timing, term=36)
    snapshot = snapshot_from(vehicle, q, start=date(2026, 11, 30))
    assert snapshot["plan"]["commencement"] == {"by": "handover_record", "estimated_starts_on": "2026-11-30"}
    body = text(render_html(from_snapshot(snapshot)))
    assert "租赁期限为 36 个月，自起租日起计算。起租日为车辆交付承租人、承租人查验后签署《车辆交接确认书》之日" in body
    assert "系按预计起租日 2026年11月30日 计算" in body
    step = "k−1" if timing == "advance" else "k"
    assert f"第 k 期租金支付日为起租日后第 {step} 个月的对应日" in body
    assert "租赁期届满日为起租日后第 36 个月的对应日，当月无对应日的为该月最后一日" in body
    assert "各期租金金额、年化利率及本合同其他约定不因此改变" in body
    assert "自本合同生效且车辆交付承租人之日起计算" not in body
    assert "应付日期按预计起租日 2026年11月30日 计算，实际以《车辆交接确认书》" in body  # under 附件一


def test_a_contract_generated_before_keeps_its_sentence() -> None:
    body = text(render_html(from_snapshot(generated_before(example_snapshot(), "commencement"))))
    assert "自本合同生效且车辆交付承租人之日起计算" in body and "起租日为车辆交付承租人" not in body


def test_an_estimated_start_the_schedule_does_not_count_from_is_refused() -> None:
    snapshot = example_snapshot()
    snapshot["plan"]["commencement"]["estimated_starts_on"] = "2026-12-01"
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(snapshot)
    assert refused.value.field == "plan.commencement.estimated_starts_on"
    snapshot["plan"]["commencement"] = {"by": "signature", "estimated_starts_on": "2026-11-30"}
    with pytest.raises(ContractDataError):
        from_snapshot(snapshot)


@pytest.mark.parametrize("timing", ["arrears", "advance"])
@pytest.mark.parametrize("delivered_on", [date(2027, 1, 31), date(2027, 12, 30), date(2026, 12, 7)])
def test_the_record_dates_each_rent_as_the_contract_says(timing: Timing, delivered_on: date) -> None:
    vehicle, q = make_quote(timing=timing, term=24, residual="0.30")
    data = from_snapshot({**snapshot_from(vehicle, q, start=date(2026, 11, 30)), "signed": True})
    record = handover_data(data, delivered_on=delivered_on, odometer_km=5, keys=2, items=[], note="",
                           handed_over_by="张销售")
    offset = 1 if timing == "arrears" else 0
    expected: list[Any] = [same_day_months_later(delivered_on, k - 1 + offset) for k in range(1, 25)]
    assert [r.due_date for r in record.schedule] == expected
    assert record.ends_on == same_day_months_later(delivered_on, 24)
    # the amounts are the contract's, whatever the day
    assert [r.payment for r in record.schedule] == [row.payment for row in data.schedule]
    assert record.final_rent == data.plan.residual


def test_a_contract_generated_before_keeps_its_own_dates_in_the_handover_record() -> None:
    """Its text fixed the dates (首期租金支付日为 …，各期租金支付日以附件一为准): the record states them, not
    dates counted from the handover day (the lease keeps the terms its text states)."""
    from contract.document.render import render_handover_html

    data = from_snapshot({**generated_before(example_snapshot(), "commencement"), "signed": True})
    record = handover_data(data, delivered_on=date(2026, 12, 20), odometer_km=5, keys=2, items=[], note="",
                           handed_over_by="张销售")
    assert record.dated_from == "contract"
    assert [r.due_date for r in record.schedule] == [row.due_date for row in data.schedule]
    assert record.ends_on == data.plan.ends_on and record.delivered_on == date(2026, 12, 20)
    body = text(render_handover_html(record))
    assert "按租赁合同附件一《租金支付计划表》所列日期执行" in body and "起租日）起算" not in body
