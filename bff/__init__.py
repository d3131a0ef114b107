"""The Leaseline BFF: a Flask app serving the PWA (Jinja + htmx) and the JSON API ``/api/v1``."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask import current_app
from flask import g
from flask import request
from flask.typing import ResponseReturnValue

from bff import caching
from bff import filters
from bff import reloads
from bff import unavailable
from bff.auth import cookies
from bff.auth import oidc
from bff.auth import session
from bff.bootstrap import bootstrap
from bff.config import Settings
from bff.errors import register_error_handlers
from bff.extensions import babel
from bff.extensions import csrf
from bff.extensions import htmx
from bff.extensions import limiter
from infra.logs import accept_request_id
from infra.logs import request_id

PWA = Path(__file__).resolve().parent.parent / "pwa"
LOCALES = ("zh_CN", "en")
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob: {s3}",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
#: What Stripe.js and its Payment Element need (https://docs.stripe.com/security/guide#content-security-policy):
#: its script and the frames it opens (the form, 3-D Secure, redirects through hooks.stripe.com), and its calls
#: to Stripe's API. Only on a page that loads Stripe.js (its view sets ``g.loads_stripe_js``) and only when the
#: publishable key is set; every other response keeps CSP above. (maps.googleapis.com, which the guide lists
#: for the Address Element's autocomplete, is left out: no Address Element here.)
STRIPE_JS_SOURCES = {
    "script-src": "https://js.stripe.com https://*.js.stripe.com",
    "frame-src": "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com",
    "connect-src": "https://api.stripe.com",
}


def with_sources(csp: str, extra: dict[str, str]) -> str:
    """``csp`` with ``extra`` sources appended to their directives (a directive it lacks is added after
    ``'self'``, which is what it inherited from ``default-src``)."""
    directives = [d.split(" ", 1) for d in csp.split("; ")]
    names = [d[0] for d in directives]
    out = [f"{d[0]} {d[1]} {extra[d[0]]}" if d[0] in extra else " ".join(d) for d in directives]
    out += [f"{name} 'self' {sources}" for name, sources in extra.items() if name not in names]
    return "; ".join(out)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the BFF. ``config`` overrides settings (tests pass ``database_url`` etc.)."""
    settings = Settings.from_env()
    if config:
        settings = Settings(**{**settings.__dict__, **{k: v for k, v in config.items() if k in settings.__dict__}})
    app = Flask(__name__, template_folder=str(PWA / "templates"), static_folder=str(PWA / "static"),
                static_url_path="/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SETTINGS=settings,
        TESTING=settings.env == "test",
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).with_name("translations")),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Secure is decided per request (every host but localhost) for the session cookie and every other
        # cookie by bff/auth/cookies.py, so Flask's app-wide switch is off.
        SESSION_COOKIE_SECURE=False,
        WTF_CSRF_TIME_LIMIT=None,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        JSON_SORT_KEYS=False,
    )
    if config:
        app.config.update({k: v for k, v in config.items() if k.isupper()})
    app.extensions["leaseline"] = bootstrap(settings)
    from bff.applications.views import upload_limits

    app.before_request(upload_limits)  # before CSRF protection reads (and so size-checks) the body
    register_extensions(app)
    oidc.register(app, settings)
    register_blueprints(app)
    register_error_handlers(app)
    unavailable.register(app)  # the database away: a 503 that needs nothing from it
    reloads.register(app)  # a form's POST URL reloaded (GET): its page, not a 405
    register_security_headers(app)
    caching.register(app)
    filters.register(app)
    return app


def select_locale() -> str:
    """The user's choice (``?lang=``, or the ``locale`` cookie), else the configured default (zh_CN)."""
    chosen = request.args.get("lang") or request.cookies.get("locale")
    return chosen if chosen in LOCALES else current_app.config["SETTINGS"].default_locale


def register_extensions(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    session.register(app)
    cookies.register(app)

    @app.before_request
    def _request_id() -> None:
        # one id per request, from the caller's X-Request-Id when sane; it travels to the risk service
        g.request_id = accept_request_id(request.headers.get("X-Request-Id"))
        request_id.set(g.request_id)

    @app.after_request
    def _echo_request_id(response: Any) -> ResponseReturnValue:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response


def register_blueprints(app: Flask) -> None:
    from bff.api.views import bp as api_bp
    from bff.applications.card_side import bp as card_side_bp
    from bff.applications.views import bp as applications_bp
    from bff.auth.views import bp as auth_bp
    from bff.documents.views import bp as documents_bp
    from bff.evidence.views import bp as evidence_bp
    from bff.invitations.views import bp as invitations_bp
    from bff.invitations.views import dev_bp
    from bff.ops.views import bp as ops_bp
    from bff.payments.views import bp as payments_bp
    from bff.payments.views import stripe_webhook
    from bff.plans.views import bp as plans_bp
    from bff.privacy.views import bp as privacy_bp
    from bff.pwa.views import bp as pwa_bp
    from bff.reviews.views import bp as reviews_bp
    from bff.staff.views import bp as staff_bp
    from bff.verify.views import bp as verify_bp

    app.register_blueprint(pwa_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(invitations_bp)
    if app.config["SETTINGS"].env != "production":  # the SMS sandbox's outbox: development and tests only
        app.register_blueprint(dev_bp)
    app.register_blueprint(plans_bp)
    app.register_blueprint(applications_bp)
    app.register_blueprint(card_side_bp)  # the ID card's side, checked as soon as a photo is chosen
    app.register_blueprint(reviews_bp)
    app.register_blueprint(documents_bp)  # documents on request: the officer asks, the applicant uploads
    app.register_blueprint(verify_bp)
    app.register_blueprint(evidence_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(privacy_bp)  # the person's rights over their data; /ops/privacy
    app.register_blueprint(__import__("bff.payments.ops_views", fromlist=["bp"]).bp)  # /payments, leases
    app.register_blueprint(__import__("bff.servicing.lease_views", fromlist=["bp"]).bp)  # /leases/<id>: 我的租赁
    app.register_blueprint(__import__("bff.servicing.collections", fromlist=["bp"]).bp)  # /servicing/collections
    app.register_blueprint(__import__("bff.servicing.releases", fromlist=["bp"]).bp)  # /servicing/releases: 抵押解除
    app.register_blueprint(__import__("bff.servicing.lease_documents", fromlist=["bp"]).bp)  # a lease's documents
    app.register_blueprint(__import__("bff.servicing.credit_reports", fromlist=["bp"]).bp)  # /servicing/credit-reports
    app.register_blueprint(__import__("bff.servicing.pay", fromlist=["bp"]).bp)  # /leases/<id>/pay: paying a rent
    app.register_blueprint(__import__("bff.servicing.prepay", fromlist=["bp"]).bp)  # /leases/<id>/prepay: 部分提前还款
    app.register_blueprint(__import__("bff.servicing.settle", fromlist=["bp"]).bp)  # /leases/<id>/settlement: 提前结清
    app.register_blueprint(__import__("bff.servicing.mandate_views", fromlist=["bp"]).bp)  # automatic collection
    app.register_blueprint(__import__("bff.servicing.end_of_term", fromlist=["bp"]).bp)  # end of term, returns
    app.register_blueprint(__import__("bff.servicing.invoices", fromlist=["bp"]).bp)  # e-invoices (数电发票)
    app.register_blueprint(__import__("bff.books.views", fromlist=["bp"]).bp)  # /books: month close, reports
    app.register_blueprint(api_bp)
    # The JSON API is stateless (no cookie authentication), so there is no session to forge a request
    # against; later issues authenticate it with bearer tokens, which CSRF does not concern.
    csrf.exempt(api_bp)
    # Stripe's webhook carries no session: its signature (the endpoint secret) is what authenticates it
    csrf.exempt(stripe_webhook)


def register_security_headers(app: Flask) -> None:
    # reviewers' KYC images come from short-lived presigned URLs of the object store
    endpoint = urlsplit(app.config["SETTINGS"].s3_endpoint_url or "")
    csp = CSP.replace(" {s3}", f" {endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else "")
    stripe_csp = with_sources(csp, STRIPE_JS_SOURCES) if app.config["SETTINGS"].stripe_publishable_key else csp

    @app.after_request
    def _headers(response: Any) -> ResponseReturnValue:
        response.headers.setdefault("Content-Security-Policy", stripe_csp if g.get("loads_stripe_js") else csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
        if app.config["SETTINGS"].env == "production":
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if getattr(g, "branches_on_htmx", False):
            response.vary.add("HX-Request")
        return response
