"""New passwords are checked against the most common breached passwords (NIST SP 800-63B §5.1.1.2, OWASP ASVS
4.0.3 2.1.7), offline, with a field error in the page's language."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db


def setup_link(base: str, app: Any, email: str) -> str:
    """An invited colleague's password-setup link, as their dealer admin sees it."""
    accounts = app.extensions["leaseline"].accounts
    user_id = accounts.create_staff(email, "新同事", "sales", accounts.by_email(ADMIN_A)[0].dealer_id)
    assert user_id is not None
    with sign_in(base, ADMIN_A) as admin:
        page = admin.get(f"{base}/staff/{user_id}", timeout=TIMEOUT).text
    return re.search(r'data-testid="setup-link">([^<]+)<', page).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize(("lang", "message"), [
    ("zh_CN", "该密码出现在已泄露的常用密码列表中"),
    ("en", "This password appears in lists of passwords exposed in data breaches"),
])
def test_a_breached_password_is_refused_with_a_field_error(bff_server: Any, app: Any, lang: str, message: str) -> None:
    base = bff_server.url
    link = setup_link(base, app, f"breached.{lang.lower()}@demo.leaseline.cn")
    with requests.Session() as s:
        s.cookies.set("locale", lang)
        token = csrf(s, link)
        for common in ("123456789012", "QWERTYUIOP123", "1qaz2wsx3edc"):  # 12 characters and more, yet common
            r = s.post(link, data={"password": common, "confirm": common, "csrf_token": token}, timeout=TIMEOUT)
            assert r.status_code == 422, common
            error = re.search(r'<p id="password-error" class="field-error" role="alert">([^<]+)</p>', r.text)
            assert error and message in error.group(1), r.text[:800]
            assert re.search(r'<input id="password"[^>]*aria-invalid="true"[^>]*aria-describedby="password-error"',
                             r.text)
        ok = s.post(link, data={"password": "晨跑-西湖-二〇二六-lease", "confirm": "晨跑-西湖-二〇二六-lease",
                                "csrf_token": token}, timeout=TIMEOUT)
        assert ok.status_code == 200 and ok.url.endswith("/login")
