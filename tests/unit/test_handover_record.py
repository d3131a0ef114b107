"""contract.document.handover and its template: the handover record (车辆交接确认书) names the handover day as the
start of the term (起租日) and dates each of the contract's rents from it, with the contract's amounts.

The contracts are made from real quotes (tests/unit/test_contract_document.py), as the contract's own tests do.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from contract.document import from_snapshot
from contract.document.handover import HANDOVER_ITEMS
from contract.document.handover import HandoverData
from contract.document.handover import handover_data
from contract.document.model import ContractData
from contract.document.render import render_handover_html
from tests.unit.test_contract_document import ID_NUMBER
from tests.unit.test_contract_document import LESSEE_NAME
from tests.unit.test_contract_document import VIN
from tests.unit.test_contract_document import example_snapshot


def contract(**quote: Any) -> ContractData:
    return from_snapshot({**example_snapshot(**quote), "signed": True})


def record(data: ContractData, delivered_on: date = date(2027, 1, 31), **changes: Any) -> HandoverData:
    fields: dict[str, Any] = {"odometer_km": 12, "keys": 2, "items": ["tools", "charging_cable"], "note": "",
                              "handed_over_by": "张销售", **changes}
    return handover_data(data, delivered_on=delivered_on, **fields)


def text(html: str) -> str:
    """The HTML's text, tags dropped and white space joined, as a reader meets it."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_record_names_the_start_of_the_term_and_dates_every_rent_from_it() -> None:
    data = contract()
    h = record(data, delivered_on=date(2027, 1, 31))
    words = text(render_handover_html(h))
    assert "车辆交接确认书" in words and "交车日期（即起租日） 2027年1月31日" in words
    assert "租赁期自交车日期 2027年1月31日（起租日）起算，至 2030年1月31日 届满" in words
    # in arrears rent k falls due k months after the start: 31 January + 1 month is 28 February
    assert [r.due_date for r in h.schedule[:3]] == [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]
    assert h.schedule[12].due_date == date(2028, 2, 29) and h.ends_on == date(2030, 1, 31)
    for row in h.schedule:
        assert row.due_date.isoformat() in words
    # the amounts are the contract's, unchanged
    assert [(r.period, r.payment) for r in h.schedule] == [(r.period, r.payment) for r in data.schedule]
    assert "已于签约时支付" not in words and h.final_rent is None
    assert data.schedule[0].due_date.isoformat() not in words  # the dates computed at generation are gone


def test_in_advance_rent_1_falls_on_the_start_and_was_paid_at_signing() -> None:
    data = contract(timing="advance", residual="0.30", term=24)
    h = record(data, delivered_on=date(2027, 1, 31))
    words = text(render_handover_html(h))
    assert [r.due_date for r in h.schedule[:2]] == [date(2027, 1, 31), date(2027, 2, 28)]
    assert [r.paid_at_signing for r in h.schedule] == [True] + [False] * 23
    assert "2027-01-31 已于签约时支付" in words
    assert h.ends_on == date(2029, 1, 31) and h.final_rent == data.plan.residual > 0
    assert "尾付租金 ¥41,940.00 于租赁期届满日 2029年1月31日 支付" in words


def test_the_record_names_the_parties_the_car_and_what_was_handed_over() -> None:
    data = contract()
    h = record(data, items=list(HANDOVER_ITEMS), note="左后门<轻微>划痕", keys=1, odometer_km=1234)
    html = render_handover_html(h)
    words = text(html)
    for expected in (data.number, data.lessor.name, LESSEE_NAME, ID_NUMBER, data.dealer.name, VIN, data.vehicle.trim,
                     "新车", "1234 公里", "1 把", "张销售", "、".join(HANDOVER_ITEMS.values()),
                     "机动车登记证书依租赁合同关于车辆所有权的约定由出租人保管"):
        assert expected in words, expected
    assert "左后门&lt;轻微&gt;划痕" in html  # autoescaped
    assert 'id="sig-lessee"' in html and 'id="sig-lessor"' in html
    assert "拒绝受领" in words  # a car that seriously does not conform could have been refused (Civil Code art. 740)
    assert "随车交付物品 无" in text(render_handover_html(record(data, items=[])))


def test_an_unknown_item_is_no_handover_item() -> None:
    with pytest.raises(ValueError, match="registration_certificate"):
        record(contract(), items=["tools", "registration_certificate"])


def test_the_longest_record_fits_on_two_pages_with_both_signature_boxes() -> None:
    """60 monthly rents in advance with a balloon, every item, the longest note and staff label: two pages, the
    signature boxes on the last one (the signing code puts the fields where the layout found them)."""
    from contract.document.render import render_handover

    data = contract(timing="advance", residual="0.20", term=60)
    rendered = render_handover(record(data, items=list(HANDOVER_ITEMS), note="备注" * 250, handed_over_by="张" * 64))
    assert rendered.pdf.startswith(b"%PDF") and rendered.pages == 2
    assert {role: box.page for role, box in rendered.signature_boxes.items()} == {"lessee": 1, "lessor": 1}


def test_the_car_is_named_as_the_dealer_names_it_in_chinese_or_as_the_contract_does() -> None:
    """The README walk-through: the record said 品牌及车型 BYD Han EV beside 配置 比亚迪 汉EV (the contract's make and
    model are the catalogue's, in English). The BFF gives the car's Chinese name with the handover; a request
    without it prints the contract's make and model, as before."""
    data = contract()
    named = text(render_handover_html(record(data, vehicle_name="比亚迪 汉EV")))
    assert "品牌及车型 比亚迪 汉EV 配置" in named
    v = data.vehicle
    assert f"品牌及车型 {v.make} {v.model} 配置" in text(render_handover_html(record(data)))
