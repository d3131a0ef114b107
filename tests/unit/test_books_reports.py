"""The books' reports (books/reports.py) against references computed another way: the journal's lines walked one by
one (the reports are given sums), Decimal yuan for the amounts, and the trial balance of the same journal for the ties
every report claims."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from books.chart import load_chart
from books.reports import BUCKETS
from books.reports import VAT_INPUT
from books.reports import VAT_OUTPUT
from books.reports import DealerLine
from books.reports import Outstanding
from books.reports import VatMovement
from books.reports import ageing
from books.reports import bucket_of
from books.reports import dealer_statement
from books.reports import first_day
from books.reports import identify
from books.reports import identify_rate
from books.reports import in_books_years
from books.reports import income_statement
from books.reports import last_day
from books.reports import month_of
from books.reports import months_between
from books.reports import trial_balance
from books.reports import vat_summary
from books.reports import yuan

CHART = load_chart()
ACCOUNTS = ["Assets:Bank:Collections", "Assets:LeaseReceivable:Payments", "Liabilities:Payable:Dealers",
            "Income:Lease:Interest", "Income:Other:Fees", "Expenses:Finance:ProcessorFees", VAT_OUTPUT]
START = date(2026, 1, 1)


def test_amounts_are_yuan_with_two_decimals_exactly() -> None:
    for fen in (0, 1, -1, 5, 99, 100, 123456, -123456, 10**15 + 7):
        assert Decimal(yuan(fen)) == Decimal(fen) / 100
        assert yuan(fen).split(".")[1].__len__() == 2


def test_months() -> None:
    assert month_of(date(2026, 2, 28)) == "2026-02" and first_day("2026-02") == date(2026, 2, 1)
    assert last_day(date(2028, 2, 1)) == date(2028, 2, 29) and last_day(date(2026, 12, 1)) == date(2026, 12, 31)
    assert months_between("2025-11", "2026-02") == ("2025-11", "2025-12", "2026-01", "2026-02")
    assert months_between("2026-03", "2026-02") == ()
    assert first_day("2000-01") == date(2000, 1, 1) and last_day(first_day("2999-12")) == date(2999, 12, 31)
    assert in_books_years(date(2000, 1, 1)) and in_books_years(date(2999, 12, 31))
    assert not in_books_years(date(1999, 12, 31)) and not in_books_years(date(3000, 1, 1))
    # the years the books hold: 9999-12's next month (year 10000) could not even be computed
    for bad in ("2026-2", "2026/02", "26-02", "2026-13", "9999-12", "1999-12", "3000-01", "0000-01", "２０２６-01"):
        try:
            first_day(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


# a journal: entries of two balanced lines each, booked on a day, with a dealer
entries = st.lists(st.tuples(st.integers(0, 120), st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
                             st.integers(1, 10**9), st.sampled_from(["d1", "d2"])), max_size=40)


def journal(drawn: list[tuple[int, str, str, int, str]]) -> list[tuple[date, str, int, int, str]]:
    """(booked day, account, debit, credit, dealer) lines of the drawn entries (debit one account, credit another)."""
    lines = []
    for offset, dr, cr, fen, dealer in drawn:
        day = START + timedelta(days=offset)
        lines += [(day, dr, fen, 0, dealer), (day, cr, 0, fen, dealer)]
    return lines


@given(entries)
@settings(max_examples=60, deadline=None)
def test_the_income_statement_by_month_adds_up_to_the_trial_balance(
        drawn: list[tuple[int, str, str, int, str]]) -> None:
    lines = journal(drawn)
    on = START + timedelta(days=120)
    balances: dict[str, int] = defaultdict(int)
    movements: dict[tuple[str, str], int] = defaultdict(int)
    for day, account, dr, cr, _dealer in lines:
        balances[account] += dr - cr
        movements[(month_of(day), account)] += dr - cr
    tb = trial_balance(CHART, balances, on)
    assert tb.balanced and tb.total_debit == sum(max(b, 0) for b in balances.values())
    months = months_between("2026-01", month_of(on))
    statement = income_statement(CHART, movements, months)
    # reference: each line walked, income credit-positive, expenses debit-positive, by month
    ref: dict[str, Decimal] = defaultdict(Decimal)
    for day, account, dr, cr, _dealer in lines:
        if account.startswith(("Income:", "Expenses:")):  # net income: what they were credited less debited
            ref[month_of(day)] += Decimal(cr - dr) / 100
    assert [Decimal(yuan(n)) for n in statement.net] == [ref[m] for m in months]
    # the tie: the months' net income is what the income and expense accounts hold at the date (credit-positive)
    assert statement.net_total == -sum(line.balance for line in tb.lines
                                       if line.account.startswith(("Income:", "Expenses:")))
    assert {line.account for line in statement.income} >= {"Income:Lease:Interest", "Income:Other:Fees"}
    assert "Expenses:Finance:ProcessorFees" in {line.account for line in statement.expenses}


def test_the_trial_balance_puts_each_balance_in_its_column_in_the_chart_s_order() -> None:
    tb = trial_balance(CHART, {"Income:Lease:Interest": -1050, "Assets:Bank:Collections": 1050,
                               "Assets:LeaseReceivable:Payments": 0}, date(2026, 3, 31))
    assert [(li.account, li.debit, li.credit) for li in tb.lines] == [
        ("Assets:Bank:Collections", 1050, 0), ("Assets:LeaseReceivable:Payments", 0, 0),
        ("Income:Lease:Interest", 0, 1050)]
    assert tb.lines[0].zh == "银行存款—收款账户" and tb.lines[0].code == "1002.01"
    assert tb.balanced and tb.balance("Income:Lease:Interest") == -1050 and tb.balance("Nowhere") == 0


def test_ageing_buckets_at_their_edges() -> None:
    assert [bucket_of(d) for d in (-3, 0, 1, 30, 31, 60, 61, 90, 91, 4000)] == [
        "current", "current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+", "90+"]


def test_ageing_by_bucket_and_dealer_with_the_ledger_beside_it() -> None:
    items = [Outstanding("l1", "d1", 0, 100_00), Outstanding("l1", "d1", 0, 100_00), Outstanding("l1", "d1", 45, 1),
             Outstanding("l2", "d2", 91, 250_00), Outstanding("l2", "d2", 12, 5), Outstanding("l3", "d2", 0, 0)]
    report = ageing(items, date(2026, 3, 31), ledger=450_06)
    # reference: by hand
    assert report.total.buckets == (200_00, 5, 1, 0, 250_00)
    assert [(d.key, d.buckets, d.leases) for d in report.dealers] == [
        ("d1", (200_00, 0, 1, 0, 0), 1), ("d2", (0, 5, 0, 0, 250_00), 1)]
    assert report.total.leases == 2 and report.total.total == 450_06 and report.difference == 0
    assert len(report.total.buckets) == len(BUCKETS)


def test_vat_by_month_and_rate_and_input_beside_it() -> None:
    moves = [VatMovement("2026-01", VAT_OUTPUT, Decimal("0.13"), 1300), VatMovement("2026-01", VAT_OUTPUT, None, 7),
             VatMovement("2026-01", VAT_OUTPUT, Decimal("0.06"), 60), VatMovement("2026-02", VAT_OUTPUT,
                                                                                Decimal("0.13"), -13),
             VatMovement("2026-01", VAT_INPUT, None, 500), VatMovement("2025-12", VAT_OUTPUT, Decimal("0.13"), 99)]
    summary = vat_summary(moves, ("2026-01", "2026-02", "2026-03"))
    assert [(m.month, m.output, m.input, m.payable) for m in summary.months] == [
        ("2026-01", 1367, 500, 867), ("2026-02", -13, 0, -13), ("2026-03", 0, 0, 0)]
    assert [(r.month, r.rate, r.output) for r in summary.by_rate] == [
        ("2026-01", Decimal("0.06"), 60), ("2026-01", Decimal("0.13"), 1300), ("2026-01", None, 7),
        ("2026-02", Decimal("0.13"), -13)]
    assert summary.output == 1354 and summary.input == 500


def test_vat_by_rate_carries_the_taxable_amount_its_entries_tell() -> None:
    """销售额 beside 销项税额: each line's taxable amount where its entry tells it (a refund's negative), summed by
    month and rate; the tax of lines that tell none is counted apart, never turned into an amount."""
    moves = [VatMovement("2026-01", VAT_OUTPUT, Decimal("0.13"), 1300, 10_000),
             VatMovement("2026-01", VAT_OUTPUT, Decimal("0.13"), -1300, -10_000),
             VatMovement("2026-01", VAT_OUTPUT, Decimal("0.13"), 40_265, 309_735),
             VatMovement("2026-01", VAT_OUTPUT, Decimal("0.13"), 1001),
             VatMovement("2026-01", VAT_OUTPUT, None, 7)]
    rows = {(r.month, r.rate): (r.base, r.output, r.untold) for r in vat_summary(moves, ("2026-01",)).by_rate}
    assert rows == {("2026-01", Decimal("0.13")): (309_735, 41_266, 1001), ("2026-01", None): (0, 7, 7)}


def test_a_dealer_s_statement_runs_from_its_opening_to_its_closing_balance() -> None:
    dealers, fees = "Liabilities:Payable:Dealers", "Income:Other:Fees"
    lines = [
        DealerLine(date(2026, 1, 10), date(2026, 1, 10), "lease:a:commenced", "lease_commenced", "LL-A", dealers, 0,
                   160_000_00),
        DealerLine(date(2026, 1, 8), date(2026, 1, 8), "payment:p:captured", "upfront_captured", "LL-A", dealers, 0,
                   40_000_00),
        DealerLine(date(2026, 1, 8), date(2026, 1, 8), "payment:p:captured", "upfront_captured", "LL-A", fees, 0,
                   1_000_00),
        DealerLine(date(2026, 2, 3), date(2026, 2, 3), "transfer:p", "dealer_share_paid", "LL-A", dealers,
                   40_000_00, 0),
        DealerLine(date(2026, 2, 1), date(2026, 1, 30), "dealer_funding:a", "dealer_funded", "LL-A", dealers,
                   160_000_00, 0),
        DealerLine(date(2026, 2, 5), date(2026, 2, 5), "lease:b:commenced", "lease_commenced", "LL-B", dealers, 0,
                   90_000_00),
        DealerLine(date(2026, 2, 5), date(2026, 2, 5), "payment:q:captured", "upfront_captured", "LL-B", fees, 0,
                   500_00),
        DealerLine(date(2026, 3, 1), date(2026, 3, 1), "lease:c:commenced", "lease_commenced", "LL-C", dealers, 0,
                   1),  # after the statement's end: not in it
    ]
    statement = dealer_statement("d1", lines, date(2026, 2, 1), date(2026, 2, 28))
    assert statement.opening == 200_000_00  # January's: the car's price and the down payment owed
    assert [(m.booked_on, m.move, m.amount, m.balance) for m in statement.moves] == [
        (date(2026, 2, 1), "car_paid", -160_000_00, 40_000_00),
        (date(2026, 2, 3), "share_transferred", -40_000_00, 0),
        (date(2026, 2, 5), "car_financed", 90_000_00, 90_000_00)]
    assert statement.closing == 90_000_00 == statement.moves[-1].balance
    assert statement.fees == 500_00  # February's fees only (January's 1,000.00 is before the period)
    assert [(le.reference, dict(le.moves), le.fees, le.balance) for le in statement.leases] == [
        ("LL-A", {"car_paid": -160_000_00, "share_transferred": -40_000_00}, 0, 0),
        ("LL-B", {"car_financed": 90_000_00}, 500_00, 90_000_00)]
    # reference: the payable's lines through the end, credit-positive, by hand
    assert statement.closing == sum(li.credit - li.debit for li in lines
                                    if li.account == dealers and li.booked_on <= date(2026, 2, 28))
    assert statement.total("car_financed") == 90_000_00 and statement.total("other") == 0


def test_a_vat_line_s_rate_is_the_one_that_gives_its_tax_exactly() -> None:
    rent = 3_500_00
    # and the taxable amount it was found on: the gross less its tax, or the net base itself
    assert identify(40_265, gross=[rent]) == (Decimal("0.13"), rent - 40_265)
    assert identify(1_300, gross=[7], net=[10_000]) == (Decimal("0.13"), 10_000)
    assert identify(566, gross=[10_000]) == (Decimal("0.06"), 10_000 - 566) and identify(40_266, gross=[rent]) is None
    assert identify_rate(40_265, gross=[rent]) == Decimal("0.13")  # 350,000 × 0.13 / 1.13 = 40,265.49 → 40,265
    assert identify_rate(40_266, gross=[rent]) is None  # a fen off: no rate gives it, none is guessed
    assert identify_rate(566, gross=[10_000]) == Decimal("0.06")  # a leaseback rent's interest: 10,000 × 6/106
    assert identify_rate(1_300, net=[10_000]) == Decimal("0.13")  # income credited without the tax beside it
    assert identify_rate(0, gross=[rent]) is None and identify_rate(5, gross=[]) is None
    for fen in (1, 99, 1_234_567, 98_765_432_1):  # against Decimal by hand, both ways round
        for rate in ("0.13", "0.09", "0.06"):
            r = Decimal(rate)
            tax = int((Decimal(fen) * r / (1 + r)).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
            found = identify_rate(tax, gross=[fen])
            assert found is not None and int((Decimal(fen) * found / (1 + found)).quantize(
                Decimal(1), rounding="ROUND_HALF_UP")) == tax or tax == 0
