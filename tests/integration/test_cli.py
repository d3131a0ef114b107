"""The ``leaseline`` command line, run as a real subprocess (``python -m leaseline``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import ROUND_HALF_UP
from decimal import Decimal
from decimal import localcontext
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
MONEY = re.compile(r"^-?\d+\.\d{2}$")
RATE = re.compile(r"^-?\d+\.\d{6}$")
BASE = ["--price", "200000", "--down-ratio", "0.2", "--term", "36", "--rate", "0.0599"]
QUOTE_KEYS = {"monthly_payment", "financed_amount", "apr", "effective_annual_rate", "total_payable", "cash_flows",
              "schedule"}


def leaseline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leaseline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, check=False)


def assert_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit code 2, nothing on stdout, one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def quote_json(*extra: str) -> dict[str, Any]:
    result = leaseline("quote", *BASE, *extra, "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout.strip()
    assert len(out.splitlines()) == 1, "one JSON object on one line"
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_quote_json_matches_an_independent_annuity() -> None:
    q = quote_json()
    assert set(q) >= QUOTE_KEYS
    with localcontext() as ctx:
        ctx.prec = 60
        r = Decimal("0.0599") / 12
        pmt = (Decimal(160000) * r / (1 - (1 + r) ** -36)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        ear = ((1 + r) ** 12 - 1).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert q["monthly_payment"] == f"{pmt}" == "4866.79"
    assert q["financed_amount"] == "160000.00"
    assert q["apr"] == "0.059900"
    assert q["effective_annual_rate"] == f"{ear}"
    flows = q["cash_flows"]
    assert [f["period"] for f in flows] == list(range(37))
    assert flows[0] == {"period": 0, "amount": "160000.00"}
    schedule = q["schedule"]
    assert [row["period"] for row in schedule] == list(range(1, 37))
    for row in schedule:
        assert set(row) == {"period", "payment", "interest", "principal", "balance"}
        assert all(MONEY.match(row[k]) for k in ("payment", "interest", "principal", "balance")), row
    assert sum(Decimal(row["principal"]) for row in schedule) == Decimal("160000.00")
    assert Decimal(q["total_payable"]) == Decimal("40000") + sum(Decimal(row["payment"]) for row in schedule)
    for key in ("monthly_payment", "financed_amount", "total_payable"):
        assert MONEY.match(q[key]), (key, q[key])
    for key in ("apr", "effective_annual_rate"):
        assert RATE.match(q[key]), (key, q[key])
    assert all(MONEY.match(f["amount"]) for f in flows)


def test_quote_json_with_every_option() -> None:
    q = quote_json("--residual-ratio", "0.3", "--timing", "advance", "--fee-upfront", "1000", "--fee-financed",
                   "500", "--insurance-financed", "4000", "--deposit-ratio", "0.05")
    assert set(q) >= QUOTE_KEYS
    assert q["financed_amount"] == "164500.00"  # 160000 + financed fee + financed premium
    assert Decimal(q["apr"]) > Decimal("0.0599"), "fees and a deposit raise the APR"
    assert RATE.match(q["apr"]) and RATE.match(q["effective_annual_rate"])
    schedule = q["schedule"]
    assert len(schedule) == 36
    assert schedule[-1]["balance"] == "60000.00"  # the residual, 30% of the price
    assert sum(Decimal(r["principal"]) for r in schedule) + Decimal("60000.00") == Decimal(q["financed_amount"])
    flows = q["cash_flows"]
    assert flows[0]["period"] == 0
    # Advance: the first rent is paid at signing, together with the upfront fee and the deposit.
    first_rent = Decimal(schedule[0]["payment"])
    assert Decimal(flows[0]["amount"]) == Decimal("160000") + Decimal("4000") - Decimal("1000") - Decimal(
        "10000") - first_rent


def test_quote_human_output() -> None:
    result = leaseline("quote", *BASE)
    assert result.returncode == 0, result.stderr
    assert "4866.79" in result.stdout and "160000.00" in result.stdout
    assert result.stderr == ""


def test_help() -> None:
    result = leaseline("--help")
    assert result.returncode == 0 and "quote" in result.stdout and "plans" in result.stdout
    assert leaseline("quote", "--help").returncode == 0


@pytest.mark.parametrize(
    ("override", "words"),
    [
        (["--price", "0"], ("price",)),
        (["--price", "-5"], ("price",)),
        (["--price", "abc"], ("price",)),
        (["--price", "NaN"], ("price",)),
        (["--price", "1e30"], ("price",)),
        (["--term", "7"], ("term",)),
        (["--term", "61"], ("term",)),
        (["--term", "abc"], ("term",)),
        (["--rate", "-1"], ("rate",)),
        (["--rate", "5"], ("rate",)),
        (["--rate", "Infinity"], ("rate",)),
        (["--residual-ratio", "0.99"], ("residual",)),
        (["--down-ratio", "1.5"], ("down",)),
        (["--timing", "sometimes"], ("timing",)),
        (["--deposit-ratio", "0.9"], ("deposit",)),
        (["--fee-upfront", "abc"], ("fee_upfront",)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_quote_bad_arguments_exit_2_with_one_line(override: list[str], words: tuple[str, ...]) -> None:
    args = dict(zip(BASE[::2], BASE[1::2], strict=True))
    args.update(dict(zip(override[::2], override[1::2], strict=True)))
    flat = [x for pair in args.items() for x in pair]
    assert_usage_error(leaseline("quote", *flat, "--json"), *words)


def test_quote_reports_every_bad_argument_on_one_line() -> None:
    line = assert_usage_error(leaseline("quote", "--price", "abc", "--term", "7", "--rate", "-1"))
    assert "price" in line and "term" in line and "rate" in line


# --- plans: needs the database ---------------------------------------------------------------------------------


@pytest.fixture
def db_env(db_url: str, app: Flask) -> dict[str, str]:
    """The test database (migrated, with the demo catalogue loaded by ``app``) for the CLI."""
    return {"LEASELINE_DATABASE_URL": db_url}


@pytest.mark.db
def test_plans_within_budget(db_env: dict[str, str]) -> None:
    result = leaseline("plans", "--vehicle", "byd-han-ev", "--budget", "3000", "--json", env=db_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    plans = data["plans"] if isinstance(data, dict) else data
    assert plans, "some plans fit ¥3,000 a month"
    assert all(Decimal(p["monthly_payment"]) <= 3000 for p in plans)
    assert all(MONEY.match(p["monthly_payment"]) for p in plans)
    rents = [Decimal(p["monthly_payment"]) for p in plans]
    assert rents == sorted(rents), "sorted by rent by default"
    if isinstance(data, dict):
        assert data["evaluated"] == 3888 and data["matched"] >= len(plans)


@pytest.mark.db
def test_plans_agree_with_the_api(db_env: dict[str, str], bff_server: Any) -> None:
    cli = leaseline("plans", "--vehicle", "byd-han-ev", "--budget", "3000", "--sort", "apr", "--limit", "10",
                    "--json", env=db_env)
    assert cli.returncode == 0, cli.stderr
    api = requests.post(f"{bff_server.url}/api/v1/plans/search", timeout=30,
                        json={"vehicle_id": "byd-han-ev", "budget": "3000", "sort": "apr", "limit": 10}).json()
    assert json.loads(cli.stdout)["plans"] == api["plans"]


@pytest.mark.db
def test_cli_quote_agrees_with_the_api(bff_server: Any) -> None:
    cli = quote_json("--residual-ratio", "0.2", "--fee-upfront", "800")
    api = requests.post(f"{bff_server.url}/api/v1/quotes", timeout=30, json={
        "price": "200000", "down_ratio": "0.2", "term": 36, "rate": "0.0599", "residual_ratio": "0.2",
        "fee_upfront": "800"}).json()
    assert cli == api


@pytest.mark.db
def test_plans_unknown_vehicle_exits_2(db_env: dict[str, str]) -> None:
    assert_usage_error(leaseline("plans", "--vehicle", "no-such-car", "--budget", "3000", "--json", env=db_env),
                       "no-such-car")


@pytest.mark.db
@pytest.mark.parametrize(
    "budget",
    [
        "abc",
        "-1",
        "0",
        "NaN",
        "1e50",
    ],
)
def test_plans_bad_budget_exits_2(db_env: dict[str, str], budget: str) -> None:
    assert_usage_error(leaseline("plans", "--vehicle", "byd-han-ev", "--budget", budget, "--json", env=db_env),
                       "budget")


def test_the_contract_service_refuses_to_start_without_poppler(tmp_path: Any) -> None:
    """Without pdftoppm and pdftotext every page image and every reading copy would fail after the start: the
    service says so before it listens (an empty PATH hides them)."""
    result = leaseline("serve", "contract", "--port", "1", env={"PATH": str(tmp_path)})
    assert_usage_error(result, "pdftoppm", "poppler-utils")
