"""BFF configuration from environment variables, with safe embedded defaults, validated at start-up."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from infra.db.engine import embedded_database_url
from infra.db.engine import is_postgresql
from infra.paths import var_dir as var_dir
from infra.peers import is_local_endpoint


class ConfigError(ValueError):
    """A setting is wrong: the message names the variable and what is expected."""




def _secret_key(env: Mapping[str, str]) -> str:
    if env.get("LEASELINE_SECRET_KEY"):
        key = env["LEASELINE_SECRET_KEY"]
        if len(key) < 32:
            raise ConfigError("LEASELINE_SECRET_KEY must be at least 32 characters")
        return key
    return generated_secret("secret_key")


def generated_secret(name: str) -> str:
    """Development: a random secret in ``var/<name>``, made on first run, never committed (var/ is ignored)."""
    path = var_dir() / name
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
    # Object storage (S3 API): SeaweedFS on localhost by default (started by `leaseline up` / the tests).
    s3_endpoint_url: str = "http://127.0.0.1:8333"
    s3_bucket: str = "leaseline-kyc"
    s3_access_key: str = "leaseline-dev"
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    # Stripe: the embedded default is localstripe on 127.0.0.1:8420 with a test key (TEST MODE on screen);
    # production sets the live key, no API base, and the webhook endpoint's secret from Stripe's dashboard.
    stripe_secret_key: str = "sk_test_leaseline_local"
    #: Stripe's publishable key (pk_...): set, the payment page pays through Stripe.js's Payment Element (card,
    #: Alipay, WeChat Pay), loaded from js.stripe.com; empty (the embedded default, with localstripe), TEST MODE
    #: pays server-side with Stripe's test PaymentMethods. Required in production.
    stripe_publishable_key: str = ""
    stripe_api_base: str = "http://127.0.0.1:8420"
    stripe_webhook_secret: str = ""
    pii_key: str = ""  # base64 of 32 bytes; development: var/pii_key made on first run
    face_threshold: float = 0.5
    face_review_margin: float = 0.08
    #: jobs a worker runs at once (``leaseline worker --concurrency`` overrides it)
    worker_concurrency: int = 4
    #: how often the worker's sweeps run (the evidence outbox, payment holds, refunds, payouts, settlement,
    #: stalled jobs), in seconds
    jobs_tick_seconds: int = 5
    #: a running job whose worker sent no heartbeat for this long is run again (its worker died)
    jobs_stalled_seconds: int = 30
    #: a Stripe step claimed and left unfinished this long (its process died) is taken over: a dealer transfer sent
    #: again, a settlement run again (same keys)
    payments_stale_seconds: int = 300
    #: a refund still pending this long (Stripe was unreachable, or its process died) is looked up and sent again
    refund_retry_seconds: int = 60
    biometric_retention_days: int = 30
    #: KYC images with no database row (an upload that died between its put and its row) are deleted by the
    #: worker's orphan sweep every ``kyc_sweep_seconds``, once older than ``kyc_orphan_grace_seconds``
    kyc_orphan_grace_seconds: int = 3600
    kyc_sweep_seconds: int = 600
    kyc_rate: str = "30 per hour"  # photo uploads per application (ID card and face attempts)
    risk_url: str = "http://127.0.0.1:8001"
    contract_url: str = "http://127.0.0.1:8002"
    service_issuer: str = "leaseline"  # the embedded token service's issuer (client-credentials JWTs)
    #: client credentials per issuer (dealer groups' own issuers), from LEASELINE_OIDC_CLIENTS (JSON
    #: ``{"<issuer>": {"client_id": "...", "client_secret": "..."}}``); an issuer not listed uses the two above
    oidc_clients: tuple[tuple[str, str, str], ...] = ()
    #: text messages: ``sandbox`` (the embedded default: stored in sms_outbox, read at /dev/outbox) or ``tencent``
    #: (Tencent Cloud SMS; required in production)
    sms: str = "sandbox"
    #: the one registered signature (签名, ``LEASELINE_SMS_SIGNATURE``) every text of either adapter goes out under:
    #: the one approved for the Tencent Cloud account (it refuses any other), by default infra.sms.SIGNATURE (租程)
    sms_signature: str = "租程"
    #: Tencent Cloud SMS: API keys, the SMS application (SmsSdkAppId), region, the template id of each of
    #: infra.sms.TEMPLATES (``LEASELINE_TENCENT_SMS_TEMPLATES``, JSON ``{"invitation_code": "1234567", ...}``), and
    #: for tests an endpoint (host:port) and scheme other than sms.tencentcloudapi.com over https
    tencent_sms: tuple[tuple[str, str], ...] = ()
    #: the BFF's public address (``LEASELINE_PUBLIC_URL``, without a trailing slash), which texts link to (the rent's
    #: pay page, ``/leases/<id>/pay``, in the text about a rent not collected): required in production, https there
    public_url: str = "http://127.0.0.1:8000"
    #: e-invoices (数电发票, infra/invoice_platform.py): ``LEASELINE_INVOICE_PLATFORM`` — ``sandbox``, the embedded
    #: default and, until a channel's adapter is built, the only one (specimens, never invoices:
    #: infra/invoice_sandbox.py); the seller the invoices name (``LEASELINE_INVOICE_SELLER_NAME``, ``…_CREDIT_CODE``:
    #: its 统一社会信用代码, GB 32100; by default contract/lessor.toml's lessor); how long a request the platform
    #: answered ``pending`` waits before it is asked again (``LEASELINE_INVOICE_POLL_SECONDS``)
    invoice_platform: str = "sandbox"
    invoice_seller_name: str = "领航融资租赁有限公司"
    invoice_seller_credit_code: str = "91350100M000100Y43"
    invoice_poll_seconds: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        mode = env.get("LEASELINE_ENV", "development")
        if mode not in ("development", "production", "test"):
            raise ConfigError("LEASELINE_ENV must be development, production or test")
        if mode == "production" and not env.get("LEASELINE_DATABASE_URL"):  # never the embedded development server
            raise ConfigError("LEASELINE_DATABASE_URL is required in production")
        url = env.get("LEASELINE_DATABASE_URL") or embedded_database_url("leaseline")
        if not is_postgresql(url):  # never echo the URL: it may hold a password
            raise ConfigError("LEASELINE_DATABASE_URL is not a PostgreSQL URL (e.g. postgresql://user@host/db): "
                              "Leaseline runs on PostgreSQL only")
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
            s3_endpoint_url=env.get("LEASELINE_S3_ENDPOINT_URL", "http://127.0.0.1:8333"),
            s3_bucket=env.get("LEASELINE_S3_BUCKET", "leaseline-kyc"),
            s3_access_key=env.get("LEASELINE_S3_ACCESS_KEY", "leaseline-dev"),
            s3_secret_key=env.get("LEASELINE_S3_SECRET_KEY") or generated_secret("s3_secret_key"),
            s3_region=env.get("LEASELINE_S3_REGION", "us-east-1"),
            stripe_secret_key=_required_in_production(env, mode, "LEASELINE_STRIPE_SECRET_KEY")
            or "sk_test_leaseline_local",
            stripe_api_base=env.get("LEASELINE_STRIPE_API_BASE", "" if mode == "production" else
                                    "http://127.0.0.1:8420"),
            stripe_publishable_key=_publishable_key(env, mode),
            stripe_webhook_secret=env.get("LEASELINE_STRIPE_WEBHOOK_SECRET") or (
                _required_in_production(env, mode, "LEASELINE_STRIPE_WEBHOOK_SECRET")
                or "whsec_" + generated_secret("stripe_webhook_secret")),
            pii_key=_required_in_production(env, mode, "LEASELINE_PII_KEY"),
            face_threshold=_number(env, "LEASELINE_FACE_THRESHOLD", 0.5, 0.2, 0.8),
            face_review_margin=_number(env, "LEASELINE_FACE_REVIEW_MARGIN", 0.08, 0.0, 0.3),
            worker_concurrency=int(_number(env, "LEASELINE_WORKER_CONCURRENCY", 4, 1, 64)),
            jobs_tick_seconds=int(_number(env, "LEASELINE_JOBS_TICK_SECONDS", 5, 1, 59)),
            jobs_stalled_seconds=int(_number(env, "LEASELINE_JOBS_STALLED_SECONDS", 30, 2, 3600)),
            payments_stale_seconds=int(_number(env, "LEASELINE_PAYMENTS_STALE_SECONDS", 300, 2, 86400)),
            refund_retry_seconds=int(_number(env, "LEASELINE_REFUND_RETRY_SECONDS", 60, 2, 86400)),
            biometric_retention_days=int(_number(env, "LEASELINE_BIOMETRIC_RETENTION_DAYS", 30, 1, 3650)),
            kyc_orphan_grace_seconds=int(_number(env, "LEASELINE_KYC_ORPHAN_GRACE_SECONDS", 3600, 60, 7 * 86400)),
            kyc_sweep_seconds=int(_number(env, "LEASELINE_KYC_SWEEP_SECONDS", 600, 10, 86400)),
            kyc_rate=env.get("LEASELINE_KYC_RATE", "30 per hour"),
            risk_url=env.get("LEASELINE_RISK_URL", "http://127.0.0.1:8001").rstrip("/"),
            contract_url=env.get("LEASELINE_CONTRACT_URL", "http://127.0.0.1:8002").rstrip("/"),
            service_issuer=env.get("LEASELINE_SERVICE_ISSUER", "leaseline"),
            oidc_clients=_oidc_clients(env.get("LEASELINE_OIDC_CLIENTS", "")),
            sms=_sms(env, mode),
            sms_signature=_sms_signature(env),
            tencent_sms=_tencent_sms(env) if env.get("LEASELINE_SMS") == "tencent" else (),
            public_url=_public_url(env, mode),
            **_invoices(env),
        )


def _public_url(env: Mapping[str, str], mode: str) -> str:
    """``LEASELINE_PUBLIC_URL``: an absolute URL with a host and nothing after its path (no query, no fragment), https
    in production (http or https elsewhere); the embedded server's address by default, except in production."""
    value = _required_in_production(env, mode, "LEASELINE_PUBLIC_URL") or "http://127.0.0.1:8000"
    schemes = ("https",) if mode == "production" else ("http", "https")
    refused = ConfigError(f"LEASELINE_PUBLIC_URL must be the BFF's public address, an absolute {' or '.join(schemes)} "
                          f"URL with a host and no query or fragment (e.g. https://app.example.com)")
    try:
        parts = urlsplit(value)
        port = parts.port  # reading it checks it: a number, 0–65535
    except ValueError:
        raise refused from None
    if (parts.scheme not in schemes or not parts.hostname or port == 0 or "?" in value or "#" in value
            or any(c.isspace() for c in value)):
        raise refused
    return value.rstrip("/")


def _invoices(env: Mapping[str, str]) -> dict[str, object]:
    """The e-invoice settings (``Settings.invoice_*``), checked: the platform named, the seller's name and a valid
    统一社会信用代码 (GB 32100 check character)."""
    from kyc import uscc

    platform = env.get("LEASELINE_INVOICE_PLATFORM", "sandbox")
    if platform != "sandbox":
        raise ConfigError("LEASELINE_INVOICE_PLATFORM must be sandbox (the only invoice platform built so far: it "
                          "issues specimens, never invoices)")
    name = env.get("LEASELINE_INVOICE_SELLER_NAME", Settings.invoice_seller_name).strip()
    if not 1 <= len(name) <= 100:
        raise ConfigError("LEASELINE_INVOICE_SELLER_NAME must be the lessor's registered name (1 to 100 characters)")
    code = env.get("LEASELINE_INVOICE_SELLER_CREDIT_CODE", Settings.invoice_seller_credit_code).strip().upper()
    if not uscc.is_valid(code):
        raise ConfigError("LEASELINE_INVOICE_SELLER_CREDIT_CODE must be the lessor's unified social credit code "
                          "(统一社会信用代码: 18 characters, its check character valid)")
    return {"invoice_platform": platform, "invoice_seller_name": name, "invoice_seller_credit_code": code,
            "invoice_poll_seconds": int(_number(env, "LEASELINE_INVOICE_POLL_SECONDS", 60, 1, 86400))}


def _sms(env: Mapping[str, str], mode: str) -> str:
    """``LEASELINE_SMS``: ``sandbox`` (never in production: nobody would receive a code) or ``tencent``."""
    chosen = env.get("LEASELINE_SMS", "sandbox" if mode != "production" else "")
    if chosen not in ("sandbox", "tencent") or (mode == "production" and chosen != "tencent"):
        raise ConfigError("LEASELINE_SMS must be tencent in production (sandbox, the default elsewhere, sends "
                          "nothing)" if mode == "production" else "LEASELINE_SMS must be sandbox or tencent")
    return chosen


def _sms_signature(env: Mapping[str, str]) -> str:
    """``LEASELINE_SMS_SIGNATURE``: 2 to 12 characters without brackets (Tencent Cloud's limits for a SignName; the
    brackets 【】 are the platform's own)."""
    from infra.sms import SIGNATURE

    signature = env.get("LEASELINE_SMS_SIGNATURE", SIGNATURE).strip()
    if not 2 <= len(signature) <= 12 or any(c in signature for c in "【】[]"):
        raise ConfigError("LEASELINE_SMS_SIGNATURE must be 2 to 12 characters, without brackets (the signature "
                          "approved for the SMS account)")
    return signature


def _tencent_sms(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The Tencent Cloud SMS settings, each required, the template ids checked against infra.sms.TEMPLATES."""
    from infra.sms import TEMPLATES

    names = ("SECRET_ID", "SECRET_KEY", "APP_ID", "TEMPLATES")
    missing = [f"LEASELINE_TENCENT_SMS_{n}" for n in names if not env.get(f"LEASELINE_TENCENT_SMS_{n}")]
    if missing:
        raise ConfigError(f"LEASELINE_SMS=tencent needs {', '.join(missing)}")
    try:
        templates = json.loads(env["LEASELINE_TENCENT_SMS_TEMPLATES"])
    except ValueError:
        templates = None
    if not isinstance(templates, dict) or set(templates) != set(TEMPLATES) or not all(
            isinstance(v, str) and v.isdigit() for v in templates.values()):
        raise ConfigError("LEASELINE_TENCENT_SMS_TEMPLATES must be a JSON object with the approved template id "
                          f"(digits) of each of {', '.join(sorted(TEMPLATES))}")
    settings = {"secret_id": env["LEASELINE_TENCENT_SMS_SECRET_ID"],
                "secret_key": env["LEASELINE_TENCENT_SMS_SECRET_KEY"],
                "app_id": env["LEASELINE_TENCENT_SMS_APP_ID"], "templates": json.dumps(templates, sort_keys=True),
                "region": env.get("LEASELINE_TENCENT_SMS_REGION", "ap-guangzhou"),
                "endpoint": env.get("LEASELINE_TENCENT_SMS_ENDPOINT", ""),
                "scheme": env.get("LEASELINE_TENCENT_SMS_SCHEME", "https")}
    return tuple(settings.items())


def _required_in_production(env: Mapping[str, str], mode: str, name: str) -> str:
    value = env.get(name, "")
    if mode == "production" and not value:
        raise ConfigError(f"{name} is required in production")
    return value


def _publishable_key(env: Mapping[str, str], mode: str) -> str:
    """``LEASELINE_STRIPE_PUBLISHABLE_KEY``: of the same Stripe mode (test or live) as the secret key, and only
    with Stripe's own API: Stripe.js in the browser talks to api.stripe.com, never to a local emulator."""
    key = _required_in_production(env, mode, "LEASELINE_STRIPE_PUBLISHABLE_KEY")
    if not key:
        return ""
    if not key.startswith(("pk_test_", "pk_live_")):
        raise ConfigError("LEASELINE_STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key (pk_test_... or "
                          "pk_live_...)")
    secret = env.get("LEASELINE_STRIPE_SECRET_KEY") or "sk_test_leaseline_local"
    if key.startswith("pk_live_") != secret.startswith(("sk_live_", "rk_live_")):
        raise ConfigError("LEASELINE_STRIPE_PUBLISHABLE_KEY and LEASELINE_STRIPE_SECRET_KEY must both be test keys "
                          "or both live keys")
    api_base = env.get("LEASELINE_STRIPE_API_BASE", "" if mode == "production" else "http://127.0.0.1:8420")
    if is_local_endpoint(api_base):
        raise ConfigError("LEASELINE_STRIPE_PUBLISHABLE_KEY needs Stripe's API (leave LEASELINE_STRIPE_API_BASE "
                          "empty): Stripe.js cannot reach a local emulator; without the key the page uses TEST MODE")
    return key


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number between {low} and {high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a number between {low} and {high}")
    return value


def _oidc_clients(value: str) -> tuple[tuple[str, str, str], ...]:
    """``LEASELINE_OIDC_CLIENTS``: a JSON object issuer → {client_id, client_secret}; empty: none."""
    if not value.strip():
        return ()
    message = ('LEASELINE_OIDC_CLIENTS must be a JSON object like '
               '{"https://issuer": {"client_id": "...", "client_secret": "..."}}')
    try:
        data = json.loads(value)
    except ValueError:
        raise ConfigError(message) from None
    if not isinstance(data, dict):
        raise ConfigError(message)
    out = []
    for issuer, creds in data.items():
        if not (isinstance(creds, dict) and isinstance(creds.get("client_id"), str) and creds["client_id"]
                and isinstance(creds.get("client_secret"), str) and creds["client_secret"]):
            raise ConfigError(message)
        out.append((str(issuer).rstrip("/"), creds["client_id"], creds["client_secret"]))
    return tuple(out)
