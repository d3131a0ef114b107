"""The books on a phone (issue 19, "Done when"): on Pixel 7s, an ops user checks January (the page runs no check by
itself; "Check now" queues it for a worker, run here as the worker runs it), asks for its close, sees that another
must approve it, and a second ops user approves it — the month is locked, both names on it; then a dealer's admin
opens their statement (分账对账单) from the menu, reads what the lessor owes them and downloads it. Each page fits the
phone's width and carries no inline style (the CSP); the console stays clean (tests/e2e/conftest.py).

The books are those of tests/integration/test_books_close.py's fixture (a database and a live BFF of their own: a
closed month moves every later posting dated in it, which the suite's shared live server must not see)."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import expect
from sqlalchemy import select

from books.reports import yuan
from infra.db.models import LedgerPeriodRow
from tests.e2e.test_lease_browser import assert_fits
from tests.e2e.test_lease_browser import assert_no_inline_style
from tests.e2e.test_review_browser import sign_in
from tests.e2e.waiting import wait_until
from tests.integration.test_books_close import ADMIN_PUDONG
from tests.integration.test_books_close import FINANCE
from tests.integration.test_books_close import OPS
from tests.integration.test_books_close import Books
from tests.integration.test_books_close import books  # noqa: F401 - the fixture: its books and live server
from tests.integration.test_books_close import run_close_check

PHONE_WIDTH = 412


def open_menu_link(page: Page, testid: str) -> None:
    """Tap the header's link (the menu wraps on a phone: the link is reached, not hidden)."""
    link = page.get_by_test_id(testid)
    link.scroll_into_view_if_needed()
    box = link.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH and box["height"] >= 24, box
    link.click()


def test_an_ops_user_asks_another_approves_and_a_dealer_admin_reads_their_statement(
        browser: Browser, playwright: Playwright, books: Books) -> None:  # noqa: F811 - the imported fixture
    base, pixel = books.url, playwright.devices["Pixel 7"]
    ops_phone = browser.new_context(base_url=base, **pixel)
    finance_phone = browser.new_context(base_url=base, **pixel)
    dealer_phone = browser.new_context(base_url=base, **pixel, accept_downloads=True)
    try:
        ops = ops_phone.new_page()
        sign_in(ops, OPS)
        open_menu_link(ops, "nav-books")
        expect(ops.get_by_test_id("next-month")).to_have_attribute("data-month", "2026-01")
        expect(ops.get_by_test_id("not-checked")).to_be_visible()  # the page runs no check by itself
        ops.get_by_test_id("check-close").click()  # queued for a worker: the page answers at once
        expect(ops.get_by_test_id("books-notice")).to_contain_text("已提交检查")
        expect(ops.get_by_test_id("checking")).to_contain_text(OPS)
        run_close_check(books)  # as the worker runs it (this fixture's database has none)
        ops.get_by_test_id("checking").get_by_role("link").click()
        expect(ops.get_by_test_id("checked-at")).to_contain_text(OPS)
        expect(ops.get_by_test_id("close-clear")).to_be_visible()
        assert_fits(ops)
        ask = ops.get_by_test_id("request-close")
        box = ask.bounding_box()
        assert box is not None and box["height"] >= 44, box
        ask.click()
        expect(ops.get_by_test_id("books-notice")).to_contain_text("须由另一位运营人员审批")
        request = ops.get_by_test_id("close-request")
        expect(request).to_have_attribute("data-month", "2026-01")
        expect(ops.get_by_test_id("own-request")).to_be_visible()
        expect(ops.get_by_test_id("approve-close")).to_have_count(0)  # not to the one who asked
        assert_fits(ops)
        assert_no_inline_style(ops)

        finance = finance_phone.new_page()
        sign_in(finance, FINANCE)
        open_menu_link(finance, "nav-books")
        expect(finance.get_by_test_id("close-request")).to_contain_text("ops@demo.leaseline.cn")
        finance.get_by_test_id("approve-close").click()
        expect(finance.get_by_test_id("books-notice")).to_contain_text("该月已结账")
        closed = finance.get_by_test_id("closed-months").locator("tr[data-month='2026-01']")
        expect(closed).to_contain_text("郑运营")
        expect(closed).to_contain_text("钱财务")
        expect(finance.get_by_test_id("next-month")).to_have_attribute("data-month", "2026-02")
        assert_fits(finance)
        with books.db.session() as s:
            assert s.scalars(select(LedgerPeriodRow.month)).all() != []

        # the one who asked sees it closed too
        ops.reload()
        expect(ops.get_by_test_id("closed-months").locator("tr[data-month='2026-01']")).to_be_visible()
        expect(ops.get_by_test_id("no-close-requests")).to_be_visible()

        dealer = dealer_phone.new_page()
        sign_in(dealer, ADMIN_PUDONG)
        open_menu_link(dealer, "nav-statement")
        expect(dealer.get_by_test_id("statement-closing")).to_contain_text("尚欠您")
        dealer.locator("#month").fill("2026-01")
        dealer.locator("form.search button[type=submit]").click()
        wait_until(dealer, "location.search.includes('month=2026-01')")
        closing = dealer.get_by_test_id("statement-summary").locator("tr[data-key='closing'] td")
        expect(closing).to_have_attribute("data-fen", str(owed_in_january(books)))
        moves = dealer.get_by_test_id("statement-moves").locator("tbody tr")
        assert moves.count() >= 3
        for i in range(moves.count()):  # each movement a card within the phone's width
            box = moves.nth(i).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, box
        assert_fits(dealer)
        assert_no_inline_style(dealer)
        with dealer.expect_download() as got:
            dealer.get_by_test_id("download-csv").click()
        rows = list(csv.reader(io.StringIO(Path(got.value.path()).read_text(encoding="utf-8-sig"))))
        summary = rows[rows.index(["汇总"]) + 2:]
        assert ["期末尚欠您的金额", yuan(owed_in_january(books))] in summary
    finally:
        for context in (ops_phone, finance_phone, dealer_phone):
            context.close()


def owed_in_january(books: Books) -> int:  # noqa: F811 - the imported fixture's value
    """What the lessor owed the Pudong dealer at 31 January, from the journal (fen)."""
    from sqlalchemy import func

    from books.accounts import DEALERS
    from infra.db.models import JournalEntryRow
    from infra.db.models import JournalLineRow

    with books.db.session() as s:
        return int(s.execute(select(func.sum(JournalLineRow.credit - JournalLineRow.debit)).join(
            JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id).where(
            JournalLineRow.account == DEALERS, JournalLineRow.dealer_id == books.dealers["pudong"],
            JournalEntryRow.booked_on <= date(2026, 1, 31))).scalar_one())

