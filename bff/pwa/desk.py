"""The dealer staff's work page (issue 17 §11), and where each role lands after signing in.

A salesperson signs in to work, not to read their account card: the page lists today's applications, those that
wait for the dealer's staff, and the customers the salesperson shared a plan with. Every query is scoped as the
applications list and the invitations list scope theirs: a salesperson sees their own, a dealer admin the dealer's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from zoneinfo import ZoneInfo

from bff.applications import forms
from bff.applications.access import staff_scope
from bff.applications.kyc import ocr_unconfirmed
from bff.applications.states import VEHICLE_EDITABLE
from bff.auth.roles import allowed
from bff.auth.roles import tenant_of
from bff.services import services
from infra.accounts import Staff
from infra.applications import Application
from infra.applications import Scope
from infra.db.models import utcnow
from infra.invitations import Invitation
from infra.pii import PiiError

#: the dealer's day runs on Beijing time
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: states in which an application waits for the dealer's staff, not for the customer or the lessor, and their
#: next step (the page names it): the details still to fill in with the customer, the key terms to explain before
#: the customer signs, the car to hand over
WAITING_FOR_DEALER = {"draft": "details", "contract_ready": "explain", "ready_for_delivery": "handover"}
#: an identity waiting for staff to verify it (the original ID card at the counter, a face check to look at): it
#: waits for those whose role decides it (kyc.review: the dealer's admin, never the salesperson who sold it)
IDENTITY_REVIEW = "kyc_review"
#: after submission and until the contract, an application whose car the dealer has not described yet (VIN, new or
#: used: issue 17 §5) waits for them too: the contract needs it
VEHICLE_DUE = tuple(s for s in VEHICLE_EDITABLE if s not in WAITING_FOR_DEALER)
#: how many of today's applications, and of each kind of waiting one, the page lists
log = logging.getLogger(__name__)
TODAY_LIMIT = 50
WAITING_LIMIT = 30
VEHICLE_PAGE = 100  # candidates read at a time for the car's facts (decrypted one by one)
#: where a role lands after signing in: its own queue; dealer staff land on the work page
LANDING = {"sales": "pwa.work", "dealer_admin": "pwa.work", "risk_officer_t1": "reviews.queue",
           "risk_officer_t2": "reviews.queue", "ops_admin": "payment_ops.index"}


@dataclass(frozen=True)
class Desk:
    """What the work page shows."""

    today: list[Application]
    #: each application with its next step for the dealer (a value of WAITING_FOR_DEALER, "submit" for a draft
    #: whose every step is done, "identity" or "vehicle")
    waiting: list[tuple[Application, str]]
    shared: list[Invitation]


def landing(user: Staff) -> str:
    """The endpoint ``user`` lands on after signing in (the account page for a role without a queue)."""
    return LANDING.get(user.role, "auth.account")


def start_of_today(now: datetime) -> datetime:
    """Midnight in Beijing of ``now``'s Beijing day, in UTC (how rows are stored)."""
    local = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def _vehicle_missing(app: Application) -> bool:
    """Whether the dealer has still to describe the application's car. A draft that cannot be read (a key retired
    too early, a damaged row) is logged and left off the list: one bad row must not take the work page down."""
    try:
        draft = services().applications.draft(app)
    except PiiError as exc:
        log.error("the work page cannot read the draft of application %s: %s", app.id, exc)
        return False
    return bool(forms.validate("vehicle", draft))


def _ready_to_submit(app: Application) -> bool:
    """Whether a draft has everything its submission checks (consents, the ID card read and its reading
    confirmed, every applicant's step): only pressing 提交申请 is left. A draft that cannot be read is not."""
    svc = services()
    try:
        draft = svc.applications.draft(app)
    except PiiError as exc:
        log.error("the work page cannot read the draft of application %s: %s", app.id, exc)
        return False
    return (not any(svc.applications.completeness(draft).values()) and not ocr_unconfirmed(draft)
            and svc.applications.consents(app).required and svc.kyc.id_card_done(app))


def next_step(app: Application) -> str:
    """What ``app`` (one the dealer's staff work on) waits for them to do."""
    if app.status == IDENTITY_REVIEW:
        return "identity"
    if app.status == "draft" and _ready_to_submit(app):
        return "submit"
    return WAITING_FOR_DEALER[app.status]


def vehicle_due(scope: Scope) -> list[Application]:
    """The newest :data:`WAITING_LIMIT` applications in ``scope`` whose car the dealer has not described yet. The
    car's facts live in the encrypted draft, which no query can filter on: the candidates are read newest first, a
    page at a time, until enough are found — never the newest few filtered, where an older one would drop off."""
    svc = services()
    found: list[Application] = []
    offset = 0
    while len(found) < WAITING_LIMIT:
        page = svc.applications.repo.search(scope, statuses=VEHICLE_DUE, limit=VEHICLE_PAGE, offset=offset)
        found += [a for a in page if _vehicle_missing(a)]
        if len(page) < VEHICLE_PAGE:
            break
        offset += VEHICLE_PAGE
    return found[:WAITING_LIMIT]


def desk(user: Staff) -> Desk:
    """The work of ``user`` (dealer staff): today's applications, what waits for them, their shared plans."""
    svc = services()
    scope = staff_scope(user)
    now = utcnow()
    since = start_of_today(now)
    today = svc.applications.repo.search(scope, updated_since=since, limit=TODAY_LIMIT)
    statuses = (*WAITING_FOR_DEALER, *((IDENTITY_REVIEW,) if allowed(user, "kyc.review") else ()))
    waiting = [(a, next_step(a)) for a in svc.applications.repo.search(scope, statuses=statuses, limit=WAITING_LIMIT)]
    listed = {a.id for a, _step in waiting}  # an identity to verify comes before the car's facts
    waiting += [(a, "vehicle") for a in vehicle_due(scope) if a.id not in listed]
    waiting.sort(key=lambda item: item[0].updated_at, reverse=True)
    made_by = user.id if user.role == "sales" else None
    invitations = svc.invitations_repo.of_dealer(tenant_of(user), created_by=made_by, limit=50)
    live = [i for i in invitations if i.expires_at > now and not i.locked]
    applied = svc.applications.repo.applied_through([i.id for i in live])  # applicants now: under applications
    shared = [i for i in live if i.id not in applied]
    return Desk(today=today, waiting=waiting, shared=shared)
