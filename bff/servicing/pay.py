"""Paying a rent from the customer's phone (issue 18 §3): ``/leases/<lease_id>/pay``.

``GET`` shows what the lease owes now — each rent due (a rent due today among them: the close marks it due only once
the day has ended), partly paid or overdue with its late charge — and the payment form: everything due now, or one
chosen instalment (``?instalment=<id>``; the next rent not yet due may be paid ahead). ``POST`` creates the
payment: one attempt per form the page served (the hidden ``token`` is in the attempt's key, so a double tap or the
form sent again charges once), a Stripe PaymentIntent whose Idempotency-Key is the attempt's key
(bff/servicing/collect.py ``RentCollection.pay_by_hand``). As on the down payment's page (bff/payments/views.py):
without ``LEASELINE_STRIPE_PUBLISHABLE_KEY`` the page says TEST MODE and confirms
server-side with one of Stripe's test cards (3-D Secure answered by the local test bank); with it, the page mounts
Stripe.js's Payment Element for the attempt's intent and Stripe sends the browser back to ``…/pay/return``, where
the server asks Stripe. The payment is booked into the lease on Stripe's answer or its webhook, whichever comes first
(once). A declined card never locks anyone out: each try is a new attempt.

Who may pay (:func:`_lease_for`): the lessee — the customer signed in on this device (their invitation's session, or
我的租赁's mobile number and code) whose application the lease is, started through an invitation confirmed by a code
to that very number —, and staff of the lease's dealer who may edit its application (a salesperson: their own
applications), paying with the customer in the showroom. A staff role that may not (the lessor's: risk, ops): 403
(:func:`payer_or_staff`); anyone else: 404, as if there were no such lease; signed out: 我的租赁's sign-in, then back
here. The per-lease limit on the requests that reach Stripe counts only a payer's. CSRF on every POST (the app's
CSRFProtect); bad input is a 4xx page.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from bff.applications.access import staff_scope
from bff.auth.roles import allowed
from bff.extensions import limiter
from bff.invitations.returning_views import SIGNED_IN
from bff.invitations.returning_views import returning
from bff.invitations.returning_views import signed_in_hash
from bff.payments.checkout import TEST_METHODS
from bff.payments.declines import why_not_paid
from bff.payments.views import REFUSED
from bff.payments.views import UNAVAILABLE
from bff.reloads import keep_once
from bff.reloads import take_once
from bff.rendering import in_locale
from bff.services import services
from bff.servicing import stripe_pages
from bff.servicing.collect import CannotPay
from bff.servicing.collect import PayOutcome
from bff.servicing.collect import RentCollection
from bff.servicing.collect import rent_collection
from bff.servicing.lease_views import customer_or_staff
from infra.accounts import Staff
from infra.applications import Scope
from infra.collections import Attempt
from infra.db.models import LeaseRow
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable
from infra.servicing import ACTIVE

log = logging.getLogger(__name__)
bp = Blueprint("rent_pay", __name__)
#: the requests that may call Stripe, per lease (paying, coming back from the Payment Element, the test bank)
STRIPE_RATE = "20 per 10 minutes"


#: staff who pay a rent with the customer in the showroom: the dealer's, on the applications they may edit
PERMISSION = "applications.edit"


def _per_lease() -> str:
    return f"rent:{(request.view_args or {}).get('lease_id', '')}"


#: counted only for someone who may pay the lease (:func:`_lease_for` found them its payer): a stranger's requests —
#: signed out, another customer, another dealer — never use up its lessee's
stripe_rate = limiter.shared_limit(STRIPE_RATE, scope="rent-stripe", key_func=_per_lease,
                                   deduct_when=lambda response: g.get("rent_payer") is not None)


def collection() -> RentCollection:
    """The rent collection of this app's services and settings."""
    return rent_collection(services(), current_app.config["SETTINGS"])


def _lease_for(lease_id: str) -> LeaseRow:
    """The lease, if the visitor may pay it: its lessee signed in on this device, or staff of its dealer who may edit
    its application; 404 for anyone else (a lease that is not theirs looks like none)."""
    svc = services()
    lease = collection().repo.lease(lease_id) if len(lease_id) <= 36 else None
    if lease is None:
        abort(404)
    user: Staff | None = g.get("user")
    if user is not None:
        if (user.lessor_side or user.dealer_id != lease.dealer_id or not allowed(user, PERMISSION)
                or svc.applications.repo.get(lease.application_id, staff_scope(user)) is None):
            abort(404)
        g.rent_payer = "staff"
        return lease
    mobile_hash = signed_in_hash()
    invitation_id = returning().invitation_for(mobile_hash, lease.application_id) if mobile_hash else None
    if mobile_hash is None or invitation_id is None or svc.applications.repo.get(
            lease.application_id, Scope(mobile_hash=mobile_hash)) is None:
        abort(404)
    session[SIGNED_IN], session["customer_invitation"] = mobile_hash, invitation_id
    g.rent_payer = "customer"
    return lease


#: the pay pages' guard: staff with :data:`PERMISSION` (403 without it, as the lease page answers a role that may not
#: see it) or the lessee; whose lease it is is decided by the view (:func:`_lease_for`: 404)
payer_or_staff = customer_or_staff(PERMISSION)


def _instalment_arg(value: str | None) -> int | None:
    """The chosen instalment's id (None: everything due now); ValueError for anything but a positive number."""
    if value in (None, "", "all"):
        return None
    if not value.isdigit() or len(value) > 18 or int(value) <= 0:
        raise ValueError(value)
    return int(value)


def _page(lease: LeaseRow, status: int = 200, *, error: str | None = None, attempt: Attempt | None = None,
          outcome: PayOutcome | None = None, chosen: int | None = None, method: str | None = None) -> Any:
    svc = collection()
    schedule = svc.repo.instalments(lease.id)
    due = [o for o in svc.due_now(lease.id)]  # a rent due today among them: due, not ahead
    today = svc.repo.business_date()
    checkout = stripe_pages.checkout(outcome, stripe_pages.external_url("rent_pay.returned", lease_id=lease.id))
    shown = attempt or (outcome.attempt if outcome else None)
    # paid: what the payment paid (the receipt and each instalment's part), shown instead of a form (walk-through 47)
    paid = svc.repo.paid_by(shown.id) if shown is not None and shown.status == "succeeded" else None
    # a rent not due yet is paid ahead only when chosen by its own link (``?instalment=``), never preselected
    ahead = [o for o in schedule if o.state == "pending" and o.total > 0 and o.due_on > today]
    response = make_response(render_template(
        "servicing/pay.html", lease=lease, due=due, total=sum(o.total for o in due), chosen_method=method,
        ahead=ahead[:1], chosen_ahead=next((o for o in ahead if o.instalment_id == chosen), None), chosen=chosen,
        token=uuid.uuid4().hex, error=error, attempt=shown, paid=paid,
        receipt=paid[0] if paid else (outcome.receipt if outcome else None), checkout=checkout,
        **stripe_pages.checkout_context(svc), why_not_paid=why_not_paid, staff=g.get("rent_payer") == "staff",
        active=lease.status == ACTIVE), status)
    return response


@bp.get("/leases/<lease_id>/pay")
@payer_or_staff
def page(lease_id: str) -> Any:
    """The page; ``?instalment=<id>`` preselects one instalment, ``?attempt=<id>`` shows how that payment went (and
    with the Payment Element, mounts it for that attempt while it is still to pay)."""
    lease = _lease_for(lease_id)
    try:
        chosen = _instalment_arg(request.args.get("instalment"))
    except ValueError:
        return _page(lease, 422, error=in_locale("请选择要支付的一期", "Choose the instalment to pay"))
    attempt_id = request.args.get("attempt", "")[:36]
    if not attempt_id and (declined := _declined_once(lease)) is not None:  # a declined payment's answer, once
        return declined
    attempt = collection().repo.attempt(attempt_id) if attempt_id else None
    if attempt is None or attempt.lease_id != lease.id:
        return _page(lease, chosen=chosen)
    return _page(lease, attempt=attempt, outcome=stripe_pages.refreshed(collection(), attempt), chosen=chosen)


def _declined(lease: LeaseRow, attempt: Attempt, chosen: int | None = None, method: str = "") -> Any:
    """A declined or failed payment, answered by Post/Redirect/Get: the page by GET, the attempt (its decline), the
    instalment and the card chosen carried once by the server-side session (bff/reloads.py :func:`keep_once`, never in
    the URL), so that the browser's refresh of the answer asks for the page instead of posting the payment again."""
    keep_once(f"rent_declined:{lease.id}", attempt=attempt.id, chosen=chosen,
              method=method if method in TEST_METHODS else "")
    return redirect(url_for("rent_pay.page", lease_id=lease.id, _anchor="rent"), 303)


def _declined_once(lease: LeaseRow) -> Any | None:
    """The page answering :func:`_declined`, taken once and if fresh (a refresh after it shows the page as it is)."""
    kept = take_once(f"rent_declined:{lease.id}")
    if kept is None:
        return None
    attempt = collection().repo.attempt(str(kept.get("attempt") or "")[:36])
    if attempt is None or attempt.lease_id != lease.id:
        return None
    chosen = kept.get("chosen")
    # the attempt's outcome says why it was not paid: said once (walk-through 46), not again as an error above it
    return _page(lease, attempt=attempt,
                 chosen=chosen if isinstance(chosen, int) else None, method=str(kept.get("method") or "") or None)


@bp.post("/leases/<lease_id>/pay")
@stripe_rate
@payer_or_staff
def create(lease_id: str) -> Any:
    """Create the payment of what is due now (or of the chosen instalment) and, in TEST MODE, pay it at once."""
    lease = _lease_for(lease_id)
    token = request.form.get("token", "")
    try:
        chosen = _instalment_arg(request.form.get("instalment"))
    except ValueError:
        return _page(lease, 422, error=in_locale("请选择要支付的一期", "Choose the instalment to pay"))
    if not (16 <= len(token) <= 64 and token.isalnum()):
        return _page(lease, 400, error=in_locale("页面已过期，请重新付款", "This page has expired: pay again"),
                     chosen=chosen)
    svc = collection()
    method = request.form.get("method", "")
    try:
        payment_method = stripe_pages.test_payment_method(svc, method)
    except stripe_pages.NoTestCard:
        return _page(lease, 422, error=in_locale("请选择付款方式", "Choose a way to pay"), chosen=chosen)
    try:
        done = svc.pay_by_hand(lease, token, instalment_id=chosen, payment_method=payment_method,
                               return_url=url_for("rent_pay.returned", lease_id=lease.id, _external=True))
    except CannotPay as exc:
        return _page(lease, 409, error=in_locale(exc.text_zh, exc.text_en), chosen=chosen)
    except PaymentsUnavailable:
        return _page(lease, 503, error=in_locale(*UNAVAILABLE), chosen=chosen)
    except PaymentsError as exc:
        log.error("Stripe refused the rent payment of lease %s: %s", lease.id, exc)
        return _page(lease, 409, error=in_locale(*REFUSED), chosen=chosen)
    if done.attempt.status == "failed":
        return _declined(lease, done.attempt, chosen, method)
    return redirect(url_for("rent_pay.page", lease_id=lease.id, attempt=done.attempt.id), 303)


@bp.get("/leases/<lease_id>/pay/return")
@stripe_rate
@payer_or_staff
def returned(lease_id: str) -> Any:
    """Stripe.js's (or 3-D Secure's) return: the attempt as Stripe has it now — never what the query string says —,
    then 303 to the page showing the outcome (without the client secret Stripe appended)."""
    lease = _lease_for(lease_id)
    attempt = collection().repo.attempt(request.args.get("attempt", "")[:36])
    if attempt is None or attempt.lease_id != lease.id:
        abort(404)
    return stripe_pages.returned(collection(), attempt, page=_error_page(lease), what="rent",
                                 shown=url_for("rent_pay.page", lease_id=lease.id, attempt=attempt.id))


@bp.post("/leases/<lease_id>/pay/authenticate")
@stripe_rate
@payer_or_staff
def authenticate(lease_id: str) -> Any:
    """TEST MODE on localstripe: the customer completes (or fails) their bank's 3-D Secure check of the payment (the
    local test bank, infra/sandbox_bank.py), then the page shows it as Stripe has it."""
    lease = _lease_for(lease_id)
    svc = collection()
    stripe_pages.test_bank_or_404(svc)
    attempt = svc.repo.attempt(request.form.get("attempt", "")[:36])
    if attempt is None or attempt.lease_id != lease.id:
        abort(404)
    return stripe_pages.authenticate(svc, attempt, page=_error_page(lease), what="rent",
                                     declined=lambda failed: _declined(lease, failed),
                                     shown=url_for("rent_pay.page", lease_id=lease.id, attempt=attempt.id))


def _error_page(lease: LeaseRow) -> stripe_pages.ErrorPage:
    """The page with an error about an attempt (bff/servicing/stripe_pages.py's answers)."""
    return lambda status, error, attempt: _page(lease, status, error=error, attempt=attempt)


@bp.record_once
def _hand_over_webhooks(state: Any) -> None:
    """Stripe's webhook events about rents reach the rent collection from the first request on (the payments' webhook
    endpoint hands over the events that name no down payment)."""
    app = state.app
    if "leaseline" in app.extensions:
        rent_collection(app.extensions["leaseline"], app.config["SETTINGS"])
