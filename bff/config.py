"""BFF configuration from environment variables, with safe embedded defaults, validated at start-up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class ConfigError(ValueError):
    """A setting is wrong: the message names the variable and what is expected."""


def var_dir() -> Path:
    """Where local state lives (SQLite files, generated keys): ``LEASELINE_VAR_DIR`` or ``./var``."""
    return Path(os.environ.get("LEASELINE_VAR_DIR", "var")).resolve()


def _secret_key(env: Mapping[str, str]) -> str:
    if env.get("LEASELINE_SECRET_KEY"):
        key = env["LEASELINE_SECRET_KEY"]
        if len(key) < 32:
            raise ConfigError("LEASELINE_SECRET_KEY must be at least 32 characters")
        return key
    # Development: a key file made on first run, never committed (var/ is git-ignored).
    path = var_dir() / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # created readable by its owner only from the start, and never overwritten
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def _locale(value: str) -> str:
    if value not in ("zh_CN", "en"):
        raise ConfigError("LEASELINE_LOCALE must be zh_CN or en")
    return value


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with :meth:`from_env`; tests pass overrides to ``create_app``."""

    database_url: str
    secret_key: str
    env: str = "development"
    policy: str = "default"
    product: str = "standard"
    default_locale: str = "zh_CN"
    login_rate: str = "10 per minute"
    redis_url: str = ""
    oidc_issuer: str = ""  # OpenID Connect issuer of the staff's identity provider; empty: local accounts only
    oidc_client_id: str = ""
    oidc_client_secret: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        mode = env.get("LEASELINE_ENV", "development")
        if mode not in ("development", "production", "test"):
            raise ConfigError("LEASELINE_ENV must be development, production or test")
        url = env.get("LEASELINE_DATABASE_URL") or f"sqlite:///{var_dir() / 'bff.db'}"
        try:
            make_url(url)
        except Exception:  # sqlalchemy's ArgumentError would echo the URL, password included
            raise ConfigError("LEASELINE_DATABASE_URL is not a database URL "
                              "(e.g. sqlite:///var/bff.db or postgresql://user@host/db)") from None
        if mode == "production" and not env.get("LEASELINE_SECRET_KEY"):
            raise ConfigError("LEASELINE_SECRET_KEY is required in production")
        return cls(
            database_url=url,
            secret_key=_secret_key(env),
            env=mode,
            policy=env.get("LEASELINE_POLICY", "default"),
            product=env.get("LEASELINE_PRODUCT", "standard"),
            default_locale=_locale(env.get("LEASELINE_LOCALE", "zh_CN")),
            login_rate=env.get("LEASELINE_LOGIN_RATE", "10 per minute"),
            redis_url=env.get("REDIS_URL", ""),
            oidc_issuer=env.get("LEASELINE_OIDC_ISSUER", "").rstrip("/"),
            oidc_client_id=env.get("LEASELINE_OIDC_CLIENT_ID", ""),
            oidc_client_secret=env.get("LEASELINE_OIDC_CLIENT_SECRET", ""),
        )
