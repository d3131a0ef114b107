"""Sign-in pages: password, second factor, sign-out, and the signed-in user's own page."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

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
from bff.auth.services import SignInFailed
from bff.auth.session import client
from bff.auth.session import end_session
from bff.auth.session import requires
from bff.auth.session import start_session
from bff.extensions import limiter
from bff.pwa.views import is_local_path
from bff.services import services

bp = Blueprint("auth", __name__)
PENDING_SECONDS = 300  # the second factor must follow the password within five minutes


def login_rate() -> str:
    return str(current_app.config["SETTINGS"].login_rate)


def _next() -> str:
    target = request.values.get("next", "")
    return target if is_local_path(target) else url_for("auth.account")


def _login_page(error: str | None = None, email: str = "", status: int = 200) -> Any:
    return render_template("auth/login.html", next=_next(), email=email, error=error,
                           ended=request.args.get("ended"), oidc=oidc.client() is not None), status


@bp.get("/login")
def login() -> Any:
    return _login_page()


@bp.get("/login/oidc")
@limiter.limit(login_rate)
def login_oidc() -> Any:
    """Start the authorization code flow (PKCE S256, state and nonce kept in the session)."""
    provider = oidc.client()
    if provider is None:
        abort(404)
    session["oidc_next"] = _next()
    try:
        return provider.authorize_redirect(url_for("auth.oidc_callback", _external=True))
    except Exception:  # noqa: BLE001 — the provider is unreachable or its metadata broken: say so, stay usable
        current_app.logger.exception("OpenID provider unavailable")
        return _login_page(_("Company sign-in is unavailable right now. Please use your Leaseline password."),
                           status=503)


@bp.get("/auth/oidc/callback")
def oidc_callback() -> Any:
    provider = oidc.client()
    if provider is None:
        abort(404)
    settings = current_app.config["SETTINGS"]
    try:
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
        return _login_page(_("Company sign-in is unavailable right now. Please use your Leaseline password."),
                           status=503)
    user = services().auth.oidc_sign_in(settings.oidc_issuer, str(claims.get("sub", "")),
                                        str(claims.get("email", "")), bool(claims.get("email_verified")), client())
    if user is None:
        return _login_page(_("Your company account is not invited to Leaseline. Ask your dealer admin."), status=403)
    target = str(session.get("oidc_next") or url_for("auth.account"))
    id_token = token.get("id_token")
    start_session(user)
    session["oidc_id_token"] = id_token
    return redirect(target if is_local_path(target) else url_for("auth.account"))


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
        return redirect(url_for("auth.second_factor"))
    start_session(ok.user)
    return redirect(_next())


@bp.get("/login/second-factor")
def second_factor() -> Any:
    if not session.get("pending_uid"):
        return redirect(url_for("auth.login"))
    return render_template("auth/second_factor.html", error=None)


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
        return render_template("auth/second_factor.html", error=message), 401
    target = str(session.get("pending_next") or url_for("auth.account"))
    start_session(user)
    return redirect(target if is_local_path(target) else url_for("auth.account"))


@bp.post("/logout")
def logout() -> Any:
    """Sign out here, and at the identity provider too when the session came from it (RP-initiated logout)."""
    if g.get("user") is not None:
        services().auth.sign_out(g.user, client())
    id_token = session.get("oidc_id_token")
    end_session()
    provider = oidc.client()
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


@bp.get("/account")
@requires("account.view")
def account() -> Any:
    dealer = services().accounts.dealer(g.user.dealer_id) if g.user.dealer_id else None
    return render_template("auth/account.html", user=g.user, dealer=dealer)
