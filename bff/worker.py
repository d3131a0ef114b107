"""The BFF's worker: every background duty as a procrastinate task, run by ``leaseline worker`` processes.

Web processes only defer jobs (infra/jobs.py), in the transaction of the change that causes them. A worker
builds the same services as a web process (bff/bootstrap.py), warms the face models up before its first job,
and runs the tasks below; any number of workers on any number of machines share the queue (each job is taken
by one: ``FOR UPDATE SKIP LOCKED``; one risk or contract request per application at a time: its ``lock``).

Each task is idempotent on retry: it reads the state it changes and keys what it asks other systems from our
own records (the risk service's assessment per application, the contract per application, Stripe's
Idempotency-Key per payment, the evidence entry per event). Retries, schedules, the error kept for ops
(/ops/jobs, ``leaseline jobs``) and the run loop are infra/worker.py's, shared with the contract service's worker.
"""

from __future__ import annotations

from procrastinate import App

from bff.applications.contracts import ContractNotReady
from bff.bootstrap import Services
from bff.config import Settings
from bff.documents import document_service
from bff.invitations.returning import purge_codes
from bff.invitations.returning import text_code
from bff.servicing.arrears import Reminders
from bff.servicing.close import CloseOfBusiness
from bff.servicing.collect import rent_collection
from bff.servicing.credit_reports import CreditNotices
from bff.servicing.credit_reports import credit_reporting
from bff.servicing.hooks import servicing_hooks
from bff.servicing.invoices import OriginalNotIssued
from bff.servicing.invoices import invoice_issuing
from bff.servicing.settled import NotReadyYet
from bff.servicing.settled import lease_documents
from infra.arrears import SqlArrears
from infra.clients.http import ServiceUnavailable
from infra.collections import CollectionUnavailable
from infra.credit_bureau import CreditBureauUnavailable
from infra.credit_reports import SqlCreditReports
from infra.db.engine import UNAVAILABLE
from infra.db.models import utcnow
from infra.finance_income import FinanceIncome
from infra.invoice_platform import InvoicePlatformUnavailable
from infra.month_close import CHECK_QUEUE
from infra.month_close import CHECK_TASK
from infra.month_close import MonthClose
from infra.servicing import SqlServicing
from infra.sms import SmsUnavailable
from infra.storage import StorageError
from infra.stripe_books import StripeBooksJob
from infra.worker import GRACEFUL_SECONDS
from infra.worker import Backoff
from infra.worker import Tasks
from infra.worker import cron_every
from infra.worker import run_until_stopped
from infra.worker import sweep

#: the queues, one per kind of work, so that a slow one (a contract render, a face match) holds up no other
QUEUES = ("kyc", "risk", "contract", "payments", "evidence", "housekeeping", "documents", "servicing")
#: the other side is away (a service, the database, storage): worth trying again later
TRANSIENT: tuple[type[BaseException], ...] = (ServiceUnavailable, StorageError, *UNAVAILABLE)


def build(services: Services, settings: Settings) -> App:
    """The procrastinate app of the BFF's database, with every task bound to ``services``."""
    tasks = Tasks(settings.database_url, services.jobs)
    task = tasks.task
    tick = cron_every(settings.jobs_tick_seconds)

    # -- work a change asks for (deferred with it) ---------------------------------------------------------------
    task("kyc.check", "kyc", Backoff(3, retry_exceptions=TRANSIENT))(services.kyc.run_check)
    task("risk.send", "risk", Backoff(12, retry_exceptions=TRANSIENT))(services.risk.send)
    task("contract.send", "contract", Backoff(12, retry_exceptions=(*TRANSIENT, ContractNotReady)))(
        services.contracts.send)
    task("contract.text_ready", "documents", Backoff(6, retry_exceptions=(*TRANSIENT, SmsUnavailable)))(
        services.contracts.text_ready)  # a contract ready late: the text its waiting page promised
    task("documents.notify", "documents", Backoff(6, retry_exceptions=(*TRANSIENT, SmsUnavailable)))(
        document_service(services).notify)  # the text asking for documents (bff/documents)
    task("returning.text_code", "documents", Backoff(6, retry_exceptions=(*TRANSIENT, SmsUnavailable)))(
        lambda mobile_hash: text_code(services, mobile_hash))  # 我的租赁's code (bff/invitations/returning.py)

    # -- sweeps on a schedule (one job at a time each: a periodic job has its queueing lock) -------------------
    task("evidence.flush", "evidence", periodic=tick)(sweep(services.contracts.flush_outbox))
    task("payments.expire_holds", "payments", periodic=tick)(sweep(services.payments.checkout.expire_holds))
    task("payments.retry_refunds", "payments", periodic=tick)(sweep(services.payments.refunds.retry_refunds))
    task("payments.pay_out_dealers", "payments", periodic=tick)(sweep(services.payments.payouts.pay_out_dealers))
    task("payments.settle", "payments", periodic=tick)(sweep(services.payments.settlement.settle))
    # Stripe's fees and payouts posted, the Stripe clearing account reconciled (infra/stripe_books.py), daily at
    # 02:30 Beijing time (18:30 UTC)
    task("books.reconcile_stripe", "payments", periodic="30 18 * * *")(sweep(StripeBooksJob(
        services.db, services.payments.checkout.gateway, services.audit).run))
    task("risk.reconcile_referred", "risk", periodic=cron_every(max(30, settings.jobs_tick_seconds)))(
        sweep(services.risk.reconcile_referred))
    task("sessions.purge", "housekeeping", periodic=cron_every(300))(
        sweep(lambda: services.sessions.purge(utcnow())))
    task("returning.purge_codes", "housekeeping", periodic=cron_every(300))(
        sweep(lambda: purge_codes(services, utcnow())))
    task("kyc.sweep_orphans", "housekeeping", periodic=cron_every(settings.kyc_sweep_seconds))(
        sweep(services.sweep_orphans))
    # collecting rent (bff/servicing/collect.py): one job per automatic attempt the close makes (its hook below),
    # delayed results (a bank's "processing") polled, refunds of surpluses and closed leases' payments sent again
    collection = rent_collection(services, settings)
    task("servicing.collect", "servicing", Backoff(6, retry_exceptions=(*TRANSIENT, CollectionUnavailable,
                                                                        SmsUnavailable)))(collection.collect)
    # a failed automatic collection's text to the customer (by day: deferred with the failure, once per attempt)
    task("servicing.text_not_collected", "servicing", Backoff(6, retry_exceptions=(*TRANSIENT, SmsUnavailable)))(
        collection.text_not_collected)
    task("servicing.poll_collections", "servicing", periodic=tick)(sweep(collection.poll))
    task("servicing.retry_refunds", "servicing", periodic=tick)(sweep(collection.retry_refunds))
    # the daily close of business of each business date whose day has ended in Asia/Shanghai (bff/servicing/close.py)
    # and its hooks: reminders deferred, arrears (buckets, the M3 flag) kept in each batch (bff/servicing/arrears.py)
    reminders = services.plans.policy.reminders
    task("servicing.close", "servicing", periodic=cron_every(300))(
        sweep(CloseOfBusiness(SqlServicing(services.db),
                              hooks=servicing_hooks(services.db, services.plans.policy)).close_due))
    # a text about a rent, deferred by the close (once per lease, instalment and kind)
    task("servicing.remind", "servicing", Backoff(6, retry_exceptions=(*TRANSIENT, SmsUnavailable)))(
        Reminders(SqlArrears(services.db), services.applications, services.sms, reminders).send)
    # what follows a settled lease or an applied prepayment (bff/servicing/settled.py): the settlement certificate and
    # the dealer's mortgage release, the schedule annex, each deferred with its change; the customer's text deferred
    # with the document ready. A contract service that refuses the figures (DocumentRefused) is not retried.
    documents = lease_documents(services, settings.public_url)
    task("servicing.settled", "servicing", Backoff(12, retry_exceptions=(*TRANSIENT, NotReadyYet)))(documents.settled)
    task("servicing.prepaid", "servicing", Backoff(12, retry_exceptions=(*TRANSIENT, NotReadyYet)))(documents.prepaid)
    task("servicing.document_text", "servicing", Backoff(6, retry_exceptions=(*TRANSIENT, SmsUnavailable)))(
        documents.document_text)
    # the month's finance income of every lease (infra/finance_income.py), deferred by the close of the month's last day
    task("books.finance_income", "servicing", Backoff(6, retry_exceptions=TRANSIENT))(FinanceIncome(services.db).run)
    # the month close's checks ops ask for on /books (infra/month_close.py): the whole portfolio, too long for a request
    task(CHECK_TASK, CHECK_QUEUE, Backoff(3, retry_exceptions=TRANSIENT))(MonthClose(services.db).run_check)
    # credit reporting (bff/servicing/credit_reports.py): the notice before an overdue report, deferred by the close
    # of a month's notice day, and the month's report, deferred by the first close of the next month (queueing lock)
    task("servicing.credit_notice", "servicing", Backoff(6, retry_exceptions=(*TRANSIENT, SmsUnavailable)))(
        CreditNotices(SqlCreditReports(services.db), services.applications, services.sms).send)
    task("servicing.credit_report", "servicing", Backoff(8, retry_exceptions=(*TRANSIENT, CreditBureauUnavailable)))(
        credit_reporting(services).run)
    # e-invoices (bff/servicing/invoices.py): each request sent once, deferred with the payment that asked for it; a
    # rejection fails the job at once (ops see it here and on the lease page), the platform away is tried again
    task("invoices.issue", "servicing", Backoff(8, retry_exceptions=(*TRANSIENT, InvoicePlatformUnavailable,
                                                                     OriginalNotIssued)))(invoice_issuing(services).issue)
    # biometric images past their retention, every night at 03:00 Beijing time (19:00 UTC)
    task("kyc.purge_biometrics", "housekeeping", periodic="0 19 * * *")(sweep(services.kyc.purge_biometrics))
    tasks.housekeeping("housekeeping", tick_seconds=settings.jobs_tick_seconds,
                       stalled_seconds=settings.jobs_stalled_seconds)
    return tasks.app


async def work(services: Services, settings: Settings, *, queues: list[str] | None = None, concurrency: int = 4,
               install_signal_handlers: bool = True, graceful_seconds: float = GRACEFUL_SECONDS) -> None:
    """Run the BFF's jobs until stopped (infra/worker.py ``work``: restarts itself when its database was away)."""
    from infra.worker import work as run_worker

    await run_worker(build(services, settings), tick_seconds=settings.jobs_tick_seconds,
                     stalled_seconds=settings.jobs_stalled_seconds, queues=queues, concurrency=concurrency,
                     install_signal_handlers=install_signal_handlers, graceful_seconds=graceful_seconds)


def run(services: Services, settings: Settings, *, queues: list[str] | None = None, concurrency: int = 4,
        graceful_seconds: float = GRACEFUL_SECONDS) -> None:
    """``leaseline worker``: the face and OCR models are loaded before the first job, so that a check takes the
    time of the match or the reading, not of loading them; then jobs run until SIGINT/SIGTERM, which gives the
    running ones ``graceful_seconds`` to finish (infra/worker.py ``work``)."""
    if settings.env != "test":
        from kyc import faces
        from kyc import ocr

        faces.api()
        try:
            ocr.reader()  # the ID card's recogniser too (RapidOCR: ~0.3 s to load, once per process)
        except ocr.ReaderMissing as exc:  # one line that says what to install, not a traceback
            raise SystemExit(f"leaseline worker: {exc}") from None
    run_until_stopped(work(services, settings, queues=queues, concurrency=concurrency,
                           graceful_seconds=graceful_seconds))


__all__ = ["QUEUES", "build", "run", "work"]
