"""The contract service: its own Flask app (``leaseline serve contract``, 127.0.0.1:8002), tables and OpenAPI.

``create_app(config)`` builds it from :class:`contract.config.ContractSettings` (environment + embedded
defaults); ``config`` overrides settings by name. The composition root is :func:`bootstrap`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from cryptography import x509
from flask import Flask
from flask import g
from flask import request
from flask.typing import ResponseReturnValue

from contract.config import ConfigError
from contract.config import ContractSettings
from contract.config import var_dir
from contract.evidence import EvidenceLog
from contract.evidence import FileAnchor
from contract.evidence import StoreAnchor
from contract.evidence import current_origin
from contract.evidence import load_or_create_key
from contract.handover import HandoverService
from contract.service import ContractService
from contract.servicing_documents import ServicingDocuments
from infra.db.engine import Database
from infra.jobs import JobQueue
from infra.logs import accept_request_id
from infra.logs import request_id
from infra.pii import PiiVault
from infra.pii import configured_key
from infra.service_tokens import TokenVerifier
from infra.service_tokens import load_or_create_signing_key
from infra.service_tokens import public_jwks
from infra.storage import S3ObjectStore
from infra.storage import StorageError

log = logging.getLogger(__name__)


@dataclass
class ContractComponents:
    settings: ContractSettings
    db: Database
    service: ContractService
    ledger: EvidenceLog
    verifier: TokenVerifier
    handovers: HandoverService
    #: settlement certificates and schedule annexes (contract/servicing_documents.py)
    servicing: ServicingDocuments = field(init=False)

    def __post_init__(self) -> None:
        self.servicing = ServicingDocuments(self.service)

    def dispose(self) -> None:
        self.db.dispose()


def _verifier(settings: ContractSettings) -> TokenVerifier:
    if settings.service_jwks:
        keys: Any = json.loads(settings.service_jwks)
    else:
        try:
            keys = public_jwks(load_or_create_signing_key(Path(settings.signing_key_path)))
        except ValueError as exc:
            raise ConfigError(f"LEASELINE_SERVICE_SIGNING_KEY_PATH: {exc}") from None
    return TokenVerifier(keys, settings.token_issuer, settings.token_audience, settings.token_leeway)


def object_store(settings: ContractSettings) -> S3ObjectStore:
    """The contracts' bucket (made with Object Lock when missing), shared by the documents and the log's anchor."""
    store = S3ObjectStore(endpoint_url=settings.s3_endpoint_url, bucket=settings.bucket,
                          access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                          region=settings.s3_region)
    try:
        store.ensure_bucket(object_lock=True)
    except StorageError as exc:  # storage down at start: documents fail with a 503 until it is back
        log.warning("contract bucket %s not ready yet: %s", settings.bucket, exc)
    return store


def time_stamper(settings: ContractSettings) -> Any:
    """The RFC 3161 time-stamping authority's client (pyHanko), None without ``LEASELINE_TSA_URL``: one instance
    for the signatures (PAdES B-T) and the evidence log's checkpoints."""
    if not settings.tsa_url:
        return None
    from pyhanko.sign.timestamps import HTTPTimeStamper

    return HTTPTimeStamper(settings.tsa_url, timeout=5)


def tsa_roots(settings: ContractSettings) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(settings.tsa_roots).read_bytes()) if settings.tsa_roots else []


def evidence_log(settings: ContractSettings, db: Database, store: S3ObjectStore,
                 timestamper: Any = None) -> EvidenceLog:
    """The evidence log with its key and anchors (the service, and ``leaseline ledger migrate``); its checkpoints
    are stamped by ``timestamper`` (default: the configured TSA's client, :func:`time_stamper`)."""
    anchors = [FileAnchor(var_dir() / "ledger" / "checkpoints.jsonl"), StoreAnchor(store)]
    try:
        return EvidenceLog(db, load_or_create_key(Path(settings.ledger_key_path)),
                           current_origin(settings.ledger_origin), anchors, legacy_origin=settings.ledger_origin,
                           timestamper=timestamper or time_stamper(settings), tsa_roots=tsa_roots(settings))
    except ValueError as exc:
        raise ConfigError(f"LEASELINE_LEDGER_SIGNING_KEY_PATH: {exc}") from None


def bootstrap(settings: ContractSettings) -> ContractComponents:
    """Database (migrated), object storage (bucket with Object Lock), signing CA, evidence log, service."""
    from contract.service import lessor_party
    from contract.signing.ca import SigningAuthority

    # an unreachable database or, when the service does not migrate itself, a schema not at this code's head:
    # one line naming the fix (DatabaseNotReady), not a traceback or a 500 on every request
    if settings.migrate:
        from contract.db.migrate import upgrade
        from infra.db.migrate import require_reachable

        require_reachable(settings.database_url)
        upgrade(settings.database_url)
    else:
        from contract.db.migrate import require_current

        require_current(settings.database_url)
    try:
        vault = PiiVault(configured_key(settings.pii_key, var_dir()))
    except ValueError as exc:
        raise ConfigError(f"LEASELINE_PII_KEY: {exc}") from None
    store = object_store(settings)
    if settings.env == "production":  # a licensed CA's files, never the development CA made on first run
        from contract.signing.ca import CertificateAuthorityError
        from contract.signing.ca import require_licensed

        try:
            require_licensed(settings.signing_dir)
        except CertificateAuthorityError as exc:
            raise ConfigError(f"LEASELINE_SIGNING_DIR: {exc}") from None
    authority = SigningAuthority.load_or_create(settings.signing_dir, lessor_name=lessor_party()["name"])
    timestamper = time_stamper(settings)
    db = Database(settings.database_url)
    ledger = evidence_log(settings, db, store, timestamper)
    try:
        # a few index reads: the first log must have been moved by `leaseline ledger migrate` (LedgerNotMigrated
        # names it); a database without one gets its start statement here, once
        ledger.start()
    except Exception:  # LedgerNotMigrated, or the database unreachable: nothing is left open
        db.dispose()
        raise
    service = ContractService(db, store, authority, ledger, vault, retention_years=settings.retention_years,
                              timestamper=timestamper, tsa_roots=tsa_roots(settings),
                              jobs=JobQueue(db, errors="contract_job_errors"))
    return ContractComponents(settings, db, service, ledger, _verifier(settings), HandoverService(service))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    settings = ContractSettings.from_env()
    if config:
        settings = settings.replace(config)
    app = Flask(__name__)
    app.config.update(SETTINGS=settings, TESTING=settings.env == "test", MAX_CONTENT_LENGTH=settings.max_body_bytes)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["contract"] = bootstrap(settings)
    from contract.api import bp
    from contract.errors import register_error_handlers

    app.register_blueprint(bp)
    register_error_handlers(app)

    @app.before_request
    def _request_id() -> None:
        g.request_id = accept_request_id(request.headers.get("X-Request-Id"))
        request_id.set(g.request_id)

    @app.after_request
    def _headers(response: Any) -> ResponseReturnValue:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    return app
