"""Sign-in pages: password, second factor, sign-out, and the signed-in user's own page."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _

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


@bp.get("/login")
def login() -> Any:
    return render_template("auth/login.html", next=_next(), email="", error=None,
                           ended=request.args.get("ended"))


@bp.post("/login")
@limiter.limit(login_rate, methods=["POST"])
def login_post() -> Any:
    email = request.form.get("email", "").strip()[:254]
    password = request.form.get("password", "")[:1024]
    try:
        ok = services().auth.check_password(email, password, client())
    except SignInFailed:
        message = _("The email or password is wrong, or the account is locked. Try again in a few minutes.")
        return render_template("auth/login.html", next=_next(), email=email, error=message), 401
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
    if g.get("user") is not None:
        services().auth.sign_out(g.user, client())
    end_session()
    return redirect(url_for("auth.login"))


@bp.get("/account")
@requires("account.view")
def account() -> Any:
    dealer = services().accounts.dealer(g.user.dealer_id) if g.user.dealer_id else None
    return render_template("auth/account.html", user=g.user, dealer=dealer)
