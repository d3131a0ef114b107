"""The leased car as the contract describes it (issue 16 §8; Civil Code art. 736): VIN, engine or motor number,
powertrain, quantity, a used car's mileage and the currency of its price; a contract generated before keeps its
shorter table; a used car without its mileage, or a malformed engine number, is refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import render_html
from tests.unit.test_contract_document import ENGINE_NO
from tests.unit.test_contract_document import example_snapshot


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def vehicle_section(snapshot: dict[str, Any]) -> str:
    body = text(render_html(from_snapshot(snapshot)))
    return body[body.index("第二条 租赁车辆"):body.index("第三条")]


def test_a_new_car_is_described_by_its_numbers_powertrain_and_quantity_priced_in_renminbi() -> None:
    section = vehicle_section(example_snapshot())
    assert f"发动机号/电动机号 {ENGINE_NO}" in section and "动力类型 新能源汽车" in section
    assert "数量 1 辆" in section and "车辆价格（人民币）" in section and "车辆状况 新车 车辆价格" in section


def test_a_used_car_states_its_mileage_and_needs_it() -> None:
    snapshot = example_snapshot()
    snapshot["vehicle"].update(condition="used", mileage_km=23456, powertrain="ice", engine_no="")
    section = vehicle_section(snapshot)
    assert "二手车，签约时表显里程 23,456 公里" in section and "燃油汽车" in section
    assert "以车辆出厂合格证记载为准" in section  # the car not yet assigned its engine number
    snapshot["vehicle"]["mileage_km"] = None
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(snapshot)
    assert refused.value.field == "vehicle.mileage_km"


@pytest.mark.parametrize("engine_no", ["AB", "发动机123456", "A" * 21, "BYD 472"])
def test_a_malformed_engine_number_is_refused(engine_no: str) -> None:
    snapshot = example_snapshot()
    snapshot["vehicle"]["engine_no"] = engine_no
    with pytest.raises(ContractDataError):
        from_snapshot(snapshot)


def test_a_contract_generated_before_keeps_its_table() -> None:
    snapshot = example_snapshot()
    for name in ("quantity", "powertrain", "engine_no", "mileage_km"):
        del snapshot["vehicle"][name]
    section = vehicle_section(snapshot)
    assert "数量" not in section and "发动机号" not in section and "车辆价格 " in section
