"""What a browser shows that no page of ours may show: console errors (Chromium reports each Content-Security-Policy
violation as one), uncaught exceptions, and 5xx answers from our own servers.

Every browser test is watched (tests/e2e/conftest.py): a context the test opens, by pytest-playwright's ``page``
or by ``browser.new_context``, reports here, and the test fails at its end if anything was seen. A test that
provokes an error on purpose (an answer of 422 with field errors, a page taken offline) says so with
``@pytest.mark.console(r"regex", ...)``: only messages matching one of its patterns are excused, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

from playwright.sync_api import BrowserContext
from playwright.sync_api import Page

from tests.common.oidc import PROVIDER_ORIGINS


@dataclass
class Problems:
    """Console errors, uncaught exceptions and 5xx answers on the pages of ``origins`` (loopback servers of the
    suite); pages of a foreign origin (the OpenID provider's sign-in page) are not ours to judge."""

    origins: tuple[str, ...]
    seen: list[str] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> BrowserContext:
        context.on("console", lambda m: self._add(m.page, f"console: {m.text}") if m.type == "error" else None)
        context.on("weberror", lambda e: self._add(e.page, f"error: {e.error}"))
        # which request failed: the console only says "Failed to load resource"
        context.on("response", lambda r: self._add(r.frame.page, f"HTTP {r.status} {r.request.method} {r.url}")
                   if r.status >= 500 and r.url.startswith(self.origins) else None)
        return context

    def unexcused(self, patterns: Iterable[str] = ()) -> list[str]:
        """What was seen, less the messages one of ``patterns`` (regular expressions) excuses."""
        compiled = [re.compile(pattern) for pattern in patterns]
        return [seen for seen in self.seen if not any(pattern.search(seen) for pattern in compiled)]

    def _add(self, page: Page | None, text: str) -> None:
        url = page.url if page is not None else "?"
        if url.startswith(tuple(origin + "/" for origin in PROVIDER_ORIGINS)):
            return  # the OpenID provider's sign-in page: not ours
        if page is None or url.startswith(self.origins) or url == "about:blank":
            self.seen.append(f"{url}: {text}")
