"""The public contract check ``/verify`` over real HTTP: the BFF (PostgreSQL) in front of the contract service
(PostgreSQL, SeaweedFS, the local TSA). A contract signed through the contract service's API is uploaded as a
visitor would (form with its CSRF token, no sign-in): valid with its number and log proof; a copy with one
byte changed is not valid; a text file is a friendly 422; the service down is a friendly 503, never a 500.

Uploads are limited to 10 a minute per address and every request here comes from 127.0.0.1: the tests on
``bff`` together stay under that (9 counted uploads)."""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.common.contract import ContractServer
from tests.common.risk import risk_database
from tests.common.tsa import TsaServer
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.conftest import s3_config
from tests.integration.test_contract_service import create
from tests.integration.test_contract_service import sign_body
from tests.unit.test_contract_document import LESSEE_NAME

pytestmark = pytest.mark.db
TIMEOUT = 30


@pytest.fixture(scope="module")
def contracts(tmp_path_factory: pytest.TempPathFactory, s3_server: Any) -> Iterator[ContractServer]:
    var = tmp_path_factory.mktemp("verify-contract")
    with risk_database(var) as url, TsaServer() as tsa, ContractServer(url, var, s3_server, tsa) as server:
        yield server


@pytest.fixture(scope="module")
def signed(contracts: ContractServer) -> tuple[dict[str, Any], bytes]:
    """A contract signed through the contract service's API, and its signed PDF."""
    contract = create(contracts, "app-verify-page-1")
    r = requests.post(f"{contracts.url}/api/v1/contracts/{contract['id']}/signatures", json=sign_body(),
                      headers=contracts.headers(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:800]
    pdf = requests.get(f"{contracts.url}/api/v1/contracts/{contract['id']}/document",
                       headers=contracts.headers("contract:read"), timeout=TIMEOUT)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    return dict(r.json()), pdf.content


def _serve(s3_server: Any, contract_url: str) -> Iterator[LiveServer]:
    """The BFF on a fresh database of its own, pointed at ``contract_url``, over real HTTP, with its worker."""
    from infra.db.migrate import upgrade
    from tests.common.worker import WorkerThread

    for url in postgres_database("leaseline_verify"):
        upgrade(url)
        app = build_app(url, **s3_config(s3_server), contract_url=contract_url)
        try:
            with WorkerThread(app), LiveServer(app) as server:
                yield server
        finally:
            app.extensions["leaseline"].db.dispose()


@pytest.fixture(scope="module")
def bff(s3_server: Any, contracts: ContractServer) -> Iterator[LiveServer]:
    """The BFF pointed at the running contract service."""
    yield from _serve(s3_server, contracts.url)


@pytest.fixture(scope="module")
def bff_down(s3_server: Any) -> Iterator[LiveServer]:
    """The BFF pointed at a closed port: the contract service is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield from _serve(s3_server, f"http://127.0.0.1:{port}")


def visitor(base: str, locale: str = "en") -> tuple[requests.Session, str]:
    """A visitor's session (no sign-in) and the CSRF token of the upload form."""
    session = requests.Session()
    session.cookies.set("locale", locale)
    page = session.get(f"{base}/verify", timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:300]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match and 'enctype="multipart/form-data"' in page.text
    return session, match.group(1)


def upload(base: str, name: str, content: bytes, locale: str = "en", **extra: Any) -> requests.Response:
    session, token = visitor(base, locale)
    return session.post(f"{base}/verify", data={"csrf_token": token, **extra}, timeout=TIMEOUT,
                        files={"file": (name, content, "application/pdf" if name.endswith(".pdf") else "text/plain")})


def _attr(html: str, testid: str, attribute: str) -> list[str]:
    return re.findall(rf'data-testid="{testid}"[^>]*?{attribute}="([^"]*)"', html)


def test_the_page_is_public_with_a_csrf_protected_upload_form(bff: LiveServer) -> None:
    page = requests.get(f"{bff.url}/verify", timeout=TIMEOUT)
    assert page.status_code == 200 and 'action="/verify"' in page.text and 'name="file"' in page.text
    assert "Content-Security-Policy" in page.headers and "<style" not in page.text and "style=" not in page.text
    r = requests.post(f"{bff.url}/verify", files={"file": ("c.pdf", b"%PDF-1.7", "application/pdf")},
                      timeout=TIMEOUT)
    assert r.status_code == 400  # no CSRF token


def test_a_signed_contract_is_valid_with_its_number_signers_and_log_proof(
        bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:
    contract, pdf = signed
    r = upload(bff.url, f"{contract['number']}.pdf", pdf)
    assert r.status_code == 200, r.text[:500]
    html = r.text
    assert _attr(html, "verify-result", "data-valid") == ["true"]
    assert f"Valid: contract {contract['number']} is intact and signed by" in html and LESSEE_NAME in html
    assert f'data-testid="verify-number">{contract["number"]}<' in html
    assert _attr(html, "verify-status", "data-status") == ["signed"]
    assert len(re.findall(r'data-testid="signature"', html)) == 3
    assert len(re.findall(r'data-ok="true"', html)) == 9 and 'data-ok="false"' not in html  # 3 checks × 3
    assert "Certification signature" in html and "Yes: the lessor" in html
    assert contract["signed_sha256"] in html
    signed_index = [e["index"] for e in contract["ledger"] if e["kind"] == "contract_signed"][-1]
    assert f'data-testid="ledger-index">{signed_index}<' in html and "<details>" in html
    assert re.search(r"Audit path \(hashes: \d+\)", html)
    # the holder of the signed file is shown the record behind the public commitment (to recompute it), and that
    # showing is audit-logged like every disclosure of an evidence entry
    assert re.search(r'data-testid="ledger-salt">[0-9a-f]{64}<', html)
    events = bff.app.extensions["leaseline"].audit.search(action="evidence.disclosed")
    assert events and events[0].target == contract["number"] and events[0].details["index"] == signed_index
    # the signing time in Beijing time (UTC+8), as the `when` filter shows it
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", html)


def test_the_chinese_page_shows_the_same_verdict(bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:
    contract, pdf = signed
    r = upload(bff.url, "合同.pdf", pdf, locale="zh_CN")
    assert r.status_code == 200 and _attr(r.text, "verify-result", "data-valid") == ["true"]
    assert 'lang="zh-CN"' in r.text and contract["number"] in r.text and "有效。" in r.text  # summary_zh


def test_one_changed_byte_is_not_valid(bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:
    _, pdf = signed
    at = pdf.index(b"stream", len(pdf) // 4) + 20
    tampered = pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:]
    r = upload(bff.url, "contract.pdf", tampered)
    assert r.status_code == 200, r.text[:500]
    assert _attr(r.text, "verify-result", "data-valid") == ["false"]
    assert "Not valid: the file was changed after it was signed." in r.text
    assert 'data-check="intact" data-ok="false"' in r.text and 'data-testid="verify-number"' not in r.text


def test_a_pdf_without_signatures_is_not_valid(bff: LiveServer) -> None:
    from weasyprint import HTML

    r = upload(bff.url, "letter.pdf", HTML(string="<p>An unsigned letter</p>").write_pdf())
    assert r.status_code == 200 and _attr(r.text, "verify-result", "data-valid") == ["false"]
    assert "Not valid: the file has no electronic signatures." in r.text and 'data-testid="signature"' not in r.text


@pytest.mark.parametrize(("name", "content"), [
    ("notes.txt", b"just some notes"),  # refused by the BFF: not a .pdf
    ("notes.pdf", b"just some notes"),  # refused by the contract service: not a PDF inside
    ("empty.pdf", b""),
])
def test_a_file_that_is_not_a_pdf_gets_a_friendly_422(bff: LiveServer, name: str, content: bytes) -> None:
    r = upload(bff.url, name, content)
    assert r.status_code == 422, r.text[:300]
    assert re.search(r'role="alert" data-testid="verify-error">[^<]+<', r.text)
    assert 'data-testid="verify-result"' not in r.text


def test_uploads_above_the_app_wide_1_mb_reach_the_service(bff: LiveServer) -> None:
    r = upload(bff.url, "big.pdf", b"%PDF-1.7\n" + b"0" * (3 * 1024 * 1024))
    assert r.status_code == 422 and "not a readable PDF" in r.text  # the contract service's answer


def test_more_than_12_mb_is_a_friendly_413(bff: LiveServer) -> None:
    # just over 12 MB: the form is read (the body limit leaves room for the form around the file), the file refused
    r = upload(bff.url, "big.pdf", b"%PDF" + b"0" * (12 * 1024 * 1024 - 3))
    assert r.status_code == 413 and "larger than 12 MB" in r.text and 'data-testid="verify-form"' in r.text
    # far over: refused while the form is read, before the CSRF check. Through the app's test client: over a
    # socket the server answers before reading the body and the client, still sending, may see a reset instead.
    # Encoded in memory (the test client's own encoder would leave a temporary file open).
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(b"%PDF" + b"0" * (13 * 1024 * 1024)),
                                                           "big.pdf")})
    # the locale through the client's cookie jar: Werkzeug's test client replaces a hand-written Cookie header
    client = bff.app.test_client()
    client.set_cookie("locale", "en")
    r = client.post("/verify", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 413 and b"larger than 12 MB" in r.data and b'data-testid="verify-form"' in r.data


def test_the_service_down_is_a_friendly_503_and_the_limit_still_holds(
        bff_down: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:
    from bff.extensions import limiter

    _, pdf = signed
    limiter.reset()  # one limiter (and store) per process: start this address's count from zero
    statuses = []
    for _attempt in range(11):
        r = upload(bff_down.url, "contract.pdf", pdf)
        statuses.append(r.status_code)
        if r.status_code == 503:
            assert "Verification is temporarily unavailable" in r.text and r.headers["Retry-After"]
            assert 'data-testid="verify-form"' in r.text
    assert statuses == [503] * 10 + [429], statuses  # 10 per minute per address
