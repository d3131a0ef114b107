"""The risk service: its own Flask app (``leaseline serve risk``, 127.0.0.1:8001), tables and OpenAPI.

``create_app(config)`` builds it from :class:`risk.config.RiskSettings` (environment + embedded defaults);
``config`` overrides settings by name and may inject ``model`` (a :class:`risk.scoring.Model`) and
``providers`` (a list of :class:`risk.providers.DataProvider`) — the composition root is :func:`bootstrap`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask import Response
from flask import g
from flask import request

from infra.db.engine import Database
from infra.logs import accept_request_id
from infra.logs import request_id
from infra.pii import PiiVault
from infra.pii import configured_key
from infra.service_tokens import TokenVerifier
from infra.service_tokens import load_or_create_signing_key
from infra.service_tokens import public_jwks
from risk.config import ConfigError
from risk.config import RiskSettings
from risk.config import policy_path
from risk.config import var_dir
from risk.providers import DataProvider
from risk.providers import ProviderHub
from risk.providers import sandbox_providers
from risk.rules import PolicyError
from risk.rules import load_policy
from risk.scoring import Model
from risk.service import RiskService

log = logging.getLogger(__name__)


@dataclass
class RiskComponents:
    """What the views use, built once per process."""

    settings: RiskSettings
    db: Database
    service: RiskService
    verifier: TokenVerifier
    hub: ProviderHub

    def dispose(self) -> None:
        self.hub.shutdown()
        self.service.close()
        self.db.dispose()


def _verifier(settings: RiskSettings) -> TokenVerifier:
    if settings.service_jwks:  # production: the platform issuer's JWKS
        keys: Any = json.loads(settings.service_jwks)
    else:  # development: the embedded issuer's key file, made on first run; its public half verifies
        try:
            keys = public_jwks(load_or_create_signing_key(Path(settings.signing_key_path)))
        except ValueError as exc:
            raise ConfigError(f"LEASELINE_SERVICE_SIGNING_KEY_PATH: {exc}") from None
    return TokenVerifier(keys, settings.token_issuer, settings.token_audience, settings.token_leeway)


def _model(injected: Model | None) -> Model:
    if injected is not None:
        return injected
    try:
        from risk.scoring import ScorecardModel

        return ScorecardModel()
    except (ImportError, LookupError, OSError) as exc:
        raise ConfigError(f"the scorecard artifact cannot be loaded ({exc}); train it with `leaseline risk train`"
                          ) from None


def bootstrap(settings: RiskSettings, model: Model | None = None,
              providers: list[DataProvider] | None = None) -> RiskComponents:
    """The composition root: database (migrated), policy, model, providers, token verifier, service."""
    try:
        policy = load_policy(policy_path(settings.policy))
    except PolicyError as exc:
        raise ConfigError(f"LEASELINE_RISK_POLICY: {exc}") from None
    # an unreachable database or, when the service does not migrate itself, a schema not at this code's head:
    # one line naming the fix (DatabaseNotReady), not a traceback or a 500 on every request
    if settings.migrate:
        from infra.db.migrate import require_reachable
        from risk.db.migrate import upgrade

        require_reachable(settings.database_url)
        upgrade(settings.database_url)
    else:
        from risk.db.migrate import require_current

        require_current(settings.database_url)
    try:
        vault = PiiVault(configured_key(settings.pii_key, var_dir()))
    except ValueError as exc:
        raise ConfigError(f"LEASELINE_PII_KEY: {exc}") from None
    slow = settings.provider_timeout * 2 + 1  # the sandbox's slow persona always misses the deadline
    hub = ProviderHub(providers if providers is not None else sandbox_providers(slow), settings.provider_timeout)
    db = Database(settings.database_url)
    service = RiskService(db, policy, _model(model), hub, vault, dealer_stats_ttl=settings.dealer_stats_ttl)
    return RiskComponents(settings, db, service, _verifier(settings), hub)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the risk service. ``config`` overrides settings (tests pass ``database_url`` etc.)."""
    config = dict(config or {})
    # injected objects, not settings (the ``providers`` setting names the adapter: a string)
    model = config.pop("model", None)
    providers = config.pop("providers") if not isinstance(config.get("providers", ""), str) else None
    settings = RiskSettings.from_env()
    if config:
        settings = settings.replace(config)
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        TESTING=settings.env == "test",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["risk"] = bootstrap(settings, model, providers)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_ids(app)
    return app


def register_blueprints(app: Flask) -> None:
    from risk.api import bp

    app.register_blueprint(bp)


def register_error_handlers(app: Flask) -> None:
    from risk.errors import register_error_handlers as register

    register(app)


def register_request_ids(app: Flask) -> None:
    """A request id that travels BFF → risk: ``X-Request-Id`` echoed (or made) and put on each log line."""

    @app.before_request
    def _request_id() -> None:
        g.request_id = accept_request_id(request.headers.get("X-Request-Id"))
        request_id.set(g.request_id)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response
