"""``leaseline settlement-quote`` (issue 18 §9), run through click's CliRunner: the figures of ``leaseline quote``
plus --paid, --days, --fee-rate; the outstanding principal exactly as ``quote --json`` shows the balance, the accrued
interest and the fee recomputed here in integers; bad input exits 2 with one line."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from click.testing import Result

from leaseline.cli import main

BASE = ["--price", "200000", "--down-ratio", "0.2", "--term", "36", "--rate", "0.0599", "--residual-ratio", "0.3",
        "--deposit-ratio", "0.05"]
KEYS = ("outstanding_principal", "accrued_interest", "early_settlement_fee", "deposit_offset", "amount_due")
MONEY = re.compile(r"^-?\d+\.\d{2}$")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def as_json(command: str, *args: str) -> dict[str, Any]:
    result = run(command, *BASE, *args, "--json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


@pytest.mark.parametrize(("paid", "days", "fee_rate"), [("0", "0", None), ("12", "15", None), ("35", "30", "0"),
                                                         ("36", "30", "0.05"), ("1", "7", "0.0125")])
def test_the_figures_follow_quote_s_schedule(paid: str, days: str, fee_rate: str | None) -> None:
    schedule = as_json("quote")["schedule"]
    extra = ["--paid", paid, "--days", days, *(["--fee-rate", fee_rate] if fee_rate else [])]
    s = as_json("settlement-quote", *extra)
    assert all(MONEY.match(s[key]) for key in KEYS), s
    k = int(paid)
    # the balance quote prints after row K (K = 0: the financed amount, 160,000.00)
    assert s["outstanding_principal"] == (schedule[k - 1]["balance"] if k else "160000.00")
    balance = int(Decimal(s["outstanding_principal"]) * 100)
    # balance × 5.99 % × D / 360, half-up to the fen, in integers
    assert int(Decimal(s["accrued_interest"]) * 100) == half_up(balance * 599 * int(days), 360 * 10_000)
    rate = Decimal(fee_rate if fee_rate is not None else "0.03")
    expected_fee = 0 if k == 36 else half_up(balance * int(rate * 10_000), 10_000)  # none at the term
    assert int(Decimal(s["early_settlement_fee"]) * 100) == expected_fee
    assert s["deposit_offset"] == "10000.00"
    assert Decimal(s["amount_due"]) == sum(Decimal(s[key]) for key in KEYS[:3]) - Decimal("10000.00")
    assert s["rents_paid"] == k and s["days"] == int(days) and s["day_count"] == "ACT/360"


def test_at_the_term_a_large_deposit_is_refunded() -> None:
    # after the 36th rent the balloon (60,000.00) remains; a 50 % deposit (100,000.00) exceeds it
    args = [*BASE[:-1], "0.5", "--paid", "36", "--days", "0", "--json"]
    result = run("settlement-quote", *args)
    s = json.loads(result.stdout)
    assert (s["outstanding_principal"], s["early_settlement_fee"], s["amount_due"]) == (
        "60000.00", "0.00", "-40000.00")
    text = run("settlement-quote", *args[:-1]).stdout
    assert "Refund due" in text and "40,000.00" in text and "Deposit offset" in text


@pytest.mark.parametrize(("args", "words"), [
    (["--paid", "37"], ["paid", "between 0 and 36"]),
    (["--paid", "-1"], ["paid"]),
    (["--paid", "1.5"], ["paid", "whole number"]),
    (["--paid", "x"], ["paid"]),
    ([], ["paid", "required"]),
    (["--paid", "1", "--days", "31"], ["days", "between 0 and 30"]),
    (["--paid", "1", "--days", "-1"], ["days"]),
    (["--paid", "1", "--fee-rate", "0.2"], ["fee_rate", "10%"]),
    (["--paid", "1", "--fee-rate", "-0.01"], ["fee_rate"]),
    (["--paid", "1", "--fee-rate", "abc"], ["fee_rate"]),
    (["--paid", "1", "--timing", "sometimes"], ["timing"]),
    (["--paid", "1", "--rate", "abc"], ["rate"]),
])
def test_bad_input_exits_2_with_one_line(args: list[str], words: list[str]) -> None:
    base = list(BASE)
    if "--rate" in args:  # the bad rate replaces the good one
        del base[base.index("--rate"):base.index("--rate") + 2]
    result = run("settlement-quote", *base, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_missing_figures_are_named_on_one_line() -> None:
    result = run("settlement-quote", "--paid", "1")
    assert result.exit_code == 2
    line, = result.stderr.strip().splitlines()
    assert "price" in line and "term" in line and "rate" in line


def test_counts_are_said_in_the_singular_for_one() -> None:
    """`leaseline servicing close` printed "1 leases" (walk-through 13)."""
    from leaseline.servicing_cli import counted

    assert [counted(n, "lease") for n in (0, 1, 2)] == ["0 leases", "1 lease", "2 leases"]
    assert counted(1, "rent") == "1 rent" and counted(3, "rent") == "3 rents"
