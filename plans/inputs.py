"""Parse raw user input (CLI flags, JSON, form fields) into validated requests, collecting every field error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import error
from plans.money import ZERO
from plans.money import fen
from plans.money import to_decimal
from plans.policy import Category
from plans.policy import Policy
from plans.policy import Reason
from plans.product import PlanChoice
from plans.product import Product
from plans.quote import TIMINGS
from plans.quote import Charge
from plans.quote import QuoteRequest
from plans.quote import Timing
from plans.quote import check_principal

MAX_PRICE = Decimal("100000000")  # ¥100 million: no passenger or light commercial vehicle costs more
MAX_RATE = Decimal("1")  # 100% a year: far beyond any lawful rate, only a guard against absurd input
MAX_CHARGE = Decimal("10000000")
MAX_BUDGET = Decimal("100000000")  # a monthly budget, CNY: the same bound on the web, the API and the CLI
RATE_PLACES = 6  # a nominal rate has at most 6 decimals (0.059900); more is noise or an attack on the maths
#: A number written as a JSON string in ``strict`` mode (the JSON API): digits, an optional point and digits,
#: optionally after a minus (refused as negative); no spaces, exponent, thousands separator or "NaN". The
#: API's OpenAPI document states each field's range with plans.money.decimal_pattern over this syntax.
STRICT_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
STRICT_INTEGER = re.compile(r"[0-9]+")


def bounded_int(raw: object, low: int, high: int) -> int | None:
    """``raw`` as an int in [low, high] if it is an integer literal (ASCII digits, optional sign), else None.

    ``"²".isdigit()`` is True in Python and ``int()`` of a 5,000-digit string raises, so both are refused
    here before any conversion; so are the strings ``"36.0"`` and ``"3.6e1"`` (a form value is a literal). The
    JSON number ``36.0`` is the integer 36 (JSON has one number type).
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, float) and raw.is_integer():  # JSON 36.0 is the integer 36 (whole_number)
        raw = int(raw)
    if isinstance(raw, int):
        return raw if low <= raw <= high else None
    text = str(raw).strip()
    digits = text[1:] if text[:1] in "+-" else text
    significant = digits.lstrip("0") or "0"  # "0036" is 36, however many zeros lead
    if not (digits.isascii() and digits.isdigit()) or len(significant) > 12:
        return None
    value = -int(significant) if text.startswith("-") else int(significant)
    return value if low <= value <= high else None


def whole_number(value: object) -> bool:
    """A JSON integer: ``36`` or ``36.0`` (JSON has one number type; JSON Schema's ``integer`` is any whole
    number), never ``true``."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


class _Collector:
    """Reads fields of ``raw``, collecting every error. ``strict`` (the JSON API): only ``null`` or a missing
    key is "not given" (not ``""``), and a number is a JSON number or a :data:`STRICT_DECIMAL` string, so that
    what the API takes is exactly what its OpenAPI document describes; forms and the CLI stay lenient."""

    def __init__(self, raw: Mapping[str, object], explicit: bool = True, strict: bool = False) -> None:
        self.raw = raw
        self.explicit = explicit
        self.strict = strict
        self.errors: list[FieldError] = []

    def present(self, name: str) -> bool:
        value = self.raw.get(name)
        return value is not None and (self.strict or str(value).strip() != "")

    def strict_refusal(self, name: str, *, integer: bool = False, strictly_positive: bool = False) -> str | None:
        """In strict mode, the error code for a value that is not a JSON number or a plain decimal string."""
        value = self.raw[name]
        if not self.strict or (isinstance(value, int | float) and not isinstance(value, bool)):
            return None
        if not isinstance(value, str):
            return "not_an_integer" if integer else "not_a_number"
        if integer:
            return None if STRICT_INTEGER.fullmatch(value) else "not_an_integer"
        if not STRICT_DECIMAL.fullmatch(value):
            return "not_a_number"
        if value.startswith("-"):  # "-0" too: a sign is not part of an amount or a ratio
            return "not_positive" if strictly_positive else "negative"
        return None

    def decimal(self, name: str, *, required: bool = False, default: Decimal | None = None,
                minimum: Decimal = ZERO, maximum: Decimal, strictly_positive: bool = False,
                as_percent_limit: bool = False) -> Decimal | None:
        if not self.present(name):
            if required:
                self.errors.append(error(name, "required"))
            return default
        refused = self.strict_refusal(name, strictly_positive=strictly_positive)
        if refused == "negative" and as_percent_limit and not self.explicit:  # as below: the whole range
            self.errors.append(error(name, "ratio_range", max=f"{(maximum * 100).normalize():f}"))
            return None
        if refused:
            self.errors.append(error(name, refused))
            return None
        try:
            value = to_decimal(self.raw[name])
        except ValueError:
            self.errors.append(error(name, "not_a_number"))
            return None
        if strictly_positive and value <= 0:
            self.errors.append(error(name, "not_positive"))
            return None
        if value < minimum:
            if as_percent_limit and not self.explicit:  # a plan's ratio: say the whole range it may take
                self.errors.append(error(name, "ratio_range", max=f"{(maximum * 100).normalize():f}"))
            else:
                self.errors.append(error(name, "negative"))
            return None
        if value > maximum:
            if as_percent_limit:
                self.errors.append(error(name, "ratio_range", max=f"{(maximum * 100).normalize():f}"))
            else:
                self.errors.append(error(name, "too_large", limit=f"{maximum:,}"))
            return None
        return value

    def integer(self, name: str, low: int, high: int, *, required: bool = False,
                range_code: str = "out_of_range") -> int | None:
        """A whole number in [low, high]; ``range_code`` names the error for one outside it."""
        if not self.present(name):
            if required:
                self.errors.append(error(name, "required"))
            return None
        if self.strict_refusal(name, integer=True):
            self.errors.append(error(name, "not_an_integer"))
            return None
        try:
            number = to_decimal(self.raw[name])
        except ValueError:
            self.errors.append(error(name, "not_an_integer"))
            return None
        if number != number.to_integral_value():
            self.errors.append(error(name, "not_an_integer"))
            return None
        if not low <= number <= high:  # compared as a Decimal: int("1e300000") would take seconds
            self.errors.append(error(name, range_code, min=low, max=high))
            return None
        return int(number)


def parse_quote_request(raw: Mapping[str, object], policy: Policy, *, strict: bool = False) -> QuoteRequest:
    """Validate an explicit quote. Keys (all optional but price, term, rate and one down-payment key):

    ``price``, ``down_payment`` (CNY) or ``down_ratio``, ``term`` (months), ``rate`` (nominal annual,
    a fraction), ``residual_ratio``, ``timing`` (arrears|advance), ``fee_upfront``, ``fee_financed``,
    ``insurance_upfront``, ``insurance_financed``, ``deposit_ratio``. ``strict``: the JSON API's rules
    (:class:`_Collector`; ``timing`` exactly ``arrears`` or ``advance``).

    Raises :class:`PlanInputError` with every problem found, not just the first.
    """
    c = _Collector(raw, strict=strict)
    price = c.decimal("price", required=True, maximum=MAX_PRICE, strictly_positive=True)
    if price is not None and fen(price) <= 0:  # positive, but nothing once in fen (5e-324): no price to divide by
        c.errors.append(error("price", "below_one_fen"))
        price = None
    down: Decimal | None = None
    if c.present("down_payment"):
        down = c.decimal("down_payment", maximum=MAX_PRICE)
    elif c.present("down_ratio"):
        ratio = c.decimal("down_ratio", maximum=Decimal(1), as_percent_limit=True)
        down = fen(ratio * price) if ratio is not None and price is not None else None
    else:
        down = ZERO
    if down is not None and price is not None and down > price:
        key = "down_payment" if c.present("down_payment") else "down_ratio"
        c.errors.append(error(key, "down_above_price"))
        down = None
    term = c.integer("term", policy.min_term, policy.max_term, required=True, range_code="term_range")
    rate = c.decimal("rate", required=True, maximum=MAX_RATE, as_percent_limit=True)
    if rate is not None and rate != rate.quantize(Decimal(1).scaleb(-RATE_PLACES)):
        c.errors.append(error("rate", "too_many_decimals", places=RATE_PLACES))
        rate = None
    residual_ratio = c.decimal("residual_ratio", default=ZERO, maximum=Decimal("0.99"), as_percent_limit=True)
    deposit_ratio = c.decimal("deposit_ratio", default=ZERO, maximum=Decimal("0.5"), as_percent_limit=True)
    timing_raw: object = str(raw.get("timing") or "arrears").strip().lower()
    if strict:  # exactly one of TIMINGS, or not given
        timing_raw = "arrears" if raw.get("timing") is None else raw.get("timing")
    if timing_raw not in TIMINGS:
        c.errors.append(error("timing", "timing"))
    charges = {
        key: c.decimal(key, default=ZERO, maximum=MAX_CHARGE)
        for key in ("fee_upfront", "fee_financed", "insurance_upfront", "insurance_financed")
    }
    if c.errors or None in (price, down, term, rate, residual_ratio, deposit_ratio) or None in charges.values():
        raise PlanInputError(c.errors)
    assert price is not None and down is not None and term is not None and rate is not None
    assert residual_ratio is not None and deposit_ratio is not None
    timing: Timing = "advance" if timing_raw == "advance" else "arrears"
    fees = tuple(
        Charge(code, fen(amount), financed)
        for code, amount, financed in (("fee", charges["fee_upfront"], False), ("fee", charges["fee_financed"], True))
        if amount
    )
    premiums = tuple(
        Charge(code, fen(amount), financed)
        for code, amount, financed in (
            ("insurance", charges["insurance_upfront"], False),
            ("insurance", charges["insurance_financed"], True),
        )
        if amount
    )
    request = QuoteRequest(fen(price), fen(down), term, rate, residual_ratio, timing, fees, premiums, deposit_ratio)
    check_principal(request)
    return request


def parse_budget(raw: object, name: str = "budget", *, strict: bool = False) -> Decimal:
    """A monthly budget in CNY: a number above 0 and at most :data:`MAX_BUDGET` (``strict``: as the JSON API
    takes numbers, :class:`_Collector`)."""
    if raw is None or (not strict and str(raw).strip() == ""):
        raise PlanInputError([error(name, "required")])
    refused = _Collector({name: raw}, strict=strict).strict_refusal(name, strictly_positive=True)
    if refused:
        raise PlanInputError([error(name, refused)])
    try:
        value = to_decimal(raw)
    except ValueError:
        raise PlanInputError([error(name, "not_a_number")]) from None
    if value <= 0:
        raise PlanInputError([error(name, "not_positive")])
    if value > MAX_BUDGET:
        raise PlanInputError([error(name, "too_large", limit=f"{MAX_BUDGET:,}")])
    return value


def parse_plan_choice(raw: Mapping[str, object], product: Product, policy: Policy, *,
                      strict: bool = False) -> PlanChoice:
    """A catalogue plan from JSON-like input: ``down_ratio``, ``term`` (one of the product's terms),
    ``insurance`` (coverage codes), ``residual_ratio``, ``deposit_free`` and ``extras_financed`` (booleans),
    ``timing``. Missing keys take the builder's defaults; every problem is reported at once. ``strict``: the
    JSON API's numbers (:class:`_Collector`; a term string is digits only)."""
    c = _Collector(raw, explicit=False, strict=strict)
    down = c.decimal("down_ratio", default=Decimal("0.2"), maximum=Decimal("0.9"), as_percent_limit=True)
    residual = c.decimal("residual_ratio", default=ZERO, maximum=Decimal("0.9"), as_percent_limit=True)
    term = 36
    if "term" in raw:
        parsed = None if strict and c.strict_refusal("term", integer=True) else bounded_int(raw["term"], -(10**12),
                                                                                            10**12)
        if parsed is None:
            c.errors.append(error("term", "not_an_integer"))
        elif not policy.min_term <= parsed <= policy.max_term:
            c.errors.append(error("term", "term_range", min=policy.min_term, max=policy.max_term))
        elif parsed not in product.terms:  # the product prices only its listed terms
            c.errors.append(error("term", "unknown_option", value=str(parsed)))
        else:
            term = parsed
    insurance = raw.get("insurance", sorted(product.packs["standard"].coverages))
    coverages: frozenset[str] = frozenset()
    if not isinstance(insurance, list) or not all(isinstance(code, str) for code in insurance):
        c.errors.append(error("insurance", "unknown_option", value="insurance"))
    else:
        coverages = frozenset(insurance)
        try:
            product.check_coverages(coverages)
        except PlanInputError as exc:
            c.errors.extend(exc.errors)
    flags = {}
    for key, default in (("deposit_free", False), ("extras_financed", True)):
        value = raw.get(key, default)
        if not isinstance(value, bool):  # "false" is a string, and bool("false") is True
            c.errors.append(error(key, "not_boolean"))
            value = default
        flags[key] = value
    timing = raw.get("timing", "arrears")
    if timing not in TIMINGS:
        c.errors.append(error("timing", "timing"))
    if c.errors or down is None or residual is None:
        raise PlanInputError(c.errors)
    return PlanChoice(down, term, coverages, residual, flags["deposit_free"], flags["extras_financed"],
                      "advance" if timing == "advance" else "arrears")


def explicit_reasons(request: QuoteRequest, apr: Decimal, policy: Policy, category: Category) -> tuple[Reason, ...]:
    """The policy's verdict on a quote from explicit figures (insurance cover unknown: not assessed)."""
    return policy.check(
        category, down_ratio=request.down_payment / request.price, term=request.term,
        residual_ratio=request.residual_ratio, apr=apr, insurance=None, deposit_free=request.deposit_ratio == 0,
    )


def parse_category(raw: Mapping[str, object]) -> Category:
    """The vehicle category of an explicit quote: ``condition``, ``usage``, ``powertrain`` (defaults new,
    personal, ice); an unknown value is a field error."""
    errors: list[FieldError] = []
    values: dict[str, str] = {}
    for key, allowed in (("condition", ("new", "used")), ("usage", ("personal", "commercial")),
                         ("powertrain", ("ice", "nev"))):
        value = raw.get(key, allowed[0])
        if value not in allowed:
            errors.append(error(key, "unknown_option", value=str(value)[:20]))
            value = allowed[0]
        values[key] = str(value)
    if errors:
        raise PlanInputError(errors)
    return Category(values["condition"], values["usage"], values["powertrain"])  # type: ignore[arg-type]
