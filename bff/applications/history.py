"""An application's history (处理记录) in words: who moved it and why, instead of the recorded codes.

The events keep machine-readable notes (``face_check_failed:2``, ``risk:approve``, ``contract:LL…``); staff read
them here as sentences in the UI language. A note that is not a code (what a reviewer wrote, a handover
remark) is shown as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _

from bff.applications.states import MAX_FACE_ATTEMPTS
from infra.applications import Event


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    from_status: str
    to_status: str
    actor: str
    reason: str
    code: str  # the recorded note, for tests and support (kept in a data attribute, never shown)


_HANDOVER = re.compile(r"交车 handover; term (\S+) – (\S+)(?:; (.*))?$", re.S)
_RECORD = re.compile(r"record ([0-9a-f]+)")
_CLOSE = re.compile(r"结清 closed in good standing; deduction ¥([\d.]+)(?:: (.*))?$", re.S)


def _system(actor_id: str) -> str:
    return {"kyc": _("Automatic face check"), "risk": _("Risk service"), "contract": _("Contract service"),
            "payments": _("Payment service")}.get(actor_id, _("Automatic"))


def reason(note: str) -> str:
    """The event's note as a sentence ("" when there is none)."""
    kind, _sep, rest = note.partition(":")
    if note == "counter_verification":
        return _("Chose to have the original ID card checked at the counter")
    if note == "ocr_mismatch":
        return _("The face matched, but the typed name or ID number differs from the card: a person checks")
    if note == "face_match_pass":
        return _("Face check passed")
    if note == "face_match_review":
        return _("Face check not conclusive: a person checks")
    if kind == "face_check_failed" and rest.isdigit():
        return _("Face check attempt %(n)s of %(max)s did not pass", n=rest, max=MAX_FACE_ATTEMPTS)
    if kind in ("risk", "review"):
        by_officer = kind == "review"
        if rest == "approve":
            return _("Approved by a risk officer") if by_officer else _("Credit check: approved")
        if rest == "decline":
            return _("Declined by a risk officer") if by_officer else _("Credit check: declined")
        if rest == "refer":
            return _("Credit check: referred to a risk officer")
        if rest == "counter_offer":
            return _("Approved by a risk officer on new terms")
    if kind == "contract" and rest:
        return _("Contract %(number)s drafted", number=rest)
    if kind == "signed":
        return _("Contract signed (identity confirmed by a text-message code)")
    if note == "offer:declined":
        return _("The new terms were declined")
    if kind == "offer" and rest.startswith("accepted"):
        return _("The new terms were accepted")
    if note == "paid":
        return _("Everything due at signing is paid")
    if kind == "handover_refused":
        return _("Refused the vehicle: %(reason)s", reason=rest)
    handover = _HANDOVER.match(note)
    if handover:
        start, end, remark = handover.groups()
        record = _RECORD.fullmatch(remark or "")
        if record:  # the signed record's fingerprint (settlement.hand_over notes its first 16 hex digits)
            return _("Vehicle handed over (交车); the term runs %(start)s – %(end)s; handover record %(sha)s",
                     start=start, end=end, sha=record.group(1))
        text = _("Vehicle handed over (交车); the term runs %(start)s – %(end)s", start=start, end=end)
        return text + _("; %(remark)s", remark=remark) if remark else text
    closed = _CLOSE.match(note)
    if closed:
        amount, why = closed.groups()
        text = _("Closed in good standing (结清); deduction ¥%(amount)s", amount=amount)
        return f"{text}: {why}" if why else text
    return note  # written by a person (e.g. what a reviewer checked)


def history(events: Sequence[Event], staff_name: Callable[[str], str | None]) -> list[HistoryLine]:
    """``events`` as lines to show; ``staff_name`` gives a staff member's name from their id (None: unknown)."""
    names: dict[str, str] = {}
    lines = []
    for e in events:
        if e.actor_kind == "staff":
            if e.actor_id not in names:
                names[e.actor_id] = staff_name(e.actor_id) or _("Staff")
            actor = names[e.actor_id]
        elif e.actor_kind == "customer":
            actor = _("The customer")
        else:
            actor = _system(e.actor_id)
        said = reason(e.note) if e.note or e.from_status else _("Application started")
        lines.append(HistoryLine(e.at, e.from_status, e.to_status, actor, said, e.note))
    return lines
