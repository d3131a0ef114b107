"""Sign-in use cases: password, second factor, lockout, audit. No Flask here: views pass what they know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pyotp

from bff.auth.passwords import verify_secret
from bff.auth.roles import TOTP_REQUIRED
from infra.accounts import SqlAccounts
from infra.accounts import Staff
from infra.audit import SqlAuditLog
from infra.db.models import utcnow


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

    def oidc_sign_in(self, issuer: str, subject: str, email: str, email_verified: bool,
                     client: Client) -> Staff | None:
        """The invited account for an OpenID identity (linked on the first sign-in by verified email)."""
        user = self.accounts.by_subject(issuer, subject) if subject else None
        if user is None and email and email_verified:
            found = self.accounts.by_email(email)
            if found is not None and self.accounts.link_subject(found[0].id, issuer, subject):
                user = found[0]
                self._log("auth.oidc_link", "success", client, user, user.email, issuer=issuer)
        if user is None or not user.active:
            self._log("auth.sign_in", "failure", client, user, email or subject, reason="oidc_not_invited",
                      issuer=issuer)
            return None
        self.accounts.record_success(user.id)
        self._log("auth.sign_in", "success", client, user, user.email, method="oidc", issuer=issuer)
        return user

    def oidc_refused(self, error: str, client: Client) -> None:
        self.audit.append("auth.sign_in", "failure", actor_id=None, actor_label="(openid)", ip=client.ip,
                          user_agent=client.user_agent, details={"reason": "oidc_" + error[:40]})

    def sign_out(self, user: Staff, client: Client) -> None:
        self._log("auth.sign_out", "success", client, user, user.email)

    def session_ended(self, user: Staff | None, label: str, reason: str, client: Client) -> None:
        self._log("auth.session_end", "success", client, user, label, reason=reason)
