"""Reads of a lease in force for its page (issue 18 §8; bff/servicing/lease_views.py): the lease, its instalments and
the business date in one session — three short indexed queries — and which of a list of applications have a lease
(the links from 我的租赁 and the application's page). Rows come back detached, read-only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from infra.db.engine import Database
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.servicing import CANCELLED
from infra.servicing import current_business_date

#: a lease id is a UUID: anything longer is no lease of ours (and never reaches the database)
MAX_ID = 36


@dataclass(frozen=True)
class LeaseSnapshot:
    """A lease as it stands on ``business_date``: its frozen terms and its instalments in order (not the rents a
    prepayment's shorter term cancelled: they are no part of the schedule)."""

    lease: LeaseRow
    instalments: tuple[InstalmentRow, ...]
    business_date: date


class SqlLeaseReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def snapshot(self, lease_id: str) -> LeaseSnapshot | None:
        """The lease ``lease_id`` with its instalments and the business date, or None when there is no such lease."""
        if not lease_id or len(lease_id) > MAX_ID:
            return None
        with self.db.session() as session:
            lease = session.get(LeaseRow, lease_id)
            if lease is None:
                return None
            rows = tuple(session.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id,
                                                                     InstalmentRow.state != CANCELLED)
                                         .order_by(InstalmentRow.number)))
            today = current_business_date(session)
            return LeaseSnapshot(lease, rows, today)

    def lease_ids(self, application_ids: Sequence[str]) -> dict[str, str]:
        """``{application id: its lease's id}`` for those of ``application_ids`` that have a lease (one query)."""
        if not application_ids:
            return {}
        with self.db.session() as session:
            found = session.execute(select(LeaseRow.application_id, LeaseRow.id)
                                    .where(LeaseRow.application_id.in_(list(application_ids)))).all()
        return {application_id: lease_id for application_id, lease_id in found}
