"""The salesperson's day on a phone (Pixel 7): the application list is the first thing on /applications, its
status filter folded into a sheet that lists the states with applications first."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.e2e.test_review_browser import sign_in

pytestmark = pytest.mark.e2e
SALES = "sales.pudong@demo.leaseline.cn"
PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"


def start_application(live_server: Any, email: str) -> str:
    """A draft application owned by ``email`` (made through the service, as the salesperson would)."""
    from bff.applications.services import Actor
    from infra.applications import Scope

    svc = live_server.app.extensions["leaseline"]
    owner = svc.accounts.by_email(email)[0]
    actor = Actor("staff", owner.id, owner.email, Scope(dealer_id=owner.dealer_id), dealer_id=owner.dealer_id,
                  owner_id=owner.id)
    return str(svc.applications.start(actor, "byd-han-ev", PLAN).id)


def test_the_application_list_is_above_the_fold_on_a_phone(page: Page, live_server: Any) -> None:
    start_application(live_server, SALES)
    sign_in(page, SALES)
    page.goto("/applications")
    first = page.get_by_test_id("pipeline").locator("li").first
    expect(first).to_be_visible()
    box = first.bounding_box()
    height = page.viewport_size["height"] if page.viewport_size else 0
    # on load, the applications are the first screen: the first one whole, in its upper half (not under the filter)
    assert box is not None and box["y"] < height / 2 and box["y"] + box["height"] < height, (box, height)

    # the filter is one tap away, in a sheet: the states with applications first, the empty ones after them
    sheet = page.get_by_test_id("status-filter")
    chips = sheet.locator("label.chip")
    expect(chips.first).to_be_hidden()
    sheet.locator("summary").click()
    expect(chips.first).to_be_visible()
    counts = [int(re.findall(r"\((\d+)\)", text)[-1]) for text in chips.all_inner_texts()]
    assert counts[0] > 0 and counts == sorted(counts, key=lambda n: n == 0), counts

    # choosing a state still filters the list in place
    with page.expect_response(re.compile(r".*/applications\?.*status=draft.*")):
        sheet.locator("label.chip", has=page.locator("input[value=draft]")).click()
    expect(page.get_by_test_id("pipeline").locator("li .status").first).to_have_text("草稿")
