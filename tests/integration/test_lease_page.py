"""The customer's lease on the phone (issue 18 §8), over real HTTP: the lessee's lease page — the next rent, the
arrears and late charges, the schedule row by row to the fen as the instalments stand, an early-settlement quote for
the default date and for a date they pick, computed as servicing.settlement_quote_on computes it from the priced plan
(an independent dated schedule) with the arrears and the late charges reckoned by hand — and who may open it: the
lessee (by their invitation's session or by 我的租赁), the dealer's staff and the lessor's ops, read-only; nobody
else."""

from __future__ import annotations

import re
from datetime import date
from datetime import timedelta
from decimal import Decimal
from typing import Any

import chinese_calendar
import pytest
import requests

from infra.servicing import SqlServicing
from plans.money import format_cny
from plans.product import EarlySettlement
from servicing.instalments import dated_schedule
from servicing.settlement import SettlementQuote
from servicing.settlement import settlement_quote_on
from tests.common.leases import PART_PAID
from tests.common.leases import fall_behind
from tests.common.leases import late_charge
from tests.common.leases import open_lease_for
from tests.common.leases import priced
from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import SALES_A
from tests.integration.test_invitations import latest_code
from tests.integration.test_returning_customer import join
from tests.integration.test_returning_customer import texted

pytestmark = pytest.mark.db
ATTRS = re.compile(r'([a-z][\w-]*)="([^"]*)"')


def attrs(tag: str) -> dict[str, str]:
    return dict(ATTRS.findall(tag))


def yuan(fen: int) -> str:
    return format_cny(Decimal(fen) / 100)


def working_days_after(day: date, n: int) -> date:
    """The n-th working day after ``day`` on China's official calendar (the package; Monday–Friday beyond it)."""
    while n:
        day += timedelta(days=1)
        try:
            n -= chinese_calendar.is_workday(day)
        except NotImplementedError:  # a year the package does not know
            n -= day.weekday() < 5
    return day


def quote_shown(page: str) -> tuple[dict[str, str], dict[str, str]]:
    """The settlement block's attributes and each line's amount by its code."""
    block = re.search(r'<section id="settlement"([^>]*)>', page)
    assert block, page[-2000:]
    lines = {a["data-line"]: a["data-amount"] for a in map(attrs, re.findall(r"<tr ([^>]*data-line=[^>]*)>", page))}
    return attrs(block.group(1)), lines


def expected_quote(starts_on: date, on: date, arrears: int, penalties: int) -> SettlementQuote:
    q = priced()
    return settlement_quote_on(dated_schedule(q, starts_on), on, terms=EarlySettlement(Decimal("0.03"), "ACT/360", 5),
                               deposit=q.deposit, arrears=Decimal(arrears) / 100, penalties=Decimal(penalties) / 100)


def assert_quote(page: str, expected: SettlementQuote) -> None:
    block, lines = quote_shown(page)
    assert expected.settles_on is not None
    assert block["data-settles-on"] == block["data-valid-until"] == expected.settles_on.isoformat()
    assert block["data-amount-due"] == f"{expected.amount_due:.2f}"
    assert lines == {line.code: f"{line.amount:.2f}" for line in expected.lines}
    for line in expected.lines:  # each line explained
        assert line.basis_zh in page, line.basis_zh


@pytest.fixture(scope="module")
def lease(bff_server: Any, app: Any) -> Any:
    """A customer (13700138801) whose application was handed over 70 days before the business date: rent 1 paid,
    rent 2 partly paid and overdue with its late charge, rent 3 not yet due."""
    base = bff_server.url
    customer, _ = join(base, app, "13700138801")
    application_id = start(base, customer)
    business_date = SqlServicing(app.extensions["leaseline"].db).business_date()
    starts_on = business_date - timedelta(days=70)
    lease_id = open_lease_for(app, application_id, starts_on)
    rows = fall_behind(app, lease_id, business_date)
    yield {"customer": customer, "application_id": application_id, "lease_id": lease_id, "rows": rows,
           "business_date": business_date, "starts_on": starts_on}
    customer.close()


def test_the_lessee_sees_the_schedule_to_the_fen_and_a_settlement_quote_as_the_maths_computes_it(
        bff_server: Any, lease: dict[str, Any]) -> None:
    base, rows, bd = bff_server.url, lease["rows"], lease["business_date"]
    url = f"{base}/leases/{lease['lease_id']}"
    r = lease["customer"].get(url, timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 200, r.text[:500]
    assert "no-store" in r.headers["Cache-Control"]
    page = r.text

    # the schedule: every instalment, each figure to the fen, its state
    shown = re.findall(r'<tr (data-testid="instalment"[^>]*)>(.*?)</tr>', page, re.S)
    assert len(shown) == len(rows) == 13
    for (tag, cells), row in zip(shown, rows.values(), strict=True):
        a = attrs(tag)
        paid = row.paid_principal + row.paid_interest
        assert (int(a["data-number"]), a["data-kind"], a["data-due"], int(a["data-rent"]), int(a["data-principal"]),
                int(a["data-interest"]), int(a["data-paid"])) == (
            row.number, row.kind, row.due_on.isoformat(), row.amount, row.principal, row.interest, paid)
        for figure in (row.amount, row.principal, row.interest, paid):
            assert yuan(figure) in cells, (row.number, cells)
    states = [attrs(tag)["data-state"] for tag, _ in shown]
    assert states[:3] == ["paid", "overdue", "pending"] and set(states[3:]) == {"pending"}

    # what is late, in red, with what to do; the next rent and its day; pay now
    second, third = rows[2], rows[3]
    overdue = second.amount - PART_PAID - second.interest
    block = re.search(r'<section ([^>]*data-testid="lease-overdue"[^>]*)>(.*?)</section>', page, re.S)
    assert block, page[:3000]
    assert (int(attrs(block.group(1))["data-overdue"]), int(attrs(block.group(1))["data-late-charges"])) == (
        overdue, second.penalty_accrued)
    assert "verdict bad" in block.group(1) and yuan(overdue) in block.group(2)
    assert yuan(second.penalty_accrued) in block.group(2) and "请尽快" in block.group(2)
    nxt = re.search(r'<section ([^>]*data-testid="lease-next"[^>]*)>(.*?)</section>', page, re.S)
    assert nxt and attrs(nxt.group(1))["data-due"] == third.due_on.isoformat()
    assert yuan(third.amount) in nxt.group(2) and third.due_on.isoformat() in nxt.group(2)
    assert f'href="/leases/{lease["lease_id"]}/pay"' in page
    assert f'/applications/{lease["application_id"]}/contract.pdf' in page
    assert f'/applications/{lease["application_id"]}/handover.pdf' in page
    assert "您的下一期应付" in page and "您的租金已逾期" in page  # the customer is spoken to
    # what is owed now is the headline, with pay now; the next rent comes second (walk-through 38a)
    now = re.search(r'<section ([^>]*data-testid="lease-due-now"[^>]*)>(.*?)</section>', page, re.S)
    assert now and int(attrs(now.group(1))["data-amount"]) == overdue + second.penalty_accrued
    assert 'data-testid="pay-now"' in now.group(2) and "第 2 期" in now.group(2)
    assert page.index('data-testid="lease-due-now"') < page.index('data-testid="lease-next"')
    assert "报价仅供参考" not in page  # the plan builder's footnote: no quote on a lease (walk-through 11)
    # automatic collection: off, and the way to set it up from here (issue 18 §8)
    auto = re.search(r'<p ([^>]*data-testid="lease-autopay"[^>]*)>(.*?)</p>', page, re.S)
    assert auto and attrs(auto.group(1))["data-on"] == "false" and "自动扣款未开启" in auto.group(2)
    assert f'href="/applications/{lease["application_id"]}/autopay"' in auto.group(2)

    # the quote by default: the business date plus the contract's 5 working days of notice
    on = working_days_after(bd, 5)
    assert on < third.due_on
    penalties = late_charge(overdue, (on - second.due_on).days)  # accrued and to come, through the settlement day
    assert_quote(page, expected_quote(lease["starts_on"], on, overdue, penalties))

    # a date the customer picks: rent 3's due day (rent 3 is then owed too, not yet late)
    picked = third.due_on
    r = lease["customer"].get(url, params={"settle_on": picked.isoformat()}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert_quote(r.text, expected_quote(lease["starts_on"], picked, overdue + third.amount,
                                        late_charge(overdue, (picked - second.due_on).days)))
    # the same from htmx: the quote's block alone
    r = lease["customer"].get(url, params={"settle_on": picked.isoformat()}, headers={"HX-Request": "true"},
                              timeout=TIMEOUT)
    assert r.status_code == 200 and "<html" not in r.text and "HX-Request" in r.headers.get("Vary", "")
    assert_quote(r.text, expected_quote(lease["starts_on"], picked, overdue + third.amount,
                                        late_charge(overdue, (picked - second.due_on).days)))

    # a date that is no date, or sooner than the notice the contract asks: refused, what was typed kept
    for typed in ("31/02/2026", (on - timedelta(days=1)).isoformat()):
        r = lease["customer"].get(url, params={"settle_on": typed}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'class="field-error"' in r.text and f'value="{typed}"' in r.text, typed
        assert 'data-line="' not in r.text


def test_only_the_lessee_the_dealer_s_staff_and_ops_open_the_lease(bff_server: Any, app: Any,
                                                                    lease: dict[str, Any]) -> None:
    base, lease_id, application_id = bff_server.url, lease["lease_id"], lease["application_id"]
    url = f"{base}/leases/{lease_id}"
    # another customer, signed in on their own phone: as if there were no such lease
    other, _ = join(base, app, "13700138802")
    with other:
        start(base, other)
        r = other.get(url, timeout=TIMEOUT, allow_redirects=False)
        # the not-found page leads the customer back to their applications, staff to their work (walk-through 12)
        assert r.status_code == 404 and 'class="button" href="/applications"' in r.text and "返回车型列表" not in r.text
    # nobody signed in: the customer's sign-in, then back here
    with requests.Session() as anonymous:
        r = anonymous.get(url, timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 302 and "/mine/sign-in" in r.headers["Location"]
        assert "no-store" in r.headers["Cache-Control"]
    # another dealer's staff: not found; a risk officer: not theirs to see
    with sign_in(base, "admin.xihu@demo.leaseline.cn") as xihu:
        r = xihu.get(url, timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 404 and 'class="button" href="/start"' in r.text and "返回车型列表" not in r.text
    with sign_in(base, "risk1@demo.leaseline.cn") as risk:
        assert risk.get(url, timeout=TIMEOUT, allow_redirects=False).status_code == 403
    # the dealer's salesperson and the lessor's ops: read-only, worded for staff (no pay button), the mobile masked
    for email in (SALES_A, "ops@demo.leaseline.cn"):
        with sign_in(base, email) as staff:
            r = staff.get(url, timeout=TIMEOUT, allow_redirects=False)
            assert r.status_code == 200, email
            assert f"/leases/{lease_id}/pay" not in r.text and "您的" not in r.text and "137****8801" in r.text
            assert "13700138801" not in r.text and "下一期应付" in r.text and "租金逾期" in r.text
            if email == SALES_A:  # the application's page links the lease once handed over
                detail = staff.get(f"{base}/applications/{application_id}", timeout=TIMEOUT)
                assert f'href="/leases/{lease_id}"' in detail.text

    # back by 我的租赁 on another phone (mobile number and code): the lease is listed, and opens
    with requests.Session() as phone:
        r = phone.post(f"{base}/mine/sign-in", data={"mobile": "13700138801",
                                                    "csrf_token": csrf(phone, f"{base}/mine/sign-in")},
                       timeout=TIMEOUT)
        texted(app)
        r = phone.post(f"{base}/mine/code", data={"code": latest_code(app, "13700138801"),
                                                  "csrf_token": csrf(phone, f"{base}/mine/code")}, timeout=TIMEOUT)
        assert r.status_code == 200 and r.url.endswith("/mine"), r.text[:300]
        assert f'href="/leases/{lease_id}"' in r.text
        r = phone.get(url, timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 200 and 'data-testid="settlement"' in r.text
        # this phone now opens the lease's application (and its documents) as the lessee, not the staff sign-in
        r = phone.get(f"{base}/applications/{application_id}", timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 200
