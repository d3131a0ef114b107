"""Invitation use cases: create (signed single-use link), send and check the one-time code, record the plan."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature
from itsdangerous import URLSafeTimedSerializer

from bff.auth.services import Client
from bff.resend import RESEND_AFTER
from infra.accounts import Staff
from infra.audit import SqlAuditLog
from infra.db.models import utcnow
from infra.invitations import Invitation
from infra.invitations import SqlInvitations
from infra.sms import SmsSender
from plans.errors import PlanInputError
from plans.errors import error

MOBILE = re.compile(r"1[3-9]\d{9}")
#: a short link's token: 13 symbols of a 32-letter alphabet without look-alikes (no 0/o, 1/l) — 65 random bits,
#: lower case so that a chat app or a phone keyboard that changes case cannot break it
SHORT_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
SHORT_LENGTH = 13
SHORT = re.compile(rf"[{SHORT_ALPHABET}]{{{SHORT_LENGTH}}}")
TTL = timedelta(hours=24)
CODE_TTL = timedelta(minutes=10)
LOCK_AFTER = 5


class InvitationInvalid(Exception):
    """Forged, tampered, expired, used, locked or unknown: the customer is told only that it is not valid."""


@dataclass(frozen=True)
class Created:
    invitation: Invitation
    token: str  # shown once, on the salesperson's screen; only its hash is stored


def mask_mobile(mobile: str) -> str:
    """138****5678 (动态脱敏 for everyone but the customer's own salesperson at creation)."""
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) == 11 else "***"


class InvitationService:
    def __init__(self, repo: SqlInvitations, sms: SmsSender, audit: SqlAuditLog, secret_key: str) -> None:
        self.repo = repo
        self.sms = sms
        self.audit = audit
        self.signer = URLSafeTimedSerializer(secret_key, salt="leaseline.invitation")
        self.code_key = hashlib.sha256(("leaseline.invitation.code:" + secret_key).encode()).digest()

    def _audit(self, action: str, outcome: str, inv: Invitation, client: Client, actor: Staff | None = None,
               **details: object) -> None:
        self.audit.append(action, outcome, actor_id=actor.id if actor else None,
                          actor_label=actor.email if actor else f"customer {mask_mobile(inv.mobile)}",
                          dealer_id=inv.dealer_id, target=f"invitation {inv.id}", ip=client.ip,
                          user_agent=client.user_agent, details=dict(details))

    def create(self, user: Staff, mobile: str, vehicle_id: str | None, plan_code: str | None,
               client: Client) -> Created:
        """A new invitation by ``user`` (a dealer role) for ``mobile``; raises PlanInputError on bad input."""
        mobile = mobile.strip().replace(" ", "").replace("-", "")
        if not MOBILE.fullmatch(mobile):
            raise PlanInputError([error("mobile", "mobile_format")])
        if user.dealer_id is None:
            raise PermissionError("only dealer staff invite customers")
        # The link's secret part is the short token itself (stored only as its hash): /i/<short> and the signed
        # long link (older invitations have only that) reach the same invitation.
        nonce = "".join(secrets.choice(SHORT_ALPHABET) for _ in range(SHORT_LENGTH))
        inv = self.repo.create(dealer_id=user.dealer_id, created_by=user.id, mobile=mobile, vehicle_id=vehicle_id,
                               plan_code=plan_code, nonce_hash=hashlib.sha256(nonce.encode()).hexdigest(),
                               expires_at=utcnow() + TTL)
        self._audit("invitation.create", "success", inv, client, user)
        return Created(inv, str(self.signer.dumps({"i": inv.id, "n": nonce})))

    def short_token(self, token: str) -> str | None:
        """The short form of the signed link ``token`` (None for an invitation made before short links)."""
        try:
            data = self.signer.loads(token[:512])
        except BadSignature:
            return None
        nonce = data.get("n") if isinstance(data, dict) else None
        return nonce if isinstance(nonce, str) and SHORT.fullmatch(nonce) else None

    def identify(self, token: str) -> Invitation | None:
        """The invitation a genuine link (short, or signed and long) was made for, used or not; None otherwise.
        A short token is matched in lower case, as it was made: a chat app or a keyboard may change its case."""
        short = token.lower()
        if SHORT.fullmatch(short):
            return self.repo.by_nonce_hash(hashlib.sha256(short.encode()).hexdigest())
        try:  # no max_age: the invitation's own expiry decides whether it is still usable (see resolve)
            data = self.signer.loads(token[:512])
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("i"), str) or not isinstance(data.get("n"), str):
            return None
        inv = self.repo.get(data["i"])
        if inv is None or not hmac.compare_digest(inv.nonce_hash, hashlib.sha256(data["n"].encode()).hexdigest()):
            return None
        return inv

    def resolve(self, token: str) -> Invitation:
        """The invitation behind a link that is still usable; raises :class:`InvitationInvalid`."""
        inv = self.identify(token)
        if inv is None or inv.opened_at is not None or inv.locked or inv.expires_at <= utcnow():
            raise InvitationInvalid
        return inv

    def _code_hash(self, inv: Invitation, code: str) -> str:
        return hmac.new(self.code_key, f"{inv.id}:{code}".encode(), hashlib.sha256).hexdigest()

    def send_code(self, inv: Invitation, client: Client) -> bool:
        """Text a new 6-digit code to the invited mobile; False if one went out less than a minute ago."""
        if inv.code_sent_at is not None and utcnow() - inv.code_sent_at < RESEND_AFTER:
            return False
        code = f"{secrets.randbelow(10**6):06d}"
        # the check of the last send and the new code's record are one step (the invitation's row lock, released
        # before the text goes): a double tap's two requests, both past the check above, text one code
        issued = self.repo.set_code_unless_recent(inv.id, self._code_hash(inv, code), utcnow() - RESEND_AFTER)
        if issued is None:
            return False
        try:
            self.sms.send(inv.mobile, "invitation_code", {"code": code}, dealer_id=inv.dealer_id)
        except Exception:
            # the code counts as sent only once the platform took it: a text that failed leaves the old state (and
            # no one-minute wait before trying again); SmsUnavailable / SmsRefused go to the view
            self.repo.restore_code(inv.id, issued)
            raise
        self._audit("invitation.code_sent", "success", inv, client)
        return True

    def verify_code(self, inv: Invitation, code: str, client: Client) -> bool:
        """Check the code; the fifth wrong one locks the invitation. True once: it also uses the link."""
        code = code.strip()
        fresh = inv.code_sent_at is not None and utcnow() - inv.code_sent_at <= CODE_TTL
        ok = fresh and inv.code_hash is not None and hmac.compare_digest(inv.code_hash, self._code_hash(inv, code))
        if not ok:
            locked = self.repo.code_failed(inv.id, LOCK_AFTER)
            self._audit("invitation.code", "failure", inv, client, locked=locked)
            return False
        if not self.repo.mark_opened(inv.id):
            return False
        self._audit("invitation.code", "success", inv, client)
        return True
