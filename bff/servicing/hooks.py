"""The hooks every close of business runs, in one place: the worker's periodic close (bff/worker.py), ``leaseline
servicing close`` (leaseline/servicing_cli.py) and the bench (bench/servicing.py) close with the same ones — reminders
deferred and arrears kept (bff/servicing/arrears.py), automatic collections started and failed ones tried again
(bff/servicing/collect.py), settlement quotes whose day has ended expired (infra/settlements.py), the notices before
an overdue credit report and each month's report asked for (bff/servicing/credit_reports.py) — each in the batch's
transaction (bff/servicing/close.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bff.payments.common import utc_now
from bff.servicing.arrears import close_hooks
from bff.servicing.collect import collection_hook
from bff.servicing.credit_reports import close_hooks as credit_hooks
from infra.collections import SqlCollections
from infra.db.engine import Database
from infra.end_of_term import end_of_term_hook
from infra.servicing import CloseHook
from infra.settlements import close_hook as expire_quotes
from plans.policy import Policy


def servicing_hooks(db: Database, policy: Policy, *, clock: Callable[[], datetime] = utc_now) -> list[CloseHook]:
    """The close's hooks under ``policy`` (its reminders, their sending window, the collections' retry days)."""
    reminders = policy.reminders
    # the end of term first: the deposit applied to a purchase before a collection asks for the rest
    return [end_of_term_hook, *close_hooks(db, reminders, clock),
            collection_hook(SqlCollections(db), clock, (reminders.send_from, reminders.send_until),
                            policy.collection_retry_days),
            *credit_hooks(db, reminders, clock), expire_quotes]
