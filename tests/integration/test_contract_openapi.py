"""The contract service's OpenAPI document is valid OpenAPI 3.1, and schemathesis, fuzzing every operation it
describes against the running service (PostgreSQL, SeaweedFS, the local TSA, a token with every scope), finds
nothing with all its checks. The fuzzed ids name no contract, so signing
and page rendering never run: generated snapshots are refused before rendering (check characters, figures
that do not reconcile), and a valid one, if hypothesis ever made it, renders one draft."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings

from contract.openapi import document
from tests.common.contract import AUDIENCE
from tests.common.contract import ContractServer
from tests.common.risk import risk_database
from tests.common.schemathesis_checks import load
from tests.common.schemathesis_checks import validate
from tests.common.tsa import TsaServer
from tests.conftest import DATABASES

pytestmark = pytest.mark.db
SCOPES = ("contract:write", "contract:read", "ledger:append", "ledger:read")


@pytest.fixture(scope="module", params=DATABASES)
def contracts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              s3_server: Any) -> Iterator[ContractServer]:
    """The contract service on a fresh database of its own."""
    var = tmp_path_factory.mktemp("contract-openapi")
    with (risk_database(var, request.param) as url, TsaServer() as tsa,
          ContractServer(url, var, s3_server, tsa) as server):
        # a few entries, so the ledger's reads and proofs have something to answer besides 404
        for n in range(3):
            r = requests.post(f"{server.url}/api/v1/ledger/entries", headers=server.headers("ledger:append"),
                              json={"kind": "payment", "subject": f"app-{n}", "data": {"amount": "1.00"}},
                              timeout=10)
            assert r.status_code == 201, r.text[:300]
        yield server


def test_openapi_document_is_valid(contracts: ContractServer) -> None:
    from openapi_spec_validator import validate

    response = requests.get(f"{contracts.url}/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == document()
    validate(response.json())


@schemathesis.serializer("application/pdf")
def _pdf(ctx: Any, value: Any) -> bytes:
    """The schema says only "a PDF": a generated string becomes a body that starts like one (so pyHanko's
    reader gets garbage to parse, not only the magic-number check), anything else its JSON bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return b"%PDF-1.7\n" + value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


SCHEMA = load(document())
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


@SCHEMA.parametrize()
@SETTINGS
def test_schemathesis(case: Any, contracts: ContractServer) -> None:
    """Every check of schemathesis on every path, the evidence log's included (tests/common/schemathesis_checks.py)."""
    token = contracts.tokens.make(SCOPES, audience=AUDIENCE)
    validate(case, base_url=contracts.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
