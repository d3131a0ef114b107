"""The mortgage-release desk (抵押解除, issue 18 §5): once a lease is settled early (bff/servicing/settled.py opens
the task), the dealer's staff release the car's mortgage at the vehicle registration office and record it here.

- ``/servicing/releases``: the open releases the user may see, as the lease page keeps its leases (staff_scope): a
  dealer's salesperson their own customers', the dealer's other staff their dealer's, the lessor's ops every dealer's;
  the oldest first, each with its customer, contract number and settlement day;
  ``?status=released`` lists those done;
- ``/servicing/releases/<lease id>``: one release and the form to record it done — the day, the registration office,
  its reference number and a note —; a POST with a problem answers 422 with each field's error and what was typed.
  A lease the user may not see (another dealer's, another salesperson's customer's) is a 404, a release recorded
  already a 409 (recorded once, audit-logged).

Every response is ``no-store`` (bff/caching.py), as every page with personal data.
"""

from __future__ import annotations

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

from bff.applications.access import staff_actor
from bff.applications.access import staff_scope
from bff.auth.session import requires
from bff.services import services
from infra.accounts import Staff
from infra.lease_documents import OPEN
from infra.lease_documents import RELEASED
from infra.lease_documents import ReleaseLine
from infra.lease_documents import SqlLeaseDocuments
from plans.errors import FieldError
from plans.handover import printable

bp = Blueprint("releases", __name__)
PERMISSION = "releases.work"
MAX_OFFICE, MAX_REFERENCE, MAX_NOTE = 128, 64, 1000


@dataclass(frozen=True)
class ReleaseForm:
    released_on: str
    office: str
    reference: str
    note: str


def _repo() -> SqlLeaseDocuments:
    return SqlLeaseDocuments(services().db)


@bp.get("/servicing/releases")
@requires(PERMISSION)
def desk() -> Any:
    """The releases the user may see: open ones (``?status=released``: those done)."""
    user: Staff = g.user
    status = RELEASED if request.args.get("status") == RELEASED else OPEN
    dealers = {d.id: d.name for d in services().accounts.dealers()} if user.lessor_side else {}
    return render_template(
        "servicing/releases.html", lines=_repo().releases(staff_scope(user), status), status=status, dealers=dealers
    )


def _release_or_404(lease_id: str) -> ReleaseLine:
    found = _repo().release(lease_id[:36], staff_scope(g.user))
    if found is None:
        abort(404)
    return found


def _page(
    line: ReleaseLine, status: int = 200, errors: list[FieldError] | None = None, form: ReleaseForm | None = None
) -> Any:
    today = _repo().business_date()
    return render_template(
        "servicing/release.html",
        line=line,
        today=today,
        form=form or ReleaseForm(today.isoformat(), "", "", ""),
        field_errors={e.field: e for e in errors or []},
        max_note=MAX_NOTE,
        notice=request.args.get("notice", ""),
    ), status


@bp.get("/servicing/releases/<lease_id>")
@requires(PERMISSION)
def release(lease_id: str) -> Any:
    return _page(_release_or_404(lease_id))


def check(form: ReleaseForm, opened_on: date, today: date) -> tuple[date | None, list[FieldError]]:
    """The release's day (from the day the task was opened to the business date), the office and the reference
    (required, printable, bounded) and the note (optional, bounded): the day and every problem."""
    errors: list[FieldError] = []
    day: date | None = None
    try:
        day = date.fromisoformat(form.released_on.strip())
    except ValueError:
        errors.append(FieldError("released_on", "not_a_date", "请输入解除抵押的日期", "Enter the day of the release"))
    if day is not None and not opened_on <= day <= today:
        errors.append(
            FieldError(
                "released_on",
                "out_of_range",
                f"日期须在 {opened_on.isoformat()} 至 {today.isoformat()} 之间",
                f"The day must be from {opened_on.isoformat()} to {today.isoformat()}",
            )
        )
        day = None
    for name, value, limit, zh, en in (
        ("office", form.office, MAX_OFFICE, "请填写办理解除抵押的车辆管理所", "Enter the vehicle registration office"),
        (
            "reference",
            form.reference,
            MAX_REFERENCE,
            "请填写解除抵押登记的业务编号",
            "Enter the release's registration reference",
        ),
    ):
        text = " ".join(value.split())
        if not text:
            errors.append(FieldError(name, "required", zh, en))
        elif len(text) > limit or not printable(text):
            errors.append(
                FieldError(
                    name,
                    "invalid",
                    f"最多 {limit} 个字符，不含控制字符",
                    f"At most {limit} characters, no control characters",
                )
            )
    if len(form.note.strip()) > MAX_NOTE or not printable(form.note.replace("\n", " ").replace("\r", " ")):
        errors.append(
            FieldError(
                "note",
                "too_long",
                f"备注最多 {MAX_NOTE} 字，不含控制字符",
                f"At most {MAX_NOTE} characters, no control characters",
            )
        )
    return day, errors


@bp.post("/servicing/releases/<lease_id>")
@requires(PERMISSION)
def record(lease_id: str) -> Any:
    """Record the release done: 422 with the page, what was typed and each problem, when it is not right."""
    line = _release_or_404(lease_id)
    form = ReleaseForm(
        request.form.get("released_on", "")[:32],
        request.form.get("office", "")[: 4 * MAX_OFFICE],
        request.form.get("reference", "")[: 4 * MAX_REFERENCE],
        request.form.get("note", "")[: 4 * MAX_NOTE],
    )
    if line.status != OPEN:
        return _page(line, 409)
    day, errors = check(form, line.opened_on, _repo().business_date())
    if errors or day is None:
        return _page(line, 422, errors, form)
    actor = staff_actor()
    done = _repo().record_release(
        line.lease_id,
        released_on=day,
        office=" ".join(form.office.split()),
        reference=" ".join(form.reference.split()),
        note=form.note.strip(),
        done_by=actor.id,
    )
    if not done:  # recorded by someone else meanwhile
        return _page(_release_or_404(lease_id), 409)
    services().audit.append(
        "mortgage.released",
        "success",
        actor_id=actor.id,
        actor_label=actor.label,
        dealer_id=line.dealer_id,
        target=line.lease_id,
        ip=actor.ip,
        user_agent=actor.user_agent,
        details={"released_on": day.isoformat(), "reference": " ".join(form.reference.split())},
    )
    return redirect(url_for("releases.release", lease_id=line.lease_id, notice="recorded"), 303)
