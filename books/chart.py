"""The chart of accounts (books/chart_of_accounts.toml): each account's Beancount name (the key every journal line
uses: ``Assets:LeaseReceivable:Payments``), its names in zh and en, its type and the side its balance normally sits
on. Versioned: a new version may add accounts and change their wording, never rename or remove one a line uses."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CHART_FILE = Path(__file__).with_name("chart_of_accounts.toml")
#: Beancount's account types, the first component of every name
TYPES = ("Assets", "Liabilities", "Equity", "Income", "Expenses")
#: each further component starts with an ASCII capital or a digit (Beancount's account syntax)
_COMPONENT = re.compile(r"[A-Z0-9][A-Za-z0-9-]*")


class ChartError(ValueError):
    """The chart file is not a usable chart of accounts (the message says which account and why)."""


@dataclass(frozen=True)
class Account:
    name: str  # Beancount: Assets:LeaseReceivable:Payments
    code: str  # the lessor's own account code (provisional: see the file)
    zh: str
    en: str

    @property
    def type(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def debit_normal(self) -> bool:
        """Assets and expenses carry debit balances; liabilities, equity and income credit balances (a contra account
        such as unearned finance income sits under its parent's type with the opposite balance, said in the file)."""
        return self.type in ("Assets", "Expenses")


@dataclass(frozen=True)
class Chart:
    version: str
    effective: str
    accounts: Mapping[str, Account]

    def __contains__(self, name: object) -> bool:
        return name in self.accounts

    def account(self, name: str) -> Account:
        try:
            return self.accounts[name]
        except KeyError:
            raise ChartError(f"no account {name!r} in the chart of accounts {self.version}") from None


def parse_chart(raw: Mapping[str, object]) -> Chart:
    """The chart in ``raw`` (the TOML file's tables), every account name checked against Beancount's syntax."""
    version, effective = str(raw.get("version", "")), str(raw.get("effective", ""))
    if not version:
        raise ChartError("the chart of accounts has no version")
    entries = raw.get("accounts")
    if not isinstance(entries, list) or not entries:
        raise ChartError("the chart of accounts lists no [[accounts]]")
    accounts: dict[str, Account] = {}
    codes: set[str] = set()
    for entry in entries:
        name, code = str(entry.get("name", "")), str(entry.get("code", ""))
        parts = name.split(":")
        if len(parts) < 2 or parts[0] not in TYPES or not all(_COMPONENT.fullmatch(p) for p in parts[1:]):
            raise ChartError(f"{name!r} is not a Beancount account name (Type:Component…, each starting A–Z or 0–9)")
        if name in accounts or code in codes:
            raise ChartError(f"{name!r} ({code}) is listed twice")
        if not code or not entry.get("zh") or not entry.get("en"):
            raise ChartError(f"{name!r} needs a code and its names in zh and en")
        accounts[name] = Account(name, code, str(entry["zh"]), str(entry["en"]))
        codes.add(code)
    return Chart(version, effective, accounts)


@cache
def load_chart(path: Path = CHART_FILE) -> Chart:
    """The chart of accounts in ``path`` (the shipped file by default), read once."""
    with path.open("rb") as fh:
        return parse_chart(tomllib.load(fh))
