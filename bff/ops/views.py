"""``/ops/jobs``: the job queue for the lessor's ops admins — counts by queue and state, the failed and stalled jobs
with their last error, retry and cancel (each audited). ``leaseline jobs list|retry|cancel`` does the same from a
terminal. A job's arguments are ids only (never a name or a number of a person), and they are not shown."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import lazy_gettext

from bff.auth.session import client
from bff.auth.session import requires
from bff.services import services
from infra.jobs import STATES

bp = Blueprint("jobs_ops", __name__)
SHOWN = ("failed", "doing", "todo")  # what needs a look: failed first, then running (stalled ones), then waiting
#: procrastinate's states (infra.jobs.STATES) as ops read them, in the column heads and the filter
STATE_NAMES = {"todo": lazy_gettext("Waiting"), "doing": lazy_gettext("Running"), "failed": lazy_gettext("Failed"),
               "succeeded": lazy_gettext("Succeeded"), "cancelled": lazy_gettext("Cancelled"),
               "aborted": lazy_gettext("Aborted")}


@bp.get("/ops/jobs")
@requires("jobs.manage")
def jobs() -> Any:
    state = request.args.get("state", "failed")
    state = state if state in STATES else "failed"
    queue = services().jobs
    return render_template("ops/jobs.html", counts=queue.counts(), states=STATES, state=state, names=STATE_NAMES,
                           stalled=queue.jobs(states=("doing",), stalled_only=True, limit=50),
                           jobs=queue.jobs(states=(state,), limit=100), notice=request.args.get("notice", ""))


@bp.post("/ops/jobs/<int:job_id>/retry")
@requires("jobs.manage")
def retry(job_id: int) -> Any:
    return _act("jobs.retry", job_id, services().jobs.retry)


@bp.post("/ops/jobs/<int:job_id>/cancel")
@requires("jobs.manage")
def cancel(job_id: int) -> Any:
    return _act("jobs.cancel", job_id, services().jobs.cancel)


def _act(action: str, job_id: int, act: Any) -> Any:
    queue = services().jobs
    job = queue.job(job_id)
    done = job is not None and act(job_id)
    c = client()
    services().audit.append(action, "success" if done else "refused", actor_id=g.user.id, actor_label=g.user.email,
                            dealer_id=None, target=f"job:{job_id}", ip=c.ip, user_agent=c.user_agent,
                            details={"task": job.task if job else None, "state": job.state if job else None})
    notice = "done" if done else "refused"
    return redirect(url_for("jobs_ops.jobs", state=request.form.get("state", "failed"), notice=notice), 303)
