"""The Beancount rendering of the ledger (books/beancount.py) and the trial balance (books/trial_balance.py): exact
amounts from fen, Beancount's signs, accounts opened with their names, assertions on the first day after each month
end — and beancount's own loader (the library bean-check runs) accepts what is right and refuses a wrong balance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from beancount import loader

from books.beancount import JOURNAL
from books.beancount import Assertion
from books.beancount import Booked
from books.beancount import amount
from books.beancount import assertion_days
from books.beancount import balance
from books.beancount import quoted
from books.beancount import render
from books.beancount import summary_entry
from books.beancount import transaction
from books.chart import load_chart
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.trial_balance import trial_balance

PAYMENTS, UNEARNED = "Assets:LeaseReceivable:Payments", "Assets:LeaseReceivable:Unearned"
DEALERS, BANK, INTEREST = "Liabilities:Payable:Dealers", "Assets:Bank:Collections", "Income:Lease:Interest"


def booked(key: str, kind: str, on: date, lines: list, memo: str = "", lease: str | None = "L-1") -> Booked:
    made = entry(key, kind, on, lines, memo, lease_id=lease)
    assert made is not None
    return Booked(on, made)


LEDGER = [
    booked("lease:L-1:commenced", "lease_commenced", date(2026, 9, 14),
           [debit(PAYMENTS, 3_600_099), credit(UNEARNED, 300_099), credit(DEALERS, 3_300_000)], 'SYN "1"'),
    booked("dealer:L-1", "dealer_paid", date(2026, 9, 15), [debit(DEALERS, 3_300_000), credit(BANK, 3_300_000)]),
    booked("receipt:1", "receipt", date(2026, 10, 14), [debit(BANK, 100_003), credit(PAYMENTS, 100_003)]),
    booked("income:L-1:2026-09", "finance_income", date(2026, 9, 30),
           [debit(UNEARNED, 4_321), credit(INTEREST, 4_321)]),
    booked("income:L-1:2026-10", "finance_income", date(2026, 10, 31),
           [debit(UNEARNED, 8_765), credit(INTEREST, 8_765)]),
]


def journal_assertions(days: list[date]) -> list[Assertion]:
    made = []
    for day in days:
        sums: dict[str, int] = {}
        for item in LEDGER:
            if item.booked_on < day:
                for line in item.entry.lines:
                    sums[line.account] = sums.get(line.account, 0) + line.debit - line.credit
        made.extend(Assertion(day, account, fen, JOURNAL) for account, fen in sums.items())
    return made


def load(text: str) -> tuple[list, list]:
    entries, errors, _options = loader.load_string(text)
    return entries, errors


def test_amounts_are_exact_yuan_from_fen() -> None:
    assert [amount(f) for f in (0, 5, -5, 100, 123_456, -123_456, 10**15 + 1)] == [
        "0.00", "0.05", "-0.05", "1.00", "1234.56", "-1234.56", "10000000000000.01"]
    assert quoted('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c d"'


def test_assertions_fall_on_the_first_day_after_each_ended_month() -> None:
    assert assertion_days(date(2026, 9, 14), date(2026, 12, 7)) == [date(2026, 10, 1), date(2026, 11, 1),
                                                                      date(2026, 12, 1)]
    assert assertion_days(date(2026, 11, 3), date(2027, 1, 31)) == [date(2026, 12, 1), date(2027, 1, 1),
                                                                      date(2027, 2, 1)]
    assert assertion_days(date(2026, 12, 1), date(2026, 12, 30)) == []


def test_a_transaction_signs_debits_positive_and_keeps_its_facts() -> None:
    text = transaction(LEDGER[0])
    assert text.splitlines()[:4] == ['2026-09-14 * "lease_commenced: SYN \\"1\\""', '  key: "lease:L-1:commenced"',
                                     "  value_date: 2026-09-14", '  lease: "L-1"']
    assert f"  {PAYMENTS}  36000.99 CNY" in text and f"  {UNEARNED}  -3000.99 CNY" in text
    assert f"  {DEALERS}  -33000.00 CNY" in text


def test_a_journal_balance_is_marked_and_a_subledger_one_named() -> None:
    assert balance(Assertion(date(2026, 10, 1), DEALERS, -5, JOURNAL)).splitlines() == [
        f"; {DEALERS}: the journal's own balance (no independent sub-ledger for it yet)",
        f"2026-10-01 balance {DEALERS}  -0.05 ~ 0.00 CNY"]
    assert balance(Assertion(date(2026, 10, 1), PAYMENTS, 5, "schedule")).splitlines() == [
        f"2026-10-01 balance {PAYMENTS}  0.05 ~ 0.00 CNY", '  source: "schedule"']


def test_beancount_accepts_the_file_with_the_accounts_names_and_exact_balances() -> None:
    chart = load_chart()
    days = assertion_days(date(2026, 9, 14), date(2026, 11, 30))
    text = "\n".join(render(chart, date(2026, 9, 14), LEDGER, journal_assertions(days)))
    entries, errors = load(text)
    assert errors == []
    opens = {e.account: e for e in entries if type(e).__name__ == "Open"}
    assert set(opens) == set(chart.accounts)
    assert opens[PAYMENTS].meta["zh"] == "应收融资租赁款—租赁收款额" and opens[PAYMENTS].currencies == ["CNY"]
    balances = [e for e in entries if type(e).__name__ == "Balance"]
    assert {(e.date, e.account): e.amount.number for e in balances}[(date(2026, 11, 1), INTEREST)] == Decimal(
        "-130.86")
    assert len([e for e in entries if type(e).__name__ == "Transaction"]) == len(LEDGER)


def test_beancount_refuses_a_balance_a_fen_off_and_a_posting_before_the_open() -> None:
    chart = load_chart()
    wrong = [Assertion(date(2026, 11, 1), INTEREST, -13_085, "schedule")]
    _entries, errors = load("\n".join(render(chart, date(2026, 9, 14), LEDGER, wrong)))
    assert len(errors) == 1 and "Balance failed" in errors[0].message
    _entries, errors = load("\n".join(render(chart, date(2026, 9, 15), LEDGER, [])))
    assert errors and "inactive" in errors[0].message


def test_the_summary_nets_a_days_entries_of_a_kind_by_account() -> None:
    made = summary_entry(date(2026, 10, 31), "finance_income", 2, [(INTEREST, 0, 13_086), (UNEARNED, 13_086, 0)])
    assert made is not None and made.entry.key == "summary:2026-10-31:finance_income"
    assert made.entry.memo == "2 entries of the day" and made.entry.total == 13_086
    assert summary_entry(date(2026, 10, 31), "receipt", 2, [(BANK, 500, 500), (PAYMENTS, 700, 700)]) is None
    _entries, errors = load("\n".join(render(load_chart(), date(2026, 9, 1), [made], [])))
    assert errors == []


@pytest.mark.parametrize("balances", [{BANK: -3_199_997, PAYMENTS: 3_500_096, UNEARNED: -287_013, DEALERS: 0,
                                       INTEREST: -13_086}])
def test_the_trial_balance_puts_each_balance_in_its_column(balances: dict[str, int]) -> None:
    report = trial_balance(load_chart(), balances)
    rows = {row["account"]: row for row in report["accounts"]}
    assert [row["account"] for row in report["accounts"]] == [BANK, PAYMENTS, UNEARNED, DEALERS, INTEREST]
    assert rows[BANK] == {"account": BANK, "debit": "0.00", "credit": "31999.97", "balance": "-31999.97"}
    assert rows[PAYMENTS] == {"account": PAYMENTS, "debit": "35000.96", "credit": "0.00", "balance": "35000.96"}
    assert rows[DEALERS]["balance"] == "0.00"
    assert report["total_debit"] == report["total_credit"] == "35000.96"
