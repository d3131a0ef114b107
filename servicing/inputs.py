"""Parse the settlement figures a person types (``leaseline settlement-quote``): rents paid, days since, the fee
rate — collecting every field error, in plans.errors' shape, so the CLI prints them on one line (exit 2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import error
from plans.money import to_decimal
from plans.product import MAX_EARLY_SETTLEMENT_FEE
from plans.product import EarlySettlement

#: the most days a period-counted quote runs past the end of period K (issue 18 §9): a month's
MAX_DAYS = 30
FEE_RATE_PLACES = 6


@dataclass(frozen=True)
class SettlementOptions:
    paid: int
    days: int
    terms: EarlySettlement


def _integer(raw: Mapping[str, object], name: str, low: int, high: int | None, errors: list[FieldError],
             default: int | None = None) -> int | None:
    value = raw.get(name)
    if value is None or str(value).strip() == "":
        if default is None:
            errors.append(error(name, "required"))
        return default
    try:
        number = to_decimal(value)
    except ValueError:
        number = None
    if number is None or number != number.to_integral_value():
        errors.append(error(name, "not_an_integer"))
        return None
    if number < low or (high is not None and number > high):  # compared as a Decimal: "1e999999" stays cheap
        errors.append(error(name, "out_of_range", min=low, max=high if high is not None else "…"))
        return None
    return int(number)


def parse_settlement_options(raw: Mapping[str, object], term: int | None, product_terms: EarlySettlement) -> (
        SettlementOptions):
    """``paid`` (required, 0 to ``term``; ``term`` None: the quote's own figures were refused, only 0 or more is
    checked), ``days`` (0 to :data:`MAX_DAYS`, default 0) and ``fee_rate`` (0 to the product's bound, default the
    product's). Raises :class:`PlanInputError` with every problem found."""
    errors: list[FieldError] = []
    paid = _integer(raw, "paid", 0, term, errors)
    days = _integer(raw, "days", 0, MAX_DAYS, errors, default=0)
    fee_rate = product_terms.fee_rate
    value = raw.get("fee_rate")
    if value is not None and str(value).strip() != "":
        try:
            fee_rate = to_decimal(value)
        except ValueError:
            errors.append(error("fee_rate", "not_a_number"))
        else:
            if not 0 <= fee_rate <= MAX_EARLY_SETTLEMENT_FEE:
                errors.append(error("fee_rate", "ratio_range", max=f"{(MAX_EARLY_SETTLEMENT_FEE * 100).normalize():f}"))
            elif fee_rate != fee_rate.quantize(Decimal(1).scaleb(-FEE_RATE_PLACES)):
                errors.append(error("fee_rate", "too_many_decimals", places=FEE_RATE_PLACES))
    if errors or paid is None or days is None:
        raise PlanInputError(errors)
    return SettlementOptions(paid, days, EarlySettlement(fee_rate=fee_rate + 0, day_count=product_terms.day_count,
                                                         notice_working_days=product_terms.notice_working_days))
