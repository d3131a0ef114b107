"""APR by IRR of the customer's own monthly cash flows (PBOC announcement 2021 No. 3).

A rate is not money: it is solved in binary floating point (float64 gives ~15 significant digits, far
beyond the 6 decimals we disclose) and returned as a Decimal rounded half-up to 6 decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP
from decimal import Decimal

RATE_PLACES = Decimal("0.000001")


class NoSolution(ArithmeticError):
    """The cash flows have no internal rate of return (e.g. all of one sign)."""


def _npv_and_slope(rate: float, flows: Sequence[float]) -> tuple[float, float]:
    discount = 1.0 / (1.0 + rate)
    npv = 0.0
    slope = 0.0
    factor = 1.0
    for t, amount in enumerate(flows):
        npv += amount * factor
        slope -= t * amount * factor * discount
        factor *= discount
    return npv, slope


def irr(flows: Sequence[Decimal | float], guess: float = 0.01, floor: float | None = None) -> float:
    """Monthly internal rate of return of ``flows`` (index = month, period 0 first).

    With ``floor``, the smallest root at or above it, found by bracketing: a lease's flows change sign twice
    when the deposit refunded at the end exceeds the last rent and balloon, and then have a second, lower
    (even negative) root that is no rate of the credit. Pass a floor a little below the contract's monthly
    rate: the customer's NPV there is negative (fees and the deposit only add cost), and positive at a high
    enough rate when the customer receives net credit at month 0, so the root above is unique.

    Without ``floor``: Newton's method from ``guess``, falling back to bisection on (-0.99, 10).
    Raises :class:`NoSolution` when no rate solves the flows.
    """
    values = [float(v) for v in flows]
    if not (any(v > 0 for v in values) and any(v < 0 for v in values)):
        raise NoSolution("cash flows must contain both receipts and payments")
    if floor is not None:
        return _bracketed(values, floor)
    rate = guess
    for _ in range(50):
        npv, slope = _npv_and_slope(rate, values)
        if slope == 0:
            break
        step = npv / slope
        rate -= step
        if rate <= -0.99 or rate > 10:
            break
        if abs(step) < 1e-13:
            return rate
    return _bisect(values)


def _bracketed(values: list[float], floor: float) -> float:
    """The unique root above ``floor`` where NPV goes from ≤ 0 to > 0: Newton kept inside the bracket."""
    low = max(floor, -0.99)
    if _npv_and_slope(low, values)[0] > 0:
        raise NoSolution("the flows are worth more than nothing even at the floor rate")
    high = max(low + 0.01, 0.05)
    while _npv_and_slope(high, values)[0] <= 0:
        high *= 2
        if high > 10:
            raise NoSolution("no rate up to 1000% a month: the customer receives no net credit")
    rate = (low + high) / 2
    for _ in range(100):
        npv, slope = _npv_and_slope(rate, values)
        if npv > 0:
            high = rate
        else:
            low = rate
        candidate = rate - npv / slope if slope else (low + high) / 2
        if not low < candidate < high:
            candidate = (low + high) / 2
        if abs(candidate - rate) < 1e-14 or high - low < 1e-15:
            return candidate
        rate = candidate
    return rate


def _bisect(values: list[float]) -> float:
    low, high = -0.99, 10.0
    f_low = _npv_and_slope(low, values)[0]
    if f_low * _npv_and_slope(high, values)[0] > 0:
        raise NoSolution("no rate in (-99%, 1000%) per month")
    for _ in range(200):
        mid = (low + high) / 2
        f_mid = _npv_and_slope(mid, values)[0]
        if (f_mid < 0) == (f_low < 0):
            low, f_low = mid, f_mid
        else:
            high = mid
        if high - low < 1e-15:
            break
    return (low + high) / 2


def nominal_apr(monthly: float) -> Decimal:
    """Nominal annual rate = monthly IRR × 12, rounded half-up to 6 decimals (a fraction, 0.128 = 12.8%)."""
    return Decimal(repr(monthly * 12)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP) + 0  # + 0: no "-0"


def effective_rate(monthly: float) -> Decimal:
    """Effective annual rate = (1 + monthly IRR) ** 12 − 1, rounded half-up to 6 decimals."""
    return Decimal(repr((1 + monthly) ** 12 - 1)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP) + 0
