"""What a risk officer needs to see, built from the risk service's cases and the BFF's own records: the queue's
rows (customer masked, dealer, main reasons, amount, SLA), one case's evidence (the face check with its
per-step same-person distances, the declared income and employment) and the confirmation after a decision."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from flask_babel import format_timedelta
from flask_babel import gettext as _

from bff.documents.services import overdue
from bff.documents.services import paused
from infra.accounts import SqlAccounts
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.documents import OPEN
from infra.documents import DocumentRequest
from infra.documents import SqlDocuments
from kyc.masking import mask_name

#: reasons whose question is the applicant's income: the declared figures go beside them
INCOME_REASONS = frozenset({"THIN_FILE", "INCOME_UNVERIFIED", "INCOME_BELOW_MIN", "AFFORD_RTI", "AFFORD_DSR"})
#: the answers of the application's "work and finances" step an officer weighs (none is a sensitive field:
#: bff.applications.forms marks only the ID and mobile numbers, which stay masked until asked for)
DECLARED = ("employment", "employer", "employment_years", "monthly_income", "housing", "dependants",
            "existing_loans", "monthly_repayments")
MONEY_FIELDS = frozenset({"monthly_income", "monthly_repayments"})


@dataclass(frozen=True)
class Sla:
    """A case's deadline: ``due`` (UTC), how long is ``left`` (or how long ago it passed) in words of the UI
    language, and whether it is ``overdue``."""

    due: datetime | None
    left: str
    overdue: bool


def parse_time(value: object) -> datetime | None:
    """A service's ISO 8601 UTC timestamp (``…Z``) as an aware datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration(delta: timedelta) -> str:
    """A length of time to the minute in at most two units of the UI language: ``2 小时 5 分钟``, ``1 天 3 小时``
    (CLDR unit names through Babel, no rounding up: a deadline is never shown further away than it is)."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    while len(units) > 1 and units[0][0] == 0:
        units.pop(0)
    shown = [u for u in units[:2] if u[0]] or units[:1]  # under a minute: "0 分钟"
    return " ".join(format_timedelta(timedelta(**{unit + "s": n}), granularity=unit, threshold=1)
                    for n, unit in shown)


def sla_of(case: Mapping[str, Any], now: datetime, paused: timedelta = timedelta()) -> Sla:
    """The case's deadline, moved later by the time it ``paused`` waiting for the applicant's documents (the risk
    service's own ``overdue`` flag does not know of that time, so it counts only without a pause)."""
    due = parse_time(case.get("sla_due_at"))
    if due is None:
        return Sla(None, "", bool(case.get("overdue")))
    due += paused
    overdue = case.get("state") != "decided" and (now > due or (not paused and bool(case.get("overdue"))))
    return Sla(due, duration(due - now), overdue)


def amount(value: object) -> Decimal | None:
    """A service's money string (``"154915.80"``) as a Decimal for the ``money`` filter."""
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def customer_of(app: Application | None, case: Mapping[str, Any]) -> str:
    """The customer's name masked (张**): from our application, else as the risk service stored it (masked)."""
    if app is not None and app.customer_name:
        return mask_name(app.customer_name)
    snapshot = (case.get("assessment") or {}).get("snapshot") or {}
    return mask_name(str((snapshot.get("applicant") or {}).get("name") or ""))


def referral_reasons(case: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Why the case is with a person: the assessment's reasons, without the ones a review itself adds."""
    reasons = (case.get("assessment") or {}).get("reasons") or []
    return [r for r in reasons if isinstance(r, dict) and not str(r.get("code", "")).startswith("REVIEW_")]


class DealerNames:
    """Dealer names by id, each looked up once per request."""

    def __init__(self, accounts: SqlAccounts) -> None:
        self.accounts, self.names = accounts, dict[str, str]()

    def __call__(self, dealer_id: object) -> str:
        key = str(dealer_id or "")
        if key and key not in self.names:
            dealer = self.accounts.dealer(key)
            self.names[key] = dealer.name if dealer else ""
        return self.names.get(key, "")


def application_of(case: Mapping[str, Any]) -> str:
    """The id of the case's application (as the case or its assessment names it)."""
    return str(case.get("application_id") or (case.get("assessment") or {}).get("application_id") or "")


def case_requests(documents: SqlDocuments, case: Mapping[str, Any]) -> list[DocumentRequest]:
    """The document requests of the case (of its application, asked for in this case), oldest first."""
    return [r for r in reversed(documents.for_application(application_of(case))) if r.case_id == case.get("id")]


def rows(cases: Iterable[Mapping[str, Any]], repo: SqlApplications, dealers: DealerNames, now: datetime,
         documents: SqlDocuments | None = None) -> list[dict[str, Any]]:
    """One row per case for the queue, with what an officer picks a case by; with ``documents``, the case's latest
    document request (``asked``) and its deadline moved by the time it waited for the applicant."""
    cases = list(cases)
    asked: dict[str, list[DocumentRequest]] = {}
    if documents is not None:
        for r in documents.for_applications([application_of(c) for c in cases if application_of(c)]):
            asked.setdefault(r.case_id, []).append(r)
    out = []
    for case in cases:
        a = case.get("assessment") or {}
        application_id = application_of(case)
        app = repo.get(application_id, Scope()) if application_id else None
        mine = asked.get(str(case.get("id")), [])
        out.append({"case": case, "app": app, "ref": application_id[:8], "customer": customer_of(app, case),
                    "dealer": dealers(a.get("dealer_id") or (app.dealer_id if app else "")),
                    "reasons": referral_reasons(case), "amount": amount(a.get("financed_amount")),
                    "sla": sla_of(case, now, paused(mine, now)), "asked": mine[-1] if mine else None,
                    "asked_overdue": bool(mine) and overdue(mine[-1], now)})
    return out


def waiting_rows(cases: Iterable[Mapping[str, Any]], repo: SqlApplications, dealers: DealerNames,
                 now: datetime, documents: SqlDocuments | None = None) -> list[dict[str, Any]]:
    """The cases still to decide, the most urgent first (the earliest deadline; no deadline last)."""
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(rows(cases, repo, dealers, now, documents),
                  key=lambda r: (r["sla"].due or far, str(r["case"].get("id"))))


def with_applicant(row: Mapping[str, Any]) -> bool:
    """Whether the row's case waits for the applicant's documents (out of the officer's queue until they come)."""
    return row.get("asked") is not None and row["asked"].status == OPEN


def my_decision(case: Mapping[str, Any], officer_id: str) -> dict[str, Any]:
    """``officer_id``'s own decision on ``case`` (they decide a case once)."""
    return next((d for d in case.get("decisions") or [] if d.get("officer_id") == officer_id), {})


def declared(draft: Mapping[str, str]) -> list[tuple[str, Any, str]]:
    """The applicant's declared employment and finances as (field, value, kind) — kind ``money``, ``option`` or
    ``text`` — for the answers given."""
    out: list[tuple[str, Any, str]] = []
    for name in DECLARED:
        raw = str(draft.get(name, "")).strip()
        if not raw:
            continue
        if name in MONEY_FIELDS:
            value = amount(raw.replace(",", "").replace("，", ""))
            out.append((name, raw if value is None else value, "money"))
        else:
            out.append((name, raw, "option" if name in ("employment", "housing") else "text"))
    return out


def same_person(detail: Mapping[str, Any] | None) -> list[tuple[str, float | None]]:
    """The liveness check's same-person distances, one per challenge step in the order done (None: no frame of
    that step showed one face)."""
    distances = ((detail or {}).get("liveness") or {}).get("same_person") or {}
    return [(str(step), None if d is None else float(d)) for step, d in distances.items()]


def confirmation(final: str, status: str, ref: str, needed_more: bool) -> str:
    """What the officer is told once the decision is recorded (``status``: the application's after it)."""
    if needed_more:
        text = _("Your decision on ref. %(ref)s is recorded: a second tier 2 officer decides next.", ref=ref)
    elif final == "decline":
        text = _("Declined ref. %(ref)s: the dealer sees the decision.", ref=ref)
    elif final == "counter_offer" or status == "counter_offer":
        text = _("Approved ref. %(ref)s on new terms: the customer is asked to accept them.", ref=ref)
    else:
        text = _("Approved ref. %(ref)s: the contract is generated automatically.", ref=ref)
    return str(text)
