"""Early settlement on the phone (提前结清, issue 18 §5): the quote requested, explained, paid, and the lease settled.

- ``POST /leases/<lease_id>/settlement`` (the lease page's quote block, "申请结清"): the quote for the date chosen
  (``settle_on``; none: the earliest) counted as the lease page counts it (bff/servicing/lease_page.py ``quote``) and
  stored (infra/settlements.py ``offer``: the lease's earlier quote on offer is superseded), then 303 to its page. A
  date that cannot be quoted: the lease page again with the field error (422).
- ``GET /leases/<lease_id>/settlement/<quote_id>``: the quote's lines, each with how it was found, valid until the end
  of its settlement day, the amount; pay it (TEST MODE's test cards, or Stripe.js's Payment Element, as the rent's pay
  page, bff/servicing/pay.py) or, when the deposit covers it, confirm it (``…/confirm``). A quote no longer on offer
  (expired, superseded) is refused with the figure for the earliest date it may now be asked for, and a button to ask
  for it. A paid quote's page says the lease is settled (已结清), with the late charges it booked and what it refunded
  (the quote's late charges not owed on the day it was paid: infra/settlements.py).
- Once the lessee has chosen what happens at the end of the term (infra/end_of_term.py), no quote is requested, paid or
  confirmed (409): the lease and quote pages say so and link the end-of-term page; a payment already under way when
  it was chosen is refunded in full when booked (infra/settlements.py ``book_settlement``).
- ``POST …/<quote_id>/pay`` and ``GET …/<quote_id>/return`` as the rent's: one attempt per form (its ``token``), booked
  on Stripe's answer or its webhook, whichever comes first (once: infra/collections.py ``book`` →
  infra/settlements.py ``book_settlement``); a declined card answered by Post/Redirect/Get.

Who may: the lease page's visitors read a quote (the lessee on this device, staff with ``leases.view`` — the lessor's
ops read-only); the lessee and the dealer's staff who may edit the application request, pay and confirm one (pay.py's
:func:`bff.servicing.pay._lease_for`), others 404 (403 for a role without the permission). CSRF on every POST.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.auth.roles import allowed
from bff.payments.checkout import TEST_METHODS
from bff.payments.common import utc_now
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
from bff.servicing.lease_page import DateRefused
from bff.servicing.lease_page import quote as count_quote
from bff.servicing.lease_page import settlement_date
from bff.servicing.lease_page import settlement_dates
from bff.servicing.lease_views import _application
from bff.servicing.lease_views import lease_response
from bff.servicing.lease_views import lessee_or_staff
from bff.servicing.pay import _lease_for
from bff.servicing.pay import collection
from bff.servicing.pay import payer_or_staff
from bff.servicing.pay import stripe_rate
from infra.accounts import Staff
from infra.collections import SETTLEMENT
from infra.collections import Attempt
from infra.db.models import LeaseRow
from infra.lease_reads import SqlLeaseReads
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable
from infra.servicing import ACTIVE
from infra.servicing import SqlServicing
from infra.settlements import PAID_QUOTE
from infra.settlements import Quote
from infra.settlements import QuoteRefused
from infra.settlements import SqlSettlements

log = logging.getLogger(__name__)
bp = Blueprint("settle", __name__)

#: why a quote cannot be paid or confirmed, as the customer reads it
REFUSALS = {
    "expired": ("这份结清报价已过期", "This settlement quote has expired"),
    "not_offered": ("这份结清报价已被新的报价取代", "This settlement quote has been replaced by a newer one"),
    "changed": ("报价后租约有变动（例如已支付租金），这份报价已失效",
                "The lease changed after this quote (a rent was paid, for example): the quote no longer holds"),
    "lease_closed": ("这份租约已结清，无需付款", "This lease is closed: nothing is to be paid"),
    "end_of_term": ("已选择期满处理方式，这份租约不能再提前结清：请在期满处理页面办理",
                    "The end of the term is chosen: this lease can no longer be settled early — see the end-of-term "
                    "page"),
    "to_pay": ("这份报价需要付款", "This quote is to be paid"),
    "nothing_to_pay": ("保证金已足够结清，无需付款：请确认结清",
                       "The deposit covers it: nothing to pay, confirm instead"),
    "unknown": ("找不到这份报价", "No such quote"),
}


def settlements() -> SqlSettlements:
    return SqlSettlements(services().db)


def _requested_by() -> str:
    user: Staff | None = g.get("user")
    return f"staff:{user.id}" if user is not None else "customer"


def _quote_of(lease_id: str, quote_id: str) -> Quote:
    """The quote ``quote_id`` of the lease (404 for another lease's, or none)."""
    found = settlements().get(quote_id)
    if found is None or found.lease_id != lease_id:
        abort(404)
    return found


def _may_pay(lease: LeaseRow) -> bool:
    """Whether the visitor may request, pay or confirm the lease's settlement (the lessee; the dealer's staff who may
    edit its application), as :func:`bff.servicing.pay._lease_for` decides: the lessor's ops only read."""
    user: Staff | None = g.get("user")
    if user is None:
        return True  # the lease page's guard found them its lessee
    return not user.lessor_side and user.dealer_id == lease.dealer_id and allowed(user, "applications.edit")


def _page(lease_id: str, quote_id: str, status: int = 200, *, error: str | None = None,
          attempt: Attempt | None = None, outcome: PayOutcome | None = None, method: str | None = None) -> Any:
    """The quote's page: its lines and amount; pay or confirm it while it is on offer; refused with the new figure once
    it is not; settled once paid."""
    snap = SqlLeaseReads(services().db).snapshot(lease_id)
    if snap is None:
        abort(404)
    app, customer = _application(snap.lease.application_id)
    lease, today = snap.lease, snap.business_date
    q = _quote_of(lease.id, quote_id)
    active = lease.status == ACTIVE
    end_of_term = active and settlements().end_of_term_chosen(lease.id)  # settled on its own page, not early
    fresh = None  # the figure for the earliest date now, for a quote no longer on offer
    dates = None
    if active and not end_of_term and not q.valid_on(today):
        calendar = SqlServicing(services().db).calendar()
        dates = settlement_dates(lease, snap.instalments, today, calendar)
        if dates.earliest is not None:
            fresh = count_quote(lease, snap.instalments, dates.earliest, calendar)
    checkout = stripe_pages.checkout(outcome, stripe_pages.external_url("settle.returned", lease_id=lease.id,
                                                                        quote_id=q.id))
    return render_template(
        "servicing/settle.html", lease=lease, app=app, customer=customer, q=q, today=today, active=active,
        payable=active and not end_of_term and q.valid_on(today), paid=q.status == PAID_QUOTE, fresh=fresh,
        dates=dates, end_of_term=end_of_term,
        may_pay=_may_pay(lease), token=uuid.uuid4().hex, error=error, attempt=attempt,
        checkout=checkout, **stripe_pages.checkout_context(collection()), why_not_paid=why_not_paid,
        chosen_method=method,
        staff=g.get("user") is not None), status


@bp.post("/leases/<lease_id>/settlement")
@payer_or_staff
def request_quote(lease_id: str) -> Any:
    """Store the quote for the date chosen and show it (303); a date that cannot be quoted: the lease page, 422."""
    lease = _lease_for(lease_id)
    snap = SqlLeaseReads(services().db).snapshot(lease.id)
    assert snap is not None
    if lease.status != ACTIVE or settlements().end_of_term_chosen(lease.id):  # the page says why
        return lease_response(lease.id, "", status=409)
    calendar = SqlServicing(services().db).calendar()
    dates = settlement_dates(lease, snap.instalments, snap.business_date, calendar)
    typed = request.form.get("settle_on", "")[:32]
    try:
        on = settlement_date(typed, dates) if typed else dates.earliest
    except DateRefused:
        return lease_response(lease.id, typed)
    if on is None:
        return lease_response(lease.id, "", status=409)
    counted = count_quote(lease, snap.instalments, on, calendar)
    try:
        quote_id = settlements().offer(lease.id, counted, requested_by=_requested_by(), now=utc_now())
    except QuoteRefused:
        return lease_response(lease.id, "", status=409)
    return redirect(url_for("settle.show", lease_id=lease.id, quote_id=quote_id), 303)


@bp.get("/leases/<lease_id>/settlement/<quote_id>")
@lessee_or_staff
def show(lease_id: str, quote_id: str) -> Any:
    """The quote; ``?attempt=<id>`` shows how its payment went (with the Payment Element, mounts it while to pay)."""
    if len(lease_id) > 36 or len(quote_id) > 36:
        abort(404)
    attempt_id = request.args.get("attempt", "")[:36]
    if not attempt_id and (kept := take_once(f"settle_declined:{quote_id}")) is not None:
        declined = collection().repo.attempt(str(kept.get("attempt") or "")[:36])
        if declined is not None and declined.lease_id == lease_id:
            return _page(lease_id, quote_id, error=why_not_paid(declined.failure_code), attempt=declined,
                         method=str(kept.get("method") or "") or None)
    attempt = collection().repo.attempt(attempt_id) if attempt_id else None
    if attempt is None or attempt.lease_id != lease_id or attempt.subject_id != quote_id:
        return _page(lease_id, quote_id)
    outcome = stripe_pages.refreshed(collection(), attempt)
    return _page(lease_id, quote_id, attempt=outcome.attempt if outcome else attempt, outcome=outcome)


def _refused(lease: LeaseRow, q: Quote, code: str, status: int = 409) -> Any:
    return _page(lease.id, q.id, status, error=in_locale(*REFUSALS.get(code, REFUSALS["unknown"])))


@bp.post("/leases/<lease_id>/settlement/<quote_id>/pay")
@stripe_rate
@payer_or_staff
def pay(lease_id: str, quote_id: str) -> Any:
    """Pay the quote's amount due (never an amount the form sends: one that differs from it is refused, 422)."""
    lease = _lease_for(lease_id)
    q = _quote_of(lease.id, quote_id)
    token = request.form.get("token", "")
    if not (16 <= len(token) <= 64 and token.isalnum()):
        return _page(lease.id, q.id, 400, error=in_locale("页面已过期，请重新付款", "This page has expired: pay again"))
    sent = request.form.get("amount")
    if sent is not None and sent.strip() != str(q.amount_due):
        return _page(lease.id, q.id, 422, error=in_locale("金额与报价不符，请按报价金额付款",
                                                          "The amount is not the quote's: pay the amount quoted"))
    svc = collection()
    first = svc.repo.attempt_by_key(f"pay:{lease.id}:{token}"[:120])
    if first is None:  # a new payment (the same form again answers its first attempt, whatever happened since)
        if lease.status != ACTIVE:
            return _refused(lease, q, "lease_closed")
        if q.amount_due <= 0:
            return _refused(lease, q, "nothing_to_pay")
        if settlements().end_of_term_chosen(lease.id):  # not charged: booking would refund it (book_settlement)
            return _refused(lease, q, "end_of_term")
        if not q.valid_on(svc.repo.business_date()):
            return _refused(lease, q, "expired" if q.status in ("offered", "expired") else "not_offered")
    method = request.form.get("method", "")
    try:
        payment_method = stripe_pages.test_payment_method(svc, method)
    except stripe_pages.NoTestCard:
        return _page(lease.id, q.id, 422, error=in_locale("请选择付款方式", "Choose a way to pay"))
    try:
        done = svc.pay_by_hand(lease, token, purpose=SETTLEMENT, subject_id=q.id, amount=q.amount_due,
                               payment_method=payment_method,
                               return_url=url_for("settle.returned", lease_id=lease.id, quote_id=q.id, _external=True))
    except CannotPay as exc:
        return _page(lease.id, q.id, 409, error=in_locale(exc.text_zh, exc.text_en))
    except PaymentsUnavailable:
        return _page(lease.id, q.id, 503, error=in_locale(*UNAVAILABLE))
    except PaymentsError as exc:
        log.error("Stripe refused the settlement payment of lease %s: %s", lease.id, exc)
        return _page(lease.id, q.id, 409, error=in_locale(*REFUSED))
    if done.attempt.status == "failed":
        keep_once(f"settle_declined:{q.id}", attempt=done.attempt.id, method=method if method in TEST_METHODS else "")
        return redirect(url_for("settle.show", lease_id=lease.id, quote_id=q.id, _anchor="settle"), 303)
    return redirect(url_for("settle.show", lease_id=lease.id, quote_id=q.id, attempt=done.attempt.id), 303)


@bp.get("/leases/<lease_id>/settlement/<quote_id>/return")
@stripe_rate
@payer_or_staff
def returned(lease_id: str, quote_id: str) -> Any:
    """Stripe.js's (or 3-D Secure's) return: the attempt as Stripe has it now, then 303 to the quote's page."""
    lease = _lease_for(lease_id)
    q = _quote_of(lease.id, quote_id)
    attempt = collection().repo.attempt(request.args.get("attempt", "")[:36])
    if attempt is None or attempt.lease_id != lease.id or attempt.subject_id != q.id:
        abort(404)
    return stripe_pages.returned(
        collection(), attempt, what="settlement",
        page=lambda status, error, shown: _page(lease.id, q.id, status, error=error, attempt=shown),
        shown=url_for("settle.show", lease_id=lease.id, quote_id=q.id, attempt=attempt.id))


@bp.post("/leases/<lease_id>/settlement/<quote_id>/confirm")
@payer_or_staff
def confirm(lease_id: str, quote_id: str) -> Any:
    """Settle by a quote the deposit covers (nothing to pay): the lease settled, the refund due recorded; 303 to the
    quote's page (已结清). Confirmed again: the same page."""
    lease = _lease_for(lease_id)
    q = _quote_of(lease.id, quote_id)
    try:
        settlements().confirm(lease.id, q.id, utc_now())
    except QuoteRefused as exc:
        return _refused(lease, q, exc.code)
    return redirect(url_for("settle.show", lease_id=lease.id, quote_id=q.id), 303)
