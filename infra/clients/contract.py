"""The contract service's client (``contract/``, OpenAPI at ``/api/v1/openapi.json``): contract PDFs, their
signatures and the evidence log (public commitments; the clear entries, as proof bundles, with ``ledger:read``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from infra.clients.http import ServiceClient
from infra.clients.http import ServiceUnavailable

CONTRACT_AUDIENCE = "leaseline-contract"
CONTRACT_WRITE_SCOPE = "contract:write"
CONTRACT_READ_SCOPE = "contract:read"
LEDGER_APPEND_SCOPE = "ledger:append"
LEDGER_READ_SCOPE = "ledger:read"


class ContractClient:
    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    def verify(self, pdf: bytes) -> dict[str, Any]:
        """Check any PDF (public ``POST /api/v1/verification``): each signature's validation, the contract it
        is when it is one we signed, and its evidence-log inclusion proof. Read-only, so safe to retry.
        A file that is not a readable PDF is a :class:`~infra.clients.http.ServiceRefused` 422."""
        _, body = self.client.call("POST", "/api/v1/verification", data=pdf, content_type="application/pdf",
                                   idempotent=True)
        if not isinstance(body, dict):  # e.g. a proxy's HTML page with a 200: not the service's answer
            raise ServiceUnavailable("contract service: the verification answer is not a JSON object")
        return body

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        _, body = self.client.call(method, path, **kwargs)
        if not isinstance(body, dict):
            raise ServiceUnavailable(f"contract service: {path} did not answer a JSON object")
        return body

    def create(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The application's contract (draft), created or returned as it is (idempotent per application)."""
        return self._json("POST", "/api/v1/contracts", json=snapshot, idempotent=True,
                          headers={"Idempotency-Key": f"contract-{snapshot['application_id']}"})

    def contract(self, contract_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/contracts/{quote(contract_id, safe='')}", idempotent=True)

    def sign(self, contract_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The lessee's signature (the lessor countersigns). Signing a signed contract returns it, so a retry
        after a lost answer is safe."""
        return self._json("POST", f"/api/v1/contracts/{quote(contract_id, safe='')}/signatures", json=body,
                          idempotent=True)

    def hand_over(self, contract_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The signed handover record (交接确认书) of a signed contract: made, signed, stored and logged once; the
        same contract again returns the record it has, so a retry after a lost answer is safe."""
        return self._json("POST", f"/api/v1/contracts/{quote(contract_id, safe='')}/handover", json=body,
                          idempotent=True)

    def handover(self, contract_id: str) -> dict[str, Any]:
        """The signed handover record of a contract as the service states it now (its dates, schedule and the servicing
        terms the contract states); a contract without one is a :class:`~infra.clients.http.ServiceRefused` 404."""
        return self._json("GET", f"/api/v1/contracts/{quote(contract_id, safe='')}/handover", idempotent=True)

    def handover_document(self, contract_id: str) -> bytes:
        """The signed handover record's PDF."""
        _, body = self.client.call("GET", f"/api/v1/contracts/{quote(contract_id, safe='')}/handover/document",
                                   raw=True, idempotent=True)
        return bytes(body)

    def servicing_document(self, contract_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A document of the lease in force (``body``: ``{kind: settlement_certificate | schedule_annex, subject_id,
        settlement | annex}``), rendered, signed by the lessor and logged once per kind and subject: the same body
        again returns the document made then, so a retry after a lost answer is safe. Figures that do not reconcile
        are a :class:`~infra.clients.http.ServiceRefused` 422; the same key with other figures a 409."""
        return self._json("POST", f"/api/v1/contracts/{quote(contract_id, safe='')}/servicing-documents", json=body,
                          idempotent=True, headers={"Idempotency-Key": f"{body['kind']}-{body['subject_id']}"})

    def servicing_pdf(self, contract_id: str, document_id: str) -> bytes:
        """A signed servicing document's PDF (the service checks its stored hash first)."""
        _, body = self.client.call("GET", f"/api/v1/contracts/{quote(contract_id, safe='')}/servicing-documents/"
                                          f"{quote(document_id, safe='')}/document", raw=True, idempotent=True)
        return bytes(body)

    def text(self, contract_id: str) -> dict[str, Any]:
        """The text the current PDF was rendered from, for reading on a phone: ``{html, sha256, document_sha256,
        sections, terms, …}``; the PDF prints ``sha256``. A contract whose PDF prints another fingerprint or none
        (generated before it) is a :class:`~infra.clients.http.ServiceRefused` 409."""
        return self._json("GET", f"/api/v1/contracts/{quote(contract_id, safe='')}/text", idempotent=True)

    def page(self, contract_id: str, page: int) -> bytes:
        _, body = self.client.call("GET", f"/api/v1/contracts/{quote(contract_id, safe='')}/pages/{int(page)}",
                                   raw=True, idempotent=True)
        return bytes(body)

    def document(self, contract_id: str) -> bytes:
        _, body = self.client.call("GET", f"/api/v1/contracts/{quote(contract_id, safe='')}/document", raw=True,
                                   idempotent=True)
        return bytes(body)

    def append(self, kind: str, subject: str, data: dict[str, Any], key: str) -> dict[str, Any]:
        """Append one evidence entry; the same ``key`` again returns the first entry (never appended twice)."""
        return self._json("POST", "/api/v1/ledger/entries", json={"kind": kind, "subject": subject, "data": data},
                          idempotent=True, headers={"Idempotency-Key": key})

    def append_many(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append up to 100 entries ``{kind, subject, data, idempotency_key}`` in one call, all or nothing;
        each answer says ``index`` and whether it was ``created`` now or appended before (same key)."""
        body = self._json("POST", "/api/v1/ledger/batches", json={"entries": entries}, idempotent=True)
        answers = body.get("entries")
        if not isinstance(answers, list) or len(answers) != len(entries):
            raise ServiceUnavailable("contract service: the batch answer does not match the batch")
        return answers

    def evidence(self, subject: str) -> list[dict[str, Any]]:
        """The evidence entries about ``subject`` (an application id): ``{index, kind, at}``, oldest first."""
        body = self._json("GET", f"/api/v1/ledger/subjects/{quote(subject, safe='')}/entries", idempotent=True)
        entries = body.get("entries")
        if not isinstance(entries, list):
            raise ServiceUnavailable("contract service: the evidence list is not a list")
        return entries

    def opening(self, index: int, *, previous_log: bool = False) -> dict[str, Any]:
        """Entry ``index``'s ``{index, kind, subject, bundle}``: its proof bundle with the clear entry and salt,
        for the caller to hand to those entitled only (a :class:`~infra.clients.http.ServiceRefused` 404: none).
        ``previous_log``: an entry of the first log carries its proof there too (auditors and lessor staff only)."""
        return self._json("GET", f"/api/v1/ledger/openings/{int(index)}", idempotent=True,
                          params={"previous_log": "true"} if previous_log else None)
