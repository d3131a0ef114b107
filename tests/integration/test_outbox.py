"""The SMS sandbox outbox (``/dev/outbox``): each dealer's staff read only their own dealer's messages (a xihu
salesperson read pudong customers' contract-signing codes), the lessor's staff read all, and production has no
such page at all."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.integration.test_auth import RISK1
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import SALES_B
from tests.integration.test_invitations import invite
from tests.integration.test_invitations import request_code

pytestmark = pytest.mark.db
PUDONG_MOBILE, XIHU_MOBILE = "13900139301", "13900139302"


def outbox(s: requests.Session, base: str) -> str:
    r = s.get(f"{base}/dev/outbox", timeout=TIMEOUT)
    assert r.status_code == 200
    return r.text


def test_each_dealer_reads_only_its_own_text_messages(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    for seller, mobile in ((SALES_A, PUDONG_MOBILE), (SALES_B, XIHU_MOBILE)):
        with sign_in(base, seller) as sales, requests.Session() as customer:
            _, link = invite(base, sales, mobile)
            request_code(customer, link)  # the code goes out through the SMS port, as in the showroom
    with sign_in(base, SALES_B) as xihu:
        page = outbox(xihu, base)
        assert XIHU_MOBILE in page and PUDONG_MOBILE not in page
    with sign_in(base, SALES_A) as pudong:
        page = outbox(pudong, base)
        assert PUDONG_MOBILE in page and XIHU_MOBILE not in page
    with sign_in(base, RISK1) as lessor:  # the lessor's staff work across dealers
        page = outbox(lessor, base)
        assert PUDONG_MOBILE in page and XIHU_MOBILE in page
    stored = {m.to: m.dealer_id for m in app.extensions["leaseline"].outbox.latest(50)}
    accounts = app.extensions["leaseline"].accounts
    assert stored[PUDONG_MOBILE] == accounts.by_email(SALES_A)[0].dealer_id
    assert stored[XIHU_MOBILE] == accounts.by_email(SALES_B)[0].dealer_id


def test_the_outbox_is_not_mounted_in_production(db_url: str) -> None:
    from tests.conftest import build_app

    production = build_app(db_url, env="production")
    development = build_app(db_url, env="development")
    try:
        assert "/dev/outbox" not in {rule.rule for rule in production.url_map.iter_rules()}
        assert production.test_client().get("/dev/outbox").status_code == 404
        assert "/dev/outbox" in {rule.rule for rule in development.url_map.iter_rules()}
    finally:
        production.extensions["leaseline"].db.dispose()
        development.extensions["leaseline"].db.dispose()
