"""我的租赁 (my leases): a returning customer comes back without their invitation link, by their mobile number and a
one-time code texted to it, and finds the applications they started.

The code is kept only as an HMAC in the customer's server-side session (the cookie carries a random id), bound to
the number and the moment it was sent: it works once, for :data:`CODE_TTL`, and :data:`MAX_TRIES` wrong codes spend
it. Whether a number is known is never told: an unknown number gets the same answer and a code that was never
sent (so no text goes to a stranger), and its check fails like a wrong code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bff.auth.services import Client
from bff.invitations.services import MOBILE
from bff.invitations.services import mask_mobile
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.db.models import utcnow
from infra.invitations import SqlInvitations
from infra.pii import PiiVault
from infra.sms import SmsRefused
from infra.sms import SmsSender
from infra.sms import SmsUnavailable

log = logging.getLogger(__name__)
CODE_TTL = timedelta(minutes=10)  # as the text says ("10 分钟内有效": the invitation code's template)
MAX_TRIES = 5


@dataclass(frozen=True)
class Pending:
    """A code on its way to a number: what the session keeps between sending it and checking it."""

    mobile_hash: str
    masked: str
    code_hash: str
    sent_at: float  # unix time
    tries: int = 0

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

    def __init__(self, applications: SqlApplications, invitations: SqlInvitations, sms: SmsSender,
                 audit: SqlAuditLog, vault: PiiVault, secret_key: str) -> None:
        self.applications = applications
        self.invitations = invitations
        self.sms = sms
        self.audit = audit
        self.vault = vault
        self.code_key = hashlib.sha256(("leaseline.returning.code:" + secret_key).encode()).digest()

    def mobile_hash(self, mobile: str) -> str:
        return self.vault.lookup_hash(mobile, "mobile")

    def owned(self, mobile_hash: str) -> list[Application]:
        """The applications the customer started themselves (through an invitation) with this number, at every
        dealer, newest first: the ones a customer's session can open (bff/applications/access.py)."""
        return [a for a in self.applications.search(Scope(mobile_hash=mobile_hash), limit=50) if a.invitation_id]

    def _hash(self, mobile_hash: str, sent_at: float, code: str) -> str:
        return hmac.new(self.code_key, f"{mobile_hash}:{sent_at}:{code}".encode(), hashlib.sha256).hexdigest()

    def _log(self, action: str, outcome: str, masked: str, client: Client, **details: object) -> None:
        self.audit.append(action, outcome, actor_id=None, actor_label=f"customer {masked}", target="my leases",
                          ip=client.ip, user_agent=client.user_agent, details=dict(details))

    def send_code(self, mobile: str, client: Client) -> Pending:
        """A new code for ``mobile`` (normalised): texted when the number has applications, else sent nowhere.
        A text the platform did not take is logged, not told: telling it would tell that the number is known."""
        code = f"{secrets.randbelow(10**6):06d}"
        mobile_hash, sent_at = self.mobile_hash(mobile), utcnow().timestamp()
        owned = self.owned(mobile_hash)
        if owned:
            try:
                self.sms.send(mobile, "invitation_code", {"code": code}, dealer_id=owned[0].dealer_id)
            except (SmsUnavailable, SmsRefused) as exc:
                log.warning("my leases: the code could not be texted (%s)", exc)
        self._log("customer.code_sent", "success" if owned else "unknown", mask_mobile(mobile), client)
        return Pending(mobile_hash, mask_mobile(mobile), self._hash(mobile_hash, sent_at, code), sent_at)

    def check(self, pending: Pending, code: str, client: Client) -> tuple[bool, Pending | None]:
        """Whether ``code`` is the pending one, still fresh; and what remains pending (None: spent or used up)."""
        code = code.strip()
        fresh = utcnow().timestamp() - pending.sent_at <= CODE_TTL.total_seconds()
        ok = fresh and hmac.compare_digest(pending.code_hash, self._hash(pending.mobile_hash, pending.sent_at, code))
        self._log("customer.sign_in", "success" if ok else "failure", pending.masked, client,
                  **({} if ok else {"reason": "wrong_code" if fresh else "expired"}))
        if ok:
            return True, None
        left = replace(pending, tries=pending.tries + 1)
        return False, left if fresh and left.tries < MAX_TRIES else None

    def invitation_for(self, mobile_hash: str, application_id: str) -> str | None:
        """The invitation whose customer session opens ``application_id`` for the holder of this number: the one
        it was started through, confirmed by a code to this very number. None: not theirs."""
        app = self.applications.get(application_id, Scope(mobile_hash=mobile_hash))
        inv = self.invitations.get(app.invitation_id) if app is not None and app.invitation_id else None
        if inv is None or inv.opened_at is None or not hmac.compare_digest(self.mobile_hash(inv.mobile), mobile_hash):
            return None
        return inv.id
