"""Documents on request: a risk officer asks the applicant for documents, the applicant uploads them on the phone
(bff/documents/services.py, views.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bff.bootstrap import Services
    from bff.documents.services import DocumentService


def document_service(svc: Services) -> DocumentService:
    """The documents' use cases on the app's (or the worker's) services: the adapters are bootstrap's, this only
    puts them together."""
    from bff.documents.services import DocumentService
    from infra.documents import SqlDocuments

    return DocumentService(SqlDocuments(svc.db), svc.applications, svc.store, svc.jobs, svc.sms)
