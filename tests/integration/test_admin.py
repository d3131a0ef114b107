"""Dealer admins manage their staff; lessor ops switch modules per dealer. Every change is audited."""

from __future__ import annotations

from typing import Any

import pytest

from bff.auth.passwords import hash_secret
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
ADMIN_A = "admin.pudong@demo.leaseline.cn"


def test_ops_switch_modules_and_basic_signing_stays_on(bff_server: Any, app: Any) -> None:
    accounts = app.extensions["leaseline"].accounts
    dealer = next(d for d in accounts.dealers() if d.city == "杭州")
    with sign_in(bff_server.url, "ops@demo.leaseline.cn") as ops:
        token = csrf(ops, f"{bff_server.url}/dealers")
        r = ops.post(f"{bff_server.url}/dealers/{dealer.id}/modules", timeout=TIMEOUT,
                     data={"csrf_token": token, "module": ["telemetry", "no_such_module"]})
        assert r.status_code == 200
    assert accounts.dealer(dealer.id).modules == ("basic_signing", "telemetry")
    event = app.extensions["leaseline"].audit.search(action="dealer.modules")[0]
    assert event.actor_label == "ops@demo.leaseline.cn" and event.details["after"] == ["basic_signing", "telemetry"]


def test_dealer_admin_changes_a_role_in_their_dealer_only(bff_server: Any, app: Any) -> None:
    accounts = app.extensions["leaseline"].accounts
    pudong = accounts.by_email(ADMIN_A)[0].dealer_id
    xihu = accounts.by_email("admin.xihu@demo.leaseline.cn")[0].dealer_id
    mine = accounts.ensure_user("role.a@demo.leaseline.cn", "角色 A", "sales", pudong, hash_secret("x"), None, [])
    theirs = accounts.ensure_user("role.b@demo.leaseline.cn", "角色 B", "sales", xihu, hash_secret("x"), None, [])
    base = bff_server.url
    with sign_in(base, ADMIN_A) as admin:
        token = csrf(admin, f"{base}/staff/{mine}")
        assert admin.post(f"{base}/staff/{mine}/role", data={"role": "dealer_admin", "csrf_token": token},
                          timeout=TIMEOUT).status_code == 200
        assert admin.post(f"{base}/staff/{theirs}/role", data={"role": "dealer_admin", "csrf_token": token},
                          timeout=TIMEOUT).status_code == 404
        assert admin.post(f"{base}/staff/{mine}/role", data={"role": "auditor", "csrf_token": token},
                          timeout=TIMEOUT).status_code == 409
    assert accounts.get(mine).role == "dealer_admin" and accounts.get(theirs).role == "sales"
    change = app.extensions["leaseline"].audit.search(action="staff.role_change")[0]
    assert change.target == "role.a@demo.leaseline.cn"
    assert change.details == {"before": "sales", "after": "dealer_admin"}
    with sign_in(base, "sales.pudong@demo.leaseline.cn") as sales:
        token = csrf(sales, f"{base}/account")
        assert sales.post(f"{base}/staff/{mine}/role", data={"role": "sales", "csrf_token": token},
                          timeout=TIMEOUT).status_code == 403


def test_dealer_admin_invites_a_colleague_who_sets_a_password_once(bff_server: Any, app: Any) -> None:
    import re

    import requests

    base = bff_server.url
    with sign_in(base, ADMIN_A) as admin:
        token = csrf(admin, f"{base}/staff")
        bad = admin.post(f"{base}/staff", data={"email": "nope", "name": "", "role": "auditor", "csrf_token": token},
                         timeout=TIMEOUT)
        assert bad.status_code == 422 and 'value="nope"' in bad.text
        r = admin.post(f"{base}/staff", data={"email": "New.Colleague@demo.leaseline.cn", "name": "新同事",
                                              "role": "sales", "csrf_token": token}, timeout=TIMEOUT)
        assert r.status_code == 200
        link = re.search(r'data-testid="setup-link">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
        again = admin.post(f"{base}/staff", data={"email": "new.colleague@demo.leaseline.cn", "name": "x",
                                                  "role": "sales", "csrf_token": token}, timeout=TIMEOUT)
        assert again.status_code == 422
    new = app.extensions["leaseline"].accounts.by_email("new.colleague@demo.leaseline.cn")[0]
    assert new.dealer_id == app.extensions["leaseline"].accounts.by_email(ADMIN_A)[0].dealer_id
    with requests.Session() as s:
        token = csrf(s, link)
        short = s.post(link, data={"password": "short", "confirm": "short", "csrf_token": token}, timeout=TIMEOUT)
        assert short.status_code == 422
        ok = s.post(link, data={"password": "a-long-enough-password", "confirm": "a-long-enough-password",
                                "csrf_token": token}, timeout=TIMEOUT)
        assert ok.status_code == 200 and ok.url.endswith("/login")
        assert s.get(link, timeout=TIMEOUT).status_code == 410  # works once
    with sign_in(base, "new.colleague@demo.leaseline.cn", password="a-long-enough-password") as colleague:
        assert colleague.get(f"{base}/account", timeout=TIMEOUT).status_code == 200
    with sign_in(base, "sales.pudong@demo.leaseline.cn") as sales:
        token = csrf(sales, f"{base}/account")
        assert sales.post(f"{base}/staff", data={"email": "x@demo.leaseline.cn", "name": "x", "role": "sales",
                                                 "csrf_token": token}, timeout=TIMEOUT).status_code == 403


def test_ops_add_a_dealer_to_a_new_group(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    with sign_in(base, "ops@demo.leaseline.cn") as ops:
        token = csrf(ops, f"{base}/dealers")
        bad = ops.post(f"{base}/dealers", data={"group": "华南集团", "name": "", "city": "广州", "csrf_token": token},
                       timeout=TIMEOUT)
        assert bad.status_code == 422 and 'value="华南集团"' in bad.text
        ok = ops.post(f"{base}/dealers", data={"group": "华南集团", "name": "广州天河 4S 店", "city": "广州",
                                               "csrf_token": token}, timeout=TIMEOUT)
        assert ok.status_code == 200 and "广州天河 4S 店" in ok.text
    added = next(d for d in app.extensions["leaseline"].accounts.dealers() if d.name == "广州天河 4S 店")
    assert added.modules == ("basic_signing",) and added.active
    with sign_in(base, ADMIN_A) as admin:
        token = csrf(admin, f"{base}/account")
        assert admin.post(f"{base}/dealers", data={"group": "x", "name": "x", "city": "x", "csrf_token": token},
                          timeout=TIMEOUT).status_code == 403
