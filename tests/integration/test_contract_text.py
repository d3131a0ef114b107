"""The contract's text for reading on a phone (issue 17 §2): ``GET /api/v1/contracts/{id}/text`` answers the HTML
the PDF was rendered from, with its SHA-256, and the PDF states that same fingerprint on its first page, so that
anyone holding both can check they are one document. Checked here over real HTTP, against the PDF itself
(poppler's pdftotext, independently of the service's own check), for the draft and the signed contract."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import update

from contract.db.models import ContractRow
from tests.common.contract import ContractServer
from tests.common.risk import risk_database
from tests.common.tsa import TsaServer
from tests.conftest import DATABASES
from tests.integration.test_contract_service import TIMEOUT
from tests.integration.test_contract_service import create
from tests.integration.test_contract_service import sign_body

pytestmark = pytest.mark.db


@pytest.fixture(scope="module", params=DATABASES)
def contracts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, s3_server: Any) -> Any:
    var = tmp_path_factory.mktemp("contract-text-var")
    with (risk_database(var, request.param) as url, TsaServer() as tsa,
          ContractServer(url, var, s3_server, tsa) as server):
        yield server


def first_page_text(pdf: bytes) -> str:
    """Page 1 of a PDF as poppler reads it (without the diagonal watermark)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contract.pdf"
        path.write_bytes(pdf)
        done = subprocess.run(["pdftotext", "-nodiag", "-f", "1", "-l", "1", str(path), "-"], check=True,
                              capture_output=True, timeout=60)
    return done.stdout.decode()


def stated(pdf: bytes) -> str:
    """The text fingerprint the PDF prints on its first page."""
    found = re.search(r"SHA-256\S*\s*([0-9a-f]{64})", first_page_text(pdf))
    assert found, "the PDF states no text fingerprint"
    return found.group(1)


def get_text(server: ContractServer, contract_id: str, **headers: str) -> requests.Response:
    return requests.get(f"{server.url}/api/v1/contracts/{contract_id}/text",
                        headers=headers or server.headers("contract:read"), timeout=TIMEOUT)


def get_pdf(server: ContractServer, contract_id: str) -> bytes:
    r = requests.get(f"{server.url}/api/v1/contracts/{contract_id}/document", headers=server.headers("contract:read"),
                     timeout=TIMEOUT)
    assert r.status_code == 200
    return r.content


def test_the_text_needs_a_read_token(contracts: ContractServer) -> None:
    contract = create(contracts, "app-text-auth")
    assert requests.get(f"{contracts.url}/api/v1/contracts/{contract['id']}/text", timeout=TIMEOUT).status_code == 401
    assert get_text(contracts, contract["id"], **contracts.headers("ledger:append")).status_code == 403
    assert get_text(contracts, "0" * 32).status_code == 404


def test_the_text_is_the_one_the_pdf_was_rendered_from_before_and_after_signing(contracts: ContractServer) -> None:
    contract = create(contracts, "app-text-same")
    r = get_text(contracts, contract["id"])
    assert r.status_code == 200, r.text[:500]
    assert "no-store" in r.headers["Cache-Control"]  # the whole ID number is in it
    body = r.json()
    digest = hashlib.sha256(body["html"].encode("utf-8")).hexdigest()
    assert body["sha256"] == digest == stated(get_pdf(contracts, contract["id"]))
    assert body["document_sha256"] == contract["sha256"]
    # stable: asked again, the same bytes
    assert get_text(contracts, contract["id"]).json() == body
    # its own words, not a summary: the clauses, the schedule, the lessee; no inline style, no script
    html = body["html"]
    assert "第八条 违约责任" in html and "附件一：租金支付计划表" in html and "张三丰" in html
    assert "style=" not in html and "<script" not in html
    assert [s["id"] for s in body["sections"]][:3] == ["parties", "vehicle", "term"]
    assert all(f'id="{s["id"]}"' in html for s in body["sections"])
    terms = body["terms"]
    rents = re.findall(r'<tr><td class="c">\d+</td>', html)  # the schedule's rows
    assert terms["term"] == len(rents) and terms["monthly_payment"] and terms["apr"] and terms["total_payable"]

    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=sign_body(),
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:500]
    signed = get_text(contracts, contract["id"]).json()
    # the signed PDF (its final text, without the DRAFT mark) states the same text's fingerprint
    assert signed["html"] == html and signed["sha256"] == digest == stated(get_pdf(contracts, contract["id"]))
    assert signed["document_sha256"] == r.json()["signed_sha256"] != contract["sha256"]


def change_frozen_words(contracts: ContractServer, contract_id: str) -> None:
    """The contract's frozen data changed under it: what the text renders to now differs from what was generated
    (as a deploy that changes the template or its filters would make it differ)."""
    service = contracts.components.service
    row = service.row(contract_id)
    document = service.document_data(row)
    document["lessee"]["address"] = "上海市浦东新区改址路 1 号"
    with contracts.components.db.session() as session:
        session.execute(update(ContractRow).where(ContractRow.id == row.id).values(
            snapshot_enc=service.vault.encrypt(json.dumps(document, ensure_ascii=False), f"contract:{row.id}")))


def entry(contracts: ContractServer, contract: dict[str, Any], kind: str) -> str:
    """The clear entry of the contract's latest evidence-log entry of ``kind``."""
    ledger = contracts.components.service.ledger
    meta = contracts.components.service.get(contract["id"])
    index = [e["index"] for e in meta["ledger"] if e["kind"] == kind][-1]
    return ledger.opened(index).opening.entry.decode()


def test_the_reading_copy_is_the_text_stored_when_the_contract_was_generated(contracts: ContractServer) -> None:
    """The text is kept as generated, not rendered again: a change of what it would render to now (a new template)
    changes nothing of what is handed out, and the PDF still prints its fingerprint."""
    contract = create(contracts, "app-text-stored")
    before = get_text(contracts, contract["id"]).json()
    change_frozen_words(contracts, contract["id"])
    r = get_text(contracts, contract["id"])
    assert r.status_code == 200, r.text[:300]
    assert r.json()["html"] == before["html"] and r.json()["sha256"] == stated(get_pdf(contracts, contract["id"]))
    assert "改址路" not in r.json()["html"]
    assert before["sha256"] in entry(contracts, contract, "contract_generated")


def test_a_stored_text_that_is_not_the_one_generated_is_never_handed_out(contracts: ContractServer) -> None:
    contract = create(contracts, "app-text-tampered")
    row = contracts.components.service.row(contract["id"])
    assert row.text_key and row.text_sha256 == get_text(contracts, contract["id"]).json()["sha256"]
    contracts.components.service.store.put(row.text_key, b"<p>other words</p>", "text/html; charset=utf-8", {})
    r = get_text(contracts, contract["id"])
    assert r.status_code == 409 and r.json()["code"] == "tampered"
    assert r.headers["Content-Type"] == "application/problem+json"


def test_a_contract_generated_before_the_stored_text_has_no_reading_copy(contracts: ContractServer) -> None:
    contract = create(contracts, "app-text-older")
    with contracts.components.db.session() as session:
        session.execute(update(ContractRow).where(ContractRow.id == contract["id"]).values(
            text_key=None, text_sha256=None))
    r = get_text(contracts, contract["id"])
    assert r.status_code == 409 and r.json()["code"] == "no_text"


def test_the_customer_signs_only_the_words_they_read(contracts: ContractServer) -> None:
    """The final text is rendered after the draft (ahead by a job, or at signing): when its words are no longer the
    draft's (a deploy changed the template in between), signing is refused, never done on other words."""
    contract = create(contracts, "app-text-changed")
    read = get_text(contracts, contract["id"]).json()["sha256"]
    change_frozen_words(contracts, contract["id"])
    with contracts.components.db.session() as session:  # whether or not the job had rendered it already
        session.execute(update(ContractRow).where(ContractRow.id == contract["id"]).values(
            final_key=None, final_sha256=None, final_boxes=None))
    assert contracts.components.service.prepare_final(contract["id"]) is False
    assert contracts.components.service.row(contract["id"]).final_key is None
    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=sign_body(),
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 409 and r.json()["code"] == "text_changed", r.text[:300]
    assert contracts.components.service.row(contract["id"]).status == "draft"
    assert get_text(contracts, contract["id"]).json()["sha256"] == read


def test_the_signed_entry_records_the_text_read_and_the_text_signed(contracts: ContractServer) -> None:
    contract = create(contracts, "app-text-signed-entry")
    read = get_text(contracts, contract["id"]).json()["sha256"]
    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=sign_body(),
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    signed = json.loads(entry(contracts, contract, "contract_signed"))
    found = json.dumps(signed)
    assert f'"text_sha256": "{read}"' in found and f'"final_text_sha256": "{read}"' in found


def test_a_pdf_whose_fingerprint_cannot_be_read_is_a_4xx_not_a_500(contracts: ContractServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """pdftotext failing is the text being unavailable for a while: a 409 ``text_unavailable`` the BFF shows as such,
    never a 5xx, which counts against the contract client's circuit breaker (shared with signing)."""
    contract = create(contracts, "app-text-no-poppler")
    monkeypatch.setenv("PATH", "/nonexistent")
    r = get_text(contracts, contract["id"])
    assert r.status_code == 409 and r.json()["code"] == "text_unavailable", r.text[:300]
    assert r.headers["Content-Type"] == "application/problem+json"
