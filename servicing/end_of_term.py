"""The end of the term (租赁期届满, issue 18 §6): the figures of the lessee's three choices, in integer fen, pure.

As the contract words them (contract/document/templates/contract_text.html 第七条, products from 2026.12):

- the final rent (尾付租金, the balloon) is a rent, owed whatever the lessee chooses;
- **purchase** (留购): the final rent and the nominal purchase price (留购价) paid, the title passes. The price is the
  contract's, frozen with the lease (``terms["purchase_price"]``: 0.00 in the contracts before the price was stated,
  whose balloon was itself the purchase-option price). A lease whose terms do not state it at all (none signed so
  far: a synthetic one) takes :data:`DEFAULT_PURCHASE_PRICE`, ¥100, the product's own default
  (plans/product.py ``EndOfTerm``) — shown as a default, never as the contract's;
- **return** (退还车辆): the car goes back and stands for the final rent (the contract: its value offsets the final
  rent); the dealer's inspection charges what the product file lists (:class:`plans.product.ReturnTerms`, from
  product 2026.12-3: km over the allowance × the rate, each damage item found at its fixed charge — a product
  version without them charges nothing for the car); the lessee owes those charges and any rent still unpaid;
- **refinance** (再融资): the final rent still unpaid becomes the financed amount of a new application.

The deposit (保证金) settles what is owed at the end as the contract's 第五条 and today's closing do
(bff/payments/settlement.py: a deduction of at most the deposit, the rest refunded): :func:`deposit_settlement` —
the deduction is what the deposit covers, the refund what is left of it, ``owed`` what it does not cover; none is
ever negative.

The options are shown from :data:`WINDOW_DAYS` days before the term's end (``ends_on``) while the lease is active.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any

from plans.handover import MAX_ODOMETER_KM
from plans.money import fen
from plans.product import PlanChoice
from plans.product import ReturnTerms
from servicing.arrears import SHANGHAI
from servicing.calendar import BusinessCalendar

#: the options are shown this many days before the term's end (the issue's 60; the contract asks the lessee's
#: choice ``notice_days`` — 30 — before it)
WINDOW_DAYS = 60
#: the purchase price of a lease whose terms state none (fen): the product's default, ¥100 (plans/product.py)
DEFAULT_PURCHASE_PRICE = 10_000
PURCHASE, RETURN, REFINANCE = "purchase", "return", "refinance"
OPTIONS = (PURCHASE, RETURN, REFINANCE)
#: a whole number as typed or stated: ASCII digits only (``str.isdigit`` also takes ``²`` or ``١``, which ``int``
#: then refuses — a 500 where a field error was due), at most 9 of them
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
#: a refinance not approved: the lessee may choose another way within this many working days of the result (第七条:
#: 审核未通过的，承租人可于收到结果之日起 5 个工作日内改选其他方式)
RECHOOSE_WORKING_DAYS = 5


def whole_number(text: str) -> int | None:
    """``text`` as a whole number when it is one written in ASCII digits (at most 9), else None."""
    return int(text) if WHOLE_NUMBER.fullmatch(text) else None


class ReturnRefused(ValueError):
    """An inspection the rules refuse: ``field`` is the form's field, ``zh``/``en`` the reason."""

    def __init__(self, field: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.field, self.zh, self.en = field, zh, en


def window_opens(ends_on: date) -> date:
    """The first day the end-of-term options are shown."""
    return ends_on - timedelta(days=WINDOW_DAYS)


def in_window(ends_on: date, today: date) -> bool:
    """Whether the options are shown on the business date ``today`` (from :func:`window_opens` on, past the end too:
    a lessee who has not chosen yet still may)."""
    return today >= window_opens(ends_on)


def declined_on(at: datetime) -> date:
    """The day a refinancing application was declined (``at``, its ``application_events`` moment): its date in
    Beijing time, the day the lessee receives the result."""
    return at.astimezone(SHANGHAI).date()


def rechoose_until(calendar: BusinessCalendar, declined: date) -> date:
    """The last day the lessee whose refinance was declined on ``declined`` may choose another way: the
    :data:`RECHOOSE_WORKING_DAYS`-th working day after it."""
    return calendar.add_business_days(declined, RECHOOSE_WORKING_DAYS)


def may_choose_again(calendar: BusinessCalendar, declined: date, today: date) -> bool:
    """Whether the business date ``today`` is within the days to choose again after a refinance declined on
    ``declined`` (the business date may still be the day before the decline's: open too)."""
    return today <= rechoose_until(calendar, declined)


@dataclass(frozen=True)
class PurchasePrice:
    fen: int
    stated: bool  # False: the terms state none, :data:`DEFAULT_PURCHASE_PRICE` stands in


def purchase_price(terms: Mapping[str, Any]) -> PurchasePrice:
    """The purchase price (留购价) the lease's frozen contract terms state, in fen; the default when they state none."""
    value = terms.get("purchase_price")
    if value is None:
        return PurchasePrice(DEFAULT_PURCHASE_PRICE, False)
    amount = Decimal(str(value)) * 100
    if amount != amount.to_integral_value() or amount < 0:
        raise ValueError(f"purchase price {value!r} is not an amount in fen")
    return PurchasePrice(int(amount), True)


@dataclass(frozen=True)
class DepositSettlement:
    """What the deposit does with ``charges`` fen owed at the end: ``deduction`` (kept, at most the deposit),
    ``refund`` (the rest of the deposit) and ``owed`` (what the deposit does not cover)."""

    charges: int
    deposit: int
    deduction: int
    refund: int
    owed: int


def deposit_settlement(deposit: int, charges: int) -> DepositSettlement:
    """The deposit against what is owed: deducted up to what it holds, the rest refunded, the shortfall owed."""
    if deposit < 0 or charges < 0:
        raise ValueError("a deposit and the charges are never negative")
    deduction = min(deposit, charges)
    return DepositSettlement(charges, deposit, deduction, deposit - deduction, charges - deduction)


@dataclass(frozen=True)
class PurchaseFigures:
    """Keeping the car: the final rent still unpaid, the purchase price, the rents and late charges still unpaid;
    the deposit first offsets them (the contract's 第五条), ``to_pay`` is the rest, ``refund`` what is left of it."""

    final_rent: int
    price: PurchasePrice
    arrears: int
    deposit: DepositSettlement

    @property
    def total(self) -> int:
        return self.final_rent + self.price.fen + self.arrears

    @property
    def to_pay(self) -> int:
        return self.deposit.owed

    @property
    def refund(self) -> int:
        return self.deposit.refund


def purchase_figures(final_rent: int, price: PurchasePrice, arrears: int, deposit: int) -> PurchaseFigures:
    """The figures of keeping the car (all fen)."""
    if final_rent < 0 or arrears < 0:
        raise ValueError("amounts owed are never negative")
    return PurchaseFigures(final_rent, price, arrears, deposit_settlement(deposit, final_rent + price.fen + arrears))


@dataclass(frozen=True)
class DamageCharge:
    code: str
    name_zh: str
    name_en: str
    charge: int  # fen


@dataclass(frozen=True)
class ReturnCharges:
    """A returned car's charges: the km driven since the handover, the allowance, the excess and its charge, each
    damage item found and their sum (fen)."""

    driven_km: int
    allowance_km: int
    excess_km: int
    excess_mileage_charge: int
    damage: tuple[DamageCharge, ...]

    @property
    def damage_charge(self) -> int:
        return sum(d.charge for d in self.damage)

    @property
    def total(self) -> int:
        return self.excess_mileage_charge + self.damage_charge


def allowance_km(terms: ReturnTerms, term_months: int) -> int:
    """The km a lease of ``term_months`` may drive: the yearly allowance × the years, rounded up to the km."""
    return -(-terms.allowance_km_per_year * term_months // 12)


def return_charges(terms: ReturnTerms | None, term_months: int, handover_km: int, reading_km: int,
                   damage_codes: Iterable[str]) -> ReturnCharges:
    """The charges of a car returned with the odometer at ``reading_km`` (``handover_km`` at the handover) and the
    damage items ``damage_codes`` found. ``terms`` None (a product version that stated none): no charges, the mileage
    still recorded. Raises :class:`ReturnRefused` for a reading below the handover's (or beyond any odometer) or an
    item the product does not list."""
    if not 0 <= reading_km <= MAX_ODOMETER_KM:
        raise ReturnRefused("mileage", "请填写里程表读数（公里）", "Enter the odometer reading (km)")
    if reading_km < handover_km:
        raise ReturnRefused("mileage", f"里程表读数不能少于交车时的 {handover_km} 公里",
                            f"The reading cannot be less than the {handover_km} km at the handover")
    driven = reading_km - handover_km
    codes = list(dict.fromkeys(damage_codes))
    if terms is None:
        if codes:
            raise ReturnRefused("damage", "该租约的产品未列明车损收费项目",
                                "This lease's product lists no damage items")
        return ReturnCharges(driven, driven, 0, 0, ())
    damage = []
    for code in codes:
        item = terms.item(code)
        if item is None:
            raise ReturnRefused("damage", "请从列表中选择车损项目", "Choose the damage items from the list")
        damage.append(DamageCharge(item.code, item.name_zh, item.name_en, int(fen(item.charge) * 100)))
    allowance = allowance_km(terms, term_months)
    excess = max(0, driven - allowance)
    excess_charge = int(fen(Decimal(excess) * terms.excess_mileage_rate) * 100)
    return ReturnCharges(driven, allowance, excess, excess_charge, tuple(damage))


def return_settlement(charges: ReturnCharges, arrears: int, deposit: int) -> DepositSettlement:
    """A returned car's end: its charges and the rents and late charges still unpaid against the deposit (the final
    rent offset by the car itself)."""
    if arrears < 0:
        raise ValueError("amounts owed are never negative")
    return deposit_settlement(deposit, charges.total + arrears)


def notice_days(terms: Mapping[str, Any]) -> int | None:
    """The days before the term's end by which the lessee tells the lessor their choice, as the lease's frozen contract
    terms state them (``terms["end_of_term"]["notice_days"]``, else ``terms["notice_days"]``); None when they state
    none (the page then names no figure rather than one the contract may not have)."""
    section = terms.get("end_of_term")
    value = section.get("notice_days") if isinstance(section, Mapping) else None
    value = terms.get("notice_days") if value is None else value
    days = _stated_days(value)
    return days if days is not None and 0 < days <= 365 else None


def _stated_days(value: object) -> int | None:
    """A number of days as frozen terms state it (an int or its ASCII digits), else None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return value if isinstance(value, int) else whole_number(value)


def return_window_days(terms: Mapping[str, Any]) -> int:
    """How many days before the term's end the lease's frozen contract terms let the car come back
    (``terms["end_of_term"]["return_window_days"]``, else ``terms["return_window_days"]``); 0 when they state none —
    the contract's 第七条 has it returned on the term's last day (于租赁期届满日将车辆交还)."""
    section = terms.get("end_of_term")
    value = section.get("return_window_days") if isinstance(section, Mapping) else None
    days = _stated_days(terms.get("return_window_days") if value is None else value)
    return days if days is not None and 0 <= days <= 365 else 0


def inspection_opens(ends_on: date, terms: Mapping[str, Any]) -> date:
    """The first business date a returned car's inspection may be recorded: the term's end less the window the
    contract allows (:func:`return_window_days`)."""
    return ends_on - timedelta(days=return_window_days(terms))


# -- refinancing the final rent (再融资) ----------------------------------------------------------------------------
def refinance_choice(down_ratios: Iterable[Decimal], min_down: Decimal, term: int,
                     insurance: Iterable[str]) -> PlanChoice:
    """The plan a refinance of the final rent is priced on (bff/servicing/refinance.py): the car, now used, at the
    final rent as its price — what the new lease buys out —, the product's smallest down payment the policy allows
    for a used car (paid towards the final rent with the financed amount: the two make the final rent), ``term``
    months, no balloon, the insurance the policy requires, a deposit, rents in arrears."""
    allowed = sorted(r for r in down_ratios if r >= min_down)
    if not allowed:
        raise ValueError("the product sells no down payment the policy allows for a used car")
    return PlanChoice(down_ratio=allowed[0], term=term, insurance=frozenset(insurance), residual_ratio=Decimal(0),
                      deposit_free=False, extras_financed=True, timing="arrears")


def kyc_reusable(passed_at: datetime | None, now: datetime, reuse_days: int, card_valid_to: str,
                 today: date) -> bool:
    """Whether an identity check passed at ``passed_at`` is reused by a new application at ``now``: within
    ``reuse_days`` after it (the policy's ``[end_of_term] kyc_reuse_days``), the ID card still valid on ``today``
    (``card_valid_to`` as the applicant's answers keep it: ``YYYY-MM-DD``, ``YYYY.MM.DD`` or ``长期``; unreadable: not
    reusable)."""
    if passed_at is None or reuse_days <= 0 or not timedelta(0) <= now - passed_at <= timedelta(days=reuse_days):
        return False
    text = card_valid_to.strip().replace(".", "-").replace("/", "-")
    if text in ("长期", "long-term", "long_term"):
        return True
    try:
        return date.fromisoformat(text) >= today
    except ValueError:
        return False


def inspection_overdue(ends_on: date, today: date, days: int) -> bool:
    """Whether a return still not inspected on ``today`` is late: more than ``days`` after the term's end."""
    return today > ends_on + timedelta(days=days)
