"""我的租赁 (my leases) pages: the mobile number, the code, the customer's applications (bff/invitations/returning.py).

Mounted inside the invitations blueprint (its endpoints are ``invitations.returning.*``)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_limiter.util import get_remote_address

from bff.auth.session import client
from bff.extensions import limiter
from bff.invitations.returning import Pending
from bff.invitations.returning import ReturningCustomers
from bff.invitations.returning import normalise
from bff.pwa.views import is_local_path
from bff.services import services
from infra.db.models import utcnow
from infra.invitations import SqlReturningCodes

bp = Blueprint("returning", __name__)
PENDING = "returning_code"  # the session's pending code (bff.invitations.returning.Pending)
SIGNED_IN = "customer_mobile"  # the look-up hash of the number a customer confirmed on this device
NEXT = "returning_next"  # the page of ours a signed-out customer was sent here from (a text message's link)
REFUSED = "returning_code_refused"  # why the code just typed was refused ("wrong", "spent"), said once by the form
TOO_SOON = "returning_code_too_soon"  # a code asked for within the minute after the last: none sent, said once
_APPLICATION = re.compile(r"/applications/(?P<id>[0-9a-f-]{36})(/.*)?")


def returning() -> ReturningCustomers:
    svc = services()
    return ReturningCustomers(svc.applications.repo, svc.invitations_repo, SqlReturningCodes(svc.db, svc.vault),
                              svc.jobs, svc.audit, svc.vault, str(current_app.secret_key))


def signed_in_hash() -> str | None:
    """The confirmed number of this device's customer (by this sign-in, or by their invitation's code), or None."""
    if session.get(SIGNED_IN):
        return str(session[SIGNED_IN])
    invitation_id = session.get("customer_invitation")
    inv = services().invitations_repo.get(str(invitation_id)) if invitation_id else None
    return returning().mobile_hash(inv.mobile) if inv is not None and inv.opened_at is not None else None


def _per_number() -> str:
    """The rate-limit key of the number typed (as its keyed hash: the limiter's store holds no phone numbers), or
    of the number this device asked a code for (a new code from the code page). Input that is no number counts
    against the address that sent it (one bucket for all would let anyone shut the form for everybody)."""
    if "mobile" not in request.form:
        pending = Pending.load(session.get(PENDING))
        return "returning:" + (pending.mobile_hash if pending else "invalid:" + get_remote_address())
    mobile = normalise(request.form.get("mobile", ""))
    return "returning:" + (returning().mobile_hash(mobile) if mobile else "invalid:" + get_remote_address())


def _pending_number() -> str:
    """The rate-limit key of a code check: the number it was asked for, however many devices and addresses try."""
    pending = Pending.load(session.get(PENDING))
    return "returning-check:" + (pending.mobile_hash if pending else "none:" + get_remote_address())


@bp.get("/mine")
def mine() -> Any:
    mobile_hash = signed_in_hash()
    if mobile_hash is None:
        return redirect(url_for("invitations.returning.sign_in"))
    return render_template("invitations/mine.html", apps=returning().owned(mobile_hash))


def _sign_in_page(mobile: str = "", error: bool = False, status: int = 200) -> tuple[str, int]:
    return render_template("invitations/mine_sign_in.html", mobile=mobile, error=error), status


@bp.get("/mine/sign-in")
def sign_in() -> Any:
    target = request.args.get("next", "")
    if is_local_path(target):
        session[NEXT] = target[:500]
    return _sign_in_page()


# Per number (however many addresses ask for it) and per address (however many numbers it tries).
@bp.post("/mine/sign-in")
@limiter.limit("5 per hour", key_func=_per_number)
@limiter.limit("20 per hour")
def send_code() -> Any:
    if "mobile" not in request.form:  # a new code from the code page, for the number asked before
        pending = Pending.load(session.get(PENDING))
        mobile = returning().codes.mobile(pending.mobile_hash) if pending else None
        if mobile is None:
            return redirect(url_for("invitations.returning.sign_in"), 303)
    else:
        typed = request.form.get("mobile", "")[:20]
        mobile = normalise(typed)
        if mobile is None:
            return _sign_in_page(typed, error=True, status=422)
    asked = utcnow()
    pending = returning().send_code(mobile, client())
    session[PENDING] = pending.dump()
    sent_at = returning().codes.sent_at(pending.mobile_hash)
    if sent_at is not None and sent_at < asked:  # the last code went less than a minute ago: no new one now
        session[TOO_SOON] = True  # the code page says so, and how long to wait, rather than a code "sent"
    return redirect(url_for("invitations.returning.code"), 303)


def _code_page(pending: Pending | None, error: str | None = None, status: int = 200,
               too_soon: bool = False) -> tuple[str, int]:
    resend = returning().resend(pending, url_for("invitations.returning.send_code")) if pending else None
    return render_template("invitations/mine_code.html", pending=pending, resend=resend, error=error,
                           too_soon=too_soon and resend is not None and resend.wait > 0), status


@bp.get("/mine/code")
def code() -> Any:
    pending = Pending.load(session.get(PENDING))
    # a wrong code's error, said once: the refresh after it shows the form (popped only when there: no write else)
    refused = session.pop(REFUSED) if REFUSED in session else None
    too_soon = session.pop(TOO_SOON) if TOO_SOON in session else False  # no code sent just now: said once too
    if pending is None:
        return redirect(url_for("invitations.returning.sign_in"))
    return _code_page(pending, refused if refused in ("wrong", "spent") else None, too_soon=too_soon is True)


# Per number (its tries are also counted in the database, MAX_TRIES a code) and per address.
@bp.post("/mine/code")
@limiter.limit("10 per hour", key_func=_pending_number)
@limiter.limit("30 per minute")
def check_code() -> Any:
    pending = Pending.load(session.get(PENDING))
    if pending is None:  # never asked, or used: a new code is needed
        return _code_page(None, "spent", 422)
    ok, left = returning().check(pending, request.form.get("code", "")[:12], client())
    if not ok:
        # Post/Redirect/Get (as the invitation's code form): the form again by GET, its error carried once by the
        # session (never in the URL), so that a refresh asks for the page instead of posting the same code again,
        # which counted another try; only a code typed anew counts (MAX_TRIES a code, unchanged)
        session[REFUSED] = "wrong" if left else "spent"
        return redirect(url_for("invitations.returning.code"), 303)
    target = str(session.get(NEXT, ""))
    session.clear()  # a fresh session (and id) for the customer: nothing of an earlier one survives on this device
    session[SIGNED_IN] = pending.mobile_hash
    session.permanent = True
    return redirect(_landing(target, pending.mobile_hash), 303)


def _landing(target: str, mobile_hash: str) -> str:
    """Where a customer just signed in goes: the page of ours they came from (an application's page opened as
    the customer of that application, when it is theirs), else 我的租赁."""
    if not is_local_path(target):
        return url_for("invitations.returning.mine")
    found = _APPLICATION.fullmatch(target.split("?", 1)[0])
    if found is not None:
        invitation_id = returning().invitation_for(mobile_hash, found["id"])
        if invitation_id is None:
            return url_for("invitations.returning.mine")
        session["customer_invitation"] = invitation_id
    return target


@bp.post("/mine/open/<application_id>")
def open_application(application_id: str) -> Any:
    """Open one of the customer's applications: this device acts as the customer of the invitation it came from
    (bff/applications/access.py), at that dealer."""
    mobile_hash = signed_in_hash()
    if mobile_hash is None:
        return redirect(url_for("invitations.returning.sign_in"), 303)
    invitation_id = returning().invitation_for(mobile_hash, application_id)
    if invitation_id is None:
        abort(404)
    session[SIGNED_IN] = mobile_hash
    session["customer_invitation"] = invitation_id
    return redirect(url_for("applications.detail", application_id=application_id[:36]), 303)
