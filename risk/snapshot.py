"""The application snapshot the BFF sends for assessment: parsed and validated into typed values.

Pure (no I/O). Every problem is collected as a :class:`plans.errors.FieldError` with a dotted path
(``applicant.monthly_income``) so the API answers 422 with all field errors at once. Unknown fields are
ignored; money is a decimal string (CNY, at most two decimals), as the BFF renders it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import fields
from decimal import Decimal
from typing import Any

from plans.errors import FieldError
from plans.inputs import whole_number
from plans.money import decimal_pattern

EMPLOYMENT = ("employed", "self_employed", "civil_servant", "retired", "other")
HOUSING = ("own_outright", "mortgage", "rent", "family", "company")
KYC_STATUS = ("kyc_passed", "kyc_review", "kyc_failed")
CONDITION = ("new", "used")
BANK_ACCOUNT = ("overdrawn", "low_balance", "healthy", "no_account")  # from a bank-statement check (银行流水)
MAX_MONEY = Decimal("100000000.00")  # ¥100m: far above any vehicle lease
#: The patterns the OpenAPI document states (risk/openapi.py) are the ones checked here: ASCII digits (``\d``
#: also takes other scripts' digits), no spaces around, the range in the pattern (plans.money.decimal_pattern).
ID_SHAPE_PATTERN = "^[0-9]{17}[0-9Xx]$"
MONEY_PATTERN = decimal_pattern(MAX_MONEY, places=2)
POSITIVE_MONEY_PATTERN = decimal_pattern(MAX_MONEY, positive=True, places=2)
RATE_PATTERN = decimal_pattern(Decimal(1), places=10)
ID_SHAPE = re.compile(ID_SHAPE_PATTERN)
MONEY = re.compile(MONEY_PATTERN)
RATE = re.compile(RATE_PATTERN)

#: message texts by code: (zh-CN, en)
MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("必填", "This field is required"),
    "not_an_object": ("须为对象", "Must be an object"),
    "not_a_string": ("须为字符串", "Must be a string"),
    "not_an_integer": ("请输入整数", "Enter a whole number"),
    "not_a_number": ("请输入数字", "Enter a number"),
    "not_boolean": ("须为 true 或 false", "Must be true or false"),
    "money_format": ("金额须为最多两位小数、不超过 1 亿的非负数字字符串，如 \"28000.00\"",
                     "Money must be a non-negative decimal string of at most 100000000 with at most two decimals, "
                     "e.g. \"28000.00\""),
    "not_positive": ("必须大于 0", "Must be greater than 0"),
    "rate_format": ("利率须为 0–1 之间、最多 10 位小数的字符串，如 \"0.0599\"",
                    "A rate must be a decimal string from 0 to 1 with at most 10 decimals, such as \"0.0599\""),
    "out_of_range": ("须在 {min}–{max} 之间", "Must be between {min} and {max}"),
    "too_long": ("过长（最多 {max} 个字符）", "Too long (at most {max} characters)"),
    "unknown_option": ("未知选项：{value}", "Unknown option: {value}"),
    "id_number_format": ("身份证号须为 18 位（末位可为 X）", "An ID number has 18 characters (the last may be X)"),
}


def field_error(path: str, code: str, **params: object) -> FieldError:
    zh, en = MESSAGES[code]
    return FieldError(path, code, zh.format(**params), en.format(**params))


class SnapshotInvalid(ValueError):
    """The snapshot is malformed or partial; ``errors`` names every field and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.text_en}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Applicant:
    age: int
    id_number: str
    name: str
    monthly_income: Decimal
    employment: str
    employment_years: int | None
    housing: str
    dependants: int
    existing_loans: int
    monthly_repayments: Decimal
    mobile: str | None = None


@dataclass(frozen=True)
class Vehicle:
    id: str
    make: str
    model: str
    price: Decimal
    condition: str
    vin: str
    mileage: int | None


@dataclass(frozen=True)
class Plan:
    term: int
    down_payment: Decimal
    financed_amount: Decimal
    monthly_payment: Decimal
    residual: Decimal
    deposit: Decimal
    deposit_free: bool
    apr: Decimal


@dataclass(frozen=True)
class Kyc:
    status: str
    face_distance: float | None
    liveness: bool | None
    manual: bool


@dataclass(frozen=True)
class Device:
    ip: str
    user_agent_hash: str


@dataclass(frozen=True)
class Snapshot:
    application_id: str
    dealer_id: str
    applicant: Applicant
    vehicle: Vehicle
    plan: Plan
    kyc: Kyc
    device: Device
    bank_account_status: str | None = None  # optional: a bank-statement check, when the BFF has one

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data in the API's shape (money as ``"0.00"`` strings). Contains PII.

        Every section is flat, so it is read field by field (``dataclasses.asdict`` deep-copies each value and
        cost more than scoring the application)."""
        data: dict[str, Any] = {"application_id": self.application_id, "dealer_id": self.dealer_id}
        for name in ("applicant", "vehicle", "plan", "kyc", "device"):
            section = getattr(self, name)
            data[name] = {f.name: _plain(getattr(section, f.name)) for f in fields(section)}
        if self.bank_account_status is not None:
            data["bank_account"] = {"status": self.bank_account_status}
        if data["applicant"]["mobile"] is None:
            del data["applicant"]["mobile"]
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value.as_tuple().exponent == -2 else str(value)
    return value


class _Reader:
    """Reads typed values out of untrusted JSON, collecting field errors instead of raising at the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, code: str, **params: object) -> None:
        self.errors.append(field_error(path, code, **params))

    def section(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            self.fail(key, "required")
            return {}
        if not isinstance(value, dict):
            self.fail(key, "not_an_object")
            return {}
        return value

    def text(self, data: dict[str, Any], key: str, path: str, *, max_len: int = 128, optional: bool = False) -> Any:
        value = data.get(key)
        if value is None or (isinstance(value, str) and not value.strip() and not optional):
            if not optional:
                self.fail(path, "required")
            return None
        if not isinstance(value, str):
            self.fail(path, "not_a_string")
            return None
        if len(value) > max_len:
            self.fail(path, "too_long", max=max_len)
            return None
        return value.strip()

    def choice(self, data: dict[str, Any], key: str, path: str, options: tuple[str, ...]) -> Any:
        """Exactly one of ``options`` (not " employed ", not "EMPLOYED")."""
        value = data.get(key)
        if value is None:
            self.fail(path, "required")
            return None
        if not isinstance(value, str):
            self.fail(path, "not_a_string")
            return None
        if value not in options:
            self.fail(path, "unknown_option", value=value[:32])
            return None
        return value

    def integer(self, data: dict[str, Any], key: str, path: str, low: int, high: int,
                *, nullable: bool = False) -> Any:
        value = data.get(key)
        if value is None:
            if not nullable:
                self.fail(path, "required")
            return None
        if not whole_number(value):
            self.fail(path, "not_an_integer")
            return None
        if not low <= value <= high:
            self.fail(path, "out_of_range", min=low, max=high)
            return None
        return int(value)

    def money(self, data: dict[str, Any], key: str, path: str) -> Any:
        """A :data:`MONEY_PATTERN` string (CNY); a JSON number is refused, as the document says."""
        value = data.get(key)
        if value is None:
            self.fail(path, "required")
            return None
        if not isinstance(value, str) or not MONEY.fullmatch(value):
            self.fail(path, "money_format")
            return None
        return Decimal(value).quantize(Decimal("0.01"))

    def rate(self, data: dict[str, Any], key: str, path: str) -> Any:
        """A :data:`RATE_PATTERN` string: a fraction from 0 to 1."""
        value = data.get(key)
        if value is None:
            self.fail(path, "required")
            return None
        if not isinstance(value, str) or not RATE.fullmatch(value):
            self.fail(path, "rate_format")
            return None
        return Decimal(value)

    def boolean(self, data: dict[str, Any], key: str, path: str, *, nullable: bool = False) -> Any:
        value = data.get(key)
        if value is None:
            if not nullable:
                self.fail(path, "required")
            return None
        if not isinstance(value, bool):
            self.fail(path, "not_boolean")
            return None
        return value

    def number(self, data: dict[str, Any], key: str, path: str, low: float, high: float) -> Any:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
            self.fail(path, "not_a_number")
            return None
        if not low <= value <= high:
            self.fail(path, "out_of_range", min=low, max=high)
            return None
        return float(value)


def parse_snapshot(body: Any) -> Snapshot:
    """A validated :class:`Snapshot` from a decoded JSON body; :class:`SnapshotInvalid` lists every problem."""
    r = _Reader()
    if not isinstance(body, dict):
        raise SnapshotInvalid([field_error("body", "not_an_object")])
    application_id = r.text(body, "application_id", "application_id", max_len=64)
    dealer_id = r.text(body, "dealer_id", "dealer_id", max_len=64)

    a = r.section(body, "applicant")
    id_number = a.get("id_number") if a else None
    if a and id_number is None:
        r.fail("applicant.id_number", "required")
    elif a and (not isinstance(id_number, str) or not ID_SHAPE.fullmatch(id_number)):
        r.fail("applicant.id_number", "id_number_format")
        id_number = None
    elif a:
        id_number = id_number.upper()
    applicant = (
        r.integer(a, "age", "applicant.age", 0, 130), id_number,
        r.text(a, "name", "applicant.name", max_len=64),
        r.money(a, "monthly_income", "applicant.monthly_income"),
        r.choice(a, "employment", "applicant.employment", EMPLOYMENT),
        r.integer(a, "employment_years", "applicant.employment_years", 0, 80, nullable=True),
        r.choice(a, "housing", "applicant.housing", HOUSING),
        r.integer(a, "dependants", "applicant.dependants", 0, 30),
        r.integer(a, "existing_loans", "applicant.existing_loans", 0, 1000),
        r.money(a, "monthly_repayments", "applicant.monthly_repayments"),
        r.text(a, "mobile", "applicant.mobile", max_len=32, optional=True),
    ) if a else None

    v = r.section(body, "vehicle")
    vehicle = (
        r.text(v, "id", "vehicle.id", max_len=64), r.text(v, "make", "vehicle.make", max_len=64),
        r.text(v, "model", "vehicle.model", max_len=64), r.money(v, "price", "vehicle.price"),
        r.choice(v, "condition", "vehicle.condition", CONDITION),
        # "" until the dealer assigns the car: the salesperson gives the VIN before the contract (issue 17 §5)
        "" if v.get("vin") == "" else r.text(v, "vin", "vehicle.vin", max_len=32),
        r.integer(v, "mileage", "vehicle.mileage", 0, 2_000_000, nullable=True),
    ) if v else None

    p = r.section(body, "plan")
    plan = (
        r.integer(p, "term", "plan.term", 1, 120), r.money(p, "down_payment", "plan.down_payment"),
        r.money(p, "financed_amount", "plan.financed_amount"), r.money(p, "monthly_payment", "plan.monthly_payment"),
        r.money(p, "residual", "plan.residual"), r.money(p, "deposit", "plan.deposit"),
        r.boolean(p, "deposit_free", "plan.deposit_free"), r.rate(p, "apr", "plan.apr"),
    ) if p else None

    k = r.section(body, "kyc")
    kyc = (
        r.choice(k, "status", "kyc.status", KYC_STATUS), r.number(k, "face_distance", "kyc.face_distance", 0.0, 2.0),
        r.boolean(k, "liveness", "kyc.liveness", nullable=True), r.boolean(k, "manual", "kyc.manual"),
    ) if k else None

    d = r.section(body, "device")
    device = (r.text(d, "ip", "device.ip", max_len=64), r.text(d, "user_agent_hash", "device.user_agent_hash"),
              ) if d else None

    bank = body.get("bank_account")
    bank_status = None
    if isinstance(bank, dict) and bank.get("status") is not None:
        bank_status = r.choice(bank, "status", "bank_account.status", BANK_ACCOUNT)
    elif bank is not None and not isinstance(bank, dict):
        r.fail("bank_account", "not_an_object")
    if applicant and applicant[3] is not None and applicant[3] <= 0:
        r.fail("applicant.monthly_income", "not_positive")

    if r.errors:
        raise SnapshotInvalid(r.errors)
    assert applicant and vehicle and plan and kyc and device  # every section read without errors
    return Snapshot(application_id, dealer_id, Applicant(*applicant), Vehicle(*vehicle), Plan(*plan), Kyc(*kyc),
                    Device(*device), bank_status)


def mask_id_number(value: str) -> str:
    """``110101********1234``-style: region and the last four kept (what a masked screen shows)."""
    return value[:6] + "*" * max(len(value) - 10, 0) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_name(value: str) -> str:
    """The family name kept (first character), the rest starred."""
    return value[:1] + "*" * max(len(value) - 1, 1) if value else value
