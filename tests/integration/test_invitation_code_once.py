"""The invitation's 向我的手机发送验证码 pressed twice at once (a double tap, two tabs) texts one code, not two: the
check of the last send and the new code's record are one step under the invitation's row lock, as a contract's
code is (ContractDispatch.send_code)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import SALES_A
from tests.integration.test_invitations import invite

pytestmark = pytest.mark.db
MOBILE = "13700137017"  # this test's own number: no other test texts it


def test_two_send_code_requests_at_once_text_one_code(bff_server: Any) -> None:
    base = bff_server.url
    c = bff_server.app.extensions["leaseline"]
    with sign_in(base, SALES_A) as sales:
        _, link = invite(base, sales, MOBILE)
    invitations = c.invitations
    real = invitations.resolve

    def slow(token: str) -> Any:
        # both requests read the invitation (no code sent yet) before either records its code
        found = real(token)
        time.sleep(0.5)
        return found

    since = datetime.now(UTC)
    with requests.Session() as customer:
        form = {"csrf_token": csrf(customer, link)}
        twin = requests.Session()  # a second connection of the same browser session
        twin.cookies.update(customer.cookies)
        invitations.resolve = slow
        try:
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda s: s.post(f"{link}/code", data=form, timeout=TIMEOUT),
                                        [customer, twin]))
        finally:
            del invitations.resolve
            twin.close()
    assert [a.status_code for a in answers] == [200, 200], [a.text[-500:] for a in answers]
    texts = [m for m in c.outbox.latest(10, to=MOBILE) if m.at >= since]
    assert len(texts) == 1, [m.body for m in texts]
    assert "验证码" in texts[0].body
