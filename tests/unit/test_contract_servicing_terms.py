"""The terms a lease is serviced by, as its contract states them (contract/document/servicing_terms.py; issue 18 §0):
a new contract's own figures; a contract generated before the early-settlement and cost-cap terms keeps what its text
says — the late charge it printed (万分之五 when it named none), settlement on a rent day without a fee, no cap."""

from __future__ import annotations

from decimal import Decimal

from contract.document.model import from_snapshot
from contract.document.servicing_terms import servicing_terms
from tests.unit.test_contract_document import example_snapshot


def test_a_new_contract_s_servicing_terms_are_its_own_figures() -> None:
    snapshot = example_snapshot()
    plan = snapshot["plan"]
    found = servicing_terms(from_snapshot(snapshot))
    terms = found["terms"]
    assert terms["source"] == "contract" and terms["grace_days"] == 0 and terms["late_fee_base"] == "overdue_amount"
    assert Decimal(terms["late_fee_daily_rate"]) == Decimal(plan["late_fee_daily_rate"])
    assert Decimal(terms["default_cost_cap"]) == Decimal(plan["default_cost_cap"])
    es = plan["early_settlement"]
    assert terms["early_settlement"] == {"any_day": True, "fee_rate": str(Decimal(es["fee_rate"]).normalize()),
                                         "day_count": es["day_count"],
                                         "notice_working_days": es["notice_working_days"]}
    assert [(r["period"], r["principal"], r["interest"], r["balance"]) for r in found["amortisation"]] == [
        (r["period"], r["principal"], r["interest"], r["balance"]) for r in snapshot["schedule"]]


def test_an_older_contract_keeps_the_terms_its_text_states() -> None:
    snapshot = example_snapshot()
    plan = {k: v for k, v in snapshot["plan"].items() if k not in (
        "early_settlement", "late_fee_daily_rate", "default_cost_cap", "default_remedies", "end_of_term", "title",
        "commencement", "purchase_price")}
    # without the purchase price its total is the older one (no 留购价 in it)
    plan["total_payable"] = f"{Decimal(plan['total_payable']) - Decimal(snapshot['plan']['purchase_price']):.2f}"
    terms = servicing_terms(from_snapshot({**snapshot, "plan": plan}))["terms"]
    assert terms["source"] == "legacy" and terms["late_fee_daily_rate"] == "0.0005"
    assert terms["default_cost_cap"] is None
    assert terms["early_settlement"] == {"any_day": False, "fee_rate": "0", "day_count": "ACT/360",
                                         "notice_working_days": 5}
    assert terms["default"] is None
