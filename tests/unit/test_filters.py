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


@pytest.mark.parametrize(("rate", "shown"), [
    ("0.062250", "6.23%"), ("0.062350", "6.24%"), ("0.000000", "0.00%"), ("-0.000000", "0.00%"), ("0.24", "24.00%"),
])
def test_percent_rounds_half_up_like_every_disclosed_figure(rate: str, shown: str) -> None:
    from flask import Flask
    from flask_babel import Babel

    from bff.filters import percent

    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        assert percent(Decimal(rate)) == shown
