"""我的租赁's 发送验证码 pressed again within the minute after a code was sent (re-walk finding 2): no new code is sent,
and the code page says so — a code went just now, a new one in N seconds (the countdown) — instead of leaving the
customer to type a code that was already used and be told 该验证码已失效，请重新获取."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.test_applications import start
from tests.integration.test_invitations import latest_code
from tests.integration.test_returning_customer import ask_code
from tests.integration.test_returning_customer import form_token
from tests.integration.test_returning_customer import join
from tests.integration.test_returning_customer import phone
from tests.integration.test_returning_customer import texted

pytestmark = pytest.mark.db
MOBILE = "13700137077"
NOTICE = 'data-testid="code-too-soon"'


def test_a_code_asked_again_within_the_minute_says_to_wait(bff_server: Any, app: Any) -> None:
    customer, _ = join(bff_server.url, app, MOBILE)
    with customer:
        start(bff_server.url, customer)
    first = phone(app, "10.0.7.77")
    assert ask_code(first, MOBILE).status_code == 303
    texted(app)
    shown = first.get("/mine/code").get_data(as_text=True)
    assert NOTICE not in shown  # a code sent: nothing to wait for
    used = first.post("/mine/code", data={"code": latest_code(app, MOBILE),
                                          "csrf_token": form_token(first, "/mine/code")})
    assert used.status_code == 303 and used.headers["Location"].endswith("/mine")
    # the customer (signed out, or on another phone) presses 发送验证码 again within the minute
    again = phone(app, "10.0.7.78")
    assert ask_code(again, MOBILE).status_code == 303
    shown = again.get("/mine/code").get_data(as_text=True)
    assert NOTICE in shown and "验证码刚刚已发送" in shown, shown
    wait = re.search(r'data-testid="code-too-soon"[^>]*data-wait="(\d+)"', shown)
    assert wait is not None and 50 <= int(wait.group(1)) <= 60
    assert f"请等待 {wait.group(1)} 秒后再重新获取" in shown  # the countdown's seconds, in the customer's words
    assert 'data-testid="code-spent"' not in shown and "已失效" not in shown
    assert NOTICE not in again.get("/mine/code").get_data(as_text=True)  # said once
