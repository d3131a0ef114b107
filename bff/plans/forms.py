"""The builder's query-string form: parse it (collecting field errors), and encode a plan as a short code.

The builder keeps its whole state in the URL (GET), so a reload, the back button, a shared link or the
service worker never lose what the user chose, and no state change (hence no CSRF token) is involved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import error
from plans.inputs import bounded_int
from plans.money import to_decimal
from plans.policy import Policy
from plans.product import PlanChoice
from plans.product import Product
from plans.product import Vehicle

MAX_COMPARE = 3
CODE = re.compile(r"[a-z0-9_]{1,20}")


class MultiMapping(Mapping[str, str]):
    """What the form needs of ``request.args`` (a werkzeug MultiDict)."""

    def getlist(self, key: str) -> list[str]: ...


@dataclass
class BuilderForm:
    """The builder's fields as shown again to the user (raw strings kept so nothing typed is lost)."""

    down: int
    term: int
    residual: int
    insurance: frozenset[str]
    deposit_free: bool
    extras_financed: bool
    timing: str
    #: The product's mutually exclusive coverage groups: one select each, named after the group.
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    budget: str = ""
    compare: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    @classmethod
    def from_choice(cls, choice: PlanChoice, product: Product) -> BuilderForm:
        return cls(
            down=int(choice.down_ratio * 100), term=choice.term, residual=int(choice.residual_ratio * 100),
            insurance=choice.insurance, deposit_free=choice.deposit_free, extras_financed=choice.extras_financed,
            timing=choice.timing, groups=coverage_groups(product),
        )

    def choice(self) -> PlanChoice:
        return PlanChoice(
            down_ratio=Decimal(self.down) / 100,
            term=self.term,
            insurance=self.insurance,
            residual_ratio=Decimal(self.residual) / 100,
            deposit_free=self.deposit_free,
            extras_financed=self.extras_financed,
            timing="advance" if self.timing == "advance" else "arrears",
        )

    def query_pairs(self) -> list[tuple[str, str]]:
        """The choices as query-string pairs (what the builder's GET form would send)."""
        grouped = {code for codes in self.groups.values() for code in codes}
        return [
            ("down", str(self.down)), ("term", str(self.term)), ("residual", str(self.residual)),
            *[("ins", c) for c in sorted(self.insurance - grouped)],
            *[(group, self.selected(group)) for group in self.groups],
            ("deposit", "free" if self.deposit_free else "deposit"),
            ("extras", "financed" if self.extras_financed else "upfront"), ("timing", self.timing),
            ("submitted", "1"),
        ]

    def selected(self, group: str) -> str:
        """The coverage chosen in ``group``, or "" for none."""
        return next((c for c in self.groups.get(group, ()) if c in self.insurance), "")

    def down_amount(self, vehicle: Vehicle) -> Decimal:
        """The down payment in CNY for the slider's readout."""
        return vehicle.price * self.down / 100

    def code(self) -> str:
        return encode(self.choice())

    def error_for(self, name: str) -> FieldError | None:
        return next((e for e in self.errors if e.field == name), None)


def _percent(raw: str | None, name: str, default: int, low: int, high: int, errors: list[FieldError]) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = to_decimal(raw)
    except ValueError:
        errors.append(error(name, "not_a_number"))
        return default
    if value != value.to_integral_value() or not low <= value <= high:
        errors.append(error(name, "ratio_range", max=high))
        return default
    return int(value)


def coverage_groups(product: Product) -> dict[str, tuple[str, ...]]:
    return {group.code: tuple(c.code for c in covers) for group, covers in product.groups()[1].items()}


def default_form(vehicle: Vehicle, product: Product, policy: Policy) -> BuilderForm:
    """A sensible starting plan: the policy's minimum down payment (at least 20%), 36 months, standard cover."""
    floor = int(policy.min_down_ratio(vehicle.category) * 100)
    term = 36 if 36 <= policy.max_term_for(vehicle.category) else policy.max_term_for(vehicle.category)
    return BuilderForm(
        down=max(floor, 20), term=term, residual=0,
        insurance=product.packs["standard"].coverages if "standard" in product.packs else frozenset({"ctpl"}),
        deposit_free=False, extras_financed=True, timing="arrears", groups=coverage_groups(product),
    )


def parse_form(args: MultiMapping, vehicle: Vehicle, product: Product, policy: Policy) -> BuilderForm:
    """Read the builder's fields from ``args``; a bad field keeps its default and adds an error."""
    form = default_form(vehicle, product, policy)
    errors: list[FieldError] = []
    form.down = _percent(args.get("down"), "down", form.down, 0, 90, errors)
    form.residual = _percent(args.get("residual"), "residual", form.residual, 0, 90, errors)
    term_raw = args.get("term")
    if term_raw:
        term = bounded_int(term_raw, 1, 1200)
        if term in product.terms:
            form.term = term
        else:
            errors.append(error("term", "unknown_option", value=term_raw[:20]))
    if "ins" in args or args.get("submitted") or any(group in args for group in form.groups):
        single = {c.code for c in product.groups()[0]}
        chosen = {c for c in args.getlist("ins") if c in single}
        for group, codes in form.groups.items():
            picked = args.get(group, "")
            if picked in codes:
                chosen.add(picked)
            elif picked:
                errors.append(error(group, "unknown_option", value=picked[:20]))
        form.insurance = frozenset(chosen)
    deposit = args.get("deposit")
    if deposit in ("deposit", "free"):
        form.deposit_free = deposit == "free"
    extras = args.get("extras")
    if extras in ("financed", "upfront"):
        form.extras_financed = extras == "financed"
    timing = args.get("timing")
    if timing in ("arrears", "advance"):
        form.timing = timing
    form.budget = (args.get("budget") or "").strip()[:20]
    form.compare = [c for c in args.getlist("cmp") if _usable(decode(c), product)][:MAX_COMPARE]
    form.errors = errors
    return form


def _usable(choice: PlanChoice | None, product: Product) -> bool:
    """A decoded comparison code the product can price (its terms, valid coverages)."""
    if choice is None or choice.term not in product.terms:
        return False
    try:
        product.check_coverages(choice.insurance)
    except PlanInputError:
        return False
    return True


def encode(choice: PlanChoice) -> str:
    """A short, URL-safe code for a plan choice, e.g. ``20-36-30-ctpl+damage+tpl_1m-D-f-a``."""
    return "-".join([
        str(int(choice.down_ratio * 100)),
        str(choice.term),
        str(int(choice.residual_ratio * 100)),
        "+".join(sorted(choice.insurance)) or "none",
        "F" if choice.deposit_free else "D",
        "f" if choice.extras_financed else "u",
        "v" if choice.timing == "advance" else "a",
    ])


def decode(code: str) -> PlanChoice | None:
    """The plan choice of a code made by :func:`encode`, or None when the code is malformed."""
    parts = code.split("-")
    if len(parts) != 7:
        return None
    down_raw, term_raw, residual_raw, ins, deposit, extras, timing = parts
    down, term, residual = bounded_int(down_raw, 0, 90), bounded_int(term_raw, 1, 120), bounded_int(residual_raw, 0, 90)
    if down is None or term is None or residual is None:
        return None
    coverages = frozenset() if ins == "none" else frozenset(ins.split("+"))
    if not all(CODE.fullmatch(c) for c in coverages) or deposit not in "DF" or extras not in "fu" or timing not in "av":
        return None
    return PlanChoice(Decimal(down) / 100, term, coverages, Decimal(residual) / 100,
                      deposit == "F", extras == "f", "advance" if timing == "v" else "arrears")


def with_compare(codes: Sequence[str], code: str) -> list[str]:
    """``codes`` with ``code`` appended (once), keeping the newest :data:`MAX_COMPARE`."""
    kept = [c for c in codes if c != code] + [code]
    return kept[-MAX_COMPARE:]
