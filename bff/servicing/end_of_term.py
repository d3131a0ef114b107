"""The end of the term on the phone (issue 18 §6): the options on the lease page, the lessee's choice and the
dealer's inspection of a returned car. The figures are servicing/end_of_term.py's; the records infra/end_of_term.py's
(which documents how each choice is carried by the receivable).

- ``/leases/<id>`` shows, from 60 days before the term's end, the three options with their figures (the
  ``end_of_term_for`` template global, included by pwa/templates/servicing/lease.html);
- ``GET/POST /leases/<id>/end-of-term``: the options explained and, for the lessee, the choice. A purchase adds the
  purchase price as an instalment and the page links the pay page for it and the final rent (bff/servicing/pay.py:
  ``?instalment=``); a return asks the dealer for the inspection; a refinance makes a new application pre-filled from
  this one (bff/servicing/refinance.py), whose lease, once opened, pays off the final rent (infra/servicing.py
  ``_pay_off_refinanced``). Staff of the
  lease (``leases.view``) see the page read-only;
- ``GET/POST /servicing/returns/<lease_id>/inspection``: the dealer's staff (``leases.deliver``, the lease's dealer
  only: 404 otherwise) record the odometer, the damage items from the product file and one or two photos (stored
  like the KYC and document photos: infra/storage.py, under the application's key); the charges, the deposit's
  deduction and the refund are computed and shown; the lease ends at once when nothing is owed, else when the rest
  is paid (the close of business).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.applications.access import staff_scope
from bff.auth.roles import tenant_of
from bff.auth.session import requires
from bff.payments.common import utc_now
from bff.rendering import in_locale
from bff.services import services
from bff.servicing.lease_views import _application
from bff.servicing.lease_views import customer_or_staff
from bff.servicing.refinance import RefinanceRefused
from bff.servicing.refinance import new_application
from bff.servicing.refinance import refinance
from bff.servicing.refinance import terms_offered
from infra.accounts import Staff
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.end_of_term import LEASE_ENDED
from infra.end_of_term import ChoiceRefused
from infra.end_of_term import Inspection
from infra.end_of_term import SqlEndOfTerm
from infra.handovers import SqlHandovers
from infra.lease_reads import SqlLeaseReads
from infra.servicing import ACTIVE
from infra.servicing import FINAL_RENT
from infra.servicing import OPEN
from infra.servicing import PENDING
from infra.servicing import SqlServicing
from infra.settlements import SETTLED_LEASE
from infra.storage import StorageError
from infra.storage import object_key
from kyc.images import ImageRejected
from kyc.images import load_image
from plans.handover import printable
from plans.product import ReturnTerms
from plans.product import load_product
from servicing.end_of_term import OPTIONS
from servicing.end_of_term import PURCHASE
from servicing.end_of_term import REFINANCE
from servicing.end_of_term import PurchaseFigures
from servicing.end_of_term import ReturnRefused
from servicing.end_of_term import allowance_km
from servicing.end_of_term import in_window
from servicing.end_of_term import inspection_opens
from servicing.end_of_term import notice_days
from servicing.end_of_term import purchase_figures
from servicing.end_of_term import purchase_price
from servicing.end_of_term import return_charges
from servicing.end_of_term import return_settlement
from servicing.end_of_term import whole_number
from servicing.end_of_term import window_opens

log = logging.getLogger(__name__)
bp = Blueprint("end_of_term", __name__)
#: who inspects a returned car: the dealer's staff who hand cars over (bff/auth/roles.py)
INSPECT = "leases.deliver"
MAX_PHOTOS = 2
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # as an ID photo
MIN_PHOTO_SIDE = 300

lessee_or_staff = customer_or_staff("leases.view")


def _left(row: InstalmentRow) -> int:
    return (max(0, row.penalty_accrued - row.paid_penalty) + max(0, row.interest - row.paid_interest)
            + max(0, row.principal - row.paid_principal))


@dataclass(frozen=True)
class Options:
    """What the end-of-term block and page show: the window, the choice made (if any), each option's figures."""

    lease: LeaseRow
    today: date
    opens: date
    choice: EndOfTermRow | None
    final_rent: InstalmentRow | None
    final_left: int
    arrears: int
    purchase: PurchaseFigures
    returns: ReturnTerms | None
    allowance_km: int | None
    to_pay: tuple[InstalmentRow, ...]  # after a choice: the instalments still open, for the pay page
    notice: int | None = None  # the days' notice of the choice the contract states (None: its terms state none)
    #: what ``arrears`` is made of: the rents owed now (fallen due, late or not) and their late charges unpaid (fen)
    rents_due: int = 0
    late_charges: int = 0

    @property
    def damage_items(self) -> list[dict[str, Any]]:
        return json.loads(self.choice.damage_items) if self.choice else []

    @property
    def no_final_rent(self) -> bool:
        """A lease without a final rent (0 % residual): its contract (第七条) passes the title once every rent and the
        purchase price are paid and offers nothing else — no return against a final rent, no refinance of one."""
        return self.lease.residual == 0

    @property
    def offers(self) -> tuple[str, ...]:
        """The options the lease's contract offers: keeping the car only without a final rent, else all three."""
        return (PURCHASE,) if self.no_final_rent else OPTIONS


def options_of(lease: LeaseRow, rows: tuple[InstalmentRow, ...] | list[InstalmentRow], today: date) -> Options:
    final = next((r for r in rows if r.kind == FINAL_RENT), None)
    final_left = _left(final) if final is not None and final.state in (*OPEN, PENDING) else 0
    owed_now = [r for r in rows if r.state in OPEN and r.kind not in (FINAL_RENT, "purchase_price")]
    arrears = sum(_left(r) for r in owed_now)
    late_charges = sum(max(0, r.penalty_accrued - r.paid_penalty) for r in owed_now)
    terms = json.loads(lease.terms or "{}")
    price = purchase_price(terms)
    returns = load_product().end_of_term.returns
    choice = SqlEndOfTerm(services().db).get(lease.id)
    return Options(lease, today, window_opens(lease.ends_on), choice, final, final_left, arrears,
                   purchase_figures(final_left, price, arrears, lease.deposit), returns,
                   allowance_km(returns, lease.term) if returns else None,
                   tuple(r for r in rows if r.state in (*OPEN, PENDING) and _left(r) > 0
                         and (r.kind in (FINAL_RENT, "purchase_price", "return_charges") or r.state in OPEN)),
                   notice_days(terms), arrears - late_charges, late_charges)


@bp.app_context_processor
def _globals() -> dict[str, object]:
    def end_of_term_for(lease: LeaseRow, today: date) -> Options | None:
        """The lease page's end-of-term block: None outside the window (no query) or once the lease has ended."""
        if lease.status != ACTIVE or not in_window(lease.ends_on, today):
            return None
        snap = SqlLeaseReads(services().db).snapshot(lease.id)
        return options_of(lease, snap.instalments, today) if snap is not None else None

    return {"end_of_term_for": end_of_term_for}


def _page(lease_id: str, status: int = 200, *, error: str | None = None, chosen: str = "",
          errors: dict[str, str] | None = None, term: str = "") -> Any:
    snap = SqlLeaseReads(services().db).snapshot(lease_id)
    if snap is None:
        abort(404)
    app, customer = _application(snap.lease.application_id)
    opts = options_of(snap.lease, snap.instalments, snap.business_date)
    refinancing = new_application(opts.choice.refinance_application_id if opts.choice else None)
    lease = snap.lease
    # a lease no longer in force (settled early, or ended): the page says so and when, with nothing to choose
    again = SqlEndOfTerm(services().db).rechoice(lease_id) if lease.status == ACTIVE else None
    over_on = (lease.settled_on if lease.status == SETTLED_LEASE else
               (opts.choice.ended_on if opts.choice is not None and opts.choice.ended_on else lease.ends_on)
               if lease.status == LEASE_ENDED else None)
    return render_template("servicing/end_of_term.html", o=opts, lease=lease, app=app, customer=customer,
                           window=in_window(lease.ends_on, snap.business_date), error=error, chosen=chosen,
                           active=lease.status == ACTIVE, errors=errors or {}, term=term, over_on=over_on,
                           terms=terms_offered(), refinancing=refinancing, again=again,
                           reopen=again is not None and again.open), status


def _term(lease_id: str, option: str) -> tuple[int | None, Any]:
    """The refinance's term as posted (None and the page refused, 422, keeping what was chosen and typed)."""
    typed = request.form.get("term", "").strip()[:4]
    term = whole_number(typed)
    if term in terms_offered():
        return term, None
    return None, _page(lease_id, 422, chosen=option, term=typed, errors={"term": in_locale(
        "请选择新方案的期限", "Choose the new plan's term")})


def _refinance(lease_id: str, term: int) -> Any:
    """Make (or find) the application refinancing the lease's final rent and send the lessee to it."""
    snap = SqlLeaseReads(services().db).snapshot(lease_id)
    if snap is None:
        abort(404)
    app, _customer = _application(snap.lease.application_id)
    opts = options_of(snap.lease, snap.instalments, snap.business_date)
    try:
        made = refinance(snap.lease, app, opts.final_left, term)
    except RefinanceRefused as exc:
        return _page(lease_id, 409 if exc.field == "option" else 422, term=str(term),
                     errors={exc.field: in_locale(exc.zh, exc.en)})
    return redirect(url_for("applications.detail", application_id=made.application_id), 303)


@bp.get("/leases/<lease_id>/end-of-term")
@lessee_or_staff
def page(lease_id: str) -> Any:
    return _page(lease_id)


@bp.post("/leases/<lease_id>/end-of-term")
@lessee_or_staff
def choose(lease_id: str) -> Any:
    snap = SqlLeaseReads(services().db).snapshot(lease_id)
    if snap is None:
        abort(404)
    _app, customer = _application(snap.lease.application_id)
    if not customer:
        abort(403)  # the lessee chooses; staff see the page read-only
    option = request.form.get("option", "")[:16]
    repo = SqlEndOfTerm(services().db)
    # a refinance not approved: another way may be chosen within 5 working days of the result (第七条)
    again = repo.rechoice(lease_id)
    reopen = again is not None and again.open
    if option not in OPTIONS:
        return _page(lease_id, 422, error=in_locale("请选择一种期满方式", "Choose one of the options"))
    if reopen and option == REFINANCE:
        return _page(lease_id, 422, chosen=option, error=in_locale(
            "再融资未获批准：请改选留购或退还车辆",
            "The refinancing was not approved: choose to keep or to return the car"))
    term = None
    if option == REFINANCE:  # the new plan's term, checked before the choice is recorded
        term, refused = _term(lease_id, option)
        if refused is not None:
            return refused
    if not in_window(snap.lease.ends_on, snap.business_date):
        return _page(lease_id, 422, chosen=option, error=in_locale(
            f"期满选择自 {window_opens(snap.lease.ends_on).isoformat()} 起开放",
            f"The options open on {window_opens(snap.lease.ends_on).isoformat()}"))
    opts = options_of(snap.lease, snap.instalments, snap.business_date)
    if option not in opts.offers:  # a lease without a final rent: keeping the car is its contract's only way
        return _page(lease_id, 422, error=in_locale(
            "您的合同不设尾付租金：付清全部租金及留购价后车辆即归您所有，无退还车辆或再融资选项",
            "Your contract has no final rent: the car is yours once every rent and the purchase price are paid; "
            "it offers no return and no refinance"))
    figures = {"final_rent": opts.final_left, "purchase_price": opts.purchase.price.fen,
               "purchase_price_stated": opts.purchase.price.stated, "arrears": opts.arrears,
               "deposit": snap.lease.deposit, "product_version": load_product().version,
               "returns": None if opts.returns is None else {
                   "allowance_km": opts.allowance_km, "excess_mileage_rate": str(opts.returns.excess_mileage_rate),
                   "damage": {d.code: str(d.charge) for d in opts.returns.damage_items}}}
    try:
        record = repo.choose_again if reopen else repo.choose
        record(lease_id, option, by="customer", terms=figures, purchase_price=opts.purchase.price.fen, now=utc_now(),
               actor_id=getattr(g.get("user"), "id", None))
    except ChoiceRefused as exc:
        return _page(lease_id, 409, chosen=option, error=in_locale(exc.zh, exc.en))
    if term is not None:
        return _refinance(lease_id, term)
    return redirect(url_for("end_of_term.page", lease_id=lease_id), 303)


@bp.post("/leases/<lease_id>/end-of-term/refinance")
@lessee_or_staff
def refinance_again(lease_id: str) -> Any:
    """The lessee who chose to refinance opens (or, when it could not be made with the choice, makes) the new
    application; staff see the page read-only."""
    snap = SqlLeaseReads(services().db).snapshot(lease_id)
    if snap is None:
        abort(404)
    _app, customer = _application(snap.lease.application_id)
    if not customer:
        abort(403)
    term, refused = _term(lease_id, REFINANCE)
    return refused if term is None else _refinance(lease_id, term)


# -- the dealer's inspection of a returned car -------------------------------------------------------------------
def _inspector(lease_id: str) -> tuple[LeaseRow, Options, Any]:
    user: Staff | None = g.get("user")
    if user is None:
        abort(404)
    snap = SqlLeaseReads(services().db).snapshot(lease_id)
    if snap is None:
        abort(404)
    app = services().applications.repo.get(snap.lease.application_id, staff_scope(user))
    if app is None or app.dealer_id != snap.lease.dealer_id:
        abort(404)
    opts = options_of(snap.lease, snap.instalments, snap.business_date)
    if opts.choice is None or opts.choice.option != "return":
        abort(404)
    return snap.lease, opts, app


def _handover_km(application_id: str) -> int:
    handover = SqlHandovers(services().db).get(application_id)
    return handover.odometer_km if handover is not None else 0


def _inspection_page(lease_id: str, status: int = 200, **context: Any) -> Any:
    lease, opts, app = _inspector(lease_id)
    context.setdefault("form", {"mileage": "", "damage": [], "notes": ""})
    context.setdefault("errors", {})
    return render_template("servicing/inspection.html", lease=lease, o=opts, app=app,
                           handover_km=_handover_km(app.id), **context), status


@bp.get("/servicing/returns/<lease_id>/inspection")
@requires(INSPECT)
def inspection(lease_id: str) -> Any:
    return _inspection_page(lease_id)


@bp.post("/servicing/returns/<lease_id>/inspection")
@requires(INSPECT)
def inspect(lease_id: str) -> Any:
    lease, opts, app = _inspector(lease_id)
    typed = request.form.get("mileage", "").strip()[:12]
    damage = [c[:32] for c in request.form.getlist("damage")][:20]
    notes = request.form.get("notes", "")[:2000]
    form = {"mileage": typed, "damage": damage, "notes": notes}
    opens = inspection_opens(lease.ends_on, json.loads(lease.terms or "{}"))
    if opts.today < opens:  # the car comes back at the term's end (or within the window its contract allows)
        return _inspection_page(lease_id, 409, form=form, errors={"form": in_locale(
            f"租期于 {lease.ends_on.isoformat()} 届满：车辆验收自 {opens.isoformat()} 起方可登记",
            f"The term ends on {lease.ends_on.isoformat()}: the inspection can be recorded from {opens.isoformat()}")})
    errors: dict[str, str] = {}
    reading = whole_number(typed)
    charges = None
    if reading is None:
        errors["mileage"] = in_locale("请填写里程表读数（公里，整数）", "Enter the odometer reading (whole km)")
    else:
        try:
            charges = return_charges(opts.returns, lease.term, _handover_km(app.id), reading, damage)
        except ReturnRefused as exc:
            errors[exc.field] = in_locale(exc.zh, exc.en)
    if not printable(notes.replace("\r", " ").replace("\n", " ")):
        errors["notes"] = in_locale("备注不能含控制字符", "The notes cannot contain control characters")
    photos = [f for f in request.files.getlist("photos") if f and f.filename][:MAX_PHOTOS + 1]
    images: list[bytes] = []
    if not photos:
        errors["photos"] = in_locale("请至少拍摄一张车辆照片", "Take at least one photo of the car")
    elif len(photos) > MAX_PHOTOS:
        errors["photos"] = in_locale(f"最多上传 {MAX_PHOTOS} 张照片", f"At most {MAX_PHOTOS} photos")
    else:
        for photo in photos:
            try:
                image = load_image(photo.read(MAX_PHOTO_BYTES + 1), max_bytes=MAX_PHOTO_BYTES,
                                   min_side=MIN_PHOTO_SIDE, longest=2048)
            except ImageRejected as exc:
                errors["photos"] = in_locale(exc.reason.text_zh, exc.reason.text_en)
                break
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=85)
            images.append(out.getvalue())
    if errors or charges is None:
        return _inspection_page(lease_id, 422, form=form, errors=errors)
    store = services().store
    keys: list[str] = []
    try:
        store.ensure_bucket()
        for data in images:
            key = object_key(app.dealer_id, app.id, "return_photo", f"{uuid.uuid4().hex}.jpg")
            keys.append(key)
            store.put(key, data, "image/jpeg", {"application": app.id, "kind": "return_photo"})
    except StorageError:
        _discard(keys)
        return _inspection_page(lease_id, 503, form=form, errors={"photos": in_locale(
            "照片暂时无法保存，请稍后再试", "The photos cannot be stored just now: try again in a moment")})
    settlement = return_settlement(charges, opts.arrears, lease.deposit)
    user: Staff = g.user
    figures = {"driven_km": charges.driven_km, "allowance_km": charges.allowance_km, "excess_km": charges.excess_km,
               "damage": [{"code": d.code, "charge": d.charge} for d in charges.damage],
               "arrears": opts.arrears, "deposit": lease.deposit, "deduction": settlement.deduction,
               "refund": settlement.refund, "owed": settlement.owed}
    try:
        SqlEndOfTerm(services().db).record_inspection(lease_id, Inspection(
            mileage_km=reading or 0, photo_keys=tuple(keys), damage_items=tuple(d.code for d in charges.damage),
            damage_charge=charges.damage_charge, excess_mileage_charge=charges.excess_mileage_charge, notes=notes,
            inspected_by=user.id, figures=figures), utc_now())
    except ChoiceRefused as exc:
        _discard(keys)  # nothing points to them
        return _inspection_page(lease_id, 409, form=form, errors={"form": in_locale(exc.zh, exc.en)})
    except BaseException:
        _discard(keys)
        raise
    return redirect(url_for("end_of_term.inspection", lease_id=lease_id), 303)


def _discard(keys: list[str]) -> None:
    """Remove the photos of an inspection that was not recorded (nothing would point to them); storage away: each one
    left behind is logged with its key."""
    for key in keys:
        try:
            services().store.delete(key)
        except StorageError:
            log.warning("a refused inspection's photo %s could not be removed", key)


# -- the end-of-term desk (ops) ------------------------------------------------------------------------------------
#: who works the desk: the collections desk's staff (the lessor's ops, a dealer's admin for their dealer)
DESK = "collections.work"


@bp.get("/servicing/end-of-term")
@requires(DESK)
def desk() -> Any:
    """What ops do by hand at the end of terms: a refinance whose new application reached its handover while the old
    final rent is still open (its lease, once opened, pays it off), and each return the dealer has not inspected
    within the policy's days."""
    user: Staff = g.user
    day = SqlServicing(services().db).business_date()
    days = services().plans.policy.inspection_overdue_days
    repo = SqlEndOfTerm(services().db)
    found = repo.desk(tenant_of(user), day, days)
    return render_template("servicing/eot_desk.html", desk=found, today=day, days=days,
                           awaiting=repo.returns_for(tenant_of(user)))
