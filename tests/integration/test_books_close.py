"""The books on the ops desk over HTTP (issue 19 §4), on a database of its own (closing a month there moves every later
posting dated in it): two leases of the Pudong dealer and one of Xihu in January 2026, a rent paid, January's finance
income, a down payment captured and its share transferred, a rent's output VAT; the business date 5 March 2026.

- the reports — trial balance, income statement, ageing, VAT, dealer balances and statements — as pages, CSV and XLSX:
  the downloads hold the page's figures, and each report ties to the trial balance at its date;
- a dealer's admin sees their own dealer's statement only;
- the month close with four eyes: the requester's own approval refused (403, audited, nothing closed), a second ops
  user's approval locks the month; a late event is then booked on 1 February with its January date; a month with a
  blocker (a lease out of line with its schedule, a month not ended, an earlier month open) is refused with what
  blocks it."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import text

from books.accounts import BANK
from books.accounts import DEALERS
from books.accounts import RECEIVABLE
from books.chart import load_chart
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.lease import DIRECT
from books.origination import UpfrontParts
from books.origination import captured
from books.origination import dealer_share_paid
from books.origination import refunded
from books.reports import VAT_OUTPUT
from books.vat import load_tax_policy
from infra.books import post
from infra.books import reverse
from infra.collections import SqlCollections
from infra.db.models import ApplicationRow
from infra.db.models import AuditEventRow
from infra.db.models import InstalmentRow
from infra.db.models import JournalEntryRow
from infra.db.models import LedgerPeriodRow
from infra.finance_income import TASK as INCOME_TASK
from infra.finance_income import defer_month
from infra.finance_income import recognise_month
from infra.jobs import JobQueue
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from tests.common.xlsx import read_xlsx
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_books_lease import ORDER
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
OPS, FINANCE, AUDITOR = "ops@demo.leaseline.cn", "finance@demo.leaseline.cn", "auditor@demo.leaseline.cn"
ADMIN_PUDONG, ADMIN_XIHU, SALES = ("admin.pudong@demo.leaseline.cn", "admin.xihu@demo.leaseline.cn",
                                   "sales.pudong@demo.leaseline.cn")
NOW = datetime(2026, 3, 5, 2, 0, tzinfo=UTC)
START, TODAY = date(2026, 1, 10), date(2026, 3, 5)
DOWN, FEES = 40_000_00, 1_200_00


class Books:
    def __init__(self, server: LiveServer, leases: dict[str, str], dealers: dict[str, str]) -> None:
        self.server, self.url, self.leases, self.dealers = server, server.url, leases, dealers
        self.db = server.app.extensions["leaseline"].db


def _lease(app: Any, dealer_id: str, starts_on: date) -> str:
    db = app.extensions["leaseline"].db
    application_id = str(uuid.uuid4())
    with db.session() as s:
        s.add(ApplicationRow(id=application_id, dealer_id=dealer_id, status="delivered", vehicle_id="v",
                             vehicle_label="v", plan_code="p", plan_json="{}", draft_enc=""))
        s.flush()
        lease_id = SqlServicing(db).open_lease(s, application_id, dealer_id, lease_plan(record(starts_on)), NOW)
    assert lease_id is not None
    return lease_id


@pytest.fixture(scope="module")
def books() -> Iterator[Books]:
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_books_close"):
        upgrade(url)
        app = build_app(url)
        accounts = app.extensions["leaseline"].accounts
        dealers = {key: accounts.by_email(email)[0].dealer_id for key, email in
                   (("pudong", ADMIN_PUDONG), ("xihu", ADMIN_XIHU))}
        db = app.extensions["leaseline"].db
        servicing = SqlServicing(db)
        servicing.start_business_date(START, NOW)
        leases = {"a": _lease(app, dealers["pudong"], START), "b": _lease(app, dealers["pudong"], START),
                  "c": _lease(app, dealers["xihu"], START)}
        with db.session() as s:
            rents = {n: r for n, r in ((r.number, r) for r in s.scalars(
                select(InstalmentRow).where(InstalmentRow.lease_id == leases["a"])))}
            firsts = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id.in_(list(leases.values())),
                                                                InstalmentRow.number == 1)))
            second_b = s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == leases["b"],
                                                             InstalmentRow.number == 1)).one()
            # lease b's rent 1 (due 10 February) unpaid: overdue from the 11th, as the close of business marks it
            second_b.state, second_b.overdue_since = "overdue", date(2026, 2, 11)
        servicing.start_business_date(rents[1].due_on, NOW)
        SqlCollections(db).book(lease_id=leases["a"], amount=rents[1].amount, source="stripe",
                                key=f"books-close:{uuid.uuid4()}", order=ORDER, reference="pi_close", now=NOW)
        servicing.start_business_date(TODAY, NOW)
        recognise_month(db, "2026-01", NOW)
        payment = str(uuid.uuid4())
        with db.session() as s:
            post(s, [captured(payment, "upfront", DOWN + FEES, date(2026, 1, 8), parts=UpfrontParts(DOWN, FEES, 0, 0),
                              dealer_id=dealers["pudong"], lease_id=leases["a"]),
                     dealer_share_paid(payment, DOWN, date(2026, 1, 12), dealer_id=dealers["pudong"],
                                       lease_id=leases["a"]),
                     # each rent 1's tax point (due 10 February), as the close of business posts it (books/lease.py:
                     # key vat:<instalment>, Dr VAT pending / Cr output VAT, 13% of a direct lease's rent)
                     *(entry(f"vat:{r.id}", "vat_due", r.due_on,
                             [debit("Liabilities:Tax:VAT:Pending", tax_of(r.amount)),
                              credit(VAT_OUTPUT, tax_of(r.amount))], lease_id=r.lease_id) for r in firsts),
                     # output VAT no base in its entry gives exactly (a sum of taxes each rounded): lease c's at the
                     # rate the tax policy puts in force for a direct lease then; one of no lease: not identified
                     entry("books-close:vat-sum", "vat_due", date(2026, 3, 3), [debit(BANK, 1_001),
                                                                                credit(VAT_OUTPUT, 1_001)],
                           lease_id=leases["c"]),
                     entry("books-close:vat-loose", "vat_due", date(2026, 3, 3), [debit(BANK, 7),
                                                                                  credit(VAT_OUTPUT, 7)]),
                     # a fee of 113.00 captured with its VAT (13.00 at 13%) and refunded the next day: the refund
                     # gives the tax back at the fee's rate, never as a rate not identified
                     *_fee_refunded(dealers["pudong"])], NOW)
        with LiveServer(app) as server:
            yield Books(server, leases, dealers)
        db.dispose()


def _fee_refunded(dealer_id: str) -> list[Any]:
    fee, parts = 11_300, UpfrontParts(down_payment=0, fees=11_300)
    rule, payment = load_tax_policy().rule(DIRECT, date(2026, 3, 2)), str(uuid.uuid4())
    return [captured(payment, "upfront", fee, date(2026, 3, 2), parts=parts, dealer_id=dealer_id, rule=rule),
            refunded(f"refund:{payment}", "upfront", fee, date(2026, 3, 3), parts=parts, dealer_id=dealer_id,
                     rule=rule)]


def tax_of(amount: int) -> int:
    """The output VAT in a direct lease's rent of ``amount`` fen at 13%, half up once."""
    return int((Decimal(amount) * Decimal("0.13") / Decimal("1.13")).quantize(Decimal(1), ROUND_HALF_UP))


# -- reading pages and files ------------------------------------------------------------------------------------------
class Tables(HTMLParser):
    """The report tables of a page: testid → row key → the row's amounts in fen (data-fen) in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[int]]] = {}
        self.table = self.row = None  # type: str | None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-testid"):
            self.table = str(a["data-testid"])
            self.tables[self.table] = {}
        elif tag == "tr" and self.table is not None and a.get("data-key") is not None:
            self.row = str(a["data-key"])
            self.tables[self.table][self.row] = []
        elif tag == "td" and self.table is not None and self.row is not None and a.get("data-fen") is not None:
            self.tables[self.table][self.row].append(int(str(a["data-fen"])))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.table = None
        elif tag == "tr":
            self.row = None


def page_tables(session: requests.Session, url: str) -> dict[str, dict[str, list[int]]]:
    r = session.get(url, timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    assert "no-store" in r.headers.get("Cache-Control", "")
    parser = Tables()
    parser.feed(r.text)
    return parser.tables


def fen_of(text: object) -> int:
    value = Decimal(str(text))
    assert value == value.quantize(Decimal("0.01")), text
    return int(value * 100)


def amounts(cells: list[Any]) -> list[int]:
    """The money cells of a download's row: decimal texts with two places (CSV) or numbers (XLSX)."""
    out = []
    for cell in cells:
        if isinstance(cell, Decimal) or (isinstance(cell, str) and re.fullmatch(r"-?\d+\.\d\d", cell)):
            out.append(fen_of(cell))
    return out


def downloads(session: requests.Session, url: str) -> tuple[list[list[str]], dict[str, list[list[Any]]]]:
    joiner = "&" if "?" in url else "?"
    c = session.get(f"{url}{joiner}format=csv", timeout=TIMEOUT)
    assert c.status_code == 200 and c.headers["Content-Type"].startswith("text/csv"), c.text[:200]
    assert "attachment" in c.headers["Content-Disposition"] and "no-store" in c.headers["Cache-Control"]
    assert c.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    x = session.get(f"{url}{joiner}format=xlsx", timeout=TIMEOUT)
    assert x.status_code == 200 and "spreadsheetml" in x.headers["Content-Type"]
    return rows, read_xlsx(x.content)


def assert_same_figures(page: dict[str, list[int]], rows: list[list[Any]]) -> None:
    """The download's rows are the page's rows, in order, each with the page's amounts (its last money cells: an
    account code such as 1012.01 reads like an amount before them)."""
    rows = [row for row in rows if any(cell not in (None, "") for cell in row)]
    assert len(rows) == len(page), (list(page), rows)
    for (key, fen), row in zip(page.items(), rows, strict=True):
        found = amounts(row)
        assert found[len(found) - len(fen):] == fen, (key, fen, row)


def csv_table(rows: list[list[str]], title: str) -> list[list[str]]:
    """The rows of the CSV's table titled ``title`` (its title row, its heads, then rows up to a blank one)."""
    start = next(i for i, row in enumerate(rows) if row == [title])
    out = []
    for row in rows[start + 2:]:
        if not row:
            break
        out.append(row)
    return out


def sheet(sheets: dict[str, list[list[Any]]], index: int) -> list[list[Any]]:
    """The rows of the workbook's sheet ``index`` under its heading line and its columns' heads."""
    return list(sheets.values())[index][2:]


def tb_balances(session: requests.Session, base: str, day: date) -> dict[str, int]:
    tables = page_tables(session, f"{base}/books/trial-balance?date={day.isoformat()}")
    return {key: fen[0] - fen[1] for key, fen in tables["trial-balance"].items() if key != "total"}


# -- the reports ------------------------------------------------------------------------------------------------------
def test_the_reports_download_as_their_pages_and_tie_to_the_trial_balance(books: Books) -> None:
    base = books.url
    with sign_in(base, OPS) as ops:
        tb_page = page_tables(ops, f"{base}/books/trial-balance")
        rows, sheets = downloads(ops, f"{base}/books/trial-balance")
        assert_same_figures(tb_page["trial-balance"], csv_table(rows, "试算平衡表"))
        assert_same_figures(tb_page["trial-balance"], sheet(sheets, 0))
        total = tb_page["trial-balance"]["total"]
        assert total[0] == total[1] > 0
        balances = tb_balances(ops, base, TODAY)
        assert balances[RECEIVABLE] > 0 and balances[DEALERS] < 0 and balances[VAT_OUTPUT] < 0

        # the income statement: January's finance income and the fees; the months add up to the trial balance
        income = page_tables(ops, f"{base}/books/income?from=2026-01&to=2026-03")["income-statement"]
        rows, sheets = downloads(ops, f"{base}/books/income?from=2026-01&to=2026-03")
        assert_same_figures(income, csv_table(rows, "利润表"))
        assert_same_figures(income, sheet(sheets, 0))
        assert income["Income:Lease:Interest"][0] > 0 and income["Income:Other:Fees"][0] == FEES
        assert income["net"][-1] == -sum(fen for account, fen in balances.items()
                                         if account.startswith(("Income:", "Expenses:")))

        # the ageing: lease b's rent 1 is 23 days past due at 5 March; the instalments equal the ledger
        ageing = page_tables(ops, f"{base}/books/ageing")
        rows, sheets = downloads(ops, f"{base}/books/ageing")
        assert_same_figures(ageing["ageing"], csv_table(rows, "应收账龄"))
        assert_same_figures(ageing["ageing-check"], csv_table(rows, "与总账核对"))
        assert_same_figures(ageing["ageing"], sheet(sheets, 0))
        assert_same_figures(ageing["ageing-check"], sheet(sheets, 1))
        portfolio = ageing["ageing"]["total"]
        with books.db.session() as s:
            overdue = s.scalars(select(InstalmentRow.amount).where(InstalmentRow.lease_id == books.leases["b"],
                                                                   InstalmentRow.number == 1)).one()
        assert portfolio[1:5] == [overdue, 0, 0, 0]  # 1–30 days: 23 days past due
        assert sum(portfolio[:5]) == portfolio[5] == balances[RECEIVABLE]
        check = ageing["ageing-check"]
        assert check["ledger"] == [balances[RECEIVABLE]] and check["difference"] == [0]
        assert len(sheets) == 2

        # VAT: February's output VAT (rent 1's tax point) at 13%, the months adding up to the account
        vat = page_tables(ops, f"{base}/books/vat?from=2026-01&to=2026-03")
        rows, sheets = downloads(ops, f"{base}/books/vat?from=2026-01&to=2026-03")
        assert_same_figures(vat["vat-months"], csv_table(rows, "增值税（按月）"))
        assert_same_figures(vat["vat-rates"], csv_table(rows, "销项税额（按税率）"))
        assert_same_figures(vat["vat-months"], sheet(sheets, 0))
        assert_same_figures(vat["vat-rates"], sheet(sheets, 1))
        assert vat["vat-months"]["total"][0] == -balances[VAT_OUTPUT] > 0
        assert list(vat["vat-rates"]) == ["2026-02:0.13", "2026-03:0.13", "2026-03:None"]
        # each row: the taxable amount the entries tell (销售额), the output VAT, the VAT of lines telling none
        with books.db.session() as s:
            firsts = list(s.scalars(select(InstalmentRow.amount).where(
                InstalmentRow.lease_id.in_(list(books.leases.values())), InstalmentRow.number == 1)))
        february = sum(tax_of(fen) for fen in firsts)
        assert vat["vat-rates"]["2026-02:0.13"] == [sum(firsts) - february, february, 0]
        assert vat["vat-rates"]["2026-03:0.13"] == [0, 1_001, 1_001]  # the fee and its refund net to nil
        assert vat["vat-rates"]["2026-03:None"] == [0, 7, 7]

        # the dealers: what the lessor owes them adds up to the payable
        dealers = page_tables(ops, f"{base}/books/dealers")["dealer-balances"]
        assert dealers["total"] == [-balances[DEALERS]]
        assert dealers[books.dealers["pudong"]][0] + dealers[books.dealers["xihu"]][0] == -balances[DEALERS]


def test_a_dealer_admin_sees_their_own_statement_only(books: Books) -> None:
    base, pudong, xihu = books.url, books.dealers["pudong"], books.dealers["xihu"]
    with sign_in(base, OPS) as ops:
        owed = page_tables(ops, f"{base}/books/dealers?date=2026-01-31")["dealer-balances"][pudong][0]
        names = {ops.get(f"{base}/books/dealers/{dealer}/statement?month=2026-01&format=csv",
                         timeout=TIMEOUT).headers["Content-Disposition"] for dealer in (pudong, xihu)}
        assert names == {f'attachment; filename="statement-{d[:8]}-2026-01.csv"' for d in (pudong, xihu)}
        assert len(names) == 2
    with sign_in(base, ADMIN_PUDONG) as admin:
        home = admin.get(f"{base}/account", timeout=TIMEOUT)
        assert f'/books/dealers/{pudong}/statement' in home.text and "/books/trial-balance" not in home.text
        statement = page_tables(admin, f"{base}/books/dealers/{pudong}/statement?month=2026-01")
        summary = statement["statement-summary"]
        # January: the two cars' prices owed, the down payment collected and transferred (net nil), the fees beside
        assert summary["opening"] == [0] and summary["closing"] == [owed] and summary["fees"] == [FEES]
        assert summary["share_transferred"] == [-DOWN] and summary["down_payment"] == [DOWN]
        assert statement["statement-moves"]  # each movement listed with its running balance
        last = list(statement["statement-moves"].values())[-1]
        assert last[-1] == owed
        rows, sheets = downloads(admin, f"{base}/books/dealers/{pudong}/statement?month=2026-01")
        assert_same_figures(summary, csv_table(rows, "汇总"))
        assert_same_figures(statement["statement-leases"], csv_table(rows, "按租赁合同"))
        assert_same_figures(statement["statement-moves"], sheet(sheets, 1))
        assert_same_figures(statement["statement-leases"], sheet(sheets, 2))
        assert len(sheets) == 3
        # each dealer's file is named for its dealer: a short id of its own (never a person's data), the month
        for fmt in ("csv", "xlsx"):
            r = admin.get(f"{base}/books/dealers/{pudong}/statement?month=2026-01&format={fmt}", timeout=TIMEOUT)
            assert r.headers["Content-Disposition"] == f'attachment; filename="statement-{pudong[:8]}-2026-01.{fmt}"'
        english = admin.get(f"{base}/books/dealers/{pudong}/statement?month=2026-01&lang=en", timeout=TIMEOUT).text
        assert "Owed to you at 2026-01-31" in english and "Down payment transferred to you" in english
        for path in (f"/books/dealers/{xihu}/statement", f"/books/dealers/{xihu}/statement?format=csv"):
            assert admin.get(base + path, timeout=TIMEOUT).status_code == 404  # another dealer's: not found
        for path in ("/books", "/books/trial-balance", "/books/dealers"):
            assert admin.get(base + path, timeout=TIMEOUT, allow_redirects=False).status_code == 403
    with sign_in(base, SALES) as sales:
        assert sales.get(f"{base}/books/dealers/{pudong}/statement", timeout=TIMEOUT).status_code == 403


def refused_fields(r: requests.Response) -> list[str]:
    """The field errors listed on a refusal page (error.html's ``ul.errors``), tags stripped."""
    found = re.search(r'<ul class="errors">(.*?)</ul>', r.text, re.S)
    return [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)] \
        if found else []


def test_a_value_the_books_cannot_use_is_refused_naming_its_field(books: Books) -> None:
    """Each value a books page or form cannot use answers 422 with a page naming the field and what it takes (never
    the generic fault message), and leads back to the page as it opens."""
    base, pudong = books.url, books.dealers["pudong"]
    generic = "Something went wrong on our side"
    with sign_in(base, OPS) as ops:
        for path, field in (("/books/trial-balance?date=31-01-2026", "date"), ("/books/ageing?date=x", "date"),
                            ("/books/dealers?date=2026-02-30", "date"), ("/books/income?to=2026-13", "to"),
                            ("/books/vat?from=26-01", "from"), ("/books/income?from=2026-05&to=2026-01", "from"),
                            ("/books/vat?from=2020-01&to=2026-01", "from"),
                            ("/books/trial-balance?format=pdf", "format"),
                            (f"/books/dealers/{pudong}/statement?month=March", "month"),
                            # years the books do not hold (9999-12's next month would be year 10000)
                            ("/books/income?to=9999-12", "to"), ("/books/vat?from=1999-12&to=2000-01", "from"),
                            ("/books/trial-balance?date=9999-12-31", "date"), ("/books/ageing?date=0001-01-01", "date"),
                            ("/books/dealers?date=3000-01-01", "date"),
                            (f"/books/dealers/{pudong}/statement?month=9999-12", "month")):
            r = ops.get(f"{base}{path}&lang=en", timeout=TIMEOUT)
            assert r.status_code == 422, (path, r.status_code)
            assert generic not in r.text and "Please check" in r.text, (path, r.text[:500])
            errors = refused_fields(r)
            assert len(errors) == 1 and errors[0].startswith(f"{field}:"), (path, errors)
            assert 'href="/books/' in r.text  # the way back to the report
        r = post_form(ops, f"{base}/books/close?lang=en", month="January")
        assert r.status_code == 422 and refused_fields(r)[0].startswith("month:"), r.text[:500]
        r = post_form(ops, f"{base}/books/months/2026-1/approve?lang=en", request_id="1")
        assert r.status_code == 422 and refused_fields(r)[0].startswith("month:"), r.text[:500]
        for path in ("/books/close", "/books/months/9999-12/approve", "/books/months/9999-12/withdraw"):
            r = post_form(ops, f"{base}{path}?lang=en", month="9999-12", request_id="1")
            assert r.status_code == 422 and refused_fields(r)[0].startswith("month:"), (path, r.text[:500])
        # a request id of digits other than ASCII's, or too long for the database's bigint: not named
        for request_id in ("²", "٣", "9" * 20, "1" * 19, "-1", "1e3"):
            for action in ("approve", "withdraw"):
                r = post_form(ops, f"{base}/books/months/2026-01/{action}?lang=en", request_id=request_id)
                assert r.status_code == 422 and "is not named" in r.text, (action, request_id, r.status_code)
    with sign_in(base, ADMIN_PUDONG) as admin:
        r = admin.get(f"{base}/books/dealers/{pudong}/statement?month=9999-12&lang=en", timeout=TIMEOUT)
        assert r.status_code == 422 and refused_fields(r)[0].startswith("month:"), r.text[:500]


# -- the month close --------------------------------------------------------------------------------------------------
def post_form(session: requests.Session, url: str, **data: str) -> requests.Response:
    token = csrf(session, url.rsplit("/books", 1)[0] + "/books")
    return session.post(url, data={"csrf_token": token, **data}, timeout=TIMEOUT, allow_redirects=False)


def pending_request(session: requests.Session, base: str, month: str) -> str:
    page = session.get(f"{base}/books", timeout=TIMEOUT).text
    found = re.search(rf'data-month="{month}" data-request="(\d+)"', page)
    assert found, page[:2000]
    return found.group(1)


def audit(books: Books, action: str) -> list[AuditEventRow]:
    with books.db.session() as s:
        return list(s.scalars(select(AuditEventRow).where(AuditEventRow.action == action).order_by(AuditEventRow.id)))


def close_check_jobs(books: Books) -> list[tuple[int, str, dict[str, Any]]]:
    """The close-check jobs (id, state, args), oldest first."""
    from infra.month_close import CHECK_TASK

    with books.db.session() as s:
        return [(int(i), str(state), dict(args)) for i, state, args in s.execute(text(
            "SELECT id, status::text, args FROM procrastinate_jobs WHERE task_name = :task ORDER BY id"),
            {"task": CHECK_TASK})]


def run_close_check(books: Books) -> None:
    """The open close-check job run as a worker runs it: the task bff/worker.py registers, called with the job's own
    args (the job left ``succeeded`` after it, as the worker leaves it). These tests run no worker."""
    from bff.worker import build
    from infra.month_close import CHECK_TASK

    app = books.server.app
    task = build(app.extensions["leaseline"], app.config["SETTINGS"]).tasks[CHECK_TASK]
    waiting = [(job_id, args) for job_id, state, args in close_check_jobs(books) if state in ("todo", "doing")]
    assert len(waiting) == 1, waiting
    job_id, args = waiting[0]
    task.func(SimpleNamespace(job=SimpleNamespace(id=job_id, attempts=0, queue=task.queue)), **args)
    with books.db.session() as s:
        s.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = :id"), {"id": job_id})


def differences_accounts(page: str) -> list[str]:
    """The account cell of each row of the close's differences table, tags stripped, spaces squeezed."""
    table = re.search(r'<table data-testid="close-differences">.*?</table>', page, re.S)
    assert table is not None, page[:3000]
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split())
            for cell in re.findall(r'<td data-testid="difference-account">(.*?)</td>', table.group(0), re.S)]


def check_now(session: requests.Session, base: str, notice: str = "check_queued") -> None:
    r = post_form(session, f"{base}/books/check")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/books?notice={notice}"), r.headers


def test_check_now_queues_the_checks_once_and_the_page_shows_them_running_then_their_result(books: Books) -> None:
    """The checks read the whole portfolio (minutes at 100,000 leases): neither GET /books nor "Check now" runs them in
    the request. "Check now" queues a ``books.close_check`` job with its marker (the audit event
    ``books.close_check_asked``, in the same transaction) and answers at once; a second click while it waits or runs
    queues no other. The page says "checking since …", then shows what the job found, its time and who asked; a job
    that failed is said on the page (and listed on the jobs page), and "Check now" queues a new one."""
    from infra.jobs import JobQueue
    from infra.month_close import CHECK_ASKED

    base = books.url
    with sign_in(base, OPS) as ops, sign_in(base, FINANCE) as finance, sign_in(base, AUDITOR) as auditor:
        page = ops.get(f"{base}/books", timeout=TIMEOUT).text
        assert 'data-month="2026-01"' in page and 'data-testid="not-checked"' in page
        assert 'data-testid="check-close"' in page and 'data-testid="request-close"' in page
        check_now(ops, base)
        assert audit(books, "books.close_checked") == []  # nothing ran in the request
        asked = audit(books, CHECK_ASKED)
        assert [(e.actor_label, e.outcome) for e in asked] == [(OPS, "success")]
        jobs = close_check_jobs(books)
        assert [(state, args["asked"]) for _id, state, args in jobs] == [("todo", asked[0].id)]
        page = ops.get(f"{base}/books?lang=en", timeout=TIMEOUT).text
        assert 'data-testid="checking" data-state="todo"' in page and "Checking since" in page and OPS in page
        assert 'data-testid="check-close"' not in page and 'data-testid="not-checked"' not in page
        # a second click, by anyone, while it waits and while it runs: no other job, no other marker
        check_now(ops, base, "check_under_way")
        check_now(finance, base, "check_under_way")
        with books.db.session() as s:  # a worker took it
            s.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = :id"), {"id": jobs[0][0]})
        assert 'data-testid="checking" data-state="doing"' in ops.get(f"{base}/books", timeout=TIMEOUT).text
        check_now(finance, base, "check_under_way")
        assert [j[0] for j in close_check_jobs(books)] == [jobs[0][0]] and len(audit(books, CHECK_ASKED)) == 1
        run_close_check(books)
        page = ops.get(f"{base}/books", timeout=TIMEOUT).text
        assert 'data-testid="checked-at"' in page and OPS in page and 'data-testid="close-clear"' in page
        assert 'data-testid="checking"' not in page and 'data-testid="check-close"' in page
        # the job run again (a retry after its worker died): it finds its result kept, and keeps no second
        with books.db.session() as s:
            s.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = :id"), {"id": jobs[0][0]})
        run_close_check(books)
        assert len(audit(books, "books.close_checked")) == 1

        # lease c out of line with its schedule in January: the page still shows the run before it
        with books.db.session() as s:
            post(s, [entry("books-close:stray-january", "rent_collected", date(2026, 1, 15),
                           [debit(BANK, 100), credit(RECEIVABLE, 100)], lease_id=books.leases["c"])], NOW)
        page = ops.get(f"{base}/books", timeout=TIMEOUT).text
        assert 'data-testid="close-clear"' in page and 'data-code="differences"' not in page
        # the next check fails in its worker: the page says so and leads to the jobs page, which lists it
        check_now(ops, base)
        failed = close_check_jobs(books)[-1][0]
        JobQueue(books.db).record_error(failed, 1, "OperationalError: canceling statement due to statement timeout")
        with books.db.session() as s:  # as the worker leaves it after its last attempt
            s.execute(text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :id"), {"id": failed})
        page = ops.get(f"{base}/books?lang=en", timeout=TIMEOUT).text
        assert 'data-testid="check-failed"' in page and "did not finish" in page and "/ops/jobs?state=failed" in page
        assert 'data-testid="check-close"' in page and 'data-testid="close-clear"' in page  # the run before stands
        jobs_page = ops.get(f"{base}/ops/jobs?state=failed", timeout=TIMEOUT).text
        assert "books.close_check" in jobs_page and "statement timeout" in jobs_page
        check_now(ops, base)  # a new one: the failed job does not hold the queue
        run_close_check(books)
        page = ops.get(f"{base}/books", timeout=TIMEOUT).text
        assert 'data-code="differences"' in page and books.leases["c"][:8] in page
        # each difference's account by the chart's name in the reader's language, its Beancount name beside
        account = load_chart().accounts[RECEIVABLE]
        assert differences_accounts(page) == [f"{account.zh} {RECEIVABLE}"]
        english = ops.get(f"{base}/books?lang=en", timeout=TIMEOUT).text
        assert differences_accounts(english) == [f"{account.en} {RECEIVABLE}"]
        assert 'data-testid="check-failed"' not in page
        assert 'data-testid="request-close"' not in page  # blocked: check again once put right
        # the auditor reads what ops' run found, and runs none
        seen = auditor.get(f"{base}/books", timeout=TIMEOUT).text
        assert 'data-code="differences"' in seen and 'data-testid="check-close"' not in seen
        assert post_form(auditor, f"{base}/books/check").status_code == 403
        with books.db.session() as s:
            reverse(s, "books-close:stray-january", "books-close:stray-january:reversed", date(2026, 1, 16),
                    "wrong lease", NOW)
        assert 'data-code="differences"' in ops.get(f"{base}/books", timeout=TIMEOUT).text
        check_now(ops, base)
        run_close_check(books)
        page = ops.get(f"{base}/books", timeout=TIMEOUT).text
        assert 'data-testid="close-clear"' in page and 'data-testid="request-close"' in page
    assert [(e.outcome, json.loads(e.details)["month"]) for e in audit(books, "books.close_checked")] == [
        ("success", "2026-01"), ("failure", "2026-01"), ("success", "2026-01")]


def test_two_clicks_at_once_queue_one_check(books: Books) -> None:
    """"Check now" by two ops users at the same moment: one check queued (with its one marker), the other told it is
    under way."""
    import threading

    from infra.month_close import CHECK_ASKED
    from infra.month_close import MonthClose

    markers, jobs = len(audit(books, CHECK_ASKED)), len(close_check_jobs(books))
    for _round in range(3):
        barrier, answers = threading.Barrier(2), []  # type: threading.Barrier, list[object]

        def ask(who: str, barrier: threading.Barrier = barrier, answers: list[object] = answers) -> None:
            barrier.wait()
            try:
                answers.append(MonthClose(books.db).ask_check(actor_id=who, actor_label=who, now=NOW)[0])
            except Exception as exc:  # noqa: BLE001 — what the test must never see, reported as the failure
                answers.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=ask, args=(who,)) for who in ("u1", "u2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(answers, key=str) == [False, True], answers
        markers, jobs = markers + 1, jobs + 1
        assert (len(audit(books, CHECK_ASKED)), len(close_check_jobs(books))) == (markers, jobs)
        run_close_check(books)


def test_the_close_page_shows_the_trial_balance_closing_totals_of_the_month_end(books: Books) -> None:
    """The totals the close page shows at the month end are the trial balance's (each account netted: debit balances,
    credit balances), as /books/trial-balance shows them at that day — not the sums of every debit and credit posted
    (January's stray receipt and its reversal add 1.00 to those, nothing to the balances) — and say so, zh and en."""
    from bff.filters import fen

    base = books.url
    with sign_in(base, OPS) as ops:
        tb_total = page_tables(ops, f"{base}/books/trial-balance?date=2026-01-31")["trial-balance"]["total"]
        page = ops.get(f"{base}/books", timeout=TIMEOUT).text
        totals = re.search(r'<p[^>]*data-testid="close-totals"[^>]*>(.*?)</p>', page, re.S)
        assert totals is not None, page[:3000]
        assert f'data-debit="{tb_total[0]}" data-credit="{tb_total[1]}"' in totals.group(0)
        assert "2026-01-31 日终试算平衡表：借方余额合计" in totals.group(1) and "贷方余额合计" in totals.group(1)
        assert 'href="/books/trial-balance?date=2026-01-31"' in totals.group(1)
        english = ops.get(f"{base}/books?lang=en", timeout=TIMEOUT).text
        assert f"Trial balance at the end of 2026-01-31: debit balances {fen(tb_total[0])}" in english
        assert "借方发生额" not in page and "debits " not in english
    newest = audit(books, "books.close_checked")[-1]
    posted = json.loads(newest.details)
    assert (posted["balance_debit"], posted["balance_credit"]) == tuple(tb_total)
    assert posted["total_debit"] > tb_total[0]  # every debit posted: what the page no longer calls a total


def test_the_request_and_the_approval_answer_with_their_own_checks_queueing_none(books: Books) -> None:
    """Asking for a close and approving it keep running their checks in the request (they decide on them): a request
    refused for a blocker shows what blocks it at once; no close-check job is queued by either."""
    before = close_check_jobs(books)
    with sign_in(books.url, OPS) as ops:
        r = post_form(ops, f"{books.url}/books/close", month="2026-03")
        assert r.status_code == 409 and 'data-code="not_ended"' in r.text
    assert close_check_jobs(books) == before


def test_a_month_closes_on_two_ops_users_word_and_a_late_event_lands_in_the_next(books: Books) -> None:
    from infra.dealer_funding import fund_dealer

    base = books.url
    accounts = books.server.app.extensions["leaseline"].accounts
    ops_id, finance_id = accounts.by_email(OPS)[0].id, accounts.by_email(FINANCE)[0].id
    with sign_in(base, OPS) as ops, sign_in(base, FINANCE) as finance:
        page = ops.get(f"{base}/books", timeout=TIMEOUT)
        assert 'data-month="2026-01"' in page.text and 'data-testid="request-close"' in page.text
        # a later month first, or one not ended: refused with what blocks it
        r = post_form(ops, f"{base}/books/close", month="2026-03")
        assert r.status_code == 409
        assert 'data-code="not_next"' in r.text and 'data-code="not_ended"' in r.text
        assert post_form(ops, f"{base}/books/close").status_code == 422  # no month named

        r = post_form(ops, f"{base}/books/close", month="2026-01")
        assert r.status_code == 303 and r.headers["Location"].endswith("/books?notice=requested")
        assert post_form(ops, f"{base}/books/close", month="2026-01").status_code == 409  # asked already
        request_id = pending_request(ops, base, "2026-01")
        assert 'data-testid="own-request"' in ops.get(f"{base}/books", timeout=TIMEOUT).text

        # four eyes: the requester's own approval is refused, audited, and closes nothing
        r = post_form(ops, f"{base}/books/months/2026-01/approve", request_id=request_id)
        assert r.status_code == 403 and "另一位运营人员" in r.text
        with books.db.session() as s:
            assert s.get(LedgerPeriodRow, date(2026, 1, 1)) is None
        assert [(e.outcome, e.actor_id) for e in audit(books, "books.close_approved")] == [("denied", ops_id)]
        assert post_form(finance, f"{base}/books/months/2026-01/approve").status_code == 422  # which request?

        # a second ops user approves: January is locked
        r = post_form(finance, f"{base}/books/months/2026-01/approve", request_id=request_id)
        assert r.status_code == 303 and r.headers["Location"].endswith("/books?notice=closed")
        with books.db.session() as s:
            period = s.get(LedgerPeriodRow, date(2026, 1, 1))
            assert period is not None and (period.closed_by, period.approved_by) == (ops_id, finance_id)
        requested = audit(books, "books.close_requested")
        approved = [e for e in audit(books, "books.close_approved") if e.outcome == "success"]
        assert [e.actor_id for e in requested] == [ops_id] and [e.actor_id for e in approved] == [finance_id]
        assert json.loads(approved[0].details)["requested_by"] == ops_id
        assert post_form(finance, f"{base}/books/months/2026-01/approve", request_id=request_id).status_code == 409
        page = finance.get(f"{base}/books", timeout=TIMEOUT).text
        assert re.search(r'<tr data-month="2026-01"><th scope="row">2026-01</th><td>郑运营</td><td>钱财务</td>', page)
        january = tb_balances(ops, base, date(2026, 1, 31))

        # a late event: the bank paid lease a's dealer on 20 January, recorded now; booked on 1 February, its date kept
        done = fund_dealer(books.db, books.leases["a"], amount=_owed(books, books.leases["a"]),
                           paid_on=date(2026, 1, 20), today=TODAY, reference="B-LATE", actor_label=OPS, now=NOW)
        assert done.owed == 0
        with books.db.session() as s:
            late = s.scalars(select(JournalEntryRow).where(
                JournalEntryRow.key == f"dealer_funding:{books.leases['a']}")).one()
        assert (late.value_date, late.booked_on) == (date(2026, 1, 20), date(2026, 2, 1))
        assert tb_balances(ops, base, date(2026, 1, 31)) == january  # the closed month's figures stand
        assert tb_balances(ops, base, date(2026, 2, 1))[DEALERS] == january[DEALERS] + late_amount(books, late.id)

        # February: a lease out of line with its schedule blocks it until the correction
        with books.db.session() as s:
            post(s, [entry("books-close:stray", "rent_collected", date(2026, 2, 15),
                           [debit(BANK, 100), credit(RECEIVABLE, 100)], lease_id=books.leases["c"])], NOW)
        r = post_form(finance, f"{base}/books/close", month="2026-02")
        assert r.status_code == 409 and 'data-code="differences"' in r.text and books.leases["c"][:8] in r.text
        with books.db.session() as s:
            reverse(s, "books-close:stray", "books-close:stray:reversed", date(2026, 2, 16), "wrong lease", NOW)
        # February's finance income is not posted (no job ran for it): refused, with the leases and the amount the
        # month's recognition would still post — whatever the job's state: none, then waiting, then cancelled
        unposted = _unposted(books, "2026-02")
        assert unposted[0] == 3 and unposted[1] > 0
        r = post_form(finance, f"{base}/books/close", month="2026-02")
        assert r.status_code == 409 and 'data-code="income_unposted"' in r.text
        assert f'data-leases="3" data-fen="{unposted[1]}"' in r.text
        with books.db.session() as s:
            defer_month(s, "2026-02")
        r = post_form(finance, f"{base}/books/close", month="2026-02")
        assert r.status_code == 409 and 'data-code="income_pending"' in r.text and "income_unposted" in r.text
        queue = JobQueue(books.db)
        assert [queue.cancel(job.id) for job in queue.jobs(states=("todo",)) if job.task == INCOME_TASK] == [True]
        r = post_form(finance, f"{base}/books/close", month="2026-02")
        assert r.status_code == 409 and 'data-code="income_unposted"' in r.text and "income_pending" not in r.text
        assert recognise_month(books.db, "2026-02", NOW).posted == 3
        assert _unposted(books, "2026-02") == (0, 0)
        r = post_form(finance, f"{base}/books/close", month="2026-02")
        assert r.status_code == 303, re.findall(r"<li data-code.*?</li>|<tr><th scope=\"row\">.*?</tr>", r.text, re.S)
        # a request is withdrawn by its requester only, then may be made again
        asked = pending_request(finance, base, "2026-02")
        assert post_form(ops, f"{base}/books/months/2026-02/withdraw", request_id=asked).status_code == 403
        assert post_form(finance, f"{base}/books/months/2026-02/withdraw", request_id=asked).status_code == 303
        assert 'data-testid="no-close-requests"' in finance.get(f"{base}/books", timeout=TIMEOUT).text
        assert [e.actor_id for e in audit(books, "books.close_withdrawn")] == [finance_id]
        assert post_form(finance, f"{base}/books/close", month="2026-02").status_code == 303
        # now ops approves what finance asked for (the roles swap: any two different ops users)
        r = post_form(ops, f"{base}/books/months/2026-02/approve", request_id=pending_request(ops, base, "2026-02"))
        assert r.status_code == 303
        with books.db.session() as s:
            assert s.get(LedgerPeriodRow, date(2026, 2, 1)) is not None


class _Undone(Exception):
    pass


def _unposted(books: Books, month: str) -> tuple[int, int]:
    """What the month's finance-income job would post if it ran now (leases, fen): recognise_month itself, run in one
    transaction then rolled back."""
    found = None
    try:
        with books.db.transaction():
            found = recognise_month(books.db, month, NOW)
            raise _Undone
    except _Undone:
        pass
    assert found is not None
    return found.posted, found.amount


def _owed(books: Books, lease_id: str) -> int:
    from infra.dealer_funding import fundings_due

    return next(f.owed for f in fundings_due(books.db) if f.lease_id == lease_id)


def late_amount(books: Books, entry_id: int) -> int:
    """The entry's debit to the dealers payable (the bank's payment lowers what is owed: debit-positive)."""
    from infra.db.models import JournalLineRow

    with books.db.session() as s:
        return sum(s.scalars(select(JournalLineRow.debit - JournalLineRow.credit).where(
            JournalLineRow.entry_id == entry_id, JournalLineRow.account == DEALERS)))


def tax_points(books: Books, number: int) -> None:
    """Post the tax points of the leases' rent ``number`` as the close of business would (these tests run none)."""
    with books.db.session() as s:
        rents = list(s.scalars(select(InstalmentRow).where(
            InstalmentRow.lease_id.in_(list(books.leases.values())), InstalmentRow.number == number)))
        post(s, [entry(f"vat:{r.id}", "vat_due", r.due_on, [debit("Liabilities:Tax:VAT:Pending", tax_of(r.amount)),
                                                            credit(VAT_OUTPUT, tax_of(r.amount))],
                       lease_id=r.lease_id) for r in rents], NOW)


def test_leaseline_books_close_month_shows_where_the_periods_stand_and_closes_nothing(books: Books) -> None:
    """From a terminal, where the periods stand: the next month and what blocks it, the requests waiting, the last
    closed. Asking and approving are not there (four eyes needs two signed-in users: the ops desk, TOTP): the command
    takes no month, no user, no approval. March made closable then asked for and approved on the desk."""
    from click.testing import CliRunner

    from leaseline.cli import main

    env = {"LEASELINE_DATABASE_URL": books.db.engine.url.render_as_string(hide_password=False)}

    def run(*args: str) -> tuple[int, str]:
        done = CliRunner().invoke(main, ["books", "close-month", *args], catch_exceptions=False, env=env)
        return done.exit_code, done.output

    code, said = run()
    assert code == 0 and "next to close 2026-03: not_ended" in said and "last closed 2026-02" in said, said
    assert "/books" in said  # where asking and approving happen
    for args in (("2026-03",), ("--by", OPS), ("--approve",), ("2026-03", "--approve", "--by", FINANCE)):
        code, said = run(*args)
        assert code == 2 and ("No such option" in said or "unexpected extra argument" in said), (args, said)
    with books.db.session() as s:
        assert s.get(LedgerPeriodRow, date(2026, 3, 1)) is None
    SqlServicing(books.db).start_business_date(date(2026, 4, 2), NOW)
    tax_points(books, 2)
    with books.db.session() as s:  # March's finance income queued by the close of its last day, not run yet
        defer_month(s, "2026-03")
    code, said = run()
    assert code == 0 and "income_pending" in said and "income_unposted" in said and "not_ended" not in said, said
    queue = JobQueue(books.db)
    assert all(queue.cancel(job.id) for job in queue.jobs(states=("todo",)) if job.task == INCOME_TASK)
    code, said = run()  # the job cancelled: March's income is still not posted
    assert "income_unposted" in said and "income_pending" not in said, said
    recognise_month(books.db, "2026-03", NOW)
    code, said = run("--json")
    found = json.loads(said)
    assert code == 0 and found["next"] == {"month": "2026-03", "blockers": []} and found["pending"] == [], said
    with sign_in(books.url, OPS) as ops, sign_in(books.url, FINANCE) as finance:
        assert post_form(ops, f"{books.url}/books/close", month="2026-03").status_code == 303
        rid = pending_request(finance, books.url, "2026-03")
        code, said = run()
        assert code == 0 and f"waiting: 2026-03 asked by {OPS} (#{rid})" in said, said
        assert post_form(finance, f"{books.url}/books/months/2026-03/approve", request_id=rid).status_code == 303
    code, said = run("--json")
    found = json.loads(said)
    assert found["last_closed"] == "2026-03" and found["pending"] == [] and found["next"]["month"] == "2026-04"
    with books.db.session() as s:
        period = s.get(LedgerPeriodRow, date(2026, 3, 1))
        assert period is not None and period.closed_by != period.approved_by


def books_command(books: Books, *args: str) -> Any:
    """``leaseline books …`` on the fixture's database (click's runner: its exit code, stdout and stderr)."""
    from click.testing import CliRunner

    from leaseline.cli import main

    env = {"LEASELINE_DATABASE_URL": books.db.engine.url.render_as_string(hide_password=False)}
    return CliRunner().invoke(main, ["books", *args], env=env)


def test_books_reconcile_refuses_a_date_after_the_business_date(books: Books) -> None:
    """The close has not reached the tax points after the business date (their VAT still Pending): reconciling there
    would list false differences. Refused in one line, exit 2, as ``books export --through`` refuses it; the business
    date itself is reconciled."""
    from datetime import timedelta

    today = SqlServicing(books.db).business_date()
    for late in (today + timedelta(days=1), today.replace(year=today.year + 1)):
        refused = books_command(books, "reconcile", "--date", late.isoformat())
        assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
        assert refused.output.startswith(f"Error: --date: {late.isoformat()} is after the business date "
                                         f"{today.isoformat()}"), refused.output
    done = books_command(books, "reconcile", "--date", today.isoformat())
    assert done.exit_code in (0, 1) and f"at the end of {today.isoformat()}" in done.output, done.output


def test_books_income_refuses_a_month_not_ended_saying_so(books: Books) -> None:
    """``books income --month M`` for the business date's month: refused (exit 2) because M has not ended by the
    business date — never "M is not closed", which now means the four-eyes close of /books."""
    from books.reports import month_of

    today = SqlServicing(books.db).business_date()
    for month in (month_of(today), f"{today.year + 1}-01"):
        refused = books_command(books, "income", "--month", month)
        assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
        assert refused.output.startswith(f"Error: --month: {month} has not ended by the business date "
                                         f"{today.isoformat()}"), refused.output
        assert "not closed" not in refused.output


def test_two_close_requests_at_once_one_is_made_the_other_refused_as_pending(books: Books) -> None:
    """April made closable (the business date in May, its rents' tax points and its income posted); two requests for
    its close at once: one is made, the other refused as pending (never a 500 from the unique index of the pending
    requests) — also when the other's row was written by a transaction the first could not see yet."""
    import threading
    import time

    from infra.month_close import CloseRefused
    from infra.month_close import MonthClose

    SqlServicing(books.db).start_business_date(date(2026, 5, 2), NOW)
    tax_points(books, 3)
    recognise_month(books.db, "2026-04", NOW)
    april = date(2026, 4, 1)

    def ask(who: str, out: list[object], barrier: threading.Barrier | None = None) -> None:
        if barrier is not None:
            barrier.wait()
        try:
            out.append(MonthClose(books.db).request(april, actor_id=who, actor_label=who, now=NOW))
        except CloseRefused as exc:
            out.append(exc.code)
        except Exception as exc:  # noqa: BLE001 — what the test must never see, reported as the failure
            out.append(f"{type(exc).__name__}: {exc}")

    # another transaction's pending request, not committed yet when the request reaches its insert
    with books.db.engine.connect() as other:
        with other.begin():
            other.execute(text(
                "INSERT INTO ledger_close_requests (month, status, requested_by, requested_by_label, requested_at, "
                "checks) VALUES (:month, 'pending', 'other', 'other', now(), '{}')"), {"month": april})
            results: list[object] = []
            thread = threading.Thread(target=ask, args=("u1", results))
            thread.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and thread.is_alive():
                with books.db.session() as s:
                    if s.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                                     "query LIKE 'INSERT INTO ledger_close_requests%'")):
                        break
                time.sleep(0.05)
            assert thread.is_alive(), results  # it waits on the other's row
        thread.join(20)
    assert results == ["pending"], results
    with books.db.session() as s:
        rid = s.scalar(text("SELECT id FROM ledger_close_requests WHERE requested_by = 'other' AND status = 'pending'"))
    MonthClose(books.db).withdraw(april, rid, actor_id="other", actor_label="other", now=NOW)

    for _attempt in range(5):  # two at once, released together
        results = []
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=ask, args=(who, results, barrier)) for who in ("u1", "u2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        made = [r for r in results if not isinstance(r, str)]
        assert len(made) == 1 and [r for r in results if isinstance(r, str)] == ["pending"], results
        MonthClose(books.db).withdraw(april, made[0].id, actor_id=made[0].requested_by, actor_label="x", now=NOW)


def test_the_approval_checks_again_only_what_was_posted_after_its_watermark(books: Books) -> None:
    """April, closable (the test before made it so): checked once through a watermark, then again by what came after
    it — nothing, the checks stand; an entry putting lease c out of line, it blocks with lease c only and the totals
    grow by its lines; its reversal, clear again. And approved: two users, April locked."""
    from infra.month_close import CloseRefused
    from infra.month_close import MonthClose
    from infra.month_close import check
    from infra.month_close import recheck
    from infra.month_close import watermark

    april, today = date(2026, 4, 1), date(2026, 5, 2)
    with books.db.session() as s:
        mark = watermark(s)
        first = check(s, april, today, through=mark)
        assert first.ok, first
        again = recheck(s, april, today, first, mark)
        assert again.ok and (again.total_debit, again.total_credit) == (first.total_debit, first.total_credit)
    with books.db.session() as s:
        post(s, [entry("books-close:stray-april", "rent_collected", date(2026, 4, 15),
                       [debit(BANK, 100), credit(RECEIVABLE, 100)], lease_id=books.leases["c"])], NOW)
    with books.db.session() as s:
        again = recheck(s, april, today, first, mark)
        assert [b.code for b in again.blockers] == ["differences"]
        assert {d["lease_id"] for d in again.differences} == {books.leases["c"]}
        assert (again.total_debit, again.total_credit) == (first.total_debit + 100, first.total_credit + 100)
        whole = check(s, april, today)
        assert whole.difference_count == again.difference_count  # as the whole portfolio's
        assert (again.balance_debit, again.balance_credit) == (whole.balance_debit, whole.balance_credit)
    with books.db.session() as s:
        reverse(s, "books-close:stray-april", "books-close:stray-april:reversed", date(2026, 4, 16), "wrong lease",
                NOW)
    with books.db.session() as s:
        assert recheck(s, april, today, first, mark).ok
    close = MonthClose(books.db)
    asked = close.request(april, actor_id="u1", actor_label="u1", now=NOW)
    with books.db.session() as s:
        post(s, [entry("books-close:stray-april-2", "rent_collected", date(2026, 4, 20),
                       [debit(BANK, 100), credit(RECEIVABLE, 100)], lease_id=books.leases["a"])], NOW)
    with pytest.raises(CloseRefused) as refused:
        close.approve(april, asked.id, actor_id="u2", actor_label="u2", now=NOW)
    assert refused.value.code == "blocked" and refused.value.check is not None
    assert [b.code for b in refused.value.check.blockers] == ["differences"]
    with books.db.session() as s:
        reverse(s, "books-close:stray-april-2", "books-close:stray-april-2:reversed", date(2026, 4, 21),
                "wrong lease", NOW)
    done = close.approve(april, asked.id, actor_id="u2", actor_label="u2", now=NOW)
    assert done.status == "approved"
    with books.db.session() as s:
        assert s.get(LedgerPeriodRow, april) is not None


# -- the migration ----------------------------------------------------------------------------------------------------
def test_migration_0034_names_its_parent_and_keeps_it_when_another_lands(tmp_path: Any) -> None:
    """0034's parent is written in the file (a literal, not read at run time): a migration that lands later after the
    same parent (0032, as other work under way reserved it) is not slipped under a database already at 0034 (a parent
    read at run time would make 0034 follow it, and a database at 0034 would look current without its change); alembic
    sees two heads instead, and whoever adds it chains it by hand."""
    import ast
    import shutil

    from alembic.script import ScriptDirectory

    from infra.db.migrate import MIGRATIONS
    from infra.db.migrate import alembic_config

    source = next((MIGRATIONS / "versions").glob("0034_*.py"))
    parent = next(node.value for node in ast.parse(source.read_text()).body if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "down_revision" for t in node.targets))
    assert isinstance(parent, ast.Constant) and isinstance(parent.value, str), ast.dump(parent)
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / "0032_later.py").write_text(
        f'revision = "later"\ndown_revision = "{parent.value}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n")
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/x", copy))
    assert script.get_revision("0034").down_revision == parent.value
    assert {"later", "0034"} <= set(script.get_heads())
