"""Staff sign-in with OpenID Connect (authorization code + PKCE S256) through authlib.

https://docs.authlib.org/en/latest/client/flask.html — the state and the PKCE verifier live in the session;
``authorize_access_token`` checks the state and validates the ID token (issuer, audience, nonce, expiry).
A staff member signs in only if invited: their account is matched by (issuer, subject), or on the first
sign-in by email, which links it.

Issuers: the one in ``LEASELINE_OIDC_ISSUER`` (the default: the lessor's staff, and dealer groups without
their own), and one per dealer group (``dealer_groups.oidc_issuer``, set by lessor ops on the dealers page).
Each issuer gets its own authlib client, registered on first use. Client credentials come from
``LEASELINE_OIDC_CLIENTS`` for that issuer, else the default ``LEASELINE_OIDC_CLIENT_ID``/``_SECRET``.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth
from flask import Flask
from flask import current_app

from bff.config import ConfigError
from bff.config import Settings

_lock = threading.Lock()


def register(app: Flask, settings: Settings) -> None:
    """One OAuth registry per app; the default issuer's settings are checked at start-up."""
    if settings.oidc_issuer and not (settings.oidc_client_id and settings.oidc_client_secret):
        raise ConfigError("LEASELINE_OIDC_CLIENT_ID and LEASELINE_OIDC_CLIENT_SECRET are required with an issuer")
    app.extensions["leaseline.oidc"] = OAuth(app)


def valid_issuer(issuer: str) -> bool:
    """An issuer URL we accept from ops: https, or http on the loopback (development and tests)."""
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or not parts.hostname or len(issuer) > 255:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def _credentials(settings: Settings, issuer: str) -> tuple[str, str] | None:
    for known, client_id, client_secret in settings.oidc_clients:
        if known == issuer:
            return client_id, client_secret
    if settings.oidc_client_id and settings.oidc_client_secret:
        return settings.oidc_client_id, settings.oidc_client_secret
    return None


def client_for(issuer: str | None) -> Any:
    """The authlib client of ``issuer`` (registered on first use), or None without issuer or credentials."""
    oauth: OAuth | None = current_app.extensions.get("leaseline.oidc")
    if oauth is None or not issuer:
        return None
    name = "oidc_" + hashlib.sha256(issuer.encode()).hexdigest()[:16]  # the session keys its state by name
    with _lock:
        existing = oauth.create_client(name)
        if existing is not None:
            return existing
        credentials = _credentials(current_app.config["SETTINGS"], issuer)
        if credentials is None:
            return None
        return oauth.register(
            name,
            client_id=credentials[0],
            client_secret=credentials[1],
            server_metadata_url=issuer + "/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256", "timeout": 5},
        )


def default_issuer() -> str:
    """The environment's issuer (empty when company sign-in is configured per dealer group only)."""
    return str(current_app.config["SETTINGS"].oidc_issuer)


def client() -> Any:
    """The default issuer's client, or None when no issuer is configured."""
    return client_for(default_issuer())
