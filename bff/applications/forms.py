"""The application's fields, step by step, and their validation.

Drafts keep the raw strings exactly as typed (nothing the person gave is lost, even when invalid); each
step is validated when saved, and every step again before submission. Messages come in zh and en.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from kyc.idnumber import check_id_number
from kyc.mobile import check_mobile
from kyc.vin import check_vin
from plans.errors import FieldError
from plans.money import to_decimal

EMPLOYMENT = ("employed", "self_employed", "civil_servant", "retired", "other")
HOUSING = ("own_outright", "mortgage", "rent", "family", "company")
CONDITION = ("new", "used")
NAME = re.compile(r"[\u4e00-\u9fff·A-Za-z .'-]{2,30}")


def _err(name: str, code: str, zh: str, en: str) -> FieldError:
    return FieldError(name, code, zh, en)


def _required(name: str) -> FieldError:
    return _err(name, "required", "请填写此项", "Please fill this in")


def _name(value: str, data: Mapping[str, str]) -> FieldError | None:
    if not NAME.fullmatch(value):
        return _err("name", "name_format", "请填写身份证上的姓名（2–30 个字）",
                    "Enter the name as on the ID card (2–30 characters)")
    return None


def _first_reason(check: Callable[[str], Any]) -> Callable[[str, Mapping[str, str]], FieldError | None]:
    """A field check from one of kyc's checkers (ID number, mobile, VIN): its first reason, if invalid."""

    def field_check(value: str, data: Mapping[str, str]) -> FieldError | None:
        result = check(value)
        if result.valid:
            return None
        first = result.reasons[0]
        return FieldError("", first.code, first.text_zh, first.text_en)

    return field_check


_id_number, _mobile, _vin = _first_reason(check_id_number), _first_reason(check_mobile), _first_reason(check_vin)


def parse_valid_to(value: str) -> date | None:
    """``YYYY-MM-DD`` (or ``YYYY.MM.DD``) → date; ``长期`` / ``long-term`` → None (no expiry)."""
    text = value.strip().replace(".", "-").replace("/", "-")
    if text in ("长期", "long-term", "long_term"):
        return None
    return date.fromisoformat(text)


def _valid_to(value: str, data: Mapping[str, str]) -> FieldError | None:
    try:
        until = parse_valid_to(value)
    except ValueError:
        return _err("id_valid_to", "date_format", "请按 2030-01-31 的格式填写，长期有效填“长期”",
                    "Use the format 2030-01-31, or 长期 (long-term)")
    if until is not None and until < date.today():
        return _err("id_valid_to", "id_expired", "身份证已过有效期，请使用有效证件",
                    "The ID card has expired: please use a valid one")
    return None


def _text(low: int, high: int) -> Callable[[str, Mapping[str, str]], FieldError | None]:
    def check(value: str, data: Mapping[str, str]) -> FieldError | None:
        if not low <= len(value) <= high:
            return FieldError("", "length", f"请填写 {low}–{high} 个字", f"Use {low}–{high} characters")
        return None

    return check


def _engine_no(value: str, data: Mapping[str, str]) -> FieldError | None:
    if not re.fullmatch(r"[A-Za-z0-9-]{5,20}", value):
        return FieldError("", "engine_no", "发动机号/电动机号为 5–20 位字母、数字或连字符",
                          "The engine or motor number has 5–20 letters, digits or hyphens")
    return None


def _choice(options: tuple[str, ...]) -> Callable[[str, Mapping[str, str]], FieldError | None]:
    def check(value: str, data: Mapping[str, str]) -> FieldError | None:
        if value not in options:
            return FieldError("", "choice", "请从列表中选择", "Choose one of the options")
        return None

    return check


def _int(low: int, high: int) -> Callable[[str, Mapping[str, str]], FieldError | None]:
    def check(value: str, data: Mapping[str, str]) -> FieldError | None:
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            return FieldError("", "integer", f"请填写 {low} 到 {high} 之间的整数",
                              f"Enter a whole number from {low} to {high}")
        return None

    return check


def _money(positive: bool) -> Callable[[str, Mapping[str, str]], FieldError | None]:
    def check(value: str, data: Mapping[str, str]) -> FieldError | None:
        try:
            amount = to_decimal(value)
        except (ValueError, InvalidOperation):
            return FieldError("", "money_format", "请填写金额，例如 12000 或 12,000.50",
                              "Enter an amount, e.g. 12000 or 12,000.50")
        if positive and amount <= 0:
            return FieldError("", "income_positive", "月收入必须大于 0", "Monthly income must be above 0")
        if amount < 0 or amount > Decimal("100000000"):
            return FieldError("", "money_range", "金额超出合理范围", "That amount is out of range")
        return None

    return check


@dataclass(frozen=True)
class Field:
    name: str
    check: Callable[[str, Mapping[str, str]], FieldError | None]
    #: None: always required; otherwise a predicate on the step's data saying when it is required
    required_when: Callable[[Mapping[str, str]], bool] | None = None
    sensitive: bool = False


STEPS: dict[str, tuple[Field, ...]] = {
    "customer": (
        Field("name", _name),
        Field("id_number", _id_number, sensitive=True),
        Field("id_valid_to", _valid_to),
        Field("mobile", _mobile, sensitive=True),
        Field("address", _text(5, 120)),
    ),
    "work": (
        Field("employment", _choice(EMPLOYMENT)),
        Field("employer", _text(2, 80), required_when=lambda d: d.get("employment") not in ("retired", "other")),
        Field("employment_years", _int(0, 50), required_when=lambda d: d.get("employment") != "retired"),
        Field("monthly_income", _money(positive=True)),
        Field("housing", _choice(HOUSING)),
        Field("dependants", _int(0, 10)),
        Field("existing_loans", _int(0, 30)),
        Field("monthly_repayments", _money(positive=False)),
    ),
    "vehicle": (
        Field("vin", _vin),
        Field("condition", _choice(CONDITION)),
        Field("mileage", _int(0, 1_000_000), required_when=lambda d: d.get("condition") == "used"),
        # the engine (or an electric car's motor) number, as on the certificate of conformity (合格证): the contract
        # describes the car by it beside the VIN (issue 16 §8); known once the dealer assigns the car, so optional here
        Field("engine_no", _engine_no, required_when=lambda d: False),
    ),
}
ALL_FIELDS = {f.name: f for fields in STEPS.values() for f in fields}
#: the steps the applicant answers (on their own phone, or the salesperson with them); submission needs these
CUSTOMER_STEPS = ("customer", "work")
#: the car's facts are the dealer's, not the customer's (issue 17 §5): the salesperson gives the VIN (its check digit
#: validated, kyc/vin.py), new or used and the engine number on the application's page, from submission until the
#: contract is generated, which waits for them (bff/applications/contracts.py snapshot)
DEALER_STEPS = ("vehicle",)


def clean(raw: Mapping[str, Any], step: str) -> dict[str, str]:
    """The step's fields from a form post, as trimmed strings (bounded length; unknown keys dropped)."""
    return {f.name: str(raw.get(f.name, "")).strip()[:200] for f in STEPS[step]}


def validate(step: str, data: Mapping[str, str]) -> list[FieldError]:
    """Field errors of one step (empty: the step is complete and valid)."""
    errors: list[FieldError] = []
    for f in STEPS[step]:
        value = data.get(f.name, "")
        needed = f.required_when(data) if f.required_when else True
        if not value:
            if needed:
                errors.append(_required(f.name))
            continue
        problem = f.check(value, data)
        if problem is not None:
            errors.append(FieldError(f.name, problem.code, problem.text_zh, problem.text_en))
    return errors


def validate_one(name: str, value: str) -> FieldError | None:
    """The error of one non-empty field value on its own (None: valid); an empty value is an error."""
    if not value:
        return _required(name)
    return ALL_FIELDS[name].check(value, {})


def ocr_mismatches(draft: Mapping[str, str]) -> dict[str, str]:
    """Fields whose typed value differs from what OCR read on the card: field → the card's value."""
    import json

    raw = draft.get("_ocr")
    if not raw:
        return {}
    found: dict[str, str] = json.loads(raw)

    def norm(value: str) -> str:
        return "".join(value.split()).upper()

    return {name: value for name, value in found.items()
            if value and draft.get(name) and norm(draft[name]) != norm(value)}
