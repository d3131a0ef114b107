"""The evidence log's clear entries go to those entitled, as proof bundles that check out independently, and each
disclosure is audit-logged: the customer (their own application, all of it), the dealer's staff within their
dealer (all but the credit decision), the lessor's risk officers and the auditor (all). Nobody else: another
dealer, another application's entry through this application's address, a role without the permission. An entry
of the first log (public in clear until contract migration 0003) carries its proof there only for the lessor's
staff and the auditor: that proof's audit path holds unsalted hashes of other people's entries."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.common import evidence
from tests.integration.test_applications import SALES_B
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import wait_status
from tests.integration.test_auth import RISK1
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import invite
from tests.integration.test_invitations import latest_code
from tests.integration.test_invitations import request_code
from tests.integration.test_reviews import persona_id
from tests.integration.test_reviews import to_risk

pytestmark = pytest.mark.db
AUDITOR = "auditor@demo.leaseline.cn"
OPS = "ops@demo.leaseline.cn"
FIRST_LOG_ORIGIN = "leaseline.test/evidence"
KINDS = {"consent_given", "kyc_outcome", "plan_accepted", "risk_decision", "contract_generated"}


@pytest.fixture(scope="module")
def approved(bff_server: Any, contract_server: Any) -> tuple[str, str]:
    """An approved application (contract ready) with its evidence sent to the log, and the customer's mobile."""
    base = bff_server.url
    mobile = f"137{random.randrange(10**8):08d}"
    app_id = to_risk(base, make_card_images(), persona_id("10"), mobile=mobile)  # approved automatically
    with sign_in(base, SALES_A) as sales:
        wait_status(sales, base, app_id, ("contract_ready",), timeout=60)
    repo = bff_server.app.extensions["leaseline"].applications.repo
    deadline = time.monotonic() + 60
    while any(at is None for _, at in repo.outbox(app_id)) or not repo.outbox(app_id):
        assert time.monotonic() < deadline, repo.outbox(app_id)
        time.sleep(0.3)
    return app_id, mobile


def test_the_bff_keeps_no_copy_of_the_log_s_indexes(bff_server: Any, contract_server: Any,
                                                     approved: tuple[str, str]) -> None:
    """Where an entry is in the log is the contract service's to say (its listing by subject): a copy kept by the
    BFF's outbox went stale when the first log moved into the commitment log (every index one higher)."""
    from sqlalchemy import select

    from infra.db.models import EvidenceOutboxRow

    app_id, _ = approved
    with bff_server.app.extensions["leaseline"].db.session() as session:
        sent = session.execute(select(EvidenceOutboxRow.kind, EvidenceOutboxRow.sent_at, EvidenceOutboxRow.ledger_index)
                               .where(EvidenceOutboxRow.application_id == app_id)).all()
    assert sent and all(at is not None and index is None for _, at, index in sent), sent
    listed = requests.get(f"{contract_server.url}/api/v1/ledger/subjects/{app_id}/entries",
                          headers=contract_server.headers("ledger:read"), timeout=TIMEOUT).json()["entries"]
    assert {kind for kind, _, _ in sent} <= {e["kind"] for e in listed}


def log_key(contract_server: Any) -> bytes:
    """The log's public key as the lessor publishes it (every checkpoint carries it)."""
    import base64

    head = requests.get(f"{contract_server.url}/api/v1/ledger/checkpoint", timeout=TIMEOUT).json()
    return base64.b64decode(head["public_key"])


def rows(page: str) -> dict[str, int]:
    """kind → log index of the rows of an evidence page."""
    return {kind: int(index) for kind, index in re.findall(r'<tr data-kind="([a-z_]+)" data-index="(\d+)"', page)}


def download(s: requests.Session, url: str) -> dict[str, Any]:
    r = s.get(url, timeout=TIMEOUT)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json") and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    return dict(json.loads(r.text))


def disclosures(bff_server: Any, who: str) -> list[Any]:
    return [e for e in bff_server.app.extensions["leaseline"].audit.search(action="evidence.disclosed", actor=who)]


def test_the_dealer_s_staff_get_the_bundles_but_not_the_credit_decision(
        bff_server: Any, contract_server: Any, approved: tuple[str, str]) -> None:
    base, (app_id, _) = bff_server.url, approved
    key = log_key(contract_server)
    with sign_in(base, SALES_A) as sales:
        assert 'data-testid="go-evidence"' in sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
        page = sales.get(f"{base}/applications/{app_id}/evidence", timeout=TIMEOUT)
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        found = rows(page.text)
        assert set(found) >= KINDS, found
        row = page.text.split('<tr data-kind="risk_decision"', 1)[1].split("</tr>", 1)[0]
        assert 'data-testid="evidence-lessor-only"' in row and "evidence-download" not in row
        before = len(disclosures(bff_server, SALES_A))
        for kind in KINDS - {"risk_decision"}:
            bundle = download(sales, f"{base}/applications/{app_id}/evidence/{found[kind]}.json")
            entry = evidence.opened(bundle, key)  # checks out without any of our code
            assert entry["kind"] == kind and entry["subject"] == app_id
        assert len(disclosures(bff_server, SALES_A)) == before + len(KINDS) - 1
        event = disclosures(bff_server, SALES_A)[0]
        assert event.target == app_id and event.details["kind"] in KINDS and event.details["role"] == "sales"
        # the credit decision's score is the lessor's: not for the dealer, and not even said to exist
        r = sales.get(f"{base}/applications/{app_id}/evidence/{found['risk_decision']}.json", timeout=TIMEOUT)
        assert r.status_code == 404
        # another application's entry through this application's address: nothing (nor the log start, index 0)
        other = requests.post(f"{contract_server.url}/api/v1/ledger/entries", json={
            "kind": "payment", "subject": "app-of-someone-else", "data": {"amount": "1.00"}},
            headers=contract_server.headers("ledger:append"), timeout=TIMEOUT).json()["index"]
        for index in (other, 0):
            assert sales.get(f"{base}/applications/{app_id}/evidence/{index}.json", timeout=TIMEOUT).status_code == 404
        assert sales.get(f"{base}/evidence", timeout=TIMEOUT).status_code == 403
        assert sales.get(f"{base}/evidence/{found['plan_accepted']}.json", timeout=TIMEOUT).status_code == 403
        assert len(disclosures(bff_server, SALES_A)) == before + len(KINDS) - 1
    with sign_in(base, SALES_B) as other:  # another dealer
        assert other.get(f"{base}/applications/{app_id}/evidence", timeout=TIMEOUT).status_code == 404
        r = other.get(f"{base}/applications/{app_id}/evidence/{found['plan_accepted']}.json", timeout=TIMEOUT)
        assert r.status_code == 404
    anonymous = requests.get(f"{base}/applications/{app_id}/evidence/{found['plan_accepted']}.json",
                             timeout=TIMEOUT, allow_redirects=False)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_the_lessor_s_risk_officer_and_the_auditor_get_every_entry(
        bff_server: Any, contract_server: Any, approved: tuple[str, str]) -> None:
    base, (app_id, _) = bff_server.url, approved
    key = log_key(contract_server)
    with sign_in(base, RISK1) as officer:
        found = rows(officer.get(f"{base}/applications/{app_id}/evidence", timeout=TIMEOUT).text)
        entry = evidence.opened(download(officer, f"{base}/applications/{app_id}/evidence/"
                                                  f"{found['risk_decision']}.json"), key)
        assert entry["data"]["outcome"] == "approve" and entry["data"]["pd"]
    with sign_in(base, AUDITOR) as auditor:
        assert 'data-testid="go-evidence-audit"' in auditor.get(f"{base}/audit", timeout=TIMEOUT).text
        page = auditor.get(f"{base}/evidence", params={"application": app_id}, timeout=TIMEOUT)
        assert page.status_code == 200 and rows(page.text) == found
        entry = evidence.opened(download(auditor, f"{base}/evidence/{found['risk_decision']}.json"), key)
        assert entry["kind"] == "risk_decision" and entry["subject"] == app_id
        assert [e.details["index"] for e in disclosures(bff_server, AUDITOR)][:1] == [found["risk_decision"]]
        assert auditor.get(f"{base}/evidence/0.json", timeout=TIMEOUT).status_code == 404  # the log start: no opening
        # the auditor looks up by application, not through the application pages (no applications.view)
        assert auditor.get(f"{base}/applications/{app_id}/evidence", timeout=TIMEOUT).status_code == 403
        unknown = auditor.get(f"{base}/evidence", params={"application": "no-such-app"}, timeout=TIMEOUT)
        assert unknown.status_code == 200 and 'data-testid="evidence-none"' in unknown.text


def test_the_customer_gets_all_of_their_own_application_s_evidence(
        bff_server: Any, contract_server: Any, approved: tuple[str, str]) -> None:
    base, (app_id, mobile) = bff_server.url, approved
    key = log_key(contract_server)
    with sign_in(base, SALES_A) as sales, requests.Session() as customer:
        _, link = invite(base, sales, mobile)
        customer.get(link, timeout=TIMEOUT)
        request_code(customer, link)
        customer.post(f"{link}/verify", data={"code": latest_code(bff_server.app, mobile),
                                              "csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
        page = customer.get(f"{base}/applications/{app_id}/evidence", timeout=TIMEOUT)
        assert page.status_code == 200
        found = rows(page.text)
        assert set(found) >= KINDS and 'data-testid="evidence-lessor-only"' not in page.text
        entry = evidence.opened(download(customer, f"{base}/applications/{app_id}/evidence/"
                                                   f"{found['risk_decision']}.json"), key)
        assert entry["data"]["outcome"] == "approve"  # the decision about them, with its reasons (PIPL art. 24)
        events = bff_server.app.extensions["leaseline"].audit.search(action="evidence.disclosed", actor="customer:")
        assert events and events[0].target == app_id and events[0].details["role"] == "customer"


def test_the_application_page_links_to_the_evidence_from_the_credit_decision_on(bff_server: Any) -> None:
    """The evidence log is written when the credit decision is made (the page's own note says so), whichever way
    it went: the application page links to it in those states, a referral, a counter-offer and its withdrawal
    included, and not before."""
    from sqlalchemy import update

    from infra.db.models import ApplicationRow
    from tests.integration.test_applications import start

    base = bff_server.url
    expected = {"draft": False, "submitted": False, "kyc_failed": False, "risk_pending": False, "referred": True,
                "counter_offer": True, "withdrawn": True, "declined": True, "approved": True}
    with sign_in(base, SALES_A) as sales:
        app_id = start(base, sales)
        for status, linked in expected.items():
            with bff_server.app.extensions["leaseline"].db.session() as session:
                session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(status=status))
            page = sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT)
            assert page.status_code == 200 and f'data-status="{status}"' in page.text, (status, page.status_code)
            assert ('data-testid="go-evidence"' in page.text) is linked, status

@pytest.fixture(scope="module")
def first_log_bff(db_url: str, _var_dir: Path, tmp_path_factory: pytest.TempPathFactory, s3_server: Any,
                  risk_server: Any, stripe_server: Any, approved: tuple[str, str]) -> Iterator[tuple[str, bytes]]:
    """A BFF on the suite's database whose contract service has a first log (moved by ``leaseline ledger migrate``)
    with entries about the approved application, and one about someone else: its URL and the log's public key."""
    from contract.db.migrate import upgrade
    from contract.evidence import EvidenceLog
    from contract.evidence import load_or_create_key
    from contract.legacy_migration import migrate
    from infra.db.engine import Database
    from tests.common.contract import ContractServer
    from tests.common.first_log import write_first_log
    from tests.common.tsa import TsaServer
    from tests.conftest import LiveServer
    from tests.conftest import build_app
    from tests.conftest import postgres_database
    from tests.conftest import s3_config
    from tests.conftest import stripe_config

    app_id, _ = approved
    var = tmp_path_factory.mktemp("first-log")
    key_path = var / "ledger.pem"
    for url in postgres_database("leaseline_first_log"):
        write_first_log(url, key_path, [
            ("consent_given", app_id, {"purpose": "sensitive_pi", "text_sha256": "ab" * 32}, None),
            ("plan_accepted", app_id, {"plan_code": "P1", "monthly_payment": "3999.00"}, None),
            ("risk_decision", app_id, {"outcome": "approve", "pd": "0.05", "reasons": ["AUTO_APPROVE"]}, None),
            ("payment", "app-of-someone-else", {"amount": "1.00"}, None)], FIRST_LOG_ORIGIN)
        upgrade(url)
        db = Database(url)
        try:
            log = EvidenceLog(db, load_or_create_key(key_path), f"{FIRST_LOG_ORIGIN}/v2",
                              legacy_origin=FIRST_LOG_ORIGIN)
            migrate(log)
            key = log.public_key.public_bytes_raw()
        finally:
            db.dispose()
        with TsaServer() as tsa, ContractServer(url, _var_dir, s3_server, tsa, ledger_key_path=str(key_path),
                                                ledger_origin=FIRST_LOG_ORIGIN) as contract:
            # the BFF's own app on the suite's database (its accounts, the approved application), without a resumer
            app = build_app(db_url, **s3_config(s3_server), risk_url=risk_server.url, contract_url=contract.url,
                            **stripe_config(stripe_server))
            try:
                with LiveServer(app) as server:
                    yield server.url, key
            finally:
                app.extensions["leaseline"].db.dispose()


def test_an_old_entry_s_first_log_proof_goes_to_the_lessor_s_staff_and_the_auditor_only(
        bff_server: Any, first_log_bff: tuple[str, bytes], approved: tuple[str, str]) -> None:
    (base, key), (app_id, mobile) = first_log_bff, approved
    kinds = ("consent_given", "plan_accepted", "risk_decision")

    def check(s: requests.Session, url: str, first_log_index: int | None) -> None:
        bundle = download(s, url)
        assert evidence.opened(bundle, key)["subject"] == app_id  # checks both proofs when both are there
        assert (bundle["previous_log"] or {}).get("index") == first_log_index, bundle["previous_log"]

    with sign_in(base, SALES_A) as sales:
        found = rows(sales.get(f"{base}/applications/{app_id}/evidence", timeout=TIMEOUT).text)
        assert found == {kind: i + 1 for i, kind in enumerate(kinds)}, found  # after the log's start statement
        for kind in ("consent_given", "plan_accepted"):
            check(sales, f"{base}/applications/{app_id}/evidence/{found[kind]}.json", None)
        with requests.Session() as customer:
            _, link = invite(base, sales, mobile)
            customer.get(link, timeout=TIMEOUT)
            request_code(customer, link)
            customer.post(f"{link}/verify", data={"code": latest_code(bff_server.app, mobile),
                                                  "csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
            for kind in kinds:
                check(customer, f"{base}/applications/{app_id}/evidence/{found[kind]}.json", None)
    for who in (RISK1, OPS):
        with sign_in(base, who) as staff:
            for kind in kinds:
                check(staff, f"{base}/applications/{app_id}/evidence/{found[kind]}.json", found[kind] - 1)
    with sign_in(base, AUDITOR) as auditor:
        for kind in kinds:
            check(auditor, f"{base}/evidence/{found[kind]}.json", found[kind] - 1)
