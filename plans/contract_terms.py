"""The priced plan as a lease contract states it: the ``plan`` and ``schedule`` of the snapshot the contract
service receives (contract/document/model.py reads it back), from one quote, the product and policy it was priced
under and the term's start. One place for what a contract carries of the plan — the figures, the dates the APR
was priced on (plans.timeline), the late charge within the policy's cap, the early-settlement, default and
end-of-term terms — so that the BFF's request and the tests' contracts cannot drift apart."""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from plans.policy import Policy
from plans.product import CARD_HOLD_DAYS
from plans.product import END_OF_TERM_DAY_BOUNDS
from plans.product import Product
from plans.quote import Quote
from plans.timeline import timeline


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def contract_terms(q: Quote, product: Product, policy: Policy, starts_on: date) -> dict[str, Any]:
    """``{"plan": …, "schedule": […]}`` of a contract for ``q`` whose term starts on ``starts_on`` (Asia/Shanghai):
    money as strings to the fen, rates as decimal strings, dates ISO."""
    request = q.request
    dates = timeline(starts_on, request.term, request.timing)  # the dates the APR was priced on
    fees = {f.code: f for f in product.fees}
    terms, remedies = product.early_settlement, product.default_remedies
    return {
        "plan": {
            "term": request.term, "timing": request.timing, "down_payment": _money(request.down_payment),
            "financed_amount": _money(q.financed_amount), "residual": _money(q.residual),
            "monthly_payment": _money(q.monthly_payment), "apr": f"{q.apr:.6f}",
            "nominal_rate": f"{request.annual_rate}", "deposit": _money(q.deposit),
            "deposit_free": request.deposit == 0,
            "insurance": [{"name": product.coverages[c.code].name_zh, "premium": _money(c.amount),
                           "financed": c.financed} for c in request.premiums],
            "fees": [{"name": fees[c.code].name_zh, "amount": _money(c.amount), "financed": c.financed,
                      "purpose": fees[c.code].purpose_zh, "payee": fees[c.code].payee} for c in request.fees],
            "total_interest": _money(q.total_interest), "total_payable": _money(q.total_payable),
            "due_at_signing": _money(q.due_at_signing), "ends_on": dates.ends_on.isoformat(),
            # the term and every rent run from the day of the signed handover record (交接确认书, 起租日); the
            # schedule's dates are those of this estimated start, moved with the real one (issue 16)
            "commencement": {"by": "handover_record", "estimated_starts_on": dates.starts_on.isoformat()},
            # the product's late charge within the policy's cap on the cost of default (plans.policy)
            "late_fee_daily_rate": str(policy.late_fee_daily_rate(product.late_fee_daily_rate, request.annual_rate)),
            "default_cost_cap": str(policy.default_cost_cap),
            # a deposit-free lease's card hold, what it is and when it may be taken from (the contract's §5)
            # (what the deposit would have been: the request's own rule, with the product's deposit ratio)
            "card_hold": {"amount": _money(replace(request, deposit_ratio=product.deposit_ratio).deposit),
                          "days": CARD_HOLD_DAYS} if request.deposit == 0 else None,
            "early_settlement": {"fee_rate": str(terms.fee_rate), "day_count": terms.day_count,
                                 "notice_working_days": terms.notice_working_days},
            # the end of the term: the title's nominal price (in the total) and the lessee's choices
            "purchase_price": _money(request.purchase_price),
            "end_of_term": {name: getattr(product.end_of_term, name) for name, _, _ in END_OF_TERM_DAY_BOUNDS},
            # who owns the car, in whose name it is registered, the mortgage and the PBOC registration
            "title": asdict(product.title),
            # what the lessor may do when rent stays unpaid (plans.product.DefaultRemedies)
            "default_remedies": {**asdict(remedies), "overdue_share": str(remedies.overdue_share)},
        },
        "schedule": [{"period": r.period, "due_date": dates.rent_dates[r.period - 1].isoformat(),
                      "payment": _money(r.payment), "principal": _money(r.principal), "interest": _money(r.interest),
                      "balance": _money(r.balance)} for r in q.schedule],
    }
