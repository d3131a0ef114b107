"""Parse raw user input (CLI flags, JSON, form fields) into validated requests, collecting every field error."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import error
from plans.money import ZERO
from plans.money import fen
from plans.money import to_decimal
from plans.policy import Policy
from plans.quote import TIMINGS
from plans.quote import Charge
from plans.quote import QuoteRequest
from plans.quote import Timing
from plans.quote import check_principal

MAX_PRICE = Decimal("100000000")  # ¥100 million: no passenger or light commercial vehicle costs more
MAX_RATE = Decimal("1")  # 100% a year: far beyond any lawful rate, only a guard against absurd input
MAX_CHARGE = Decimal("10000000")


def bounded_int(raw: object, low: int, high: int) -> int | None:
    """``raw`` as an int in [low, high] if it is an integer literal (ASCII digits, optional sign), else None.

    ``"²".isdigit()`` is True in Python and ``int()`` of a 5,000-digit string raises, so both are refused
    here before any conversion; so are ``"36.0"`` and ``"3.6e1"`` (a form value or JSON term is a literal).
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if low <= raw <= high else None
    text = str(raw).strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 12:
        return None
    value = int(text)
    return value if low <= value <= high else None


class _Collector:
    def __init__(self, raw: Mapping[str, object]) -> None:
        self.raw = raw
        self.errors: list[FieldError] = []

    def present(self, name: str) -> bool:
        value = self.raw.get(name)
        return value is not None and str(value).strip() != ""

    def decimal(self, name: str, *, required: bool = False, default: Decimal | None = None,
                minimum: Decimal = ZERO, maximum: Decimal, strictly_positive: bool = False,
                as_percent_limit: bool = False) -> Decimal | None:
        if not self.present(name):
            if required:
                self.errors.append(error(name, "required"))
            return default
        try:
            value = to_decimal(self.raw[name])
        except ValueError:
            self.errors.append(error(name, "not_a_number"))
            return None
        if strictly_positive and value <= 0:
            self.errors.append(error(name, "not_positive"))
            return None
        if value < minimum:
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


def parse_quote_request(raw: Mapping[str, object], policy: Policy) -> QuoteRequest:
    """Validate an explicit quote. Keys (all optional but price, term, rate and one down-payment key):

    ``price``, ``down_payment`` (CNY) or ``down_ratio``, ``term`` (months), ``rate`` (nominal annual,
    a fraction), ``residual_ratio``, ``timing`` (arrears|advance), ``fee_upfront``, ``fee_financed``,
    ``insurance_upfront``, ``insurance_financed``, ``deposit_ratio``.

    Raises :class:`PlanInputError` with every problem found, not just the first.
    """
    c = _Collector(raw)
    price = c.decimal("price", required=True, maximum=MAX_PRICE, strictly_positive=True)
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
    residual_ratio = c.decimal("residual_ratio", default=ZERO, maximum=Decimal("0.99"), as_percent_limit=True)
    deposit_ratio = c.decimal("deposit_ratio", default=ZERO, maximum=Decimal("0.5"), as_percent_limit=True)
    timing_raw = str(raw.get("timing") or "arrears").strip().lower()
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
