"""Money in CNY as :class:`decimal.Decimal`, rounded half-up to the fen exactly once per amount."""

from __future__ import annotations

import decimal
import re
from decimal import ROUND_HALF_UP
from decimal import Decimal

FEN = Decimal("0.01")
THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
ZERO = Decimal("0.00")
#: Enough digits for (1 + r) ** -n over 120 periods with room to spare; quantised to the fen afterwards.
CONTEXT = decimal.Context(prec=40, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation, decimal.Overflow])


def fen(value: Decimal) -> Decimal:
    """Round an amount half-up to the fen (0.01 CNY)."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP, context=CONTEXT)


def to_decimal(value: object) -> Decimal:
    """Convert user input (str, int, Decimal; float via its shortest repr) to a finite Decimal.

    Raises :class:`ValueError` for text that is not a number, NaN and infinities.
    """
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, float):
        value = repr(value)
    text = str(value).strip()
    # ASCII only (Decimal() also reads Arabic-Indic and full-width digits); commas only as thousands
    # separators, so "1,2,3" is refused rather than read as 123.
    if not text.isascii() or ("," in text and not THOUSANDS.fullmatch(text)):
        raise ValueError("not a number")
    try:
        result = Decimal(text.replace(",", ""))
    except (decimal.InvalidOperation, ValueError) as exc:
        raise ValueError("not a number") from exc
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result + 0 if result.is_zero() else result  # no "-0.00"


def format_cny(value: Decimal) -> str:
    """``¥12,345.60`` / ``-¥12.30``: half-up to the fen, thousands separated by commas."""
    amount = fen(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


def _digit_class(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _integers_below(bound: str) -> list[str]:
    """Regex alternatives for the integers written without leading zeros ("0" for zero) below ``bound``
    (itself so written): ``"0"``, those with fewer digits, and those as long whose first differing digit is
    smaller."""
    found = [] if bound == "0" else ["0"]
    if len(bound) > 1:
        found.append("[1-9]" if len(bound) == 2 else f"[1-9][0-9]{{0,{len(bound) - 2}}}")
    for i, digit in enumerate(bound):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(bound) - i - 1
            found.append(bound[:i] + _digit_class(low, int(digit) - 1) + (f"[0-9]{{{rest}}}" if rest else ""))
    return found


def _fractions_up_to(bound: str) -> str:
    """A regex for the digits ``d…`` after the point with 0.d… at most 0.``bound`` (no trailing zeros)."""
    if not bound:
        return "0+"
    found = [bound[:i] + _digit_class(0, int(d) - 1) + "[0-9]*" for i, d in enumerate(bound) if d != "0"]
    found += [bound[:i] for i in range(1, len(bound))] + [f"{bound}0*"]
    return "(?:" + "|".join(found) + ")"


def decimal_pattern(maximum: Decimal, *, positive: bool = False, places: int | None = None) -> str:
    """A regular expression (ECMA-262 and Python alike, for an OpenAPI ``pattern``) matching exactly the
    decimal strings — ASCII digits, leading zeros allowed, an optional point followed by digits; no sign,
    exponent, separator or space — whose value lies in [0, ``maximum``], or (0, ``maximum``] when
    ``positive``, with at most ``places`` decimals other than trailing zeros.

    A range cannot be stated on a string in JSON Schema, so it is stated in the pattern: the API refuses what
    its document calls invalid and takes what it calls valid (tests/unit/test_money_patterns.py checks it).
    """
    whole, _, fraction = f"{maximum.normalize():f}".partition(".")
    if places is not None and fraction:
        raise ValueError("places: only with a whole maximum")
    if positive and whole == "0":
        raise ValueError("positive: only with a maximum of at least 1")
    any_fraction = f"[0-9]{{1,{places}}}0*" if places else "[0-9]+"
    some_fraction = (f"[0-9]{{0,{places - 1}}}[1-9]0*" if places and places > 1 else "[1-9]0*" if places
                     else "[0-9]*[1-9][0-9]*")
    below = _integers_below(whole)
    parts = []
    if [b for b in below if b != "0"]:
        parts.append("(?:" + "|".join(b for b in below if b != "0") + f")(?:\\.{any_fraction})?")
    if "0" in below:
        parts.append(f"0\\.{some_fraction}" if positive else f"0(?:\\.{any_fraction})?")
    parts.append(f"{whole}(?:\\.{_fractions_up_to(fraction)})?")
    return "^0*(?:" + "|".join(parts) + ")$"
