"""A partial prepayment from the customer's phone (部分提前还款, issue 18 §5): ``/leases/<lease_id>/prepay``.

``GET`` asks how much (in yuan) and says the bounds: at least ¥1,000 (infra/prepayments.py ``MINIMUM``: no product
or policy states a minimum), less than the principal outstanding after the last rent fallen due less the final rent;
a lease in arrears pays its arrears first (the page says so and links the rent page). ``POST`` stores the offer
(infra/prepayments.py :meth:`~infra.prepayments.SqlPrepayments.offer`: both re-amortisations and the interest of the
days since the balance's date — a line added to the payment, or a credit off it —, valid for the business date: that
line counts to the day) and answers 303 to ``…/prepay/<prepayment_id>``: the amount, the interest line explained and
the total to pay, both options side by side — a shorter term with the same rent, or a lower rent over the same term
—, with the interest each saves and the first rows of each new schedule, a choice and "确认并支付" (the total).
``POST …/pay`` records the choice and creates the payment of the total as the rent page does (bff/servicing/pay.py:
one attempt per form served, keyed by its token; TEST MODE's test cards confirmed server-side, 3-D Secure answered by
the local test bank at ``…/authenticate``; with a publishable key, Stripe.js's Payment Element for the attempt's
intent and Stripe's return at ``…/return``). The payment is booked into the lease
on Stripe's answer or its webhook (once), which applies the prepayment (infra/prepayments.py ``book_prepayment``:
the schedule re-amortised, the annex and the evidence log by the ``servicing.prepaid`` job); a payment that can no
longer be applied — a rent fell due meanwhile, the offer was replaced, it was applied already — is refunded in full,
and the page says so. The page then shows the new rent or term and links the lease page with the new schedule.

Who may use it: as the rent page (:func:`bff.servicing.pay._lease_for`): the lessee on this device, or staff of the
lease's dealer who may edit its application; anyone else 404, a staff role that may not 403, signed out: 我的租赁's
sign-in. Bad input (not a number, too small, more than owed — an amount beyond :data:`TYPED_AT_MOST` before it is
rounded —, in arrears, a payment of a later rent under way, another lease's prepayment, an option not offered) is a
4xx page with the field's error and what was typed, never a 500.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.payments.checkout import TEST_METHODS
from bff.payments.common import utc_now
from bff.payments.declines import why_not_paid
from bff.payments.views import REFUSED
from bff.payments.views import UNAVAILABLE
from bff.payments.views import publishable_key
from bff.reloads import keep_once
from bff.reloads import take_once
from bff.rendering import in_locale
from bff.services import services
from bff.servicing import stripe_pages
from bff.servicing.collect import CannotPay
from bff.servicing.collect import PayOutcome
from bff.servicing.pay import _lease_for
from bff.servicing.pay import collection
from bff.servicing.pay import payer_or_staff
from bff.servicing.pay import stripe_rate
from infra.collections import FINAL
from infra.collections import PREPAYMENT
from infra.collections import Attempt
from infra.db.models import LeaseRow
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable
from infra.prepayments import MINIMUM
from infra.prepayments import OPTIONS
from infra.prepayments import Basis
from infra.prepayments import Prepayment
from infra.prepayments import PrepaymentRefused
from infra.prepayments import SqlPrepayments
from plans.errors import FieldError
from plans.money import to_decimal

log = logging.getLogger(__name__)
bp = Blueprint("prepay", __name__)
#: how many rows of each new schedule the offer shows (the whole one is on the lease page once applied)
FIRST_ROWS = 3
#: the most an amount typed may be (yuan), checked before it is rounded: far above any lease's principal, and far
#: below what Decimal's 28 digits hold to the fen (``1e26`` would not quantise: InvalidOperation)
TYPED_AT_MOST = to_decimal("1000000000")


def prepayments() -> SqlPrepayments:
    return SqlPrepayments(services().db)


def _basis(lease: LeaseRow) -> tuple[Basis | None, FieldError | None]:
    """Where a prepayment would start from today, or why none may be asked now."""
    try:
        return prepayments().basis(lease), None
    except PrepaymentRefused as exc:
        return None, exc.error


def _amount(typed: str) -> int:
    """The amount typed in yuan (``12,000`` or ``12000.50``) as fen; :class:`PrepaymentRefused` for anything else."""
    text = typed.strip().removeprefix("¥").strip()
    try:
        value = to_decimal(text) if text else None
    except ValueError:
        value = None
    if value is not None and value > TYPED_AT_MOST:
        raise PrepaymentRefused(FieldError("amount", "too_large", "金额过大：提前还款金额须少于剩余本金",
                                           "That amount is far too large: prepay less than the principal outstanding"))
    if value is None or value <= 0 or value != value.quantize(to_decimal("0.01")):
        raise PrepaymentRefused(FieldError("amount", "not_a_number", "请输入金额（元），最多两位小数",
                                           "Enter an amount in yuan, with at most two decimals"))
    return int(value * 100)


def _form(lease: LeaseRow, status: int = 200, *, typed: str = "", error: FieldError | None = None) -> Any:
    basis, refusal = _basis(lease)
    return make_response(render_template(
        "servicing/prepay.html", lease=lease, basis=basis, refusal=refusal, typed=typed, error=error,
        minimum=MINIMUM, staff=g.get("rent_payer") == "staff"), status)


@bp.get("/leases/<lease_id>/prepay")
@payer_or_staff
def form(lease_id: str) -> Any:
    """How much to prepay."""
    return _form(_lease_for(lease_id))


@bp.post("/leases/<lease_id>/prepay")
@payer_or_staff
def offer(lease_id: str) -> Any:
    """Store the offer (both options) and show it."""
    lease = _lease_for(lease_id)
    typed = request.form.get("amount", "")[:32]
    try:
        made = prepayments().offer(lease.id, _amount(typed), "staff" if g.get("rent_payer") == "staff" else "customer",
                                   utc_now())
    except PrepaymentRefused as exc:
        return _form(lease, exc.status, typed=typed, error=exc.error)
    return redirect(url_for("prepay.show", lease_id=lease.id, prepayment_id=made.id), 303)


def _prepayment(lease: LeaseRow, prepayment_id: str) -> Prepayment:
    found = prepayments().get(lease.id, prepayment_id[:36])
    if found is None:
        abort(404)
    return found


def _page(lease: LeaseRow, p: Prepayment, status: int = 200, *, error: str | None = None,
          attempt: Attempt | None = None, outcome: PayOutcome | None = None, option: str | None = None,
          method: str | None = None) -> Any:
    svc = collection()
    attempt = attempt or (outcome.attempt if outcome else None)
    receipt = outcome.receipt if outcome is not None else (svc.repo.receipt(attempt.key) if attempt else None)
    checkout = stripe_pages.checkout(outcome, stripe_pages.external_url("prepay.returned", lease_id=lease.id,
                                                                        prepayment_id=p.id))
    return make_response(render_template(
        "servicing/prepay_offer.html", lease=lease, p=p, preview=p.preview, first_rows=FIRST_ROWS,
        option=option or p.option or None, options=OPTIONS, token=uuid.uuid4().hex, error=error, attempt=attempt,
        receipt=receipt, chosen_method=method, checkout=checkout, **stripe_pages.checkout_context(svc),
        why_not_paid=why_not_paid, staff=g.get("rent_payer") == "staff"), status)


@bp.get("/leases/<lease_id>/prepay/<prepayment_id>")
@payer_or_staff
def show(lease_id: str, prepayment_id: str) -> Any:
    """The offer (both options, the choice, pay), or how it went: ``?attempt=<id>``; applied: the new figures."""
    lease = _lease_for(lease_id)
    p = _prepayment(lease, prepayment_id)
    if (kept := take_once(f"prepay_declined:{p.id}")) is not None:  # a declined payment's answer, once
        attempt = collection().repo.attempt(str(kept.get("attempt") or "")[:36])
        if attempt is not None and attempt.lease_id == lease.id and attempt.subject_id == p.id:
            return _page(lease, p, attempt=attempt,  # the failed attempt says why, once (as the rent's page does)
                         option=str(kept.get("option") or "") or None, method=str(kept.get("method") or "") or None)
    attempt_id = request.args.get("attempt", "")[:36]
    attempt = collection().repo.attempt(attempt_id) if attempt_id else None
    if attempt is None or attempt.lease_id != lease.id or attempt.subject_id != p.id:
        return _page(lease, p)
    outcome: PayOutcome | None = None
    if publishable_key() and attempt.provider_ref and attempt.status not in FINAL:
        outcome = stripe_pages.refreshed(collection(), attempt)
        p = _prepayment(lease, p.id)  # booked by the refresh: applied (or not)
    return _page(lease, p, attempt=attempt, outcome=outcome)


@bp.post("/leases/<lease_id>/prepay/<prepayment_id>/pay")
@stripe_rate
@payer_or_staff
def pay(lease_id: str, prepayment_id: str) -> Any:
    """Record the option chosen and pay the prepayment (in TEST MODE, at once)."""
    lease = _lease_for(lease_id)
    p = _prepayment(lease, prepayment_id)
    token, option, method = request.form.get("token", ""), request.form.get("option", "")[:16], \
        request.form.get("method", "")
    kept = option if option in OPTIONS else None
    if not (16 <= len(token) <= 64 and token.isalnum()):
        return _page(lease, p, 400, error=in_locale("页面已过期，请重新确认", "This page has expired: confirm again"),
                     option=kept)
    svc = collection()
    try:
        payment_method = stripe_pages.test_payment_method(svc, method)
    except stripe_pages.NoTestCard:
        return _page(lease, p, 422, error=in_locale("请选择付款方式", "Choose a way to pay"), option=kept)
    first = svc.repo.attempt_by_key(f"pay:{lease.id}:{token}"[:120])
    if first is None:  # this form not sent before: the choice is recorded (a double tap answers the first attempt)
        try:
            p = prepayments().choose(lease.id, p.id, option)
        except PrepaymentRefused as exc:
            return _page(lease, p, exc.status, error=in_locale(exc.error.text_zh, exc.error.text_en), option=kept)
        except LookupError:
            abort(404)
    try:
        done = svc.pay_by_hand(lease, token, payment_method=payment_method, purpose=PREPAYMENT, subject_id=p.id,
                               amount=p.total, return_url=url_for("prepay.returned", lease_id=lease.id,
                                                                   prepayment_id=p.id, _external=True))
    except CannotPay as exc:
        return _page(lease, p, 409, error=in_locale(exc.text_zh, exc.text_en), option=kept)
    except PaymentsUnavailable:
        return _page(lease, p, 503, error=in_locale(*UNAVAILABLE), option=kept)
    except PaymentsError as exc:
        log.error("Stripe refused the prepayment %s of lease %s: %s", p.id, lease.id, exc)
        return _page(lease, p, 409, error=in_locale(*REFUSED), option=kept)
    prepayments().attach(p.id, done.attempt.id)
    if done.attempt.status == "failed":
        return _declined(lease, p, done.attempt, kept, method)
    return redirect(url_for("prepay.show", lease_id=lease.id, prepayment_id=p.id, attempt=done.attempt.id), 303)


def _declined(lease: LeaseRow, p: Prepayment, attempt: Attempt, option: str | None = None, method: str = "") -> Any:
    """A declined payment answered by Post/Redirect/Get (as the rent page, bff/servicing/pay.py ``_declined``)."""
    keep_once(f"prepay_declined:{p.id}", attempt=attempt.id, option=option or "",
              method=method if method in TEST_METHODS else "")
    return redirect(url_for("prepay.show", lease_id=lease.id, prepayment_id=p.id, _anchor="prepay"), 303)


def _attempt_of(lease: LeaseRow, p: Prepayment, attempt_id: str) -> Attempt:
    attempt = collection().repo.attempt(attempt_id[:36]) if attempt_id else None
    if attempt is None or attempt.lease_id != lease.id or attempt.subject_id != p.id:
        abort(404)
    return attempt


@bp.get("/leases/<lease_id>/prepay/<prepayment_id>/return")
@stripe_rate
@payer_or_staff
def returned(lease_id: str, prepayment_id: str) -> Any:
    """Stripe.js's (or 3-D Secure's) return: the attempt as Stripe has it now, then 303 to the page."""
    lease = _lease_for(lease_id)
    p = _prepayment(lease, prepayment_id)
    attempt = _attempt_of(lease, p, request.args.get("attempt", ""))
    return stripe_pages.returned(collection(), attempt, page=_error_page(lease, p), what="prepayment",
                                 shown=url_for("prepay.show", lease_id=lease.id, prepayment_id=p.id,
                                               attempt=attempt.id))


@bp.post("/leases/<lease_id>/prepay/<prepayment_id>/authenticate")
@stripe_rate
@payer_or_staff
def authenticate(lease_id: str, prepayment_id: str) -> Any:
    """TEST MODE on localstripe: the local test bank's 3-D Secure check (as the rent page's)."""
    lease = _lease_for(lease_id)
    p = _prepayment(lease, prepayment_id)
    svc = collection()
    stripe_pages.test_bank_or_404(svc)
    attempt = _attempt_of(lease, p, request.form.get("attempt", ""))
    return stripe_pages.authenticate(svc, attempt, page=_error_page(lease, p), what="prepayment",
                                     declined=lambda failed: _declined(lease, p, failed),
                                     shown=url_for("prepay.show", lease_id=lease.id, prepayment_id=p.id,
                                                   attempt=attempt.id))


def _error_page(lease: LeaseRow, p: Prepayment) -> stripe_pages.ErrorPage:
    """The offer's page with an error about an attempt (bff/servicing/stripe_pages.py's answers)."""
    return lambda status, error, attempt: _page(lease, p, status, error=error, attempt=attempt)
