"""Reading the lease contract on a phone (Pixel 7; issue 17 §2): the contract's own text reflows at a readable size
(it was A4 page images shown 346 px wide, body text ~4 px), the key terms come first in large type, the contents
jump to each clause, nothing is wider than the screen, and the fingerprint shown is the SHA-256 of the text the
contract service hands out and the one the PDF prints; the PDF and the page images stay one tap away."""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Page
from playwright.sync_api import expect

from infra.applications import Scope
from tests.e2e.test_contract_browser import fits
from tests.e2e.test_contract_browser import ready  # noqa: F401 -- the module's fixture: a contract ready to sign
from tests.e2e.test_kyc import sign_in
from tests.e2e.waiting import wait_until
from tests.integration.test_applications import SALES_A

TIMEOUT = 60
#: every element of the text that holds the contract's words
TEXT = "[data-testid=contract-text] :is(p, li, td, th)"


def printed_fingerprint(pdf: bytes) -> str:
    """The text fingerprint the PDF prints on its first page, read back by poppler."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contract.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(["pdftotext", "-nodiag", "-f", "1", "-l", "1", str(path), "-"], check=True,
                             capture_output=True, timeout=TIMEOUT).stdout.decode()
    found = re.search(r"SHA-256\S*\s*([0-9a-f]{64})", out)
    assert found, "the PDF prints no text fingerprint"
    return found.group(1)


def test_the_contract_is_read_as_text_on_a_phone(page: Page, live_server: Any, contract_server: Any,
                                                 ready: str) -> None:  # noqa: F811
    sign_in(page, SALES_A)
    page.goto(f"/applications/{ready}/contract")
    reading = page.get_by_test_id("contract-reading")
    expect(page.get_by_test_id("contract-text")).to_contain_text("第八条 违约责任")

    # the key terms first: the reading starts with them, above the contents and the text, in large type
    assert reading.evaluate("r => r.querySelector(':scope > :not(link, script)').dataset.testid") == "key-terms"
    terms, toc, text = (page.get_by_test_id(t).bounding_box() for t in ("key-terms", "contract-toc", "contract-text"))
    assert terms and toc and text and terms["y"] < toc["y"] < text["y"]
    labels = page.locator("[data-testid=key-terms] dt").all_inner_texts()
    assert labels == ["月租金", "年化利率（单利）", "租赁期限", "应付总额", "保证金", "提前结清", "逾期违约"]
    values = page.locator(".key-value").evaluate_all("vs => vs.map(v => parseFloat(getComputedStyle(v).fontSize))")
    assert min(values) >= 24, values

    # the contract's words at 16 px or more on the phone, without zooming, and nothing wider than the screen
    sizes = page.locator(TEXT).evaluate_all("es => es.map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert len(sizes) > 100 and min(sizes) >= 16, min(sizes)
    assert page.evaluate("document.querySelector('meta[name=viewport]').content").startswith("width=device-width")
    assert fits(page)
    page.get_by_test_id("contract-text").locator("table").last.scroll_into_view_if_needed()  # the schedule
    assert fits(page)
    # each figure of the schedule says what it is, in the contract's own words (the cell's data-label)
    labels = page.locator("[data-testid=contract-text] .ct-schedule tr:not(.ct-totals) td[data-label]").evaluate_all(
        "es => es.map(e => [getComputedStyle(e, '::before').content, e.dataset.label])")
    assert labels and all(content == f'"{label}"' for content, label in labels), labels[:6]
    assert {label for _content, label in labels} == {"租金", "本金", "利息", "剩余本金"}

    # the contents jump to each clause; the sticky contents close and do not cover it
    toc_links = page.locator("[data-testid=contract-toc] a")
    assert toc_links.count() >= 12
    for title, anchor in (("第九条 提前结清", "#ct-early-settlement"), ("附件一：租金支付计划表", "#ct-annex-1")):
        page.get_by_test_id("contract-toc").locator("summary").click()
        link = toc_links.filter(has_text=title)
        assert link.get_attribute("href") == anchor
        link.click()
        wait_until(page, f"location.hash === '{anchor}'")
        clause = page.locator(anchor)
        expect(clause).to_be_in_viewport()
        expect(clause.locator("h3")).to_have_text(title)
        expect(page.locator("[data-toc]")).not_to_have_attribute("open", "")
        assert fits(page)

    # the fingerprint shown is the text's, as the contract service hands it out (hashed here) and the PDF prints it
    shown = page.get_by_test_id("text-sha256").inner_text().strip()
    app = live_server.app.extensions["leaseline"].applications.repo.get(ready, Scope())
    served = requests.get(f"{contract_server.url}/api/v1/contracts/{app.contract_id}/text",
                          headers=contract_server.headers("contract:read"), timeout=TIMEOUT)
    assert served.status_code == 200
    assert shown == hashlib.sha256(served.json()["html"].encode("utf-8")).hexdigest()
    pdf = page.request.get(f"/applications/{ready}/contract.pdf")
    assert pdf.ok and printed_fingerprint(pdf.body()) == shown
    # beside the fingerprint, the very bytes it is the hash of, for anyone to hash (a download, never cached)
    original = page.get_by_test_id("text-original")
    assert original.get_attribute("href") == f"/applications/{ready}/contract/text.html"
    download = page.request.get(f"/applications/{ready}/contract/text.html")
    assert download.ok and "no-store" in download.headers["cache-control"]
    assert download.headers["content-disposition"].startswith("attachment")
    assert hashlib.sha256(download.body()).hexdigest() == shown
    # what is on the page is that text: its words, in order (the page only renames ids and classes)
    words = re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]+>", "", served.json()["html"])))
    assert re.sub(r"\s+", "", page.get_by_test_id("contract-text").text_content() or "") == words

    # the PDF and the page images one tap away
    expect(page.get_by_test_id("reading-pdf")).to_have_attribute("href", f"/applications/{ready}/contract.pdf")
    page.get_by_test_id("contract-pages-toggle").locator("summary").click()
    first = page.locator(".contract-pages img").first
    first.scroll_into_view_if_needed()
    wait_until(page, "document.querySelector('.contract-pages img').naturalWidth > 500")
    assert fits(page)

    # the same text on a page of its own, never kept by a cache (the customer's full ID number is in it)
    own = page.request.get(f"/applications/{ready}/contract/text")
    assert own.ok and "no-store" in own.headers["cache-control"] and shown in own.text()
