"""Dealer admins manage their staff; lessor ops switch modules per dealer. Every change is audited."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

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


def test_ops_record_a_new_dealer_s_registered_details_for_its_contracts(bff_server: Any, app: Any) -> None:
    from kyc.uscc import check_char

    base = bff_server.url
    accounts = app.extensions["leaseline"].accounts
    dealer_id = accounts.ensure_dealer(accounts.ensure_group("华东集团"), "苏州工业园区 4S 店", "苏州", [])
    first17 = "91320594MA1P2Q3R4"
    code = first17 + check_char(first17)
    url = f"{base}/dealers/{dealer_id}/details"
    with sign_in(base, "ops@demo.leaseline.cn") as ops:
        page = ops.get(f"{base}/dealers", timeout=TIMEOUT).text
        assert f'action="/dealers/{dealer_id}/details"' in page and 'data-testid="details-missing"' in page
        token = csrf(ops, f"{base}/dealers")
        wrong = code[:-1] + ("0" if code[-1] != "0" else "1")  # a wrong check character
        bad = ops.post(url, data={"credit_code": wrong, "address": "苏州工业园区星湖街 328 号",
                                  "csrf_token": token}, timeout=TIMEOUT)
        assert bad.status_code == 422 and f'value="{wrong}"' in bad.text and "星湖街 328 号" in bad.text
        bad = ops.post(url, data={"credit_code": code, "address": "", "csrf_token": token}, timeout=TIMEOUT)
        assert bad.status_code == 422
        bad = ops.post(url, data={"credit_code": code, "address": "苏州工业园区星湖街 328 号",
                                  "stripe_account": "acct_<script>", "csrf_token": token}, timeout=TIMEOUT)
        assert bad.status_code == 422 and "acct_&lt;script&gt;" in bad.text
        ok = ops.post(url, data={"credit_code": code.lower(), "address": "苏州工业园区星湖街 328 号",
                                 "stripe_account": "acct_1MTfjCQ9PRzxEwkZ", "csrf_token": token}, timeout=TIMEOUT)
        assert ok.status_code == 200
    dealer = accounts.dealer(dealer_id)
    assert (dealer.credit_code, dealer.address) == (code, "苏州工业园区星湖街 328 号")
    assert dealer.stripe_account == "acct_1MTfjCQ9PRzxEwkZ"
    with sign_in(base, ADMIN_A) as admin:  # a dealer admin does not change a dealer's legal identity
        token = csrf(admin, f"{base}/account")
        assert admin.post(url, data={"credit_code": code, "address": "x" * 10, "csrf_token": token},
                          timeout=TIMEOUT).status_code == 403


def test_ops_set_a_dealer_groups_issuer_and_it_is_audited(bff_server: Any, app: Any) -> None:
    accounts = app.extensions["leaseline"].accounts
    group = accounts.group_of(accounts.by_email(ADMIN_A)[0])
    base = bff_server.url
    url = f"{base}/dealer-groups/{group.id}/issuer"
    try:
        with sign_in(base, "ops@demo.leaseline.cn") as ops:
            page = ops.get(f"{base}/dealers", timeout=TIMEOUT)
            assert f'action="/dealer-groups/{group.id}/issuer"' in page.text
            token = csrf(ops, f"{base}/dealers")
            for bad in ("http://idp.example.com", "javascript:alert(1)", "https://idp.example.com/?x=1", "idp"):
                r = ops.post(url, data={"csrf_token": token, "issuer": bad}, timeout=TIMEOUT)
                assert r.status_code == 422, bad
            assert accounts.group(group.id).oidc_issuer is None
            r = ops.post(url, data={"csrf_token": token, "issuer": "https://login.east-china-auto.example/"},
                         timeout=TIMEOUT)
            assert r.status_code == 200 and 'value="https://login.east-china-auto.example"' in r.text
            assert accounts.group(group.id).oidc_issuer == "https://login.east-china-auto.example"
            # The login page now offers that group's company sign-in.
            assert f"/login/oidc/{group.id}" in ops.get(f"{base}/login", timeout=TIMEOUT).text
            assert ops.post(url, data={"csrf_token": token}, timeout=TIMEOUT).status_code == 200  # cleared
            assert accounts.group(group.id).oidc_issuer is None
            assert ops.post(f"{base}/dealer-groups/no-such-group/issuer", data={"csrf_token": token},
                            timeout=TIMEOUT).status_code == 404
        with sign_in(base, ADMIN_A) as admin:  # a dealer admin cannot change their group's sign-in
            r = admin.post(url, data={"csrf_token": csrf(admin, f"{base}/account"), "issuer": "https://evil.example"},
                           timeout=TIMEOUT)
            assert r.status_code == 403
        assert accounts.group(group.id).oidc_issuer is None
        events = app.extensions["leaseline"].audit.search(action="dealer_group.issuer")
        assert [e.details["after"] for e in events[:2]] == [None, "https://login.east-china-auto.example"]
        assert events[0].actor_label == "ops@demo.leaseline.cn"
    finally:
        accounts.set_group_issuer(group.id, None)


def test_ops_invite_lessor_staff_who_set_a_password_then_an_authenticator(bff_server: Any, app: Any) -> None:
    accounts = app.extensions["leaseline"].accounts
    base = bff_server.url
    email = "invited.risk@demo.leaseline.cn"
    with sign_in(base, "ops@demo.leaseline.cn") as ops:
        page = ops.get(f"{base}/staff", timeout=TIMEOUT)
        assert 'value="risk_officer_t1"' in page.text
        r = ops.post(f"{base}/staff", timeout=TIMEOUT, allow_redirects=False, data={
            "csrf_token": csrf(ops, f"{base}/staff"), "email": email, "name": "受邀风控", "role": "risk_officer_t1",
            "dealer": accounts.dealers()[0].id})
        assert r.status_code == 303
        detail = ops.get(base + r.headers["Location"], timeout=TIMEOUT)
        link = re.search(r'(http://[^"<\s]+/account/setup/[^"<\s]+)', detail.text).group(1)  # type: ignore[union-attr]
    member = accounts.by_email(email)[0]
    assert member.role == "risk_officer_t1" and member.dealer_id is None and not member.totp_enabled
    with sign_in(base, ADMIN_A) as admin:  # a dealer admin cannot invite the lessor's roles
        r = admin.post(f"{base}/staff", timeout=TIMEOUT, data={
            "csrf_token": csrf(admin, f"{base}/staff"), "email": "x.risk@demo.leaseline.cn", "name": "x",
            "role": "auditor"})
        assert r.status_code == 422 and accounts.by_email("x.risk@demo.leaseline.cn") is None
    with requests.Session() as s:
        token = csrf(s, link)
        password = "a long enough password"
        assert s.post(link, data={"csrf_token": token, "password": password, "confirm": password},
                      timeout=TIMEOUT).status_code == 200
        r = s.post(f"{base}/login", data={"email": email, "password": password,
                                           "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT,
                   allow_redirects=False)
        assert r.headers["Location"].endswith("/login/totp-setup")
