"""Contract service settings from environment variables, with safe embedded defaults, validated at start-up.

``LEASELINE_CONTRACT_DATABASE_URL``     the service's own PostgreSQL database; default ``leaseline_contract`` on
                                       the embedded server (postgresql://postgres@127.0.0.1:5433/leaseline_contract)
                                       (tables ``contract_*``, history in ``contract_alembic_version``)
``LEASELINE_VAR_DIR``                  local state (the embedded database, generated keys, the development CA)
``LEASELINE_SERVICE_ISSUER``           expected ``iss`` of service tokens; default ``leaseline``
``LEASELINE_CONTRACT_AUDIENCE``        expected ``aud``; default ``leaseline-contract``
``LEASELINE_SERVICE_JWKS``             the token issuer's JWK Set (required in production)
``LEASELINE_SERVICE_SIGNING_KEY_PATH`` development: the embedded issuer's key (its public half verifies)
``LEASELINE_SIGNING_DIR``              the platform signing CA and the lessor's certificate; default
                                       ``<var>/signing`` (made on first run in development; production
                                       points at real ones)
``LEASELINE_TSA_URL``                  an RFC 3161 time-stamping authority: signatures become PAdES B-T and
                                       each evidence-log checkpoint is time-stamped (anchored); empty
                                       (default): B-B, checkpoints unanchored
``LEASELINE_TSA_ROOTS``                PEM file of the TSA's root certificate(s), trusted for timestamps
``LEASELINE_LEDGER_SIGNING_KEY_PATH``  the evidence log's Ed25519 checkpoint key; default
                                       ``<var>/ledger_signing_key.pem`` (made on first run)
``LEASELINE_LEDGER_ORIGIN``            the first log's name in its checkpoints; default ``leaseline.cn/evidence``
                                       (the commitment log's checkpoints name it with ``/v2``)
``LEASELINE_S3_ENDPOINT_URL`` / ``LEASELINE_S3_ACCESS_KEY`` / ``LEASELINE_S3_SECRET_KEY`` /
``LEASELINE_S3_REGION``                 object storage, shared with the BFF (SeaweedFS on localhost by default)
``LEASELINE_CONTRACT_BUCKET``          the contracts' bucket, created with Object Lock; default
                                       ``leaseline-contracts``
``LEASELINE_CONTRACT_RETENTION_YEARS`` signed contracts are locked (compliance mode) this long; default 5
``LEASELINE_PII_KEY``                  the PII vault key shared with the BFF; default ``<var>/pii_key``
``LEASELINE_CONTRACT_MIGRATE``         apply the migrations at start-up; default ``1``
``LEASELINE_WORKER_CONCURRENCY`` /      the service's worker (``leaseline worker --service contract``): jobs at
``LEASELINE_JOBS_TICK_SECONDS`` /       once (default 2: a render is CPU work), how often it looks for jobs
``LEASELINE_JOBS_STALLED_SECONDS``      besides being told (5 s), a dead worker's jobs run again after (30 s)
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields
from pathlib import Path
from typing import Any

from infra.db.engine import embedded_database_url
from infra.db.engine import is_postgresql
from infra.keyfiles import create_once
from infra.paths import var_dir as var_dir


class ConfigError(ValueError):
    """A setting is wrong: the message names the variable and what is expected."""




def _shared_secret(name: str) -> str:
    """A development secret shared with the BFF (``var/<name>``, made by whichever process starts first)."""
    return create_once(var_dir() / name, lambda: secrets.token_urlsafe(48).encode(), name).decode().strip()


@dataclass(frozen=True)
class ContractSettings:
    database_url: str
    signing_key_path: str
    signing_dir: str
    ledger_key_path: str
    env: str = "development"
    token_issuer: str = "leaseline"
    token_audience: str = "leaseline-contract"
    service_jwks: str = ""
    token_leeway: int = 30
    tsa_url: str = ""
    tsa_roots: str = ""  # a PEM file
    ledger_origin: str = "leaseline.cn/evidence"
    s3_endpoint_url: str = "http://127.0.0.1:8333"
    s3_access_key: str = "leaseline-dev"
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    bucket: str = "leaseline-contracts"
    retention_years: int = 5
    pii_key: str = ""
    max_body_bytes: int = 12 * 1024 * 1024  # a signature image, or a PDF uploaded for verification
    migrate: bool = True
    worker_concurrency: int = 2
    jobs_tick_seconds: int = 5
    jobs_stalled_seconds: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContractSettings:
        env = os.environ if env is None else env
        mode = env.get("LEASELINE_ENV", "development")
        if mode not in ("development", "production", "test"):
            raise ConfigError("LEASELINE_ENV must be development, production or test")
        if mode == "production" and not env.get("LEASELINE_CONTRACT_DATABASE_URL"):  # never the embedded server
            raise ConfigError("LEASELINE_CONTRACT_DATABASE_URL is required in production")
        if mode == "production" and not env.get("LEASELINE_SERVICE_JWKS"):
            raise ConfigError("LEASELINE_SERVICE_JWKS is required in production (the platform issuer's JWKS)")
        if mode == "production" and not env.get("LEASELINE_SIGNING_DIR"):
            raise ConfigError("LEASELINE_SIGNING_DIR is required in production (the real signing CA's files)")
        if mode == "production" and not (env.get("LEASELINE_TSA_URL") and env.get("LEASELINE_TSA_ROOTS")):
            # PAdES B-T at least: the signing time attested by a trusted time-stamping authority (RFC 3161), so
            # that a signature can be shown to predate a later revocation or change (issue 16 §7)
            raise ConfigError("LEASELINE_TSA_URL and LEASELINE_TSA_ROOTS are required in production: every "
                              "signature carries a trusted timestamp (PAdES B-T)")
        try:
            years = int(env.get("LEASELINE_CONTRACT_RETENTION_YEARS", "5"))
        except ValueError:
            raise ConfigError("LEASELINE_CONTRACT_RETENTION_YEARS must be a whole number of years") from None
        var = var_dir()
        return cls(
            database_url=env.get("LEASELINE_CONTRACT_DATABASE_URL") or embedded_database_url("leaseline_contract"),
            signing_key_path=env.get("LEASELINE_SERVICE_SIGNING_KEY_PATH") or str(var / "service_signing_key.pem"),
            signing_dir=env.get("LEASELINE_SIGNING_DIR") or str(var / "signing"),
            ledger_key_path=env.get("LEASELINE_LEDGER_SIGNING_KEY_PATH") or str(var / "ledger_signing_key.pem"),
            env=mode,
            token_issuer=env.get("LEASELINE_SERVICE_ISSUER", "leaseline"),
            token_audience=env.get("LEASELINE_CONTRACT_AUDIENCE", "leaseline-contract"),
            service_jwks=env.get("LEASELINE_SERVICE_JWKS", ""),
            tsa_url=env.get("LEASELINE_TSA_URL", ""),
            tsa_roots=env.get("LEASELINE_TSA_ROOTS", ""),
            ledger_origin=env.get("LEASELINE_LEDGER_ORIGIN", "leaseline.cn/evidence"),
            s3_endpoint_url=env.get("LEASELINE_S3_ENDPOINT_URL", "http://127.0.0.1:8333"),
            s3_access_key=env.get("LEASELINE_S3_ACCESS_KEY", "leaseline-dev"),
            s3_secret_key=env.get("LEASELINE_S3_SECRET_KEY") or _shared_secret("s3_secret_key"),
            s3_region=env.get("LEASELINE_S3_REGION", "us-east-1"),
            bucket=env.get("LEASELINE_CONTRACT_BUCKET", "leaseline-contracts"),
            retention_years=years,
            pii_key=env.get("LEASELINE_PII_KEY", ""),
            migrate=env.get("LEASELINE_CONTRACT_MIGRATE", "1") not in ("0", "false", "no"),
            worker_concurrency=_whole(env, "LEASELINE_WORKER_CONCURRENCY", 2, 1, 64),
            jobs_tick_seconds=_whole(env, "LEASELINE_JOBS_TICK_SECONDS", 5, 1, 59),
            jobs_stalled_seconds=_whole(env, "LEASELINE_JOBS_STALLED_SECONDS", 30, 2, 3600),
        ).validated()

    def replace(self, overrides: Mapping[str, Any]) -> ContractSettings:
        names = {f.name for f in fields(self)}
        return ContractSettings(**{**self.__dict__, **{k: v for k, v in overrides.items() if k in names}}).validated()

    def validated(self) -> ContractSettings:
        if not is_postgresql(self.database_url):  # never echo the URL: it may hold a password
            raise ConfigError("LEASELINE_CONTRACT_DATABASE_URL is not a PostgreSQL URL (e.g. postgresql://user@host/db):"
                              " Leaseline runs on PostgreSQL only")
        if self.service_jwks:
            try:
                jwks = json.loads(self.service_jwks)
            except ValueError:
                raise ConfigError("LEASELINE_SERVICE_JWKS must be a JSON JWK Set {\"keys\": [...]}") from None
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
                raise ConfigError("LEASELINE_SERVICE_JWKS must be a JSON JWK Set with a key")
        if not 1 <= self.retention_years <= 30:
            raise ConfigError("LEASELINE_CONTRACT_RETENTION_YEARS must be between 1 and 30")
        if self.tsa_url and not self.tsa_url.startswith(("http://", "https://")):
            raise ConfigError("LEASELINE_TSA_URL must be an http(s) URL of an RFC 3161 time-stamping authority")
        if self.tsa_roots and not Path(self.tsa_roots).is_file():
            raise ConfigError("LEASELINE_TSA_ROOTS must be a PEM file of the TSA's root certificate(s)")
        return self


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number between {low} and {high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number between {low} and {high}")
    return value
