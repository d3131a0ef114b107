"""Arrears (issue 18 §4) on a real PostgreSQL database of their own: a lease rolled forward with ``leaseline servicing
close --until`` gets its reminders deferred by the close on the right dates, once (a replayed close, or the hook run
again on the same batch, defers nothing more), texted by the ``servicing.remind`` task with the figures as they are
(nothing for a rent paid meanwhile); its bucket moves M1 → M2 → M3 from the oldest unpaid rent, the M3 flag is set
once; the ops queue lists it, a contact's outcome, note and promise-to-pay date are recorded (bad input: 422, what
was typed kept), a salesperson is refused and another dealer's admin does not find it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import date
from datetime import time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bff.servicing.arrears import Reminders
from infra.arrears import SqlArrears
from infra.db.models import ApplicationRow
from infra.db.models import ArrearsLogRow
from infra.db.models import CollateralFlagRow
from infra.db.models import InstalmentRow
from infra.db.models import ServicingReminderRow
from infra.servicing import BatchEvents
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from infra.sms import SIGNATURE
from plans.policy import load_policy
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_servicing_close import NOW
from tests.integration.test_servicing_close import cli
from tests.integration.test_servicing_close import late_charge
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
MOBILE = "13900000042"
SHANGHAI = ZoneInfo("Asia/Shanghai")
OPS, SALES, ADMIN_A, ADMIN_B = ("ops@demo.leaseline.cn", "sales.pudong@demo.leaseline.cn",
                                "admin.pudong@demo.leaseline.cn", "admin.xihu@demo.leaseline.cn")


@pytest.fixture(scope="module")
def app() -> Iterator[Flask]:
    """The BFF on a database of its own (its business date is one record for the whole database); no worker: the
    test runs the reminder task itself."""
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_arrears"):
        upgrade(url)
        application = build_app(url)
        yield application
        application.extensions["leaseline"].db.dispose()


def open_lease(app: Flask) -> tuple[str, str]:
    """A lease of the Pudong dealer from 10 March 2026, rents in arrears (rent 1 due Friday 10 April, overdue from
    the 11th), for a customer whose application holds their mobile number (encrypted, as the application keeps it)."""
    svc = app.extensions["leaseline"]
    dealer = svc.accounts.by_email(SALES)[0].dealer_id
    application_id = str(uuid.uuid4())
    with svc.db.session() as s:
        s.add(ApplicationRow(id=application_id, dealer_id=dealer, status="delivered", vehicle_id="byd-han-ev",
                             vehicle_label="比亚迪 汉EV", plan_code="p", plan_json="{}", customer_name="韩梅梅",
                             mobile_masked="139****0042", draft_enc=svc.vault.encrypt(
                                 json.dumps({"mobile": MOBILE}), f"application:{application_id}")))
        s.flush()
        plan = lease_plan(record(date(2026, 3, 10)))
        lease_id = SqlServicing(svc.db).open_lease(s, application_id, dealer, plan, NOW)
    assert lease_id is not None
    return lease_id, application_id


def roll(app: Flask, until: str) -> None:
    result = cli(app.extensions["leaseline"].db.url, "servicing", "close", "--until", until)
    assert result.exit_code == 0, result.output


def reminders(app: Flask) -> list[tuple[int, str, int, date, str]]:
    """(id, kind, rent number, the close that deferred it, status), in order."""
    with app.extensions["leaseline"].db.session() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(ServicingReminderRow.id, ServicingReminderRow.kind, InstalmentRow.number,
                   ServicingReminderRow.business_date, ServicingReminderRow.status)
            .join(InstalmentRow, InstalmentRow.id == ServicingReminderRow.instalment_id)
            .order_by(ServicingReminderRow.id))]


def jobs(app: Flask) -> list[tuple[int, Any]]:
    """The servicing.remind jobs deferred: (reminder id, when it may run)."""
    with app.extensions["leaseline"].db.session() as s:
        return [(int(args["reminder_id"]), at) for args, at in s.execute(text(
            "SELECT args, scheduled_at FROM procrastinate_jobs WHERE task_name = 'servicing.remind' ORDER BY id"))]


def texts(app: Flask) -> list[str]:
    return [m.body for m in reversed(app.extensions["leaseline"].outbox.latest(to=MOBILE))]


def rent(app: Flask, lease_id: str, number: int) -> InstalmentRow:
    with app.extensions["leaseline"].db.session() as s:
        return s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id,
                                                     InstalmentRow.number == number)).one()


def arrears(app: Flask, lease_id: str) -> tuple[str, int] | None:
    """(bucket, days past due) as the collections page reads them."""
    case = SqlArrears(app.extensions["leaseline"].db).case(lease_id, None)
    assert case is not None
    return (case.arrears.bucket, case.arrears.days_past_due) if case.arrears else None


def row_version(app: Flask, lease_id: str) -> str:
    """The lease's arrears row's version (PostgreSQL's xmin: the transaction that last wrote it)."""
    with app.extensions["leaseline"].db.session() as s:
        return str(s.execute(text("SELECT xmin FROM lease_arrears WHERE lease_id = :id"),
                             {"id": lease_id}).scalar_one())


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def test_a_late_lease_is_reminded_once_on_its_dates_moves_to_m3_and_is_worked_from_the_queue(app: Flask) -> None:
    svc = app.extensions["leaseline"]
    lease_id, application_id = open_lease(app)
    SqlServicing(svc.db).start_business_date(date(2026, 4, 1), NOW)
    remind = Reminders(SqlArrears(svc.db), svc.applications, svc.sms, load_policy().reminders).send
    rent1 = rent(app, lease_id, 1)

    # three days before the due date: the close of 6 April defers it (texted on the 7th), not the close before
    roll(app, "2026-04-05")
    assert reminders(app) == []
    roll(app, "2026-04-06")
    [(first, kind, number, deferred, status)] = reminders(app)
    assert (kind, number, deferred, status) == ("before_due", 1, date(2026, 4, 6), "queued")
    [(job_reminder, at)] = jobs(app)
    assert job_reminder == first
    # never at night: at once within 09:00–20:00 in Beijing, else the next 09:00 (servicing/arrears.py send_at)
    assert at is None or at.astimezone(SHANGHAI).time() == time(9, 0)
    remind(first)
    assert texts(app) == [f"【{SIGNATURE}】您的融资租赁第1期租金 {yuan(rent1.amount)} 元将于 2026年4月10日 到期，"
                          "请按时支付；已开通自动扣款的将于当日扣款。可在“我的租赁”查看和支付，如已支付请忽略。"]
    remind(first)  # the job run again (a retry after its worker died): sent already, nothing more
    assert len(texts(app)) == 1 and reminders(app)[0][4] == "sent"

    # a date closed again changes nothing; the hook run again on the same batch defers nothing either (unique key)
    replay = cli(svc.db.url, "servicing", "close", "--date", "2026-04-06")
    assert replay.exit_code == 0 and "already closed" in replay.stdout
    with svc.db.session() as s:
        SqlArrears(svc.db).on_close(BatchEvents(date(2026, 4, 6), s, (lease_id,), (), ()), load_policy().reminders,
                                    NOW)
    assert len(reminders(app)) == 1 and len(jobs(app)) == 1

    # due Friday 10 April, unpaid: overdue from the 11th; texted the day after it became overdue, and a week after
    roll(app, "2026-04-10")
    assert len(reminders(app)) == 1 and arrears(app, lease_id) is None
    roll(app, "2026-04-11")
    assert [r[1:4] for r in reminders(app)[1:]] == [("overdue_1", 1, date(2026, 4, 11))]
    assert arrears(app, lease_id) == ("M1", 1)
    remind(reminders(app)[1][0])
    assert texts(app)[-1] == (f"【{SIGNATURE}】您的融资租赁第1期租金 {yuan(rent1.amount)} 元（2026年4月10日 到期）"
                              f"已逾期 1 天，逾期违约金已计 {yuan(late_charge(rent1.amount, 1))} 元并按日累计。"
                              "请尽快在“我的租赁”支付，如已支付请忽略。")
    written = row_version(app, lease_id)
    roll(app, "2026-04-16")
    assert len(reminders(app)) == 2
    # the days past due follow the calendar, read from the last close: the row is not written again for them
    assert arrears(app, lease_id) == ("M1", 6) and row_version(app, lease_id) == written
    roll(app, "2026-04-17")
    assert [r[1:4] for r in reminders(app)[2:]] == [("overdue_7", 1, date(2026, 4, 17))]
    remind(reminders(app)[2][0])
    assert f"已逾期 7 天，逾期违约金已计 {yuan(late_charge(rent1.amount, 7))} 元" in texts(app)[-1]

    # rent 2 (due Sunday 10 May) is reminded on the 6th, but paid before the text goes: nothing is texted
    roll(app, "2026-05-06")
    (rent2_reminder, kind, number, _, _) = reminders(app)[3]
    assert (kind, number) == ("before_due", 2)
    pay(app, lease_id, 2)
    remind(rent2_reminder)
    assert reminders(app)[3][4] == "skipped" and len(texts(app)) == 3

    # the bucket moves with the oldest unpaid rent: day 30 M1, day 31 M2, day 60 M2, day 61 M3 (flagged once)
    roll(app, "2026-05-10")
    assert arrears(app, lease_id) == ("M1", 30)
    roll(app, "2026-05-11")
    assert arrears(app, lease_id) == ("M2", 31)
    roll(app, "2026-06-09")
    assert arrears(app, lease_id) == ("M2", 60) and flagged(app, lease_id) is None
    roll(app, "2026-06-10")
    assert arrears(app, lease_id) == ("M3", 61) and flagged(app, lease_id) == date(2026, 6, 10)
    assert [r[1:3] for r in reminders(app)] == [("before_due", 1), ("overdue_1", 1), ("overdue_7", 1),
                                                ("before_due", 2), ("before_due", 3)]  # no text on rent 2, paid

    queue_and_case(app, lease_id, application_id)

    # paid (rent 1, and rent 3 before it became overdue): out of arrears at the next close; the flag stays, set once
    pay(app, lease_id, 1)
    pay(app, lease_id, 3)
    roll(app, "2026-06-12")
    assert arrears(app, lease_id) is None and flagged(app, lease_id) == date(2026, 6, 10)
    with svc.db.session() as s:
        history = [(r.kind, r.bucket, r.business_date) for r in s.scalars(
            select(ArrearsLogRow).where(ArrearsLogRow.lease_id == lease_id, ArrearsLogRow.kind != "contact")
            .order_by(ArrearsLogRow.id))]
        assert s.scalars(select(CollateralFlagRow)).all()[0].days_past_due == 61
    assert history == [("bucket", "M1", date(2026, 4, 11)), ("bucket", "M2", date(2026, 5, 11)),
                       ("bucket", "M3", date(2026, 6, 10)), ("flag", "M3", date(2026, 6, 10)),
                       ("bucket", None, date(2026, 6, 11))]


def pay(app: Flask, lease_id: str, number: int) -> None:
    """The rent paid in full (as the collection's allocation books it: its state and paid parts)."""
    with app.extensions["leaseline"].db.session() as s:
        s.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number == number)
                  .values(state="paid", paid_principal=InstalmentRow.principal, paid_interest=InstalmentRow.interest,
                          paid_penalty=InstalmentRow.penalty_accrued))


def flagged(app: Flask, lease_id: str) -> date | None:
    with app.extensions["leaseline"].db.session() as s:
        return s.execute(select(CollateralFlagRow.flagged_on).where(CollateralFlagRow.lease_id == lease_id)
                         ).scalar_one_or_none()


def queue_and_case(app: Flask, lease_id: str, application_id: str) -> None:
    """The ops desk: the queue lists the lease in M3, the contact form refuses a promise without its date (422,
    the note kept) and records one with it; a salesperson is refused, another dealer's admin finds nothing."""
    with LiveServer(app) as server:
        base = server.url
        ops = sign_in(base, OPS)
        page = ops.get(f"{base}/servicing/collections", timeout=TIMEOUT)
        assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
        assert f'data-lease="{lease_id}" data-bucket="M3"' in page.text and "韩梅梅" in page.text
        assert "139****0042" in page.text and MOBILE not in page.text  # masked for a role without pii.unmask
        assert 'data-testid="collateral-flag"' in page.text and "催收" in page.text
        assert ops.get(f"{base}/servicing/collections", params={"bucket": "M1"}, timeout=TIMEOUT).text.count(
            'data-testid="collections-line"') == 0
        case_url = f"{base}/servicing/collections/{lease_id}"
        case = ops.get(case_url, timeout=TIMEOUT)
        assert case.status_code == 200 and 'data-bucket="M3"' in case.text and 'data-reminder="overdue_7"' in case.text
        refused = ops.post(f"{case_url}/contacts", timeout=TIMEOUT, allow_redirects=False, data={
            "csrf_token": csrf(ops, case_url), "outcome": "promised", "note": "客户说下周发工资后还"})
        assert refused.status_code == 422 and 'data-testid="error-promise_date"' in refused.text
        assert "客户说下周发工资后还" in refused.text
        done = ops.post(f"{case_url}/contacts", timeout=TIMEOUT, allow_redirects=False, data={
            "csrf_token": csrf(ops, case_url), "outcome": "promised", "note": "客户说下周发工资后还",
            "promise_date": "2026-06-18"})
        assert done.status_code == 303 and done.headers["Location"].endswith(f"/servicing/collections/{lease_id}"
                                                                            "?notice=recorded#history")
        history = ops.get(case_url, timeout=TIMEOUT).text
        assert 'data-outcome="promised"' in history and "2026-06-18" in history and "郑运营" in history
        listed = ops.get(f"{base}/servicing/collections", timeout=TIMEOUT).text
        line = re.search(rf'data-lease="{lease_id}".*?</tr>', listed, re.S)
        assert line and "承诺还款" in line.group(0) and "2026-06-18" in line.group(0)
        # the dealer's admin sees their own dealer's lease and may show the number (logged); another dealer's not
        with sign_in(base, ADMIN_A) as admin:
            assert f'data-lease="{lease_id}"' in admin.get(f"{base}/servicing/collections", timeout=TIMEOUT).text
            assert f"/applications/{application_id}/unmask/mobile" in admin.get(case_url, timeout=TIMEOUT).text
        with sign_in(base, ADMIN_B) as other:
            assert f'data-lease="{lease_id}"' not in other.get(f"{base}/servicing/collections", timeout=TIMEOUT).text
            assert other.get(case_url, timeout=TIMEOUT).status_code == 404
            assert other.post(f"{case_url}/contacts", timeout=TIMEOUT, allow_redirects=False, data={
                "csrf_token": csrf(other, f"{base}/servicing/collections"), "outcome": "no_answer"}).status_code == 404
        with sign_in(base, SALES) as sales:
            assert sales.get(f"{base}/servicing/collections", timeout=TIMEOUT).status_code == 403
            assert sales.get(case_url, timeout=TIMEOUT).status_code == 403
            assert sales.post(f"{case_url}/contacts", timeout=TIMEOUT, allow_redirects=False, data={
                "csrf_token": csrf(sales, f"{base}/account"), "outcome": "no_answer"}).status_code == 403
        with requests.Session() as anonymous:
            r = anonymous.get(f"{base}/servicing/collections", timeout=TIMEOUT, allow_redirects=False)
            assert r.status_code == 302 and "/login" in r.headers["Location"]
    with app.extensions["leaseline"].db.session() as s:
        [(outcome, promise)] = s.execute(select(ArrearsLogRow.outcome, ArrearsLogRow.promise_date).where(
            ArrearsLogRow.kind == "contact")).all()
    assert (outcome, promise) == ("promised", date(2026, 6, 18))
