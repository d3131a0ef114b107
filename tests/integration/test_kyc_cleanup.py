"""KYC images are kept only while a database row refers to them (PIPL art. 19, 47: personal data is deleted once
its purpose cannot be served), checked against the real SeaweedFS:

* a refused ID card (blank, a portrait with two faces, an unreadable 36 MP picture) and a refused selfie (no face,
  two faces) leave no object: the images of the attempt are deleted with its result;
* an upload whose database write fails leaves no object;
* what a crash or a storage stall leaves behind (an object with no row) is found by the orphan sweep — the
  worker's periodic job and ``leaseline kyc sweep-orphans`` — once older than its grace period, never while
  an upload may still be in flight, never when a row refers to it; the sweep is idempotent and bounded per run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine
from sqlalchemy import text

from kyc import specimens as idcards
from tests.common import faces
from tests.conftest import DATABASES
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.conftest import s3_config
from tests.integration.test_applications import CARD
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import PLAN
from tests.integration.test_applications import VEHICLE
from tests.integration.test_applications import consent
from tests.integration.test_applications import jpeg
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import ready_to_submit
from tests.integration.test_applications import start
from tests.integration.test_applications import upload_card
from tests.integration.test_applications import wait_check
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def card_images() -> tuple[bytes, bytes]:
    return make_card_images()


def objects(app: Any, app_id: str) -> list[str]:
    """Every object the bucket holds for the application (any kind)."""
    svc = app.extensions["leaseline"]
    dealer = svc.applications.repo.get(app_id, _all()).dealer_id
    return svc.store.list_keys(f"tenants/{dealer}/applications/{app_id}/")


def _all() -> Any:
    from infra.applications import Scope

    return Scope()


def card_with_two_faces() -> bytes:
    two = faces.side_by_side(faces.photo("obama.jpg"), faces.photo("biden.jpg")).resize((358, 441))
    return jpeg(idcards.front(CARD, two))


def blank_36_megapixels() -> bytes:
    return jpeg(Image.new("RGB", (7200, 5000), (196, 190, 182)))


# -- refusals ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("front", "code"), [
    (lambda: jpeg(idcards.blank()), "id_card_unreadable"),
    (card_with_two_faces, "portrait_unreadable"),
    (blank_36_megapixels, "id_card_unreadable"),
], ids=["blank", "two-faces", "36MP"])
def test_a_refused_id_card_leaves_no_image(bff_server: Any, app: Any, card_images: tuple[bytes, bytes],
                                           front: Any, code: str) -> None:
    base = bff_server.url
    with sign_in(base, SALES_A) as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        r = upload_card(base, s, app_id, front(), card_images[1])
        assert r.status_code == 202, r.text[:300]
        done = wait_check(s, base, app_id, r.text, timeout=120)
        assert 'data-outcome="refused"' in done and f'data-code="{code}"' in done, done
    assert objects(app, app_id) == []
    assert app.extensions["leaseline"].applications.repo.documents(app_id) == []


@pytest.mark.parametrize("selfie", ["no face", "two faces"])
def test_a_refused_selfie_leaves_no_image_and_the_card_stays(bff_server: Any, app: Any,
                                                              card_images: tuple[bytes, bytes], selfie: str) -> None:
    base = bff_server.url
    picture = (Image.new("RGB", (1280, 960), (90, 90, 90)) if selfie == "no face" else
               faces.padded(faces.side_by_side(faces.photo("obama.jpg"), faces.photo("biden.jpg"))))
    with sign_in(base, SALES_A) as s:
        app_id = ready_to_submit(base, s, card_images)
        assert post(s, f"{base}/applications/{app_id}/submit", form_url=f"{base}/applications/{app_id}") \
            .status_code == 200
        url = f"{base}/applications/{app_id}/face"
        r = s.post(url, data={"csrf_token": csrf(s, url)}, timeout=TIMEOUT,
                   files={"selfie": ("selfie.jpg", jpeg(picture), "image/jpeg")})
        assert r.status_code == 202, r.text[:500]
        done = wait_check(s, base, app_id, r.text)
        assert 'data-outcome="fail"' in done and ("未检测到人脸" in done or "2 张人脸" in done), done
    kinds = {key.split("/")[4] for key in objects(app, app_id)}
    assert kinds == {"id_front", "id_back", "id_portrait"}  # the card is still needed; the selfie is gone
    repo = app.extensions["leaseline"].applications.repo
    assert repo.documents(app_id, ("selfie",)) == []
    assert {d.kind for d in repo.documents(app_id)} == kinds


# -- failures ---------------------------------------------------------------------------------------------------
def test_a_face_check_that_fails_on_storage_leaves_no_selfie(bff_server: Any, app: Any,
                                                             card_images: tuple[bytes, bytes]) -> None:
    """The job cannot read the ID portrait back (gone from the bucket): the check ends in a storage error and
    the selfie it was about is deleted with it."""
    base = bff_server.url
    svc = app.extensions["leaseline"]
    with sign_in(base, SALES_A) as s:
        app_id = ready_to_submit(base, s, card_images)
        assert post(s, f"{base}/applications/{app_id}/submit", form_url=f"{base}/applications/{app_id}") \
            .status_code == 200
        portrait = svc.applications.repo.documents(app_id, ("id_portrait",))[-1]
        svc.store.delete(portrait.object_key)
        url = f"{base}/applications/{app_id}/face"
        r = s.post(url, data={"csrf_token": csrf(s, url)}, timeout=TIMEOUT,
                   files={"selfie": ("selfie.jpg", jpeg(faces.padded(faces.photo("obama2.jpg"))), "image/jpeg")})
        assert r.status_code == 202, r.text[:500]
        done = wait_check(s, base, app_id, r.text)
        assert 'data-state="error"' in done, done
    assert svc.applications.repo.latest_check(app_id, "face").outcome == "storage"
    # the job deletes them just after recording the error (storage being in trouble, deleting may take a while)
    deadline = time.monotonic() + 20
    while [key for key in objects(app, app_id) if key.split("/")[4] == "selfie"]:
        assert time.monotonic() < deadline, "the selfie of the failed check was not deleted"
        time.sleep(0.2)
    assert svc.applications.repo.documents(app_id, ("selfie",)) == []


# -- a failed database write ----------------------------------------------------------------------------------
@pytest.fixture
def failing_document_insert(db_url: str) -> Iterator[Any]:
    """Make the database refuse new kyc_documents rows of one kind for one application (a real failure of the
    real database, by a trigger), for the application id and kind the test passes in."""
    engine = create_engine(db_url)
    installed: list[str] = []

    def install(app_id: str, kind: str) -> None:
        assert all(c in "0123456789abcdef-" for c in app_id) and kind.isidentifier()
        with engine.begin() as conn:
            conn.execute(text(f"CREATE FUNCTION refuse_documents() RETURNS trigger AS $$ BEGIN "
                              f"IF NEW.application_id = '{app_id}' AND NEW.kind = '{kind}' THEN "
                              f"RAISE EXCEPTION 'disk full (test)'; END IF; RETURN NEW; END $$ "
                              f"LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER refuse_documents BEFORE INSERT ON kyc_documents "
                              "FOR EACH ROW EXECUTE FUNCTION refuse_documents()"))
        installed.append(app_id)

    yield install
    with engine.begin() as conn:
        if installed:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_documents ON kyc_documents"))
            conn.execute(text("DROP FUNCTION IF EXISTS refuse_documents()"))
    engine.dispose()


@pytest.mark.parametrize("refused", ["id_front", "id_back"])
def test_an_upload_whose_database_write_fails_leaves_no_image(bff_server: Any, app: Any,
                                                              card_images: tuple[bytes, bytes],
                                                              failing_document_insert: Any, refused: str) -> None:
    """The row of the first side, or of the second once the first was stored and recorded, cannot be written:
    the upload fails as a whole and neither side stays in the bucket (nor as a row). Everything was cleaned up,
    so the person may simply try again: the page says so (503, in their language), as when storage is down,
    and keeps what they entered."""
    base = bff_server.url
    with sign_in(base, SALES_A) as s:
        app_id = start(base, s)
        consent(base, s, app_id)
        post(s, f"{base}/applications/{app_id}/steps/customer", CUSTOMER)
        failing_document_insert(app_id, refused)
        r = upload_card(base, s, app_id, *card_images)
        assert r.status_code == 503, r.text[:300]  # our failure, said as such (nothing the person did wrong)
        assert 'data-code="storage"' in r.text and "请稍后重试" in r.text and "Traceback" not in r.text, r.text
        s.cookies.set("locale", "en")
        r = upload_card(base, s, app_id, *card_images)
        assert r.status_code == 503 and "please try again in a minute" in r.text, r.text
        page = s.get(f"{base}/applications/{app_id}/steps/customer", timeout=TIMEOUT).text
        assert f'value="{CUSTOMER["name"]}"' in page  # what they typed is still there
    assert objects(app, app_id) == []
    assert app.extensions["leaseline"].applications.repo.documents(app_id) == []


# -- the orphan sweep -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=DATABASES)
def own(s3_server: Any) -> Iterator[Any]:
    """A BFF of its own (its own database, so its own dealers and prefixes) on the suite's SeaweedFS: the sweeps
    below, run as if hours had passed, touch nothing of the other tests."""
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_sweep"):
        upgrade(url)
        application = build_app(url, **s3_config(s3_server))
        try:
            application.extensions["leaseline"].store.ensure_bucket()
            yield application
        finally:
            application.extensions["leaseline"].db.dispose()


def new_application(app: Any) -> Any:
    """A draft application of the Pudong salesperson, with consent (no images yet)."""
    from bff.applications.services import Actor
    from infra.applications import Scope

    svc = app.extensions["leaseline"]
    owner = svc.accounts.by_email(SALES_A)[0]
    actor = Actor("staff", owner.id, owner.email, Scope(dealer_id=owner.dealer_id), dealer_id=owner.dealer_id,
                  owner_id=owner.id)
    application = svc.applications.start(actor, VEHICLE, PLAN)
    svc.applications.give_consent(actor, application, ["sensitive_pi", "credit_reporting", "face_recognition"])
    return application


def put(app: Any, application: Any, kind: str, *, row: bool) -> str:
    """An image stored as an upload stores it, with its row (``row``) or without (an upload that failed after its
    put: the process died, or the put "failed" on a stall after the server had stored it)."""
    from infra.storage import object_key

    svc = app.extensions["leaseline"]
    key = object_key(application.dealer_id, application.id, kind, f"{uuid.uuid4().hex}.jpg")
    stored = svc.store.put(key, b"\xff\xd8 not really a jpeg", "image/jpeg", {"application": application.id})
    if row:
        svc.applications.repo.add_document(application.id, kind=kind, object_key=key, sha256=stored.sha256,
                                           size=stored.size, content_type="image/jpeg", biometric=kind != "id_front")
    return key


def later(app: Any, extra: timedelta = timedelta(minutes=1)) -> datetime:
    """A moment past the sweep's grace period for what was stored now."""
    return datetime.now(UTC) + app.extensions["leaseline"].orphans.grace + extra


def everything(app: Any, **kwargs: Any) -> dict[str, int]:
    """Sweep until the whole bucket was looked at (several bounded runs when ``limit`` is small); the counts
    of all runs added up."""
    sweep, after, total = app.extensions["leaseline"].orphans, "", {"examined": 0, "deleted": 0, "fresh": 0,
                                                                     "referenced": 0}
    for _ in range(1000):
        report = sweep.sweep(after=after, **kwargs)
        for name in total:
            total[name] += getattr(report, name)
        if report.complete:
            return total
        after = report.next_after
    raise AssertionError("the sweep never completed")


def test_the_sweep_deletes_old_orphans_and_nothing_else(own: Any) -> None:
    svc = own.extensions["leaseline"]
    a = new_application(own)
    kept = put(own, a, "id_front", row=True)
    orphan = put(own, a, "id_back", row=False)
    frame = put(own, a, "frame_blink", row=False)
    tombstoned = put(own, a, "selfie", row=True)
    doc = next(d for d in svc.applications.repo.documents(a.id) if d.object_key == tombstoned)
    svc.applications.repo.mark_deleted(doc.id)  # deleted in the database, its object left behind
    # now: every orphan is younger than the grace period (it may be an upload in flight): nothing is deleted
    report = everything(own)
    assert report["deleted"] == 0 and report["fresh"] >= 3
    assert set(svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/")) == {kept, orphan, frame,
                                                                                         tombstoned}
    # past the grace period: the orphans go, the referenced image stays
    report = everything(own, now=later(own))
    assert report["deleted"] == 3 and report["referenced"] >= 1
    assert svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/") == [kept]
    # idempotent: a second run finds nothing more
    again = everything(own, now=later(own))
    assert again["deleted"] == 0 and again["referenced"] == report["referenced"]


def test_the_sweep_is_bounded_per_run_and_resumes_where_it_stopped(own: Any) -> None:
    svc = own.extensions["leaseline"]
    a = new_application(own)
    orphans = sorted(put(own, a, "id_front", row=False) for _ in range(5))
    first = svc.orphans.sweep(now=later(own), limit=2)
    assert first.examined == 2 and not first.complete and first.next_after
    report = everything(own, now=later(own), limit=2)
    assert report["deleted"] >= 3  # what the first run did not reach
    assert not set(orphans) & set(svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/"))


def test_the_sweep_leaves_other_tenants_and_other_files_alone(own: Any) -> None:
    """Only this database's dealers' KYC folders: another deployment's (or test database's) tenant sharing
    the bucket, and any object that is not a KYC image, are not ours to judge."""
    svc = own.extensions["leaseline"]
    a = new_application(own)
    stranger = f"tenants/{uuid.uuid4()}/applications/{uuid.uuid4()}/id_front/{uuid.uuid4().hex}.jpg"
    other_kind = f"tenants/{a.dealer_id}/applications/{a.id}/contract/{uuid.uuid4().hex}.pdf"
    for key in (stranger, other_kind):
        svc.store.put(key, b"x", "application/octet-stream")
    try:
        everything(own, now=later(own))
        assert svc.store.head(stranger).size == 1 and svc.store.head(other_kind).size == 1
    finally:
        svc.store.delete(stranger)
        svc.store.delete(other_kind)


def test_the_worker_sweeps_orphans_on_its_schedule(s3_server: Any) -> None:
    """The worker's periodic job runs the sweep by itself (here with a one-second grace and schedule)."""
    from infra.db.migrate import upgrade
    from tests.common.worker import WorkerThread

    for url in postgres_database("leaseline_sweep_resumer"):
        upgrade(url)
        app = build_app(url, **s3_config(s3_server), kyc_orphan_grace_seconds=1, kyc_sweep_seconds=1,
                        risk_url="http://127.0.0.1:9", contract_url="http://127.0.0.1:9")
        svc = app.extensions["leaseline"]
        try:
            svc.store.ensure_bucket()
            a = new_application(app)
            orphan = put(app, a, "selfie", row=False)
            kept = put(app, a, "selfie", row=True)
            with WorkerThread(app, queues=["housekeeping"]):
                deadline = time.monotonic() + 30
                while orphan in svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/"):
                    assert time.monotonic() < deadline, "the worker never swept the orphan"
                    time.sleep(0.5)
            assert svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/") == [kept]
        finally:
            svc.db.dispose()


def test_the_sweep_orphans_command(own: Any, s3_server: Any) -> None:
    """``leaseline kyc sweep-orphans``: the same sweep for a scheduler or an operator, with a JSON report."""
    svc = own.extensions["leaseline"]
    a = new_application(own)
    orphan = put(own, a, "id_back", row=False)
    kept = put(own, a, "id_back", row=True)
    env = {"LEASELINE_DATABASE_URL": svc.db.url, **s3_server.env(), "LEASELINE_ENV": "test"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "leaseline", "kyc", "sweep-orphans", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**__import__("os").environ, **env})

    fresh = run("--json")
    assert fresh.returncode == 0, fresh.stderr
    data = json.loads(fresh.stdout)
    assert data["deleted"] == 0 and data["fresh"] >= 1 and data["complete"] is True
    swept = run("--json", "--grace-minutes", "0")
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["deleted"] >= 1
    assert svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/") == [kept]
    assert orphan not in svc.store.list_keys(f"tenants/{a.dealer_id}/")
    human = run("--grace-minutes", "0")
    assert human.returncode == 0 and human.stdout.startswith("deleted 0 orphaned KYC images"), human.stdout


def test_the_images_of_a_job_lost_before_it_started_are_deleted(own: Any) -> None:
    """A check still queued long after its upload (the process that held its job restarted) is given up as
    lost when the phone next asks; its job can no longer start, so its images go."""
    from sqlalchemy import update

    from bff.applications.kyc import DOCUMENTS
    from infra.db.models import KycCheckRow

    svc = own.extensions["leaseline"]
    a = new_application(own)
    keys = [put(own, a, kind, row=True) for kind in ("id_front", "id_back")]
    ids = [d.id for d in svc.applications.repo.documents(a.id)]
    check = svc.applications.repo.add_check(a.id, "id_card", detail={DOCUMENTS: ids})
    with svc.db.session() as session:
        session.execute(update(KycCheckRow).where(KycCheckRow.id == check.id).values(
            created_at=datetime.now(UTC) - timedelta(minutes=10)))
    current = svc.kyc.status(svc.applications.repo.get(a.id, _all()), check.id)
    assert current is not None and (current.state, current.outcome) == ("error", "lost")
    assert svc.applications.repo.documents(a.id) == []
    assert not set(keys) & set(svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/"))


def _age(app: Any, check_id: str, seconds: float) -> None:
    """Make a check look ``seconds`` old (its job queued that long ago)."""
    from sqlalchemy import update

    from infra.db.models import KycCheckRow

    with app.extensions["leaseline"].db.session() as session:
        session.execute(update(KycCheckRow).where(KycCheckRow.id == check_id).values(
            created_at=datetime.now(UTC) - timedelta(seconds=seconds)))


def test_the_images_of_a_job_lost_while_running_are_deleted(own: Any) -> None:
    """A check still running long after its upload: its job started, then its process died (the usual way a job
    is lost). Given up when the phone next asks, its images go at once: they serve nothing any more, and live
    rows would keep the orphan sweep away from them for good."""
    from bff.applications.kyc import DOCUMENTS

    svc = own.extensions["leaseline"]
    a = new_application(own)
    keys = [put(own, a, kind, row=True) for kind in ("id_front", "id_back")]
    ids = [d.id for d in svc.applications.repo.documents(a.id)]
    check = svc.applications.repo.add_check(a.id, "id_card", detail={DOCUMENTS: ids})
    assert svc.applications.repo.start_check(check.id)  # its job started ...
    _age(own, check.id, 600)  # ... and was never heard of again
    current = svc.kyc.status(svc.applications.repo.get(a.id, _all()), check.id)
    assert current is not None and (current.state, current.outcome) == ("error", "lost")
    assert svc.applications.repo.documents(a.id) == []
    assert not set(keys) & set(svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/"))


def test_the_portrait_a_dead_job_kept_is_deleted_with_its_check(own: Any) -> None:
    """The ID-card job cuts the portrait out of the front and keeps it (a new document the upload never listed):
    it is recorded among its check's documents as it is kept, so a job that dies afterwards loses it too."""
    from bff.applications.kyc import DOCUMENTS

    svc = own.extensions["leaseline"]
    repo = svc.applications.repo
    a = new_application(own)
    put(own, a, "id_front", row=True)
    put(own, a, "id_back", row=True)
    check = repo.add_check(a.id, "id_card", detail={DOCUMENTS: [d.id for d in repo.documents(a.id)]})
    assert repo.start_check(check.id)
    portrait = repo.add_document(a.id, kind="id_portrait", object_key=put(own, a, "id_portrait", row=False),
                                 sha256="0" * 64, size=20, content_type="image/jpeg", biometric=True,
                                 check_id=check.id)  # as the job keeps it
    assert portrait is not None and portrait.id in repo.check(a.id, check.id).detail[DOCUMENTS]
    _age(own, check.id, 600)
    current = svc.kyc.status(repo.get(a.id, _all()), check.id)
    assert current is not None and (current.state, current.outcome) == ("error", "lost")
    assert repo.documents(a.id) == []
    assert svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/") == []


def test_a_slow_job_given_up_as_lost_keeps_nothing_and_stays_lost(own: Any) -> None:
    """The job is still at work when the phone, past the stale limit, is told it was lost: the job's result then
    changes nothing. Its check stays lost (not overwritten by ``done``), the portrait it cuts out afterwards is
    not kept, and what it read is not written into the draft: the person was told to try again."""
    from bff.applications.kyc import KycService

    svc = own.extensions["leaseline"]
    repo = svc.applications.repo
    a = new_application(own)
    seen: list[Any] = []

    def today() -> date:  # the job asks for the date half-way (an ID card's validity): the moment to give it up
        check = repo.latest_check(a.id, "id_card")
        _age(own, check.id, 180)
        seen.append((check.state, svc.kyc.status(repo.get(a.id, _all()), check.id), repo.documents(a.id)))
        return date.today()

    slow = KycService(repo, svc.applications, svc.store, svc.jobs, face_threshold=svc.kyc.face_threshold,
                      face_review_margin=svc.kyc.face_review_margin, today=today)
    queued = slow.upload_id_card(_actor(own), repo.get(a.id, _all()), *make_card_images())
    slow.run_check(a.id, queued.id)  # the kyc.check job's work, run to its end here
    [(state, given_up, left)] = seen
    assert state == "running" and (given_up.state, given_up.outcome) == ("error", "lost") and left == []
    final = repo.check(a.id, queued.id)
    assert (final.state, final.outcome) == ("error", "lost")
    assert repo.documents(a.id) == []
    assert svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/") == []
    assert not svc.applications.draft(repo.get(a.id, _all())).get("name")


def test_a_check_still_running_keeps_its_images(own: Any) -> None:
    """Nothing is taken from a check that may still finish: one younger than the stale limit, nor one whose
    job is writing its result (short of the hard limit); past the hard limit, it was lost all the same."""
    from bff.applications.kyc import DOCUMENTS
    from bff.applications.kyc import HARD_SECONDS
    from bff.applications.kyc import STALE_SECONDS

    svc = own.extensions["leaseline"]
    repo = svc.applications.repo
    a = new_application(own)
    application = repo.get(a.id, _all())
    keys = {put(own, a, kind, row=True) for kind in ("id_front", "id_back")}
    check = repo.add_check(a.id, "id_card", detail={DOCUMENTS: [d.id for d in repo.documents(a.id)]})
    assert repo.start_check(check.id)
    _age(own, check.id, STALE_SECONDS / 2)
    assert svc.kyc.status(application, check.id).state == "running"
    assert repo.claim_finish(check.id)  # the job has its result and is writing it
    _age(own, check.id, (STALE_SECONDS + HARD_SECONDS) / 2)
    assert svc.kyc.status(application, check.id).state == "running"
    assert len(repo.documents(a.id)) == 2
    assert set(svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/")) == keys
    _age(own, check.id, HARD_SECONDS + 60)  # its process died while writing it
    current = svc.kyc.status(application, check.id)
    assert (current.state, current.outcome) == ("error", "lost")
    assert repo.documents(a.id) == [] and svc.store.list_keys(f"tenants/{a.dealer_id}/applications/{a.id}/") == []
    assert not repo.finish_check(check.id, state="done", outcome="ok", detail={})  # a late job changes nothing


def test_an_id_card_upload_in_a_storage_stall_leaves_nothing_after_the_sweep(own: Any, s3_server: Any) -> None:
    """The finding: S3 stores the back of the card but its answer is lost (a stall, between a proxy and the real
    SeaweedFS); the upload fails (the person is asked to retry). The front's row is marked deleted at once, and
    what storage holds without a live row — the front, and the back that no row ever named — the sweep deletes."""
    from urllib.parse import urlsplit

    from infra.storage import StorageUnavailable
    from tests.common.stall import StallProxy

    upstream = urlsplit(s3_server.endpoint_url)
    svc = own.extensions["leaseline"]
    bucket = svc.store.bucket
    with StallProxy(str(upstream.hostname), int(upstream.port or 80), trigger=f"PUT /{bucket}/tenants/".encode(),
                    after=1) as proxy:
        stalling = build_app(svc.db.url, **{**s3_config(s3_server), "s3_endpoint_url": proxy.url})
        try:
            kyc = stalling.extensions["leaseline"].kyc
            a = new_application(own)
            front, back = make_card_images()
            with pytest.raises(StorageUnavailable):
                kyc.upload_id_card(_actor(own), svc.applications.repo.get(a.id, _all()), front, back)
            assert proxy.stalled
        finally:
            stalling.extensions["leaseline"].db.dispose()
    prefix = f"tenants/{a.dealer_id}/applications/{a.id}/"
    assert {key.split("/")[4] for key in svc.store.list_keys(prefix)} == {"id_front", "id_back"}  # what S3 holds
    assert svc.applications.repo.documents(a.id) == []  # what we hold: nothing
    report = everything(own, now=later(own))
    assert report["deleted"] >= 2
    assert svc.store.list_keys(prefix) == []


def _actor(app: Any) -> Any:
    from bff.applications.services import Actor
    from infra.applications import Scope

    owner = app.extensions["leaseline"].accounts.by_email(SALES_A)[0]
    return Actor("staff", owner.id, owner.email, Scope(dealer_id=owner.dealer_id), dealer_id=owner.dealer_id,
                 owner_id=owner.id)
