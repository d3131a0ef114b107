"""The contract names the car in Chinese (re-walk finding 3): its 品牌 and 车型 read 比亚迪 / 汉EV, as its 配置
(比亚迪 汉EV) and the handover record (be80a0b's vehicle_name) do — the BFF's snapshot sent the catalogue's English
make and model. Only contracts generated from now on change: a contract's text is never rewritten."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bff.applications.contracts import contract_make_model
from plans.product import Vehicle
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in
from tests.integration.test_contract_journey import card_images  # noqa: F401 — a fixture
from tests.integration.test_contract_journey import contract_ready

pytestmark = pytest.mark.db


def _car(name_zh: str, make: str = "Toyota", model: str = "Corolla (used)") -> Vehicle:
    return Vehicle("v", make, model, name_zh, f"{make} {model}", price=0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name_zh", "expected"), [
    ("比亚迪 汉EV", ("比亚迪", "汉EV")),
    ("奔驰 C 260 L", ("奔驰", "C 260 L")),
    ("二手 丰田 卡罗拉 2022款", ("丰田", "卡罗拉 2022款")),  # the condition is the contract's own field
    ("江淮 帅铃 纯电轻卡", ("江淮", "帅铃 纯电轻卡")),
    ("丰田", ("Toyota", "Corolla (used)")),  # no model in the Chinese name: the catalogue's own make and model
])
def test_the_chinese_make_and_model_come_from_the_catalogue_s_chinese_name(
        name_zh: str, expected: tuple[str, str]) -> None:
    assert contract_make_model(_car(name_zh)) == expected


def test_the_generated_contract_names_the_car_in_chinese(bff_server: Any, contract_server: Any,
                                                         card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    app_id = contract_ready(bff_server, card_images, explained=False)  # a BYD Han EV (tests VEHICLE)
    with sign_in(bff_server.url, SALES_A) as sales:
        text = sales.get(f"{bff_server.url}/applications/{app_id}/contract/text", timeout=TIMEOUT).text
    cells = dict(re.findall(r"<th>(品牌|车型)</th>\s*<td>([^<]*)</td>", text))
    assert cells == {"品牌": "比亚迪", "车型": "汉EV"}, cells
    assert "Han EV" not in text and "BYD" not in text
