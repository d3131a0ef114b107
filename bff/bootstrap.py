"""Composition root: builds the adapters and services from settings. Views never build adapters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from decimal import Decimal

from bff.applications.contracts import ContractDispatch
from bff.applications.kyc import KycService
from bff.applications.orphans import OrphanSweep
from bff.applications.orphans import SweepReport
from bff.applications.risk import RiskDispatch
from bff.applications.services import ApplicationService
from bff.auth.services import AuthService
from bff.config import ConfigError
from bff.config import Settings
from bff.config import var_dir
from bff.invitations.services import InvitationService
from bff.payments.checkout import CheckoutService
from bff.payments.common import utc_now
from bff.payments.handover import HandoverService
from bff.payments.intents import IntentSync
from bff.payments.payouts import TRANSFER_STALE_AFTER
from bff.payments.payouts import PayoutService
from bff.payments.reconciliation import Reconciliation
from bff.payments.refunds import REFUND_RETRY_AFTER
from bff.payments.refunds import RefundService
from bff.payments.settlement import SettlementService
from bff.payments.webhooks import WebhookService
from bff.plans.services import PlanService
from bff.privacy.services import PrivacyService
from infra.accounts import SqlAccounts
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.catalogue import SqlCatalogue
from infra.clients.contract import CONTRACT_AUDIENCE
from infra.clients.contract import CONTRACT_READ_SCOPE
from infra.clients.contract import CONTRACT_WRITE_SCOPE
from infra.clients.contract import LEDGER_APPEND_SCOPE
from infra.clients.contract import LEDGER_READ_SCOPE
from infra.clients.contract import ContractClient
from infra.clients.http import ServiceClient
from infra.clients.risk import ASSESS_SCOPE
from infra.clients.risk import REVIEW_SCOPE
from infra.clients.risk import RISK_AUDIENCE
from infra.clients.risk import RiskClient
from infra.clients.tokens import TokenSource
from infra.credit_bureau import CreditBureau
from infra.credit_bureau import SandboxCreditBureau
from infra.db import Database
from infra.handovers import SqlHandovers
from infra.invitations import SqlInvitations
from infra.invoice_platform import InvoicePlatform
from infra.invoice_platform import Party
from infra.invoice_sandbox import SandboxInvoicePlatform
from infra.jobs import JobQueue
from infra.payments import StripeGateway
from infra.payments_store import SqlPayments
from infra.peers import is_local_endpoint
from infra.pii import PiiVault
from infra.pii import configured_key
from infra.privacy_requests import SqlPrivacyRequests
from infra.sandbox_bank import LocalStripeBank
from infra.service_tokens import TokenIssuer
from infra.service_tokens import load_or_create_signing_key
from infra.sessions import SessionStore
from infra.sessions import SqlSessionStore
from infra.sms import SandboxOutboxSms
from infra.sms import SmsSender
from infra.sms import TencentSms
from infra.storage import S3ObjectStore
from plans.policy import load_policy
from plans.product import load_product


@dataclass(frozen=True)
class Payments:
    """The payment services, one per kind of work (bff/payments/), and the payments' records they share."""

    store: SqlPayments
    checkout: CheckoutService
    webhooks: WebhookService
    refunds: RefundService
    payouts: PayoutService
    settlement: SettlementService
    reconciliation: Reconciliation


def payment_services(store: SqlPayments, gateway: StripeGateway, repo: SqlApplications, deposit_ratio: Decimal, *,
                     dealer_account: Callable[[str], str | None] = lambda dealer_id: None,
                     clock: Callable[[], datetime] = utc_now,
                     audit: SqlAuditLog | None = None, stale_after: timedelta = TRANSFER_STALE_AFTER,
                     refund_retry_after: timedelta = REFUND_RETRY_AFTER, test_bank: bool = False) -> Payments:
    """The payment services on one payments store, Stripe gateway and applications repository (also used by the
    CLI's payment commands). ``dealer_account``: a dealer's Stripe Connect account, None while it has none.
    ``test_bank``: TEST MODE may answer 3-D Secure for the customer (never in production); it is wired only on a
    local fake Stripe with a test key, so a live key on a loopback address (a tunnel, a proxy) never gets it."""
    intents = IntentSync(store, repo, clock, audit)
    local = is_local_endpoint(gateway.api_base)  # localstripe: its 3-D Secure has a test bank, not a page
    bank = LocalStripeBank(gateway.api_base) if test_bank and local and gateway.test_mode else None
    return Payments(
        store=store,
        checkout=CheckoutService(store, gateway, repo, intents, deposit_ratio, local_stripe=local, clock=clock,
                                 bank=bank),
        webhooks=WebhookService(store, gateway, intents),
        refunds=RefundService(store, gateway, repo, clock, refund_retry_after),
        payouts=PayoutService(store, gateway, repo, dealer_account, clock, audit, stale_after),
        settlement=SettlementService(store, gateway, repo, intents, clock, audit, stale_after),
        reconciliation=Reconciliation(store, gateway))


@dataclass
class Services:
    db: Database
    plans: PlanService
    accounts: SqlAccounts
    audit: SqlAuditLog
    auth: AuthService
    sms: SmsSender
    #: the sandbox's messages (/dev/outbox, tests); None when a real platform sends them
    outbox: SandboxOutboxSms | None
    invitations_repo: SqlInvitations
    invitations: InvitationService
    vault: PiiVault
    store: S3ObjectStore
    applications: ApplicationService
    kyc: KycService
    orphans: OrphanSweep
    risk: RiskDispatch
    contract: ContractClient
    contracts: ContractDispatch
    #: the signed handover record that starts a lease's term (bff/payments/handover.py)
    handovers: HandoverService
    #: the person's rights over their data: consent withdrawal and requests, answered by ops (bff/privacy)
    privacy: PrivacyService
    kyc_rate: str
    jobs: JobQueue
    payments: Payments
    sessions: SessionStore
    #: one bounded orphan sweep per call, each continuing where the previous one stopped (the worker's task)
    sweep_orphans: Callable[[], SweepReport]
    #: the credit bureau (征信报送, bff/servicing/credit_reports.py): the sandbox, the only adapter so far (a real
    #: one needs the lessor's line to the PBOC Credit Reference Center or a licensed bureau; chosen here once it exists)
    credit_bureau: CreditBureau
    #: the e-invoice platform (数电发票, bff/servicing/invoices.py): the sandbox, the only adapter so far (specimens,
    #: never invoices: infra/invoice_sandbox.py); the seller its invoices name; how long a pending request waits
    invoice_platform: InvoicePlatform
    invoice_seller: Party
    invoice_poll_seconds: int = 60


def invoice_platform(settings: Settings, db: Database) -> InvoicePlatform:
    """The invoice platform the settings choose: the sandbox (``LEASELINE_INVOICE_PLATFORM``, bff/config.py)."""
    return SandboxInvoicePlatform(db)


def sweep_onward(orphans: OrphanSweep) -> Callable[[], SweepReport]:
    """One bounded orphan sweep per call, each continuing where the previous one stopped (a large bucket is
    covered over several runs, then the next run starts again from the first folder)."""
    after = ""

    def sweep_orphans() -> SweepReport:
        nonlocal after
        report = orphans.sweep(after=after)
        after = report.next_after
        return report

    return sweep_orphans


def sms_sender(settings: Settings, db: Database) -> SmsSender:
    """The text-message adapter the settings choose: the sandbox outbox (the embedded default) or Tencent Cloud."""
    if settings.sms == "tencent":
        import json

        conf = dict(settings.tencent_sms)
        return TencentSms(secret_id=conf["secret_id"], secret_key=conf["secret_key"], app_id=conf["app_id"],
                          template_ids=json.loads(conf["templates"]),
                          region=conf["region"], endpoint=conf["endpoint"], scheme=conf["scheme"],
                          signature=settings.sms_signature)
    return SandboxOutboxSms(db, settings.sms_signature)


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
    sessions = SqlSessionStore(db)  # the embedded default; a Redis adapter comes with the scale-out issue
    sms = sms_sender(settings, db)
    try:
        vault = PiiVault(configured_key(settings.pii_key, var_dir()))
    except ValueError as exc:
        raise ConfigError(f"LEASELINE_PII_KEY: {exc}") from None
    invitations = SqlInvitations(db, vault)
    plans = PlanService(SqlCatalogue(db), product, policy)
    store = S3ObjectStore(endpoint_url=settings.s3_endpoint_url or None, bucket=settings.s3_bucket,
                          access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                          region=settings.s3_region)
    applications = ApplicationService(SqlApplications(db), vault, plans, audit, settings.biometric_retention_days)
    # background work is a job (infra/jobs.py), deferred with the change that causes it, run by a worker
    # (bff/worker.py: `leaseline worker`); the face models load in the worker, never in a web process
    jobs = JobQueue(db)
    kyc = KycService(applications.repo, applications, store, jobs, face_threshold=settings.face_threshold,
                     face_review_margin=settings.face_review_margin)
    signing_key = load_or_create_signing_key(var_dir() / "service_signing_key.pem")
    tokens = TokenIssuer(signing_key, settings.service_issuer)
    risk_client = RiskClient(ServiceClient(settings.risk_url, TokenSource(tokens, RISK_AUDIENCE, [ASSESS_SCOPE,
                                                                                                  REVIEW_SCOPE])))
    risk = RiskDispatch(applications.repo, applications, risk_client, jobs)
    applications.on_kyc_passed.append(risk.request)
    # rendering and signing PDFs takes seconds, and a verification upload may be 12 MB: a longer read timeout
    contract = ContractClient(ServiceClient(settings.contract_url, TokenSource(tokens, CONTRACT_AUDIENCE, [
        CONTRACT_WRITE_SCOPE, CONTRACT_READ_SCOPE, LEDGER_APPEND_SCOPE, LEDGER_READ_SCOPE]), read_timeout=30.0))
    contracts = ContractDispatch(applications.repo, applications, contract, accounts, vault, sms, jobs)
    applications.on_approved.append(contracts.request)
    applications.on_declined.append(contracts.record_decline)
    payments = payment_services(SqlPayments(db), StripeGateway(settings.stripe_secret_key,
                                                               api_base=settings.stripe_api_base or None),
                                applications.repo, product.deposit_ratio,
                                dealer_account=lambda dealer_id: getattr(accounts.dealer(dealer_id), "stripe_account",
                                                                         None), audit=audit,
                                stale_after=timedelta(seconds=settings.payments_stale_seconds),
                                refund_retry_after=timedelta(seconds=settings.refund_retry_seconds),
                                test_bank=settings.env != "production")
    orphans = OrphanSweep(store, applications.repo, accounts,
                          grace=timedelta(seconds=settings.kyc_orphan_grace_seconds))

    handovers = HandoverService(SqlHandovers(db), payments.settlement, contracts, audit)
    # a withdrawn consent to face recognition deletes the application's face images at once
    privacy = PrivacyService(SqlPrivacyRequests(db), applications.repo, audit,
                             erasers={"face_recognition": kyc.delete_biometrics})
    return Services(db=db, plans=plans, accounts=accounts, audit=audit, risk=risk, contract=contract,
                    contracts=contracts, handovers=handovers, privacy=privacy,
                    auth=AuthService(accounts, audit, sessions), sms=sms, invitations_repo=invitations,
                    outbox=sms if isinstance(sms, SandboxOutboxSms) else None,
                    invitations=InvitationService(invitations, sms, audit, settings.secret_key),
                    vault=vault, store=store, applications=applications, kyc=kyc, orphans=orphans,
                    kyc_rate=settings.kyc_rate, jobs=jobs, payments=payments, sessions=sessions,
                    sweep_orphans=sweep_onward(orphans),
                    credit_bureau=SandboxCreditBureau(var_dir() / "credit_bureau_sandbox"),
                    invoice_platform=invoice_platform(settings, db),
                    invoice_seller=Party(settings.invoice_seller_name, tax_id=settings.invoice_seller_credit_code),
                    invoice_poll_seconds=settings.invoice_poll_seconds)
