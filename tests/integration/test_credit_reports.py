"""Credit reporting (issue 18 §7) on a real PostgreSQL database of its own, end to end with the sandbox bureau: two
leases fall behind in April 2026; the close of the notice day (23 April) defers one notice each, once; one is texted
(the other's text never goes); the first close of May asks for April's report once (its row, one job under a queueing
lock); the report records the told lease overdue (``1``) and withholds the other's overdue rent (``N``), the bureau
rejects the record without an ID number (its masked name kept), and neither a second run nor a retry after a lost
answer submits the month again; ops read it, a salesperson cannot; the command line prints it as recorded."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bff.servicing.credit_reports import CreditNotices
from bff.servicing.credit_reports import CreditReporting
from bff.servicing.credit_reports import credit_reporting
from infra.credit_bureau import CreditBureauUnavailable
from infra.credit_bureau import Receipt
from infra.credit_bureau import SandboxCreditBureau
from infra.credit_reports import SqlCreditReports
from infra.db.models import ApplicationRow
from infra.db.models import CreditReportNoticeRow
from infra.db.models import CreditReportRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.end_of_term import SqlEndOfTerm
from infra.servicing import BatchEvents
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from infra.sms import SmsUnavailable
from servicing.credit_report import Period
from servicing.credit_report import status_record
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in
from tests.integration.test_servicing_close import NOW
from tests.integration.test_servicing_close import cli
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
OPS, SALES = "ops@demo.leaseline.cn", "sales.pudong@demo.leaseline.cn"
TOLD, UNTOLD = "13900000071", "13900000072"
ID_NUMBER = "11010519491231002X"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The BFF on a database of its own, its sandbox bureau in a folder of its own; no worker: the test runs the
    tasks itself."""
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_credit"):
        upgrade(url)
        application = build_app(url)
        application.extensions["leaseline"].credit_bureau = SandboxCreditBureau(tmp_path_factory.mktemp("bureau"))
        yield application
        application.extensions["leaseline"].db.dispose()


def open_lease(app: Flask, mobile: str, name: str, id_number: str | None, contract_number: str) -> str:
    """A lease of the Pudong dealer from 10 March 2026, rents in arrears (rent 1 due 10 April, overdue from the
    11th), the applicant's answers (encrypted) with their name, mobile and (or not) ID number."""
    svc = app.extensions["leaseline"]
    dealer = svc.accounts.by_email(SALES)[0].dealer_id
    application_id = str(uuid.uuid4())
    answers = {"mobile": mobile, "name": name, **({"id_number": id_number} if id_number else {})}
    with svc.db.session() as s:
        s.add(ApplicationRow(id=application_id, dealer_id=dealer, status="delivered", vehicle_id="byd-han-ev",
                             vehicle_label="比亚迪 汉EV", plan_code="p", plan_json="{}", customer_name=name,
                             mobile_masked=mobile[:3] + "****" + mobile[-4:],
                             draft_enc=svc.vault.encrypt(json.dumps(answers), f"application:{application_id}")))
        s.flush()
        handover = {**record(date(2026, 3, 10)), "contract_number": contract_number}
        lease_id = SqlServicing(svc.db).open_lease(s, application_id, dealer, lease_plan(handover), NOW)
    assert lease_id is not None
    return lease_id


def roll(app: Flask, until: str) -> None:
    result = cli(app.extensions["leaseline"].db.url, "servicing", "close", "--until", until)
    assert result.exit_code == 0, result.output


def jobs(app: Flask, task: str, status: str | None = None) -> list[tuple[dict[str, object], str | None]]:
    with app.extensions["leaseline"].db.session() as s:
        return [(dict(args), lock) for args, lock in s.execute(text(
            "SELECT args, queueing_lock FROM procrastinate_jobs WHERE task_name = :task "
            "AND (CAST(:status AS text) IS NULL OR status::text = :status) ORDER BY id"),
            {"task": task, "status": status})]


class Down:
    """An SMS platform that does not answer."""

    def send(self, *args: object, **kwargs: object) -> None:
        raise SmsUnavailable("timed out")


class LostAnswer:
    """A bureau that takes the file but whose answer never comes back (an outage)."""

    def __init__(self, bureau: SandboxCreditBureau) -> None:
        self.bureau = bureau

    def submit(self, period: str, file_bytes: bytes, key: str) -> Receipt:
        self.bureau.submit(period, file_bytes, key)
        raise CreditBureauUnavailable("read timed out")


def test_a_month_is_told_reported_once_and_read_by_ops(app: Flask) -> None:
    svc = app.extensions["leaseline"]
    told = open_lease(app, TOLD, "韩梅梅", ID_NUMBER, "LL-CR-0001")
    untold = open_lease(app, UNTOLD, "李雷", None, "LL-CR-0002")
    SqlServicing(svc.db).start_business_date(date(2026, 4, 1), NOW)
    repo = SqlCreditReports(svc.db)

    # the close of 22 April is not the notice day; the close of 23 April (30 April − 7) defers one notice per lease
    roll(app, "2026-04-22")
    assert jobs(app, "servicing.credit_notice") == []
    roll(app, "2026-04-23")
    with svc.db.session() as s:
        notices = {n.lease_id: (n.id, n.period, n.business_date, n.status, n.overdue_amount)
                   for n in s.scalars(select(CreditReportNoticeRow))}
        rent1 = s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == told, InstalmentRow.number == 1)).one()
    assert {lease: v[1:4] for lease, v in notices.items()} == {
        told: ("2026-04", date(2026, 4, 23), "queued"), untold: ("2026-04", date(2026, 4, 23), "queued")}
    assert notices[told][4] == rent1.amount
    assert sorted(int(str(a["notice_id"])) for a, _ in jobs(app, "servicing.credit_notice")) == sorted(
        v[0] for v in notices.values())
    # the hook run again on the same day (a replayed batch) defers nothing more
    window = (svc.plans.policy.reminders.send_from, svc.plans.policy.reminders.send_until)
    with svc.db.session() as s:
        repo.on_close(BatchEvents(date(2026, 4, 23), s, (told, untold), (), ()), window, NOW)
    assert len(jobs(app, "servicing.credit_notice")) == 2

    # the platform away: the text is not sent and the notice is queued again for the job's retry
    with pytest.raises(SmsUnavailable):
        CreditNotices(repo, svc.applications, Down()).send(notices[told][0])
    assert [n.status for n in repo.notices("2026-04") if n.lease_id == told] == ["queued"]
    # a worker killed while texting the untold lessee (the notice claimed): its retry never texts a second time
    with svc.db.session() as s:
        s.execute(update(CreditReportNoticeRow).where(CreditReportNoticeRow.id == notices[untold][0]).values(
            status="sending"))
    CreditNotices(repo, svc.applications, svc.sms).send(notices[untold][0])
    assert svc.outbox.latest(to=UNTOLD) == []
    # the told lease's text goes (the untold one's never does: its job is left alone), claimed while it goes (a
    # worker killed then does not text it again)
    seen: list[str] = []

    class Watching:
        def send(self, *args: Any, **kwargs: Any) -> None:
            seen.extend(n.status for n in repo.notices("2026-04") if n.lease_id == told)
            svc.sms.send(*args, **kwargs)

    CreditNotices(repo, svc.applications, Watching()).send(notices[told][0])
    CreditNotices(repo, svc.applications, svc.sms).send(notices[told][0])  # once
    assert seen == ["sending"]
    texts = [m.body for m in svc.outbox.latest(to=TOLD)]
    assert len(texts) == 1 and "征信" in texts[0] and "2026年4月30日" in texts[0]
    assert f"{rent1.amount / 100:.2f}" in texts[0]

    # the first close of each month asks for the month just ended's report, once (1 April's asked for March's)
    roll(app, "2026-05-01")
    assert [(args["period"], lock) for args, lock in jobs(app, "servicing.credit_report")] == [
        ("2026-03", "servicing.credit_report:2026-03"), ("2026-04", "servicing.credit_report:2026-04")]
    roll(app, "2026-05-02")
    assert len(jobs(app, "servicing.credit_report")) == 2

    # the bureau takes the file but its answer is lost: the month says so (ops' page too), the built file's hash kept
    bureau: SandboxCreditBureau = svc.credit_bureau
    with pytest.raises(CreditBureauUnavailable):
        CreditReporting(repo, svc.vault, LostAnswer(bureau)).run("2026-04")
    lost = repo.report("2026-04")
    assert lost is not None and lost.status == "unavailable" and "read timed out" in lost.detail, lost
    assert lost.file_sha256 and bureau.submissions() == 1
    with LiveServer(app) as server, sign_in(server.url, OPS) as ops:
        months = ops.get(f"{server.url}/servicing/credit-reports", timeout=TIMEOUT).text
        assert "unavailable" in months and "read timed out" in months
    # the worker's retries used up (an outage of more than its ~3 minutes): the next close defers every month not
    # submitted again, under the same queueing lock; a job waiting already is not doubled
    with svc.db.session() as s:
        s.execute(text("UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = 'servicing.credit_report'"))
    roll(app, "2026-05-03")
    waiting = [(args["period"], lock) for args, lock in jobs(app, "servicing.credit_report", "todo")]
    assert waiting == [("2026-03", "servicing.credit_report:2026-03"), ("2026-04", "servicing.credit_report:2026-04")]
    with svc.db.session() as s:
        repo.on_close(BatchEvents(date(2026, 5, 3), s, (told, untold), (), ()),
                      (svc.plans.policy.reminders.send_from, svc.plans.policy.reminders.send_until), NOW)
    assert len(jobs(app, "servicing.credit_report", "todo")) == 2
    # meanwhile the untold lessee's notice is recorded sent: the rebuilt file differs, but the bureau holds the first
    with svc.db.session() as s:
        s.execute(update(CreditReportNoticeRow).where(CreditReportNoticeRow.id == notices[untold][0]).values(
            status="sent"))

    outcome = credit_reporting(svc).run("2026-04")
    report = outcome.report
    assert not outcome.already
    assert report.file_sha256 == lost.file_sha256  # the file submitted under the key, not the rebuilt one
    assert (report.status, report.record_count, report.status_counts, report.withheld) == (
        "submitted", 2, {"1": 1, "N": 1}, 1)
    assert (report.accepted, report.rejected) == (1, 1)
    assert report.errors == [{"account_id": "LL-CR-0002", "name": "李*", "code": "SBX102",
                              "message": "ID number missing"}]
    assert report.batch_no is not None
    received = {r["account_id"]: r for r in bureau.received(report.batch_no)["records"]}
    assert received["LL-CR-0001"]["repayment_status"] == "1"
    assert received["LL-CR-0001"]["overdue_amount"] == f"{rent1.amount / 100:.2f}"
    assert received["LL-CR-0001"]["id_number"] == ID_NUMBER and received["LL-CR-0001"]["name"] == "韩梅梅"
    assert received["LL-CR-0002"]["repayment_status"] == "N" and received["LL-CR-0002"]["overdue_periods"] == 0

    # run again: as recorded, nothing sent; a retry after a lost answer: the bureau's first receipt, nothing more
    assert credit_reporting(svc).run("2026-04").already
    with svc.db.session() as s:
        s.execute(update(CreditReportRow).where(CreditReportRow.period == "2026-04").values(status="built"))
    again = credit_reporting(svc).run("2026-04").report
    assert (again.status, again.batch_no, again.accepted) == ("submitted", report.batch_no, 1)
    assert (again.file_sha256, again.status_counts) == (lost.file_sha256, {"1": 1, "N": 1})
    assert bureau.submissions() == 1

    # ops read the month (masked names, no ID number); a salesperson is refused
    with LiveServer(app) as server:
        base = server.url
        ops = sign_in(base, OPS)
        listing = ops.get(f"{base}/servicing/credit-reports", timeout=TIMEOUT)
        assert listing.status_code == 200 and 'data-period="2026-04"' in listing.text
        page = ops.get(f"{base}/servicing/credit-reports/2026-04", timeout=TIMEOUT)
        assert page.status_code == 200 and "SBX102" in page.text and "李*" in page.text and "韩*" in page.text
        assert "李雷" not in page.text and ID_NUMBER not in page.text and "no-store" in page.headers["Cache-Control"]
        # in words (walk-through 66, 67): the status, each repayment status's count, the bureau's error codes
        assert "已报送" in page.text and 'data-status="submitted"' in page.text and "已报送" in listing.text
        records = page.text.split('data-testid="credit-report-records"')[1].split("</dd>")[0]
        assert "正常还款" in records and "逾期 1–30 天" in records, records
        assert "错误代码" in page.text and "验证码" not in page.text
        english = ops.get(f"{base}/servicing/credit-reports/2026-04?lang=en", timeout=TIMEOUT).text
        assert "Submitted" in english and "Error code" in english and "overdue 1–30 days" in english
        assert ops.get(f"{base}/servicing/credit-reports/2026-4", timeout=TIMEOUT).status_code == 404
        with sign_in(base, SALES) as sales:
            assert sales.get(f"{base}/servicing/credit-reports", timeout=TIMEOUT).status_code == 403

    # by hand: the month as recorded, not submitted again
    shown = cli(svc.db.url, "servicing", "credit-report", "--period", "2026-04", "--json")
    assert shown.exit_code == 0, shown.output
    printed = json.loads(shown.stdout)
    assert printed["already_submitted"] is True and printed["batch_no"] == report.batch_no
    assert ID_NUMBER not in shown.stdout and "李雷" not in shown.stdout
    assert cli(svc.db.url, "servicing", "credit-report", "--period", "2026-05").exit_code == 2  # not ended


def test_a_lease_ended_after_its_end_month_is_closed_in_the_month_it_ended(app: Flask) -> None:
    """Its term ran out on 10 April 2026, the purchase price paid late: the close ended it on 12 June
    (infra/end_of_term.py records the day): June's report closes the account, none follows."""
    svc = app.extensions["leaseline"]
    lease_id = open_lease(app, "13900000073", "张伟", ID_NUMBER, "LL-CR-0003")
    SqlEndOfTerm(svc.db).choose(lease_id, "purchase", by="customer", terms={}, purchase_price=10_000, now=NOW)
    with svc.db.session() as s:
        s.execute(update(LeaseRow).where(LeaseRow.id == lease_id).values(status="ended", ends_on=date(2026, 4, 10)))
        s.execute(text("UPDATE end_of_term SET status = 'ended', ended_on = :day WHERE lease_id = :id"),
                  {"day": date(2026, 6, 12), "id": lease_id})

    def facts(period: Period) -> object:
        found = [lease for chunk in SqlCreditReports(svc.db).leases(period) for lease in chunk
                 if lease.lease_id == lease_id]
        return status_record(found[0].facts, period, noticed=False) if found else None

    june = facts(Period(2026, 6))
    assert june is not None and getattr(june, "closed_on", None) == date(2026, 6, 12)
    assert getattr(june, "repayment_status", None) in ("C", "G")
    assert facts(Period(2026, 7)) is None


def test_the_sandbox_refuses_a_file_of_another_month_and_answers_a_key_once(tmp_path: Path) -> None:
    from infra.credit_bureau import CreditBureauRefused

    bureau = SandboxCreditBureau(tmp_path)
    body = json.dumps({"period": "2026-04", "records": [
        {"account_id": "A", "name": "韩梅梅", "id_number": ID_NUMBER},
        {"account_id": "B", "name": "", "id_number": ID_NUMBER},
        {"account_id": "C", "name": "李雷", "id_number": "123"}]}).encode()
    with pytest.raises(CreditBureauRefused):
        bureau.submit("2026-05", body, "k1")
    first = bureau.submit("2026-04", body, "k1")
    assert first.accepted == 1 and [(e.account_id, e.code) for e in first.rejected] == [("B", "SBX101"),
                                                                                       ("C", "SBX103")]
    assert bureau.submit("2026-04", b"{}", "k1") == first
    assert oct((tmp_path / "received" / f"{first.batch_no}.json").stat().st_mode & 0o777) == "0o600"
