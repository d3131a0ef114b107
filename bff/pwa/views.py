"""Routes of the PWA shell."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint
from flask import current_app
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import send_from_directory
from flask import url_for
from sqlalchemy import text

from bff import LOCALES
from bff.auth.session import requires
from bff.caching import public_asset
from bff.invitations.services import mask_mobile
from bff.pwa import desk
from bff.services import services

bp = Blueprint("pwa", __name__)


@bp.get("/")
def home() -> Any:
    return redirect(url_for("plans.vehicles"))


@bp.get("/start")
@requires("account.view")
def landing() -> Any:
    """Where sign-in leads when no page was asked for: the work of the signed-in role (bff/pwa/desk.py)."""
    return redirect(url_for(desk.landing(g.user)), 303)


@bp.get("/desk")
@requires("applications.edit")
def work() -> Any:
    """The dealer staff's work: today's applications, what waits for them, their customers on a shared plan."""
    return render_template("desk/index.html", work=desk.desk(g.user), mask=mask_mobile)


@bp.get("/manifest.webmanifest")
@public_asset
def manifest() -> Any:
    response = make_response(render_template("manifest.webmanifest"))
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
@public_asset
def service_worker() -> Any:
    """The service worker, served from the root so its scope is the whole app; never cached by HTTP."""
    response = send_from_directory(current_app.static_folder or "", "sw.js", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/offline")
def offline() -> Any:
    return render_template("offline.html")


@bp.post("/locale")
def set_locale() -> Any:
    """Remember the chosen language (a POST with CSRF: it changes state, if only a preference)."""
    chosen = request.form.get("locale", "zh_CN")
    target = request.form.get("next") or ""
    if not is_local_path(target):
        target = url_for("plans.vehicles")
    response = redirect(target)
    if chosen in LOCALES:
        response.set_cookie("locale", chosen, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                            secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def is_local_path(target: str) -> bool:
    r"""True for a path on this site. Browsers drop tabs and newlines and read ``\`` as ``/``, so
    ``/``, a tab, ``/evil.example`` is ``//evil.example``: any control character or backslash is refused."""
    if not target.startswith("/") or "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and not target.startswith("//")


@bp.get("/healthz")
def healthz() -> Any:
    with services().db.session() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}
