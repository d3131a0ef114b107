"""The deposit-free (免押) hold disclosed (issue 16 §5): the contract said a deposit-free lease holds no security and
the payment page that the hold is never charged, while ops could capture it. The contract now states the hold's
amount (the product's deposit ratio of the price, what the payments code holds), its life (CARD_HOLD_DAYS, what the
payments code applies) and the only case it may be taken from — sums due under the contract and unpaid, after a
written notice naming them, up to their amount —; deposit-free contracts generated before keep their sentence."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from decimal import Decimal

import pytest

from bff.payments.intents import HOLD_WINDOW
from contract.document import ContractDataError
from contract.document import from_snapshot
from contract.document.render import render_html
from plans.product import CARD_HOLD_DAYS
from plans.product import load_product
from tests.unit.test_contract_document import make_quote
from tests.unit.test_contract_document import snapshot_from

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def _deposit_section(html: str) -> str:
    start = html.index('id="deposit"')
    return re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", html[start:html.index("</section>", start)]))


def test_a_deposit_free_contract_discloses_the_hold_and_when_it_may_be_taken_from() -> None:
    vehicle, q = make_quote(36, deposit_free=True)
    data = from_snapshot(snapshot_from(vehicle, q))
    hold = load_product().deposit_ratio * vehicle.price
    assert data.plan.card_hold is not None and data.plan.card_hold.amount == hold == Decimal("6990.00")
    assert data.plan.card_hold.days == CARD_HOLD_DAYS and HOLD_WINDOW == timedelta(days=CARD_HOLD_DAYS)
    html = render_html(data)
    page_one = re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", html[:html.index('id="parties"')]))
    assert f"免押（无保证金）交车前银行卡预授权¥6,990.00，{CARD_HOLD_DAYS}日后失效（第五条）" in page_one
    text = _deposit_section(html)
    assert "本合同免收保证金（免押）" in text and "预授权¥6,990.00（大写：人民币陆仟玖佰玖拾元整）" in text
    assert "仅在卡上冻结，不发生扣款" in text and f"自办理之日起{CARD_HOLD_DAYS}日后自动失效" in text
    assert "款项到期未付的，出租人可书面通知承租人，列明款项名称、金额及依据的合同条款" in text
    assert "在该等款项金额内扣收预授权；除此之外出租人不得扣收" in text


def test_a_lease_with_a_deposit_has_no_hold_and_an_old_deposit_free_contract_keeps_its_sentence() -> None:
    vehicle, q = make_quote(36)
    assert snapshot_from(vehicle, q)["plan"]["card_hold"] is None
    vehicle, q = make_quote(36, deposit_free=True)
    snapshot = snapshot_from(vehicle, q)
    del snapshot["plan"]["card_hold"]
    text = _deposit_section(render_html(from_snapshot(snapshot)))
    assert "承租人无需为履行本合同另行交付保证金" in text and "预授权" not in text


def test_a_hold_on_a_lease_with_a_deposit_is_refused() -> None:
    vehicle, q = make_quote(36)
    snapshot = snapshot_from(vehicle, q)
    snapshot["plan"]["card_hold"] = {"amount": "6990.00", "days": 7}
    with pytest.raises(ContractDataError) as refused:
        from_snapshot(snapshot)
    assert refused.value.field == "plan.card_hold"
