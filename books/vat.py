"""VAT on a lease's rents, late charges and fees (issue 19 §3), pure: the versioned tax policy
(books/tax_policy.toml: rate, base, tax point, item names and tax classification code per lease structure and date,
each with its sources) and the tax a sum carries, exact.

Rents are **VAT-inclusive**: the contract's rent is the price with tax. For a rent of amount A (fen), interest I and
principal A − I, under a rule of rate τ:

- base "consideration" (a direct lease, 有形动产融资租赁服务): tax = half_up(A·τ/(1+τ)); the interest's share
  tax_on_interest = half_up(I·τ/(1+τ)); the principal's tax_on_principal = tax − tax_on_interest (so the parts add up
  to the tax exactly, whatever the rounding);
- base "interest" (a sale-and-leaseback, taxed as 贷款服务 on its interest only): tax = tax_on_interest =
  half_up(I·τ/(1+τ)); tax_on_principal = 0.

Every figure is integer fen, computed from the rate's exact fraction and **rounded once**, half up (away from zero), as
Decimal's ROUND_HALF_UP would. A lump sum received (a late charge, a fee, a settlement's interest or fee) carries
``included_tax(rule, amount)`` = half_up(amount·τ/(1+τ)): they are 价外费用 of the same service, taxed whole.

Which rule: the one in force on the tax point (``TaxPolicy.rule(structure, on)``) — for a rent the earlier of its due
date (the payment date the written contract fixes) and the day it is received in full (a rent paid ahead, 预收款: the
day received), for a lump sum the day it is received."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from decimal import InvalidOperation
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

POLICY_FILE = Path(__file__).with_name("tax_policy.toml")
#: lease structures (plans/product.py Title.structure): 直租 and 售后回租
STRUCTURES = ("direct", "leaseback")
#: what a rule's rate applies to within a rent
BASES = ("consideration", "interest")


class TaxPolicyError(ValueError):
    """The tax policy file is not usable (the message says which rule or field and why)."""


class NoRuleInForce(LookupError):
    """No VAT rule of the policy applies to this structure on this date."""


@dataclass(frozen=True)
class Source:
    id: str
    document: str  # the document number: 财税〔2016〕36号
    title: str
    article: str
    says: str
    read_at: tuple[str, ...] = ()
    provisional: bool = False
    note: str = ""


@dataclass(frozen=True)
class Rule:
    """One VAT rule: the tax of a lease structure's rents whose tax point falls from ``effective_from`` to
    ``effective_to`` (inclusive; None: open)."""

    structure: str
    rate: Decimal
    base: str  # "consideration" | "interest"
    item_zh: str
    item_en: str
    tax_code: str  # 商品和服务税收分类编码, "" when it could not be sourced (see provisional_fields)
    tax_short: str  # the code's 分类简称: the invoice item reads *tax_short*item_zh
    tax_point: str  # "earlier_of_contract_payment_date_and_received"
    lump_sum_tax_point: str  # "received"
    refund_code: str  # 数电票 增值税即征即退代码 of the service
    effective_from: date
    effective_to: date | None
    sources: tuple[str, ...]
    provisional: bool = False
    provisional_fields: tuple[str, ...] = ()
    advance_tax_point: str = "received"  # a rent paid ahead (预收款): the day it is received
    note: str = ""

    @property
    def fraction(self) -> Fraction:
        """The rate, exact."""
        return Fraction(self.rate)

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


@dataclass(frozen=True)
class RentTax:
    """The VAT a rent carries (integer fen). ``taxable``: the tax-inclusive part the rate applies to (the whole
    amount, or the interest for a leaseback); ``net``: the rent without its tax (amount − tax); ``tax`` =
    ``tax_on_interest`` + ``tax_on_principal``."""

    rule: Rule
    amount: int
    interest: int
    taxable: int
    net: int
    tax: int
    tax_on_interest: int
    tax_on_principal: int

    @property
    def principal(self) -> int:
        return self.amount - self.interest

    @property
    def net_interest(self) -> int:
        """The interest without its tax: what the lessor earns (finance income is net of VAT)."""
        return self.interest - self.tax_on_interest

    @property
    def taxable_net(self) -> int:
        """The taxable part without its tax: an invoice line's amount (金额) beside its tax (税额)."""
        return self.taxable - self.tax


@dataclass(frozen=True)
class TaxPolicy:
    version: str
    effective: str
    rules: tuple[Rule, ...]
    sources: Mapping[str, Source]

    def rule(self, structure: str, on: date) -> Rule:
        """The rule in force for ``structure`` on ``on`` (the tax point); raises NoRuleInForce if none is."""
        if structure not in STRUCTURES:
            raise NoRuleInForce(f"no VAT rule for lease structure {structure!r} (one of {', '.join(STRUCTURES)})")
        for item in self.rules:
            if item.structure == structure and item.in_force(on):
                return item
        raise NoRuleInForce(f"no VAT rule for a {structure} lease in force on {on.isoformat()} "
                            f"(tax policy {self.version})")


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator (denominator > 0) rounded to the nearest integer, halves away from zero."""
    quotient = (abs(numerator) * 2 + denominator) // (denominator * 2)
    return quotient if numerator >= 0 else -quotient


def included_tax(rule: Rule, amount: int) -> int:
    """The VAT included in a tax-inclusive ``amount`` (fen) under ``rule``: half_up(amount·τ/(1+τ))."""
    rate = rule.fraction
    return _half_up(amount * rate.numerator, rate.denominator + rate.numerator)


def rent_tax(rule: Rule, amount: int, interest: int) -> RentTax:
    """The VAT of a rent of ``amount`` fen (tax-inclusive) of which ``interest`` fen is interest, under ``rule``."""
    if isinstance(amount, bool) or isinstance(interest, bool) or not isinstance(amount, int) or not isinstance(
            interest, int):
        raise TypeError("a rent's amount and interest are integer fen")
    if not 0 <= interest <= amount:
        raise ValueError(f"a rent's interest ({interest}) must be from 0 to its amount ({amount}), in fen")
    on_interest = included_tax(rule, interest)
    if rule.base == "consideration":
        taxable, tax = amount, included_tax(rule, amount)
    else:
        taxable, tax = interest, on_interest
    return RentTax(rule=rule, amount=amount, interest=interest, taxable=taxable, net=amount - tax, tax=tax,
                   tax_on_interest=on_interest, tax_on_principal=tax - on_interest)


def _day(value: object, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise TaxPolicyError(f"{what} is not a date: {value!r}") from None


def _strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        return (str(value),)
    return tuple(str(item) for item in value)


def _tables(raw: Mapping[str, object], key: str) -> list[Mapping[str, Any]]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TaxPolicyError(f"[[{key}]] must be a list of tables")
    return value


def parse_tax_policy(raw: Mapping[str, object]) -> TaxPolicy:
    """The policy in ``raw`` (the TOML file's tables), checked: rates, bases, dates, sources named, no two rules of
    a structure in force on the same day."""
    version = str(raw.get("version", ""))
    if not version:
        raise TaxPolicyError("the tax policy has no version")
    sources: dict[str, Source] = {}
    for entry in _tables(raw, "sources"):
        sid = str(entry.get("id", ""))
        if not sid or sid in sources:
            raise TaxPolicyError(f"source {sid!r}: an id missing or listed twice")
        if not entry.get("document") or not entry.get("article"):
            raise TaxPolicyError(f"source {sid!r} needs its document number and article")
        sources[sid] = Source(sid, str(entry["document"]), str(entry.get("title", "")), str(entry["article"]),
                              str(entry.get("says", "")), _strings(entry.get("read_at")),
                              bool(entry.get("provisional", False)), str(entry.get("note", "")))
    rules: list[Rule] = []
    for n, entry in enumerate(_tables(raw, "rules"), start=1):
        what = f"rule {n} ({entry.get('structure')!r} from {entry.get('effective_from')!r})"
        structure, base = str(entry.get("structure", "")), str(entry.get("base", ""))
        if structure not in STRUCTURES:
            raise TaxPolicyError(f"{what}: structure must be one of {', '.join(STRUCTURES)}")
        if base not in BASES:
            raise TaxPolicyError(f"{what}: base must be one of {', '.join(BASES)}")
        try:
            rate = Decimal(str(entry.get("rate", "")))
        except InvalidOperation:
            raise TaxPolicyError(f"{what}: rate {entry.get('rate')!r} is not a decimal") from None
        if isinstance(entry.get("rate"), float) or not Decimal(0) <= rate < Decimal(1):
            raise TaxPolicyError(f"{what}: rate must be a decimal string from 0 to below 1")
        start = _day(entry.get("effective_from"), f"{what} effective_from")
        end: date | None = _day(entry["effective_to"], f"{what} effective_to") if "effective_to" in entry else None
        if end is not None and end < start:
            raise TaxPolicyError(f"{what}: effective_to is before effective_from")
        cited = _strings(entry.get("sources"))
        if not cited or any(sid not in sources for sid in cited):
            raise TaxPolicyError(f"{what}: cites no source or one not listed: {', '.join(cited) or '—'}")
        fields = _strings(entry.get("provisional_fields"))
        provisional = bool(entry.get("provisional", False))
        if fields and not provisional:
            raise TaxPolicyError(f"{what}: provisional_fields without provisional = true")
        if not entry.get("item_zh") or not entry.get("item_en"):
            raise TaxPolicyError(f"{what}: needs item names in zh and en")
        if not entry.get("tax_code") and "tax_code" not in fields:
            raise TaxPolicyError(f"{what}: no tax_code and not marked provisional")
        rules.append(Rule(structure=structure, rate=rate, base=base, item_zh=str(entry["item_zh"]),
                          item_en=str(entry["item_en"]), tax_code=str(entry.get("tax_code", "")),
                          tax_short=str(entry.get("tax_short", "")),
                          tax_point=str(entry.get("tax_point", "earlier_of_contract_payment_date_and_received")),
                          advance_tax_point=str(entry.get("advance_tax_point", "received")),
                          lump_sum_tax_point=str(entry.get("lump_sum_tax_point", "received")),
                          refund_code=str(entry.get("refund_code", "")), effective_from=start, effective_to=end,
                          sources=cited, provisional=provisional, provisional_fields=fields,
                          note=str(entry.get("note", ""))))
    if not rules:
        raise TaxPolicyError("the tax policy lists no [[rules]]")
    for structure in STRUCTURES:
        mine = sorted((r for r in rules if r.structure == structure), key=lambda r: r.effective_from)
        for before, after in zip(mine, mine[1:], strict=False):
            if before.effective_to is None or before.effective_to >= after.effective_from:
                raise TaxPolicyError(f"two {structure} rules overlap from {after.effective_from.isoformat()}")
    return TaxPolicy(version, str(raw.get("effective", "")), tuple(rules), sources)


@cache
def _load(path: Path) -> TaxPolicy:
    with path.open("rb") as fh:
        return parse_tax_policy(tomllib.load(fh))


def load_tax_policy(path: Path | str | None = None) -> TaxPolicy:
    """The tax policy in ``path`` (the shipped books/tax_policy.toml by default), read once per file."""
    return _load(Path(path) if path is not None else POLICY_FILE)
