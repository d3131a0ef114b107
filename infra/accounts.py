"""Staff accounts, dealers and dealer groups: the ``Accounts`` adapter over SQL."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from infra.db.engine import Database
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import UserRow
from infra.db.models import utcnow

MODULES = ("basic_signing", "inventory_finance", "residual_prediction", "telemetry")
ALWAYS_ON = ("basic_signing",)
DEALER_ROLES = ("dealer_admin", "sales")
LESSOR_ROLES = ("risk_officer_t1", "risk_officer_t2", "ops_admin", "auditor")
ROLES = DEALER_ROLES + LESSOR_ROLES
#: compare-and-set rounds of :meth:`SqlAccounts.use_recovery_code`: more than an account has codes (8, see
#: bff.auth.services.RECOVERY_CODES), since a round is lost only to another code's use
_RECOVERY_ROUNDS = 10


@dataclass(frozen=True)
class Staff:
    """A signed-in (or signing-in) staff member as the BFF sees it; no secrets."""

    id: str
    email: str
    name: str
    role: str
    dealer_id: str | None
    active: bool
    totp_enabled: bool
    locked_until: datetime | None

    @property
    def lessor_side(self) -> bool:
        return self.role in LESSOR_ROLES


@dataclass(frozen=True)
class Dealer:
    id: str
    group_id: str
    name: str
    city: str
    modules: tuple[str, ...]
    active: bool
    credit_code: str | None = None  # 统一社会信用代码: the dealer is the supplier party of its contracts
    address: str | None = None
    stripe_account: str | None = None  # Stripe Connect account that receives the dealer's share (分账)


@dataclass(frozen=True)
class DealerGroup:
    """A dealer group; ``oidc_issuer`` is its staff's own OpenID issuer, when it has one."""

    id: str
    name: str
    oidc_issuer: str | None


@dataclass(frozen=True)
class Secrets:
    """What sign-in needs to check: never leaves the auth service."""

    password_hash: str | None
    totp_secret: str | None
    recovery_codes: list[str]


def _staff(row: UserRow) -> Staff:
    return Staff(row.id, row.email, row.name, row.role, row.dealer_id, row.active, bool(row.totp_secret),
                 row.locked_until)


class SqlAccounts:
    """Staff, dealers and groups in the BFF's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_email(self, email: str) -> tuple[Staff, Secrets] | None:
        """The account with ``email`` (case-insensitive) and its secrets, or None."""
        with self.db.session() as session:
            row = session.scalar(select(UserRow).where(func.lower(UserRow.email) == email.strip().lower()[:254]))
            if row is None:
                return None
            return _staff(row), Secrets(row.password_hash, row.totp_secret, json.loads(row.recovery_codes))

    def by_subject(self, issuer: str, subject: str) -> Staff | None:
        """The account linked to ``subject`` at ``issuer`` by an earlier OpenID sign-in, or None."""
        with self.db.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.oidc_issuer == issuer, UserRow.oidc_subject == subject))
            return _staff(row) if row else None

    def link_subject(self, user_id: str, issuer: str, subject: str) -> bool:
        """Link an invited account (matched by email) to its OpenID subject on its first sign-in, once."""
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is None or row.oidc_subject is not None:
                return False
            row.oidc_issuer, row.oidc_subject = issuer, subject
            return True

    def secrets_of(self, user_id: str) -> Secrets | None:
        if len(user_id) > 36:  # an id names its row exactly, never the one its first 36 characters name
            return None
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            return Secrets(row.password_hash, row.totp_secret, json.loads(row.recovery_codes)) if row else None

    def get(self, user_id: str) -> Staff | None:
        if len(user_id) > 36:
            return None
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            return _staff(row) if row is not None else None

    def dealer(self, dealer_id: str) -> Dealer | None:
        if len(dealer_id) > 36:
            return None
        with self.db.session() as session:
            row = session.get(DealerRow, dealer_id)
            if row is None:
                return None
            return Dealer(row.id, row.group_id, row.name, row.city, tuple(json.loads(row.modules)), row.active,
                          row.credit_code, row.address, row.stripe_account)

    def dealers(self) -> list[Dealer]:
        with self.db.session() as session:
            rows = session.scalars(select(DealerRow).order_by(DealerRow.name)).all()
            return [Dealer(r.id, r.group_id, r.name, r.city, tuple(json.loads(r.modules)), r.active, r.credit_code,
                           r.address, r.stripe_account) for r in rows]

    def group(self, group_id: str) -> DealerGroup | None:
        if len(group_id) > 36:
            return None
        with self.db.session() as session:
            row = session.get(DealerGroupRow, group_id)
            return DealerGroup(row.id, row.name, row.oidc_issuer) if row is not None else None

    def groups(self) -> list[DealerGroup]:
        """Every dealer group, by name."""
        with self.db.session() as session:
            rows = session.scalars(select(DealerGroupRow).order_by(DealerGroupRow.name)).all()
            return [DealerGroup(r.id, r.name, r.oidc_issuer) for r in rows]

    def set_group_issuer(self, group_id: str, issuer: str | None) -> None:
        """Set (or clear, with None) the OpenID issuer a dealer group's staff sign in with."""
        with self.db.session() as session:
            row = session.get(DealerGroupRow, group_id)
            if row is not None:
                row.oidc_issuer = issuer

    def group_of(self, user: Staff) -> DealerGroup | None:
        """The dealer group of a dealer-side account; None for the lessor's staff."""
        if user.dealer_id is None:
            return None
        with self.db.session() as session:
            row = session.scalar(select(DealerGroupRow).join(DealerRow, DealerRow.group_id == DealerGroupRow.id)
                                 .where(DealerRow.id == user.dealer_id))
            return DealerGroup(row.id, row.name, row.oidc_issuer) if row is not None else None

    def enrol_totp(self, user_id: str, totp_secret: str, recovery_hashes: list[str], used_step: int) -> bool:
        """Store a first TOTP secret and its recovery codes, with the time step of the code that confirmed it (used
        once); False (nothing changed) if a secret is already set."""
        stmt = (update(UserRow).where(UserRow.id == user_id, UserRow.totp_secret.is_(None))
                .values(totp_secret=totp_secret, recovery_codes=json.dumps(recovery_hashes),
                        totp_last_step=used_step))
        with self.db.session() as session:  # one conditional UPDATE: two racing enrolments cannot both win
            return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def accept_totp_step(self, user_id: str, step: int) -> bool:
        """Record that a TOTP code of time ``step`` was used; False if that step or a later one already was.

        One conditional UPDATE: of two sign-ins racing with the same code, the database lets exactly one move
        the step (PostgreSQL re-checks the WHERE clause on the row the other one committed)."""
        stmt = (update(UserRow).where(UserRow.id == user_id,
                                      or_(UserRow.totp_last_step.is_(None), UserRow.totp_last_step < step))
                .values(totp_last_step=step))
        with self.db.session() as session:
            return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def set_modules(self, dealer_id: str, modules: list[str]) -> tuple[str, ...]:
        """Switch a dealer's modules; unknown codes are dropped, the always-on ones kept. Returns the new set."""
        chosen = tuple(m for m in MODULES if m in modules or m in ALWAYS_ON)
        with self.db.session() as session:
            row = session.get(DealerRow, dealer_id)
            if row is not None:
                row.modules = json.dumps(list(chosen))
        return chosen

    def create_staff(self, email: str, name: str, role: str, dealer_id: str | None) -> str | None:
        """A new invited account without a password (set through a setup link, or linked by OpenID on the
        first company sign-in). None when the email is taken."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        with self.db.session() as session:
            taken = session.scalar(select(UserRow.id).where(func.lower(UserRow.email) == email.lower()))
            if taken is not None:
                return None
            row = UserRow(id=str(uuid.uuid4()), email=email.lower(), name=name, role=role, dealer_id=dealer_id,
                          password_hash=None, totp_secret=None, recovery_codes="[]", active=True, failed_logins=0,
                          created_at=utcnow())
            session.add(row)
            return row.id

    def set_password(self, user_id: str, password_hash: str) -> None:
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is not None:
                row.password_hash = password_hash

    def set_name(self, user_id: str, name: str) -> None:
        """The name staff are shown by (headers, histories, signed records)."""
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is not None:
                row.name = name

    def set_role(self, user_id: str, role: str) -> None:
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is not None:
                row.role = role

    def staff_of(self, dealer_id: str | None) -> list[Staff]:
        """Every account of ``dealer_id`` (None: every account), by name."""
        stmt = select(UserRow).order_by(UserRow.name)
        if dealer_id is not None:
            stmt = stmt.where(UserRow.dealer_id == dealer_id)
        with self.db.session() as session:
            return [_staff(row) for row in session.scalars(stmt)]

    def record_failure(self, user_id: str, limit: int, lock_for: timedelta) -> bool:
        """Count a failed sign-in; lock the account after ``limit`` in a row. Returns True when now locked."""
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is None:
                return False
            row.failed_logins += 1
            if row.failed_logins >= limit:
                row.locked_until = utcnow() + lock_for
                row.failed_logins = 0
                return True
            return False

    def record_success(self, user_id: str) -> None:
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is not None:
                row.failed_logins = 0
                row.locked_until = None
                row.last_login_at = utcnow()

    def use_recovery_code(self, user_id: str, used: str) -> bool:
        """Strike the recovery-code hash ``used`` (the one a code matched) off the account's list; False if it is
        not on it any more: that code was used meanwhile (each works once, OWASP ASVS 4.0.3 2.6.1).

        A compare-and-set, like :meth:`accept_totp_step`: ``UPDATE ... WHERE recovery_codes = <the list as read>``.
        Of sign-ins racing with one code, one strikes it and the others, re-reading, find it gone; of sign-ins
        with different codes, one that lost re-reads the list the winner wrote and strikes its own code off that,
        so no used code comes back. Every lost round means another code was used, so the rounds are bounded."""
        for _ in range(_RECOVERY_ROUNDS):
            with self.db.session() as session:  # a read of its own: the UPDATE below decides, not this snapshot
                stored = session.scalar(select(UserRow.recovery_codes).where(UserRow.id == user_id))
            codes = json.loads(stored) if stored is not None else []
            if used not in codes:
                return False
            stmt = (update(UserRow).where(UserRow.id == user_id, UserRow.recovery_codes == stored)
                    .values(recovery_codes=json.dumps([code for code in codes if code != used])))
            with self.db.session() as session:
                if session.execute(stmt).rowcount:  # type: ignore[attr-defined]
                    return True
        return False

    def set_active(self, user_id: str, active: bool) -> None:
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is not None:
                row.active = active

    def ensure_group(self, name: str) -> str:
        with self.db.session() as session:
            row = session.scalar(select(DealerGroupRow).where(DealerGroupRow.name == name))
            if row is None:
                row = DealerGroupRow(id=str(uuid.uuid4()), name=name, created_at=utcnow())
                session.add(row)
            return row.id

    def ensure_dealer(self, group_id: str, name: str, city: str, modules: list[str]) -> str:
        with self.db.session() as session:
            row = session.scalar(select(DealerRow).where(DealerRow.name == name))
            if row is None:
                row = DealerRow(id=str(uuid.uuid4()), group_id=group_id, name=name, city=city,
                                modules=json.dumps(modules), active=True, created_at=utcnow())
                session.add(row)
            return row.id

    def set_dealer_details(self, dealer_id: str, credit_code: str, address: str,
                           stripe_account: str | None = None) -> None:
        """The dealer's registered details (unified social credit code, registered address) for contracts, and
        the Stripe Connect account its share of each down payment is paid out to (None: none yet)."""
        with self.db.session() as session:
            row = session.get(DealerRow, dealer_id)
            if row is not None:
                row.credit_code, row.address = credit_code[:18], address[:255]
                row.stripe_account = stripe_account[:64] if stripe_account else None

    def ensure_user(self, email: str, name: str, role: str, dealer_id: str | None, password_hash: str,
                    totp_secret: str | None, recovery_codes: list[str]) -> str:
        """Create the account if it does not exist (demo seeding); returns its id."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        with self.db.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.email == email))
            if row is None:
                row = UserRow(id=str(uuid.uuid4()), email=email, name=name, role=role, dealer_id=dealer_id,
                              password_hash=password_hash, totp_secret=totp_secret,
                              recovery_codes=json.dumps(recovery_codes), active=True, failed_logins=0,
                              created_at=utcnow())
                session.add(row)
            return row.id
