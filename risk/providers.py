"""External data behind one port: credit bureau (征信), judicial (失信被执行人), tax, and the lessor's gray list.

Each provider answers a :class:`Subject` with a JSON-ready dict. :class:`ProviderHub` asks them all at once
with one deadline (``LEASELINE_RISK_PROVIDER_TIMEOUT``, 0.5 s by default): a provider that is slow or fails
is reported as *unavailable* and the rules refer the application with reason ``PROVIDER_UNAVAILABLE``; it
never crashes an assessment. Successful answers are cached by the service (table ``risk_provider_cache``,
keyed by the keyed hash of the ID number, never the number itself) for ``ttl_seconds``.

No real bureau is reachable from here, so the embedded default is a **sandbox**: deterministic personas
chosen by the two digits before the check digit of the ID number (positions 16–17 of 18). Every sandbox
answer carries ``"sandbox": true`` and so does every assessment made with one.

| digits 16–17 | persona | the sandbox answers | outcome (policy v1) |
|---|---|---|---|
| other | clean file | bureau: 6 accounts, no arrears; no judicial record; tax = declared | model + rules decide |
| ``91`` | thin file | bureau: no usable history | refer 1 ``THIN_FILE`` |
| ``92`` | delinquent | bureau: worst arrears 120 days in 24 months | decline ``BUREAU_SEVERE_…`` |
| ``93`` | past arrears | bureau: worst arrears 45 days | refer 1 ``BUREAU_DELINQUENCY`` |
| ``94`` | judicial hit | judicial: dishonest-debtor list (失信被执行人) | decline ``JUDICIAL_DISHONEST`` |
| ``95`` | gray list | the lessor's gray list: hit | decline ``GRAY_LIST`` |
| ``96`` | high velocity | bureau: 8 lender inquiries in 24 h (多头借贷) | refer 2 ``MULTI_LENDING`` |
| ``97`` | slow bureau | bureau answers after the timeout (2 × timeout + 1 s) | refer 1 ``PROVIDER_UNAVAILABLE`` |
| ``98`` | income mismatch | tax: income on record 40 % of declared (used for affordability) | refer (``INCOME_…``) |
| ``99`` | bureau error | bureau fails (an HTTP 503 in real life) | refer 1 ``PROVIDER_UNAVAILABLE`` |

The sandbox bank-statement check (银行流水, open banking) answers ``healthy`` for every persona except: thin file
→ ``no_account`` (nothing to verify: the model scores it neutral), delinquent / judicial hit / gray list →
``overdrawn``, past arrears / high velocity / income mismatch → ``low_balance``. The model reads it as the
account status when the BFF's snapshot has none (today it never has).

E.g. ``11010119900101`` + ``0`` + ``92`` + check digit is a delinquent applicant; build test numbers with
``kyc.idnumber.check_digit``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any
from typing import Protocol

from risk.rules import ProviderFacts

log = logging.getLogger(__name__)

PERSONAS: dict[str, str] = {
    "91": "thin_file", "92": "delinquent", "93": "past_arrears", "94": "judicial_hit", "95": "gray_list",
    "96": "high_velocity", "97": "slow_bureau", "98": "income_mismatch", "99": "bureau_error",
}


def persona(id_number: str) -> str:
    """The sandbox persona of an ID number (``clean_file`` unless digits 16–17 name another)."""
    return PERSONAS.get(id_number[15:17], "clean_file")


@dataclass(frozen=True)
class Subject:
    """Who is looked up. ``id_hash`` is the keyed hash (cache key); the number itself never leaves the call."""

    id_number: str
    id_hash: str
    name: str
    declared_income: Decimal


class DataProvider(Protocol):
    """One external data source."""

    name: str
    ttl_seconds: int

    def fetch(self, subject: Subject) -> dict[str, Any]:
        """The provider's answer about ``subject`` as JSON-ready data; raises on failure (the hub times out)."""
        ...


class ProviderFailed(RuntimeError):
    """A provider answered with an error."""


class SandboxBureau:
    """Sandbox credit bureau (征信): deterministic answers by persona; ``slow_seconds`` for the slow persona."""

    name = "bureau"
    ttl_seconds = 24 * 3600

    def __init__(self, slow_seconds: float = 3.0) -> None:
        self.slow_seconds = slow_seconds

    def fetch(self, subject: Subject) -> dict[str, Any]:
        kind = persona(subject.id_number)
        if kind == "slow_bureau":
            time.sleep(self.slow_seconds)
        if kind == "bureau_error":
            raise ProviderFailed("sandbox bureau: 503 Service Unavailable")
        report: dict[str, Any] = {"sandbox": True, "provider": "sandbox-bureau", "persona": kind, "thin_file": False,
                                  "accounts": 6, "worst_dpd_24m": 0, "inquiries_24h": 1, "current_overdue": "0.00"}
        if kind == "thin_file":
            report.update(thin_file=True, accounts=0, inquiries_24h=0)
        elif kind == "delinquent":
            report.update(worst_dpd_24m=120, current_overdue="8600.00")
        elif kind == "past_arrears":
            report.update(worst_dpd_24m=45)
        elif kind == "high_velocity":
            report.update(inquiries_24h=8)
        return report


class SandboxJudicial:
    """Sandbox judicial data: the dishonest judgement debtor list (失信被执行人名单)."""

    name = "judicial"
    ttl_seconds = 24 * 3600

    def fetch(self, subject: Subject) -> dict[str, Any]:
        hit = persona(subject.id_number) == "judicial_hit"
        return {"sandbox": True, "provider": "sandbox-judicial", "dishonest_debtor": hit,
                "cases": [{"court": "北京市朝阳区人民法院 (sandbox)", "year": 2024}] if hit else []}


class SandboxGrayList:
    """Sandbox of the lessor's own gray list (customers with past frauds or write-offs)."""

    name = "gray_list"
    ttl_seconds = 3600

    def fetch(self, subject: Subject) -> dict[str, Any]:
        return {"sandbox": True, "provider": "sandbox-gray-list", "hit": persona(subject.id_number) == "gray_list"}


class SandboxTax:
    """Sandbox tax records: the monthly income on record (equal to the declared income unless a mismatch)."""

    name = "tax"
    ttl_seconds = 7 * 24 * 3600

    def fetch(self, subject: Subject) -> dict[str, Any]:
        income = subject.declared_income
        if persona(subject.id_number) == "income_mismatch":
            income = (income * Decimal("0.4")).quantize(Decimal("0.01"))
        return {"sandbox": True, "provider": "sandbox-tax", "monthly_income": f"{income:.2f}"}


BANK_STATUS = {"thin_file": "no_account", "delinquent": "overdrawn", "judicial_hit": "overdrawn",
               "gray_list": "overdrawn", "past_arrears": "low_balance", "high_velocity": "low_balance",
               "income_mismatch": "low_balance"}


class SandboxBank:
    """Sandbox bank-statement check (银行流水): the account status the scorecard uses (risk/model/features.py)."""

    name = "bank"
    ttl_seconds = 24 * 3600

    def fetch(self, subject: Subject) -> dict[str, Any]:
        return {"sandbox": True, "provider": "sandbox-bank-statement",
                "status": BANK_STATUS.get(persona(subject.id_number), "healthy")}


def sandbox_providers(slow_seconds: float = 3.0) -> list[DataProvider]:
    """The embedded default: every provider as a sandbox."""
    return [SandboxBureau(slow_seconds), SandboxJudicial(), SandboxGrayList(), SandboxTax(), SandboxBank()]


@dataclass(frozen=True)
class Gathered:
    """What the hub collected: answers by provider name, and the names that failed or timed out."""

    responses: dict[str, dict[str, Any]]
    unavailable: tuple[str, ...]
    fresh: tuple[str, ...]  # names answered now (not from the cache): the service caches them


class ProviderHub:
    """Asks every provider in parallel under one deadline; failures become ``unavailable``, never exceptions."""

    def __init__(self, providers: Sequence[DataProvider], timeout: float, max_workers: int = 32) -> None:
        self.providers = list(providers)
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="risk-provider")

    def gather(self, subject: Subject, cached: Mapping[str, dict[str, Any]]) -> Gathered:
        """Answers for ``subject``; cached answers are used as they are."""
        responses = {name: dict(answer) for name, answer in cached.items()}
        futures: dict[str, Future[dict[str, Any]]] = {
            p.name: self._pool.submit(p.fetch, subject) for p in self.providers if p.name not in cached}
        unavailable: list[str] = []
        if futures:
            wait(futures.values(), timeout=self.timeout)
        for name, future in futures.items():
            if not future.done():
                future.cancel()
                log.warning("provider %s timed out after %.2fs", name, self.timeout)
                unavailable.append(name)
                continue
            try:
                answer = future.result()
            except Exception as exc:  # any provider failure is an unavailable source, not a crash
                log.warning("provider %s failed: %s", name, exc)
                unavailable.append(name)
                continue
            responses[name] = answer
        return Gathered(responses, tuple(sorted(unavailable)), tuple(n for n in futures if n in responses))

    def ttl(self, name: str) -> int:
        return next((p.ttl_seconds for p in self.providers if p.name == name), 3600)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def facts(gathered: Gathered) -> ProviderFacts:
    """The findings the rules use, read defensively from the providers' answers."""
    bureau = gathered.responses.get("bureau", {})
    judicial = gathered.responses.get("judicial", {})
    gray = gathered.responses.get("gray_list", {})
    tax = gathered.responses.get("tax", {})
    verified: Decimal | None = None
    try:
        if tax.get("monthly_income") is not None:
            verified = Decimal(str(tax["monthly_income"]))
    except InvalidOperation:
        verified = None
    return ProviderFacts(
        unavailable=gathered.unavailable,
        thin_file=bool(bureau.get("thin_file", False)),
        worst_dpd_24m=int(bureau.get("worst_dpd_24m", 0) or 0),
        inquiries_24h=int(bureau.get("inquiries_24h", 0) or 0),
        judicial_hit=bool(judicial.get("dishonest_debtor", False)),
        gray_list_hit=bool(gray.get("hit", False)),
        verified_income=verified,
    )


def summary(gathered: Gathered) -> dict[str, Any]:
    """What an assessment records about its data: per provider ok / unavailable, sandbox or not, key findings."""
    out: dict[str, Any] = {}
    for name, answer in gathered.responses.items():
        out[name] = {k: v for k, v in answer.items() if k not in ("cases",)} | {"status": "ok"}
    for name in gathered.unavailable:
        out[name] = {"status": "unavailable"}
    return out
