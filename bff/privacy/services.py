"""The person's rights over their personal information (PIPL arts. 15, 44–48, 50) as a workflow.

* **Withdrawing a consent** (art. 15) is immediate for the purposes the lease does not need
  (:data:`WITHDRAWABLE`: face recognition, the vehicle's trip data): the consent's row is marked withdrawn (it stays,
  as the evidence of what was given and until when), and what served only that purpose is deleted now (art.
  47(1)(3)) by the eraser wired for it in bff/bootstrap.py (face recognition: the application's face images, as the
  retention purge would delete them later). Processing before the withdrawal stays lawful (art. 15, second
  paragraph). The other consents cover processing the lease contract needs (art. 13(1)(2)): the person may still
  ask, as a request.
* **A request** to see (art. 45), copy (art. 45), correct (art. 46) or delete (art. 47) their data, to withdraw a
  consent, or to have its processing explained (art. 48) is recorded with the day it is due; ops answer it or
  refuse it with the reason (art. 50: a refusal gives its reasons).

Only the customer acts for themselves here (their own applications, the scope of their verified mobile); staff
see the requests, and the lessor's ops (``privacy.manage``) answer them. Every action is in the audit log, without
the person's words (the detail and the answer stay in the request's row).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.applications.states import WITHDRAWABLE
from bff.payments.common import record_audit
from bff.payments.common import utc_now
from infra.applications import Application
from infra.applications import Consent
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.privacy_requests import ANSWERED
from infra.privacy_requests import OPEN
from infra.privacy_requests import REFUSED
from infra.privacy_requests import PrivacyRequest
from infra.privacy_requests import SqlPrivacyRequests
from plans.errors import FieldError
from plans.errors import PlanInputError

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: what a person may ask (PIPL arts. 44–48): see, copy, correct or delete their data, withdraw a consent (one the
#: page cannot withdraw at once), have the processing explained
KINDS = ("access", "copy", "correct", "delete", "withdraw", "explain")
#: calendar days to answer a request: our service level, stricter than the 30 days of GB/T 35273-2020 §8.7 c)
RESPONSE_DAYS = 15
MAX_DETAIL = 1000
MAX_ANSWER = 2000
#: what deletes the data a withdrawn consent alone allowed: purpose → eraser(application, why) → items deleted
Eraser = Callable[[Application, str], int]


def due_from(received_at: datetime) -> datetime:
    """The end (23:59:59, Beijing time) of the 15th calendar day after the day a request was received.

    Fifteen calendar days is our own service level: GB/T 35273-2020 §8.7 c) allows 30 days (or what the law sets),
    and PIPL art. 50 asks for a convenient and timely procedure without a number; a request received on the 1st is
    due by the end of the 16th, weekends and holidays included."""
    day = received_at.astimezone(SHANGHAI).date() + timedelta(days=RESPONSE_DAYS)
    return datetime.combine(day, time(23, 59, 59), SHANGHAI).astimezone(UTC)


class PrivacyService:
    def __init__(self, store: SqlPrivacyRequests, repo: SqlApplications, audit: SqlAuditLog,
                 erasers: Mapping[str, Eraser] | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.store, self.repo, self.audit, self.clock = store, repo, audit, clock
        self.erasers = dict(erasers or {})

    # -- look-ups --------------------------------------------------------------------------------------------
    def consents(self, app: Application) -> list[Consent]:
        """The application's consents as given, withdrawn ones included (``withdrawn_at``), oldest first."""
        return self.repo.consents(app.id)

    def for_application(self, app: Application) -> list[PrivacyRequest]:
        """The application's requests, newest first (the caller has checked that its actor may see ``app``)."""
        return self.store.for_application(app.id)

    def open_requests(self) -> list[PrivacyRequest]:
        """Every dealer's open requests for ops, the one due first at the top: the overdue ones lead."""
        return self.store.open_requests()

    def overdue(self, request: PrivacyRequest) -> bool:
        return request.status == OPEN and request.due_at < self.clock()

    # -- the person ------------------------------------------------------------------------------------------
    def submit(self, actor: Actor, app: Application, kind: str, detail: str) -> PrivacyRequest:
        """Record the customer's request about their own application, due in :data:`RESPONSE_DAYS` calendar days
        (:func:`due_from`). :class:`PlanInputError` names the fields to correct."""
        _customer(actor)
        detail = detail.strip()
        errors = []
        if kind not in KINDS:
            errors.append(FieldError("kind", "required", "请选择请求类型", "Choose what you ask for"))
        if not detail:
            errors.append(FieldError("detail", "required", "请说明您的请求（例如要查阅或更正哪些信息）",
                                     "Say what you ask for (for example which information to see or correct)"))
        elif len(detail) > MAX_DETAIL:
            errors.append(FieldError("detail", "too_long", f"最多 {MAX_DETAIL} 个字（现为 {len(detail)} 个）",
                                     f"At most {MAX_DETAIL} characters ({len(detail)} now)"))
        if errors:
            raise PlanInputError(errors)
        now = self.clock()
        with self.repo.db.transaction():  # the request and its audit entry, together
            made = self.store.add(application_id=app.id, dealer_id=app.dealer_id, kind=kind, detail=detail,
                                  received_at=now, due_at=due_from(now))
            record_audit(self.audit, "privacy.request_submitted", actor, app.dealer_id, app.id, {
                "request": made.id, "kind": kind, "due_at": made.due_at.isoformat()})
        return made

    def withdraw(self, actor: Actor, app: Application, purpose: str) -> int:
        """Withdraw the customer's consent to ``purpose`` (one of :data:`WITHDRAWABLE`) now, and delete what it
        alone allowed (its eraser's count is returned: face images for face recognition). ``NotAllowed``
        (``not_given``) when no such consent is in force."""
        _customer(actor)
        if purpose not in WITHDRAWABLE:
            raise PlanInputError([FieldError("purpose", "not_withdrawable", "该项同意不能在此撤回，请在下方提出请求",
                                             "This consent cannot be withdrawn here: make a request below")])
        with self.repo.db.transaction():  # the withdrawal and its audit entry, together
            if not self.repo.withdraw_consent(app.id, purpose, self.clock()):
                raise NotAllowed("not_given", "您没有给予该项同意，或已经撤回", "You did not give this consent, or "
                                 "withdrew it already")
            record_audit(self.audit, "privacy.consent_withdrawn", actor, app.dealer_id, app.id, {"purpose": purpose})
        # after the commit: what the consent alone allowed goes now (an eraser leaves what it cannot delete now to
        # a sweep; the withdrawal stands either way)
        eraser = self.erasers.get(purpose)
        deleted = eraser(app, f"consent to {purpose} withdrawn") if eraser is not None else 0
        if eraser is not None:
            record_audit(self.audit, "privacy.data_erased", actor, app.dealer_id, app.id, {"purpose": purpose,
                                                                                           "items": deleted})
        return deleted

    # -- ops -------------------------------------------------------------------------------------------------
    def get(self, request_id: str) -> PrivacyRequest | None:
        return self.store.get(request_id)

    def answer(self, actor: Actor, request_id: str, status: str, answer: str) -> PrivacyRequest:
        """Ops close an open request: ``answered`` with what was done (or where the copy is), or ``refused`` with
        the reason (PIPL art. 50). ``NotAllowed``: ``not_found``, or ``closed`` when answered meanwhile."""
        if actor.kind != "staff":
            raise NotAllowed("staff_only", "只有运营人员可以答复", "Only ops staff answer requests")
        request = self.store.get(request_id)
        if request is None:
            raise NotAllowed("not_found", "没有这项请求", "No such request")
        answer = answer.strip()
        errors = []
        if status not in (ANSWERED, REFUSED):
            errors.append(FieldError("status", "required", "请选择答复或拒绝", "Choose to answer or to refuse"))
        if not answer:
            errors.append(FieldError("answer", "required", "拒绝须说明理由" if status == REFUSED else
                                     "请填写答复内容（做了什么、结果在哪里）", "A refusal needs its reason" if
                                     status == REFUSED else "Write the answer (what was done, where to find it)"))
        elif len(answer) > MAX_ANSWER:
            errors.append(FieldError("answer", "too_long", f"最多 {MAX_ANSWER} 个字（现为 {len(answer)} 个）",
                                     f"At most {MAX_ANSWER} characters ({len(answer)} now)"))
        if errors:
            raise PlanInputError(errors)
        now = self.clock()
        with self.repo.db.transaction():
            closed = self.store.answer(request_id, status=status, answer=answer, actor_id=actor.id,
                                       actor_label=actor.label, now=now)
            if closed is None:
                raise NotAllowed("closed", "这项请求已经答复", "This request was answered already")
            record_audit(self.audit, f"privacy.request_{status}", actor, request.dealer_id, request.application_id,
                         {"request": request.id, "kind": request.kind, "overdue": request.due_at < now})
        return closed


def _customer(actor: Actor) -> None:
    """The person acts for themselves: staff cannot withdraw a consent or make a request in their name."""
    if actor.kind != "customer":
        raise NotAllowed("customer_only", "只有客户本人可以提出", "Only the customer can do this, for themselves")
