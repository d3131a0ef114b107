"""The customer's invoices on their Pixel 7 (issue 19 §3): on the lease page, once the worker has issued the rent's
invoice on the sandbox platform, the list shows its number, date, amount, tax and status within the phone's width,
says the invoices are specimens, and its link hands out the PDF, never cached."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from tests.e2e.test_lease_browser import assert_fits
from tests.e2e.test_lease_browser import assert_no_inline_style
from tests.integration.test_invoices_pages import GOOD_ID
from tests.integration.test_invoices_pages import leased
from tests.integration.test_invoices_pages import wait_for


def test_the_lessee_s_invoices_on_the_phone(browser: Browser, playwright: Playwright, live_server: Any) -> None:
    base, app = live_server.url, live_server.app
    customer, lease_id = leased(base, app, "13600136961", GOOD_ID)
    with customer:
        [rent] = wait_for(app, lease_id, {("blue", "rent"): "issued"})
        cookies = [{"name": c.name, "value": c.value or "", "url": base} for c in customer.cookies]
    phone = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
    try:
        phone.add_cookies(cookies)  # type: ignore[arg-type]
        page = phone.new_page()
        page.goto(f"/leases/{lease_id}#invoices")
        row = page.locator(f"tr[data-testid=invoice][data-invoice='{rent.id}']")
        expect(row).to_be_visible()
        expect(row).to_have_attribute("data-status", "issued")
        expect(row).to_contain_text(rent.number or "")
        expect(row).to_contain_text("已开具")
        expect(page.get_by_test_id("invoice-specimens")).to_contain_text("样票")
        box = row.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 412, box
        assert_fits(page)
        assert_no_inline_style(page)
        link = page.get_by_test_id("invoice-pdf")
        pdf = page.request.get(str(link.get_attribute("href")))
        assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
        assert "no-store" in pdf.headers["cache-control"] and pdf.body().startswith(b"%PDF")
    finally:
        phone.close()
