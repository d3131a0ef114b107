"""The terms a lease is serviced by (issue 18 §0), as its signed contract states them: what the BFF freezes on the
lease in force when the handover record is signed (infra/servicing.py), so that every lease is serviced by its own
contract, whatever product and policy versions came after. Pure (no I/O).

Contracts generated before a term was stated keep the term their text states (contract/document/model.py's
defaults are those texts' own figures):

- the late charge: 每日 ``late_fee_daily_rate`` of the overdue amount (逾期金额) from the day it is overdue
  (自逾期之日起) until paid — contracts before the product stated it printed 万分之五 (0.0005), the model's default;
  no cap before the policy's cap on the cost of default was stated (``default_cost_cap`` None);
- no grace: every contract charges 自逾期之日起, so ``grace_days`` is 0 (a product that states grace days would
  carry them in its snapshot as ``plan.grace_days``);
- early settlement: contracts before the product stated it settle on a rent's due day only (任一租金支付日),
  ``early_settlement_fee_rate`` of the outstanding principal (0 unless stated), 5 working days' notice
  (reading.LEGACY_NOTICE_WORKING_DAYS); no interest accrues on a rent day, the day count is the PBOC's ACT/360.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contract.document.model import ContractData
from contract.document.reading import LEGACY_NOTICE_WORKING_DAYS

#: the day count of interest accrued since the last rent where the contract states none (PBOC 《人民币利率管理规定》
#: art. 20: 日利率 = 年利率 ÷ 360); a contract settling on rent days only accrues none
LEGACY_DAY_COUNT = "ACT/360"


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _rate(value: Decimal) -> str:
    return format(value.normalize(), "f")


def servicing_terms(data: ContractData) -> dict[str, Any]:
    """``{"terms": …, "amortisation": […]}``: the contract's servicing terms (rates as decimal strings, money to the
    fen) and its schedule's split of each rent into principal and interest, with the balance after it."""
    plan = data.plan
    es = plan.early_settlement
    remedies = plan.default_remedies
    return {
        "terms": {
            # "contract": the contract states every servicing term; "legacy": generated before the early-settlement
            # terms were stated (its text settles on rent days only)
            "source": "contract" if es is not None else "legacy",
            "term": plan.term, "timing": plan.timing, "nominal_rate": _rate(plan.nominal_rate),
            # the lease's structure (its VAT: books/vat.py); contracts before it was stated were direct leases
            "structure": plan.title.structure if plan.title is not None else "direct",
            "financed_amount": _money(plan.financed_amount), "residual": _money(plan.residual),
            "monthly_payment": _money(plan.monthly_payment), "deposit": _money(plan.deposit),
            "deposit_free": plan.deposit_free, "purchase_price": _money(plan.purchase_price),
            "late_fee_daily_rate": _rate(plan.late_fee_daily_rate),
            "late_fee_base": "overdue_amount",  # 逾期金额: what is due and unpaid, never rents not yet due
            "grace_days": 0,  # 自逾期之日起: the charge runs from the first day a sum is overdue
            "default_cost_cap": None if plan.default_cost_cap is None else _rate(plan.default_cost_cap),
            "early_settlement": {
                "any_day": es is not None,
                "fee_rate": _rate(es.fee_rate if es is not None else plan.early_settlement_fee_rate),
                "day_count": es.day_count if es is not None else LEGACY_DAY_COUNT,
                "notice_working_days": es.notice_working_days if es is not None else LEGACY_NOTICE_WORKING_DAYS,
            },
            "default": None if remedies is None else {
                "overdue_periods": remedies.overdue_periods, "overdue_share": _rate(remedies.overdue_share),
                "demand_cure_days": remedies.demand_cure_days},
        },
        "amortisation": [{"period": row.period, "principal": _money(row.principal), "interest": _money(row.interest),
                          "balance": _money(row.balance)} for row in data.schedule],
    }
