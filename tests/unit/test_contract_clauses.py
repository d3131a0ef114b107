"""Clauses a court and a customer expect that the contract lacked (issue 16 §4, §8): the right to refuse a car
that does not conform at delivery and what is refunded when the car is never delivered (Civil Code art. 740),
the lessor's duty of quiet enjoyment (art. 748), use within the vehicle's registered nature, the currency, and
consent to electronic service of notices (Civil Procedure Law art. 90), what each fee pays for and who receives
it, and where the lessee asks and complains (§8)."""

from __future__ import annotations

import re
import shutil

import pytest

from contract.document import from_snapshot
from contract.document.render import render_html
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


@pytest.fixture(scope="module")
def html() -> str:
    vehicle, q = make_quote(36)
    return render_html(from_snapshot(snapshot_from(vehicle, q)))


@pytest.fixture(scope="module")
def sections(html: str) -> dict[str, str]:
    found = {}
    for match in re.finditer(r'<section[^>]*id="([a-z-]+)"[^>]*>(.*?)</section>', html, re.S):
        found[match.group(1)] = re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", match.group(2)))
    return found


def test_delivery_can_be_refused_and_money_paid_before_it_comes_back(sections: dict[str, str]) -> None:
    vehicle = sections["vehicle"]
    assert "有权拒绝受领" in vehicle and "及时通知出租人" in vehicle
    assert "车辆未能交付" in vehicle and "15个工作日内" in vehicle and "退还" in vehicle


def test_the_lessor_guarantees_quiet_enjoyment_and_the_use_is_the_registered_one(sections: dict[str, str]) -> None:
    assert "出租人应保证承租人对车辆的占有和使用" in sections["ownership"]
    assert "使用性质" in sections["ownership"]


def test_the_currency_and_electronic_service_are_stated(sections: dict[str, str]) -> None:
    assert "均以人民币计价和支付" in sections["rent"]
    other = sections["other"]
    assert "同意出租人以短信" in other and "电子方式送达" in other and "送达之日" in other


def test_cross_references_name_the_clause_they_mean(html: str, sections: dict[str, str]) -> None:
    """Early settlement passes ownership "按第七条第 4 款": the fourth item of §7 is the one that transfers it."""
    assert "按第七条第4款转移至承租人" in sections["early-settlement"]
    start = html.index('id="ownership"')
    items = re.findall(r"<li[^>]*>(.*?)</li>", html[start:html.index("</section>", start)], re.S)
    assert "车辆所有权转移至承租人" in items[3]


def test_each_fee_says_what_it_pays_for_and_who_receives_it(sections: dict[str, str]) -> None:
    rent = sections["rent"]
    assert ("服务费¥1,398.00（计入融资金额；用于出租人审核申请、订立合同及办理融资租赁登记和车辆抵押登记，"
            "由出租人收取）") in rent
    assert "GPS费¥1,200.00（计入融资金额；用于GPS定位装置及其安装，以及租赁期内的通信和平台服务，由出租人收取）" in rent


def test_the_lessor_s_contacts_and_a_complaint_channel_with_a_deadline(sections: dict[str, str]) -> None:
    assert "客服电话及电子邮箱400-000-0000service@lessor.example" in sections["parties"]
    other = sections["other"]
    assert "可通过出租人客服电话400-000-0000、电子邮箱service@lessor.example或本系统提出" in other
    assert "出租人应于收到之日起15日内答复" in other and "地方金融管理部门" in other


def test_an_older_snapshot_without_fee_purposes_or_contacts_keeps_its_text() -> None:
    vehicle, q = make_quote(36)
    snapshot = snapshot_from(vehicle, q)
    for fee in snapshot["plan"]["fees"]:
        del fee["purpose"], fee["payee"]
    del snapshot["lessor"]["service_phone"], snapshot["lessor"]["service_email"]
    text = re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", render_html(from_snapshot(snapshot))))
    assert "服务费¥1,398.00（计入融资金额）" in text and "客服电话" not in text and "投诉" not in text
