"""The lessor's back office for payments, and the lease after delivery.

- ``/payments``: every payment across applications (a dealer's admin: the dealer's own only), filtered by status,
  kind, dealer and transfer; the dealers' shares (分账) Stripe refused, with a retry; the leases whose term has
  ended, to close (结清); the settlements under way; the reconciliation with Stripe on demand.
- ``/applications/<id>/lease``: the handover (交车) that starts the term, the term's end, the closing with a
  deduction, and how the settlement went. The customer may open it too (their own lease): they see dates and
  amounts, not who of the staff acted nor Stripe's words about a refused step; never cached.

The rules live in :class:`bff.payments.settlement.SettlementService` (its module docstring: "End of the term").
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from flask import Blueprint
from flask import Response
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale

from bff.applications.access import actor
from bff.applications.access import application_or_404
from bff.applications.access import log_document_view
from bff.applications.access import may
from bff.applications.access import may_edit
from bff.applications.access import per_application
from bff.applications.access import requires_actor
from bff.applications.access import staff_actor
from bff.applications.access import staff_label
from bff.applications.contracts import same_press
from bff.applications.services import NotAllowed
from bff.applications.views import CODE_PROBLEM
from bff.applications.views import MAX_SIGNATURE_BYTES
from bff.applications.views import confirmed_code
from bff.applications.views import contract_bytes
from bff.applications.views import decoded_signature
from bff.applications.views import keep_refused
from bff.applications.views import refused_input
from bff.applications.views import refused_problem
from bff.applications.views import remember_code
from bff.applications.views import signature_problem
from bff.auth.roles import tenant_of
from bff.auth.session import requires
from bff.extensions import htmx
from bff.extensions import limiter
from bff.payments.common import DELIVERABLE
from bff.payments.forms import yuan_to_fen
from bff.payments.handover import version
from bff.payments.machine import CLOSED
from bff.payments.machine import DEDUCTIBLE
from bff.payments.machine import DELIVERED
from bff.payments.machine import STATUSES
from bff.payments.machine import deduction_limit
from bff.payments.machine import deduction_reason
from bff.payments.machine import due_for_closing
from bff.payments.machine import plan_settlement
from bff.payments.machine import secured
from bff.rendering import in_locale as _msg
from bff.rendering import page_or_block
from bff.services import services
from infra.accounts import Staff
from infra.applications import Application
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.handovers import PREPARED
from infra.handovers import Handover
from infra.payments import PaymentsError
from plans.errors import FieldError
from plans.handover import HANDOVER_ITEMS
from plans.handover import MAX_KEYS
from plans.handover import MAX_ODOMETER_KM
from plans.handover import printable
from plans.timeline import timeline

bp = Blueprint("payment_ops", __name__)
log = logging.getLogger(__name__)
KINDS = ("upfront", "deposit", "hold")
TRANSFERS = ("due", "sending", "sent", "failed")
LIST_LIMIT = 200
HANDED_OVER = (DELIVERED, CLOSED)


# -- /payments ---------------------------------------------------------------------------------------------------
def _filters(user: Staff) -> dict[str, Any]:
    """The list's filters from the query string; unknown values are dropped (a shared link stays usable)."""
    args = request.args
    dealers = services().accounts.dealers() if user.lessor_side else []
    dealer = args.get("dealer", "")
    return {"statuses": [s for s in args.getlist("status") if s in STATUSES],
            "kinds": [k for k in args.getlist("kind") if k in KINDS],
            "dealer": dealer if any(d.id == dealer for d in dealers) else "",
            "transfer": args.get("transfer", "") if args.get("transfer", "") in TRANSFERS else "",
            "dealers": dealers}


def _ops_context(reconciliation: dict[str, Any] | None = None, transfer_error: str | None = None) -> dict[str, Any]:
    user: Staff = g.user
    payments = services().payments
    svc, store = payments.settlement, payments.store
    tenant = tenant_of(user)  # a dealer's admin: their dealer only, whatever the query string says
    f = _filters(user)
    dealer = tenant or f["dealer"] or None
    query = {"dealer_id": dealer, "statuses": f["statuses"], "kinds": f["kinds"], "transfer": f["transfer"] or None}
    names = {d.id: d.name for d in f["dealers"]} if user.lessor_side else {
        user.dealer_id: getattr(services().accounts.dealer(user.dealer_id or ""), "name", "")}
    to_close = svc.leases_to_close(tenant)
    lines = store.search(**query, limit=LIST_LIMIT)
    # 免押 leases whose hold lapsed after the handover: no security held (said so on their hold and due lines)
    lapsed = {line.payment.application_id for line in lines if line.payment.kind == "hold"
              and line.payment.status == "expired" and line.application_status in HANDED_OVER}
    lapsed |= {line.term.application_id for line in to_close}
    unsecured = {app_id for app_id in lapsed if svc.unsecured(app_id)}
    return {"lines": lines, "totals": store.totals(**query), "unsecured": unsecured,
            "failed": store.search(dealer_id=tenant, transfer="failed", limit=LIST_LIMIT),
            "to_close": to_close, "settling": svc.open_settlements(tenant),
            # signed webhook events refused (not about a payment as we made it): the lessor's ops, every dealer
            "refused": store.refused_events() if user.lessor_side else [],
            "limits": {line.term.application_id: deduction_limit(*svc.security(line.term.application_id))
                       for line in to_close},
            "deductible": DEDUCTIBLE, "statuses": STATUSES, "kinds": KINDS, "transfers": TRANSFERS, "f": f,
            "dealer_names": names,
            "lessor": user.lessor_side, "may_manage": may("payments.manage"), "limit": LIST_LIMIT,
            "reconciliation": reconciliation, "transfer_error": transfer_error, "today": svc.today()}


@bp.get("/payments")
@requires("payments.view")
def index() -> Any:
    return page_or_block("payments/index.html", "results", **_ops_context())


@bp.get("/payments/reconcile")
@requires("payments.manage")
@limiter.limit("10 per minute", key_func=lambda: f"reconcile:{getattr(g.get('user'), 'id', '')}")
def reconcile() -> Any:
    """What ``leaseline payments reconcile`` reports, on demand: every disagreement with Stripe."""
    payments = services().payments
    try:
        problems = payments.reconciliation.reconcile()
    except PaymentsError as exc:
        reconciliation: dict[str, Any] = {"error": _msg("无法连接支付服务，请稍后再试", "Stripe could not be reached: "
                                                                                 "try again shortly"),
                                          "detail": str(exc)[:200]}
        status = 503
    else:
        reconciliation = {"checked": len(payments.store.all()), "problems": problems}
        status = 200
    response = page_or_block("payments/index.html", "reconcile", **_ops_context(reconciliation))
    response.status_code = status
    return response


@bp.post("/payments/<payment_id>/transfer")
@requires("payments.manage")
def retry_transfer(payment_id: str) -> Any:
    """Send a refused dealer share (分账) again, as a new attempt."""
    try:
        services().payments.payouts.retry_transfer(staff_actor(), payment_id, tenant_of(g.user))
    except NotAllowed as exc:
        response = page_or_block("payments/index.html", "transfers",
                                 **_ops_context(transfer_error=_msg(exc.text_zh, exc.text_en)))
        if not htmx:  # htmx swaps only 2xx and 422 answers: it shows the reason in the section instead
            response.status_code = 404 if exc.code == "not_found" else 409
        return response
    if htmx:
        return page_or_block("payments/index.html", "transfers", **_ops_context())
    return redirect(url_for("payment_ops.index", transfer="failed"), 303)


# -- /applications/<id>/lease ------------------------------------------------------------------------------------
def _lease_page(app: Application, status: int = 200, errors: list[FieldError] | None = None,
                form: dict[str, str] | None = None, error: str | None = None,
                handover_form: dict[str, Any] | None = None, confirm: dict[str, Any] | None = None) -> Any:
    """The lease page. Staff see who handed the lease over and closed it, and the settle job's notes (Stripe's
    words when it refused a step); a customer sees the dates and amounts only."""
    svc = services().payments.settlement
    payments = svc.store.for_application(app.id)
    term = svc.term(app)
    today = svc.today()
    deposit_left, hold_live = svc.security(app.id)
    context = {
        "app": app, "term": term, "payments": payments, "today": today, "errors": errors or [],
        "error": error, "form": form or {"deduction": "", "item": "", "reason": ""},
        "deductible": DEDUCTIBLE,
        "field_errors": {e.field: e for e in errors or []},
        "secured": secured((p.kind, p.status) for p in payments), "deposit_left": deposit_left,
        "hold_live": hold_live, "limit": deduction_limit(deposit_left, hold_live),
        "plan": plan_settlement(0, deposit_left, hold_live),
        "due": term is not None and due_for_closing(term.ends_on, today),
        "may_deliver": may("leases.deliver") and app.status == DELIVERABLE,
        # a lease in servicing ends, and settles its deposit, with the lease (infra/end_of_term.py, settlements.py):
        # ops' close would be refused (409), so it is not offered
        "serviced": (serviced := app.status == DELIVERED and svc.store.serviced(app.id)),
        "may_close": may("payments.manage") and app.status == DELIVERED and not serviced,
        "may_manage": may("payments.manage"),
        "staff": actor().kind == "staff",
        "unsecured": app.status in HANDED_OVER and svc.unsecured(app.id),
        **_handover_context(app, today, handover_form, confirm),
    }
    return render_template("payments/lease.html", **context), status


def _handover_context(app: Application, today: date, form: dict[str, Any] | None,
                      confirm: dict[str, Any] | None) -> dict[str, Any]:
    """The handover record on the lease page: the dealer's form (what they typed kept after an error), the
    record as the customer confirms it with the dates it would fix if signed today, and the signed record."""
    handover = services().handovers.get(app)
    months = int(app.plan.get("quote", {}).get("term") or 0)
    timing = str(app.plan.get("choice", {}).get("timing") or "arrears")
    dates = timeline(today, months, "advance" if timing == "advance" else "arrears") if months > 0 else None
    if form is None:
        form = {"odometer": str(handover.odometer_km) if handover else "", "keys": str(handover.keys) if handover
                else "2", "items": list(handover.items) if handover else [], "vin_checked": False,
                "note": handover.note if handover else ""}
    pending = handover is not None and handover.status == PREPARED and app.status == DELIVERABLE
    return {"handover": handover, "handover_form": form, "handover_items": HANDOVER_ITEMS,
            "would_start": dates, "confirm": confirm or {"signature": "", "code_sent": request.args.get("sent") == "1",
                                                         "accepted": False},
            # the customer on their own phone, or on the dealer's device handed to them (as for the contract)
            "may_confirm": pending and may_edit(), "handover_version": version(handover) if handover else "",
            "vin": services().applications.draft(app).get("vin", "").upper() if pending else "",
            "handed_over_items": _item_names(handover.items) if handover else ""}


def _item_names(codes: tuple[str, ...]) -> str:
    """What goes with the car, named in the page's language (— for nothing)."""
    zh = str(get_locale() or "zh_CN").startswith("zh")
    names = [HANDOVER_ITEMS[code][0 if zh else 1] for code in codes if code in HANDOVER_ITEMS]
    return ("、" if zh else ", ").join(names) or "—"


@bp.app_template_global()
def handover_refusal(app: Any) -> Handover | None:
    """The customer's refusal of the vehicle that the dealer has still to put right (the handover of an application
    ready for delivery), else None: the status words (pwa/templates/applications/_macros.html waiting_label), the
    work page and the pipeline say what it waits for. Read once per application and request."""
    application_id = getattr(app, "id", None)
    if getattr(app, "status", None) != DELIVERABLE or not isinstance(application_id, str):
        return None
    found: dict[str, Handover | None] = g.setdefault("handover_refusals", {})
    if application_id not in found:
        found[application_id] = services().handovers.store.refused(application_id)
    return found[application_id]


@bp.get("/applications/<application_id>/lease")
@requires_actor("applications.view")
def lease(application_id: str) -> Any:
    app = application_or_404(application_id)
    kept = refused_input(app, "handover")  # the answer to a refused code (handover/sign): the error, once
    if kept is None:
        return _lease_page(app)
    handover = services().handovers.get(app)
    # the drawing and the tick come back for the recording they were given for, never onto a record changed since
    given = handover is not None and kept.get("held") == version(handover)
    return _lease_page(app, errors=[CODE_PROBLEM], confirm={
        "signature": str(kept.get("signature") or "") if given else "", "code_sent": True,
        "accepted": given and kept.get("accepted") is True})


# -- the handover record (交接确认书): the dealer records it, the customer confirms and signs or refuses -------------
def _handover_form() -> dict[str, Any]:
    form = request.form
    return {"odometer": form.get("odometer", "")[:16].strip(), "keys": form.get("keys", "")[:4].strip(),
            "items": [i for i in form.getlist("item")[:len(HANDOVER_ITEMS) + 1] if i in HANDOVER_ITEMS],
            "vin_checked": form.get("vin_checked") == "yes", "note": form.get("note", "")[:500]}


@bp.post("/applications/<application_id>/handover")
@requires_actor("leases.deliver")
def handover(application_id: str) -> Any:
    """The dealer records what is handed over (odometer, keys, items, the VIN checked): the customer then confirms
    it and signs (or refuses the vehicle); the term starts on the day they sign."""
    app = application_or_404(application_id)
    form = _handover_form()
    errors: list[FieldError] = []
    odometer = int(form["odometer"].replace(",", "")) if form["odometer"].replace(",", "").isdigit() else None
    if odometer is None or odometer > MAX_ODOMETER_KM:
        errors.append(FieldError("odometer", "required", "请填写里程表读数（公里，整数）",
                                 "Enter the odometer reading (whole kilometres)"))
    keys = int(form["keys"]) if form["keys"].isdigit() else None
    if keys is None or not 1 <= keys <= MAX_KEYS:
        errors.append(FieldError("keys", "required", f"请填写交付的钥匙数量（1–{MAX_KEYS} 把）",
                                 f"Enter the number of keys handed over (1–{MAX_KEYS})"))
    if not printable(form["note"]):
        errors.append(FieldError("note", "control_characters", "备注含有无法打印的字符（如表情符号），请删除后再保存",
                                 "The note has characters that cannot be printed (such as emoji): remove them"))
    if not form["vin_checked"]:
        errors.append(FieldError("vin_checked", "required", "请核对车架号与合同一致",
                                 "Check that the VIN on the vehicle is the contract's"))
    if errors:
        return _lease_page(app, 422, errors, handover_form=form)
    assert odometer is not None and keys is not None
    try:
        # leases.deliver: dealer staff; the record names them and their dealer, not their e-mail
        services().handovers.prepare(actor(), app, odometer_km=odometer, keys=keys, items=tuple(form["items"]),
                                     note=form["note"], handed_over_by=staff_label(app.dealer_id))
    except NotAllowed as exc:
        return _lease_page(app, 409, error=_msg(exc.text_zh, exc.text_en), handover_form=form)
    return redirect(url_for("payment_ops.lease", application_id=app.id) + "#confirm", 303)


_per_handover = per_application("handover")


@bp.post("/applications/<application_id>/handover/code")
@requires_actor("applications.edit")
@limiter.limit("5 per 10 minutes", key_func=_per_handover)
def handover_code(application_id: str) -> Any:
    """Text the customer the one-time code that confirms they sign the handover record."""
    app = application_or_404(application_id)
    try:
        services().handovers.send_code(app)
    except NotAllowed as exc:
        return _lease_page(app, 409, error=_msg(exc.text_zh, exc.text_en))
    return redirect(url_for("payment_ops.lease", application_id=app.id, sent="1") + "#confirm", 303)


def _pressed_again(app: Application, png: bytes) -> bool:
    """This very confirmation signed the record a moment ago (a double tap's second request): the same recording
    read (its version), the same code and the same drawing; it lands on the signed record, not on an error."""
    handover = services().handovers.get(app)
    if handover is None or handover.record is None or not png or request.form.get("version") != version(handover):
        return False
    code_id = services().handovers.check_code(app, request.form.get("code", "")[:12])
    return code_id is not None and same_press(handover.record, code_id, png)


@bp.post("/applications/<application_id>/handover/sign")
@requires_actor("applications.edit")
@limiter.limit("10 per 10 minutes", key_func=_per_handover)
def handover_sign(application_id: str) -> Any:
    """The customer confirms the record with the code and their signature: the term starts today."""
    app = application_or_404(application_id)
    signature = request.form.get("signature", "")[:3 * MAX_SIGNATURE_BYTES]
    png = decoded_signature(signature)
    if app.status != DELIVERABLE:  # handed over already (this very press a moment ago: a double tap), or not payable
        if _pressed_again(app, png):
            return redirect(url_for("payment_ops.lease", application_id=app.id), 303)
        return _lease_page(app, 409, error=_msg("该车辆已交付或当前无法交车", "The vehicle is handed over already, "
                                                                   "or cannot be handed over now"))
    accepted = request.form.get("accepted") == "yes"
    keep = {"signature": signature if png else "", "code_sent": True, "accepted": accepted}
    code_id = None
    if not accepted:
        error: FieldError | None = FieldError("accepted", "required", "请确认已查验并接收车辆",
                                              "Confirm that you inspected and accept the vehicle")
    elif (error := signature_problem(png)) is None:
        code_id = (services().handovers.check_code(app, request.form.get("code", "")[:12])
                   or confirmed_code(app, "handover"))
        error = None if code_id else CODE_PROBLEM
    if error is CODE_PROBLEM:  # a try of the code spent: the page by GET, so that a refresh spends no other
        keep_refused(app, "handover", request.form.get("version", "")[:64], signature=keep["signature"],
                     accepted=accepted)
        return redirect(url_for("payment_ops.lease", application_id=app.id) + "#sign-error", 303)
    if error is not None:
        return _lease_page(app, 422, [error], confirm=keep)
    assert code_id is not None
    remember_code(app, "handover", code_id)
    try:
        services().handovers.sign(actor(), app, code_id, png, request.form.get("version", "")[:64])
    except NotAllowed as exc:
        return _lease_page(app, 409, error=_msg(exc.text_zh, exc.text_en), confirm=keep)
    except ServiceUnavailable:
        return _lease_page(app, 503, [FieldError(
            "service", "unavailable", "签署服务暂时不可用，您的签名已保留，请稍后再点“确认收车”",
            "Signing is unavailable right now; your signature is kept: press Confirm again shortly")], confirm=keep)
    except ServiceRefused as exc:
        log.error("handover of %s refused by the contract service: %s %s", app.id, exc.status, exc.body)
        return _lease_page(app, 422, [refused_problem(exc, "signature")], confirm=keep)
    return redirect(url_for("payment_ops.lease", application_id=app.id), 303)


@bp.post("/applications/<application_id>/handover/refuse")
@requires_actor("applications.edit")
def handover_refuse(application_id: str) -> Any:
    """The customer refuses the vehicle as recorded, saying why (Civil Code art. 740); the dealer sees it."""
    app = application_or_404(application_id)
    reason = " ".join(request.form.get("reason", "").split())[:500]
    if not reason:
        return _lease_page(app, 422, [FieldError("reason", "required", "请写明拒收的原因",
                                                 "Say why you refuse the vehicle")])
    try:
        services().handovers.refuse(actor(), app, reason)
    except NotAllowed as exc:
        return _lease_page(app, 409, error=_msg(exc.text_zh, exc.text_en))
    return redirect(url_for("payment_ops.lease", application_id=app.id), 303)


@bp.get("/applications/<application_id>/handover.pdf")
@requires_actor("applications.view")
def handover_pdf(application_id: str) -> Any:
    """The signed handover record (personal: no-store, like the contract; a staff member's view is logged)."""
    app = application_or_404(application_id)
    record = services().handovers.get(app)
    if record is None or record.record is None:  # the lease is there: a state, not a 404
        return render_template("error.html", status=409, message=_msg(
            "交接确认书尚未签署", "The handover record has not been signed yet"),
            back=url_for("payment_ops.lease", application_id=app.id)), 409
    response = contract_bytes(app, services().contract.handover_document, "application/pdf")
    if isinstance(response, Response):
        log_document_view(app, "handover_record")
        number = str(record.record.get("contract_number") or app.id[:8])
        response.headers["Content-Disposition"] = f'inline; filename="{number}-handover.pdf"'
    return response


@bp.post("/applications/<application_id>/close")
@requires_actor("payments.manage")
def close(application_id: str) -> Any:
    """Ops close the lease at its term's end in good standing (结清), with a deduction or none."""
    app = application_or_404(application_id)
    form = {"deduction": request.form.get("deduction", "")[:32], "item": request.form.get("item", "")[:32],
            "reason": request.form.get("reason", "")[:200]}
    errors: list[FieldError] = []
    deduction = yuan_to_fen(form["deduction"], blank=0)  # empty: no deduction
    if deduction is None:
        errors.append(FieldError("deduction", "amount", "请输入扣款金额（元，最多两位小数，不扣款请留空）",
                                 "Enter the deduction in yuan (at most two decimals; leave it empty for none)"))
    elif deduction > 0 and form["item"] not in DEDUCTIBLE:
        errors.append(FieldError("item", "required", "请选择扣款对应的合同应付款项",
                                 "Choose the sum due under the contract that the deduction covers"))
    elif deduction > 0 and not form["reason"].strip():
        errors.append(FieldError("reason", "required", "请写明扣款明细（期次、凭证号等）",
                                 "Give the details of the deduction (the months, the voucher number…)"))
    if request.form.get("paid_up") != "yes":
        errors.append(FieldError("paid_up", "required", "请确认租金（含尾付租金）等款项均已结清",
                                 "Confirm that every rent and the residual value have been paid"))
    if errors:
        return _lease_page(app, 422, errors, form)
    assert deduction is not None
    try:
        reason = deduction_reason(form["item"], form["reason"]) if deduction else form["reason"]
        services().payments.settlement.close(actor(), app, deduction, reason)
    except NotAllowed as exc:
        if exc.code in ("deduction", "reason"):
            return _lease_page(app, 422, [FieldError(exc.code, exc.code, exc.text_zh, exc.text_en)], form)
        return _lease_page(app, 409, error=_msg(exc.text_zh, exc.text_en), form=form)
    # the settle job moves the money within seconds (the worker's payments.settle job); the page shows how it went
    return redirect(url_for("payment_ops.lease", application_id=app.id), 303)


@bp.post("/applications/<application_id>/settlement/retry")
@requires_actor("payments.manage")
def retry_settlement(application_id: str) -> Any:
    """Ops dealt with what Stripe refused: settle again now."""
    app = application_or_404(application_id)
    try:
        # Stripe unreachable: it stays due, the job goes on
        services().payments.settlement.retry_settlement(actor(), app)
    except NotAllowed as exc:
        return _lease_page(app, 409, error=_msg(exc.text_zh, exc.text_en))
    return redirect(url_for("payment_ops.lease", application_id=app.id), 303)
