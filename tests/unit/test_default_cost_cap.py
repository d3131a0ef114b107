"""The cost of default that courts enforce (issue 16 §4): the contract's late charge comes from the product file and
is capped so that, with the contract rate, it stays within the policy's total (24 % a year: the Supreme People's
Court's financial-trial opinions, 法发〔2017〕22号 art. 2; liquidated damages beyond it are reduced, Civil Code
art. 585). Page one of the contract shows the late charge and the cap beside the APR."""

from __future__ import annotations

import shutil
from dataclasses import replace
from decimal import Decimal

import pytest

from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import render_html
from plans.policy import load_policy
from plans.product import load_product
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
YEAR = Decimal(365)


def test_every_rate_of_the_product_keeps_the_cost_of_default_within_the_policy_cap() -> None:
    product, policy = load_product(), load_policy()
    assert product.late_fee_daily_rate == Decimal("0.0005") and policy.default_cost_cap == Decimal("0.24")
    for card in product.rates.values():
        for rate in card.values():
            late = policy.late_fee_daily_rate(product.late_fee_daily_rate, rate)
            assert rate + late * YEAR <= policy.default_cost_cap
            assert late <= product.late_fee_daily_rate and late == late.quantize(Decimal("0.000001"))
            # the cap binds only where it must: one millionth more a day would pass it
            if late < product.late_fee_daily_rate:
                assert rate + (late + Decimal("0.000001")) * YEAR > policy.default_cost_cap
    # a dear contract rate leaves less room: 9.99 % (used, 60 months) allows 0.0383 % a day, not 0.05 %
    assert policy.late_fee_daily_rate(Decimal("0.0005"), Decimal("0.0999")) == Decimal("0.000383")
    assert policy.late_fee_daily_rate(Decimal("0.0005"), Decimal("0.25")) == 0  # no room at all: no late charge


def test_page_one_shows_the_late_charge_and_the_cap_and_a_charge_above_the_cap_is_refused() -> None:
    vehicle, q = make_quote(60)
    snapshot = snapshot_from(vehicle, q)
    data = from_snapshot(snapshot)
    plan = data.plan
    assert plan.default_cost_cap == Decimal("0.24")
    assert plan.nominal_rate + plan.late_fee_daily_rate * YEAR <= Decimal("0.24")
    html = render_html(data)
    facts = html[html.index('id="key-facts"'):html.index("</section>", html.index('id="key-facts"'))]
    assert "逾期违约金" in facts and "不超过年 24.00%" in facts and "每日 0.0466%" in facts
    snapshot["plan"]["late_fee_daily_rate"] = "0.0006"  # 21.9 % a year on top of the contract rate
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(snapshot)
    assert refused.value.field == "plan.late_fee_daily_rate"


def test_a_contract_generated_before_the_cap_keeps_its_stated_late_charge() -> None:
    vehicle, q = make_quote(36)
    snapshot = snapshot_from(vehicle, q)
    for key in ("late_fee_daily_rate", "default_cost_cap"):
        snapshot["plan"].pop(key, None)
    plan = from_snapshot(snapshot).plan
    assert plan.late_fee_daily_rate == Decimal("0.0005") and plan.default_cost_cap is None
    assert replace(plan, default_cost_cap=None) == plan
