"""Test helpers for the risk service: a live server on a free port with a fresh database, service tokens,
application snapshots and the sandbox personas' ID numbers (valid GB 11643 check digits)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.service_tokens import SCOPE_ASSESS
from infra.service_tokens import SCOPE_REVIEW
from infra.service_tokens import TokenIssuer
from infra.service_tokens import load_or_create_signing_key
from kyc.idnumber import check_digit

ISSUER = "leaseline"
AUDIENCE = "leaseline-risk"

#: sandbox personas (risk/providers.py) → digits 16–17 of the ID number
PERSONA_DIGITS = {
    "clean_file": "12", "thin_file": "91", "delinquent": "92", "past_arrears": "93", "judicial_hit": "94",
    "gray_list": "95", "high_velocity": "96", "slow_bureau": "97", "income_mismatch": "98", "bureau_error": "99",
}


def id_number(persona: str = "clean_file", birth: str = "19880315", region: str = "110105", serial: int = 0) -> str:
    """A valid 18-character ID number for ``persona``; ``serial`` (0–9) varies it within the persona."""
    first17 = f"{region}{birth}{serial % 10}{PERSONA_DIGITS[persona]}"
    return first17 + check_digit(first17)


BASE_SNAPSHOT: dict[str, Any] = {
    "application_id": "app-0001", "dealer_id": "dealer-bj-01",
    "applicant": {"age": 36, "id_number": "", "name": "王小明", "monthly_income": "28000.00",
                  "employment": "employed", "employment_years": 8, "housing": "mortgage", "dependants": 1,
                  "existing_loans": 0, "monthly_repayments": "0.00", "mobile": "13800138000"},
    "vehicle": {"id": "byd-han-ev", "make": "BYD", "model": "Han EV", "price": "219800.00", "condition": "new",
                "vin": "LGXCE4CB5N0000001", "mileage": None},
    "plan": {"term": 36, "down_payment": "43960.00", "financed_amount": "175840.00", "monthly_payment": "5410.60",
             "residual": "0.00", "deposit": "0.00", "deposit_free": False, "apr": "0.067123"},
    "kyc": {"status": "kyc_passed", "face_distance": 0.31, "liveness": True, "manual": False},
    "device": {"ip": "203.0.113.7", "user_agent_hash": "ua-3f9c"},
}


def snapshot(persona: str = "clean_file", **overrides: Any) -> dict[str, Any]:
    """A complete snapshot; ``overrides`` use ``section__field=value`` (``plan__term=48``) or a top-level key.

    Each call gets a fresh application id, ID serial, mobile and device unless overridden, so velocity rules
    only fire when a test means them to.
    """
    data = copy.deepcopy(BASE_SNAPSHOT)
    unique = uuid.uuid4().hex
    data["application_id"] = f"app-{unique[:16]}"
    # about a million distinct numbers per persona: a test module's assessments never share an applicant by
    # chance (a shared one makes the multi-vehicle and velocity rules fire)
    birth = f"19{60 + int(unique[0:2], 16) % 40:02d}03{int(unique[21:23], 16) % 28 + 1:02d}"
    data["applicant"]["id_number"] = id_number(persona, birth=birth, region=f"1101{int(unique[1:3], 16) % 99 + 1:02d}",
                                               serial=int(unique[2:4], 16))
    data["applicant"]["mobile"] = f"139{int(unique[3:11], 16) % 10**8:08d}"
    data["device"]["user_agent_hash"] = f"ua-{unique[11:19]}"
    data["device"]["ip"] = f"198.51.100.{int(unique[19:21], 16) % 250 + 1}"
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            data[section][name] = value
        else:
            data[section] = value
    return data


@contextmanager
def risk_database(var_dir: Path, kind: str = "postgresql") -> Iterator[str]:
    """A fresh, empty database URL for the risk service: a new database on ``TEST_DATABASE_URL``'s server,
    dropped afterwards (``var_dir`` and ``kind`` kept for the callers' signatures)."""
    from tests.conftest import postgres_database

    yield from postgres_database("leaseline_risk_t")


class Tokens:
    """Mints service tokens with the same key file the service verifies with (the embedded issuer)."""

    def __init__(self, key_path: Path) -> None:
        self.key = load_or_create_signing_key(key_path)
        self.issuer = TokenIssuer(self.key, ISSUER)

    def make(self, scopes: tuple[str, ...] = (SCOPE_ASSESS,), audience: str = AUDIENCE, ttl: int = 300,
             subject: str = "leaseline-bff") -> str:
        return self.issuer.issue(subject, audience, scopes, ttl)

    def headers(self, *scopes: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.make(scopes or (SCOPE_ASSESS,), **kwargs)}"}

    def assess(self) -> dict[str, str]:
        return self.headers(SCOPE_ASSESS)

    def review(self) -> dict[str, str]:
        return self.headers(SCOPE_REVIEW)


class RiskServer:
    """The risk service on 127.0.0.1 and a free port (werkzeug, threaded) with its own fresh database."""

    def __init__(self, database_url: str, var_dir: Path, **config: Any) -> None:
        from risk.app import create_app
        from tests.conftest import LiveServer

        self.key_path = var_dir / "service_signing_key.pem"
        self.app = create_app({"database_url": database_url, "env": "test", "signing_key_path": str(self.key_path),
                               "provider_timeout": 0.3, **config})
        self.tokens = Tokens(self.key_path)
        self._live = LiveServer(self.app)
        self.url = self._live.url

    def __enter__(self) -> RiskServer:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)
        self.app.extensions["risk"].dispose()
