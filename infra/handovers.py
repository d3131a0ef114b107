"""The handover records (交接确认书) of leases ready for delivery (bff/payments/handover.py): what the dealer recorded,
the customer's refusal, and the record the contract service signed. One row per application; the term itself is
``lease_terms`` (infra/payments_store.py), started in the same transaction as the row turns ``signed``, with the
lease in force (``leases``, ``instalments``: infra/servicing.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy import update

from infra.db.engine import Database
from infra.db.models import ApplicationEventRow
from infra.db.models import ApplicationRow
from infra.db.models import HandoverRow
from infra.servicing import SqlServicing
from infra.servicing import lease_plan

PREPARED, REFUSED, SIGNED = "prepared", "refused", "signed"
#: the note of the history event a refusal records (bff/applications/history.py words it), the reason after it
REFUSED_NOTE = "handover_refused:"


@dataclass(frozen=True)
class Handover:
    application_id: str
    dealer_id: str
    status: str
    odometer_km: int
    keys: int
    items: tuple[str, ...]
    note: str
    prepared_by: str
    prepared_by_label: str
    prepared_at: datetime
    refused_reason: str | None
    refused_at: datetime | None
    record_id: str | None
    record: dict[str, Any] | None
    sha256: str | None
    starts_on: date | None
    signed_at: datetime | None


class SqlHandovers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, application_id: str) -> Handover | None:
        with self.db.session() as session:
            row = session.get(HandoverRow, application_id)
            return _handover(row) if row is not None else None

    def prepare(self, application_id: str, *, dealer_id: str, odometer_km: int, keys: int, items: tuple[str, ...],
                note: str, actor_id: str, actor_label: str, now: datetime) -> Handover | None:
        """Record (or record again) what the dealer hands over; None once the record is signed (it stands)."""
        with self.db.session() as session:
            row = session.get(HandoverRow, application_id, with_for_update=True)
            if row is not None and row.status == SIGNED:
                return None
            if row is None:
                row = HandoverRow(application_id=application_id, dealer_id=dealer_id)
                session.add(row)
            row.status, row.odometer_km, row.keys = PREPARED, odometer_km, keys
            row.items, row.note = json.dumps(list(items)), note[:500]
            row.prepared_by, row.prepared_by_label, row.prepared_at = actor_id, actor_label[:254], now
            row.refused_reason = row.refused_at = None
            session.flush()
            return _handover(row)

    def refuse(self, application_id: str, reason: str, now: datetime, *, actor_kind: str,
               actor_id: str) -> Handover | None:
        """The customer refuses the vehicle as recorded; None when there is no prepared record to refuse. The
        application's history (处理记录) says so in the same transaction (``handover_refused:`` and the reason, an
        event that leaves the status as it is: still to be handed over), and the refusal is its latest activity
        (``updated_at``: the dealer's work page and pipeline show when)."""
        with self.db.session() as session:
            moved = session.execute(update(HandoverRow).where(
                HandoverRow.application_id == application_id, HandoverRow.status == PREPARED).values(
                status=REFUSED, refused_reason=reason[:500], refused_at=now)).rowcount
            if moved:
                status = session.execute(update(ApplicationRow).where(ApplicationRow.id == application_id).values(
                    updated_at=now, version=ApplicationRow.version + 1).returning(ApplicationRow.status)).scalar_one()
                session.add(ApplicationEventRow(application_id=application_id, at=now, actor_kind=actor_kind,
                                                actor_id=actor_id, from_status=status, to_status=status,
                                                note=f"{REFUSED_NOTE}{reason[:500]}"))
        return self.get(application_id) if moved else None

    def refused(self, application_id: str) -> Handover | None:
        """The application's handover when the customer refused the vehicle and the dealer has not recorded it
        again since, else None."""
        found = self.get(application_id)
        return found if found is not None and found.status == REFUSED else None

    def mark_signed(self, application_id: str, record: dict[str, Any], starts_on: date, now: datetime) -> bool:
        """The record the contract service signed; False when it is signed already. A refusal sent from another
        device while the signature was on its way does not stand against the signed record: the signed record is
        what happened. The lease in force (its instalments, its servicing terms: infra/servicing.py) is created in
        the same transaction, once per application; a record it cannot be read from (ValueError) signs nothing."""
        with self.db.session() as session:
            signed = bool(session.execute(update(HandoverRow).where(
                HandoverRow.application_id == application_id, HandoverRow.status.in_((PREPARED, REFUSED))).values(
                status=SIGNED, record_id=str(record.get("id", ""))[:64], sha256=str(record.get("sha256", ""))[:64],
                record=json.dumps(record, ensure_ascii=False, sort_keys=True), starts_on=starts_on,
                signed_at=now)).rowcount)
            if signed:
                dealer_id = session.execute(select(HandoverRow.dealer_id).where(
                    HandoverRow.application_id == application_id)).scalar_one()
                SqlServicing(self.db).open_lease(session, application_id, dealer_id, lease_plan(record), now)
            return signed


def _handover(r: HandoverRow) -> Handover:
    return Handover(r.application_id, r.dealer_id, r.status, r.odometer_km, r.keys, tuple(json.loads(r.items or "[]")),
                    r.note or "", r.prepared_by, r.prepared_by_label, r.prepared_at, r.refused_reason, r.refused_at,
                    r.record_id, json.loads(r.record) if r.record else None, r.sha256, r.starts_on, r.signed_at)
