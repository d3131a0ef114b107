"""Sign-in use cases: password, second factor, lockout, audit. No Flask here: views pass what they know."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from secrets import choice

import pyotp

from bff.auth.passwords import hash_secret
from bff.auth.passwords import verify_secret
from bff.auth.roles import TOTP_REQUIRED
from infra.accounts import SqlAccounts
from infra.accounts import Staff
from infra.audit import SqlAuditLog
from infra.db.models import utcnow
from infra.sessions import SessionStore

RECOVERY_CODES = 8
#: TOTP codes of the previous, the current and the next 30-second step are accepted (RFC 6238 §5.2 allows for
#: clock drift and typing time), each at most once
TOTP_STEPS = (-1, 0, 1)


def staff_subject(user_id: str) -> str:
    """The session-store subject of a staff member's sessions (see :mod:`infra.sessions`)."""
    return f"staff:{user_id}"


def customer_subject(invitation_id: str) -> str:
    """The session-store subject of an invited customer's sessions."""
    return f"customer:{invitation_id}"


def totp_step(secret: str, code: str, now: datetime | None = None) -> int | None:
    """The time step (unix time // 30) whose code ``code`` is, among :data:`TOTP_STEPS` around ``now``; None if
    it is none of them. Compared in constant time, like pyotp's own ``verify``."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now or datetime.now(UTC))
    for step in (current + offset for offset in TOTP_STEPS):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_code() -> str:
    """A one-time recovery code like ``7KQ2-M9XD-4TNB`` (about 59 bits; typed back in any case)."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
    raw = "".join(choice(alphabet) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


@dataclass(frozen=True)
class Client:
    """Where a request comes from, for the audit log."""

    ip: str
    user_agent: str


class SignInFailed(Exception):
    """Wrong credentials, a locked or inactive account: the message never says which."""


@dataclass(frozen=True)
class PasswordOk:
    user: Staff
    needs_second_factor: bool


class AuthService:
    """Local accounts: argon2 passwords, TOTP for lessor roles, lockout after repeated failures."""

    def __init__(self, accounts: SqlAccounts, audit: SqlAuditLog, sessions: SessionStore, lock_after: int = 5,
                 lock_for: timedelta = timedelta(minutes=15)) -> None:
        self.accounts = accounts
        self.audit = audit
        self.sessions = sessions
        self.lock_after = lock_after
        self.lock_for = lock_for

    def _log(self, action: str, outcome: str, client: Client, user: Staff | None, label: str,
             **details: object) -> None:
        self.audit.append(action, outcome, actor_id=user.id if user else None, actor_label=label,
                          dealer_id=user.dealer_id if user else None, ip=client.ip, user_agent=client.user_agent,
                          details=dict(details))

    def check_password(self, email: str, password: str, client: Client) -> PasswordOk:
        """First step of sign-in. Raises :class:`SignInFailed`; every outcome is audited."""
        found = self.accounts.by_email(email)
        user, secrets = found if found else (None, None)
        ok = verify_secret(secrets.password_hash if secrets else None, password)  # same work either way
        label = email.strip().lower()[:254]
        if user is None or secrets is None:
            self._log("auth.sign_in", "failure", client, None, label, reason="unknown_account")
            raise SignInFailed
        if not user.active:
            self._log("auth.sign_in", "failure", client, user, label, reason="inactive")
            raise SignInFailed
        if user.locked_until is not None and user.locked_until > utcnow():
            self._log("auth.sign_in", "failure", client, user, label, reason="locked")
            raise SignInFailed
        if not ok:
            locked = self.accounts.record_failure(user.id, self.lock_after, self.lock_for)
            self._log("auth.sign_in", "failure", client, user, label, reason="bad_password", locked=locked)
            if locked:
                self._log("auth.lockout", "success", client, user, label, minutes=self.lock_for.seconds // 60)
            raise SignInFailed
        needs = user.role in TOTP_REQUIRED
        if not needs:
            self.accounts.record_success(user.id)
            self._log("auth.sign_in", "success", client, user, label)
        return PasswordOk(user, needs)

    def check_second_factor(self, user_id: str, code: str, client: Client) -> Staff:
        """Second step for lessor roles: a TOTP code, or one of the recovery codes (each works once).

        A TOTP code is accepted once (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP
        after the successful validation has been issued for the first OTP"; OWASP ASVS 4.0.3 2.8.4): the account
        remembers the last time step it accepted, and one conditional UPDATE moves it forward, so two sign-ins
        racing with one code cannot both pass. A recovery code is struck off the list the same way (a conditional
        UPDATE on the list as read: :meth:`SqlAccounts.use_recovery_code`)."""
        found = self.accounts.get(user_id)
        secrets = self.accounts.secrets_of(user_id)
        if found is None or secrets is None or not found.active or not secrets.totp_secret:
            raise SignInFailed
        code = code.strip().replace(" ", "")
        step = totp_step(secrets.totp_secret, code)
        if step is not None:
            if not self.accounts.accept_totp_step(found.id, step):  # this code (or a later one) was used
                locked = self.accounts.record_failure(found.id, self.lock_after, self.lock_for)
                self._log("auth.second_factor", "failure", client, found, found.email, locked=locked,
                          reason="totp_reused")
                raise SignInFailed
            method = "totp"
        else:
            matched = [h for h in secrets.recovery_codes if verify_secret(h, code.upper())]  # the work of all
            if not matched:
                locked = self.accounts.record_failure(found.id, self.lock_after, self.lock_for)
                self._log("auth.second_factor", "failure", client, found, found.email, locked=locked)
                raise SignInFailed
            if not self.accounts.use_recovery_code(found.id, matched[0]):  # used meanwhile, by a racing sign-in
                locked = self.accounts.record_failure(found.id, self.lock_after, self.lock_for)
                self._log("auth.second_factor", "failure", client, found, found.email, locked=locked,
                          reason="recovery_code_reused")
                raise SignInFailed
            method = "recovery_code"
        self.accounts.record_success(found.id)
        self._log("auth.sign_in", "success", client, found, found.email, second_factor=method)
        return found

    def enrol_totp(self, user_id: str, secret: str, code: str, client: Client) -> tuple[Staff, list[str]]:
        """A lessor staff member's first TOTP secret, confirmed by one code from their app (the password
        step already passed). Returns the account and its new recovery codes, shown once; raises
        :class:`SignInFailed` on a wrong code (counted towards the lockout) or when a secret is already set."""
        found = self.accounts.get(user_id)
        if found is None or not found.active or found.totp_enabled:
            raise SignInFailed
        code = code.strip().replace(" ", "")
        step = totp_step(secret, code)
        if step is None:
            locked = self.accounts.record_failure(found.id, self.lock_after, self.lock_for)
            self._log("auth.totp_enrol", "failure", client, found, found.email, locked=locked)
            raise SignInFailed
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        # the confirming code is used: it does not sign in a second time (RFC 6238 §5.2)
        if not self.accounts.enrol_totp(found.id, secret, [hash_secret(c) for c in codes], step):
            raise SignInFailed  # another tab enrolled first: that secret stands
        self.accounts.record_success(found.id)
        self._log("auth.totp_enrol", "success", client, found, found.email)
        self._log("auth.sign_in", "success", client, found, found.email, second_factor="totp_enrol")
        return found, codes

    def oidc_sign_in(self, issuer: str, subject: str, email: str, email_verified: bool, client: Client,
                     group_id: str | None = None) -> Staff | None:
        """The invited account for an OpenID identity (linked on the first sign-in by verified email).

        ``group_id`` is the dealer group whose own issuer was used: only that group's staff may sign in
        through it. Through the default issuer (None), only accounts whose group has no issuer of its own
        (and the lessor's staff) may: a group with its own issuer controls its staff's access there."""
        user = self.accounts.by_subject(issuer, subject) if subject else None
        linking = False
        if user is None and subject and email and email_verified:
            found = self.accounts.by_email(email)
            user, linking = (found[0], True) if found is not None else (None, False)
        reason = None
        if user is None or not user.active:
            reason = "oidc_not_invited"
        else:
            group = self.accounts.group_of(user)
            if group_id is not None and (group is None or group.id != group_id):
                reason = "oidc_wrong_group"
            elif group_id is None and group is not None and group.oidc_issuer and group.oidc_issuer != issuer:
                reason = "oidc_wrong_group"
        if reason is None and linking and user is not None:
            if self.accounts.link_subject(user.id, issuer, subject):
                self._log("auth.oidc_link", "success", client, user, user.email, issuer=issuer)
            else:  # already linked to another identity: this one is not it
                reason = "oidc_not_invited"
        if reason is not None or user is None:
            self._log("auth.sign_in", "failure", client, user, email or subject, reason=reason, issuer=issuer,
                      group=group_id)
            return None
        self.accounts.record_success(user.id)
        self._log("auth.sign_in", "success", client, user, user.email, method="oidc", issuer=issuer, group=group_id)
        return user

    def oidc_refused(self, error: str, client: Client) -> None:
        self.audit.append("auth.sign_in", "failure", actor_id=None, actor_label="(openid)", ip=client.ip,
                          user_agent=client.user_agent, details={"reason": "oidc_" + error[:40]})

    def sign_out(self, user: Staff, client: Client) -> None:
        self._log("auth.sign_out", "success", client, user, user.email)

    def sign_out_everywhere(self, user: Staff, client: Client) -> int:
        """End every session of ``user``, this one included (a copied cookie of this very session too; OWASP
        ASVS 4.0.3 3.3.4). Returns how many were ended."""
        ended = self.sessions.end_subject(staff_subject(user.id))
        self._log("auth.sign_out_everywhere", "success", client, user, user.email, sessions=ended)
        return ended

    def end_sessions(self, user: Staff, reason: str, client: Client, by: Staff | None = None) -> int:
        """End every session of ``user`` for ``reason`` (e.g. ``deactivated``), at once rather than at their next
        request. Returns how many were ended."""
        ended = self.sessions.end_subject(staff_subject(user.id))
        self._log("auth.session_end", "success", client, user, user.email, reason=reason, sessions=ended,
                  by=by.email if by is not None else None)
        return ended

    def session_count(self, user: Staff) -> int:
        """How many live sessions ``user`` has (their devices and browsers)."""
        return self.sessions.count(staff_subject(user.id), utcnow())

    def session_ended(self, user: Staff | None, label: str, reason: str, client: Client) -> None:
        self._log("auth.session_end", "success", client, user, label, reason=reason)
