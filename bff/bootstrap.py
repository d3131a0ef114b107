"""Composition root: builds the adapters and services from settings. Views never build adapters."""

from __future__ import annotations

from dataclasses import dataclass

from bff.auth.services import AuthService
from bff.config import ConfigError
from bff.config import Settings
from bff.invitations.services import InvitationService
from bff.plans.services import PlanService
from infra.accounts import SqlAccounts
from infra.audit import SqlAuditLog
from infra.catalogue import SqlCatalogue
from infra.db import Database
from infra.invitations import SqlInvitations
from infra.sms import SandboxOutboxSms
from plans.policy import load_policy
from plans.product import load_product


@dataclass
class Services:
    db: Database
    plans: PlanService
    accounts: SqlAccounts
    audit: SqlAuditLog
    auth: AuthService
    sms: SandboxOutboxSms
    invitations_repo: SqlInvitations
    invitations: InvitationService


def bootstrap(settings: Settings) -> Services:
    """Wire the BFF's dependencies. Fails fast with a ConfigError on a wrong policy or product name."""
    try:
        policy = load_policy(settings.policy)
    except FileNotFoundError:
        raise ConfigError(
            f"LEASELINE_POLICY={settings.policy!r}: no file plans/policies/{settings.policy}.toml") from None
    try:
        product = load_product(settings.product)
    except FileNotFoundError:
        raise ConfigError(
            f"LEASELINE_PRODUCT={settings.product!r}: no file plans/products/{settings.product}.toml") from None
    db = Database(settings.database_url)
    accounts, audit = SqlAccounts(db), SqlAuditLog(db)
    sms = SandboxOutboxSms(db)  # the embedded default; a gateway adapter replaces it in production
    invitations = SqlInvitations(db)
    return Services(db=db, plans=PlanService(SqlCatalogue(db), product, policy), accounts=accounts, audit=audit,
                    auth=AuthService(accounts, audit), sms=sms, invitations_repo=invitations,
                    invitations=InvitationService(invitations, sms, audit, settings.secret_key))
