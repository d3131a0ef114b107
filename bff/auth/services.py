"""Sign-in use cases: password, second factor, lockout, audit. No Flask here: views pass what they know."""

from __future__ import annotations

from dataclasses import dataclass
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

RECOVERY_CODES = 8


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

    def __init__(self, accounts: SqlAccounts, audit: SqlAuditLog, lock_after: int = 5,
                 lock_for: timedelta = timedelta(minutes=15)) -> None:
        self.accounts = accounts
        self.audit = audit
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
        """Second step for lessor roles: a TOTP code, or one of the recovery codes (each works once)."""
        found = self.accounts.get(user_id)
        secrets = self.accounts.secrets_of(user_id)
        if found is None or secrets is None or not found.active or not secrets.totp_secret:
            raise SignInFailed
        code = code.strip().replace(" ", "")
        if code.isdigit() and len(code) == 6 and pyotp.TOTP(secrets.totp_secret).verify(code, valid_window=1):
            method = "totp"
        else:
            remaining = [h for h in secrets.recovery_codes if not verify_secret(h, code.upper())]
            if len(remaining) == len(secrets.recovery_codes):
                locked = self.accounts.record_failure(found.id, self.lock_after, self.lock_for)
                self._log("auth.second_factor", "failure", client, found, found.email, locked=locked)
                raise SignInFailed
            self.accounts.use_recovery_code(found.id, remaining)
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
        if not (code.isdigit() and len(code) == 6 and pyotp.TOTP(secret).verify(code, valid_window=1)):
            locked = self.accounts.record_failure(found.id, self.lock_after, self.lock_for)
            self._log("auth.totp_enrol", "failure", client, found, found.email, locked=locked)
            raise SignInFailed
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        if not self.accounts.enrol_totp(found.id, secret, [hash_secret(c) for c in codes]):
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

    def session_ended(self, user: Staff | None, label: str, reason: str, client: Client) -> None:
        self._log("auth.session_end", "success", client, user, label, reason=reason)
