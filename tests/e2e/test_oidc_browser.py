"""Company sign-in (OpenID Connect) in a real browser, against the real provider (tests/common/oidc.py).

Chromium follows every redirect itself: the BFF's login page → the provider's login and consent pages
(oidc-provider's development interactions) → the BFF's callback → the account page, signed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.common.oidc import free_port
from tests.common.oidc import oidc_provider
from tests.common.oidc import oidc_settings
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database

TIMEOUT = 10_000  # ms


@pytest.fixture(scope="module")
def oidc_bff() -> Iterator[tuple[LiveServer, str]]:
    """A BFF (its own PostgreSQL database, demo accounts) whose staff issuer is a provider started for it; yields
    both."""
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_oidc_browser"):
        upgrade(url)
        port = free_port()
        app = build_app(url, **oidc_settings(port))
        try:
            with LiveServer(app) as server, oidc_provider(port, server.url) as issuer:
                yield server, issuer
        finally:
            app.extensions["leaseline"].db.dispose()


def sign_in_at_provider(page: Page, issuer: str, login: str) -> None:
    """The provider's own pages: its login form (any password), then its consent page."""
    expect(page).to_have_url(re.compile("^" + re.escape(issuer) + "/"), timeout=TIMEOUT)
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any")
    page.locator('button[type="submit"]').click()
    page.wait_for_url(re.compile("^" + re.escape(issuer) + "/interaction/"), timeout=TIMEOUT)
    page.locator('button[type="submit"]').click()  # consent: "Continue"


def test_invited_staff_sign_in_with_their_company_account(page: Page, oidc_bff: tuple[LiveServer, str]) -> None:
    server, issuer = oidc_bff
    page.goto(f"{server.url}/login")
    page.get_by_role("link", name="使用企业账号登录").click()
    sign_in_at_provider(page, issuer, "admin.xihu")
    page.wait_for_url(f"{server.url}/desk", timeout=TIMEOUT)  # a dealer's staff land on their work (issue 17 §11)
    expect(page.get_by_test_id("signed-in")).to_contain_text("赵经理")
    page.get_by_test_id("signed-in").click()
    expect(page.locator("main")).to_contain_text("admin.xihu@demo.leaseline.cn")
    linked = server.app.extensions["leaseline"].accounts.by_subject(issuer, "admin.xihu")
    assert linked is not None and linked.email == "admin.xihu@demo.leaseline.cn"


@pytest.mark.console(r"/auth/oidc/callback\?.*status of 403")
def test_an_uninvited_identity_gets_a_clear_refusal(page: Page, oidc_bff: tuple[LiveServer, str]) -> None:
    server, issuer = oidc_bff
    page.goto(f"{server.url}/login")
    page.get_by_role("link", name="使用企业账号登录").click()
    sign_in_at_provider(page, issuer, "stranger@example.com")
    page.wait_for_url(re.compile("^" + re.escape(server.url) + "/auth/oidc/callback"), timeout=TIMEOUT)
    expect(page.get_by_role("alert")).to_have_text("您的企业账号尚未受邀使用租程，请联系经销商管理员。")
    expect(page.get_by_role("heading", name="员工登录")).to_be_visible()  # the login page, to try again
    expect(page.get_by_test_id("signed-in")).to_have_count(0)
    page.goto(f"{server.url}/account")
    expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)account$"))
