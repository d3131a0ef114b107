"""The compliance policy: a versioned TOML file; every refusal carries a reason code and zh/en text."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import time
from decimal import ROUND_DOWN
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal

Condition = Literal["new", "used"]
Usage = Literal["personal", "commercial"]
Powertrain = Literal["ice", "nev"]


@dataclass(frozen=True)
class Category:
    """What the policy needs to know about a vehicle."""

    condition: Condition = "new"
    usage: Usage = "personal"
    powertrain: Powertrain = "ice"


@dataclass(frozen=True)
class Reason:
    """Why a plan is not allowed: a stable machine-readable code and the text in both UI languages."""

    code: str
    text_zh: str
    text_en: str

    def text(self, locale: str) -> str:
        """The reason in ``locale`` (``zh…`` gives Chinese, anything else English)."""
        return self.text_zh if locale.lower().startswith("zh") else self.text_en

    def as_dict(self) -> dict[str, str]:
        """The JSON shape of a reason in the API and the CLI."""
        return {"code": self.code, "text_zh": self.text_zh, "text_en": self.text_en}


#: the parts of an instalment a payment settles, in the default order (``[servicing] allocation_order``)
ALLOCATION_PARTS = ("penalty", "interest", "principal")


def _pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


#: the reminders' kinds of wording: before the due date, after the rent became overdue
REMINDER_WORDINGS = ("before_due", "overdue")
#: the languages each wording is registered in (an SMS template each: infra/sms.py)
REMINDER_LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class ReminderPolicy:
    """The texts about a rent (issue 18 §4, ``[reminders]``): ``before_due_days`` before its due date (0: none), and
    each of ``after_overdue_days`` days after it became overdue (1: the day after, 7: a week after), only between
    ``send_from`` and ``send_until`` Beijing time; ``templates``: the SMS template (infra/sms.py) of each wording in
    each language, ``{"before_due": {"zh": …, "en": …}, "overdue": {…}}``."""

    before_due_days: int = 3
    after_overdue_days: tuple[int, ...] = (1, 7)
    send_from: time = time(9)
    send_until: time = time(20)
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: {
        "before_due": {"zh": "rent_due_soon", "en": "rent_due_soon_en"},
        "overdue": {"zh": "rent_overdue", "en": "rent_overdue_en"}})

    def template(self, wording: str, language: str) -> str:
        """The SMS template of ``wording`` in ``language`` (``en…`` English, anything else Chinese)."""
        return self.templates[wording]["en" if language.lower().startswith("en") else "zh"]


@dataclass(frozen=True)
class Policy:
    """A loaded compliance policy. Use :func:`load_policy`; fields mirror ``policies/default.toml``."""

    version: str
    min_term: int
    max_term: int
    used_max_term: int
    min_down: dict[str, Decimal]
    residual_caps: tuple[tuple[int, Decimal], ...]
    apr_cap: Decimal
    required_insurance: tuple[str, ...]
    deposit_free_conditions: tuple[str, ...]
    #: the most a lessee in default pays a year, the contract rate and the late charge together: 24 %, what
    #: courts enforce (法发〔2017〕22号 《关于进一步加强金融审判工作的若干意见》 art. 2: interest, penalty
    #: interest, liquidated damages and other charges above 24 % a year in total are reduced on request;
    #: Civil Code art. 585: liquidated damages excessively above the loss are reduced)
    default_cost_cap: Decimal = Decimal("0.24")
    #: the order in which a payment settles each open instalment's parts (还款冲销顺序), oldest instalment first:
    #: by default late charges, then interest, then principal (issue 18 §3; servicing.allocation)
    allocation_order: tuple[str, ...] = ALLOCATION_PARTS
    #: the texts about a rent the close of business sends (issue 18 §4, ``[reminders]``)
    reminders: ReminderPolicy = field(default_factory=ReminderPolicy)
    #: business days after a failed automatic collection's day on which it is tried again (``[collections]
    #: retry_after_business_days``; empty: never)
    collection_retry_days: tuple[int, ...] = (2, 5)
    #: days after an application passed its identity check during which a new application of the same person reuses
    #: it (``[end_of_term] kyc_reuse_days``: refinancing the final rent)
    kyc_reuse_days: int = 90
    #: days after the term's end after which a returned car still not inspected is flagged to ops
    #: (``[end_of_term] inspection_overdue_days``)
    inspection_overdue_days: int = 10

    def min_down_ratio(self, category: Category) -> Decimal:
        """The minimum down payment as a ratio of the price for ``category``."""
        if category.condition == "used":
            return self.min_down["used"]
        return self.min_down[f"new.{category.usage}.{category.powertrain}"]

    def max_term_for(self, category: Category) -> int:
        """The longest term allowed for ``category``."""
        return self.used_max_term if category.condition == "used" else self.max_term

    def late_fee_daily_rate(self, product_rate: Decimal, nominal_rate: Decimal) -> Decimal:
        """The late charge a contract at ``nominal_rate`` may state: the product's daily rate, or less, so that
        the contract rate and 365 days of the charge stay within :attr:`default_cost_cap` (rounded down to a
        millionth a day: 0.0001 %); zero when the contract rate leaves no room."""
        room = (self.default_cost_cap - nominal_rate) / Decimal(365)
        if room <= 0:
            return Decimal("0")
        return min(product_rate, room.quantize(Decimal("0.000001"), rounding=ROUND_DOWN))

    def residual_cap(self, term: int) -> Decimal:
        """The residual cap for ``term``: that of the largest listed term not above it."""
        cap = self.residual_caps[0][1]
        for listed, value in self.residual_caps:
            if listed <= term:
                cap = value
        return cap

    def check(
        self,
        category: Category,
        *,
        down_ratio: Decimal,
        term: int,
        residual_ratio: Decimal,
        apr: Decimal,
        insurance: frozenset[str] | set[str] | None,
        deposit_free: bool,
    ) -> tuple[Reason, ...]:
        """Every reason the plan is refused; empty when it is allowed.

        ``insurance`` None means the coverages are unknown (a quote from explicit figures): not assessed.
        """
        reasons: list[Reason] = []
        floor = self.min_down_ratio(category)
        if down_ratio < floor:
            reasons.append(
                Reason("down_payment_below_minimum", f"首付比例不得低于 {_pct(floor)}",
                       f"The down payment must be at least {_pct(floor)} of the price")
            )
        longest = self.max_term_for(category)
        if not self.min_term <= term <= longest:
            reasons.append(
                Reason("term_not_allowed", f"该车型期限须为 {self.min_term}–{longest} 个月",
                       f"The term must be {self.min_term}–{longest} months for this vehicle")
            )
        cap = self.residual_cap(term)
        if residual_ratio > cap:
            reasons.append(
                Reason("residual_above_cap", f"{term} 期尾付租金比例不得超过 {_pct(cap)}",
                       f"The residual may not exceed {_pct(cap)} for a {term}-month term")
            )
        if apr > self.apr_cap:
            reasons.append(
                Reason("apr_above_cap", f"年化利率不得超过 {_pct(self.apr_cap)}",
                       f"The APR may not exceed {_pct(self.apr_cap)}")
            )
        missing = [code for code in self.required_insurance if insurance is not None and code not in insurance]
        if missing:
            reasons.append(Reason("mandatory_insurance_missing", "必须包含交强险",
                                  "Compulsory traffic insurance (CTPL) is required"))
        if deposit_free and category.condition not in self.deposit_free_conditions:
            reasons.append(Reason("deposit_free_not_allowed", "该车型不支持免押方案",
                                  "Deposit-free plans are not available for this vehicle"))
        return tuple(reasons)


def parse_policy(data: dict[str, object]) -> Policy:
    """Build a :class:`Policy` from the parsed TOML document (raises ``KeyError``/``ValueError`` if malformed)."""
    terms = data["terms"]
    min_down_raw = data["min_down"]
    caps_raw = data["residual_cap"]
    apr = data["apr"]
    insurance = data["insurance"]
    deposit_free = data["deposit_free"]
    default_cost = data.get("default_cost", {"cap": "0.24"})
    assert isinstance(default_cost, dict)
    servicing = data.get("servicing", {})
    assert isinstance(servicing, dict)
    order = tuple(str(part) for part in servicing.get("allocation_order", ALLOCATION_PARTS))
    if sorted(order) != sorted(ALLOCATION_PARTS):
        raise ValueError(f"[servicing] allocation_order must name each of {', '.join(ALLOCATION_PARTS)} once")
    assert isinstance(terms, dict) and isinstance(min_down_raw, dict) and isinstance(caps_raw, dict)
    assert isinstance(apr, dict) and isinstance(insurance, dict) and isinstance(deposit_free, dict)
    min_down: dict[str, Decimal] = {"used": Decimal(min_down_raw["used"])}
    for usage, by_power in min_down_raw["new"].items():
        for power, ratio in by_power.items():
            min_down[f"new.{usage}.{power}"] = Decimal(ratio)
    caps = tuple(sorted((int(term), Decimal(cap)) for term, cap in caps_raw.items()))
    return Policy(
        version=str(data["version"]),
        min_term=int(terms["min"]),
        max_term=int(terms["max"]),
        used_max_term=int(terms["used_max"]),
        min_down=min_down,
        residual_caps=caps,
        apr_cap=Decimal(apr["cap"]),
        required_insurance=tuple(insurance["required"]),
        deposit_free_conditions=tuple(deposit_free["allowed_conditions"]),
        default_cost_cap=Decimal(default_cost["cap"]),
        allocation_order=order,
        reminders=parse_reminders(data.get("reminders")),
        collection_retry_days=parse_retry_days(data.get("collections", {})),
        **parse_end_of_term(data.get("end_of_term", {})),
    )


def parse_end_of_term(raw: object) -> dict[str, int]:
    """``[end_of_term]``: ``kyc_reuse_days`` 0–365 (0: never reused) and ``inspection_overdue_days`` 1–90 (absent:
    the defaults); ValueError otherwise."""
    if not isinstance(raw, dict):
        raise ValueError("[end_of_term] must be a table")
    figures = {"kyc_reuse_days": (raw.get("kyc_reuse_days", 90), 0, 365),
               "inspection_overdue_days": (raw.get("inspection_overdue_days", 10), 1, 90)}
    for name, (value, low, high) in figures.items():
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"[end_of_term] {name} must be whole days from {low} to {high}")
    return {name: int(value) for name, (value, _low, _high) in figures.items()}


def parse_retry_days(raw: object) -> tuple[int, ...]:
    """``[collections] retry_after_business_days``: distinct whole numbers of business days from 1 to 20, ascending
    (absent: the default); ValueError otherwise."""
    if not isinstance(raw, dict):
        raise ValueError("[collections] must be a table")
    days = raw.get("retry_after_business_days", [2, 5])
    if (not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 20
                                              for d in days) or days != sorted(set(days))):
        raise ValueError("[collections] retry_after_business_days must be ascending whole days from 1 to 20")
    return tuple(days)


def parse_reminders(raw: object) -> ReminderPolicy:
    """The ``[reminders]`` table (absent: the defaults); ValueError when a figure or a template is missing or wrong."""
    if raw is None:
        return ReminderPolicy()
    if not isinstance(raw, dict):
        raise ValueError("[reminders] must be a table")
    try:
        before = int(raw["before_due_days"])
        after = tuple(sorted({int(n) for n in raw["after_overdue_days"]}))
        opens, closes = time.fromisoformat(str(raw["send_from"])), time.fromisoformat(str(raw["send_until"]))
        templates = {w: {lang: str(raw["templates"][w][lang]) for lang in REMINDER_LANGUAGES}
                     for w in REMINDER_WORDINGS}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"[reminders] is incomplete: {exc}") from None
    if not 0 <= before <= 30 or any(not 1 <= n <= 90 for n in after):
        raise ValueError("[reminders] before_due_days must be 0–30 and after_overdue_days 1–90")
    if opens >= closes:
        raise ValueError("[reminders] send_from must be before send_until")
    return ReminderPolicy(before, after, opens, closes, templates)


@cache
def load_policy(name: str = "default") -> Policy:
    """Load ``plans/policies/<name>.toml`` (cached: policies are immutable once versioned)."""
    text = resources.files("plans").joinpath("policies", f"{name}.toml").read_text(encoding="utf-8")
    return parse_policy(tomllib.loads(text))
