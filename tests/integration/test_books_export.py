"""The ledger checked by an independent tool (issue 19 §5): entries posted with infra.books.post into PostgreSQL,
exported by ``leaseline books export --format beancount`` and read by ``bean-check`` (the beancount package's own
checker, in a subprocess) — it passes; a sub-ledger that disagrees with the journal by one fen makes it fail; and
``leaseline books trial-balance --date D --json`` equals the balances beancount's own Python API computes from the
file at D.

The module has a database of its own (migrated, emptied of nothing): the export is of the whole journal, and the
suite's shared database holds the entries other modules post."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data
from click.testing import CliRunner
from click.testing import Result
from sqlalchemy import Connection

from books.beancount import assertion_days
from books.chart import load_chart
from books.entries import Entry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from infra.books import post
from infra.books import reverse
from infra.books_export import SubLedger
from infra.books_export import default_subledgers
from infra.books_export import export
from infra.books_export import snapshot
from infra.db.engine import Database
from infra.db.models import LedgerPeriodRow
from leaseline.cli import main
from tests.conftest import postgres_database

pytestmark = pytest.mark.db
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
PAYMENTS, UNEARNED = "Assets:LeaseReceivable:Payments", "Assets:LeaseReceivable:Unearned"
DEALERS, BANK, STRIPE = "Liabilities:Payable:Dealers", "Assets:Bank:Collections", "Assets:Clearing:Stripe"
INTEREST, FEES, DEPOSITS = "Income:Lease:Interest", "Income:Other:Fees", "Liabilities:Deposits:Lessees"
BEAN_CHECK = Path(sys.executable).with_name("bean-check")
#: the little lease's schedule: three rents of 1,000.03 (principal 2,700.00, interest 300.09), due 10-14, 11-14, 12-14
RENTS = [(date(2026, 10, 14), 100_003), (date(2026, 11, 14), 100_003), (date(2026, 12, 14), 100_003)]
INCOME = {date(2026, 9, 30): 5_212, date(2026, 10, 31): 12_345, date(2026, 11, 30): 9_876}  # Σ 27,433 recognised


def made(key: str, kind: str, on: date, lines: list, memo: str = "") -> Entry:
    found = entry(key, kind, on, lines, memo, dealer_id="D-export")  # no lease row: its lines name no lease
    assert found is not None
    return found


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A migrated database of the module's own, holding the little lease's entries: commenced 2026-09-14, the
    dealer paid, the deposit and a fee taken through Stripe, two rents collected, finance income for three months, a
    wrong receipt reversed, and a receipt dated in October posted after October was closed (booked 11-01)."""
    from infra.db.migrate import upgrade

    for found in postgres_database("leaseline_books_export"):
        upgrade(found)
        database = Database(found)
        with database.session() as session:
            post(session, [
                made("lease:L-export:commenced", "lease_commenced", date(2026, 9, 14),
                     [debit(PAYMENTS, 300_009), credit(UNEARNED, 30_009), credit(DEALERS, 270_000)], "SYN-000001"),
                made("payment:p1:captured", "upfront_captured", date(2026, 9, 14),
                     [debit(STRIPE, 65_000), credit(DEPOSITS, 50_000), credit(FEES, 15_000)], "deposit and fee"),
                made("transfer:p1", "dealer_transfer", date(2026, 9, 15), [debit(DEALERS, 270_000),
                                                                           credit(BANK, 270_000)]),
                made("receipt:r1", "receipt", RENTS[0][0], [debit(BANK, RENTS[0][1]), credit(PAYMENTS, RENTS[0][1])]),
                made("receipt:wrong", "receipt", date(2026, 10, 20), [debit(BANK, 777), credit(PAYMENTS, 777)]),
                *[made(f"income:L-export:{day:%Y-%m}", "finance_income", day,
                       [debit(UNEARNED, fen), credit(INTEREST, fen)]) for day, fen in INCOME.items()],
            ], NOW)
            reverse(session, "receipt:wrong", "receipt:wrong:reversed", date(2026, 10, 21), "not this lease", NOW)
            session.add(LedgerPeriodRow(month=date(2026, 10, 1), closed_at=NOW, closed_by="ops-1", approved_by="ops-2"))
        with database.session() as session:  # the second rent, paid 10-30 but posted once October was closed
            post(session, [made("receipt:r2", "receipt", date(2026, 10, 30),
                                [debit(BANK, RENTS[1][1]), credit(PAYMENTS, RENTS[1][1])])], NOW)
        database.dispose()
        yield found


def schedule(payments_paid: Sequence[tuple[date, int]], income: dict[date, int]) -> SubLedger:
    """The lease's receivable and unearned income at the start of each day, from its schedule (rents, interest) and
    what was paid and recognised by then — not from the journal."""

    def balances(_conn: Connection, days: Sequence[date]) -> dict[date, dict[str, int]]:
        answer = {}
        for day in days:
            started = day > date(2026, 9, 14)
            paid = sum(fen for on, fen in payments_paid if on < day)
            recognised = sum(fen for on, fen in income.items() if on < day)
            answer[day] = {PAYMENTS: (sum(fen for _on, fen in RENTS) - paid) if started else 0,
                           UNEARNED: -(30_009 - recognised) if started else 0}
        return answer

    return SubLedger("schedule", (PAYMENTS, UNEARNED), balances)


def cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["books", *args], env={"LEASELINE_DATABASE_URL": url}, catch_exceptions=False)


def bean_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True, timeout=60, check=False)


def test_bean_check_passes_the_export_and_fails_a_ledger_a_fen_off_its_subledger(url: str, tmp_path: Path) -> None:
    target = tmp_path / "books.beancount"
    result = cli(url, "export", "--format", "beancount", "--to", str(target), "--through", "2026-12-07")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "10 entries" in result.output  # 9 posted and a reversal
    checked = bean_check(target)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = target.read_text()
    assert '2026-11-01 * "receipt"' in text and "value_date: 2026-10-30" in text  # late: booked after the close
    assert '2026-10-21 * "receipt: not this lease"\n  key: "receipt:wrong:reversed"' in text
    assert 'reverses: "receipt:wrong"' in text
    assert "2026-12-01 balance Liabilities:Payable:Dealers  0.00 ~ 0.00 CNY" in text
    assert "2026-11-01 balance Income:Lease:Interest  -175.57 ~ 0.00 CNY" in text  # 52.12 + 123.45
    assert "2026-12-01 balance Income:Lease:Interest  -274.33 ~ 0.00 CNY" in text  # and 98.76 on 11-30
    lines = text.splitlines()
    directives = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d balance ", line)]
    assert len(directives) == 3 * len(load_chart().accounts)  # 10-01, 11-01, 12-01
    covered = sum(len(ledger.accounts) for ledger in default_subledgers())  # the leases' schedules
    # the receivable, the unearned income and the VAT pending; no lease here: the journal's figure, all the same
    assert covered == 3 and 'source: "lease schedules"' in text
    assert len([line for line in lines if "the journal's own balance" in line]) == len(directives) - 3 * covered

    # the sub-ledgers asserted instead of the journal: the schedule agrees … (the second rent counts from the day it
    # was booked, 11-01: paid on 10-30 into a closed October, the books carry it in November)
    paid = [(date(2026, 10, 14), RENTS[0][1]), (date(2026, 11, 1), RENTS[1][1])]
    database = Database(url)
    with snapshot(database) as conn, (tmp_path / "ok.beancount").open("w") as out:
        done = export(conn, out, date(2026, 12, 7), subledgers=[schedule(paid, INCOME)])
    accounts = len(load_chart().accounts)
    assert (done.entries, done.assertions, done.from_journal) == (10, 3 * accounts, 3 * (accounts - 2))
    checked = bean_check(tmp_path / "ok.beancount")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'source: "schedule"' in (tmp_path / "ok.beancount").read_text()

    # … and a schedule whose October income is one fen more than the journal recognised fails bean-check
    off = dict(INCOME) | {date(2026, 10, 31): INCOME[date(2026, 10, 31)] + 1}
    with snapshot(database) as conn, (tmp_path / "off.beancount").open("w") as out:
        export(conn, out, date(2026, 12, 7), subledgers=[schedule(paid, off)])
    database.dispose()
    checked = bean_check(tmp_path / "off.beancount")
    assert checked.returncode == 1
    assert "Balance failed for 'Assets:LeaseReceivable:Unearned'" in checked.stdout + checked.stderr
    assert "0.01" in checked.stdout + checked.stderr


def beancount_balances(path: Path, on: date) -> dict[str, Decimal]:
    """Each account's balance at the end of ``on`` as beancount computes it from the file (its loader, then the
    postings of the transactions dated through ``on``)."""
    entries, errors, _options = loader.load_file(str(path))
    assert errors == []
    sums: dict[str, Decimal] = {}
    for item in entries:
        if isinstance(item, data.Transaction) and item.date <= on:
            for posting in item.postings:
                assert posting.units.currency == "CNY"
                sums[posting.account] = sums.get(posting.account, Decimal(0)) + posting.units.number
    return sums


@pytest.mark.parametrize("on", [date(2026, 9, 14), date(2026, 10, 31), date(2026, 11, 1), date(2026, 12, 7)])
def test_the_trial_balance_equals_beancounts_balances(url: str, tmp_path: Path, on: date) -> None:
    target, summary = tmp_path / "books.beancount", tmp_path / "summary.beancount"
    assert cli(url, "export", "--to", str(target), "--through", on.isoformat()).exit_code == 0
    assert cli(url, "export", "--to", str(summary), "--summary", "--through", on.isoformat()).exit_code == 0
    result = cli(url, "trial-balance", "--date", on.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"accounts", "total_debit", "total_credit"}
    ours = {row["account"]: row for row in report["accounts"]}
    theirs = beancount_balances(target, on)
    assert {name: Decimal(row["balance"]) for name, row in ours.items()} == theirs
    assert {k: v for k, v in beancount_balances(summary, on).items() if v} == {k: v for k, v in theirs.items() if v}
    for row in report["accounts"]:
        assert set(row) == {"account", "debit", "credit", "balance"}
        fen = Decimal(row["balance"])
        assert (Decimal(row["debit"]), Decimal(row["credit"])) == (max(fen, Decimal(0)), max(-fen, Decimal(0)))
        assert all(len(row[k].rpartition(".")[2]) == 2 for k in ("debit", "credit", "balance"))
    assert report["total_debit"] == report["total_credit"] == str(sum(max(v, Decimal(0)) for v in theirs.values()))


def test_bad_input_is_one_line(url: str, tmp_path: Path) -> None:
    result = cli(url, "trial-balance", "--date", "2026-13-01")
    assert result.exit_code == 2 and "not a date" in result.output
    result = cli(url, "export", "--to", str(tmp_path / "missing" / "books.beancount"))
    assert result.exit_code == 2 and "--to" in result.output
    for target in ("", str(tmp_path / "nodir") + "/"):  # no file name: refused, nothing written
        result = cli(url, "export", f"--to={target}")
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "--to" in result.output, result.output
    assert list(tmp_path.iterdir()) == []
    for late in ("9999-12-31", "2999-01-31"):  # a month not ended yet has no balance to assert
        result = cli(url, "export", "--to", str(tmp_path / "late.beancount"), "--through", late)
        assert result.exit_code == 2 and "--through" in result.output and "business date" in result.output, \
            result.output
    (tmp_path / "file").write_text("")
    for target in (str(tmp_path / "file" / "books.beancount"), "/dev/null"):  # under a file; not a regular file
        result = cli(url, "export", "--to", target)
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "--to" in result.output, result.output
    (tmp_path / "file").unlink()
    for option in ("trial-balance", "reconcile"):
        result = cli(url, option, "--date", "9999-12-31")
        assert result.exit_code == 2 and "--date" in result.output, result.output
    result = cli(url, "income", "--month", "2026-11", "--lease", "no-such-lease")
    assert result.exit_code == 2 and "no-such-lease" in result.output and "0 leases" not in result.output


def test_the_last_month_of_the_calendar_has_no_assertion_day() -> None:
    assert assertion_days(date(9999, 11, 5), date.max) == [date(9999, 12, 1)]  # 10000-01-01 cannot be written


def test_the_leases_schedules_are_asserted_and_catch_a_posting_out_of_line(tmp_path: Path) -> None:
    """The receivable, the unearned income and the VAT pending are asserted at what two real leases' instalments say
    (the lease sub-ledger, infra/books_reconcile.py); a stray receipt on one of them fails bean-check, and
    ``leaseline books reconcile`` names it (exit 1)."""
    from infra.db.migrate import upgrade
    from infra.db.models import DealerGroupRow
    from infra.db.models import DealerRow
    from infra.servicing import SqlServicing
    from infra.vat_points import post_tax_points
    from tests.integration.test_servicing_close import DEALER
    from tests.integration.test_servicing_close import open_lease
    from tests.integration.test_servicing_close import record

    for url in postgres_database("leaseline_books_export_leases"):
        upgrade(url)
        database = Database(url)
        with database.session() as session:
            session.add(DealerGroupRow(id="g-export", name="export group"))
            session.flush()
            session.add(DealerRow(id=DEALER, group_id="g-export", name="export dealer", city="上海"))
        leases = [open_lease(SqlServicing(database), record(start, residual_ratio="0.2", timing="advance"))
                  for start in (date(2026, 1, 10), date(2026, 3, 5))]
        assert all(leases)
        with database.session() as session:  # the tax points the closes through 30 June post (this test runs none)
            assert post_tax_points(session, date(2026, 6, 30), [str(lease) for lease in leases], NOW) > 0

        def exported(name: str, database: Database = database) -> subprocess.CompletedProcess[str]:
            with snapshot(database) as conn, (tmp_path / name).open("w") as out:
                done = export(conn, out, date(2026, 6, 30))
            assert done.assertions - done.from_journal == 3 * 6  # three accounts, 02-01 … 07-01
            return bean_check(tmp_path / name)

        try:
            checked = exported("leases.beancount")
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert 'source: "lease schedules"' in (tmp_path / "leases.beancount").read_text()
            result = cli(url, "reconcile", "--date", "2026-06-30")
            assert result.exit_code == 0 and "no difference" in result.output
            with database.session() as session:
                post(session, [made("stray:1", "receipt", date(2026, 4, 2), [debit(BANK, 12_345),
                                                                              credit(PAYMENTS, 12_345)])], NOW)
                post(session, [entry("stray:2", "receipt", date(2026, 4, 3), [debit(BANK, 100),
                                                                               credit(PAYMENTS, 100)],
                                     lease_id=leases[0])], NOW)
            checked = exported("stray.beancount")
            result = cli(url, "reconcile", "--date", "2026-06-30", "--json")
            assert result.exit_code == 1
            found = json.loads(result.output)["differences"]
            assert [(d["lease_id"], d["account"], d["difference"]) for d in found] == [(leases[0], PAYMENTS, "-1.00")]
        finally:
            database.dispose()
        assert checked.returncode == 1
        # the stray receipt of no lease moves the journal and the assertion alike; the lease's own is caught
        said = checked.stdout + checked.stderr
        assert "Balance failed for 'Assets:LeaseReceivable:Payments'" in said
        assert "(1.00 too little)" in said and "123.45" not in said
