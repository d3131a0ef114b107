"""Arrears (issue 18 §4): the daily close of business's hook, the reminder task and the collections queue's use cases.

- :func:`close_hooks` — what every close of business runs in each batch's transaction (the worker's
  ``servicing.close`` and ``leaseline servicing close`` build theirs with it): the reminders the policy's
  ``[reminders]`` asks for, each a ``servicing.remind`` job deferred with its record (once per lease, instalment and
  kind: a replayed close sends nothing twice), and each lease's days past due, bucket (M1/M2/M3) and M3 flag
  (servicing/arrears.py has the rules, infra/arrears.py the tables).
- :class:`Reminders` — the ``servicing.remind`` task: the text, in the customer's language, with the figures as they
  are when it goes; nothing for a rent paid meanwhile. A platform that is away is retried; one that refuses is
  recorded.
- :class:`Collections` — the queue ops work (bff/servicing/collections.py): leases in arrears, a contact's outcome,
  note and promise-to-pay date, each recorded with who and audit-logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta

from bff.applications.services import Actor
from bff.applications.services import ApplicationService
from bff.payments.common import utc_now
from bff.payments.common import yuan
from infra.applications import Scope
from infra.arrears import BEFORE_DUE
from infra.arrears import QUEUED
from infra.arrears import REFUSED
from infra.arrears import SENT
from infra.arrears import SKIPPED
from infra.arrears import Case
from infra.arrears import QueueLine
from infra.arrears import ReminderDue
from infra.arrears import SqlArrears
from infra.audit import SqlAuditLog
from infra.db.engine import Database
from infra.pii import PiiError
from infra.servicing import PAID
from infra.servicing import WAIVED
from infra.servicing import BatchEvents
from infra.servicing import CloseHook
from infra.servicing import SqlServicing
from infra.sms import SmsRefused
from infra.sms import SmsSender
from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.policy import ReminderPolicy
from servicing.arrears import days_past_due

log = logging.getLogger(__name__)


def close_hooks(db: Database, policy: ReminderPolicy, clock: Callable[[], datetime] = utc_now) -> list[CloseHook]:
    """The hooks of arrears every close of business runs (bff/servicing/close.py ``CloseOfBusiness(hooks=…)``)."""
    arrears = SqlArrears(db)

    def arrears_hook(events: BatchEvents) -> None:
        arrears.on_close(events, policy, clock())

    return [arrears_hook]


# -- the reminder's text ---------------------------------------------------------------------------------------------
def reminder_params(due: ReminderDue, *, collect_on: date | None = None) -> dict[str, str]:
    """The parameters of a reminder's template (infra/sms.py ``rent_due_soon`` / ``rent_overdue`` and their English
    twins), in the customer's language. ``collect_on``: the day an automatic collection debits the rent — its due
    day, or the calendar's next business day when it falls on a day off (infra/collections.py plans collections on
    ``BusinessCalendar.on_or_after``); the text says that day, not 当日 (the due day) when they differ."""
    english = due.language.lower().startswith("en")
    collect_on = collect_on or due.due_on
    if english:
        rent = "final rent" if due.final_rent else f"rent {due.number}"
        when = due.due_on.isoformat()
        collect = "that day" if collect_on == due.due_on else f"on {collect_on.isoformat()}, the next business day"
    else:
        rent = "尾付租金" if due.final_rent else f"第{due.number}期租金"
        when = f"{due.due_on.year}年{due.due_on.month}月{due.due_on.day}日"
        collect = "当日" if collect_on == due.due_on else \
            f"{collect_on.year}年{collect_on.month}月{collect_on.day}日（下一工作日）"
    params = {"rent": rent, "amount": yuan(due.unpaid), "due": when, "collect": collect}
    if due.kind != BEFORE_DUE and due.overdue_since is not None:
        params.update(days=str(days_past_due(due.overdue_since, due.business_date)), penalty=yuan(due.penalty))
    return params


class Reminders:
    """The ``servicing.remind`` task (bff/worker.py)."""

    def __init__(self, repo: SqlArrears, applications: ApplicationService, sms: SmsSender, policy: ReminderPolicy,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.repo, self.applications, self.sms, self.policy, self.clock = repo, applications, sms, policy, clock

    def send(self, reminder_id: int) -> None:
        """Text reminder ``reminder_id`` to the customer, once: a reminder already sent, skipped or refused is left
        alone; a rent paid (or waived) meanwhile, or a lease no longer in force, is skipped, not texted. SmsUnavailable
        goes to the worker, which tries again later."""
        due = self.repo.reminder(reminder_id)
        if due is None or due.status != QUEUED:
            return
        stale = _stale(due)
        if stale:
            self.repo.finish_reminder(due.id, SKIPPED, stale, self.clock())
            return
        mobile = self._mobile(due.application_id)
        if not mobile:
            self.repo.finish_reminder(due.id, SKIPPED, "no mobile number on the application", self.clock())
            return
        template = self.policy.template("before_due" if due.kind == BEFORE_DUE else "overdue", due.language)
        try:
            self.sms.send(mobile, template, reminder_params(due, collect_on=self._collect_on(due)),
                          dealer_id=due.dealer_id)
        except SmsRefused as exc:
            log.warning("reminder %s of lease %s: the platform refused the text (%s)", due.id, due.lease_id, exc)
            self.repo.finish_reminder(due.id, REFUSED, str(exc), self.clock())
            return
        self.repo.finish_reminder(due.id, SENT, template, self.clock())

    def _collect_on(self, due: ReminderDue) -> date | None:
        """The day an automatic collection would debit the rent: its due day moved to a business day (the calendar
        with the days ops loaded); only a reminder before it names it."""
        if due.kind != BEFORE_DUE:
            return None
        return SqlServicing(self.repo.db).calendar().on_or_after(due.due_on)

    def _mobile(self, application_id: str) -> str:
        app = self.applications.repo.get(application_id, Scope())
        if app is None or not app.draft_enc:
            return ""
        try:
            return self.applications.draft(app).get("mobile", "")
        except PiiError:  # a draft that cannot be read: logged, not retried (nothing would change)
            log.warning("reminder for application %s: its draft cannot be decrypted", application_id)
            return ""


def _stale(due: ReminderDue) -> str:
    """Why a reminder is no longer worth sending ("": it is)."""
    if not due.lease_active:
        return "the lease is no longer in force"
    if due.state in (PAID, WAIVED) or due.unpaid <= 0:
        return "paid meanwhile"
    if due.kind != BEFORE_DUE and due.overdue_since is None:
        return "no longer overdue"
    return ""


# -- the collections queue -------------------------------------------------------------------------------------------
#: what came of a contact with the customer (催收结果), in the order the form offers them
OUTCOMES = ("no_answer", "promised", "paid", "dispute", "wrong_number", "refused", "left_message", "other")
#: outcomes that need a note saying what was said
NOTE_REQUIRED = ("dispute", "other")
MAX_NOTE = 1000
#: how far ahead a promise to pay may be dated (a promise further out is a restructuring, not a promise)
PROMISE_WITHIN_DAYS = 30


@dataclass(frozen=True)
class ContactForm:
    outcome: str
    note: str
    promise_date: str


class Collections:
    """The collections queue's use cases, on the arrears the close of business keeps."""

    def __init__(self, repo: SqlArrears, servicing: SqlServicing, audit: SqlAuditLog,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.repo, self.servicing, self.audit, self.clock = repo, servicing, audit, clock

    def business_date(self) -> date:
        """The business date (the day whose close runs next): promises are dated from it."""
        return self.servicing.business_date()

    def queue(self, dealer_id: str | None, buckets: Sequence[str] = ()) -> list[QueueLine]:
        return self.repo.queue(dealer_id, buckets)

    def case(self, lease_id: str, dealer_id: str | None) -> Case | None:
        return self.repo.case(lease_id, dealer_id)

    def record(self, actor: Actor, case: Case, form: ContactForm, shown_as: str) -> None:
        """Record a contact: its outcome, a note and (promised) the date the customer promised to pay by, which must
        be from the business date to :data:`PROMISE_WITHIN_DAYS` days after it; the history names the staff member
        ``shown_as`` (their name, not their e-mail address). PlanInputError with each problem."""
        today = self.business_date()
        errors: list[FieldError] = []
        if form.outcome not in OUTCOMES:
            errors.append(FieldError("outcome", "required", "请选择联系结果", "Choose what came of the contact"))
        note = form.note.strip()
        if len(note) > MAX_NOTE:
            errors.append(FieldError("note", "too_long", f"备注最多 {MAX_NOTE} 字", f"At most {MAX_NOTE} characters"))
        elif not note and form.outcome in NOTE_REQUIRED:
            errors.append(FieldError("note", "required", "请写明情况", "Say what was said"))
        promise: date | None = None
        if form.promise_date.strip():
            try:
                promise = date.fromisoformat(form.promise_date.strip())
            except ValueError:
                errors.append(FieldError("promise_date", "not_a_date", "请输入日期", "Enter a date"))
        if form.outcome == "promised" and promise is None and not any(e.field == "promise_date" for e in errors):
            errors.append(FieldError("promise_date", "required", "请填写客户承诺的还款日期",
                                     "Enter the date the customer promised to pay by"))
        elif promise is not None and form.outcome != "promised":
            errors.append(FieldError("promise_date", "not_promised", "只有“承诺还款”需要填写承诺日期",
                                     "A promise date goes with the outcome “promised to pay” only"))
        elif promise is not None and not today <= promise <= today + timedelta(days=PROMISE_WITHIN_DAYS):
            errors.append(FieldError(
                "promise_date", "out_of_range", f"承诺日期须在 {today.isoformat()} 至 "
                f"{(today + timedelta(days=PROMISE_WITHIN_DAYS)).isoformat()} 之间",
                f"The promise date must be from {today.isoformat()} to "
                f"{(today + timedelta(days=PROMISE_WITHIN_DAYS)).isoformat()}"))
        if errors:
            raise PlanInputError(errors)
        self.repo.record_contact(case.lease_id, today, self.clock(), actor.id, shown_as, form.outcome, note, promise)
        self.audit.append("collections.contact", "success", actor_id=actor.id, actor_label=actor.label,
                          dealer_id=case.dealer_id, target=f"lease:{case.lease_id}", ip=actor.ip,
                          user_agent=actor.user_agent,
                          details={"outcome": form.outcome, "promise_date": promise.isoformat() if promise else None})
