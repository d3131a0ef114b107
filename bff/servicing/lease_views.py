"""The lease page, ``/leases/<lease_id>`` (issue 18 §8: 我的租赁 on the phone): the next rent and its day, what is
late with its late charges and what to do, the schedule row by row, pay now, an early-settlement quote for a date
the customer picks (request only: paying it comes later), the contract and the handover record.

Who opens it (:func:`lessee_or_staff`):

- the lessee — the customer whose application it is, by the session of their invitation or of 我的租赁 (mobile
  number and code): the lease's application must be one they started through an invitation confirmed by a code to
  that very number (:meth:`bff.invitations.returning.ReturningCustomers.invitation_for`); the page then binds this
  device to that invitation, as opening the application from 我的租赁 does, so its documents open for them too;
- staff holding ``leases.view`` — the dealer's (a salesperson: the leases of their own applications), the lessor's
  ops (every dealer's) — read-only: no pay button, worded for staff, the mobile number masked;
- anybody else: 404 for a lease that is not theirs (as if there were none), 403 for a staff role without the
  permission; signed out: the customer's sign-in, then back here.

Personal: never cached (``no-store``, bff/caching.py, as every response). A couple of queries: the lease with its
instalments and the business date (infra/lease_reads.py), the application (scoped), the calendar ops loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from functools import wraps
from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for

from bff.applications.access import staff_scope
from bff.auth.roles import allowed
from bff.invitations.returning_views import SIGNED_IN
from bff.invitations.returning_views import returning
from bff.invitations.returning_views import signed_in_hash
from bff.rendering import page_or_block
from bff.services import services
from bff.servicing.lease_page import DateRefused
from bff.servicing.lease_page import quote
from bff.servicing.lease_page import settlement_date
from bff.servicing.lease_page import settlement_dates
from bff.servicing.lease_page import standing
from infra.accounts import Staff
from infra.applications import Application
from infra.applications import Scope
from infra.collections import SqlCollections
from infra.db.models import LeaseRow
from infra.lease_reads import SqlLeaseReads
from infra.servicing import ACTIVE
from infra.servicing import SqlServicing
from infra.settlements import SETTLED_LEASE
from infra.settlements import SqlSettlements

bp = Blueprint("lease_page", __name__)
#: staff who see a lease: the dealer's and the lessor's ops (bff/auth/roles.py)
PERMISSION = "leases.view"
#: the application statuses that have a lease in force (or had one): the handover was signed
HANDED_OVER = ("delivered", "closed")


def customer_or_staff(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A guard for a lease's pages: staff with ``permission`` (403 without it), or a customer signed in on this
    device; a signed-out visitor signs in as a customer (我的租赁) and comes back. Which lease is theirs is decided by
    the view (404). The guard carries its permission for the access probe."""

    def guard(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user: Staff | None = g.get("user")
            if user is not None:
                if not allowed(user, permission):
                    abort(403)
            elif signed_in_hash() is None:
                return redirect(url_for("invitations.returning.sign_in", next=request.path))
            return view(*args, **kwargs)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return guard


#: the lease page's guard: staff who may see leases (:data:`PERMISSION`) or the lessee
lessee_or_staff = customer_or_staff(PERMISSION)


def _application(application_id: str) -> tuple[Application, bool]:
    """The lease's application if the visitor may see it (404 otherwise), and whether they are its customer."""
    repo = services().applications.repo
    user: Staff | None = g.get("user")
    if user is not None:
        found = repo.get(application_id, staff_scope(user))
        if found is None:
            abort(404)
        return found, False
    mobile_hash = signed_in_hash()
    invitation_id = returning().invitation_for(mobile_hash, application_id) if mobile_hash else None
    found = repo.get(application_id, Scope(mobile_hash=mobile_hash)) if invitation_id else None
    if found is None or mobile_hash is None or invitation_id is None:
        abort(404)
    # the lessee on this device: their application's pages (the contract, the handover record) open for them too
    if session.get(SIGNED_IN) != mobile_hash or session.get("customer_invitation") != invitation_id:
        session[SIGNED_IN], session["customer_invitation"] = mobile_hash, invitation_id  # (written only if new)
    return found, True


@bp.get("/leases/<lease_id>")
@lessee_or_staff
def lease(lease_id: str) -> Any:
    return lease_response(lease_id, request.args.get("settle_on", "")[:32])


def lease_response(lease_id: str, typed: str, *, status: int = 200) -> Any:
    """The lease page with the quote for the date ``typed`` (none: the earliest), 422 when it cannot be quoted (the
    field error shown, the date kept); also the answer of a settlement request refused (bff/servicing/settle.py)."""
    svc = services()
    snap = SqlLeaseReads(svc.db).snapshot(lease_id)
    if snap is None:
        abort(404)
    app, customer = _application(snap.lease.application_id)
    lease_row, instalments, today = snap.lease, snap.instalments, snap.business_date
    active = lease_row.status == ACTIVE
    # the end of the term chosen: settled on its own page, not early (infra/settlements.py offer refuses a quote)
    end_of_term = active and SqlSettlements(svc.db).end_of_term_chosen(lease_row.id)
    calendar = SqlServicing(svc.db).calendar() if active and not end_of_term else None
    dates = settlement_dates(lease_row, instalments, today, calendar) if calendar is not None else None
    settlement, error = None, None
    if dates is not None and calendar is not None:
        try:
            on = settlement_date(typed, dates) if typed else dates.earliest
            settlement = quote(lease_row, instalments, on, calendar) if on is not None else None
        except DateRefused as exc:
            error, status = exc.error, 422
    response = page_or_block(
        "servicing/lease.html", "settlement", lease=lease_row, app=app, customer=customer, today=today,
        standing=standing(instalments, today), dates=dates, settlement=settlement, settle_on=typed or (
            dates.earliest.isoformat() if dates and dates.earliest else ""), error=error, active=active,
        pay_url=f"/leases/{lease_row.id}/pay", may_settle=_may_settle(lease_row, customer), end_of_term=end_of_term,
        settled_quote=SqlSettlements(svc.db).paid_quote(lease_row.id) if lease_row.status == SETTLED_LEASE else None,
        autopay=SqlCollections(svc.db).active_mandate(app.id) if active else None)
    response.status_code = status
    return response


def _may_settle(lease_row: LeaseRow, customer: bool) -> bool:
    """Whether the visitor may request (and pay) a settlement: the lessee, or the dealer's staff who may edit the
    application (the lessor's ops read quotes only: bff/servicing/settle.py)."""
    user: Staff | None = g.get("user")
    return customer or (user is not None and not user.lessor_side and user.dealer_id == lease_row.dealer_id
                        and allowed(user, "applications.edit"))


def lease_links(apps: Iterable[Application]) -> dict[str, str]:
    """``{application id: lease id}`` of those of ``apps`` handed over (one query; none when none is)."""
    handed_over = [a.id for a in apps if a.status in HANDED_OVER]
    return SqlLeaseReads(services().db).lease_ids(handed_over) if handed_over else {}


@bp.app_context_processor
def _links() -> dict[str, object]:
    """``lease_links(apps)`` in every template: 我的租赁 and the application's page link each lease."""
    return {"lease_links": lease_links}
