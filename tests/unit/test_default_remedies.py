"""Default as a court would enforce it (issue 16 §4): when rent stays unpaid the lessor chooses ONE route — all unpaid
rent, or termination with the car back and the loss (Civil Code art. 752; 融资租赁解释 arts. 5, 10, 11) —, the car
comes back only by lawful means, its value is fixed by an independent appraisal the lessee may attend and object
to, the lessee may redeem it, the surplus of its sale comes back (担保制度解释 art. 65), and a disabled GPS device is
a breach with a cure period, not by itself a ground to end the lease. The numbers come from the product file and
are frozen with the contract; contracts generated before keep the text they state."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import render_html
from plans.product import DefaultRemedies
from plans.product import load_product
from tests.unit.test_contract_document import generated_before
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def _items(html: str, section: str) -> list[str]:
    start = html.index(f'id="{section}"')
    body = html[start:html.index("</section>", start)]
    return [re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", item)) for item in re.findall(r"<li[^>]*>(.*?)</li>", body, re.S)]


def _snapshot(**remedies: Any) -> dict[str, Any]:
    vehicle, q = make_quote(36, residual="0.20")
    snapshot = snapshot_from(vehicle, q)
    snapshot["plan"]["default_remedies"].update(remedies)
    return snapshot


def test_the_product_file_states_the_default_terms() -> None:
    assert load_product().default_remedies == DefaultRemedies(
        overdue_periods=2, overdue_share=Decimal("0.15"), demand_cure_days=15, redemption_days=15,
        appraisal_objection_days=7, surplus_refund_working_days=15, gps_cure_days=7)


def test_one_route_after_a_demand_and_the_loss_it_may_claim() -> None:
    data = from_snapshot(_snapshot(overdue_periods=3, demand_cure_days=20))
    assert data.plan.default_remedies == replace(load_product().default_remedies, overdue_periods=3,
                                                 demand_cure_days=20)
    html = render_html(data)
    items = _items(html, "default")
    route = items[2]  # cited as 本条第 3 款 by the items after it
    assert "欠付租金达到3期以上" in route and "全部租金的15.00%以上" in route
    assert "自收到催告之日起20日内仍未付清" in route
    assert "选择下列方式之一" in route and "不得同时主张" in route
    assert "（一）请求承租人支付全部未付租金" in route and "（二）解除本合同，收回车辆" in route
    # acceleration charges no future interest and no settlement fee; the principal as early settlement computes it
    assert "未到期期间的利息及提前结清手续费不再收取" in route
    assert "按第九条第2款第（一）项计算的未偿本金" in route
    assert "（一）未偿本金" in _items(html, "early-settlement")[1]
    assert "损失为按前项计算的全部未付租金及其他应付费用与收回车辆价值的差额" in route
    # the late charge runs on what is overdue, never on rent or interest not yet due
    assert "不以尚未到期的租金或利息为基数" in items[1]


def test_the_car_comes_back_lawfully_is_valued_independently_and_can_be_redeemed() -> None:
    items = _items(render_html(from_snapshot(_snapshot(appraisal_objection_days=10, redemption_days=21,
                                                      surplus_refund_working_days=12))), "default")
    text = "".join(items)
    assert "合法方式收回车辆" in items[3] and "不得以暴力、胁迫、擅自拖移车辆或其他私力方式取回车辆" in items[3]
    assert "具有二手车鉴定评估资质的第三方机构" in items[4] and "承租人可以到场" in items[4]
    assert "可于收到评估报告之日起10日内申请" in items[4] and "重新评估" in items[4]
    assert "收到评估报告之日起21日内付清按本条第3款第（一）项计算的全部款项" in items[5]
    assert "出租人应返还车辆" in items[5] and "按第七条第4款转移至承租人" in items[5]
    assert "公开拍卖或公开竞价" in items[6] and "成交价低于评估价值的，按评估价值计算" in items[6]
    assert "处置完成后12个工作日内返还承租人" in items[6]
    assert "视为根本违约" not in text


def test_a_disabled_gps_device_is_a_breach_with_a_cure_period_not_a_ground_by_itself() -> None:
    items = _items(render_html(from_snapshot(_snapshot(gps_cure_days=10))), "default")
    gps = next(item for item in items if "GPS" in item)
    assert "构成违约" in gps and "应于收到通知之日起10日内恢复装置的正常工作" in gps
    assert gps.index("逾期未恢复") < gps.index("有权解除本合同")
    assert "拒绝告知车辆所在地或者拒绝出租人查看车辆" in gps
    disposal = next(item for item in items if "处分车辆" in item)
    assert "GPS" not in disposal and "有权解除本合同" in disposal


def test_a_contract_generated_before_keeps_its_default_clause() -> None:
    data = from_snapshot(generated_before(_snapshot(), "default_remedies"))
    assert data.plan.default_remedies is None
    text = "".join(_items(render_html(data), "default"))
    assert "出租人有权选择" in text and "不得同时主张" not in text


@pytest.mark.parametrize(("change", "field"), [
    ({"overdue_periods": 1}, "plan.default_remedies.overdue_periods"),
    ({"redemption_days": 2}, "plan.default_remedies.redemption_days"),
    ({"overdue_share": "0.1"}, "plan.default_remedies.overdue_periods"),
])
def test_default_terms_outside_the_bounds_are_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ContractDataError) as caught:
        from_snapshot(_snapshot(**change))
    assert caught.value.field == field


def test_default_terms_need_the_early_settlement_terms_they_refer_to() -> None:
    snapshot = _snapshot()
    del snapshot["plan"]["early_settlement"]
    with pytest.raises(ContractDataError) as caught:
        from_snapshot(snapshot)
    assert caught.value.field == "plan.default_remedies"
