"""Waiting for a condition in the page under the app's strict CSP.

Playwright's ``page.wait_for_function`` evaluates its first try through the debugger protocol but polls with
``eval`` inside the page, which ``script-src 'self'`` (no 'unsafe-eval') forbids: a condition that is not
true at once fails with an EvalError. ``page.evaluate`` always goes through the protocol, so poll with it."""

from __future__ import annotations

import time

from playwright.sync_api import Page


def wait_until(page: Page, expression: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:g} s: {expression}")
        page.wait_for_timeout(100)
