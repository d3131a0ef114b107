"""One lease contract's data, parsed from the approved application's snapshot and checked to the fen.

Pure (no I/O). Money is :class:`decimal.Decimal` quantised to the fen (0.01 CNY), never float; rates are
Decimal fractions (``0.0712`` is 7.12 %). The figures and their names are those of :mod:`plans.quote`
(``financed_amount``, ``residual``, ``monthly_payment``, ``apr``, ``total_interest``, ``total_payable``,
``due_at_signing``; a schedule row is ``period, payment, principal, interest, balance``); only the contract
rate is called ``nominal_rate`` here (``annual_rate`` in :func:`plans.quote.quote_as_dict`).

The snapshot is JSON: money as decimal strings (``"12345.67"``), rates as decimal strings, dates as ISO
``YYYY-MM-DD``, ``generated_at`` as an ISO date-time with an offset. :func:`from_snapshot` shows the shape;
every problem raises :class:`ContractDataError` naming the field by its dotted path (``plan.apr``,
``schedule[3].principal``). Unknown keys are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from typing import Any
from typing import Literal

from kyc.idnumber import check_id_number
from kyc.mobile import check_mobile
from kyc.uscc import PATTERN as USCC_PATTERN
from kyc.uscc import check_char as uscc_check_char  # re-exported: the contract's company-code check
from kyc.vin import check_vin
from plans.inputs import whole_number
from plans.money import ZERO
from plans.money import decimal_pattern
from plans.money import fen
from plans.product import CARD_HOLD_DAY_BOUNDS
from plans.product import DAY_COUNTS
from plans.product import DEFAULT_DAY_BOUNDS
from plans.product import END_OF_TERM_DAY_BOUNDS
from plans.product import MAX_EARLY_SETTLEMENT_FEE
from plans.product import MAX_NOTICE_WORKING_DAYS
from plans.product import PAYEES
from plans.product import REGISTERED_IN
from plans.product import STRUCTURES
from plans.product import TITLE_DAY_BOUNDS
from plans.product import DefaultRemedies
from plans.product import EarlySettlement
from plans.product import EndOfTerm
from plans.product import Title
from plans.timeline import add_months

Timing = Literal["arrears", "advance"]
Condition = Literal["new", "used"]
TIMINGS: tuple[Timing, ...] = ("arrears", "advance")
CONDITIONS: tuple[Condition, ...] = ("new", "used")

#: Late-payment charge per day on the overdue amount when the snapshot names none (万分之五 a day, the
#: figure common in Chinese auto-finance lease contracts; the product should state its own).
DEFAULT_LATE_FEE_DAILY_RATE = Decimal("0.0005")
MAX_MONEY = Decimal("100000000.00")  # ¥100m: far above any vehicle lease
MAX_TERM = 120

#: The patterns the contract service's OpenAPI document states (contract/openapi.py): ASCII digits (``\\d``
#: also takes other scripts' digits), the range in the pattern (plans.money.decimal_pattern).
MONEY_PATTERN = decimal_pattern(MAX_MONEY, places=2)
RATE_PATTERN = "^0*0(?:\\.[0-9]{1,10}0*)?$"  # a fraction from 0 to below 1, at most 10 decimals
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_MONEY = re.compile(MONEY_PATTERN)
_RATE = re.compile(RATE_PATTERN)
_DATE = re.compile(DATE_PATTERN)
_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
#: Field-error codes of the rules no JSON Schema states, listed on the 422 of the OpenAPI document
CHECK, CONTROL_CHARACTERS, INCONSISTENT = "check", "control_characters", "inconsistent"



class ContractDataError(ValueError):
    """The snapshot (or a :class:`ContractData`) is incomplete, malformed or does not reconcile; ``code`` is
    ``invalid``, or one of :data:`CHECK`, :data:`CONTROL_CHARACTERS`, :data:`INCONSISTENT`."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


# ------------------------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Party:
    """A company party: the lessor (出租人) or the dealer, who supplies the vehicle (出卖人/供应商)."""

    name: str
    credit_code: str  # 统一社会信用代码
    address: str
    #: where the lessee asks and complains (the lessor's; empty for the dealer and in older snapshots)
    service_phone: str = ""
    service_email: str = ""


@dataclass(frozen=True)
class Lessee:
    """The lessee (承租人), a natural person identified by a resident identity card number."""

    name: str
    id_number: str
    mobile: str
    address: str


@dataclass(frozen=True)
class Vehicle:
    make: str
    model: str
    trim: str
    vin: str
    price: Decimal
    condition: Condition
    #: how many (a lease is of one car); None in contracts generated before the fuller description (issue 16 §8),
    #: whose table keeps its old rows
    quantity: int | None = None
    powertrain: str = ""  # ice | nev (POWERTRAINS)
    engine_no: str = ""  # the engine or motor number; "" while the car is not yet assigned
    mileage_km: int | None = None  # a used car's odometer at the contract


@dataclass(frozen=True)
class InsuranceLine:
    """A first-year insurance premium: financed (in the financed amount) or paid upfront at signing."""

    name: str
    premium: Decimal
    financed: bool


@dataclass(frozen=True)
class FeeLine:
    """A credit fee (service, GPS): financed or paid upfront at signing."""

    name: str
    amount: Decimal
    financed: bool
    purpose: str = ""  # what it pays for; empty in contracts generated before it was stated
    payee: str = ""  # "lessor" or "dealer"; empty in contracts generated before it was stated


#: the vehicle's powertrain as the catalogue says it (plans.policy Category): 燃油 or 新能源
POWERTRAINS = ("ice", "nev")
ENGINE_NO = re.compile(r"[A-Za-z0-9-]{5,20}")
#: what fixes the commencement date (起租日): the day of the signed handover record (contract/handover.py)
COMMENCEMENTS = ("handover_record",)


@dataclass(frozen=True)
class Commencement:
    """How the term's first day is fixed: ``by`` the handover record; the schedule's dates are those of the
    ``estimated_starts_on`` and move with the real day (the record states them), the amounts unchanged."""

    by: str
    estimated_starts_on: date


@dataclass(frozen=True)
class CardHold:
    """A deposit-free lease's card hold (预授权): ``amount`` frozen on the lessee's card, lapsing after ``days``."""

    amount: Decimal
    days: int


@dataclass(frozen=True)
class Plan:
    """The priced plan, as :class:`plans.quote.Quote` computed it."""

    term: int
    timing: Timing
    price: Decimal
    down_payment: Decimal
    financed_amount: Decimal
    residual: Decimal  # the balloon: the final rent (尾付租金), paid at the end of the term (``ends_on``)
    monthly_payment: Decimal
    apr: Decimal  # 年化利率 (IRR of the customer's cash flows × 12, PBOC 2021 No. 3), a fraction
    nominal_rate: Decimal  # the contract's nominal annual rate (plans: annual_rate), a fraction
    deposit: Decimal
    deposit_free: bool
    insurance: tuple[InsuranceLine, ...]
    fees: tuple[FeeLine, ...]
    total_interest: Decimal
    total_payable: Decimal
    due_at_signing: Decimal
    late_fee_daily_rate: Decimal = DEFAULT_LATE_FEE_DAILY_RATE
    early_settlement_fee_rate: Decimal = ZERO  # of the outstanding principal; zero: no fee
    #: the product's early-settlement terms (any day, interest accrued, fee); None in contracts generated before
    #: they were stated: settlement on a rent date at ``early_settlement_fee_rate`` (their text says so)
    early_settlement: EarlySettlement | None = None
    #: the most the lessee in default pays a year, the contract rate and the late charge together (the lessor's
    #: policy: 法发〔2017〕22号 art. 2); None in contracts generated before it was stated
    default_cost_cap: Decimal | None = None
    #: the term's last day (租赁期届满日): the balloon and the deposit's refund fall due here (plans.timeline);
    #: derived from the schedule for a snapshot that does not state it
    ends_on: date | None = None
    #: what the lessor may do when rent stays unpaid (one route, the recovered car's valuation, the GPS cure
    #: period); None in contracts generated before they were stated: their text keeps its general clause
    default_remedies: DefaultRemedies | None = None
    #: the end of the term: the purchase price (留购价) and the lessee's choices; None in contracts generated before
    #: they were stated (their balloon was the "purchase-option price", 尾款（留购价款）, and there was no other)
    end_of_term: EndOfTerm | None = None
    #: the structure, the registration and the mortgage; None in contracts generated before they were stated
    title: Title | None = None
    #: a deposit-free lease's card hold, disclosed with when it may be taken from; None for a lease with a deposit,
    #: and in deposit-free contracts generated before it was disclosed
    card_hold: CardHold | None = None
    #: what fixes the commencement date and the estimated one the schedule is dated from; None in contracts
    #: generated before it was stated (their term ran "from the contract's effect and the vehicle's delivery")
    commencement: Commencement | None = None

    @property
    def purchase_price(self) -> Decimal:
        """What the title costs at the end of the term, after the rents (0 in contracts that stated none)."""
        return self.end_of_term.purchase_price if self.end_of_term is not None else ZERO

    @property
    def late_fee_annual_rate(self) -> Decimal:
        """365 days of the late charge: what default costs a year on top of the contract rate."""
        return self.late_fee_daily_rate * 365

    @property
    def financed_fees(self) -> Decimal:
        return sum((f.amount for f in self.fees if f.financed), ZERO)

    @property
    def upfront_fees(self) -> Decimal:
        return sum((f.amount for f in self.fees if not f.financed), ZERO)

    @property
    def financed_premiums(self) -> Decimal:
        return sum((i.premium for i in self.insurance if i.financed), ZERO)

    @property
    def upfront_premiums(self) -> Decimal:
        return sum((i.premium for i in self.insurance if not i.financed), ZERO)

    @property
    def total_premiums(self) -> Decimal:
        return sum((i.premium for i in self.insurance), ZERO)

    @property
    def credit_fees(self) -> Decimal:
        return sum((f.amount for f in self.fees), ZERO)


@dataclass(frozen=True)
class Instalment:
    """One rent (租金) of the payment schedule (租金支付计划表)."""

    period: int
    due_date: date
    payment: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal  # outstanding principal after this rent; the last one is the residual


@dataclass(frozen=True)
class ContractData:
    """Everything one lease contract states. Build it with :meth:`from_snapshot`; check it with
    :meth:`reconcile` (done by :meth:`from_snapshot` and before every rendering)."""

    number: str
    lessor: Party
    lessee: Lessee
    dealer: Party
    vehicle: Vehicle
    plan: Plan
    schedule: tuple[Instalment, ...]
    generated_at: datetime  # aware, UTC
    #: False: a draft for review (watermarked 草稿 / DRAFT); True: the final text that is signed.
    signed: bool = False

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> ContractData:
        return from_snapshot(snapshot)

    @property
    def total_rent(self) -> Decimal:
        return sum((row.payment for row in self.schedule), ZERO)

    @property
    def total_principal(self) -> Decimal:
        return sum((row.principal for row in self.schedule), ZERO)

    @property
    def total_interest(self) -> Decimal:
        return sum((row.interest for row in self.schedule), ZERO)

    @property
    def last_payment(self) -> Decimal:
        return self.schedule[-1].payment

    def reconcile(self) -> None:
        """Check the figures agree to the fen, as :func:`plans.quote.quote` makes them.

        The schedule's principal parts sum to ``financed_amount − residual``; each rent is principal plus
        interest; each balance is the previous one less the principal repaid, from the financed amount down
        to the residual; and the plan's totals are the schedule's. Raises :class:`ContractDataError`.
        """
        plan, rows = self.plan, self.schedule
        if self.generated_at.tzinfo is None or self.generated_at.utcoffset() is None:
            raise ContractDataError("generated_at", "must be timezone-aware", INCONSISTENT)
        if plan.price != self.vehicle.price:
            raise ContractDataError("plan.price", "differs from the vehicle price", INCONSISTENT)
        if not 0 < plan.price - plan.down_payment:
            raise ContractDataError("plan.down_payment", "must be below the vehicle price", INCONSISTENT)
        expected_financed = plan.price - plan.down_payment + plan.financed_fees + plan.financed_premiums
        if plan.financed_amount != expected_financed:
            raise ContractDataError("plan.financed_amount", "is not price − down payment + financed fees and "
                                                            f"premiums ({expected_financed})", INCONSISTENT)
        if plan.residual >= plan.financed_amount:
            raise ContractDataError("plan.residual", "must be below the financed amount", INCONSISTENT)
        if plan.deposit_free and plan.deposit != 0:
            raise ContractDataError("plan.deposit", "must be 0.00 when the plan is deposit-free", INCONSISTENT)
        if not plan.deposit_free and plan.deposit <= 0:
            raise ContractDataError("plan.deposit", "must be above 0.00 unless the plan is deposit-free", INCONSISTENT)
        if not rows or len(rows) != plan.term:
            raise ContractDataError("schedule", f"has {len(rows)} rows for a term of {plan.term}", INCONSISTENT)
        repaid = self.total_principal
        if repaid != plan.financed_amount - plan.residual:
            raise ContractDataError(
                "schedule", f"principal parts sum to {repaid}, not financed amount − residual "
                            f"({plan.financed_amount - plan.residual})", INCONSISTENT)
        balance = plan.financed_amount
        previous_due: date | None = None
        for i, row in enumerate(rows):
            where = f"schedule[{i}]"
            if row.period != i + 1:
                raise ContractDataError(f"{where}.period", f"must be {i + 1}", INCONSISTENT)
            if previous_due is not None and row.due_date <= previous_due:
                raise ContractDataError(f"{where}.due_date", "must be after the previous due date", INCONSISTENT)
            if row.payment != row.principal + row.interest:
                raise ContractDataError(f"{where}.payment", "is not principal + interest", INCONSISTENT)
            if row.interest < 0:
                raise ContractDataError(f"{where}.interest", "must not be negative", INCONSISTENT)
            balance -= row.principal
            if row.balance != balance:
                raise ContractDataError(f"{where}.balance", f"must be {balance} (previous balance − principal)",
                                        INCONSISTENT)
            previous_due = row.due_date
        if rows[-1].balance != plan.residual:
            raise ContractDataError(f"schedule[{len(rows) - 1}].balance", "must equal the residual", INCONSISTENT)
        if plan.default_cost_cap is not None and (
                plan.nominal_rate + plan.late_fee_annual_rate > plan.default_cost_cap):
            raise ContractDataError("plan.late_fee_daily_rate", "with the contract rate, 365 days of the late charge "
                                    f"exceed the cap on the cost of default ({plan.default_cost_cap})", INCONSISTENT)
        if plan.default_remedies is not None and plan.early_settlement is None:
            # the accelerated amount is the principal outstanding as early settlement computes it (its clause)
            raise ContractDataError("plan.default_remedies", "need the early-settlement terms they refer to",
                                    INCONSISTENT)
        if plan.card_hold is not None and (not plan.deposit_free or plan.card_hold.amount <= 0):
            raise ContractDataError("plan.card_hold", "a card hold stands in for the deposit of a deposit-free plan "
                                                      "only, and holds more than 0.00", INCONSISTENT)
        if plan.end_of_term is not None and plan.default_remedies is None:
            # a returned car is valued as a recovered one (the default clause's appraisal)
            raise ContractDataError("plan.end_of_term", "needs the default terms it refers to", INCONSISTENT)
        if plan.ends_on != term_end(plan.timing, plan.term, rows):
            raise ContractDataError("plan.ends_on", "must be the term's end: the last rent's day in arrears, "
                                                    "the term's length after the first rent in advance", INCONSISTENT)
        start = plan.commencement.estimated_starts_on if plan.commencement is not None else None
        if start is not None and add_months(start, plan.term) != plan.ends_on:
            raise ContractDataError("plan.commencement.estimated_starts_on", "must be the start of the term the "
                                    "schedule's dates count from (the term's end is its length later)", INCONSISTENT)
        if plan.monthly_payment != rows[0].payment:
            raise ContractDataError("plan.monthly_payment", "differs from the first rent of the schedule", INCONSISTENT)
        if any(row.payment != plan.monthly_payment for row in rows[:-1]):
            raise ContractDataError("schedule", "every rent but the last must be the monthly payment", INCONSISTENT)
        if plan.total_interest != self.total_interest:
            raise ContractDataError("plan.total_interest", f"is not the schedule's interest ({self.total_interest})",
                                    INCONSISTENT)
        upfront = plan.down_payment + plan.upfront_fees + plan.upfront_premiums
        total_payable = upfront + self.total_rent + plan.residual + plan.purchase_price
        if plan.total_payable != total_payable:
            raise ContractDataError("plan.total_payable", "is not down payment + upfront charges + rents + "
                                                          f"residual + purchase price ({total_payable})", INCONSISTENT)
        first_rent = rows[0].payment if plan.timing == "advance" else ZERO
        due_at_signing = upfront + plan.deposit + first_rent
        if plan.due_at_signing != due_at_signing:
            raise ContractDataError("plan.due_at_signing", f"must be {due_at_signing}", INCONSISTENT)


# ------------------------------------------------------------------------------------------- parsing


class _Reader:
    """Reads typed values from one JSON object; every error names the dotted path of the field."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ContractDataError(path or "snapshot", "must be an object")
        self.data = data
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> object:
        value = self.data.get(key)
        if value is None:
            raise ContractDataError(self.where(key), "is required")
        return value

    def child(self, key: str) -> _Reader:
        return _Reader(self.raw(key), self.where(key))

    def items(self, key: str, *, required: bool = True) -> list[_Reader]:
        if not required and self.data.get(key) is None:
            return []
        value = self.raw(key)
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise ContractDataError(self.where(key), "must be a list")
        return [_Reader(item, f"{self.where(key)}[{i}]") for i, item in enumerate(value)]

    def text(self, key: str, max_length: int = 100) -> str:
        """A string of at most ``max_length`` characters as sent, not only white space; its white space
        runs become one space."""
        value = self.raw(key)
        if not isinstance(value, str):
            raise ContractDataError(self.where(key), "must be a string")
        if len(value) > max_length:  # as sent: what the document's maxLength counts
            raise ContractDataError(self.where(key), f"is longer than {max_length} characters")
        value = " ".join(value.split())
        if not value:
            raise ContractDataError(self.where(key), "is required")
        if any(unicodedata.category(c).startswith("C") for c in value):
            raise ContractDataError(self.where(key), "contains control characters", CONTROL_CHARACTERS)
        return value

    def money(self, key: str) -> Decimal:
        value = self.raw(key)
        if not isinstance(value, str) or not _MONEY.fullmatch(value):
            raise ContractDataError(self.where(key), f'must be a decimal string, at most 2 decimals and {MAX_MONEY}: '
                                                     '"12345.67"')
        return fen(Decimal(value))

    def rate(self, key: str, *, default: Decimal | None = None) -> Decimal:
        if default is not None and self.data.get(key) is None:
            return default
        value = self.raw(key)
        if not isinstance(value, str) or not _RATE.fullmatch(value):
            raise ContractDataError(self.where(key), 'must be a decimal string fraction from 0 to below 1 with at '
                                                     'most 10 decimals, e.g. "0.0712"')
        return Decimal(value)

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.raw(key)
        if not whole_number(value):
            raise ContractDataError(self.where(key), "must be an integer")
        if not low <= value <= high:  # type: ignore[operator]
            raise ContractDataError(self.where(key), f"must be between {low} and {high}")
        return int(value)  # type: ignore[call-overload]

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise ContractDataError(self.where(key), "must be true or false")
        return value

    def choice(self, key: str, options: Sequence[str]) -> str:
        value = self.raw(key)
        if value not in options:
            raise ContractDataError(self.where(key), f"must be one of {', '.join(options)}")
        return str(value)

    def day(self, key: str) -> date:
        value = self.raw(key)
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ContractDataError(self.where(key), "must be an ISO date YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ContractDataError(self.where(key), "is not a real date") from None

    def moment(self, key: str) -> datetime:
        value = self.raw(key)
        if not isinstance(value, str):
            raise ContractDataError(self.where(key), "must be an ISO date-time string")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ContractDataError(self.where(key), "must be an ISO date-time, e.g. 2026-11-25T12:01:00Z") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ContractDataError(self.where(key), "must carry a UTC offset (e.g. Z or +08:00)")
        return moment.astimezone(UTC)


def _party(r: _Reader) -> Party:
    code = r.text("credit_code", 18).upper()
    if not USCC_PATTERN.fullmatch(code):
        raise ContractDataError(r.where("credit_code"), "must be 18 characters of a unified social credit code", CHECK)
    if code[17] != uscc_check_char(code[:17]):
        raise ContractDataError(r.where("credit_code"), "check character does not match (GB 32100)", CHECK)
    phone = r.text("service_phone", 30) if r.data.get("service_phone") else ""
    if phone and not _SERVICE_PHONE.fullmatch(phone):
        raise ContractDataError(r.where("service_phone"), "must be a telephone number (digits and dashes)")
    email = r.text("service_email", 100) if r.data.get("service_email") else ""
    if email and not _EMAIL.fullmatch(email):
        raise ContractDataError(r.where("service_email"), "must be an e-mail address")
    return Party(name=r.text("name"), credit_code=code, address=r.text("address", 200), service_phone=phone,
                 service_email=email)


_SERVICE_PHONE = re.compile(r"[0-9][0-9-]{4,19}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _lessee(r: _Reader) -> Lessee:
    id_check = check_id_number(r.text("id_number", 30))
    if not id_check.valid:
        raise ContractDataError(r.where("id_number"), "; ".join(reason.text_en for reason in id_check.reasons),
                                CHECK)
    mobile = check_mobile(r.text("mobile", 30))
    if not mobile.valid:
        raise ContractDataError(r.where("mobile"), "must be an 11-digit mainland China mobile number", CHECK)
    return Lessee(name=r.text("name", 50), id_number=id_check.normalized, mobile=mobile.normalized,
                  address=r.text("address", 200))


def _vehicle(r: _Reader) -> Vehicle:
    vin = check_vin(r.text("vin", 30))
    if not vin.valid:
        raise ContractDataError(r.where("vin"), "; ".join(reason.text_en for reason in vin.reasons), CHECK)
    price = r.money("price")
    if price <= 0:
        raise ContractDataError(r.where("price"), "must be above 0.00")
    condition: Condition = "used" if r.choice("condition", CONDITIONS) == "used" else "new"
    if r.data.get("quantity") is None:  # a snapshot from before the fuller description
        return Vehicle(make=r.text("make"), model=r.text("model"), trim=r.text("trim"), vin=vin.normalized,
                       price=price, condition=condition)
    engine_no = str(r.data.get("engine_no") or "")
    if engine_no and not ENGINE_NO.fullmatch(engine_no):
        raise ContractDataError(r.where("engine_no"), "must be 5–20 letters, digits or hyphens", CHECK)
    mileage = r.integer("mileage_km", 0, 2_000_000) if r.data.get("mileage_km") is not None else None
    if condition == "used" and mileage is None:
        raise ContractDataError(r.where("mileage_km"), "a used car's contract states its mileage", INCONSISTENT)
    return Vehicle(make=r.text("make"), model=r.text("model"), trim=r.text("trim"), vin=vin.normalized,
                   price=price, condition=condition, quantity=r.integer("quantity", 1, 1),
                   powertrain=r.choice("powertrain", POWERTRAINS), engine_no=engine_no.upper(), mileage_km=mileage)


def _plan(r: _Reader, price: Decimal) -> Plan:
    timing: Timing = "advance" if r.choice("timing", TIMINGS) == "advance" else "arrears"
    insurance = tuple(InsuranceLine(i.text("name"), i.money("premium"), i.boolean("financed"))
                      for i in r.items("insurance", required=False))
    fees = tuple(FeeLine(f.text("name"), f.money("amount"), f.boolean("financed"),
                         f.text("purpose", 200) if f.data.get("purpose") else "",
                         f.choice("payee", PAYEES) if f.data.get("payee") is not None else "")
                 for f in r.items("fees", required=False))
    return Plan(
        term=r.integer("term", 1, MAX_TERM),
        timing=timing,
        price=price,
        down_payment=r.money("down_payment"),
        financed_amount=r.money("financed_amount"),
        residual=r.money("residual"),
        monthly_payment=r.money("monthly_payment"),
        apr=r.rate("apr"),
        nominal_rate=r.rate("nominal_rate"),
        deposit=r.money("deposit"),
        deposit_free=r.boolean("deposit_free"),
        insurance=insurance,
        fees=fees,
        total_interest=r.money("total_interest"),
        total_payable=r.money("total_payable"),
        due_at_signing=r.money("due_at_signing"),
        late_fee_daily_rate=r.rate("late_fee_daily_rate", default=DEFAULT_LATE_FEE_DAILY_RATE),
        early_settlement_fee_rate=r.rate("early_settlement_fee_rate", default=ZERO),
        ends_on=r.day("ends_on") if r.data.get("ends_on") is not None else None,
        default_cost_cap=r.rate("default_cost_cap") if r.data.get("default_cost_cap") is not None else None,
        early_settlement=_early_settlement(r.child("early_settlement"))
        if r.data.get("early_settlement") is not None else None,
        default_remedies=_default_remedies(r.child("default_remedies"))
        if r.data.get("default_remedies") is not None else None,
        end_of_term=_end_of_term(r) if r.data.get("end_of_term") is not None else None,
        title=_title(r.child("title")) if r.data.get("title") is not None else None,
        card_hold=_card_hold(r.child("card_hold")) if r.data.get("card_hold") is not None else None,
        commencement=_commencement(r.child("commencement")) if r.data.get("commencement") is not None else None,
    )


def _commencement(r: _Reader) -> Commencement:
    return Commencement(r.choice("by", COMMENCEMENTS), r.day("estimated_starts_on"))


def _card_hold(r: _Reader) -> CardHold:
    return CardHold(r.money("amount"), r.integer("days", *CARD_HOLD_DAY_BOUNDS))


def _days(r: _Reader, bounds: tuple[tuple[str, int, int], ...]) -> dict[str, int]:
    return {name: r.integer(name, low, high) for name, low, high in bounds}


def _title(r: _Reader) -> Title:
    return Title(structure=r.choice("structure", STRUCTURES), registered_in=r.choice("registered_in", REGISTERED_IN),
                 **_days(r, TITLE_DAY_BOUNDS))


def _end_of_term(r: _Reader) -> EndOfTerm:
    price, days = r.money("purchase_price"), _days(r.child("end_of_term"), END_OF_TERM_DAY_BOUNDS)
    try:
        return EndOfTerm(purchase_price=price, **days)
    except ValueError as exc:
        raise ContractDataError(r.where("purchase_price"), str(exc)) from exc


def _default_remedies(r: _Reader) -> DefaultRemedies:
    days = _days(r, DEFAULT_DAY_BOUNDS)
    periods, share = r.integer("overdue_periods", 1, MAX_TERM), r.rate("overdue_share")
    try:
        return DefaultRemedies(overdue_periods=periods, overdue_share=share, **days)
    except ValueError as exc:  # below the court's default rule for ending a lease (融资租赁解释 art. 5)
        raise ContractDataError(r.where("overdue_periods"), str(exc)) from exc


def _early_settlement(r: _Reader) -> EarlySettlement:
    fee_rate = r.rate("fee_rate")
    if fee_rate > MAX_EARLY_SETTLEMENT_FEE:
        raise ContractDataError(r.where("fee_rate"), f"must be at most {MAX_EARLY_SETTLEMENT_FEE}")
    return EarlySettlement(fee_rate=fee_rate, day_count=r.choice("day_count", DAY_COUNTS),
                           notice_working_days=r.integer("notice_working_days", 0, MAX_NOTICE_WORKING_DAYS))


def term_end(timing: Timing, term: int, rows: Sequence[Instalment]) -> date:
    """The term's last day as the schedule's dates give it (plans.timeline): in arrears the last rent's day, in
    advance ``term`` months after the first rent (paid on the term's first day)."""
    return rows[-1].due_date if timing == "arrears" else add_months(rows[0].due_date, term)


def _instalment(r: _Reader) -> Instalment:
    return Instalment(period=r.integer("period", 1, MAX_TERM), due_date=r.day("due_date"),
                      payment=r.money("payment"), principal=r.money("principal"),
                      interest=r.money("interest"), balance=r.money("balance"))


def from_snapshot(snapshot: Mapping[str, Any]) -> ContractData:
    """Parse and reconcile an approved application's snapshot; raises :class:`ContractDataError`.

    Shape (money and rates as strings; ``insurance``, ``fees``, ``late_fee_daily_rate`` and
    ``early_settlement_fee_rate`` optional)::

        {"number": "LL-2026-000123", "generated_at": "2026-11-25T12:01:00Z", "signed": false,
         "lessor": {"name": …, "credit_code": "91350100M000100Y43", "address": …},
         "lessee": {"name": "张三丰", "id_number": …, "mobile": "13800138000", "address": …},
         "dealer": {"name": …, "credit_code": …, "address": …},
         "vehicle": {"make": …, "model": …, "trim": …, "vin": …, "price": "229800.00", "condition": "new"},
         "plan": {"term": 36, "timing": "arrears", "down_payment": …, "financed_amount": …, "residual": …,
                  "monthly_payment": …, "apr": "0.071234", "nominal_rate": "0.0599", "deposit": …,
                  "deposit_free": false, "total_interest": …, "total_payable": …, "due_at_signing": …,
                  "ends_on": "2029-11-30",
                  "insurance": [{"name": "交强险", "premium": "950.00", "financed": true}],
                  "fees": [{"name": "服务费", "amount": "2298.00", "financed": true}]},
         "schedule": [{"period": 1, "due_date": "2026-12-25", "payment": …, "principal": …,
                       "interest": …, "balance": …}, …]}
    """
    root = _Reader(snapshot, "")
    number = root.text("number", 40)
    if not _NUMBER.fullmatch(number):
        raise ContractDataError("number", "must be 1–40 letters, digits or dashes")
    vehicle = _vehicle(root.child("vehicle"))
    rows = root.items("schedule")
    if not rows:
        raise ContractDataError("schedule", "must not be empty")
    schedule = tuple(_instalment(row) for row in rows)
    plan = _plan(root.child("plan"), vehicle.price)
    if plan.ends_on is None:  # a snapshot from before the term's end was stated: the schedule's
        plan = replace(plan, ends_on=term_end(plan.timing, plan.term, schedule))
    data = ContractData(
        number=number,
        lessor=_party(root.child("lessor")),
        lessee=_lessee(root.child("lessee")),
        dealer=_party(root.child("dealer")),
        vehicle=vehicle,
        plan=plan,
        schedule=schedule,
        generated_at=root.moment("generated_at"),
        signed=root.boolean("signed"),
    )
    data.reconcile()
    return data
