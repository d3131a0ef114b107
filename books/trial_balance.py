"""The trial balance (issue 19 §4, §5), pure: each account's closing balance at a date in its column — debit or
credit — and signed debit-positive, as ``leaseline books trial-balance --date D --json`` prints it and as Beancount
would compute it from the export (a credit balance is negative there)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from books.beancount import amount
from books.chart import Chart


def trial_balance(chart: Chart, balances: Mapping[str, int]) -> dict[str, Any]:
    """``{"accounts": [{"account", "debit", "credit", "balance"}], "total_debit", "total_credit"}`` from ``balances``
    (account → closing balance in fen, debit-positive; every account with a line through the date, zero balances
    too), in the chart's order, amounts as decimal strings ("1234.56")."""
    order = {name: i for i, name in enumerate(chart.accounts)}
    rows, debits, credits = [], 0, 0
    for account in sorted(balances, key=lambda name: (order.get(name, len(order)), name)):
        fen = balances[account]
        debit, credit = max(fen, 0), max(-fen, 0)
        debits, credits = debits + debit, credits + credit
        rows.append({"account": account, "debit": amount(debit), "credit": amount(credit), "balance": amount(fen)})
    return {"accounts": rows, "total_debit": amount(debits), "total_credit": amount(credits)}
