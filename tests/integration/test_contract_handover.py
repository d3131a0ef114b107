"""The signed vehicle handover record (车辆交接确认书) over real HTTP: the contract service with its own database,
SeaweedFS (Object Lock), the local TSA and real service tokens, as tests/integration/test_contract_service.py.

The handover day starts the lease's term (起租日): the record dates every rent of the contract from it, with the
contract's own amounts, is signed as the contract is (lessor certification, the customer's event certificate,
the lessor's countersignature), locked until five years after the lease's real end (the contract's lock is
extended to the same day), and logged; once per contract."""

from __future__ import annotations

import base64
import calendar
import hashlib
import io
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from sqlalchemy import select
from sqlalchemy import update

from contract.db.models import ContractRow
from contract.db.models import HandoverRow
from contract.document.render import BEIJING
from tests.common import evidence
from tests.common.contract import ContractServer
from tests.integration.test_contract_service import TIMEOUT
from tests.integration.test_contract_service import contracts  # noqa: F401 (the module's service, a fixture)
from tests.integration.test_contract_service import sign_body
from tests.unit.test_contract_document import LESSEE_NAME
from tests.unit.test_contract_document import example_snapshot

pytestmark = pytest.mark.db
RETENTION = timedelta(days=round(365.25 * 5))  # the service's default: 5 years after the lease's end


def months_later(day: date, months: int) -> date:
    """``day`` ``months`` later, or that month's last day when it is shorter (written out here, not plans')."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


def contract_snapshot(application_id: str, **quote: Any) -> dict[str, Any]:
    data = {k: v for k, v in example_snapshot(**quote).items()
            if k not in ("number", "generated_at", "signed", "lessor")}
    return {"application_id": application_id, "dealer_id": "dealer-1", **data}


def signed_contract(server: ContractServer, application_id: str, **quote: Any) -> dict[str, Any]:
    r = requests.post(f"{server.url}/api/v1/contracts", json=contract_snapshot(application_id, **quote),
                      headers=server.headers(), timeout=TIMEOUT)
    assert r.status_code == 201, r.text[:500]
    r = requests.post(f"{server.url}/api/v1/contracts/{r.json()['id']}/signatures", json=sign_body(),
                      headers=server.headers(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:800]
    return dict(r.json())


def handover_body(delivered_on: date, *, name: str = LESSEE_NAME, **changes: Any) -> dict[str, Any]:
    return {"delivered_on": delivered_on.isoformat(), "odometer_km": 12, "keys": 2, "items": ["tools", "manuals"],
            "note": "", "handed_over_by": "张销售", **sign_body(name), **changes}


def post(server: ContractServer, contract_id: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/contracts/{contract_id}/handover", json=body,
                         headers=server.headers(), timeout=TIMEOUT)


def document(server: ContractServer, contract_id: str) -> requests.Response:
    return requests.get(f"{server.url}/api/v1/contracts/{contract_id}/handover/document",
                        headers=server.headers("contract:read"), timeout=TIMEOUT)


def kinds(server: ContractServer, application_id: str) -> list[str]:
    r = requests.get(f"{server.url}/api/v1/ledger/subjects/{application_id}/entries",
                     headers=server.headers("ledger:read"), timeout=TIMEOUT)
    return [e["kind"] for e in r.json()["entries"]]


def lock(server: ContractServer, key: str, version: str) -> datetime:
    found = server.components.service.store.retention(key, version)
    assert found is not None and found[0] == "COMPLIANCE", found
    return found[1]


@pytest.fixture(scope="module")
def handed_over(contracts: ContractServer) -> dict[str, Any]:  # noqa: F811
    """A 36-month lease in arrears, signed today and handed over today."""
    contract = signed_contract(contracts, "app-handover-1")
    r = post(contracts, contract["id"], handover_body(beijing_today(), note="左后门有轻微划痕"))
    assert r.status_code == 201, r.text[:800]
    assert r.headers["Location"] == f"/api/v1/contracts/{contract['id']}/handover"
    return {"contract": contract, "record": r.json()}


def test_the_record_dates_each_rent_from_the_handover_day(contracts: ContractServer,  # noqa: F811
                                                          handed_over: dict[str, Any]) -> None:
    record, contract = handed_over["record"], handed_over["contract"]
    today = beijing_today()
    assert (record["contract_id"], record["contract_number"]) == (contract["id"], contract["number"])
    assert (record["starts_on"], record["ends_on"]) == (today.isoformat(), months_later(today, 36).isoformat())
    assert (record["odometer_km"], record["keys"], record["items"]) == (12, 2, ["tools", "manuals"])
    # in arrears rent k falls due k months after the start; the amounts are the contract's, unchanged
    rows = example_snapshot()["schedule"]
    assert record["schedule"] == [{"period": k, "due_date": months_later(today, k).isoformat(),
                                   "payment": rows[k - 1]["payment"]} for k in range(1, 37)]
    assert record["final_rent"] is None  # no balloon in this plan
    assert "note" not in record and LESSEE_NAME not in str(record)
    again = requests.get(f"{contracts.url}/api/v1/contracts/{contract['id']}/handover",
                         headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    assert again.status_code == 200 and again.json() == record


def test_the_record_is_signed_locked_and_logged(contracts: ContractServer,  # noqa: F811
                                                handed_over: dict[str, Any]) -> None:
    record, contract = handed_over["record"], handed_over["contract"]
    r = document(contracts, contract["id"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf", r.text[:300]
    pdf = r.content
    assert hashlib.sha256(pdf).hexdigest() == record["sha256"] == r.headers["X-Document-SHA256"]
    # the service's own verification: certified by the lessor, signed by the lessee, countersigned, all B-T
    reports = contracts.components.service.reports(pdf)
    assert [x.certified for x in reports] == [True, False, False]
    assert all(x.bottom_line and x.intact and x.valid and x.trusted and x.timestamp_time for x in reports), reports
    assert reports[1].signer_common_name == LESSEE_NAME
    # Object Lock: the record until 5 years after the end of its term's last day in Beijing …
    ends_on = date.fromisoformat(record["ends_on"])
    lease_end = datetime(ends_on.year, ends_on.month, ends_on.day, tzinfo=BEIJING) + timedelta(days=1)
    with contracts.components.db.session() as session:
        row = session.scalar(select(HandoverRow).where(HandoverRow.contract_id == contract["id"]))
        assert row is not None and row.key == f"contracts/{contract['id']}/handover.pdf" and row.version
        key, version = row.key, row.version
        signed = session.get(ContractRow, contract["id"])
        assert signed is not None and signed.signed_key and signed.signed_version
        contract_key, contract_version = signed.signed_key, signed.signed_version
    until = lock(contracts, key, version)
    assert abs(until - (lease_end + RETENTION)) < timedelta(seconds=1)
    store = contracts.components.service.store
    assert store.extend_retention(key, version, until - timedelta(days=30)) == until == lock(contracts, key, version)
    assert record["retain_until"] == (lease_end + RETENTION).astimezone(UTC).isoformat().replace("+00:00", "Z")
    from infra.storage import StorageError

    with pytest.raises(StorageError):
        contracts.components.service.store.delete(key)
    # … and the signed contract's lock, counted from the end the schedule had at generation, extended to the same day
    generated_end = date.fromisoformat(example_snapshot()["plan"]["ends_on"])
    assert generated_end < ends_on
    assert abs(lock(contracts, contract_key, contract_version) - (lease_end + RETENTION)) < timedelta(seconds=1)
    now = requests.get(f"{contracts.url}/api/v1/contracts/{contract['id']}", headers=contracts.headers(),
                       timeout=TIMEOUT).json()
    assert now["retain_until"] == record["retain_until"]
    # the evidence entry: its hash is the PDF's
    assert kinds(contracts, "app-handover-1").count("handover_signed") == 1
    opened = requests.get(f"{contracts.url}/api/v1/ledger/openings/{record['ledger_index']}",
                          headers=contracts.headers("ledger:read"), timeout=TIMEOUT).json()
    entry = evidence.opened(opened["bundle"], contracts.components.ledger.public_key.public_bytes_raw())
    assert entry["kind"] == "handover_signed" and entry["subject"] == "app-handover-1"
    data = entry["data"]
    assert data["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert {k: data[k] for k in ("contract_id", "number", "starts_on", "ends_on", "odometer_km", "identity",
                                 "identity_reference")} == {
        "contract_id": contract["id"], "number": contract["number"], "starts_on": record["starts_on"],
        "ends_on": record["ends_on"], "odometer_km": 12, "identity": "sms_otp", "identity_reference": "otp-check-1"}
    assert len(data["lessee_certificate_sha256"]) == len(data["lessor_certificate_sha256"]) == 64 and data["event"]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_the_record_says_what_was_handed_over(contracts: ContractServer, handed_over: dict[str, Any],  # noqa: F811
                                              tmp_path: Path) -> None:
    path = tmp_path / "handover.pdf"
    path.write_bytes(document(contracts, handed_over["contract"]["id"]).content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          timeout=60).stdout
    today, record = beijing_today(), handed_over["record"]
    for words in ("车辆交接确认书", "交车日期（即起租日）", handed_over["contract"]["number"], "左后门有轻微划痕",
                  "随车工具、使用说明书及保修手册", "张销售", f"{today.year}年{today.month}月{today.day}日",
                  record["schedule"][-1]["due_date"], "机动车登记证书"):
        assert words in text, words


def test_asking_again_returns_the_record(contracts: ContractServer,  # noqa: F811
                                         handed_over: dict[str, Any]) -> None:
    """Once per contract: a second POST, whatever it says, returns the first record (200), logged once."""
    contract, record = handed_over["contract"], handed_over["record"]
    other = handover_body(beijing_today() - timedelta(days=400), odometer_km=99, keys=1, items=[])
    r = post(contracts, contract["id"], other)
    assert r.status_code == 200 and r.json() == record, r.text[:300]
    assert kinds(contracts, "app-handover-1").count("handover_signed") == 1


def test_anyone_holding_the_record_can_verify_it(contracts: ContractServer,  # noqa: F811
                                                 handed_over: dict[str, Any]) -> None:
    pdf = document(contracts, handed_over["contract"]["id"]).content
    r = requests.post(f"{contracts.url}/api/v1/verification", files={"file": ("h.pdf", pdf, "application/pdf")},
                      timeout=TIMEOUT)
    verdict = r.json()
    assert r.status_code == 200 and verdict["all_valid"] and verdict["document"] == "handover", verdict
    assert verdict["contract"]["number"] == handed_over["contract"]["number"]
    assert verdict["handover"]["id"] == handed_over["record"]["id"]
    entry = evidence.opened(verdict["ledger"], contracts.components.ledger.public_key.public_bytes_raw())
    assert entry["kind"] == "handover_signed" and entry["data"]["sha256"] == handed_over["record"]["sha256"]


def test_a_stored_record_that_is_not_the_one_signed_is_refused(contracts: ContractServer,  # noqa: F811
                                                                handed_over: dict[str, Any]) -> None:
    contract_id = handed_over["contract"]["id"]
    store = contracts.components.service.store
    with contracts.components.db.session() as session:
        row = session.scalar(select(HandoverRow).where(HandoverRow.contract_id == contract_id))
        assert row is not None and row.key and row.version
        key, version = row.key, row.version
    other = store.put(key, b"%PDF-1.7 another file", "application/pdf")  # a new version beside the locked one
    with contracts.components.db.session() as session:
        session.execute(update(HandoverRow).where(HandoverRow.contract_id == contract_id).values(
            version=other.version_id))
    try:
        r = document(contracts, contract_id)
        assert r.status_code == 409 and r.json()["code"] == "tampered", r.text[:300]
    finally:
        with contracts.components.db.session() as session:
            session.execute(update(HandoverRow).where(HandoverRow.contract_id == contract_id).values(version=version))
    assert document(contracts, contract_id).status_code == 200


def test_in_advance_rent_1_is_due_on_the_day_and_a_31st_moves_to_february_s_end(
        contracts: ContractServer, tmp_path: Path) -> None:  # noqa: F811
    """A 24-month lease in advance with a balloon, signed in mid-January (the row's signing time set back) and
    handed over on 31 January: rent 1 that day (paid at signing), rent 2 on 28 February, the balloon and the term's
    end on 31 January two years on. The contract's lock, counted from a later end, is not shortened."""
    contract = signed_contract(contracts, "app-handover-advance", timing="advance", residual="0.30", term=24)
    start = date(beijing_today().year - 1, 1, 31)
    with contracts.components.db.session() as session:
        session.execute(update(ContractRow).where(ContractRow.id == contract["id"]).values(
            signed_at=datetime(start.year, 1, 15, 3, tzinfo=UTC)))
    r = post(contracts, contract["id"], handover_body(start))
    assert r.status_code == 201, r.text[:800]
    record = r.json()
    snapshot = example_snapshot(timing="advance", residual="0.30", term=24)
    assert record["schedule"] == [{"period": k, "due_date": months_later(start, k - 1).isoformat(),
                                   "payment": snapshot["schedule"][k - 1]["payment"]} for k in range(1, 25)]
    assert record["schedule"][1]["due_date"] == f"{start.year}-02-{calendar.monthrange(start.year, 2)[1]}"
    assert record["ends_on"] == date(start.year + 2, 1, 31).isoformat()
    assert record["final_rent"] == {"due_date": record["ends_on"], "amount": snapshot["plan"]["residual"]}
    after = requests.get(f"{contracts.url}/api/v1/contracts/{contract['id']}", headers=contracts.headers(),
                         timeout=TIMEOUT).json()
    assert after["retain_until"] == contract["retain_until"] > record["retain_until"]
    if shutil.which("pdftotext"):
        path = tmp_path / "advance.pdf"
        path.write_bytes(document(contracts, contract["id"]).content)
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, timeout=60).stdout
        assert "已于签约时支付" in text and f"{start.year}-02-28" in text


def test_a_contract_is_handed_over_only_once_signed(contracts: ContractServer) -> None:  # noqa: F811
    r = requests.post(f"{contracts.url}/api/v1/contracts", json=contract_snapshot("app-handover-draft"),
                      headers=contracts.headers(), timeout=TIMEOUT)
    draft = r.json()
    r = post(contracts, draft["id"], handover_body(beijing_today()))
    assert r.status_code == 409 and r.json()["code"] == "not_signed", r.text[:300]
    read = contracts.headers("contract:read")
    for path in ("handover", "handover/document"):
        r = requests.get(f"{contracts.url}/api/v1/contracts/{draft['id']}/{path}", headers=read, timeout=TIMEOUT)
        assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json", path
    assert post(contracts, "no-such-contract", handover_body(beijing_today())).status_code == 404
    assert requests.post(f"{contracts.url}/api/v1/contracts/{draft['id']}/handover", json={},
                         timeout=TIMEOUT).status_code == 401
    assert requests.post(f"{contracts.url}/api/v1/contracts/{draft['id']}/handover", json={}, headers=read,
                         timeout=TIMEOUT).status_code == 403


@pytest.fixture(scope="module")
def never_handed_over(contracts: ContractServer) -> dict[str, Any]:  # noqa: F811
    """A signed contract every request of which is refused."""
    return signed_contract(contracts, "app-handover-refused")


TODAY = beijing_today()
STALE = (datetime.now(UTC) - timedelta(minutes=11)).isoformat()


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"delivered_on": (TODAY - timedelta(days=1)).isoformat()}, "delivered_on", "before_signing"),
    ({"delivered_on": (TODAY + timedelta(days=1)).isoformat()}, "delivered_on", "in_the_future"),
    ({"delivered_on": "2026-13-01"}, "delivered_on", "invalid"),
    ({"delivered_on": "2026-02-30"}, "delivered_on", "invalid"),
    ({"delivered_on": "7/12/2026"}, "delivered_on", "invalid"),
    ({"delivered_on": 20261207}, "delivered_on", "invalid"),
    ({"odometer_km": -1}, "odometer_km", "invalid"),
    ({"odometer_km": 2_000_001}, "odometer_km", "invalid"),
    ({"odometer_km": 12.5}, "odometer_km", "invalid"),
    ({"odometer_km": "12"}, "odometer_km", "invalid"),
    ({"odometer_km": True}, "odometer_km", "invalid"),
    ({"keys": 0}, "keys", "invalid"),
    ({"keys": 10}, "keys", "invalid"),
    ({"items": ["tools", "spare_tyre"]}, "items", "invalid"),
    ({"items": ["registration_certificate"]}, "items", "invalid"),
    ({"items": ["tools", "tools"]}, "items", "invalid"),
    ({"items": "tools"}, "items", "invalid"),
    ({"note": "划" * 501}, "note", "invalid"),
    ({"note": "正常\u202e"}, "note", "control_characters"),
    ({"handed_over_by": ""}, "handed_over_by", "invalid"),
    ({"handed_over_by": "张" * 65}, "handed_over_by", "invalid"),
    ({"vehicle_name": "比" * 101}, "vehicle_name", "invalid"),
    ({"vehicle_name": 7}, "vehicle_name", "invalid"),
    ({"vehicle_name": "比亚迪 汉EV\u202e"}, "vehicle_name", "control_characters"),
    ({"signer_name": "李四"}, "signer_name", "not_the_lessee"),
    ({"identity": {"method": "sms_otp", "reference": "otp-check-1", "verified_at": STALE}},
     "identity.verified_at", "stale_identity"),
    ({"identity": {"method": "password", "reference": "otp-check-1", "verified_at": datetime.now(UTC).isoformat()}},
     "identity.method", "invalid"),
    ({"signature_png": base64.b64encode(b"GIF89a").decode()}, "signature_png", "not_a_png"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_bad_field_is_refused_with_its_error(contracts: ContractServer,  # noqa: F811
                                                  never_handed_over: dict[str, Any], change: dict[str, Any],
                                                  field: str, code: str) -> None:
    r = post(contracts, never_handed_over["id"], {**handover_body(TODAY), **change})
    assert r.status_code == 422 and r.headers["Content-Type"] == "application/problem+json", r.text[:300]
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [(field, code)], r.text[:300]
    assert requests.get(f"{contracts.url}/api/v1/contracts/{never_handed_over['id']}/handover",
                        headers=contracts.headers("contract:read"), timeout=TIMEOUT).status_code == 404


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (400, 160), (255, 255, 255, 0)).save(out, "PNG")  # nothing drawn
    return out.getvalue()


def test_a_failure_part_way_leaves_no_record_and_two_at_once_make_one(contracts: ContractServer) -> None:  # noqa: F811
    contract = signed_contract(contracts, "app-handover-race")
    # an empty drawing passes the API's PNG check and fails when stamped, after the lessor certified the record
    r = post(contracts, contract["id"], {**handover_body(TODAY), "signature_png": base64.b64encode(_blank_png())
                                         .decode()})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "not_a_png", r.text[:300]
    with contracts.components.db.session() as session:  # the claim was released: no half record
        assert session.scalar(select(HandoverRow).where(HandoverRow.contract_id == contract["id"])) is None
    assert "handover_signed" not in kinds(contracts, "app-handover-race")

    def hand_over(_: int) -> requests.Response:
        return post(contracts, contract["id"], handover_body(TODAY))

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(hand_over, [1, 2]))
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 409], [200, 201]), [a.text[:300] for a in answers]
    if statuses == [201, 409]:
        assert [a.json()["code"] for a in answers if a.status_code == 409] == ["handover_in_progress"]
    assert kinds(contracts, "app-handover-race").count("handover_signed") == 1
    with contracts.components.db.session() as session:
        rows = session.scalars(select(HandoverRow).where(HandoverRow.contract_id == contract["id"])).all()
        assert [r.status for r in rows] == ["signed"]


def test_a_claim_left_by_a_request_that_died_is_taken_over(contracts: ContractServer) -> None:  # noqa: F811
    """A claim still ``signing`` long after any signing could take (the process killed mid-way, or its release
    failed with the database) does not refuse the contract for ever: a later request takes it over."""
    from datetime import UTC
    from datetime import datetime

    from contract.handover import STALE_CLAIM

    contract = signed_contract(contracts, "app-handover-stale")
    with contracts.components.db.session() as session:
        session.add(HandoverRow(id="f" * 32, contract_id=contract["id"], status="signing", delivered_on=TODAY,
                                ends_on=TODAY, odometer_km=1, keys=1, items=[], handed_over_by="张销售", note="",
                                created_at=datetime.now(UTC) - STALE_CLAIM / 2))
    r = post(contracts, contract["id"], handover_body(TODAY))
    assert r.status_code == 409 and r.json()["code"] == "handover_in_progress"  # a recent claim still stands
    with contracts.components.db.session() as session:
        session.execute(update(HandoverRow).where(HandoverRow.id == "f" * 32).values(
            created_at=datetime.now(UTC) - STALE_CLAIM * 2))
    r = post(contracts, contract["id"], handover_body(TODAY))
    assert r.status_code == 201, r.text[:300]
    assert kinds(contracts, "app-handover-stale").count("handover_signed") == 1
