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
