"""The fast money formatter agrees with Babel's CNY formatting in both UI locales."""

from __future__ import annotations

from decimal import Decimal

import pytest
from babel.numbers import format_currency
from hypothesis import given
from hypothesis import strategies as st

from plans.money import format_cny


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
@given(cents=st.integers(min_value=-10**12, max_value=10**12))
def test_format_cny_matches_babel(locale: str, cents: int) -> None:
    value = Decimal(cents).scaleb(-2)
    assert format_cny(value) == format_currency(value, "CNY", locale=locale).replace("CN¥", "¥")


def test_format_cny_rounds_half_up_to_the_fen() -> None:
    assert format_cny(Decimal("1234.565")) == "¥1,234.57"
    assert format_cny(Decimal("-0.5")) == "-¥0.50"
