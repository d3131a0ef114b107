"""Browser tests: pytest-playwright on Debian's Chromium (RECIPES.md), Pixel 7 emulation by default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.problems import Problems

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/lib/chromium/chromium")  # the real binary, not the wrapper
ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]
#: a showroom tablet (landscape, touch), for the salesperson's screen
TABLET = {"viewport": {"width": 1024, "height": 768}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], playwright: Any) -> dict[str, Any]:
    return {**browser_context_args, **playwright.devices["Pixel 7"]}


@pytest.fixture(scope="session")
def base_url(live_server: Any) -> str:
    """pytest-base-url's fixture, pointed at the live server."""
    return str(live_server.url)


@pytest.fixture(autouse=True)
def page_problems(request: pytest.FixtureRequest, browser: Any) -> Iterator[Problems]:
    """Every browser context a test opens is watched; at the test's end nothing may have been seen on our pages
    (the suite's servers are all on 127.0.0.1) but what its ``console`` marks excuse (tests/e2e/problems.py)."""
    problems = Problems(("http://127.0.0.1", "http://localhost"))
    opened = browser.new_context

    def new_context(*args: Any, **kwargs: Any) -> Any:
        return problems.watch(opened(*args, **kwargs))

    browser.new_context = new_context
    try:
        yield problems
    finally:
        browser.new_context = opened
    excused = [pattern for mark in request.node.iter_markers("console") for pattern in mark.args]
    unexcused = problems.unexcused(excused)
    assert not unexcused, "the browser reported problems on our pages:\n" + "\n".join(unexcused)
