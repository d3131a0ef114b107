"""The collections queue (催收, issue 18 §4) for the lessor's ops (every dealer's leases) and a dealer's admin (the
dealer's own; another dealer's lease is a 404):

- ``/servicing/collections``: the leases in arrears as the last close of business saw them, the gravest bucket first
  (M3+, M2, M1), then the largest amount overdue, each with its days past due, amounts overdue and late charges, the
  M3 flag for the collateral team, the last contact's outcome and the promise to pay (kept or broken);
- ``/servicing/collections/<lease id>``: one lease — its customer (the mobile number masked; a role allowed to see it
  may show it, logged, as on the application), its late rents, the reminders texted, the history (contacts, buckets
  entered, the flag) and the form to record a contact: outcome code, note, promise-to-pay date.

The use cases are bff/servicing/arrears.py's :class:`~bff.servicing.arrears.Collections`; every response is
``no-store`` (bff/caching.py), as every page with personal data.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import abort
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from bff.applications.access import staff_actor
from bff.auth.roles import allowed
from bff.auth.roles import tenant_of
from bff.auth.session import requires
from bff.services import services
from bff.servicing.arrears import MAX_NOTE
from bff.servicing.arrears import OUTCOMES
from bff.servicing.arrears import PROMISE_WITHIN_DAYS
from bff.servicing.arrears import Collections
from bff.servicing.arrears import ContactForm
from infra.accounts import Staff
from infra.arrears import Case
from infra.arrears import SqlArrears
from infra.servicing import SqlServicing
from plans.errors import FieldError
from plans.errors import PlanInputError
from servicing.arrears import BUCKETS

bp = Blueprint("arrears", __name__)
#: what a form keeps of what was typed beyond the note's limit (so that the error can say how long it was)
KEEP = 4 * MAX_NOTE


def _collections() -> Collections:
    svc = services()
    return Collections(SqlArrears(svc.db), SqlServicing(svc.db), svc.audit)


@bp.get("/servicing/collections")
@requires("collections.work")
def queue() -> Any:
    """The leases in arrears of the user's tenant (a bucket's only with ``?bucket=M2``)."""
    user: Staff = g.user
    chosen = request.args.get("bucket", "")
    chosen = chosen if chosen in BUCKETS else ""
    collections = _collections()
    lines = collections.queue(tenant_of(user), (chosen,) if chosen else ())
    dealers = {d.id: d.name for d in services().accounts.dealers()} if user.lessor_side else {}
    return render_template("servicing/collections.html", lines=lines, buckets=BUCKETS, chosen=chosen,
                           dealers=dealers, today=collections.business_date())


def _case_or_404(lease_id: str) -> Case:
    found = _collections().case(lease_id, tenant_of(g.user))
    if found is None:
        abort(404)
    return found


def _case_page(case: Case, status: int = 200, errors: list[FieldError] | None = None,
               form: ContactForm | None = None) -> Any:
    collections = _collections()
    today = collections.business_date()
    return render_template(
        "servicing/collection.html", case=case, outcomes=OUTCOMES, today=today, promise_within=PROMISE_WITHIN_DAYS,
        form=form or ContactForm("", "", ""), field_errors={e.field: e for e in errors or []},
        may_unmask=allowed(g.user, "pii.unmask"), notice=request.args.get("notice", ""), max_note=MAX_NOTE), status


@bp.get("/servicing/collections/<lease_id>")
@requires("collections.work")
def case(lease_id: str) -> Any:
    """One lease in (or once in) arrears, its history and the contact form."""
    return _case_page(_case_or_404(lease_id))


@bp.post("/servicing/collections/<lease_id>/contacts")
@requires("collections.work")
def record(lease_id: str) -> Any:
    """Record a contact with the customer: 422 with the page, what was typed and each problem, when it is not right."""
    found = _case_or_404(lease_id)
    form = ContactForm(request.form.get("outcome", "")[:32], request.form.get("note", "")[:KEEP],
                       request.form.get("promise_date", "")[:32])
    user: Staff = g.user
    try:
        _collections().record(staff_actor(), found, form, user.name)
    except PlanInputError as exc:
        return _case_page(found, 422, exc.errors, form)
    return redirect(url_for("arrears.case", lease_id=found.lease_id, notice="recorded") + "#history", 303)
