"""KYC orchestration: ID-card photos → OCR and portrait; selfie + liveness frames → face match.

Uploads are checked and stored synchronously (so nothing is half-stored and the person hears at once what
is wrong with a photo); the slow work (OCR, face detection and encodings) is a ``kyc.check`` job, deferred with
its check's row and run by a worker (bff/worker.py) from the stored images; it records its progress in
``kyc_checks``, which the phone polls. Images are
re-encoded before storage (which drops EXIF metadata such as location) and stored encrypted in S3.

An image is kept only while it serves a check (PIPL art. 19 and 47: delete what no longer serves its purpose):
the images of an attempt are deleted when the attempt fails (storage, database, a crash of its job, a job lost)
and when its photos are refused (an unreadable ID card, a portrait without exactly one face, a selfie without
exactly one face). A row is marked deleted first, then its object goes; what a crash or a storage stall leaves
in the bucket without a row is the orphan sweep's (bff/applications/orphans.py).

A job is lost when its check is still unfinished ``STALE_SECONDS`` after the upload (no worker ran it in time,
or it is pathologically slow): :meth:`KycService.status` gives the check up and deletes its images, and the
person is asked to try again. Giving up and finishing are each one conditional update of the check
(infra.applications), so exactly one of them happens: a job whose check was given up keeps nothing and changes
nothing (no ``done`` over ``lost``, no OCR values in the draft, no face outcome), and a job that claimed its
finish first (it is writing its result) is left alone until ``HARD_SECONDS``.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

from PIL import Image
from sqlalchemy.exc import SQLAlchemyError

from bff.applications import forms
from bff.applications.services import Actor
from bff.applications.services import ApplicationService
from bff.applications.services import NotAllowed
from bff.applications.states import EDITABLE
from bff.applications.states import FACE_ALLOWED
from infra.applications import CHECK_DOCUMENTS
from infra.applications import Application
from infra.applications import Check
from infra.applications import Document
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.jobs import JobQueue
from infra.storage import S3ObjectStore
from infra.storage import StorageError
from infra.storage import StorageUnavailable
from infra.storage import object_key
from kyc import faces
from kyc import liveness
from kyc import ocr
from kyc.images import ImageRejected
from kyc.images import load_image
from kyc.masking import mask_id_number
from kyc.reasons import Reason
from plans.errors import FieldError

log = logging.getLogger(__name__)
#: an unfinished check's detail: the ids of the documents it is about, the upload's and those its job keeps
#: (replaced by the job's result)
DOCUMENTS = CHECK_DOCUMENTS
_ALL = Scope()  # jobs act for the system, after the request that started them was authorised
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: an ID card photo is kept and read at most this many pixels on its longer side (a camera's 12 MP file decoded
#: at half its size: kyc.images.load_image): the card at 60 % of it is still wider than the 856 px the reader
#: reads, and the job decodes a quarter of the pixels (the page itself sends a 1280 px copy: js/id-card.js)
ID_CARD_SIDE = 2000
#: an ID card photo's shortest side at least (px): the fields are unreadable below it
ID_CARD_MIN_SIDE = 300
#: why an ID card photo cannot be taken now (the upload and the side check before it say the same)
NOT_EDITABLE = Reason("not_editable", "申请已提交，不能再更换证件照片",
                      "The application was submitted: the ID photos can no longer be replaced")
CONSENT_REQUIRED = Reason("consent_required", "未获得您的同意，不能采集身份证照片",
                          "Without your consent no ID card photo can be taken")
STALE_SECONDS = 120  # a job not finished by then was lost (process restart): the person is asked to retry
#: a job writing its result (the draft's OCR values, the face outcome: a few database writes) is given up
#: only past this: its process died in the middle
HARD_SECONDS = 2 * STALE_SECONDS
#: what a job does: ``(outcome, detail, apply)``, ``apply`` being its effect on the application (or None), run
#: only once the job's check is sure to be recorded as finished rather than given up
Work = Callable[[], tuple[str, dict[str, Any], Callable[[], object] | None]]


class _Lost(Exception):
    """The job's check was given up as lost while the job ran: nothing it made may stay."""


@dataclass(frozen=True)
class Rejected(Exception):
    """A photo that cannot be used: which one, and what the person should do."""

    field: str
    code: str
    text_zh: str
    text_en: str


def refused(outcome: str, detail: dict[str, Any]) -> bool:
    """Whether a finished check refused its photos as unusable: an ID card ``refused`` (unreadable, wrong side,
    no clear portrait, expired), or a face check that compared nothing because a picture did not show exactly
    one face (``fail`` without a distance, kyc.faces.match). A face that does not match is a result, not a
    refusal: its images stay for the reviewer and the retention period."""
    if outcome == "refused":
        return True
    match = detail.get("match")
    return outcome == "fail" and isinstance(match, dict) and match.get("distance") is None


@dataclass(frozen=True)
class OcrField:
    """A field of the form the card's OCR read: what it read, what the form holds now, how sure the reader was."""

    name: str
    read: str
    value: str
    #: None: unknown (a draft read before confidences were kept): asked to check, but not as doubtful
    confidence: float | None

    @property
    def doubtful(self) -> bool:
        return self.confidence is not None and self.confidence < ocr.DOUBTFUL


#: the form's fields the card fills in, which the person confirms
CONFIRMED_FIELDS = ("name", "id_number", "id_valid_to", "address")


def to_confirm(draft: Mapping[str, str]) -> list[OcrField]:
    """The fields OCR read on the card, lowest confidence first: the person checks the least certain first
    (issue 17: 王建国 read as 王建, and nothing asked to check it)."""
    read: dict[str, str] = json.loads(draft.get("_ocr") or "{}")
    confidence: dict[str, float] = json.loads(draft.get("_ocr_confidence") or "{}")
    fields = [OcrField(name, read[name], draft.get(name, ""),
                       float(confidence[name]) if name in confidence else None)
              for name in CONFIRMED_FIELDS if read.get(name)]
    return sorted(fields, key=lambda f: 1.0 if f.confidence is None else f.confidence)


def ocr_unconfirmed(draft: Mapping[str, str]) -> bool:
    """Whether the card was read and the person has not yet confirmed what was read (the application may not be
    submitted until they do: the reading may be wrong, 王建 for 王建国)."""
    return bool(to_confirm(draft)) and not draft.get("_ocr_confirmed")


def prefilled(draft: Mapping[str, str], found: Mapping[str, str], confidence: Mapping[str, float],
              documents: Mapping[str, str]) -> dict[str, str]:
    """``draft`` with a new reading of the card: a field is filled when it is empty or still holds the previous
    reading (a retake replaces the first photo's 王建 with 王建国; what the person typed themselves stays), the
    reading kept (to flag mismatches) with its confidences and the photos it was read from (``documents``: side
    → document id, whose crop a reviewer sees), and the confirmation asked for anew."""
    previous: dict[str, str] = json.loads(draft.get("_ocr") or "{}")
    filled = {**draft, **{name: value for name, value in found.items()
                          if value and (not draft.get(name) or draft.get(name) == previous.get(name))}}
    filled["_ocr"] = json.dumps(dict(found), ensure_ascii=False)
    filled["_ocr_confidence"] = json.dumps(dict(confidence))
    filled["_ocr_documents"] = json.dumps(dict(documents))
    filled.pop("_ocr_confirmed", None)  # a new card: its fields are confirmed anew
    return filled


@dataclass(frozen=True)
class MismatchRow:
    """A field whose typed value differs from what OCR read, for a reviewer: both values (the ID number masked:
    the card's crop beside them shows it, its view logged) and the crop's field."""

    name: str
    typed: str
    read: str


def mismatch_rows(draft: Mapping[str, str]) -> list[MismatchRow]:
    """The typed and the read value of each mismatched field (bff.applications.forms.ocr_mismatches)."""
    def shown(name: str, value: str) -> str:
        return mask_id_number(value) if name == "id_number" else value

    return [MismatchRow(name, shown(name, draft.get(name, "")), shown(name, read))
            for name, read in forms.ocr_mismatches(draft).items() if name in ocr.FORM_FIELDS]


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _load(field: str, data: bytes, min_side: int, longest: int | None = None) -> Image.Image:
    try:
        return load_image(data, max_bytes=MAX_UPLOAD_BYTES, min_side=min_side, longest=longest)
    except ImageRejected as exc:
        raise Rejected(field, exc.reason.code, exc.reason.text_zh, exc.reason.text_en) from None


class KycService:
    def __init__(self, repo: SqlApplications, apps: ApplicationService, store: S3ObjectStore,
                 jobs: JobQueue, *, face_threshold: float, face_review_margin: float,
                 today: Callable[[], date] = date.today) -> None:
        self.repo, self.apps, self.store, self.jobs = repo, apps, store, jobs
        self.face_threshold, self.face_review_margin = face_threshold, face_review_margin
        self.today = today
        self._bucket_ready = False

    # -- storage ---------------------------------------------------------------------------------------------
    def _keep(self, app: Application, kind: str, image: Image.Image, biometric: bool,
              check_id: str | None = None) -> Document:
        """Store one image and its row (for a job, ``check_id``: listed among its check's documents, or
        :class:`_Lost` once the check was given up). A put that fails may still have stored the object (the
        server wrote it, the answer was lost in a stall): nothing records it, the orphan sweep removes it later."""
        if not self._bucket_ready:  # once per process, on first use: the BFF starts even when S3 is down
            self.store.ensure_bucket()
            self._bucket_ready = True
        data = _jpeg(image)
        key = object_key(app.dealer_id, app.id, kind, f"{uuid.uuid4().hex}.jpg")
        stored = self.store.put(key, data, "image/jpeg", {"application": app.id, "kind": kind})
        try:
            doc = self.repo.add_document(app.id, kind=kind, object_key=key, sha256=stored.sha256, size=len(data),
                                         content_type="image/jpeg", biometric=biometric, check_id=check_id)
        except BaseException:  # stored but not recorded: no purge would ever find it
            self._delete_object(key)
            raise
        if doc is None:  # the job's check was given up meanwhile: not recorded, so not kept
            self._delete_object(key)
            raise _Lost(check_id)
        return doc

    def _delete_object(self, key: str) -> None:
        """Delete ``key`` (every version); when storage fails, the orphan sweep deletes it later."""
        try:
            self.store.delete(key)
        except StorageError as exc:
            log.warning("kyc: could not delete %s now (%s); the orphan sweep will", key, exc)

    def _discard(self, app_id: str, documents: Sequence[Document], why: str, *, now: bool = True) -> None:
        """Delete the images of a failed or refused attempt: each row is marked deleted (so nothing reads it
        any more), then its object is deleted, even if the database failed (it is the reason we are here).
        ``now=False`` leaves the objects to the orphan sweep (storage is unavailable: the person is not kept
        waiting for deletions bound to time out too)."""
        for doc in documents:
            try:
                self.repo.mark_deleted(doc.id)
            except SQLAlchemyError as exc:
                log.warning("kyc: could not mark document %s deleted (%s)", doc.id, type(exc).__name__)
            if now:
                self._delete_object(doc.object_key)
        if documents:
            log.info("kyc: deleted %d images of application %s (%s)", len(documents), app_id, why)

    # -- ID card ---------------------------------------------------------------------------------------------
    def upload_id_card(self, actor: Actor, app: Application, front: bytes, back: bytes) -> Check:
        if app.status not in EDITABLE:
            raise NotAllowed(NOT_EDITABLE.code, NOT_EDITABLE.text_zh, NOT_EDITABLE.text_en)
        if not self.apps.consents(app).sensitive_pi:
            raise NotAllowed(CONSENT_REQUIRED.code, CONSENT_REQUIRED.text_zh, CONSENT_REQUIRED.text_en)
        front_image = _load("id_front", front, min_side=ID_CARD_MIN_SIDE, longest=ID_CARD_SIDE)
        back_image = _load("id_back", back, min_side=ID_CARD_MIN_SIDE, longest=ID_CARD_SIDE)
        kept: list[Document] = []
        try:
            kept.append(self._keep(app, "id_front", front_image, biometric=False))
            kept.append(self._keep(app, "id_back", back_image, biometric=False))
            check = self._queue(app, "id_card", kept, {})
        except BaseException as exc:  # storage or the database failed midway: the person retries, nothing stays
            self._discard(app.id, kept, "upload failed", now=not isinstance(exc, StorageUnavailable))
            raise
        return check

    def _queue(self, app: Application, kind: str, kept: list[Document], job: dict[str, Any]) -> Check:
        """Record the check (with its documents, for :meth:`status` should its job be lost, and what its job needs)
        and defer its job, in one transaction."""
        with self.repo.db.transaction():
            check = self.repo.add_check(app.id, kind, detail={DOCUMENTS: [d.id for d in kept], "job": job})
            self.jobs.defer("kyc.check", {"application_id": app.id, "check_id": check.id}, queue="kyc")
        return check

    def _image(self, doc: Document) -> Image.Image:
        return Image.open(io.BytesIO(self.store.get(doc.object_key))).convert("RGB")

    def run_check(self, application_id: str, check_id: str) -> None:
        """The ``kyc.check`` task: read the check's stored images and run its work (:meth:`_guarded`). A check that
        is no longer queued (done, given up as lost, or started by a worker that died: its images may be half
        used) is left as it is; the person is asked to try again by :meth:`status`."""
        app = self.repo.get(application_id, _ALL)
        check = self.repo.check(application_id, check_id)
        if app is None or check is None or check.state != "queued":
            return
        ids = list(check.detail.get(DOCUMENTS, []))
        by_id = {d.id: d for d in self.repo.documents(application_id)}
        kept = [by_id[i] for i in ids if i in by_id]
        if len(kept) != len(ids):  # an image is gone (deleted meanwhile): nothing to check
            self.repo.give_up_check(check_id, finishing=False)
            self._discard(application_id, kept, "job lost")
            return
        job = check.detail.get("job") or {}
        if check.kind == "id_card":
            self._guarded(app.id, check_id, kept, lambda: self._read_card(
                check_id, app, self._image(kept[0]), self._image(kept[1]), kept))
        else:
            def face() -> tuple[str, dict[str, Any], Callable[[], object] | None]:
                frames = [(step, self._image(doc)) for step, doc in zip(job.get("frames", []), kept[1:], strict=False)]
                return self._match(check_id, app, str(job.get("portrait", "")), self._image(kept[0]), frames,
                                   tuple(job.get("challenge", [])))

            self._guarded(app.id, check_id, kept, face)

    def _guarded(self, app_id: str, check_id: str, kept: list[Document], work: Work) -> None:
        """Run one check's job (``work()``); on a failure, a refusal or its check given up as lost, its images
        (``kept``, which the job may extend) go."""
        started = time.perf_counter()
        if not self.repo.start_check(check_id):  # given up as lost while it waited: status() deleted its images
            return

        try:
            outcome, detail, apply = work()
            if not self.repo.claim_finish(check_id):  # given up while it ran: the person was told to try again
                raise _Lost(check_id)
            if refused(outcome, detail):  # before the answer: once the phone shows the refusal, the images are gone
                self._discard(app_id, kept, f"photos refused ({outcome})")
            if apply is not None:  # before the answer too: the phone sees the result and its effect together
                apply()
        except _Lost:
            log.warning("kyc job %s: its check was given up as lost before it finished; it keeps nothing", check_id)
            self._discard(app_id, kept, "job lost")
            return
        except StorageError:
            log.warning("kyc job %s: storage unavailable", check_id)
            self.repo.finish_check(check_id, state="error", outcome="storage", detail={})
            self._discard(app_id, kept, "storage unavailable")  # after the answer: storage may be slow to refuse
            return
        except Exception:  # a bug must not leave the phone waiting forever
            log.exception("kyc job %s failed", check_id)
            self.repo.finish_check(check_id, state="error", outcome="error", detail={})
            self._discard(app_id, kept, "job failed")
            return
        detail["seconds"] = round(time.perf_counter() - started, 3)
        if not self.repo.finish_check(check_id, state="done", outcome=outcome, detail=detail):
            # given up past HARD_SECONDS while applying its result (status() deleted the images it knew of)
            self._discard(app_id, kept, "job lost")

    def _read_card(self, check_id: str, app: Application, front: Image.Image, back: Image.Image,
                   kept: list[Document]) -> tuple[str, dict[str, Any], Callable[[], object] | None]:
        front, back = ocr.card_in(front), ocr.card_in(back)  # each photo's card alone, found and straightened
        problems = [r for r in (ocr.side_reason(front, "front"), ocr.side_reason(back, "back")) if r is not None]
        if problems:  # a blank picture or the wrong side: nothing to read, say which photo to retake
            return "refused", {"problems": [r.as_dict() for r in problems]}, None
        front_fields, back_fields = ocr.read_front(front), ocr.read_back(back)
        validity = ocr.validity_reason(back_fields, self.today())
        if validity is not None:
            problems.append(validity)
        portrait_faces = 0
        if not problems:
            portrait = ocr.portrait(front)
            portrait_faces = len(faces.detect(portrait))
            if portrait_faces != 1:
                problems.append(Reason("portrait_unreadable", "身份证头像不清晰，请在光线充足处重拍正面",
                                       "The portrait on the card is not clear: retake the front in good light"))
            else:  # recorded among the check's documents: should the job be lost now, the portrait goes too
                kept.append(self._keep(app, "id_portrait", portrait, biometric=True, check_id=check_id))
        found = {
            "name": front_fields.name or "", "id_number": front_fields.id_number or "",
            "address": front_fields.address or "",
            "id_valid_to": "长期" if back_fields.long_term else (
                back_fields.valid_to.isoformat() if back_fields.valid_to else ""),
        }
        confidence = {**{name: front_fields.confidence.get(name, 0.0) for name in ("name", "id_number", "address")},
                      "id_valid_to": back_fields.confidence.get("validity", 0.0)}
        return ("refused" if problems else "ok"), {"problems": [r.as_dict() for r in problems],
                                                    "portrait_faces": portrait_faces}, \
            lambda: self._merge_ocr(app.id, found, confidence, {"front": kept[0].id, "back": kept[1].id})

    def _merge_ocr(self, app_id: str, found: dict[str, str], confidence: dict[str, float],
                   documents: dict[str, str]) -> None:
        """Pre-fill the form with what OCR read (:func:`prefilled`), kept encrypted in the draft: the person is
        asked to confirm it, lowest confidence first (:func:`to_confirm`), before submitting (``_ocr_confirmed``)."""
        # (nothing happens once the application was submitted)
        self.apps.merge_draft(app_id, lambda draft: prefilled(draft, found, confidence, documents))

    def confirm_card(self, app: Application, raw: Mapping[str, Any]) -> tuple[Application, list[FieldError]]:
        """Save what the person confirmed or corrected of the fields OCR read (:func:`to_confirm`), even invalid
        values (nothing typed is lost), and their field errors; with none, the card's reading is confirmed."""
        names = [f.name for f in to_confirm(self.apps.draft(app))]
        data = {name: str(raw.get(name, "")).strip()[:200] for name in names}
        errors = [FieldError(name, e.code, e.text_zh, e.text_en) for name, value in data.items()
                  if (e := forms.validate_one(name, value)) is not None]  # (kyc's own checks name no field)
        saved = self.apps.merge_draft(app.id, lambda draft: {**draft, **data, **({} if errors else {
            "_ocr_confirmed": "1"})})
        if saved is None:  # submitted meanwhile
            raise NotAllowed("not_editable", "申请已提交，不能再修改", "The application was submitted: it can no "
                             "longer be changed")
        return saved, errors

    def field_crop(self, app: Application, form_field: str) -> bytes | None:
        """Where ``form_field`` is printed on the photo the draft's reading came from (not a newer upload, still
        pending or refused), as JPEG: what a reviewer compares the typed and the read value with (None: that photo
        is no longer kept, or the reading predates the record of its photos)."""
        side, _box = ocr.FORM_FIELDS[form_field]
        source = json.loads(self.apps.draft(app).get("_ocr_documents") or "{}").get(side)
        photos = [d for d in self.repo.documents(app.id, (f"id_{side}",)) if d.id == source]
        if not photos:
            return None
        return _jpeg(ocr.field_crop(ocr.card_in(self._image(photos[0])), form_field))  # where the job read it

    def id_card_done(self, app: Application) -> bool:
        latest = self.repo.latest_check(app.id, "id_card")
        return latest is not None and latest.state == "done" and latest.outcome == "ok"

    # -- face ------------------------------------------------------------------------------------------------
    def new_challenge(self) -> tuple[str, ...]:
        import secrets

        return liveness.new_challenge(secrets.SystemRandom())

    def upload_face(self, actor: Actor, app: Application, selfie: bytes,
                    frames: Sequence[tuple[str, bytes]], challenge: Sequence[str]) -> Check:
        if sorted(challenge) != sorted(liveness.CHALLENGES):  # the full random challenge issued to this session
            raise NotAllowed("no_challenge", "请在人脸核验页面按提示重新开始",
                             "Please start again from the face check page and follow the prompts")
        if app.status not in FACE_ALLOWED:
            raise NotAllowed("wrong_state", "当前不需要人脸核验", "No face check is needed now")
        if not self.apps.consents(app).face:
            raise NotAllowed("consent_required", "未获得您的人脸识别同意，不能采集人脸",
                             "Without your consent to face recognition no face can be captured")
        latest = self.repo.latest_check(app.id, "face")
        current = self.status(app, latest.id) if latest is not None else None  # (gives up on lost ones)
        if current is not None and current.state in ("queued", "running"):  # one attempt at a time
            raise NotAllowed("check_running", "上一次人脸核验还在进行中，请稍候", "The last face check is still "
                             "running: please wait for its result")
        portraits = self.repo.documents(app.id, ("id_portrait",))
        if not portraits:
            raise NotAllowed("portrait_missing", "请先上传身份证正面", "Please upload the front of the ID card first")
        selfie_image = _load("selfie", selfie, min_side=240)
        frame_images = [(step, _load("frames", data, min_side=160)) for step, data in frames[:24]]
        kept: list[Document] = []
        try:
            kept.append(self._keep(app, "selfie", selfie_image, biometric=True))
            for step, image in frame_images:
                kept.append(self._keep(app, f"frame_{step}"[:24], image, biometric=True))
            check = self._queue(app, "face", kept, {"portrait": portraits[-1].object_key, "challenge": list(challenge),
                                                    "frames": [step for step, _image in frame_images]})
        except BaseException as exc:  # storage or the database failed midway: the person retries, nothing stays
            self._discard(app.id, kept, "upload failed", now=not isinstance(exc, StorageUnavailable))
            raise
        return check

    def _match(self, check_id: str, app: Application, portrait_key: str, selfie: Image.Image,
               frames: list[tuple[str, Image.Image]], challenge: tuple[str, ...]) \
            -> tuple[str, dict[str, Any], Callable[[], object]]:
        portrait = Image.open(io.BytesIO(self.store.get(portrait_key))).convert("RGB")
        match = faces.match(portrait, selfie, threshold=self.face_threshold, review_margin=self.face_review_margin)
        steps: dict[str, list[Image.Image]] = {}
        for step, image in frames:  # in the order the phone performed them
            steps.setdefault(step, []).append(image)
        if steps:  # the challenge frames must show the selfie's face too (kyc.liveness: same person throughout)
            live = liveness.verify(steps, challenge, reference=match.selfie_encoding,
                                   threshold=self.face_threshold, review_margin=self.face_review_margin)
            live_detail: dict[str, Any] = live.as_dict()
        else:  # the file-input fallback (no camera preview): no liveness, so at best a human looks at it
            live, live_detail = None, {"passed": False, "checks": [{
                "code": "liveness_not_performed", "passed": False, "value": None,
                "text_zh": "未进行活体检测（使用了拍照上传）", "text_en": "No liveness check (a photo was uploaded)"}]}
        if match.outcome == "fail" or (live is not None and live.outcome == "fail"):
            outcome = "fail"
        elif match.outcome == "pass" and live is not None and live.outcome == "pass":
            outcome = "pass"
        else:
            outcome = "review"
        detail = {"liveness": live_detail, "match": match.as_dict()}
        return outcome, detail, lambda: self.apps.face_outcome(app.id, outcome, detail)

    def status(self, app: Application, check_id: str) -> Check | None:
        """The check; one still unfinished after ``STALE_SECONDS`` is given up as lost (the person retries), with
        its images: those of the upload and those its job kept (the ID portrait). A job that never started can
        no longer start; one still at work keeps nothing when it ends (:meth:`_guarded`); one writing its result
        is left to it until ``HARD_SECONDS``."""
        check = self.repo.check(app.id, check_id)
        if check is not None and check.state in ("queued", "running"):
            age = (datetime.now(UTC) - check.created_at).total_seconds()
            if age > STALE_SECONDS:
                lost = self.repo.give_up_check(check.id, finishing=age > HARD_SECONDS)
                if lost is not None:  # (None: it finished meanwhile, or another poll gave it up)
                    ids = set(lost.detail.get(DOCUMENTS, []))
                    self._discard(app.id, [d for d in self.repo.documents(app.id) if d.id in ids], "job lost")
                check = self.repo.check(app.id, check_id)
        return check

    # -- retention -------------------------------------------------------------------------------------------
    def delete_biometrics(self, app: Application, why: str) -> int:
        """Delete the application's biometric images now — what :meth:`purge_biometrics` deletes once the
        retention period is over (the selfie, the liveness frames and the portrait cut from the ID card) — because
        their purpose ended early (``why``: the person withdrew their consent to face recognition, PIPL art. 15 and
        art. 47(1)(3)). Rows first, then objects; an object storage could not delete now is the orphan sweep's."""
        documents = [d for d in self.repo.documents(app.id) if d.biometric]
        self._discard(app.id, documents, why)
        return len(documents)

    def purge_biometrics(self, now: datetime | None = None) -> int:
        """Delete biometric images of applications decided more than the retention period ago."""
        deleted = 0
        for doc in self.repo.biometrics_due(self.apps.retention_cutoff(now)):
            self.store.delete(doc.object_key)
            self.repo.mark_deleted(doc.id)
            deleted += 1
        return deleted

