"""A form's POST URL asked with GET: the page the form belongs to, never a 405 dead end (walk-through finding 3).

A form answered in place — a declined card, a wrong signing code, a refused page, any field error re-rendered at
its POST URL — leaves that URL in the address bar. A refresh later (Chromium asks before posting again), a tab the
phone restored or the address bar's Enter then asks it with GET, which only 405 answered ("此处不支持该操作").

Every URL that takes only POST answers GET and HEAD with a 303 to the page :data:`PAGES` names for its endpoint;
the page checks who may see it, as always; nothing is done, nothing is posted again. The JSON API, webhooks, and
``/logout`` and ``/locale`` (never a page of their own) keep their 405. A new POST-only route needs its entry:
tests/integration/test_reloads.py lists any without one. (A parent path is no safe guess: the parent of
``…/documents/<id>/pages`` is an ID card's image, of ``…/pages/<id>/delete`` a page's file.)
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask import current_app
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import RequestRedirect

#: how long an answer kept for the page's GET waits (the browser follows the 303 at once)
KEPT_SECONDS = 300


def keep_once(key: str, **given: Any) -> None:
    """The other half of Post/Redirect/Get: what a refused or declined post answered (its error, what was given with
    it) waits under ``key`` in the session — kept on the server, sealed (bff/auth/server_session.py), never in the URL
    — for the page's next GET, once (:func:`take_once`), so that the browser's refresh of the answer asks for the page
    instead of posting again (a code counted as another try, a payment sent again)."""
    session[key] = {"at": time.time(), **given}


def take_once(key: str) -> dict[str, Any] | None:
    """What :func:`keep_once` kept under ``key``, taken once (a refresh after it shows the page as it is), if fresh."""
    if key not in session:  # nothing written else
        return None
    kept = session.pop(key)
    if not isinstance(kept, dict) or not 0 <= time.time() - float(kept.get("at") or 0) <= KEPT_SECONDS:
        return None
    return kept


_DETAIL, _CONTRACT, _PAYMENT, _LEASE = ("applications.detail", "applications.contract", "payments.payment",
                                        "payment_ops.lease")
#: the endpoint a form posts to → the endpoint of the page the form is on (its arguments come from the POST URL's)
PAGES = {
    "applications.submit": _DETAIL, "applications.answer_offer": _DETAIL, "applications.review": _DETAIL,
    "applications.unmask": _DETAIL,
    "applications.id_card_confirm": "applications.id_card", "id_card_side.check": "applications.id_card",
    "applications.contract_code": _CONTRACT, "applications.contract_explained": _CONTRACT,
    "applications.contract_sign": _CONTRACT,
    # the payment page's forms post under /payments/<payment_id>/…; the page is /applications/<id>/payment
    "payments.pay": _PAYMENT, "payments.authenticate": _PAYMENT, "payments.refresh": _PAYMENT,
    "payments.refund": _PAYMENT, "payments.hold_action": _PAYMENT,
    # the handover and the term's end are on the lease page, /applications/<id>/lease
    "payment_ops.handover": _LEASE, "payment_ops.handover_code": _LEASE, "payment_ops.handover_sign": _LEASE,
    "payment_ops.handover_refuse": _LEASE, "payment_ops.close": _LEASE, "payment_ops.retry_settlement": _LEASE,
    "payment_ops.retry_transfer": "payment_ops.index",
    "documents.upload": "documents.mine", "documents.remove": "documents.mine", "documents.submit": "documents.mine",
    "documents.request_documents": "reviews.case", "documents.accept": "reviews.case",
    "documents.again": "reviews.case",
    "reviews.claim": "reviews.case", "reviews.decide": "reviews.case",
    "privacy.submit": "privacy.page", "privacy.withdraw": "privacy.page", "privacy.answer": "privacy.ops",
    "staff.staff_deactivate": "staff.staff_detail", "staff.staff_role": "staff.staff_detail",
    "staff.dealer_details": "staff.dealers", "staff.dealer_modules": "staff.dealers",
    "staff.group_issuer": "staff.dealers",  # a group's sign-in issuer is set on /dealers
    "jobs_ops.retry": "jobs_ops.jobs", "jobs_ops.cancel": "jobs_ops.jobs",
    "invitations.returning.open_application": "invitations.returning.mine",
    "auth.sign_out_everywhere": "auth.account",
    "rent_pay.authenticate": "rent_pay.page", "arrears.record": "arrears.case",
    "prepay.pay": "prepay.show", "prepay.authenticate": "prepay.show",  # a partial prepayment's offer page
    # early settlement (bff/servicing/settle.py): the request is on the lease page, paying on the quote's page
    "settle.request_quote": "lease_page.lease", "settle.pay": "settle.show", "settle.confirm": "settle.show",
    "end_of_term.refinance_again": "end_of_term.page",  # the refinance's new application (bff/servicing/refinance.py)
    "invoices.correct": "lease_page.lease", "invoices.retry": "lease_page.lease",  # a lease's invoices (ops)
    "books.request_close": "books.index", "books.approve": "books.index", "books.withdraw": "books.index",
    "books.check_now": "books.index",
}
#: machines' URLs: a GET there is a client's mistake, answered 405 (problem+json under /api)
MACHINES = ("/api/", "/webhooks/")


def page_of(path: str) -> str | None:
    """The page (a path) whose form posts to ``path``, or None when ``path`` takes no POST or has no page."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        endpoint, args = adapter.match(path, method="POST")
    except (HTTPException, RequestRedirect):
        return None
    target = PAGES.get(endpoint)
    if target is None or target not in current_app.view_functions:
        return None
    wanted = set().union(*(rule.arguments for rule in current_app.url_map.iter_rules(target)))
    return url_for(target, **{k: v for k, v in args.items() if k in wanted})


def _reload() -> Any:
    """Before the 405 is raised (Flask raises a routing error only when it dispatches, after these hooks)."""
    if not isinstance(request.routing_exception, MethodNotAllowed) or request.method not in ("GET", "HEAD"):
        return None
    if request.path.startswith(MACHINES):
        return None
    target = page_of(request.path)
    return redirect(target, 303) if target else None


def register(app: Flask) -> None:
    """The hook runs first of the app's own, so that no other (which may expect a view) sees the dead end."""
    app.before_request_funcs.setdefault(None, []).insert(0, _reload)
