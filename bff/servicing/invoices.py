"""E-invoices (数电发票, issue 19 §3): the ``invoices.issue`` task that sends a request to the invoice platform, and
the pages — the lease page's invoices (我的租赁 on the phone, and the lease's page for staff), each invoice's PDF, ops'
correction and retry, and ops' list of the requests that need a look.

**The task** (:class:`InvoiceIssuing`, bff/worker.py): deferred with the payment that asked for the invoice
(infra/invoicing.py), it reads the request and

- builds the invoice: the seller (the lessor: bff/config.py ``invoice_seller_*``); the buyer, an individual — the name
  and ID number from the application's answers (decrypted; kept on the request encrypted, a masked copy beside); the
  lines from the request's facts by books/vat.py (the rule in force on each part's tax point: never a rate or tax of
  our own); a red-letter one: the blue invoice's lines negated, its number and date, the reason — and waits
  (:class:`OriginalNotIssued`, retried) while the blue invoice is not issued yet;
- sends it under the request's id, the platform's key: a retry, a second run at the same time or a worker killed
  after the platform answered gets the same invoice back, never a second one;
- records the answer: ``issued`` (number, date; a red one that reissues makes the reissue's request and job in the
  same transaction), ``pending`` (the job asked again after ``invoice_poll_seconds``, in the same transaction), or
  ``rejected`` — nothing issued: the platform's code and message on the request, an audit entry (``invoices.rejected``,
  failure), and the job **fails** with them, so ops see it on /ops/jobs (the failed jobs with their last error) as well
  as on the lease's page and on ``/servicing/invoices``. Ops put the cause right (e.g. the customer's ID number) and
  retry — from either page: the request is sent again under the same key, the buyer read again.

**Who sees what**: the lessee on their lease page (number, date, amount, tax, status; the PDF), staff with
``leases.view`` in its tenant on the same page (with the platform's error of a rejected one and the buyer's ID number
masked), ops (``invoices.manage``) may ask for a correction (red-letter + reissue) or a retry. The PDF is the platform's
rendering (the sandbox's: 样票 / SPECIMEN, the ID number masked), never cached (``no-store``), a 404 for anybody else's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import abort
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.applications.access import staff_actor
from bff.auth.session import requires
from bff.payments.common import utc_now
from bff.rendering import in_locale as _msg
from bff.services import services
from bff.servicing.lease_views import _application
from bff.servicing.lease_views import lessee_or_staff
from books.vat import TaxPolicy
from books.vat import load_tax_policy
from infra.audit import SqlAuditLog
from infra.db.engine import Database
from infra.db.models import ApplicationRow
from infra.db.models import InvoiceRequestRow
from infra.db.models import LeaseRow
from infra.invoice_platform import ISSUED as PLATFORM_ISSUED
from infra.invoice_platform import InvoicePlatform
from infra.invoice_platform import InvoicePlatformUnavailable
from infra.invoice_platform import InvoiceRejected
from infra.invoice_platform import Issued
from infra.invoice_platform import IssueRequest
from infra.invoice_platform import Line
from infra.invoice_platform import Party
from infra.invoice_platform import RedLetter
from infra.invoicing import ISSUED
from infra.invoicing import PENDING
from infra.invoicing import RED
from infra.invoicing import CorrectionRefused
from infra.invoicing import SqlInvoices
from infra.invoicing import lines_for
from infra.pii import PiiError
from infra.pii import PiiVault
from kyc.idnumber import normalize as normalize_id
from kyc.masking import mask_id_number

log = logging.getLogger(__name__)
NOT_REVERSIBLE = ("只能更正已开具且未冲红的蓝字发票", "Only an issued invoice not reversed yet can be corrected")
#: the most characters of a correction's reason (it goes on the request and in the audit log)
MAX_REASON = 200


class OriginalNotIssued(Exception):
    """A red-letter request waits for the blue invoice it reverses to be issued (the job tries again)."""


class InvoiceRequestRejected(Exception):
    """The platform rejected a request: the job fails with this, ops see it (/ops/jobs, the lease page)."""


def _contexts(request_id: str) -> tuple[str, str]:
    return f"invoice_buyer_name:{request_id}", f"invoice_buyer_id:{request_id}"


class InvoiceIssuing:
    """The ``invoices.issue`` task (bff/worker.py), on the app's or the worker's services (:func:`invoice_issuing`)."""

    def __init__(self, db: Database, platform: InvoicePlatform, vault: PiiVault, seller: Party, audit: SqlAuditLog, *,
                 policy: TaxPolicy | None = None, poll_seconds: int = 60,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db, self.repo, self.platform, self.vault, self.seller = db, SqlInvoices(db), platform, vault, seller
        self.audit, self.policy, self.poll_seconds, self.clock = audit, policy, poll_seconds, clock

    def issue(self, request_id: str) -> str:
        """Send request ``request_id`` and record the answer (the module's docstring): ``issued``, ``pending``,
        ``already`` (issued before: nothing sent) or ``unknown``. Raises InvoiceRequestRejected (the job fails, ops
        see it), OriginalNotIssued and InvoicePlatformUnavailable (the job tries again)."""
        row = self.repo.row(request_id)
        if row is None:
            return "unknown"
        if row.status == ISSUED:
            return "already"
        if row.status == PENDING:
            try:
                return self._record(row, self.platform.status(row.id))
            except LookupError:  # the platform never received it: sent again below, under the same key
                log.warning("invoice request %s: pending, yet unknown to the %s platform: sent again", row.id,
                            self.platform.name)
            except InvoiceRejected as exc:
                return self._rejected(row, exc)
        try:
            outgoing = self._request(row)
        except OriginalNotIssued:
            raise
        except Exception as exc:  # no rule in force, a buyer unreadable: kept beside the request, the job fails
            self.repo.failed(row.id, f"{type(exc).__name__}: {exc}", self.clock())
            raise
        if not self.repo.sending(row.id, lines=outgoing.lines, buyer_name_enc=self._seal(outgoing.buyer.name,
                                                                                          _contexts(row.id)[0]),
                                 buyer_id_enc=self._seal(outgoing.buyer.id_number, _contexts(row.id)[1]),
                                 buyer_id_masked=mask_id_number(outgoing.buyer.id_number),
                                 platform=self.platform.name, now=self.clock()):
            return "already"
        try:
            answer = self.platform.issue(outgoing)
        except InvoiceRejected as exc:
            return self._rejected(row, exc)
        except InvoicePlatformUnavailable as exc:
            self.repo.failed(row.id, f"the invoice platform is unavailable: {exc}", self.clock())
            raise
        return self._record(row, answer)

    # -- building the request ----------------------------------------------------------------------------------------
    def _request(self, row: InvoiceRequestRow) -> IssueRequest:
        if row.kind == RED:
            original = self.repo.row(row.original_id or "")
            if original is None:
                raise LookupError(f"invoice request {row.id}: its original {row.original_id} is gone")
            if original.status != ISSUED or not original.number or original.issued_on is None:
                self.repo.failed(row.id, "waiting for the invoice it reverses to be issued", self.clock())
                raise OriginalNotIssued(f"invoice request {row.id} reverses {original.id}, not issued yet")
            lines = tuple(Line.from_dict(line).negated() for line in json.loads(original.lines or "[]"))
            buyer = self._stored_buyer(original)
            remark = f"冲红原因 {row.reason_code}: {row.reason}".strip(": ")
            return IssueRequest(row.id, self.seller, buyer, lines,
                                RedLetter(original.number, original.issued_on, row.reason_code or "01"), remark)
        facts = json.loads(row.facts or "{}")
        lines = lines_for(facts, self.policy or load_tax_policy())
        remark = f"融资租赁合同 {facts['contract_number']}" if facts.get("contract_number") else ""
        return IssueRequest(row.id, self.seller, self._buyer(row.application_id), lines, None, remark)

    def _buyer(self, application_id: str) -> Party:
        """The lessee as the application's answers name them (read again at every send: ops' corrections count);
        an unreadable draft gives the name lists show and no ID number (the platform decides)."""
        with self.db.session() as session:
            app = session.get(ApplicationRow, application_id)
            draft_enc, listed = (app.draft_enc, app.customer_name) if app is not None else ("", "")
        try:
            draft = json.loads(self.vault.decrypt(draft_enc, f"application:{application_id}")) if draft_enc else {}
        except (PiiError, ValueError):
            log.warning("invoice for application %s: its answers cannot be decrypted", application_id)
            draft = {}
        name = str(draft.get("name") or listed or "").strip()
        return Party(name, id_number=normalize_id(str(draft.get("id_number") or "")), individual=True)

    def _stored_buyer(self, row: InvoiceRequestRow) -> Party:
        """The buyer a sent request named (a red one names its blue invoice's buyer)."""
        names = _contexts(row.id)
        try:
            name = self.vault.decrypt(row.buyer_name_enc, names[0]) if row.buyer_name_enc else ""
            id_number = self.vault.decrypt(row.buyer_id_enc, names[1]) if row.buyer_id_enc else ""
        except PiiError:
            raise LookupError(f"invoice request {row.id}: its buyer cannot be decrypted") from None
        return Party(name, id_number=id_number, individual=True)

    def _seal(self, value: str, context: str) -> str | None:
        return self.vault.encrypt(value, context) if value else None

    # -- the answers -----------------------------------------------------------------------------------------------
    def _record(self, row: InvoiceRequestRow, answer: Issued) -> str:
        now = self.clock()
        if answer.status != PLATFORM_ISSUED:
            self.repo.pending(row.id, now=now, poll_at=now + timedelta(seconds=self.poll_seconds))
            log.info("invoice request %s: pending at the %s platform, asked again in %s s", row.id,
                     self.platform.name, self.poll_seconds)
            return "pending"
        assert answer.number and answer.issued_on is not None and answer.issued_at is not None
        if self.repo.issued(row.id, number=answer.number, issued_on=answer.issued_on, issued_at=answer.issued_at,
                            confirmation=answer.confirmation, now=now):
            log.info("invoice request %s (%s, %s): issued as %s", row.id, row.kind, row.purpose, answer.number)
            return "issued"
        return "already"

    def _rejected(self, row: InvoiceRequestRow, exc: InvoiceRejected) -> str:
        self.repo.rejected(row.id, exc.code, exc.message, self.clock())
        self.audit.append("invoices.rejected", "failure", actor_id=None, actor_label="invoices.issue",
                          dealer_id=row.dealer_id, target=row.lease_id,
                          details={"request": row.id, "kind": row.kind, "purpose": row.purpose, "code": exc.code,
                                   "message": exc.message, "platform": self.platform.name})
        raise InvoiceRequestRejected(f"invoice request {row.id} of lease {row.lease_id} rejected by the "
                                     f"{self.platform.name} platform: {exc.code}: {exc.message}")


def invoice_issuing(svc: Any) -> InvoiceIssuing:
    """The task's use case on the app's (or the worker's) services."""
    return InvoiceIssuing(svc.db, svc.invoice_platform, svc.vault, svc.invoice_seller, svc.audit,
                          poll_seconds=svc.invoice_poll_seconds)


# -- the pages -------------------------------------------------------------------------------------------------------
bp = Blueprint("invoices", __name__)
#: ops who correct an invoice or ask again for a rejected one, and see the list of those needing a look
PERMISSION = "invoices.manage"


@bp.app_context_processor
def _invoices() -> dict[str, object]:
    """``lease_invoices(lease_id)`` in every template (the lease page's invoices) and whether they are specimens."""
    return {"lease_invoices": lambda lease_id: SqlInvoices(services().db).of_lease(lease_id),
            "invoice_specimens": lambda: bool(getattr(services().invoice_platform, "specimen", False))}


def _lease(lease_id: str) -> LeaseRow:
    """The lease if the visitor may see it (its lessee, staff in its tenant); 404 otherwise."""
    if len(lease_id) > 36:
        abort(404)
    with services().db.session() as session:
        lease = session.get(LeaseRow, lease_id)
    if lease is None:
        abort(404)
    _application(lease.application_id)
    return lease


def _refused(lease_id: str, status: int, zh: str, en: str) -> Any:
    return render_template("error.html", status=status, message=_msg(zh, en), back=f"/leases/{lease_id}#invoices"), \
        status


@bp.get("/leases/<lease_id>/invoices/<invoice_id>.pdf")
@lessee_or_staff
def document(lease_id: str, invoice_id: str) -> Any:
    """The issued invoice as the platform renders it (PDF); 409 while it is being issued, 404 for another's."""
    lease = _lease(lease_id)
    invoice = SqlInvoices(services().db).get(lease.id, invoice_id)
    if invoice is None:
        abort(404)
    if invoice.status != ISSUED or not invoice.number:  # being issued (or refused): a state, not a missing page
        return _refused(lease.id, 409, "发票正在开具，请稍后再试", "The invoice is being issued: try again shortly")
    try:
        pdf = services().invoice_platform.document(invoice.number)
    except LookupError:
        abort(404)
    except InvoicePlatformUnavailable:
        return _refused(lease.id, 503, "发票平台暂时不可用，请稍后再试",
                        "The invoice platform is unavailable: try again shortly")
    response = make_response(pdf)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/leases/<lease_id>/invoices/<invoice_id>/correct")
@requires(PERMISSION)
def correct(lease_id: str, invoice_id: str) -> Any:
    """Ops ask for a correction: the invoice reversed (红字, 01 开票有误) and reissued with the buyer read again. 422
    without a reason, 409 for an invoice not issued or reversed already."""
    lease = _lease(lease_id)
    reason = " ".join(request.form.get("reason", "")[:4 * MAX_REASON].split())
    repo = SqlInvoices(services().db)
    invoice = repo.get(lease.id, invoice_id)
    if invoice is None:
        abort(404)
    if not invoice.reversible:
        return _refused(lease.id, 409, NOT_REVERSIBLE[0], NOT_REVERSIBLE[1])
    if not reason or len(reason) > MAX_REASON:
        return _refused(lease.id, 422, f"请写明更正原因（最多 {MAX_REASON} 字）",
                        f"Say why the invoice is corrected (at most {MAX_REASON} characters)")
    actor = staff_actor()
    try:
        red = repo.correction(lease.id, invoice.id, reason, actor.id, utc_now())
    except CorrectionRefused:
        return _refused(lease.id, 409, NOT_REVERSIBLE[0], NOT_REVERSIBLE[1])
    services().audit.append("invoices.correction", "success", actor_id=actor.id, actor_label=actor.label,
                            dealer_id=lease.dealer_id, target=lease.id, ip=actor.ip, user_agent=actor.user_agent,
                            details={"invoice": invoice.id, "number": invoice.number, "red": red, "reason": reason})
    return redirect(url_for("lease_page.lease", lease_id=lease.id, _anchor="invoices"), 303)


@bp.post("/leases/<lease_id>/invoices/<invoice_id>/retry")
@requires(PERMISSION)
def retry(lease_id: str, invoice_id: str) -> Any:
    """Ops ask again for a request the platform rejected (after putting its cause right); 409 when it is not
    rejected."""
    lease = _lease(lease_id)
    actor = staff_actor()
    if not SqlInvoices(services().db).retry(lease.id, invoice_id[:36], utc_now()):
        return _refused(lease.id, 409, "只有被拒绝的开票申请可以重新提交", "Only a rejected request can be sent again")
    services().audit.append("invoices.retry", "success", actor_id=actor.id, actor_label=actor.label,
                            dealer_id=lease.dealer_id, target=lease.id, ip=actor.ip, user_agent=actor.user_agent,
                            details={"invoice": invoice_id[:36]})
    return redirect(url_for("lease_page.lease", lease_id=lease.id, _anchor="invoices"), 303)


@bp.get("/servicing/invoices")
@requires(PERMISSION)
def attention() -> Any:
    """The requests that need a look: rejected by the platform, or neither issued nor rejected after an hour."""
    return render_template("servicing/invoices.html", invoices=SqlInvoices(services().db).attention(utc_now()),
                           specimen=bool(getattr(services().invoice_platform, "specimen", False)))
