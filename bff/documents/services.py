"""Documents on request: a risk officer reviewing a case asks the applicant for documents (proof of income, a bank
statement, the driving licence, a company lessee's business licence) with a note and a day they are due; the
applicant gets a text with the link to their application, photographs or picks the pages on the phone, checks the
list and sends them; the case is back with the officer, who accepts them or asks again.

The files are personal information like the ID images (a bank statement is sensitive: PIPL art. 28), so they follow
the ID images' rules (bff/applications/kyc.py): only with the applicant's consent to sensitive personal information;
an image is re-encoded before storage (which drops EXIF metadata such as location), a PDF is kept as sent once it
parsed and is not encrypted; each is stored encrypted in the private bucket under the application's folder
(infra.storage.object_key) with its SHA-256; a file the applicant removes is marked deleted, then its object goes.

While a request is open the case waits for the applicant, not for the officer: the review's SLA clock stands still
from the request to its submission (:func:`paused`), and the queue lists the case apart until the pages arrive.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from bff.applications.services import ApplicationService
from infra.applications import Application
from infra.applications import Scope
from infra.documents import OPEN
from infra.documents import RETURNED
from infra.documents import SUBMITTED
from infra.documents import DocumentPage
from infra.documents import DocumentRequest
from infra.documents import SqlDocuments
from infra.jobs import JobQueue
from infra.sms import SmsSender
from infra.storage import S3ObjectStore
from infra.storage import StorageError
from infra.storage import object_key
from kyc.images import ImageRejected
from kyc.images import load_image
from plans.errors import FieldError

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: what an officer may ask for, in the order the forms list them; (zh, en) as the text message names them
KINDS: dict[str, tuple[str, str]] = {
    "income_proof": ("收入证明", "proof of income"),
    "bank_statement": ("银行流水", "bank statement"),
    "driving_licence": ("驾驶证", "driving licence"),
    "business_licence": ("营业执照", "business licence"),
}
#: a request is due this many working days (Monday to Friday) after the day it is made, unless the officer picks
#: another day; public holidays are not known here and count as working days
DEFAULT_WORKING_DAYS = 3
MAX_DAYS_AHEAD = 30  # the latest due day an officer may pick
MAX_FILE_BYTES = 10 * 1024 * 1024  # per file, as an ID photo
MAX_FILES_PER_KIND = 10
MAX_PDF_PAGES = 20
MIN_IMAGE_SIDE = 300  # a page photographed smaller than this cannot be read
NOTE_MAX = 500
JPEG, PNG, PDF = "image/jpeg", "image/png", "application/pdf"
REFERRED = "referred"  # the application's status while a risk officer reviews it: the only one taking documents
_ALL = Scope()  # the job acts for the system, after the request that deferred it was authorised


class NotFound(Exception):
    """No such request or page of this application."""


@dataclass(frozen=True)
class Refused(Exception):
    """The input cannot be taken: the problems, each for one field (the form shows them and keeps the input)."""

    errors: tuple[FieldError, ...]
    status: int = 422


def refuse(field: str, code: str, zh: str, en: str, status: int = 422) -> Refused:
    return Refused((FieldError(field, code, zh, en),), status)


def closed() -> Refused:
    """The request was sent (or closed): its files can no longer change."""
    return refuse("file", "closed", "这份材料已提交，不能再更改",
                  "These documents were sent: they can no longer be changed", 409)


def decided() -> Refused:
    """The application is no longer with the risk officer (decided, withdrawn): documents are no longer taken."""
    return refuse("file", "decided", "您的申请已有审核结果，无需再提交材料",
                  "Your application has been decided: no documents are needed any more", 409)


def pending() -> Refused:
    """The application has a request not yet handled: one at a time."""
    return refuse("kinds", "pending", "已有一份材料请求尚未处理完", "A document request is still pending", 409)


def handled() -> Refused:
    """The officer's action comes too late: the request was handled meanwhile (another tab or officer)."""
    return refuse("documents", "state", "这份材料请求已处理", "This document request was already handled", 409)


def shanghai_today(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def default_due(today: date, working_days: int = DEFAULT_WORKING_DAYS) -> date:
    """``working_days`` working days (Monday to Friday) after ``today``."""
    day, left = today, working_days
    while left:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def sniff(data: bytes) -> str | None:
    """The file's type by its first bytes (never by its name or the browser's word): JPEG, PNG, PDF, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.lstrip(b"\r\n\t ")[:5] == b"%PDF-":
        return PDF
    return None


PAGE_TREE_CAP = 1000  # page tree nodes walked at most: a PDF with more is over MAX_PDF_PAGES anyway


def pdf_pages(data: bytes) -> int | None:
    """How many pages a PDF has, counted by walking its page tree (its /Count is the sender's word and may lie;
    at most :data:`PAGE_TREE_CAP` nodes, a cycle walked once), or None when it does not parse or is encrypted (we
    could not show it to the officer)."""
    from pyhanko.pdf_utils.reader import PdfFileReader  # (pyHanko: the contract service's PDF library)

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            return None
        count = _leaves(reader.root.raw_get("/Pages"))
    except Exception:  # any malformed PDF: pyHanko raises many kinds  # noqa: BLE001
        return None
    return count if count > 0 else None


def _leaves(root: object) -> int:
    """The /Page leaves under a page tree node (an indirect reference or a dictionary), depth first."""
    from pyhanko.pdf_utils.generic import IndirectObject

    stack, seen, leaves, walked = [root], set(), 0, 0
    while stack and walked < PAGE_TREE_CAP:
        ref = stack.pop()
        if isinstance(ref, IndirectObject):
            if (ref.idnum, ref.generation) in seen:
                continue
            seen.add((ref.idnum, ref.generation))
        node = ref.get_object() if isinstance(ref, IndirectObject) else ref
        walked += 1
        if "/Kids" in node:
            stack.extend(reversed(list(node.raw_get("/Kids"))))
        else:  # a leaf: a page (some writers leave out its /Type)
            leaves += 1
    return leaves + len(stack)  # capped with nodes left: at least this many pages


def paused(requests: Iterable[DocumentRequest], now: datetime) -> timedelta:
    """How long the case waited for the applicant: each request's stretch from being made to being sent (or closed
    unsent; still running when open)."""
    total = timedelta()
    for r in requests:
        end = r.submitted_at or r.closed_at or (now if r.status == OPEN else r.requested_at)
        total += max(end - r.requested_at, timedelta())
    return total


def overdue(request: DocumentRequest, now: datetime) -> bool:
    """An open request past its day (Beijing time)."""
    return request.status == OPEN and shanghai_today(now) > request.due_on


@dataclass(frozen=True)
class Upload:
    """One file as the browser sent it."""

    kind: str
    data: bytes


class DocumentService:
    """The use cases of documents on request, on the documents store, the applications, object storage and the
    job queue (the text message is a ``documents.notify`` job, deferred with the request)."""

    def __init__(self, repo: SqlDocuments, apps: ApplicationService, store: S3ObjectStore, jobs: JobQueue,
                 sms: SmsSender) -> None:
        self.repo, self.apps, self.store, self.jobs, self.sms = repo, apps, store, jobs, sms
        self._bucket_ready = False

    # -- the officer ---------------------------------------------------------------------------------------------
    def parse_request(self, kinds: Sequence[str], note: str, due: str, now: datetime) -> tuple[list[str], str, date]:
        """The officer's form checked: at least one known kind, a note, a due day from tomorrow to
        :data:`MAX_DAYS_AHEAD` days ahead (empty: :func:`default_due`)."""
        chosen = [k for k in KINDS if k in kinds]
        note = note.strip()
        errors = []
        if not chosen:
            errors.append(FieldError("kinds", "required", "请至少选择一种材料", "Choose at least one document"))
        if not note:
            errors.append(FieldError("note", "required", "请写明需要客户提供什么", "Say what the customer should send"))
        elif len(note) > NOTE_MAX:
            errors.append(FieldError("note", "too_long", f"说明最多 {NOTE_MAX} 个字",
                                     f"The note has at most {NOTE_MAX} characters"))
        today = shanghai_today(now)
        due_on = default_due(today)
        if due.strip():
            try:
                due_on = date.fromisoformat(due.strip())
            except ValueError:
                errors.append(FieldError("due_on", "date", "请选择截止日期", "Choose the day it is due"))
            else:
                if not today < due_on <= today + timedelta(days=MAX_DAYS_AHEAD):
                    errors.append(FieldError("due_on", "range", f"截止日期须在明天至 {MAX_DAYS_AHEAD} 天内",
                                             f"The due day must be from tomorrow to {MAX_DAYS_AHEAD} days ahead"))
        if errors:
            raise Refused(tuple(errors))
        return chosen, note, due_on

    def request(self, app: Application, case_id: str, kinds: Sequence[str], note: str, due_on: date, *,
                officer_id: str, officer_label: str, link: str, now: datetime) -> DocumentRequest:
        """Ask the applicant for ``kinds``: the request and its text message (a job) in one transaction. One request
        at a time per case: an open one must be sent or closed first."""
        if any(r.status in (OPEN, SUBMITTED) for r in self.repo.for_application(app.id)):
            raise pending()
        try:
            with self.repo.db.transaction():
                made = self.repo.add_request(application_id=app.id, dealer_id=app.dealer_id, case_id=case_id,
                                             kinds=kinds, note=note, due_on=due_on, requested_by=officer_id,
                                             requested_by_label=officer_label, now=now)
                self.jobs.defer("documents.notify", {"request_id": made.id, "link": link}, queue="documents")
        except IntegrityError:  # another press wrote its request after our check (the pending-request index)
            raise pending() from None
        return made

    def accept(self, request: DocumentRequest, now: datetime) -> DocumentRequest:
        """The officer accepts the documents sent."""
        moved = self.repo.move(request.id, allowed_from=(SUBMITTED,), to="accepted", now=now)
        if moved is None:
            raise handled()
        return moved

    def again(self, app: Application, request: DocumentRequest, note: str, due: str, *, officer_id: str,
              officer_label: str, link: str, now: datetime) -> DocumentRequest:
        """The officer asks again (the pages sent do not do): the request is ``returned`` and a new one, for the
        same kinds, goes to the applicant with the new note."""
        kinds, note, due_on = self.parse_request(request.kinds, note, due, now)
        with self.repo.db.transaction():
            if self.repo.move(request.id, allowed_from=(SUBMITTED, OPEN), to=RETURNED, now=now) is None:
                raise handled()
            return self.request(app, request.case_id, kinds, note, due_on, officer_id=officer_id,
                                officer_label=officer_label, link=link, now=now)

    def notify(self, request_id: str, link: str) -> None:
        """The ``documents.notify`` task: text the applicant what to send, by when, and where. A request closed
        meanwhile is not announced; SmsUnavailable is retried by the worker."""
        found = self.repo.get(request_id)
        if found is None or found.status != OPEN:
            return
        app = self.apps.repo.get(found.application_id, _ALL)
        mobile = self.apps.draft(app).get("mobile", "") if app is not None else ""
        if not mobile:
            log.warning("documents: application %s has no mobile number to text", found.application_id)
            return
        names = "、".join(KINDS[k][0] for k in found.kinds if k in KINDS)
        self.sms.send(mobile, "documents_requested", {"documents": names, "due": f"{found.due_on:%-m月%-d日}",
                                                      "link": link}, dealer_id=found.dealer_id)

    # -- the applicant -------------------------------------------------------------------------------------------
    def of(self, app: Application, request_id: str) -> DocumentRequest:
        found = self.repo.get(request_id)
        if found is None or found.application_id != app.id:
            raise NotFound(request_id)
        return found

    def page(self, request: DocumentRequest, page_id: str) -> DocumentPage:
        found = next((p for p in self.repo.pages(request.id) if p.id == page_id), None)
        if found is None:
            raise NotFound(page_id)
        return found

    def upload(self, app: Application, request: DocumentRequest, uploads: Sequence[Upload]) -> list[DocumentPage]:
        """Check and store the applicant's files for an open request; all are checked before any is stored (one bad
        file: nothing stored, the problem named)."""
        if not self.apps.consents(app).sensitive_pi:
            raise refuse("file", "consent_required", "未获得您的同意，不能收集材料",
                         "Without your consent no document can be collected", 403)
        if request.status != OPEN:
            raise closed()
        if app.status != REFERRED:
            raise decided()
        if not uploads:
            raise refuse("file", "required", "请拍照或选择文件", "Take a photo or choose a file")
        counts: dict[str, int] = {}
        for p in self.repo.pages(request.id):
            counts[p.kind] = counts.get(p.kind, 0) + 1
        ready = []
        for upload in uploads:
            if upload.kind not in request.kinds:
                raise refuse("file", "kind", "没有要求这种材料", "This document was not asked for")
            counts[upload.kind] = counts.get(upload.kind, 0) + 1
            if counts[upload.kind] > MAX_FILES_PER_KIND:
                raise refuse(upload.kind, "too_many", f"每种材料最多 {MAX_FILES_PER_KIND} 个文件",
                             f"At most {MAX_FILES_PER_KIND} files per document")
            ready.append((upload.kind, *self._checked(upload)))
        return [self._keep(app, request, kind, data, content_type, pages) for kind, data, content_type, pages in ready]

    def _checked(self, upload: Upload) -> tuple[bytes, str, int]:
        """The bytes to store, their type and page count; a photo re-encoded as JPEG (drops EXIF, bounds the
        pixels), a PDF as sent."""
        field = upload.kind
        if len(upload.data) > MAX_FILE_BYTES:
            raise refuse(field, "too_large", f"文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB，请压缩或分页拍摄",
                         f"The file is over {MAX_FILE_BYTES // (1024 * 1024)} MB: compress it or photograph the "
                         "pages one by one", 413)
        kind = sniff(upload.data)
        if kind is None:
            raise refuse(field, "type", "只能上传照片（JPG、PNG）或 PDF 文件", "Only photos (JPG, PNG) or PDF files")
        if kind == PDF:
            pages = pdf_pages(upload.data)
            if pages is None:
                raise refuse(field, "pdf", "无法打开这个 PDF（已损坏或已加密），请换一个文件或拍照上传",
                             "This PDF cannot be opened (damaged or encrypted): choose another file or take photos")
            if pages > MAX_PDF_PAGES:
                raise refuse(field, "pages", f"PDF 最多 {MAX_PDF_PAGES} 页，请只上传需要的页",
                             f"A PDF has at most {MAX_PDF_PAGES} pages: send only the pages needed")
            return upload.data, PDF, pages
        try:
            image = load_image(upload.data, max_bytes=MAX_FILE_BYTES, min_side=MIN_IMAGE_SIDE)
        except ImageRejected as exc:
            raise refuse(field, exc.reason.code, exc.reason.text_zh, exc.reason.text_en) from None
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=88)
        return out.getvalue(), JPEG, 1

    def _keep(self, app: Application, request: DocumentRequest, kind: str, data: bytes, content_type: str,
              pages: int) -> DocumentPage:
        """Store one file, then its row; an object whose row could not be written is deleted again."""
        if not self._bucket_ready:  # once per process, on first use (as the ID images)
            self.store.ensure_bucket()
            self._bucket_ready = True
        name = f"{uuid.uuid4().hex}.{'pdf' if content_type == PDF else 'jpg'}"
        key = object_key(app.dealer_id, app.id, f"doc_{kind}", name)
        stored = self.store.put(key, data, content_type, {"application": app.id, "kind": kind})
        try:
            page = self.repo.add_page(request.id, app.id, kind=kind, object_key=key, sha256=stored.sha256,
                                      size=len(data), content_type=content_type, pages=pages)
        except BaseException:
            self._delete_object(key)
            raise
        if page is None:  # sent meanwhile (another tab): not recorded, so not kept
            self._delete_object(key)
            raise closed()
        return page

    def _delete_object(self, key: str) -> None:
        try:
            self.store.delete(key)
        except StorageError as exc:
            log.warning("documents: could not delete %s now (%s)", key, exc)

    def remove(self, request: DocumentRequest, page: DocumentPage, now: datetime) -> None:
        """The applicant removes a file before sending (to retake it): the row is marked deleted, then the object
        goes."""
        if request.status != OPEN or not self.repo.mark_deleted(request.id, page.id, now):
            raise closed()
        self._delete_object(page.object_key)

    def submit(self, app: Application, request: DocumentRequest, now: datetime) -> DocumentRequest:
        """Send the documents: every kind asked for needs a file; the case is back with the officer (only while the
        application is still referred to one)."""
        if request.status == SUBMITTED:  # a second tap (or a resend of the page): it was sent, as the page says
            return request
        if app.status != REFERRED:
            raise decided()
        have = {p.kind for p in self.repo.pages(request.id)}
        missing = [k for k in request.kinds if k not in have]
        if missing:
            raise Refused(tuple(FieldError(k, "required", f"还没有上传{KINDS[k][0]}",
                                           f"No {KINDS[k][1]} uploaded yet") for k in missing if k in KINDS))
        moved = self.repo.move(request.id, allowed_from=(OPEN,), to=SUBMITTED, now=now)
        if moved is None:
            current = self.repo.get(request.id)
            if current is not None and current.status == SUBMITTED:  # the other tap got there first: sent
                return current
            raise closed()
        return moved

    def content(self, page: DocumentPage) -> bytes:
        """The stored bytes (checked against their SHA-256 by the store)."""
        return self.store.get(page.object_key)
