"""The contract service over real HTTP with real service tokens, SeaweedFS (Object Lock), a local RFC 3161
TSA and its own database: generate → review pages → sign (certify, customer, countersign; PAdES B-T) →
verify (pyHanko and poppler's pdfsig agree) → the evidence log's proofs, checked by an independent
RFC 9162 verifier; the public log holds commitments, their openings (proof bundles) need ``ledger:read``.
Tampering is caught: a changed byte in the signed PDF, a changed log entry, a changed leaf."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from PIL import ImageDraw
from sqlalchemy import update

from contract.db.models import ContractRow
from contract.db.models import LeafRow
from contract.db.models import OpeningRow
from contract.document.render import BEIJING
from tests.common import evidence
from tests.common import rfc9162
from tests.common.contract import ContractServer
from tests.common.payloads import TOO_DEEP
from tests.common.risk import risk_database
from tests.common.tsa import TsaServer
from tests.conftest import DATABASES
from tests.conftest import postgres_database
from tests.unit.test_contract_document import LESSEE_NAME
from tests.unit.test_contract_document import example_snapshot

pytestmark = pytest.mark.db
TIMEOUT = 30


@pytest.fixture(scope="module", params=DATABASES)
def contracts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, s3_server: Any) -> Any:
    var = tmp_path_factory.mktemp("contract-var")
    with (risk_database(var, request.param) as url, TsaServer() as tsa,
          ContractServer(url, var, s3_server, tsa) as server):
        yield server


def snapshot(application_id: str) -> dict[str, Any]:
    data = {k: v for k, v in example_snapshot().items() if k not in ("number", "generated_at", "signed", "lessor")}
    return {"application_id": application_id, "dealer_id": "dealer-1", **data}


def signature_png() -> bytes:
    image = Image.new("RGBA", (400, 160), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(20, 120), (120, 30), (220, 130), (380, 40)], fill=(10, 10, 60, 255), width=6)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sign_body(name: str = LESSEE_NAME, **identity: Any) -> dict[str, Any]:
    return {"signer_name": name, "signature_png": base64.b64encode(signature_png()).decode(),
            "identity": {"method": "sms_otp", "reference": "otp-check-1",
                         "verified_at": datetime.now(UTC).isoformat(), **identity}}


def create(server: ContractServer, application_id: str) -> dict[str, Any]:
    r = requests.post(f"{server.url}/api/v1/contracts", json=snapshot(application_id), headers=server.headers(),
                      timeout=TIMEOUT)
    assert r.status_code == 201, r.text[:500]
    return dict(r.json())


@pytest.fixture(scope="module")
def signed(contracts: ContractServer) -> dict[str, Any]:
    contract = create(contracts, "app-signed-1")
    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=sign_body(),
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:800]
    return dict(r.json())


def test_tokens_are_required_and_scoped(contracts: ContractServer) -> None:
    url = f"{contracts.url}/api/v1/contracts"
    assert requests.post(url, json=snapshot("x"), timeout=TIMEOUT).status_code == 401
    r = requests.post(url, json=snapshot("x"), headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    assert r.status_code == 403
    wrong = {"Authorization": f"Bearer {contracts.tokens.make(('contract:write',), audience='leaseline-risk')}"}
    assert requests.post(url, json=snapshot("x"), headers=wrong, timeout=TIMEOUT).status_code == 401


def test_bad_snapshots_get_field_errors(contracts: ContractServer) -> None:
    url = f"{contracts.url}/api/v1/contracts"
    body = snapshot("app-bad")
    body["schedule"][3]["principal"] = "1.00"
    r = requests.post(url, json=body, headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("schedule")
    r = requests.post(url, data="not json", headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 422


@pytest.mark.parametrize("params", [{}, {"application_id": ""}, {"application_id": "x" * 65},
                                    [("application_id", "a"), ("application_id", "b")],
                                    {"application_id": "a", "status": "signed"}], ids=repr)
def test_finding_a_contract_refuses_a_bad_query(contracts: ContractServer, params: Any) -> None:
    """Not a silent answer for the first of two ids, nor one that ignores an unknown filter: 400."""
    response = requests.get(f"{contracts.url}/api/v1/contracts", params=params,
                            headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Content-Type"] == "application/problem+json" and response.json()["errors"]


def _arabic_indic(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


@pytest.mark.parametrize(("change", "field", "code"), [
    (lambda s: s.update(application_id=5), "application_id", "invalid"),
    (lambda s: s.update(dealer_id=["dealer-1"]), "dealer_id", "invalid"),
    (lambda s: s["lessee"].update(address="上海市" + " " * 250), "lessee.address", "invalid"),
    (lambda s: s["vehicle"].update(price=_arabic_indic(s["vehicle"]["price"])), "vehicle.price", "invalid"),
    (lambda s: s["plan"].update(apr=_arabic_indic(s["plan"]["apr"])), "plan.apr", "invalid"),
    (lambda s: s["schedule"][0].update(due_date=_arabic_indic(s["schedule"][0]["due_date"])),
     "schedule[0].due_date", "invalid"),
    (lambda s: s["lessee"].update(name="张\u200b三丰"), "lessee.name", "control_characters"),
    (lambda s: s["schedule"][3].update(principal="1.00"), "schedule", "inconsistent"),
], ids=["application_id 5", "dealer_id a list", "address past 200 as sent", "price in other digits",
        "apr in other digits", "due date in other digits", "a zero-width space", "a schedule that does not add up"])
def test_a_snapshot_is_taken_only_as_the_document_says(contracts: ContractServer, change: Any, field: str,
                                                       code: str) -> None:
    """What the OpenAPI document calls invalid is refused (schemathesis found these taken), each with a code;
    the document lists those beyond any JSON Schema (x-rules-beyond-schema)."""
    body = snapshot("app-document-says")
    change(body)
    r = requests.post(f"{contracts.url}/api/v1/contracts", json=body, headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 422, r.text[:300]
    error = r.json()["errors"][0]
    assert (error["field"].split("[")[0] if code == "inconsistent" else error["field"], error["code"]) == (
        field, code), error


def test_a_malformed_snapshot_is_refused_for_an_application_that_has_its_contract(contracts: ContractServer) -> None:
    create(contracts, "app-twice-1")
    body = snapshot("app-twice-1")
    body["plan"]["apr"] = 0.0712
    r = requests.post(f"{contracts.url}/api/v1/contracts", json=body, headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "plan.apr", r.text[:300]


def test_a_snapshot_term_may_be_a_whole_json_number(contracts: ContractServer) -> None:
    body = snapshot("app-term-float")
    body["plan"]["term"] = float(body["plan"]["term"])
    r = requests.post(f"{contracts.url}/api/v1/contracts", json=body, headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 201, r.text[:300]


@pytest.mark.parametrize(("body", "field"), [
    (sign_body(LESSEE_NAME + " " * 70), "signer_name"),
    (sign_body(reference=12345), "identity.reference"),
    (sign_body(verified_at=datetime.now(UTC).isoformat(sep=" ")), "identity.verified_at"),
    ({**sign_body(), "signature_png": 5}, "signature_png"),
], ids=["a name past 64 as sent", "a reference that is a number", "a date-time with a space", "a PNG that is 5"])
def test_a_signature_is_taken_only_as_the_document_says(contracts: ContractServer, body: dict[str, Any],
                                                        field: str) -> None:
    contract = create(contracts, f"app-sign-{field}")
    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=body,
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text[:300]


@pytest.mark.parametrize("query", ["index=²&tree_size=1", "index=0&tree_size=١"])
def test_a_proof_s_numbers_are_ascii_digits(contracts: ContractServer, query: str) -> None:
    """str.isdigit() takes "²" and Arabic-Indic digits, which int() refuses or reads: a 422, never a 500."""
    response = requests.get(f"{contracts.url}/api/v1/ledger/proof/inclusion?{query}", timeout=TIMEOUT)
    assert response.status_code == 422, response.text[:300]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/contracts/c%00", None), ("GET", "/contracts?application_id=a%00", None),
    ("POST", "/contracts", {"application_id": "a\x00", "dealer_id": "d"}),
], ids=repr)
def test_a_nul_character_gets_400(contracts: ContractServer, method: str, path: str, body: Any) -> None:
    """PostgreSQL's text cannot hold U+0000: refused with a 400 on every database, not a 500 on PostgreSQL."""
    response = requests.request(method, f"{contracts.url}/api/v1{path}", json=body, timeout=TIMEOUT,
                                headers=contracts.headers("contract:write"))
    assert response.status_code == 400, response.text[:300]
    assert "U+0000" in response.json()["detail"]


@pytest.mark.parametrize("index", [2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30])
def test_an_entry_past_the_index_column_is_not_found(contracts: ContractServer, index: int) -> None:
    """The index column is a 32-bit integer on PostgreSQL (schemathesis found 136143053969 answering 500)."""
    response = requests.get(f"{contracts.url}/api/v1/ledger/entries/{index}", timeout=TIMEOUT)
    assert response.status_code == 404, response.text[:300]


def test_a_multipart_part_without_a_name_is_no_file(contracts: ContractServer) -> None:
    """schemathesis sent a part without a name (werkzeug keys it None): no PDF, a 422, not a 500."""
    body = (b'--b\r\nContent-Disposition: form-data\r\n\r\nnull\r\n'
            b'--b\r\nContent-Disposition: form-data; name=""\r\n\r\n{}\r\n--b--\r\n')
    response = requests.post(f"{contracts.url}/api/v1/verification", data=body, timeout=TIMEOUT,
                             headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 422, response.text[:300]


def test_a_method_not_allowed_says_which_are(contracts: ContractServer) -> None:
    response = requests.get(f"{contracts.url}/api/v1/verification", timeout=TIMEOUT)
    assert response.status_code == 405 and response.headers["Content-Type"] == "application/problem+json"
    assert "POST" in response.headers.get("Allow", ""), response.headers


@pytest.mark.parametrize("path", ["/contracts", "/contracts/c-1/signatures"])
@pytest.mark.parametrize("body", list(TOO_DEEP.values()), ids=list(TOO_DEEP))
def test_deeply_nested_json_gets_400(contracts: ContractServer, path: str, body: str) -> None:
    response = requests.post(f"{contracts.url}/api/v1{path}", data=body, timeout=TIMEOUT,
                             headers={**contracts.headers(), "Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and "nested deeper than 64" in problem["detail"], problem


def test_a_draft_is_generated_once_per_application_and_logged(contracts: ContractServer) -> None:
    first = create(contracts, "app-draft-1")
    again = requests.post(f"{contracts.url}/api/v1/contracts", json=snapshot("app-draft-1"),
                          headers=contracts.headers(), timeout=TIMEOUT)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert first["status"] == "draft" and first["pages"] >= 4 and first["lessee"].startswith("张")
    assert [e["kind"] for e in first["ledger"]] == ["contract_generated"]
    pdf = requests.get(f"{contracts.url}/api/v1/contracts/{first['id']}/document",
                       headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    page = requests.get(f"{contracts.url}/api/v1/contracts/{first['id']}/pages/1",
                        headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    assert page.status_code == 200 and page.content.startswith(b"\x89PNG")
    assert requests.get(f"{contracts.url}/api/v1/contracts/{first['id']}/pages/99",
                        headers=contracts.headers("contract:read"), timeout=TIMEOUT).status_code == 404


def test_the_pages_are_rasterised_once_however_many_ask_at_once(contracts: ContractServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A phone asks for the contract's pages at once; before, each request rasterised the whole document again
    (4 requests: 4 pdftoppm runs, on a busy machine long enough for the BFF's read to time out: a broken page).
    Counted with a wrapper in front of the real pdftoppm."""
    real = shutil.which("pdftoppm")
    assert real
    calls = tmp_path / "calls"
    wrapper = tmp_path / "bin" / "pdftoppm"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho run >> "{calls}"\nsleep 0.5\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    made = create(contracts, "app-pages-at-once")
    headers = contracts.headers("contract:read")

    def fetch(page: int) -> requests.Response:
        return requests.get(f"{contracts.url}/api/v1/contracts/{made['id']}/pages/{page}", headers=headers,
                            timeout=TIMEOUT)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(fetch, [1, 2, 3, 4]))
    assert [a.status_code for a in answers] == [200] * 4
    assert all(a.content.startswith(b"\x89PNG") for a in answers)
    assert calls.read_text().count("run") == 1


def _final_text_ready(contracts: ContractServer, contract_id: str) -> ContractRow:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contracts.components.db.session() as session:
            row = session.get(ContractRow, contract_id)
            assert row is not None
            if row.final_key:
                session.expunge(row)
                return row
        time.sleep(0.2)
    raise AssertionError("the final text was not rendered ahead")


def test_signing_signs_the_final_text_rendered_ahead(contracts: ContractServer) -> None:
    contract = create(contracts, "app-ahead-1")
    row = _final_text_ready(contracts, contract["id"])
    final = contracts.components.service.store.get(row.final_key)
    assert set(row.final_boxes or {}) == {"lessee", "lessor"}
    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=sign_body(),
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:500]
    # PAdES signatures are incremental updates: the signed file starts with the exact bytes that were signed
    assert _signed_pdf(contracts, contract["id"]).startswith(final)


def test_a_final_text_that_no_longer_matches_its_hash_is_not_signed(contracts: ContractServer) -> None:
    contract = create(contracts, "app-ahead-2")
    row = _final_text_ready(contracts, contract["id"])
    store = contracts.components.service.store
    final = store.get(row.final_key)
    draft = store.get(row.draft_key)
    store.put(row.final_key, draft, "application/pdf")  # the stored copy swapped for another PDF
    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=sign_body(),
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:500]
    signed_pdf = _signed_pdf(contracts, contract["id"])
    # the text was rendered again from the contract's data (rendering is deterministic: the same bytes)
    assert signed_pdf.startswith(final) and not signed_pdf.startswith(draft)


def test_signing_needs_the_lessee_and_a_fresh_identity_check(contracts: ContractServer) -> None:
    contract = create(contracts, "app-refuse-1")
    url = f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures"
    for body, field in ((sign_body("李四"), "signer_name"),
                        (sign_body(verified_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()),
                         "identity.verified_at"),
                        (sign_body(method="password"), "identity.method"),
                        ({**sign_body(), "signature_png": base64.b64encode(b"GIF89a").decode()}, "signature_png")):
        r = requests.post(url, json=body, headers=contracts.headers(), timeout=TIMEOUT)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text[:300]
    assert requests.get(f"{contracts.url}/api/v1/contracts/{contract['id']}", headers=contracts.headers(),
                        timeout=TIMEOUT).json()["status"] == "draft"


def test_the_signed_contract_verifies_and_is_locked(contracts: ContractServer, signed: dict[str, Any]) -> None:
    assert signed["status"] == "signed" and [s["role"] for s in signed["signatures"]] == [
        "lessor_certification", "lessee", "lessor"]
    assert signed["signatures"][1]["identity"]["method"] == "sms_otp"
    r = requests.get(f"{contracts.url}/api/v1/contracts/{signed['id']}/verification",
                     headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    verdict = r.json()
    assert r.status_code == 200 and verdict["all_valid"] is True, verdict
    sigs = verdict["signatures"]
    assert [s["certified"] for s in sigs] == [True, False, False]
    assert all(s["intact"] and s["valid"] and s["trusted"] and s["timestamp_time"] for s in sigs)
    assert sigs[1]["signer"] == LESSEE_NAME
    # Object Lock: the signed version cannot be deleted before the retention date
    store = contracts.components.service.store
    row_key = f"contracts/{signed['id']}/signed.pdf"
    mode, until = store.retention(row_key, _version(contracts, signed["id"]))
    # kept 5 years after the lease's end, as the privacy notice says (bff/applications/consent.toml), not after the
    # signature: this 36-month lease ends on the schedule's last day, in Beijing
    from contract.document import from_snapshot

    ends_on = from_snapshot(example_snapshot()).plan.ends_on
    assert ends_on is not None
    lease_end = datetime(ends_on.year, ends_on.month, ends_on.day, tzinfo=BEIJING) + timedelta(days=1)
    assert mode == "COMPLIANCE" and until >= lease_end + timedelta(days=round(365.25 * 5)) - timedelta(seconds=1)
    assert until > datetime.now(UTC) + timedelta(days=365 * 7)
    from infra.storage import StorageError

    with pytest.raises(StorageError):
        store.delete(row_key)
    again = requests.post(f"{contracts.url}/api/v1/contracts/{signed['id']}/signatures", json=sign_body(),
                          headers=contracts.headers(), timeout=TIMEOUT)
    assert again.status_code == 200 and again.json()["signed_sha256"] == signed["signed_sha256"]


def _version(contracts: ContractServer, contract_id: str) -> str:
    from contract.db.models import ContractRow

    with contracts.components.db.session() as session:
        row = session.get(ContractRow, contract_id)
        assert row is not None and row.signed_version
        return row.signed_version


def _signed_pdf(contracts: ContractServer, contract_id: str) -> bytes:
    r = requests.get(f"{contracts.url}/api/v1/contracts/{contract_id}/document",
                     headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    assert r.status_code == 200
    return r.content


@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="needs poppler-utils")
def test_one_changed_byte_breaks_the_signatures_for_pyhanko_and_pdfsig(contracts: ContractServer,
                                                                        signed: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    pdf = _signed_pdf(contracts, signed["id"])
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf)
    assert "Signature is Valid" in subprocess.run(["pdfsig", str(good)], capture_output=True, text=True,
                                                  timeout=60).stdout
    # one byte inside the first revision's signed content (the page text): every signature covers it
    at = pdf.index(b"stream", len(pdf) // 4) + 20
    tampered = pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:]
    r = requests.post(f"{contracts.url}/api/v1/verification", data=tampered,
                      headers={"Content-Type": "application/pdf"}, timeout=TIMEOUT)
    verdict = r.json()
    assert r.status_code == 200 and verdict["all_valid"] is False and verdict["contract"] is None
    assert not any(s["intact"] for s in verdict["signatures"])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(tampered)
    out = subprocess.run(["pdfsig", str(bad)], capture_output=True, text=True, timeout=60).stdout
    assert "Signature is Valid" not in out and ("Digest Mismatch" in out or "Invalid" in out), out


def test_anyone_can_verify_an_untouched_copy_and_its_log_proof(contracts: ContractServer,
                                                               signed: dict[str, Any]) -> None:
    pdf = _signed_pdf(contracts, signed["id"])
    r = requests.post(f"{contracts.url}/api/v1/verification", files={"file": ("c.pdf", pdf, "application/pdf")},
                      timeout=TIMEOUT)
    verdict = r.json()
    assert r.status_code == 200 and verdict["all_valid"] and verdict["contract"]["number"] == signed["number"]
    proof = verdict["ledger"]  # the holder of the signed file gets the opening of its record, checked independently
    entry = evidence.opened(proof, contracts.components.ledger.public_key.public_bytes_raw())
    assert entry["kind"] == "contract_signed" and entry["data"]["sha256"] == signed["signed_sha256"]
    assert proof["previous_log"] is None  # the first log's audit path is never shown to the public
    public = requests.get(f"{contracts.url}/api/v1/ledger/entries/{proof['index']}", timeout=TIMEOUT).json()
    assert base64.b64decode(public["entry"]) == base64.b64decode(proof["leaf"])  # what the public sees: the commitment
    assert signed["signed_sha256"].encode() not in base64.b64decode(public["entry"])


def test_the_public_ledger_proves_inclusion_and_consistency(contracts: ContractServer,
                                                            signed: dict[str, Any]) -> None:
    base = f"{contracts.url}/api/v1/ledger"
    old = requests.get(f"{base}/checkpoint", timeout=TIMEOUT).json()
    r = requests.post(f"{base}/entries", json={"kind": "payment", "subject": "app-signed-1",
                                               "data": {"amount": "27960.00", "currency": "CNY"}},
                      headers=contracts.headers("ledger:append"), timeout=TIMEOUT)
    assert r.status_code == 201
    bad = requests.post(f"{base}/entries", json={"kind": "payment", "subject": "x", "data": {"amount": 1.5}},
                        headers=contracts.headers("ledger:append"), timeout=TIMEOUT)
    assert bad.status_code == 422
    new = requests.get(f"{base}/checkpoint", timeout=TIMEOUT).json()
    assert new["tree_size"] > old["tree_size"]
    for index in range(new["tree_size"]):
        entry = requests.get(f"{base}/entries/{index}", timeout=TIMEOUT).json()
        path = requests.get(f"{base}/proof/inclusion", params={"index": index, "tree_size": new["tree_size"]},
                            timeout=TIMEOUT).json()["audit_path"]
        assert rfc9162.verify_inclusion(rfc9162.hash_leaf(base64.b64decode(entry["entry"])), index,
                                        new["tree_size"], [bytes.fromhex(h) for h in path],
                                        bytes.fromhex(new["root_hash"]))
    proof = requests.get(f"{base}/proof/consistency", params={"first": old["tree_size"],
                                                              "second": new["tree_size"]}, timeout=TIMEOUT).json()
    assert rfc9162.verify_consistency(old["tree_size"], new["tree_size"], bytes.fromhex(old["root_hash"]),
                                      bytes.fromhex(new["root_hash"]), [bytes.fromhex(h) for h in proof["proof"]])
    assert requests.get(f"{base}/entries/99999", timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{base}/proof/inclusion", params={"index": "x", "tree_size": 1},
                        timeout=TIMEOUT).status_code == 422


def test_a_batch_is_appended_in_order_under_one_checkpoint_and_all_or_nothing(contracts: ContractServer) -> None:
    base = f"{contracts.url}/api/v1/ledger"
    headers = contracts.headers("ledger:append")
    before = requests.get(f"{base}/checkpoint", timeout=TIMEOUT).json()
    entries = [{"kind": "payment", "subject": "app-batch-1", "data": {"amount": f"{n}.00"},
                "idempotency_key": f"batch-test-{n}"} for n in range(5)]
    entries.append(dict(entries[1]))  # the same key twice in one batch: one entry
    r = requests.post(f"{base}/batches", json={"entries": entries}, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    answer = r.json()
    indexes = [e["index"] for e in answer["entries"]]
    assert indexes[:5] == list(range(before["tree_size"], before["tree_size"] + 5))
    assert indexes[5] == indexes[1] and [e["created"] for e in answer["entries"]] == [True] * 5 + [False]
    assert answer["checkpoint"]["tree_size"] == before["tree_size"] + 5
    key = contracts.components.ledger.public_key.public_bytes_raw()
    for n, index in enumerate(indexes[:5]):
        raw = base64.b64decode(requests.get(f"{base}/entries/{index}", timeout=TIMEOUT).json()["entry"])
        assert f'"{n}.00"'.encode() not in raw  # the public leaf is a commitment
        opened = requests.get(f"{base}/openings/{index}", headers=contracts.headers("ledger:read"),
                              timeout=TIMEOUT).json()
        assert evidence.opened(opened["bundle"], key)["data"]["amount"] == f"{n}.00"  # in the order given
    # the batch again: nothing new
    again = requests.post(f"{base}/batches", json={"entries": entries}, headers=headers, timeout=TIMEOUT).json()
    assert [e["index"] for e in again["entries"]] == indexes and not any(e["created"] for e in again["entries"])
    # one bad entry refuses the whole batch, and names it
    size = requests.get(f"{base}/checkpoint", timeout=TIMEOUT).json()["tree_size"]
    bad = [{"kind": "payment", "subject": "app-batch-2", "data": {"amount": "1.00"}},
           {"kind": "payment", "subject": "app-batch-2", "data": {"amount": 1.5}}]
    r = requests.post(f"{base}/batches", json={"entries": bad}, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 422
    r = requests.post(f"{base}/batches", json={"entries": [bad[0], {"kind": "rumour", "subject": "x"}]},
                      headers=headers, timeout=TIMEOUT)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "entries[1].kind"
    for body in ({"entries": []}, {"entries": [bad[0]] * 101}, {"entries": "x"}, {"entries": [1]}):
        assert requests.post(f"{base}/batches", json=body, headers=headers, timeout=TIMEOUT).status_code == 422
    assert requests.get(f"{base}/checkpoint", timeout=TIMEOUT).json()["tree_size"] == size
    assert requests.post(f"{base}/batches", json={"entries": [bad[0]]}, timeout=TIMEOUT).status_code == 401
    assert requests.post(f"{base}/batches", json={"entries": [bad[0]]}, headers=contracts.headers("contract:read"),
                         timeout=TIMEOUT).status_code == 403


def test_openings_need_the_ledger_read_scope_and_prove_their_entry(contracts: ContractServer,
                                                                     signed: dict[str, Any]) -> None:
    base = f"{contracts.url}/api/v1/ledger"
    index = [e["index"] for e in signed["ledger"] if e["kind"] == "contract_signed"][-1]
    assert requests.get(f"{base}/openings/{index}", timeout=TIMEOUT).status_code == 401
    for scope in ("ledger:append", "contract:read", "contract:write"):
        r = requests.get(f"{base}/openings/{index}", headers=contracts.headers(scope), timeout=TIMEOUT)
        assert r.status_code == 403, scope
        r = requests.get(f"{base}/subjects/app-signed-1/entries", headers=contracts.headers(scope), timeout=TIMEOUT)
        assert r.status_code == 403, scope
    read = contracts.headers("ledger:read")
    answer = requests.get(f"{base}/openings/{index}", headers=read, timeout=TIMEOUT).json()
    assert answer["kind"] == "contract_signed" and answer["subject"] == "app-signed-1"
    entry = evidence.opened(answer["bundle"], contracts.components.ledger.public_key.public_bytes_raw())
    assert entry["subject"] == "app-signed-1" and entry["data"]["contract_id"] == signed["id"]
    # a changed salt or entry no longer opens the commitment
    for part, value in (("salt", "00" * 32), ("entry", base64.b64encode(b'{"v":1}').decode())):
        forged = {**answer["bundle"], "opening": {**answer["bundle"]["opening"], part: value}}
        assert evidence.failures(forged, contracts.components.ledger.public_key.public_bytes_raw()) == ["commitment"]
    listed = requests.get(f"{base}/subjects/app-signed-1/entries", headers=read, timeout=TIMEOUT).json()
    pairs = [(e["index"], e["kind"]) for e in listed["entries"]]  # oldest first (another test adds a payment)
    assert pairs[:len(signed["ledger"])] == [(e["index"], e["kind"]) for e in signed["ledger"]]
    assert all(e["at"].endswith("Z") for e in listed["entries"])
    assert requests.get(f"{base}/openings/0", headers=read, timeout=TIMEOUT).status_code == 404  # the log start
    assert requests.get(f"{base}/openings/99999", headers=read, timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{base}/subjects/a%20b/entries", headers=read, timeout=TIMEOUT).status_code == 422


def test_a_changed_entry_fails_the_audit_and_is_named(contracts: ContractServer, signed: dict[str, Any]) -> None:
    ledger = contracts.components.ledger
    assert ledger.audit().ok
    victim = signed["ledger"][-1]["index"]
    original = ledger.opened(victim).opening.entry
    with contracts.components.db.session() as session:  # the private entry changed: it no longer opens its leaf
        session.execute(update(OpeningRow).where(OpeningRow.idx == victim).values(
            entry=original.replace(b"sms_otp", b"face___")))
    try:
        report = ledger.audit()
        assert not report.ok and report.first_bad_index == victim
        assert any(str(victim) in p for p in report.problems)
    finally:
        with contracts.components.db.session() as session:
            session.execute(update(OpeningRow).where(OpeningRow.idx == victim).values(entry=original))
    assert ledger.audit().ok
    leaf, _ = ledger.entry(victim)
    with contracts.components.db.session() as session:  # the public leaf changed: its hash no longer matches
        session.execute(update(LeafRow).where(LeafRow.idx == victim).values(leaf=leaf.replace(b'"v":2', b'"v":3')))
    try:
        report = ledger.audit()
        assert not report.ok and report.first_bad_index == victim
    finally:
        with contracts.components.db.session() as session:
            session.execute(update(LeafRow).where(LeafRow.idx == victim).values(leaf=leaf))
    assert ledger.audit().ok


def test_leaseline_ledger_verify_names_a_changed_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from contract.db.migrate import upgrade
    from contract.evidence import EvidenceLog
    from contract.evidence import FileAnchor
    from contract.evidence import load_or_create_key
    from infra.db.engine import Database
    from leaseline.cli import main

    key = tmp_path / "ledger.pem"
    for url in postgres_database("leaseline_ledger"):
        monkeypatch.setenv("LEASELINE_CONTRACT_DATABASE_URL", url)
        monkeypatch.setenv("LEASELINE_LEDGER_SIGNING_KEY_PATH", str(key))
        monkeypatch.setenv("LEASELINE_LEDGER_ORIGIN", "test")
        monkeypatch.setenv("LEASELINE_S3_SECRET_KEY", "unused")
        upgrade(url)
        db = Database(url)
        try:
            log = EvidenceLog(db, load_or_create_key(key), "test/v2", [FileAnchor(tmp_path / "anchors.jsonl")])
            for i in range(7):
                log.append("payment", f"app-{i}", {"amount": f"{i}.00"})
            runner = CliRunner()
            done = runner.invoke(main, ["ledger", "verify", "--checkpoint", str(tmp_path / "anchors.jsonl")])
            assert done.exit_code == 0 and "evidence log intact: 8 entries" in done.output, done.output  # start + 7
            original = log.opened(4).opening.entry  # app-3's
            with db.session() as session:
                session.execute(update(OpeningRow).where(OpeningRow.idx == 4).values(
                    entry=original.replace(b"3.00", b"9.00")))
            done = runner.invoke(main, ["ledger", "verify"])
            assert done.exit_code != 0 and "first bad entry 4" in done.output, done.output
        finally:
            db.dispose()
