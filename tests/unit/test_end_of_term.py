"""The balloon, the purchase price and the end of the term (issue 16 §3): the balloon is a rent (尾付租金), owed
whatever the lessee chooses — not a "purchase-option price" a court might let the lessee walk away from —; the title
passes for a nominal purchase price (留购价, Civil Code art. 759) from the product file, counted in the total payable
and the APR (tests/unit/test_lease_timeline.py prices it from the contract's own text); the lessee chooses, ahead of
the end, to keep the car, to refinance the final rent or to return the car, valued as a recovered car is."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from typing import Any

import pytest

from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import render_html
from plans.product import EndOfTerm
from plans.product import load_product
from tests.unit.test_contract_document import generated_before
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def _text(html: str) -> str:
    return re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", html))


def _items(html: str, section: str) -> list[str]:
    start = html.index(f'id="{section}"')
    body = html[start:html.index("</section>", start)]
    return [_text(item) for item in re.findall(r"<li[^>]*>(.*?)</li>", body, re.S)]


def _snapshot(residual: str = "0.30", **end_of_term: Any) -> dict[str, Any]:
    vehicle, q = make_quote(36, residual=residual)
    snapshot = snapshot_from(vehicle, q)
    snapshot["plan"]["end_of_term"].update(end_of_term)
    return snapshot


def test_the_product_file_states_the_purchase_price_and_the_notice() -> None:
    assert load_product().end_of_term == EndOfTerm(purchase_price=Decimal("100"), notice_days=30, settle_days=15)


def test_the_purchase_price_is_in_the_total_payable_and_the_cost_of_credit() -> None:
    _, q = make_quote(36, residual="0.30")
    rents = sum((row.payment for row in q.schedule), Decimal(0))
    upfront = q.request.down_payment + q.request.upfront_fees + q.request.upfront_premiums
    assert q.request.purchase_price == Decimal("100")
    assert q.total_payable == upfront + rents + q.residual + Decimal("100")
    assert q.total_cost_of_credit == q.total_interest + q.credit_fees + Decimal("100")
    assert q.cash_flows[-1].amount == q.deposit - q.residual - Decimal("100") - q.schedule[-1].payment


def test_the_balloon_is_the_final_rent_owed_whatever_the_lessee_chooses() -> None:
    data = from_snapshot(_snapshot())
    html = render_html(data)
    page_one = _text(html[html.index('id="key-facts"'):html.index("</section>", html.index('id="key-facts"'))])
    assert "尾付租金¥41,940.00" in page_one and "留购价¥100.00" in page_one
    assert "留购、申请再融资或退还车辆" in page_one and "尾款" not in _text(html)
    rent = _items(html, "rent")
    final = next(item for item in rent if item.startswith("尾付租金："))
    assert "为本合同的最后一笔租金" in final and "无论承租人在租赁期届满时作何选择，均应支付" in final
    price = next(item for item in rent if item.startswith("留购价："))
    assert "¥100.00（大写：人民币壹佰元整）" in price and "象征性价款" in price and "选择退还车辆的无需支付" in price
    assert "全部租金及尾付租金、留购价之和" in "".join(rent)


def test_the_lessee_chooses_ahead_of_the_end_and_a_returned_car_is_valued_as_a_recovered_one() -> None:
    html = render_html(from_snapshot(_snapshot(notice_days=45, settle_days=10)))
    ownership = _items(html, "ownership")
    assert "付清全部租金（含尾付租金¥41,940.00）、留购价¥100.00及其他应付款项后，车辆所有权转移至承租人" in ownership[3]
    choices = ownership[4]
    assert "租赁期届满日前至少45日书面通知出租人" in choices
    assert "（一）留购" in choices and "（二）再融资" in choices and "（三）退还车辆" in choices
    assert "经出租人审核同意" in choices  # refinancing is a new application, decided as any other
    assert "按第八条第5款的方法评估" in choices and "评估价值抵扣尾付租金" in choices
    assert "评估报告送达承租人之日起10日内结清" in choices and "无需支付留购价" in choices
    assert "评估车辆价值" in _items(html, "default")[4]  # the item cited: the appraisal of a recovered car
    assert "视为选择留购" in ownership[5]


def test_without_a_balloon_the_title_passes_after_the_rents_and_the_purchase_price() -> None:
    html = render_html(from_snapshot(_snapshot(residual="0")))
    rent = "".join(_items(html, "rent"))
    assert "本合同不设尾付租金" in rent and "全部租金及留购价之和" in rent and "退还车辆" not in rent
    ownership = _items(html, "ownership")
    assert "付清全部租金、留购价¥100.00" in ownership[3]
    assert len(ownership) == 4 and "再融资" not in _text(html)


def test_a_contract_generated_before_keeps_its_balloon_wording() -> None:
    data = from_snapshot(generated_before(_snapshot(), "end_of_term"))
    assert data.plan.end_of_term is None and data.plan.purchase_price == 0
    text = _text(render_html(data))
    assert "尾款（留购价款）：¥41,940.00" in text and "尾付租金" not in text and "留购价：" not in text


def test_end_of_term_terms_are_checked() -> None:
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(_snapshot(notice_days=3))
    assert refused.value.field == "plan.end_of_term.notice_days"
    snapshot = _snapshot()
    snapshot["plan"]["purchase_price"] = "2000.00"
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(snapshot)
    assert refused.value.field == "plan.purchase_price"
    snapshot = _snapshot()
    del snapshot["plan"]["default_remedies"]  # the return's valuation is the default clause's
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(snapshot)
    assert refused.value.field == "plan.end_of_term"
