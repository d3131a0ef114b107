"""plans.money.decimal_pattern: the OpenAPI patterns that state a range on decimal strings match exactly the
strings whose value lies in the range, compared with Decimal over every short decimal string."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest

from plans.money import decimal_pattern


def decimal_strings() -> list[str]:
    """Every decimal string of 0–2 leading zeros, 1–3 more integer digits and 0–3 decimals over a few digits,
    and the bounds' neighbours written out."""
    digits = "01259"
    found = {"100000000", "100000000.0", "100000000.00", "100000000.01", "99999999.99", "10000000", "10000000.5",
             "1.0000001", "1.000000", "0.0000001", "0.000001", "0.1234567", "0.1234560", "0000.0", "00", ".5", "5.",
             "-1", "1e3", " 1", "1,000", "0.99", "0.990", "0.991", "0.9", "0.90", "0.901", "0.5", "0.50", "0.501"}
    for zeros in range(3):
        for n in range(1, 4):
            for whole in itertools.product(digits, repeat=n):
                base = "0" * zeros + "".join(whole)
                found.add(base)
                for m in range(1, 4):
                    for frac in itertools.product("0159", repeat=m):
                        found.add(f"{base}.{''.join(frac)}")
    return sorted(found)


STRINGS = decimal_strings()
SYNTAX = re.compile(r"[0-9]+(\.[0-9]+)?")


@pytest.mark.parametrize(("maximum", "positive", "places"), [
    ("100000000", False, None), ("100000000", True, None), ("10000000", False, None), ("1", False, None),
    ("1", False, 6), ("0.9", False, None), ("0.99", False, None), ("0.5", False, None), ("100000000", False, 2),
    ("100000000", True, 2), ("60", False, None), ("105", True, 1), ("1", True, 6),
])
def test_the_pattern_matches_exactly_the_range(maximum: str, positive: bool, places: int | None) -> None:
    pattern = re.compile(decimal_pattern(Decimal(maximum), positive=positive, places=places))
    for text in STRINGS:
        if SYNTAX.fullmatch(text):
            value = Decimal(text)
            expected = (0 < value if positive else 0 <= value) and value <= Decimal(maximum) and (
                places is None or value == value.quantize(Decimal(1).scaleb(-places)))
        else:
            expected = False
        assert bool(pattern.fullmatch(text)) == expected, (text, pattern.pattern)
