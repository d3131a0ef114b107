"""Early settlement (提前结清) as the contract states it (issue 16 §1): the terms come from the product file — any
day, interest accrued since the last rent at the contract rate with its day count (daily rate = annual / 360,
the PBOC's 《人民币利率管理规定》 art. 20), a fee on the principal outstanding — so that what the servicing
issue charges is what the customer signed. A contract generated before keeps the terms its text states:
settlement on a rent date, no fee."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal

import pytest

from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import render_html
from plans.product import load_product
from tests.unit.test_contract_document import generated_before
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def _clause(html: str) -> str:
    start = html.index('id="early-settlement"')
    return re.sub(r"<[^>]+>", "", html[start:html.index("</section>", start)])


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_a_new_contract_states_the_product_s_early_settlement_terms(timing: str) -> None:
    terms = load_product().early_settlement
    assert (terms.fee_rate, terms.day_count, terms.notice_working_days) == (Decimal("0.03"), "ACT/360", 5)
    vehicle, q = make_quote(36, residual="0.20", timing=timing)  # type: ignore[arg-type]
    data = from_snapshot(snapshot_from(vehicle, q))
    assert data.plan.early_settlement == terms
    text = _clause(render_html(data))
    assert "租赁期内任一日" in text and "5 个工作日" in text
    assert "日利率按年利率除以 360 计算" in text and "按实际天数" in text
    assert "3.00%" in text and "未到期期间的利息不再收取" in text
    # what the outstanding principal is, for the timing the contract has
    assert ("减去该期租金" in text) == (timing == "advance")


def test_a_contract_generated_before_keeps_settlement_on_rent_dates_without_a_fee() -> None:
    vehicle, q = make_quote(36)
    data = from_snapshot(generated_before(snapshot_from(vehicle, q), "early_settlement"))
    assert data.plan.early_settlement is None
    text = _clause(render_html(data))
    assert "任一租金支付日" in text and "出租人不收取提前结清手续费" in text and "360" not in text


def test_early_settlement_terms_out_of_range_are_refused() -> None:
    vehicle, q = make_quote(24)
    for key, value in (("fee_rate", "0.2"), ("day_count", "30/360"), ("notice_working_days", 31)):
        snapshot = snapshot_from(vehicle, q)
        snapshot["plan"]["early_settlement"][key] = value
        with pytest.raises(ContractDataError) as refused:
            from_snapshot(snapshot)
        assert refused.value.field == f"plan.early_settlement.{key}"
