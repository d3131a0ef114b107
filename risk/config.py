"""Risk service settings from environment variables, with safe embedded defaults, validated at start-up.

``LEASELINE_RISK_DATABASE_URL``        the service's own PostgreSQL database; default ``leaseline_risk`` on the
                                      embedded server (postgresql://postgres@127.0.0.1:5433/leaseline_risk)
                                      (tables ``risk_*``, history in ``risk_alembic_version``)
``LEASELINE_VAR_DIR``                 local state (the embedded database, generated keys); default ``./var``
``LEASELINE_SERVICE_ISSUER``          expected ``iss`` of service tokens; default ``leaseline``
``LEASELINE_RISK_AUDIENCE``           expected ``aud`` of service tokens; default ``leaseline-risk``
``LEASELINE_SERVICE_JWKS``            JSON JWK Set of the token issuer (production: the platform issuer's
                                      JWKS; required when ``LEASELINE_ENV=production``)
``LEASELINE_SERVICE_SIGNING_KEY_PATH`` development: the embedded issuer's key; its public half verifies;
                                      default ``<var>/service_signing_key.pem`` (made on first run, 0600)
``LEASELINE_RISK_POLICY``             ``risk/policies/<name>.toml`` or a path to a .toml file; default ``v1``
``LEASELINE_RISK_PROVIDERS``          the data providers; only ``sandbox`` exists (no bureau is reachable)
``LEASELINE_RISK_PROVIDER_TIMEOUT``   seconds for all provider calls before one counts as unavailable
                                      (→ refer); default ``0.5``
``LEASELINE_RISK_DEALER_STATS_TTL``  seconds each process reuses the dealer-monitoring counts (one grouped
                                      query over the policy's dealer window); default ``30``, ``0`` reads
                                      them on every assessment (tests)
``LEASELINE_RISK_MIGRATE``            apply the service's migrations at start-up; default ``1``
``LEASELINE_PII_KEY``                 base64 of 32 bytes for the keyed hash of ID numbers (shared with the
                                      BFF); default ``<var>/pii_key``
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields
from pathlib import Path
from typing import Any

from infra.db.engine import embedded_database_url
from infra.db.engine import is_postgresql
from infra.paths import var_dir as var_dir

POLICIES = Path(__file__).with_name("policies")


class ConfigError(ValueError):
    """A setting is wrong: the message names the variable and what is expected."""




@dataclass(frozen=True)
class RiskSettings:
    """Validated settings. Build with :meth:`from_env`; tests pass overrides to ``create_app``."""

    database_url: str
    signing_key_path: str
    env: str = "development"
    token_issuer: str = "leaseline"
    token_audience: str = "leaseline-risk"
    service_jwks: str = ""  # JSON; when set it replaces the embedded issuer's public key
    token_leeway: int = 30
    policy: str = "v1"
    providers: str = "sandbox"
    provider_timeout: float = 0.5
    pii_key: str = ""
    max_body_bytes: int = 256 * 1024
    dealer_stats_ttl: float = 30.0  # seconds the dealer-monitoring counts are reused per process
    migrate: bool = True  # apply the service's own Alembic migrations at start-up (LEASELINE_RISK_MIGRATE=0: off)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RiskSettings:
        env = os.environ if env is None else env
        mode = env.get("LEASELINE_ENV", "development")
        if mode not in ("development", "production", "test"):
            raise ConfigError("LEASELINE_ENV must be development, production or test")
        if mode == "production" and not env.get("LEASELINE_RISK_DATABASE_URL"):  # never the embedded server
            raise ConfigError("LEASELINE_RISK_DATABASE_URL is required in production")
        url = env.get("LEASELINE_RISK_DATABASE_URL") or embedded_database_url("leaseline_risk")
        if mode == "production" and not env.get("LEASELINE_SERVICE_JWKS"):
            raise ConfigError("LEASELINE_SERVICE_JWKS is required in production (the platform issuer's JWKS)")
        try:
            timeout = float(env.get("LEASELINE_RISK_PROVIDER_TIMEOUT", "0.5"))
        except ValueError:
            raise ConfigError("LEASELINE_RISK_PROVIDER_TIMEOUT must be a number of seconds") from None
        try:
            dealer_stats_ttl = float(env.get("LEASELINE_RISK_DEALER_STATS_TTL", "30"))
        except ValueError:
            raise ConfigError("LEASELINE_RISK_DEALER_STATS_TTL must be a number of seconds") from None
        return cls(
            database_url=url,
            signing_key_path=env.get("LEASELINE_SERVICE_SIGNING_KEY_PATH")
            or str(var_dir() / "service_signing_key.pem"),
            env=mode,
            token_issuer=env.get("LEASELINE_SERVICE_ISSUER", "leaseline"),
            token_audience=env.get("LEASELINE_RISK_AUDIENCE", "leaseline-risk"),
            service_jwks=env.get("LEASELINE_SERVICE_JWKS", ""),
            policy=env.get("LEASELINE_RISK_POLICY", "v1"),
            providers=env.get("LEASELINE_RISK_PROVIDERS", "sandbox"),
            provider_timeout=timeout,
            pii_key=env.get("LEASELINE_PII_KEY", ""),
            dealer_stats_ttl=dealer_stats_ttl,
            migrate=env.get("LEASELINE_RISK_MIGRATE", "1") not in ("0", "false", "no"),
        ).validated()

    def replace(self, overrides: Mapping[str, Any]) -> RiskSettings:
        """A copy with the known keys of ``overrides`` applied (others are ignored), validated again."""
        names = {f.name for f in fields(self)}
        return RiskSettings(**{**self.__dict__, **{k: v for k, v in overrides.items() if k in names}}).validated()

    def validated(self) -> RiskSettings:
        if not is_postgresql(self.database_url):  # never echo the URL: it may hold a password
            raise ConfigError("LEASELINE_RISK_DATABASE_URL is not a PostgreSQL URL (e.g. postgresql://user@host/db):"
                              " Leaseline runs on PostgreSQL only")
        if self.service_jwks:
            try:
                jwks = json.loads(self.service_jwks)
            except ValueError:
                raise ConfigError("LEASELINE_SERVICE_JWKS must be a JSON JWK Set {\"keys\": [...]}") from None
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
                raise ConfigError("LEASELINE_SERVICE_JWKS must be a JSON JWK Set {\"keys\": [...]} with a key")
        if self.providers != "sandbox":
            raise ConfigError("LEASELINE_RISK_PROVIDERS must be 'sandbox' (the only provider adapter so far)")
        if not 0.01 <= self.provider_timeout <= 30:
            raise ConfigError("LEASELINE_RISK_PROVIDER_TIMEOUT must be between 0.01 and 30 seconds")
        if not 0 <= self.dealer_stats_ttl <= 3600:
            raise ConfigError("LEASELINE_RISK_DEALER_STATS_TTL must be between 0 and 3600 seconds")
        policy_path(self.policy)
        return self


def policy_path(name: str) -> Path:
    """The policy file for ``name``: ``risk/policies/<name>.toml``, or an explicit path to a .toml file."""
    path = Path(name) if name.endswith(".toml") else POLICIES / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in POLICIES.glob("*.toml")))
        raise ConfigError(f"LEASELINE_RISK_POLICY: no policy {name!r} (known: {known})")
    return path
