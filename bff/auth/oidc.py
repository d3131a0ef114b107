"""Staff sign-in with OpenID Connect (authorization code + PKCE S256) through authlib.

https://docs.authlib.org/en/latest/client/flask.html — the state and the PKCE verifier live in the session;
``authorize_access_token`` checks the state and validates the ID token (issuer, audience, nonce, expiry).
A staff member signs in only if invited: their account is matched by (issuer, subject), or on the first
sign-in by email, which links it.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask
from flask import current_app

from bff.config import ConfigError
from bff.config import Settings


def register(app: Flask, settings: Settings) -> None:
    """Register the staff identity provider when an issuer is configured (one OAuth registry per app)."""
    if not settings.oidc_issuer:
        return
    if not settings.oidc_client_id or not settings.oidc_client_secret:
        raise ConfigError("LEASELINE_OIDC_CLIENT_ID and LEASELINE_OIDC_CLIENT_SECRET are required with an issuer")
    oauth = OAuth(app)
    app.extensions["leaseline.oidc"] = oauth
    oauth.register(
        "staff",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256", "timeout": 5},
    )


def client() -> Any:
    """The staff identity provider's client, or None when no issuer is configured."""
    oauth = current_app.extensions.get("leaseline.oidc")
    return oauth.create_client("staff") if oauth is not None else None
