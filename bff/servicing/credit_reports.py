"""Credit reporting (征信报送, issue 18 §7): the close of business's hook, the two tasks and the ops pages.

- :func:`close_hooks` — what every close of business runs in each batch's transaction (the worker's ``servicing.close``
  and ``leaseline servicing close`` add it to theirs): on a month's notice day (its last day minus
  servicing.credit_report ``NOTICE_DAYS``) the notice of each lease with a rent overdue, once per lease and month (a
  ``servicing.credit_notice`` job each, within the reminders' hours); on the first close of a month, the month just
  ended's report (one ``credit_reports`` row and one ``servicing.credit_report`` job under a queueing lock); and every
  earlier month not submitted yet (the bureau away past the worker's retries) deferred again under the same lock.
- :class:`CreditNotices` — ``servicing.credit_notice``: the text, in the customer's language, with the rent overdue
  as it is when it goes; nothing for a lease paid up meanwhile; claimed before it is sent (a worker killed then never
  texts it twice; the platform away: released for the retry). The rule it serves — a rent is reported overdue only
  once its lessee was told — is servicing/credit_report.py's.
- :class:`CreditReporting` — ``servicing.credit_report`` and ``leaseline servicing credit-report --period``: each
  lease's record as of the month's last day, the subject's name and ID number decrypted from the application's answers
  (personal data: the file goes to the bureau port and nowhere else — never to storage, never to a log; only its
  SHA-256 and the rejected records' masked names are kept), submitted under the month's key (a retry gets the first
  receipt back: a month is never submitted twice), the receipt recorded.
- ``/servicing/credit-reports`` (and ``/<period>``): the months reported, their counts, the bureau's answers with
  each rejected record's masked name, and the month's notices, for the lessor's ops (``credit_reports.view``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint
from flask import abort
from flask import render_template

from bff.applications.services import CONSENT
from bff.auth.session import requires
from bff.payments.common import utc_now
from bff.payments.common import yuan
from bff.services import services
from infra.applications import Scope
from infra.credit_bureau import CreditBureau
from infra.credit_bureau import CreditBureauRefused
from infra.credit_bureau import CreditBureauUnavailable
from infra.credit_reports import QUEUED
from infra.credit_reports import REFUSED
from infra.credit_reports import SENT
from infra.credit_reports import SKIPPED
from infra.credit_reports import SUBMITTED
from infra.credit_reports import Report
from infra.credit_reports import SqlCreditReports
from infra.db.engine import Database
from infra.pii import PiiError
from infra.pii import PiiVault
from infra.servicing import BatchEvents
from infra.servicing import CloseHook
from infra.sms import SmsRefused
from infra.sms import SmsSender
from kyc.masking import mask_name
from plans.policy import ReminderPolicy
from servicing.credit_report import Period
from servicing.credit_report import PeriodError
from servicing.credit_report import StatusRecord
from servicing.credit_report import Subject
from servicing.credit_report import counts
from servicing.credit_report import render_file
from servicing.credit_report import status_record

log = logging.getLogger(__name__)
#: the reporting institution the file names: the lessor, as its consent texts name it (bff/applications/consent.toml)
REPORTER = str(CONSENT["processor"]["name"])


def close_hooks(db: Database, policy: ReminderPolicy, clock: Callable[[], datetime] = utc_now) -> list[CloseHook]:
    """The credit reporting hook every close of business runs (bff/servicing/close.py ``CloseOfBusiness(hooks=…)``);
    its texts go within the reminders' hours (the policy's ``[reminders]`` window)."""
    repo = SqlCreditReports(db)

    def credit_hook(events: BatchEvents) -> None:
        repo.on_close(events, (policy.send_from, policy.send_until), clock())

    return [credit_hook]


def bureau_key(period: Period) -> str:
    """The key of ``period``'s submission: the same for every try, so the bureau answers a retry with its receipt."""
    return f"leaseline:credit-report:{period}"


# -- the notice ------------------------------------------------------------------------------------------------------
def notice_params(amount: int, period: Period, language: str) -> dict[str, str]:
    """The parameters of the notice's template (infra/sms.py ``credit_report_notice`` and its English twin)."""
    last = period.last
    until = last.isoformat() if language.lower().startswith("en") else f"{last.year}年{last.month}月{last.day}日"
    return {"amount": yuan(amount), "until": until}


class CreditNotices:
    """The ``servicing.credit_notice`` task (bff/worker.py)."""

    def __init__(self, repo: SqlCreditReports, applications: Any, sms: SmsSender,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.repo, self.applications, self.sms, self.clock = repo, applications, sms, clock

    def send(self, notice_id: int) -> None:
        """Text notice ``notice_id`` once: a notice no longer queued is left alone; a lease no longer in force or with
        nothing overdue any more is skipped. SmsUnavailable goes to the worker, which tries again later."""
        due = self.repo.notice(notice_id)
        if due is None or due.status != QUEUED:
            return
        if not due.lease_active or due.overdue_now <= 0:
            self.repo.finish_notice(due.id, SKIPPED, "the lease is no longer in force" if not due.lease_active
                                    else "paid meanwhile", self.clock())
            return
        mobile = self._mobile(due.application_id)
        if not mobile:
            self.repo.finish_notice(due.id, SKIPPED, "no mobile number on the application", self.clock())
            return
        english = due.language.lower().startswith("en")
        template = "credit_report_notice_en" if english else "credit_report_notice"
        if not self.repo.claim_notice(due.id):  # another run has it (or had it, and was killed: never texted twice)
            return
        try:
            self.sms.send(mobile, template, notice_params(due.overdue_now, Period.parse(due.period), due.language),
                          dealer_id=due.dealer_id)
        except SmsRefused as exc:
            log.warning("credit notice %s of lease %s: the platform refused the text (%s)", due.id, due.lease_id, exc)
            self.repo.finish_notice(due.id, REFUSED, str(exc), self.clock())
            return
        except BaseException:
            self.repo.release_notice(due.id)  # nothing known sent: the job's retry texts it
            raise
        self.repo.finish_notice(due.id, SENT, template, self.clock())

    def _mobile(self, application_id: str) -> str:
        app = self.applications.repo.get(application_id, Scope())
        if app is None or not app.draft_enc:
            return ""
        try:
            return str(self.applications.draft(app).get("mobile", ""))
        except PiiError:
            log.warning("credit notice for application %s: its draft cannot be decrypted", application_id)
            return ""


# -- the report ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportOutcome:
    """A run of a month's report: ``already`` when it was submitted before this run (nothing sent); the report as
    recorded."""

    already: bool
    report: Report


class CreditReporting:
    """The ``servicing.credit_report`` task and ``leaseline servicing credit-report``."""

    def __init__(self, repo: SqlCreditReports, vault: PiiVault, bureau: CreditBureau, reporter: str = REPORTER,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.repo, self.vault, self.bureau, self.reporter, self.clock = repo, vault, bureau, reporter, clock

    def run(self, period: str) -> ReportOutcome:
        """Build, submit and record the report of ``period`` (YYYY-MM; PeriodError otherwise), once: a month
        submitted already is left as it was. CreditBureauUnavailable is recorded on the month (``unavailable``, with
        why) and goes to the caller (the worker tries again, under the same key; past its retries, each close of
        business defers the month again: infra/credit_reports.py); a file the bureau refuses whole is recorded
        ``failed`` with its reason."""
        month = Period.parse(period)
        self.repo.ask(month, self.clock())
        begun = self.repo.begin(str(month))
        assert begun is not None
        if begun.status == SUBMITTED:
            return ReportOutcome(True, begun)
        records: list[tuple[StatusRecord, Subject]] = []
        masked: dict[str, str] = {}
        withheld = 0
        for chunk in self.repo.leases(month):
            for lease in chunk:
                record = status_record(lease.facts, month, noticed=lease.noticed)
                if record is None:
                    continue
                subject = self._subject(lease.application_id, lease.draft_enc, lease.customer_name)
                records.append((record, subject))
                masked[record.account_id] = mask_name(subject.name or lease.customer_name)
                withheld += record.withheld_overdue
        body = render_file(month, self.reporter, records)
        sha = hashlib.sha256(body).hexdigest()
        self.repo.record_built(str(month), len(records), counts([r for r, _ in records]), withheld, sha, self.clock())
        try:
            receipt = self.bureau.submit(str(month), body, bureau_key(month))
        except CreditBureauUnavailable as exc:  # recorded (ops' page shows it), then the worker tries again
            log.warning("credit report %s: the bureau did not answer (%s)", month, exc)
            self.repo.record_unavailable(str(month), f"bureau unavailable: {exc}")
            raise
        except CreditBureauRefused as exc:
            log.warning("credit report %s: the bureau refused the file (%s)", month, exc.code)
            self.repo.record_failed(str(month), str(exc))
            final = self.repo.report(str(month))
            assert final is not None
            return ReportOutcome(False, final)
        errors = [{"account_id": e.account_id, "name": masked.get(e.account_id, ""), "code": e.code,
                   "message": e.message} for e in receipt.rejected]
        self.repo.record_submitted(str(month), receipt.batch_no, receipt.accepted, errors, self.clock())
        log.info("credit report %s: %s records (file sha256 %s) submitted as batch %s: %s accepted, %s rejected, "
                 "%s overdue rents withheld for want of a notice", month, len(records), sha[:12], receipt.batch_no,
                 receipt.accepted, len(errors), withheld)
        final = self.repo.report(str(month))
        assert final is not None
        return ReportOutcome(False, final)

    def _subject(self, application_id: str, draft_enc: str, fallback_name: str) -> Subject:
        """The record's subject from the application's answers (the context ApplicationService.draft decrypts them
        with); an unreadable draft gives empty fields, which the bureau rejects per record (never the whole file)."""
        try:
            draft = json.loads(self.vault.decrypt(draft_enc, f"application:{application_id}")) if draft_enc else {}
        except (PiiError, ValueError):
            log.warning("credit report: the answers of application %s cannot be decrypted", application_id)
            draft = {}
        name = str(draft.get("name") or fallback_name or "").strip()
        return Subject(name, "".join(str(draft.get("id_number") or "").split()).upper())


def credit_reporting(svc: Any) -> CreditReporting:
    """The report's use case on the app's (or the worker's) services."""
    return CreditReporting(SqlCreditReports(svc.db), svc.vault, svc.credit_bureau)


# -- the ops pages ---------------------------------------------------------------------------------------------------
bp = Blueprint("credit_reports", __name__)


@bp.get("/servicing/credit-reports")
@requires("credit_reports.view")
def reports() -> Any:
    """The months reported, newest first."""
    return render_template("servicing/credit_reports.html", reports=SqlCreditReports(services().db).reports())


@bp.get("/servicing/credit-reports/<period>")
@requires("credit_reports.view")
def report(period: str) -> Any:
    """One month: its counts, the bureau's answer (each rejected record's masked name) and the month's notices (a
    month not reported yet: its notices so far). Not a month (YYYY-MM): 404."""
    try:
        month = Period.parse(period)
    except PeriodError:
        abort(404)
    if str(month) != period:
        abort(404)
    repo = SqlCreditReports(services().db)
    notices = [(n, mask_name(n.customer_name)) for n in repo.notices(str(month))]
    return render_template("servicing/credit_report.html", period=str(month), as_of=month.last,
                           report=repo.report(str(month)), notices=notices)
