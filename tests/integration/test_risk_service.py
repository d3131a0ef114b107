"""The risk service over real HTTP with real service tokens, on PostgreSQL: personas, idempotency, token refusals,
bad input, the review queue with four eyes, OpenAPI, schemathesis."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck
from hypothesis import settings

from infra.service_tokens import SCOPE_ASSESS
from infra.service_tokens import SCOPE_REVIEW
from infra.service_tokens import InvalidToken
from infra.service_tokens import TokenIssuer
from infra.service_tokens import TokenVerifier
from infra.service_tokens import generate_signing_key
from risk.openapi import document
from tests.common.payloads import TOO_DEEP
from tests.common.risk import AUDIENCE
from tests.common.risk import ISSUER
from tests.common.risk import RiskServer
from tests.common.risk import id_number
from tests.common.risk import risk_database
from tests.common.risk import snapshot
from tests.common.schemathesis_checks import load
from tests.common.schemathesis_checks import validate
from tests.conftest import DATABASES

pytestmark = pytest.mark.db


@pytest.fixture(scope="module", params=DATABASES)
def risk(request: pytest.FixtureRequest, _var_dir: Path) -> Iterator[RiskServer]:
    with risk_database(_var_dir, request.param) as url, RiskServer(url, _var_dir) as server:
        yield server


def post(server: RiskServer, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/assessments", json=body,
                         headers=server.tokens.assess() if headers is None else headers, timeout=10, **kwargs)


def review_call(server: RiskServer, case_id: str, action: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/reviews/{case_id}/{action}", json=body,
                         headers=server.tokens.review(), timeout=10)


# --- personas -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("persona", "outcome", "tier", "code"), [
    ("clean_file", "approve", 0, "AUTO_APPROVE"),
    ("thin_file", "refer", 1, "THIN_FILE"),
    ("delinquent", "decline", 0, "BUREAU_SEVERE_DELINQUENCY"),
    ("past_arrears", "refer", 1, "BUREAU_DELINQUENCY"),
    ("judicial_hit", "decline", 0, "JUDICIAL_DISHONEST"),
    ("gray_list", "decline", 0, "GRAY_LIST"),
    ("high_velocity", "refer", 2, "MULTI_LENDING"),
    ("slow_bureau", "refer", 1, "PROVIDER_UNAVAILABLE"),
    ("income_mismatch", "refer", 1, "INCOME_UNVERIFIED"),
    ("bureau_error", "refer", 1, "PROVIDER_UNAVAILABLE"),
])
def test_personas(risk: RiskServer, persona: str, outcome: str, tier: int, code: str) -> None:
    response = post(risk, snapshot(persona))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["outcome"], body["tier"]) == (outcome, tier), body["reasons"]
    assert code in [r["code"] for r in body["reasons"]]
    assert all(r["text_zh"] and r["text_en"] for r in body["reasons"])
    assert body["sandbox"] is True and body["policy_version"] == "risk-policy-v1" and body["model_version"]
    assert 0 < body["pd"] < 1 and isinstance(body["score"], int)
    assert (body["review"] is None) == (outcome != "refer")
    assert (body["decided_at"] is None) == (outcome == "refer")
    if outcome == "refer":
        assert body["review"]["state"] == "open" and body["review"]["tier"] == tier


@pytest.mark.parametrize(("overrides", "deposit_required"), [
    ({"bank_account": {"status": "healthy"}, "plan__term": 24}, False),  # PD ≈ 0.10: deposit-free allowed
    ({"bank_account": {"status": "low_balance"}, "applicant__housing": "rent",  # PD ≈ 0.36: approve,
      "applicant__employment_years": 2}, True),                                # deposit required
])
def test_deposit_free_only_below_the_pd_threshold(risk: RiskServer, overrides: dict[str, Any],
                                                  deposit_required: bool) -> None:
    body = post(risk, snapshot(plan__deposit_free=True, **overrides)).json()
    assert body["outcome"] == "approve"
    assert ("DEPOSIT_REQUIRED" in [c["code"] for c in body["conditions"]]) == deposit_required


def test_the_sandbox_bank_statement_feeds_the_model_when_the_snapshot_has_none(risk: RiskServer) -> None:
    """A clean file with a healthy sandbox bank statement scores better than the same file unverified."""
    verified = post(risk, snapshot()).json()
    unverified = post(risk, snapshot(bank_account={"status": "no_account"})).json()
    assert verified["pd"] < unverified["pd"]
    assert "bank" in verified["providers"] and verified["sandbox"] is True


@pytest.mark.parametrize(("overrides", "outcome"), [
    ({"bank_account": {"status": "overdrawn"}, "applicant__existing_loans": 1,   # PD ≈ 0.53
      "applicant__housing": "rent"}, "decline"),
    ({"bank_account": {"status": "overdrawn"}, "applicant__existing_loans": 1}, "refer"),  # PD ≈ 0.45: grey zone
])
def test_model_bands_over_http(risk: RiskServer, overrides: dict[str, Any], outcome: str) -> None:
    body = post(risk, snapshot(**overrides)).json()
    assert body["outcome"] == outcome
    assert body["reasons"][0]["code"] == ("MODEL_HIGH_RISK" if outcome == "decline" else "MODEL_GREY_ZONE")


# --- idempotency, reads -------------------------------------------------------------------------------------

def test_same_application_returns_the_existing_assessment(risk: RiskServer) -> None:
    data = snapshot()
    first = post(risk, data, {**risk.tokens.assess(), "Idempotency-Key": f"k-{data['application_id']}"})
    assert first.status_code == 201 and first.headers["Location"].endswith(first.json()["id"])
    again = post(risk, data, {**risk.tokens.assess(), "Idempotency-Key": f"k-{data['application_id']}"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = post(risk, {**data, "kyc": {**data["kyc"], "status": "kyc_failed"}})  # same application id
    assert changed.status_code == 200 and changed.json()["outcome"] == first.json()["outcome"]
    reused = post(risk, snapshot(), {**risk.tokens.assess(), "Idempotency-Key": f"k-{data['application_id']}"})
    assert reused.status_code == 409 and reused.headers["Content-Type"] == "application/problem+json"

    one = requests.get(f"{risk.url}/api/v1/assessments/{first.json()['id']}", headers=risk.tokens.assess(), timeout=10)
    assert one.status_code == 200 and one.json()["application_id"] == data["application_id"]
    found = requests.get(f"{risk.url}/api/v1/assessments", params={"application_id": data["application_id"]},
                         headers=risk.tokens.assess(), timeout=10).json()
    assert found["count"] == 1 and found["items"][0]["id"] == first.json()["id"]
    missing = requests.get(f"{risk.url}/api/v1/assessments/nope", headers=risk.tokens.assess(), timeout=10)
    assert missing.status_code == 404


def test_concurrent_duplicates_make_one_assessment(risk: RiskServer) -> None:
    """The same application sent eight times at once: one 201, seven 200s with the same assessment (the losers
    of the insert race read the winner's); eight applications of one new applicant at once: every one made, the
    provider answers cached once (the cache upsert races too)."""
    data = snapshot()
    barrier = threading.Barrier(8)

    def send(body: dict[str, Any]) -> requests.Response:
        barrier.wait(5)
        return post(risk, body, {**risk.tokens.assess(), "Idempotency-Key": f"k-{body['application_id']}"})

    with ThreadPoolExecutor(8) as pool:
        same = list(pool.map(send, [data] * 8))
    assert sorted(r.status_code for r in same) == [200] * 7 + [201], [r.text for r in same]
    assert len({r.json()["id"] for r in same}) == 1

    number = id_number(serial=3, birth="19790909", region="110108")
    with ThreadPoolExecutor(8) as pool:
        people = list(pool.map(send, [snapshot(applicant__id_number=number, dealer_id=f"dealer-race-{i}")
                                      for i in range(8)]))
    assert [r.status_code for r in people] == [201] * 8, [r.text for r in people]
    assert len({r.json()["id"] for r in people}) == 8


def test_stored_snapshot_has_no_id_number(risk: RiskServer) -> None:
    data = snapshot("thin_file")
    case_id = post(risk, data).json()["review"]["id"]
    case = requests.get(f"{risk.url}/api/v1/reviews/{case_id}", headers=risk.tokens.review(), timeout=10).json()
    stored = case["assessment"]["snapshot"]["applicant"]
    number = data["applicant"]["id_number"]
    assert stored["id_number"] == number[:6] + "********" + number[-4:]
    assert stored["name"] == "王**" and "mobile" not in stored


def test_velocity_and_multi_vehicle_over_http(risk: RiskServer) -> None:
    number = id_number(serial=7, birth="19770707")
    outcomes = [post(risk, snapshot(applicant__id_number=number, dealer_id="dealer-fleet")).json()
                for _ in range(3)]
    assert [o["outcome"] for o in outcomes[:2]] == ["approve", "approve"]
    assert (outcomes[2]["outcome"], outcomes[2]["tier"]) == ("refer", 2)
    assert "MULTI_VEHICLE" in [r["code"] for r in outcomes[2]["reasons"]]
    more = [post(risk, snapshot(applicant__id_number=number, dealer_id=f"dealer-{i}")).json() for i in range(2)]
    assert "VELOCITY_ID" in [r["code"] for r in more[-1]["reasons"]]


# --- dealer-level monitoring --------------------------------------------------------------------------------

@pytest.fixture(params=DATABASES)
def monitored(request: pytest.FixtureRequest, _var_dir: Path) -> Iterator[RiskServer]:
    """A server of its own (the dealer rates span every assessment in its database) that reads the dealer
    counts on every assessment instead of every 30 s."""
    with risk_database(_var_dir, request.param) as url, RiskServer(url, _var_dir, dealer_stats_ttl=0) as server:
        yield server


def test_a_dealer_approving_far_above_the_portfolio_is_referred_to_tier_2(monitored: RiskServer) -> None:
    """Policy v1: judged from 30 assessments in 7 days; approval rate more than 25 points above the portfolio's.
    11 declines elsewhere and 30 approvals at one dealer: 100 % against 30/41 ≈ 73 %."""
    for i in range(11):
        declined = post(monitored, snapshot("delinquent", dealer_id=f"dealer-plain-{i % 3}")).json()
        assert declined["outcome"] == "decline", declined["reasons"]
    for _ in range(30):
        approved = post(monitored, snapshot(dealer_id="dealer-too-good")).json()
        assert approved["outcome"] == "approve", approved["reasons"]

    drifting = post(monitored, snapshot(dealer_id="dealer-too-good")).json()
    assert (drifting["outcome"], drifting["tier"]) == ("refer", 2), drifting["reasons"]
    assert [r["code"] for r in drifting["reasons"]] == ["DEALER_APPROVAL_DRIFT"]
    assert "100.0%" in drifting["reasons"][0]["text_en"] and "73.2%" in drifting["reasons"][0]["text_en"]
    assert drifting["review"]["tier"] == 2 and drifting["review"]["state"] == "open"
    # the same clean applicant profile through a dealer with too few assessments to judge is approved
    elsewhere = post(monitored, snapshot(dealer_id="dealer-plain-0")).json()
    assert elsewhere["outcome"] == "approve", elsewhere["reasons"]


class Counted:
    """A sandbox provider that counts its calls."""

    def __init__(self, provider: Any, calls: list[str]) -> None:
        self.provider, self.calls = provider, calls
        self.name, self.ttl_seconds = provider.name, provider.ttl_seconds

    def fetch(self, subject: Any) -> dict[str, Any]:
        self.calls.append(self.name)
        return self.provider.fetch(subject)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", DATABASES)
def test_provider_answers_are_cached_per_person(kind: str, _var_dir: Path) -> None:
    """The second and third applications of one person within the answers' lifetime ask no provider again
    (and score the same, from the cached answers); another person is asked afresh."""
    from risk.providers import sandbox_providers

    calls: list[str] = []
    with risk_database(_var_dir, kind) as url, RiskServer(url, _var_dir, providers=[
            Counted(p, calls) for p in sandbox_providers(1.0)]) as server:
        number = id_number(serial=5, birth="19810203")
        answers = []
        for i in range(3):
            answers.append(post(server, snapshot(applicant__id_number=number, dealer_id=f"dealer-{i}")).json())
            assert sorted(calls) == (["bank", "bureau", "gray_list", "judicial", "tax"] if i == 0 else []), i
            calls.clear()
        assert len({(a["outcome"], a["pd"]) for a in answers}) == 1 and answers[0]["providers"]["bureau"]
        post(server, snapshot())
        assert len(calls) == 5


@pytest.mark.parametrize("kind", DATABASES)
def test_risk_migrations_match_the_models_and_backfill_the_dealer_columns(kind: str, _var_dir: Path) -> None:
    """Revision 0002 fills base_outcome from auto_outcome and fraud_signal from the stored reasons; afterwards
    the migrated schema and the models agree (test_migrations.py compares the BFF's tables only)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from infra.db.engine import make_engine
    from risk.db.migrate import VERSION_TABLE
    from risk.db.migrate import downgrade
    from risk.db.migrate import upgrade
    from risk.db.models import RiskBase

    with risk_database(_var_dir, kind) as url:
        upgrade(url, "0001")
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                for i, (outcome, code) in enumerate([("approve", "AUTO_APPROVE"), ("refer", "VELOCITY_ID"),
                                                     ("decline", "GRAY_LIST"), ("refer", "THIN_FILE")]):
                    conn.execute(text(
                        "INSERT INTO risk_assessments (id, application_id, dealer_id, id_hash, device_hash, "
                        "financed_amount, snapshot, providers, auto_outcome, outcome, tier, score, pd, reasons, "
                        "conditions, policy_version, model_version, sandbox, decided_by, created_at) VALUES (:id, "
                        ":id, 'd', 'h', 'h', 1, '{}', '{}', :outcome, :outcome, 0, 600, 0.1, :reasons, '[]', 'p', "
                        "'m', TRUE, 'auto', '2026-11-25 00:00:00')"),
                        {"id": f"a{i}", "outcome": outcome, "reasons": f'[{{"code": "{code}", "text_en": "x"}}]'})
            upgrade(url)
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, base_outcome, fraud_signal FROM risk_assessments ORDER BY id"))
                assert [(i, base, bool(fraud)) for i, base, fraud in rows] == [
                    ("a0", "approve", False), ("a1", "refer", True), ("a2", "decline", True), ("a3", "refer", False)]
                context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                assert compare_metadata(context, RiskBase.metadata) == []
            downgrade(url, "0001")
            upgrade(url)
        finally:
            engine.dispose()


# --- tokens -------------------------------------------------------------------------------------------------

def _foreign_token(**kwargs: Any) -> str:
    return TokenIssuer(generate_signing_key(), ISSUER).issue("bff", AUDIENCE, [SCOPE_ASSESS], **kwargs)


@pytest.mark.parametrize("how", ["none", "not bearer", "garbage", "bad signature", "wrong audience", "expired",
                                 "wrong issuer"])
def test_bad_tokens_get_401(risk: RiskServer, how: str) -> None:
    tokens = risk.tokens
    header = {
        "none": None, "not bearer": "Basic dXNlcjpwYXNz", "garbage": "Bearer not.a.jwt",
        "bad signature": f"Bearer {_foreign_token()}",
        "wrong audience": f"Bearer {tokens.make(audience='leaseline-contract')}",
        "expired": f"Bearer {TokenIssuer(tokens.key, ISSUER, clock=lambda: 0).issue('bff', AUDIENCE, [SCOPE_ASSESS])}",
        "wrong issuer": f"Bearer {TokenIssuer(tokens.key, 'evil').issue('bff', AUDIENCE, [SCOPE_ASSESS])}",
    }[how]
    response = post(risk, snapshot(), {"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Content-Type"] == "application/problem+json"


def test_a_token_verified_before_still_expires() -> None:
    """The verifier keeps the claims of tokens it has verified (risk/app.py builds it): a cached token is
    accepted without verifying its signature again, and refused once it expires, as a new one would be."""
    now = [1_900_000_000.0]
    key = generate_signing_key()
    token = TokenIssuer(key, ISSUER, clock=lambda: now[0]).issue("bff", AUDIENCE, [SCOPE_ASSESS], ttl=60)
    verifier = TokenVerifier(key, ISSUER, AUDIENCE, leeway=5, clock=lambda: now[0])
    first = verifier.verify(token)
    now[0] += 64
    assert verifier.verify(token) is first
    now[0] += 1
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    now[0] -= 65
    with pytest.raises(InvalidToken):
        verifier.verify(tampered)


def test_wrong_scope_gets_403(risk: RiskServer) -> None:
    assert post(risk, snapshot(), risk.tokens.review()).status_code == 403
    queue = requests.get(f"{risk.url}/api/v1/reviews", headers=risk.tokens.assess(), timeout=10)
    assert queue.status_code == 403 and "insufficient_scope" in queue.headers["WWW-Authenticate"]


# --- bad input ----------------------------------------------------------------------------------------------

def test_partial_snapshot_gets_422_with_field_errors(risk: RiskServer) -> None:
    data = snapshot()
    del data["plan"]["monthly_payment"], data["applicant"]["age"]
    data["unknown"] = {"ignored": True}
    response = post(risk, data)
    assert response.status_code == 422 and response.headers["Content-Type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == {"plan.monthly_payment", "applicant.age"}


@pytest.mark.parametrize("body", [b"{not json", b"[]", b"\xff\xfe", b"null", b'"text"'])
def test_malformed_body_gets_422(risk: RiskServer, body: bytes) -> None:
    response = requests.post(f"{risk.url}/api/v1/assessments", data=body, timeout=10,
                             headers={**risk.tokens.assess(), "Content-Type": "application/json"})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("path", ["/assessments", "/reviews/case-1/claim", "/reviews/case-1/decision"])
@pytest.mark.parametrize("body", list(TOO_DEEP.values()), ids=list(TOO_DEEP))
def test_deeply_nested_json_gets_400(risk: RiskServer, path: str, body: str) -> None:
    response = requests.post(f"{risk.url}/api/v1{path}", data=body, timeout=10, headers={
        "Authorization": f"Bearer {risk.tokens.make((SCOPE_ASSESS, SCOPE_REVIEW))}",
        "Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and "nested deeper than 64" in problem["detail"], problem


@pytest.mark.parametrize(("override", "field"), [
    ({"plan__apr": 0}, "plan.apr"), ({"plan__apr": 0.0599}, "plan.apr"), ({"plan__apr": "0.0599 "}, "plan.apr"),
    ({"vehicle__price": 219800}, "vehicle.price"), ({"plan__deposit": " 0.00"}, "plan.deposit"),
    ({"applicant__monthly_income": "２８０００"}, "applicant.monthly_income"),
    ({"applicant__employment": " employed"}, "applicant.employment"),
    ({"applicant__housing": "MORTGAGE"}, "applicant.housing"), ({"kyc__status": ["kyc_passed"]}, "kyc.status"),
    ({"applicant__id_number": " " + id_number()}, "applicant.id_number"),
    ({"applicant__id_number": "١" * 18}, "applicant.id_number"), ({"vehicle__vin": "\x1d"}, "vehicle.vin"),
], ids=repr)
def test_a_snapshot_is_taken_only_as_the_document_says(risk: RiskServer, override: dict[str, Any],
                                                       field: str) -> None:
    """Money and rates are the document's decimal strings, choices exactly one of their values, the ID number
    its 18 ASCII characters; schemathesis found each of these taken before, though the OpenAPI document
    called it invalid."""
    response = post(risk, snapshot(**override))
    assert response.status_code == 422, response.text[:300]
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


@pytest.mark.parametrize("override", [{"plan__term": 36.0}, {"applicant__age": 36.0},
                                      {"applicant__monthly_income": "0028000.5"}, {"plan__apr": "0.0671230000000"},
                                      {"vehicle__vin": ""}],  # the car not yet assigned by the dealer (issue 17 §5)
                         ids=repr)
def test_a_snapshot_is_taken_as_the_document_says(risk: RiskServer, override: dict[str, Any]) -> None:
    response = post(risk, snapshot(**override))
    assert response.status_code == 201, response.text[:300]


def test_a_counter_offer_term_is_a_json_integer(risk: RiskServer) -> None:
    case_id = post(risk, snapshot("thin_file")).json()["review"]["id"]
    officer = {"officer_id": "risk-t1-x", "officer_role": "risk_officer_t1"}
    assert review_call(risk, case_id, "claim", officer).status_code == 200
    decided = review_call(risk, case_id, "decision", {**officer, "decision": "counter_offer", "comment": "缩短期限",
                                                      "counter_offer": {"term": 24.0}})
    assert decided.status_code == 200, decided.text[:300]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/assessments", "snapshot"), ("GET", "/assessments/a%00", None), ("GET", "/reviews?officer_id=%00", None),
    ("GET", "/assessments?application_id=a%00", None),
    ("POST", "/reviews/a/claim", {"officer_id": "x\x00", "officer_role": "risk_officer_t1"}),
], ids=repr)
def test_a_nul_character_gets_400(risk: RiskServer, method: str, path: str, body: Any) -> None:
    """PostgreSQL's text cannot hold U+0000: refused with a 400 on every database, not a 500 on PostgreSQL."""
    if body == "snapshot":
        body = snapshot(application_id="app-\x00")
    response = requests.request(method, f"{risk.url}/api/v1{path}", json=body, timeout=10,
                                headers={"Authorization": f"Bearer {risk.tokens.make((SCOPE_ASSESS, SCOPE_REVIEW))}"})
    assert response.status_code == 400, response.text[:300]
    assert "U+0000" in response.json()["detail"]


def test_enormous_body_gets_413(risk: RiskServer) -> None:
    data = snapshot(padding="x" * 300_000)
    response = post(risk, data)
    assert response.status_code == 413 and response.json()["status"] == 413


# --- the review queue ---------------------------------------------------------------------------------------

def test_tier_1_review_with_counter_offer(risk: RiskServer) -> None:
    assessment = post(risk, snapshot("thin_file")).json()
    case_id = assessment["review"]["id"]
    queue = requests.get(f"{risk.url}/api/v1/reviews", params={"state": "open", "tier": 1},
                         headers=risk.tokens.review(), timeout=10).json()
    listed = next(c for c in queue["items"] if c["id"] == case_id)
    assert listed["sla_due_at"] and listed["age_seconds"] >= 0 and listed["overdue"] is False
    assert listed["assessment"]["reasons"]

    t1 = {"officer_id": "risk-t1-a", "officer_role": "risk_officer_t1"}
    claimed = review_call(risk, case_id, "claim", t1)
    assert claimed.status_code == 200 and claimed.json()["state"] == "claimed"
    assert review_call(risk, case_id, "claim", {**t1, "officer_id": "risk-t1-b"}).status_code == 409
    no_comment = review_call(risk, case_id, "decision", {**t1, "decision": "approve", "comment": " "})
    assert no_comment.status_code == 422 and no_comment.json()["errors"][0]["field"] == "comment"
    no_terms = review_call(risk, case_id, "decision", {**t1, "decision": "counter_offer", "comment": "x"})
    assert no_terms.status_code == 422
    decided = review_call(risk, case_id, "decision", {
        **t1, "decision": "counter_offer", "comment": "收入证明已核实，提高首付",
        "counter_offer": {"down_payment": "80000.00", "term": 24}})
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "decided" and decided.json()["final_decision"] == "counter_offer"
    final = requests.get(f"{risk.url}/api/v1/assessments/{assessment['id']}", headers=risk.tokens.assess(),
                         timeout=10).json()
    assert final["outcome"] == "approve" and final["decided_by"] == "review" and final["decided_at"]
    offer = next(c for c in final["conditions"] if c["code"] == "COUNTER_OFFER")
    assert offer["down_payment"] == "80000.00" and offer["term"] == 24
    assert review_call(risk, case_id, "claim", t1).status_code == 409


def test_tier_2_needs_two_different_officers(risk: RiskServer) -> None:
    assessment = post(risk, snapshot("high_velocity")).json()
    case_id = assessment["review"]["id"]
    assert assessment["review"]["tier"] == 2
    t1 = {"officer_id": "risk-t1-a", "officer_role": "risk_officer_t1"}
    assert review_call(risk, case_id, "claim", t1).status_code == 403
    a = {"officer_id": "risk-t2-a", "officer_role": "risk_officer_t2"}
    b = {"officer_id": "risk-t2-b", "officer_role": "risk_officer_t2"}
    c = {"officer_id": "risk-t2-c", "officer_role": "risk_officer_t2"}
    assert review_call(risk, case_id, "decision", {**a, "decision": "approve", "comment": "ok"}).status_code == 409

    assert review_call(risk, case_id, "claim", a).status_code == 200
    first = review_call(risk, case_id, "decision", {**a, "decision": "approve", "comment": "查询来自同一集团"})
    assert first.status_code == 200 and first.json()["state"] == "open" and len(first.json()["decisions"]) == 1
    still = requests.get(f"{risk.url}/api/v1/assessments/{assessment['id']}", headers=risk.tokens.assess(),
                         timeout=10).json()
    assert still["outcome"] == "refer" and still["decided_at"] is None
    assert review_call(risk, case_id, "claim", a).status_code == 409  # four eyes: not the same officer again

    assert review_call(risk, case_id, "claim", b).status_code == 200
    disagree = review_call(risk, case_id, "decision", {**b, "decision": "decline", "comment": "多头借贷风险高"})
    assert disagree.json()["state"] == "open" and [d["decision"] for d in disagree.json()["decisions"]] == [
        "approve", "decline"]

    assert review_call(risk, case_id, "claim", c).status_code == 200
    agree = review_call(risk, case_id, "decision", {**c, "decision": "approve", "comment": "同意 A 的意见"})
    assert agree.json()["state"] == "decided" and agree.json()["final_decision"] == "approve"
    final = requests.get(f"{risk.url}/api/v1/assessments/{assessment['id']}", headers=risk.tokens.assess(),
                         timeout=10).json()
    assert final["outcome"] == "approve" and final["review"]["state"] == "decided"
    decided = requests.get(f"{risk.url}/api/v1/reviews", params={"state": "decided", "tier": 2},
                           headers=risk.tokens.review(), timeout=10).json()
    assert case_id in [x["id"] for x in decided["items"]]
    # an officer's own decisions, latest first (the queue's "recently decided" for that officer)
    later = post(risk, snapshot("high_velocity")).json()["review"]["id"]
    assert review_call(risk, later, "claim", b).status_code == 200
    assert review_call(risk, later, "decision", {**b, "decision": "decline", "comment": "同上"}).status_code == 200
    mine = requests.get(f"{risk.url}/api/v1/reviews", params={"officer_id": b["officer_id"]},
                        headers=risk.tokens.review(), timeout=10).json()["items"]
    assert [x["id"] for x in mine] == [later, case_id]
    assert_bad_query(reviews(risk, {"officer_id": "x" * 65}), "officer_id")


def reviews(risk: RiskServer, params: Any) -> requests.Response:
    return requests.get(f"{risk.url}/api/v1/reviews", params=params, headers=risk.tokens.review(), timeout=10)


def assert_bad_query(response: requests.Response, field: str) -> None:
    """A query parameter the endpoint does not know, or a value it does not take: 400 with a field error
    (never a silent 200 that ignores the filter)."""
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


@pytest.mark.parametrize(("params", "field"), [
    ({"state": "lost"}, "state"), ({"state": ""}, "state"), ({"state": "OPEN"}, "state"),
    ([("state", "open"), ("state", "lost")], "state"), ({"tier": "3"}, "tier"), ({"tier": ""}, "tier"),
    ({"tier": "01"}, "tier"), ({"officer_id": ""}, "officer_id"), ({"officer_id": "x" * 65}, "officer_id"),
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": ""}, "limit"), ({"limit": "²"}, "limit"),
    ({"status": "open"}, "status"), ({"State": "open"}, "State"),
], ids=repr)
def test_review_filters_refuse_unknown_values(risk: RiskServer, params: Any, field: str) -> None:
    assert_bad_query(reviews(risk, params), field)


@pytest.mark.parametrize(("params", "field"), [
    ({"application_id": ""}, "application_id"), ({"application_id": "x" * 65}, "application_id"),
    ([("application_id", "a"), ("application_id", "b")], "application_id"), ({"limit": "x"}, "limit"),
    ({"app": "a"}, "app"),
], ids=repr)
def test_assessment_filters_refuse_unknown_values(risk: RiskServer, params: Any, field: str) -> None:
    assert_bad_query(requests.get(f"{risk.url}/api/v1/assessments", params=params, headers=risk.tokens.assess(),
                                  timeout=10), field)


def test_review_filters_take_their_documented_values(risk: RiskServer) -> None:
    for params in ({"state": "open"}, {"state": "claimed", "tier": "2"}, {"state": "decided", "limit": "500"},
                   {"officer_id": "risk-t2-a", "limit": "1"}, {}):
        response = reviews(risk, params)
        assert response.status_code == 200, (params, response.text[:300])


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/reviews/case-1/claim", "POST"), ("DELETE", "/assessments", "GET, HEAD, OPTIONS, POST"),
    ("PUT", "/openapi.json", "GET, HEAD, OPTIONS")])
def test_a_method_not_allowed_says_which_are(risk: RiskServer, method: str, path: str, allowed: str) -> None:
    """RFC 9110 §15.5.6: a 405 MUST carry ``Allow`` (the problem document replaced werkzeug's response)."""
    response = requests.request(method, f"{risk.url}/api/v1{path}", headers=risk.tokens.review(), timeout=10)
    assert response.status_code == 405 and response.headers["Content-Type"] == "application/problem+json"
    assert set(response.headers.get("Allow", "").split(", ")) >= set(allowed.split(", ")), response.headers


def test_review_bad_input(risk: RiskServer) -> None:
    assert review_call(risk, "nope", "claim", {"officer_id": "x", "officer_role": "risk_officer_t2"}).status_code == 404
    bad_role = review_call(risk, "nope", "claim", {"officer_id": "x", "officer_role": "dealer_admin"})
    assert bad_role.status_code == 422 and bad_role.json()["errors"][0]["field"] == "officer_role"


# --- OpenAPI and schemathesis -------------------------------------------------------------------------------

def test_openapi_document_is_valid(risk: RiskServer) -> None:
    from openapi_spec_validator import validate

    response = requests.get(f"{risk.url}/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    validate(response.json())


SCHEMA = load(document())


@pytest.fixture(scope="module", params=DATABASES)
def fuzz_target(request: pytest.FixtureRequest, _var_dir: Path) -> Iterator[RiskServer]:
    """A risk service of its own for the fuzzing, on a fresh database."""
    with risk_database(_var_dir, request.param) as url, RiskServer(url, _var_dir) as server:
        yield server


@SCHEMA.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_schemathesis(case: Any, fuzz_target: RiskServer) -> None:
    token = fuzz_target.tokens.make((SCOPE_ASSESS, SCOPE_REVIEW))
    validate(case, base_url=fuzz_target.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
