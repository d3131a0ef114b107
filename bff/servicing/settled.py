"""What follows a settled lease or a partial prepayment (issue 18 §5): the tasks ``servicing.settled``,
``servicing.prepaid`` and ``servicing.document_text`` (bff/worker.py).

- ``servicing.settled`` (deferred by infra/settlements.py with the quote paid, ``{lease_id, quote_id}``): the dealer's
  mortgage release (抵押解除) opened once, dated the business date the settlement was paid (the quote's ``paid_on``:
  the settlement day, the lease's ``settled_on``, may be days later, by the contract's notice); the settlement
  certificate (结清证明) asked of the contract service with the paid quote's figures and both days, once per quote
  (``lease_documents``: requested → ready | failed).
- ``servicing.prepaid`` (deferred with the schedule re-amortised, ``{lease_id, prepayment_id}``): the schedule annex
  (还款计划变更确认书) with the schedule as that prepayment applied it (stored on it), once per prepayment.
- ``servicing.document_text``: deferred in the transaction that marks a document ready, so the customer is texted once
  per document, in their language, with the link to their lease page.

Each is idempotent on retry: the document row is keyed by kind and subject, the contract service by the same key
(the same request returns the same document), the release by its lease. A contract service that is away is retried
by the worker (the row says ``failed`` with the error meanwhile, its attempts counted); one that refuses the figures
(4xx) is not retried: the job fails, and ops see its error on /ops/jobs beside the row's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date
from datetime import datetime
from decimal import Decimal
from typing import Any

from bff.payments.common import utc_now
from bff.payments.common import yuan
from infra.clients.contract import ContractClient
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.db.models import LeaseRow
from infra.lease_documents import READY
from infra.lease_documents import SCHEDULE_ANNEX
from infra.lease_documents import SETTLEMENT_CERTIFICATE
from infra.lease_documents import TEXT_NO_MOBILE
from infra.lease_documents import TEXT_REFUSED
from infra.lease_documents import TEXT_SENT
from infra.lease_documents import SqlLeaseDocuments
from infra.sms import SmsRefused
from infra.sms import SmsSender

log = logging.getLogger(__name__)
#: the two ways a prepayment re-amortises, as the customer's text names them
OPTION_WORDS = {"shorter_term": ("缩短期限", "a shorter term"), "lower_rent": ("减少月供", "a lower rent")}


class DocumentRefused(Exception):
    """The contract service refused the document's figures (4xx): retrying will not help; ops look at the job."""


class NotReadyYet(Exception):
    """The lease is not (yet) in the state the task follows: retried by the worker (the state change commits with the
    job, so this is a race with nothing, or a bug that ops see)."""


def money(fen: int) -> str:
    """Fen as the contract service's API takes an amount: yuan with two decimals (negative allowed)."""
    return f"{Decimal(fen) / 100:.2f}"


def paid_on(lease: LeaseRow, quote: Any) -> date:
    """The business date the settlement was paid (the quote's ``paid_on``); for a quote paid before it was kept, the
    lease's settlement day. Never the real clock's day of ``settled_at``: the business date, the system's date of
    record, may run months ahead of it (a demo)."""
    day: date = quote.paid_on or lease.settled_on or quote.settles_on
    return day


def settlement_body(lease: LeaseRow, quote: Any) -> dict[str, Any]:
    """The settlement certificate's request: the paid quote's lines, as the quote counted them, in yuan — but the late
    charges, those the settlement booked (``penalties_booked``: owed on the day it was paid; the rest of the quote's
    refunded, infra/settlements.py), and the amount due, what it came to (the lines add up to it). Its two days, both
    business dates: the settlement day (结清日, ``settled_on``: the quote's ``settles_on``, what the interest is counted
    to, the lease's ``settled_on``), which the contract's notice may put days after the day it was paid (付清日,
    ``paid_on``: :func:`paid_on`)."""
    charges = quote.penalties if quote.penalties_booked is None else quote.penalties_booked
    return {
        "kind": SETTLEMENT_CERTIFICATE,
        "subject_id": quote.id,
        "settlement": {
            "settled_on": quote.settles_on.isoformat(),
            "paid_on": paid_on(lease, quote).isoformat(),
            "outstanding_principal": money(quote.outstanding_principal),
            "accrued_interest": money(quote.accrued_interest),
            "early_settlement_fee": money(quote.early_settlement_fee),
            "arrears": money(quote.arrears),
            "penalties": money(charges),
            "paid_ahead_interest": money(quote.paid_ahead_interest),
            "deposit_offset": money(quote.deposit_offset),
            "amount_due": money(quote.amount_due - (quote.penalties - charges)),
        },
    }


def annex_body(prepayment: Any) -> dict[str, Any]:
    """The schedule annex's request: the schedule the prepayment applied, as it applied it — stored on the prepayment
    when it was booked (``schedule``, infra/prepayments.py ``applied_schedule``: the rents after it and the final rent,
    each with the principal outstanding after it, the balance before and after) —, never the instalments as they stand
    when the job runs: a later prepayment, or a retry after one, signs the same figures under the same key."""
    applied = json.loads(prepayment.schedule)
    rows = [
        {
            "number": row["number"],
            "due_date": row["due_on"],
            "rent": money(row["amount"]),
            "principal": money(row["principal"]),
            "interest": money(row["interest"]),
            "balance": money(row["balance"]),
            "final": row["final"],
        }
        for row in applied["rows"]
    ]
    return {
        "kind": SCHEDULE_ANNEX,
        "subject_id": prepayment.id,
        "annex": {
            "effective_on": prepayment.business_date.isoformat(),
            "prepaid": money(prepayment.amount),
            "option": prepayment.option,
            "rents_paid": prepayment.after_number,
            "balance_before": money(applied["balance_before"]),
            "balance_after": money(applied["balance_after"]),
            "rows": rows,
        },
    }


class LeaseDocuments:
    """The tasks (bff/worker.py), on the lease documents' tables, the contract service and the SMS port.
    ``mobile_of``: the customer's mobile number of an application (None: no text); ``lease_link``: the address of
    a lease's page."""

    def __init__(
        self,
        repo: SqlLeaseDocuments,
        client: ContractClient,
        sms: SmsSender,
        mobile_of: Callable[[str], str | None],
        lease_link: Callable[[str], str],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repo, self.client, self.sms, self.clock = repo, client, sms, clock
        self.mobile_of, self.lease_link = mobile_of, lease_link

    def settled(self, lease_id: str, quote_id: str) -> None:
        """``servicing.settled``: the release opened, then the certificate."""
        lease, quote = self.repo.lease(lease_id), self.repo.quote(quote_id)
        if lease is None or quote is None or quote.lease_id != lease_id:
            log.error("servicing.settled: no quote %s of lease %s", quote_id, lease_id)
            return  # nothing to follow: a job for records that do not exist is not worth retrying
        if lease.status != "settled" or quote.status != "paid":
            raise NotReadyYet(f"lease {lease_id} is {lease.status}, quote {quote_id} {quote.status}")
        # dated the business date the settlement was paid, not the day this job runs (the worker away, its retries:
        # days later) nor the settlement day (the contract's notice: days ahead; the release form's first day would be
        # after its last, the business date, and the release could not be recorded until then)
        opened_on = quote.paid_on or self.repo.business_date()
        if self.repo.open_release(lease.id, lease.dealer_id, opened_on):
            log.info("lease %s settled: mortgage release opened for dealer %s", lease.id, lease.dealer_id)
        self._document(lease, SETTLEMENT_CERTIFICATE, quote.id, lambda: settlement_body(lease, quote))

    def prepaid(self, lease_id: str, prepayment_id: str) -> None:
        """``servicing.prepaid``: the schedule annex of an applied prepayment."""
        lease, prepayment = self.repo.lease(lease_id), self.repo.prepayment(prepayment_id)
        if lease is None or prepayment is None or prepayment.lease_id != lease_id:
            log.error("servicing.prepaid: no prepayment %s of lease %s", prepayment_id, lease_id)
            return
        if prepayment.status != "applied":
            raise NotReadyYet(f"prepayment {prepayment_id} is {prepayment.status}")
        if not prepayment.schedule:  # applied prepayments store their schedule (migration 0024 filled the older ones)
            raise NotReadyYet(f"prepayment {prepayment_id} has no schedule stored")
        self._document(lease, SCHEDULE_ANNEX, prepayment.id, lambda: annex_body(prepayment))

    def _document(self, lease: LeaseRow, kind: str, subject_id: str, body: Callable[[], dict[str, Any]]) -> None:
        row = self.repo.ensure(lease.id, kind, subject_id)
        if row.status == READY:
            return
        try:
            answer = self.client.servicing_document(lease.contract_id, body())
        except ServiceRefused as exc:
            detail = exc.body.get("detail", "") if isinstance(exc.body, dict) else ""
            errors = exc.body.get("errors", []) if isinstance(exc.body, dict) else []
            fields = ", ".join(str(e.get("field")) for e in errors if isinstance(e, dict))
            self.repo.failed(row.id, f"refused (HTTP {exc.status}) {fields or detail}".strip())
            raise DocumentRefused(
                f"{kind} of lease {lease.id}: the contract service refused it (HTTP {exc.status}) {fields or detail}"
            ) from None
        except ServiceUnavailable as exc:
            self.repo.failed(row.id, f"unavailable: {exc}")
            raise
        self.repo.ready(row.id, str(answer["id"]), str(answer["sha256"]), answer.get("ledger_index"), self.clock())
        log.info(
            "%s of lease %s ready: document %s, evidence entry %s",
            kind,
            lease.id,
            answer["id"],
            answer.get("ledger_index"),
        )

    def document_text(self, document_row_id: str) -> None:
        """``servicing.document_text``: the customer told, in their language, that the document is ready, once: the
        text is claimed on the document's row before it is sent (a worker killed after sending never sends it again)
        and released when the platform is away (SmsUnavailable to the worker, whose retry sends it). A text the
        platform refuses, or none for want of a mobile number, is recorded on the row with why (the lease page's
        staff view shows it), not retried."""
        row = self.repo.document(document_row_id)
        lease = self.repo.lease(row.lease_id) if row is not None else None
        if row is None or lease is None or row.status != READY:
            return
        if row.text_status not in ("", TEXT_NO_MOBILE):
            return  # texted (or refused) already, or claimed by another run
        mobile = self.mobile_of(lease.application_id)
        if not mobile:
            log.warning("lease %s: no mobile number to text about its %s", lease.id, row.kind)
            self.repo.text_done(row.id, TEXT_NO_MOBILE, "no mobile number on the application", self.clock())
            return
        english = self.repo.language(lease.application_id).lower().startswith("en")
        link = self.lease_link(lease.id)
        if row.kind == SETTLEMENT_CERTIFICATE:
            # the settlement day (结清日) the certificate prints: the quote's, the lease's settled_on (maybe ahead)
            day = lease.settled_on or self.repo.business_date()
            template = "lease_settled_en" if english else "lease_settled"
            params = {
                "contract": lease.contract_number,
                "link": link,
                "date": day.isoformat() if english else f"{day.year}年{day.month}月{day.day}日",
            }
        else:
            prepayment = self.repo.prepayment(row.subject_id)
            if prepayment is None:
                return
            zh, en = OPTION_WORDS.get(prepayment.option, (prepayment.option, prepayment.option))
            template = "schedule_changed_en" if english else "schedule_changed"
            params = {"amount": yuan(prepayment.amount), "option": en if english else zh, "link": link}
        if not self.repo.claim_text(row.id, self.clock()):
            return  # texted already, or being texted by another run (or by one that died after sending)
        try:
            self.sms.send(mobile, template, params, dealer_id=lease.dealer_id)
        except SmsRefused as exc:
            log.warning("lease %s: the platform refused the text about its %s (%s)", lease.id, row.kind, exc)
            self.repo.text_done(row.id, TEXT_REFUSED, str(exc), self.clock())
            return
        except BaseException:
            self.repo.release_text(row.id)  # nothing known sent: the job's retry texts it
            raise
        self.repo.text_done(row.id, TEXT_SENT, "", self.clock())


def lease_documents(services: Any, public_url: str) -> LeaseDocuments:
    """The tasks on ``services`` (bff/bootstrap.py): the lease page's address under the public URL."""
    from infra.applications import Scope

    def mobile_of(application_id: str) -> str | None:
        app = services.applications.repo.get(application_id, Scope())
        if app is None or not app.draft_enc:
            return None
        return services.applications.draft(app).get("mobile") or None  # type: ignore[no-any-return]

    return LeaseDocuments(
        SqlLeaseDocuments(services.db),
        services.contract,
        services.sms,
        mobile_of,
        lambda lease_id: f"{public_url}/leases/{lease_id}",
    )
