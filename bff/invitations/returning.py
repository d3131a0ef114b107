"""我的租赁 (my leases): a returning customer comes back without their invitation link, by their mobile number and a
one-time code texted to it, and finds the applications they started.

The code is kept as an HMAC in ``returning_codes``, one row per number (its keyed hash): it works once, for
:data:`CODE_TTL`, and :data:`MAX_TRIES` tries spend it — counted under the row's lock, so parallel guesses cannot
beat the count. Whether a number is known is never told, not even by the time the answer takes: every number gets
the same row and the same job in the request (:meth:`ReturningCustomers.send_code`); the job texts the code only
to a number that has applications (:func:`text_code`). A new code waits :data:`bff.resend.RESEND_AFTER`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import asdict
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

from bff.auth.services import Client
from bff.invitations.services import MOBILE
from bff.invitations.services import mask_mobile
from bff.resend import RESEND_AFTER
from bff.resend import Resend
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.db.models import utcnow
from infra.invitations import SqlInvitations
from infra.invitations import SqlReturningCodes
from infra.jobs import JobQueue
from infra.pii import PiiVault
from infra.sms import SmsRefused

if TYPE_CHECKING:
    from bff.bootstrap import Services

log = logging.getLogger(__name__)
CODE_TTL = timedelta(minutes=10)  # as the text says ("10 分钟内有效": the invitation code's template)
MAX_TRIES = 5


@dataclass(frozen=True)
class Pending:
    """The number a code was asked for on this device (the code and its tries are in ``returning_codes``)."""

    mobile_hash: str
    masked: str

    @classmethod
    def load(cls, data: Any) -> Pending | None:
        try:
            return cls(**data) if isinstance(data, dict) else None
        except TypeError:  # a session written by an older shape of this class
            return None

    def dump(self) -> dict[str, Any]:
        return asdict(self)


def normalise(mobile: str) -> str | None:
    """The 11-digit number typed with spaces or dashes, or None when it is not a mainland mobile number."""
    compact = mobile.strip().replace(" ", "").replace("-", "")[:20]
    return compact if MOBILE.fullmatch(compact) else None


class ReturningCustomers:
    """Sign-in by mobile number and one-time code, and the applications it opens."""

    def __init__(self, applications: SqlApplications, invitations: SqlInvitations, codes: SqlReturningCodes,
                 jobs: JobQueue, audit: SqlAuditLog, vault: PiiVault, secret_key: str) -> None:
        self.applications = applications
        self.invitations = invitations
        self.codes = codes
        self.jobs = jobs
        self.audit = audit
        self.vault = vault
        self.code_key = hashlib.sha256(("leaseline.returning.code:" + secret_key).encode()).digest()

    def mobile_hash(self, mobile: str) -> str:
        return self.vault.lookup_hash(mobile, "mobile")

    def owned(self, mobile_hash: str) -> list[Application]:
        """The applications the customer started themselves (through an invitation) with this number, at every
        dealer, newest first: the ones a customer's session can open (bff/applications/access.py)."""
        return owned(self.applications, mobile_hash)

    def _hash(self, mobile_hash: str, code: str) -> str:
        return hmac.new(self.code_key, f"{mobile_hash}:{code}".encode(), hashlib.sha256).hexdigest()

    def _log(self, action: str, outcome: str, masked: str, client: Client, **details: object) -> None:
        self.audit.append(action, outcome, actor_id=None, actor_label=f"customer {masked}", target="my leases",
                          ip=client.ip, user_agent=client.user_agent, details=dict(details))

    def send_code(self, mobile: str, client: Client) -> Pending:
        """A new code for ``mobile`` (normalised), unless one went less than a minute ago (a double tap issues
        one): the code and the job that texts it (:func:`text_code`) in one transaction, the same work whether the
        number is known or not."""
        code = f"{secrets.randbelow(10**6):06d}"
        mobile_hash = self.mobile_hash(mobile)
        with self.codes.db.transaction():
            issued = self.codes.issue(mobile_hash, mobile, code, self._hash(mobile_hash, code), utcnow(),
                                      RESEND_AFTER)
            if issued is not None:
                self.jobs.defer("returning.text_code", {"mobile_hash": mobile_hash}, queue=QUEUE)
        self._log("customer.code_sent", "queued" if issued else "too_soon", mask_mobile(mobile), client)
        return Pending(mobile_hash, mask_mobile(mobile))

    def resend(self, pending: Pending, action: str) -> Resend:
        """The code page's send form: a new code for the same number once the minute has passed."""
        return Resend(action, pending.masked, self.codes.sent_at(pending.mobile_hash), CODE_TTL, utcnow())

    def check(self, pending: Pending, code: str, client: Client) -> tuple[bool, bool]:
        """Whether ``code`` is the number's pending one, still fresh (then used up); and whether it can still be
        tried (False: spent, expired or :data:`MAX_TRIES` tries)."""
        expected = self._hash(pending.mobile_hash, code.strip())
        now = utcnow()
        ok, left = self.codes.check(pending.mobile_hash, lambda h: hmac.compare_digest(h, expected),
                                    now - CODE_TTL, now, MAX_TRIES)
        self._log("customer.sign_in", "success" if ok else "failure", pending.masked, client,
                  **({} if ok else {"reason": "wrong_code" if left else "spent"}))
        return ok, left

    def invitation_for(self, mobile_hash: str, application_id: str) -> str | None:
        """The invitation whose customer session opens ``application_id`` for the holder of this number: the one
        it was started through, confirmed by a code to this very number. None: not theirs."""
        app = self.applications.get(application_id, Scope(mobile_hash=mobile_hash))
        inv = self.invitations.get(app.invitation_id) if app is not None and app.invitation_id else None
        if inv is None or inv.opened_at is None or not hmac.compare_digest(self.mobile_hash(inv.mobile), mobile_hash):
            return None
        return inv.id


#: the queue of the job that texts the code (bff/worker.py)
QUEUE = "documents"


def owned(applications: SqlApplications, mobile_hash: str) -> list[Application]:
    """The applications started through an invitation with this number (see :meth:`ReturningCustomers.owned`)."""
    return [a for a in applications.search(Scope(mobile_hash=mobile_hash), limit=50) if a.invitation_id]


def text_code(svc: Services, mobile_hash: str) -> None:
    """The ``returning.text_code`` job: text the number's waiting code when the number has applications (else
    the code goes nowhere). A text the platform refused is logged; one it could not take now is retried."""
    codes = SqlReturningCodes(svc.db, svc.vault)
    with svc.db.transaction():
        waiting = codes.take_text(mobile_hash)
        found = owned(svc.applications.repo, mobile_hash) if waiting is not None else []
        if waiting is None or not found:
            return
        try:
            svc.sms.send(waiting.mobile, "invitation_code", {"code": waiting.code}, dealer_id=found[0].dealer_id)
        except SmsRefused as exc:
            log.warning("my leases: the code could not be texted (%s)", exc)


#: how long a number asked about through 我的租赁 is kept: a code lives 10 minutes, the resend wait one
KEEP_CODES = timedelta(hours=1)


def purge_codes(svc: Services, now: datetime) -> int:
    """The ``returning.purge_codes`` sweep: codes (and the encrypted numbers they were issued for) older than
    :data:`KEEP_CODES` are deleted."""
    return SqlReturningCodes(svc.db, svc.vault).purge(now - KEEP_CODES)
