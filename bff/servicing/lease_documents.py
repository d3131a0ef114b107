"""The lease page's documents and receipts (issue 18 §8: 我的租赁's documents): the settlement certificate and the
schedule annexes the contract service signed (bff/servicing/settled.py), downloadable by whoever may open the lease
page — its lessee and the staff with ``leases.view`` in its tenant (:func:`bff.servicing.lease_views.lessee_or_staff`;
another's lease is a 404) —, and the payments booked into the lease with what was refunded of them.

The PDFs come from the contract service, which checks each against its recorded hash; like every personal response
they are never cached (bff/caching.py ``no-store``). They name the lessee but not their ID number, so a staff member's
download is not a PII view to log (the contract's and the handover record's are: bff/applications/access.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import abort
from flask import make_response
from flask import render_template

from bff.rendering import in_locale as _msg
from bff.services import services
from bff.servicing.lease_views import _application
from bff.servicing.lease_views import lessee_or_staff
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.db.models import LeaseDocumentRow
from infra.db.models import LeaseReceiptRow
from infra.lease_documents import READY
from infra.lease_documents import SqlLeaseDocuments

bp = Blueprint("lease_documents", __name__)


def papers(lease_id: str) -> tuple[list[LeaseDocumentRow], list[LeaseReceiptRow]]:
    """The lease's documents (ready ones, and those being made: staff see why one failed) and its receipts."""
    repo = SqlLeaseDocuments(services().db)
    return repo.documents(lease_id), repo.receipts(lease_id)


@bp.app_context_processor
def _papers() -> dict[str, object]:
    """``lease_papers(lease_id)`` in every template: the lease page's documents and receipts section."""
    return {"lease_papers": papers}


@bp.get("/leases/<lease_id>/documents/<document_id>.pdf")
@lessee_or_staff
def document(lease_id: str, document_id: str) -> Any:
    """A signed servicing document of the lease, as the contract service hands it out (its hash checked there)."""
    repo = SqlLeaseDocuments(services().db)
    lease = repo.lease(lease_id)
    if lease is None:
        abort(404)
    _application(lease.application_id)  # the visitor's lease, or a 404
    row = repo.document(document_id)
    if row is None or row.lease_id != lease.id:
        abort(404)
    if row.status != READY or not row.document_id:  # being made: a state, not a missing page
        return render_template(
            "error.html",
            status=409,
            message=_msg("文件正在生成，请稍后再试", "The document is being prepared: try again shortly"),
            back=f"/leases/{lease.id}",
        ), 409
    try:
        pdf = services().contract.servicing_pdf(lease.contract_id, row.document_id)
    except ServiceRefused as exc:
        abort(404 if exc.status == 404 else 502)
    except ServiceUnavailable:
        return render_template(
            "error.html",
            status=503,
            message=_msg("合同服务暂时不可用，请稍后再试", "The contract service is unavailable: try again shortly"),
            back=f"/leases/{lease.id}",
        ), 503
    response = make_response(pdf)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{lease.contract_number}-{row.kind}.pdf"'
    return response
