"""The orphan sweep: KYC images and requested documents left in the bucket with no database row referring to them.

An upload stores its object, then writes its row (bff/applications/kyc.py, and a document page's in
bff/documents/services.py, whose removal also leaves the object when storage refuses the delete). A process that
dies in between, or a put that "failed" in a storage stall after the server had stored it, leaves an object that no
row names, so no purge (refusal, failure, retention) will ever find it — personal data kept for no purpose (PIPL
art. 19, 47).

The sweep lists this deployment's KYC folders — ``tenants/{dealer}/applications/{application}/{kind}/`` for the
dealers of this database, the KYC kinds and the ``doc_*`` document pages only (another deployment's tenants
sharing the bucket, and any other kind of file, are not ours to judge) — and deletes (every version) each object
that no row not marked deleted refers to and that is older than the grace period: an upload in flight has its
object for a moment before its row, so a fresh object is never swept. It is

* bounded: one run examines at most ``limit`` objects, and returns where it stopped (``next_after``);
* idempotent: what it deleted is not listed again, and running it twice, or in two processes, is harmless;
* logged: each deletion, and each run that deleted or failed to delete something.

The worker's periodic ``kyc.sweep_orphans`` job (bff/worker.py, one at a time: its lock) runs one bounded sweep
every ``kyc_sweep_seconds``, each continuing where the previous one stopped in that worker (``sweep_onward`` in
bff/bootstrap.py); ``leaseline kyc sweep-orphans`` runs it on demand.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from infra.accounts import SqlAccounts
from infra.applications import SqlApplications
from infra.documents import SqlDocuments
from infra.storage import ListedObject
from infra.storage import ObjectStore
from infra.storage import StorageError

log = logging.getLogger(__name__)
#: the kinds of image bff/applications/kyc.py stores (liveness frames are ``frame_<step>``)
KYC_KINDS = frozenset({"id_front", "id_back", "id_portrait", "selfie"})
DOCUMENT_PREFIX = "doc_"  # the folders of bff/documents/services.py's pages (``doc_<kind>``)
PAGE = 1000  # ListObjectsV2's largest page
_KEY = re.compile(r"tenants/[^/]+/applications/(?P<application>[^/]+)/(?P<kind>[^/]+)/[^/]+")


def is_kyc_image(key: str) -> str | None:
    """The application id of a KYC image's key, or None for any other key."""
    found = _KEY.fullmatch(key)
    if found is None or not (found["kind"] in KYC_KINDS or found["kind"].startswith("frame_")):
        return None
    return found["application"]


def is_document_page(key: str) -> str | None:
    """The application id of a requested document page's key, or None for any other key."""
    found = _KEY.fullmatch(key)
    if found is None or not found["kind"].startswith(DOCUMENT_PREFIX):
        return None
    return found["application"]


@dataclass(frozen=True)
class SweepReport:
    """What one run looked at and did."""

    examined: int  # objects listed
    deleted: int  # orphans older than the grace period, deleted
    referenced: int  # KYC images and document pages a row refers to
    fresh: int  # orphans younger than the grace period (maybe an upload in flight): kept for now
    failed: int  # orphans storage refused to delete (the next run tries again)
    other: int  # objects under the prefixes that are neither KYC images nor document pages: left alone
    complete: bool  # True: the run reached the end of the last folder
    next_after: str  # where the next run continues ("" after a complete run)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class OrphanSweep:
    def __init__(self, store: ObjectStore, repo: SqlApplications, accounts: SqlAccounts, *, grace: timedelta,
                 limit: int = PAGE, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store, self.repo, self.accounts = store, repo, accounts
        self.grace, self.limit, self.clock = grace, limit, clock
        self.documents = SqlDocuments(repo.db)  # the document pages' rows, in the same database

    def prefixes(self) -> list[str]:
        """The KYC folders of this database's dealers, in key order."""
        return sorted(f"tenants/{dealer.id}/applications/" for dealer in self.accounts.dealers())

    def sweep(self, *, now: datetime | None = None, limit: int | None = None, after: str = "",
              grace: timedelta | None = None) -> SweepReport:
        """One run: examine at most ``limit`` objects in key order after ``after``; delete the orphans stored
        before ``now`` minus ``grace``. Storage failing to list raises :class:`StorageError`."""
        cutoff = (now or self.clock()) - (self.grace if grace is None else grace)
        budget = self.limit if limit is None else limit
        counts: Counter[str] = Counter()
        last = after
        for prefix in self.prefixes():
            if after and prefix < after and not after.startswith(prefix):
                continue  # examined by an earlier run
            start = after if after.startswith(prefix) else ""
            while True:
                want = min(PAGE, budget - counts["examined"])
                if want <= 0:
                    return self._report(counts, complete=False, next_after=last)
                page = self.store.list_objects(prefix, start_after=start, limit=want)
                if page:
                    self._judge(page, cutoff, counts)
                    start = last = page[-1].key
                if len(page) < want:
                    break
        return self._report(counts, complete=True, next_after="")

    def _judge(self, page: Sequence[ListedObject], cutoff: datetime, counts: Counter[str]) -> None:
        counts["examined"] += len(page)
        images = [(obj, application) for obj in page if (application := is_kyc_image(obj.key)) is not None]
        pages = [(obj, application) for obj in page if (application := is_document_page(obj.key)) is not None]
        counts["other"] += len(page) - len(images) - len(pages)
        live = self.repo.live_object_keys(sorted({application for _, application in images}))
        live |= self.documents.live_object_keys(sorted({application for _, application in pages}))
        for obj, _ in images + pages:
            if obj.key in live:
                counts["referenced"] += 1
            elif obj.last_modified > cutoff:
                counts["fresh"] += 1
            else:
                try:
                    self.store.delete(obj.key)
                except StorageError as exc:
                    counts["failed"] += 1
                    log.warning("kyc orphan sweep: could not delete %s (%s); the next run tries again", obj.key, exc)
                    continue
                counts["deleted"] += 1
                log.info("kyc orphan sweep: deleted %s (stored %s, no row refers to it)", obj.key,
                         obj.last_modified.isoformat())

    def _report(self, counts: Counter[str], *, complete: bool, next_after: str) -> SweepReport:
        report = SweepReport(examined=counts["examined"], deleted=counts["deleted"], referenced=counts["referenced"],
                             fresh=counts["fresh"], failed=counts["failed"], other=counts["other"],
                             complete=complete, next_after=next_after)
        level = logging.INFO if report.deleted or report.failed else logging.DEBUG
        log.log(level, "kyc orphan sweep: %s", report.as_dict())
        return report
