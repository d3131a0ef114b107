"""Title, registration and mortgage (issue 16 §2): the contract says the lease is direct (the dealer invoices the
lessor, which owns the car for the term), in whose name the car is registered, that a car registered in the lessee's
name is mortgaged to the lessor within the product's days of the plates (the lessor keeping the certificate), that
the lessor registers the lease on the PBOC's movable-property registration system within its days of delivery — a
duty, not an option ("有权") — and cancels both once paid, and who bears purchase tax and plates. From the product
file, frozen with the contract; contracts generated before keep their wording."""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import render_html
from plans.product import Title
from plans.product import load_product
from tests.unit.test_contract_document import generated_before
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def _ownership(html: str) -> list[str]:
    start = html.index('id="ownership"')
    body = html[start:html.index("</section>", start)]
    return [re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", item)) for item in re.findall(r"<li[^>]*>(.*?)</li>", body, re.S)]


def _snapshot(**title: Any) -> dict[str, Any]:
    vehicle, q = make_quote(36)
    snapshot = snapshot_from(vehicle, q)
    snapshot["plan"]["title"].update(title)
    return snapshot


def test_the_product_file_states_the_structure_and_the_registrations() -> None:
    assert load_product().title == Title(structure="direct", registered_in="lessee", mortgage_days=30,
                                         pboc_registration_working_days=10, release_working_days=15)


def test_a_car_in_the_lessee_s_name_is_mortgaged_and_the_lease_registered_by_deadlines() -> None:
    items = _ownership(render_html(from_snapshot(_snapshot(mortgage_days=20, pboc_registration_working_days=7,
                                                           release_working_days=12))))
    title = items[0]
    assert "本合同为直接租赁" in title and "供应商向出租人开具机动车销售统一发票（购买方为出租人）" in title
    assert "租赁期内，车辆所有权归出租人所有" in title
    assert "车辆登记在承租人名下，机动车登记证书由出租人保管" in title
    assert "取得车辆号牌之日起20日内" in title and "以出租人为抵押权人的抵押登记" in title
    assert "出租人应于车辆交付之日起7个工作日内" in title and "动产融资统一登记公示系统办理融资租赁登记" in title
    assert "有权在中国人民银行" not in title  # a duty, not an option
    assert "付清全部款项之日起12个工作日内办理注销登记及抵押登记注销" in title
    assert "车辆购置税、车船税、上牌及登记费用由承租人承担" in items[2]
    assert "车辆所有权转移至承租人" in items[3]  # the item the other clauses cite as 第七条第 4 款 stays fourth


def test_a_car_in_the_lessor_s_name_needs_no_mortgage() -> None:
    title = _ownership(render_html(from_snapshot(_snapshot(registered_in="lessor"))))[0]
    assert "车辆登记在出租人名下" in title and "抵押" not in title.replace("抵押、质押", "")


def test_a_contract_generated_before_keeps_its_ownership_clause() -> None:
    data = from_snapshot(generated_before(_snapshot(), "title"))
    assert data.plan.title is None
    items = _ownership(render_html(data))
    assert "车辆可登记在承租人名下" in items[0] and "直接租赁" not in items[0] and "车辆购置税" not in items[2]


def test_title_terms_outside_the_bounds_are_refused() -> None:
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(_snapshot(registered_in="dealer"))
    assert refused.value.field == "plan.title.registered_in"
