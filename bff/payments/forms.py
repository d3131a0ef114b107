"""Amounts typed on the payment forms (a refund, a closing's deduction): yuan as typed → fen, checked in one place.

``Decimal`` parses far more than an amount: ``NaN``, ``Infinity``, ``1e30`` (whose ``quantize`` to fen raises
``InvalidOperation``: the context holds 28 digits) or ``1e-30``. Everything but a plain amount of at most two decimals
within bounds is refused here, so a view answers its field error (422), never a 500.
"""

from __future__ import annotations

from decimal import Decimal
from decimal import InvalidOperation

#: ¥10 million: far above any deposit, payment or deduction, a typo guard
MAX_YUAN = Decimal("10000000")
MAX_CHARS = 32  # what a form field may carry to the parser


def yuan_to_fen(raw: str, *, blank: int | None = None, least: int = 0) -> int | None:
    """Fen for ``raw`` yuan (``,``, ``¥``, ``￥`` and spaces ignored), or None when it is not an amount of at most
    two decimals between ``least`` fen and :data:`MAX_YUAN`. ``blank``: the value of an empty field (None: refused)."""
    text = raw.replace(",", "").replace("¥", "").replace("￥", "").strip()
    if not text:
        return blank
    if len(text) > MAX_CHARS:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    # bounds before any arithmetic: comparing a finite Decimal never raises, quantizing a huge one does
    if not value.is_finite() or value > MAX_YUAN or value < -MAX_YUAN:
        return None
    cents = value.quantize(Decimal("0.01"))
    if cents != value:  # more than two decimals: 1.234, 1e-30
        return None
    fen = int(cents * 100)
    return fen if fen >= least else None
