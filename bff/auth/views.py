"""Sign-in pages: password, second factor, sign-out, and the signed-in user's own page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import pyotp
import qrcode
import qrcode.image.svg
from authlib.integrations.base_client import OAuthError
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _

from bff.auth import oidc
from bff.auth.roles import TOTP_REQUIRED
from bff.auth.services import SignInFailed
from bff.auth.session import client
from bff.auth.session import end_session
from bff.auth.session import requires
from bff.auth.session import start_session
from bff.extensions import limiter
from bff.pwa.views import is_local_path
from bff.services import services
from infra.accounts import Staff

bp = Blueprint("auth", __name__)
PENDING_SECONDS = 300  # the second factor must follow the password within five minutes
ENROL_SECONDS = 900  # setting up an authenticator app takes longer


def login_rate() -> str:
    return str(current_app.config["SETTINGS"].login_rate)


def _next() -> str:
    target = request.values.get("next", "")
    return target if is_local_path(target) else url_for("pwa.landing")


def _login_page(error: str | None = None, email: str = "", status: int = 200) -> Any:
    groups = [group for group in services().accounts.groups() if group.oidc_issuer]
    return render_template("auth/login.html", next=_next(), email=email, error=error,
                           ended=request.args.get("ended"), oidc=oidc.client() is not None,
                           oidc_groups=groups), status


@bp.get("/login")
def login() -> Any:
    return _login_page()


def _flow_issuer(group_id: str | None) -> str | None:
    """The issuer of a company sign-in: a dealer group's own, or the default one (group_id None)."""
    if group_id is None:
        return oidc.default_issuer() or None
    group = services().accounts.group(group_id)
    return group.oidc_issuer if group is not None else None


def _unavailable() -> Any:
    return _login_page(_("Company sign-in is unavailable right now. Please use your Leaseline password."),
                       status=503)


def _start_oidc(group_id: str | None) -> Any:
    """Start the authorization code flow (PKCE S256, state and nonce kept in the session)."""
    issuer = _flow_issuer(group_id)
    if issuer is None:
        abort(404)
    provider = oidc.client_for(issuer)
    if provider is None:  # an issuer without client credentials: ops configured half of it
        current_app.logger.error("No OpenID client credentials for %s (LEASELINE_OIDC_CLIENTS)", issuer)
        return _unavailable()
    session["oidc_next"] = _next()
    session["oidc_group"] = group_id or ""
    try:
        return provider.authorize_redirect(url_for("auth.oidc_callback", _external=True))
    except Exception:  # noqa: BLE001 — the provider is unreachable or its metadata broken: say so, stay usable
        current_app.logger.exception("OpenID provider unavailable")
        return _unavailable()


@bp.get("/login/oidc")
@limiter.limit(login_rate)
def login_oidc() -> Any:
    """Company sign-in with the default issuer (the lessor's, and groups without their own)."""
    return _start_oidc(None)


@bp.get("/login/oidc/<group_id>")
@limiter.limit(login_rate)
def login_oidc_group(group_id: str) -> Any:
    """Company sign-in with a dealer group's own issuer: only that group's staff are let in."""
    return _start_oidc(group_id[:36])


@bp.get("/auth/oidc/callback")
def oidc_callback() -> Any:
    """One redirect URI for every issuer: the session says which flow (and so which client) this is."""
    if "oidc_group" not in session:
        services().auth.oidc_refused("no_flow", client())
        return _login_page(_("Company sign-in did not complete. Please try again."), status=400)
    group_id = str(session.pop("oidc_group")) or None
    issuer = _flow_issuer(group_id)
    provider = oidc.client_for(issuer)
    if issuer is None or provider is None:
        abort(404)
    try:
        # RFC 9207: a provider that names itself in the response must be the one this flow went to
        # (a mix-up attack swaps issuers behind one redirect URI).
        if request.args.get("iss") not in (None, issuer):
            raise OAuthError(error="issuer_mismatch")
        token = provider.authorize_access_token()
        claims = dict(token.get("userinfo") or {})  # the validated ID token's claims
        if "email" not in claims:  # many providers put only "sub" in the ID token: ask the userinfo endpoint
            info = provider.userinfo(token=token)
            if claims.get("sub") and info.get("sub") != claims["sub"]:
                raise OAuthError(error="userinfo_subject_mismatch")
            claims.update(info)
    except OAuthError as exc:  # a wrong or replayed state, a refused code, a bad ID token
        services().auth.oidc_refused(str(exc.error or "oauth_error"), client())
        return _login_page(_("Company sign-in did not complete. Please try again."), status=400)
    except Exception:  # noqa: BLE001 — the provider went away mid-flow
        current_app.logger.exception("OpenID provider failed during the callback")
        return _unavailable()
    user = services().auth.oidc_sign_in(issuer, str(claims.get("sub", "")), str(claims.get("email", "")),
                                        bool(claims.get("email_verified")), client(), group_id=group_id)
    if user is None:
        return _login_page(_("Your company account is not invited to Leaseline. Ask your dealer admin."), status=403)
    target = str(session.get("oidc_next") or url_for("pwa.landing"))
    id_token = token.get("id_token")
    start_session(user)
    session.update(oidc_id_token=id_token, oidc_issuer=issuer)
    return redirect(target if is_local_path(target) else url_for("pwa.landing"))


@bp.post("/login")
@limiter.limit(login_rate, methods=["POST"])
def login_post() -> Any:
    email = request.form.get("email", "").strip()[:254]
    password = request.form.get("password", "")[:1024]
    try:
        ok = services().auth.check_password(email, password, client())
    except SignInFailed:
        message = _("The email or password is wrong, or the account is locked. Try again in a few minutes.")
        return _login_page(message, email, 401)
    if ok.needs_second_factor:
        session.clear()
        session.update(pending_uid=ok.user.id, pending_at=int(time.time()), pending_next=_next())
        if not ok.user.totp_enabled:  # a newly invited lessor staff member: set up the authenticator first
            return redirect(url_for("auth.totp_enrol"))
        return redirect(url_for("auth.second_factor"))
    start_session(ok.user)
    return redirect(_next())


@bp.get("/login/second-factor")
def second_factor() -> Any:
    if not session.get("pending_uid"):
        return redirect(url_for("auth.login"))
    pending = services().accounts.get(str(session["pending_uid"]))
    if pending is not None and not pending.totp_enabled:
        return redirect(url_for("auth.totp_enrol"))
    return render_template("auth/second_factor.html", error=None, recovery=request.args.get("recovery") == "1")


@bp.post("/login/second-factor")
@limiter.limit(login_rate, methods=["POST"])
def second_factor_post() -> Any:
    uid = session.get("pending_uid")
    if not uid or int(time.time()) - int(session.get("pending_at", 0)) > PENDING_SECONDS:
        session.clear()
        return redirect(url_for("auth.login"))
    try:
        user = services().auth.check_second_factor(str(uid), request.form.get("code", "")[:64], client())
    except SignInFailed:
        message = _("That code is not valid. Enter the 6-digit code from your authenticator app, or a recovery code.")
        return render_template("auth/second_factor.html", error=message,
                               recovery=request.form.get("recovery") == "1"), 401
    target = str(session.get("pending_next") or url_for("pwa.landing"))
    start_session(user)
    return redirect(target if is_local_path(target) else url_for("pwa.landing"))


def _pending_enrolment() -> tuple[Staff, str] | None:
    """The account between password and first authenticator setup, and the secret offered to it.

    The secret is derived (HMAC of the app key, the account and a random nonce in the session), so the
    session cookie never carries it and the page shows the same one until it is confirmed."""
    uid = session.get("pending_uid")
    if not uid or int(time.time()) - int(session.get("pending_at", 0)) > ENROL_SECONDS:
        return None
    user = services().accounts.get(str(uid))
    if user is None or not user.active or user.totp_enabled or user.role not in TOTP_REQUIRED:
        return None
    nonce = session.setdefault("enrol_nonce", secrets.token_urlsafe(16))
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), f"totp-enrol|{user.id}|{nonce}".encode(),
                      hashlib.sha256).digest()
    return user, base64.b32encode(digest[:20]).decode()  # 160 bits, RFC 4226's recommended length


def _enrol_page(user: Staff, secret: str, error: str | None = None, status: int = 200) -> Any:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Leaseline")
    svg = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10).to_string()
    qr = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()  # an <img>: CSP allows data: images
    spaced = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("auth/totp_enrol.html", qr=qr, secret=spaced, error=error), status


@bp.get("/login/totp-setup")
def totp_enrol() -> Any:
    """After their password, lessor staff without an authenticator scan a QR code to set one up."""
    pending = _pending_enrolment()
    if pending is None:
        return redirect(url_for("auth.second_factor" if session.get("pending_uid") else "auth.login"))
    return _enrol_page(*pending)


@bp.post("/login/totp-setup")
@limiter.limit(login_rate, methods=["POST"])
def totp_enrol_post() -> Any:
    """Confirm one code from the new authenticator; show the recovery codes once, then sign in."""
    pending = _pending_enrolment()
    if pending is None:
        if g.get("user") is not None:  # already signed in (e.g. the form posted twice): nothing to do
            return redirect(url_for("auth.account"))
        session.clear()
        return redirect(url_for("auth.login"))
    user, secret = pending
    try:
        user, codes = services().auth.enrol_totp(user.id, secret, request.form.get("code", "")[:64], client())
    except SignInFailed:
        return _enrol_page(user, secret, _("That code is not valid. Enter the 6-digit code your authenticator app "
                                           "shows now."), 401)
    target = str(session.get("pending_next") or url_for("pwa.landing"))
    start_session(user)
    return render_template("auth/recovery_codes.html", codes=codes,
                           target=target if is_local_path(target) else url_for("pwa.landing"))


@bp.post("/logout")
def logout() -> Any:
    """Sign out here, and at the identity provider too when the session came from it (RP-initiated logout)."""
    if g.get("user") is not None:
        services().auth.sign_out(g.user, client())
    id_token = session.get("oidc_id_token")
    issuer = session.get("oidc_issuer")
    end_session()
    provider = oidc.client_for(str(issuer)) if issuer else None
    if id_token and provider is not None:
        try:
            end_point = provider.load_server_metadata().get("end_session_endpoint")
        except Exception:  # noqa: BLE001 — the provider is down: the local sign-out still happened
            end_point = None
        if end_point:
            query = urlencode({"id_token_hint": id_token,
                               "post_logout_redirect_uri": url_for("auth.login", _external=True)})
            return redirect(f"{end_point}?{query}")
    return redirect(url_for("auth.login"))


@bp.post("/account/sign-out-everywhere")
@requires("account.view")
def sign_out_everywhere() -> Any:
    """End every session of the signed-in user: other devices, forgotten browsers, copied cookies, and this one."""
    services().auth.sign_out_everywhere(g.user, client())
    end_session()
    return redirect(url_for("auth.login", ended="everywhere"), 303)


@bp.get("/account")
@requires("account.view")
def account() -> Any:
    dealer = services().accounts.dealer(g.user.dealer_id) if g.user.dealer_id else None
    return render_template("auth/account.html", user=g.user, dealer=dealer,
                           sessions=services().auth.session_count(g.user))
