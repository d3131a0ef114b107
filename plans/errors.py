"""Domain errors of the plans package. The BFF maps them to HTTP 422 / form messages; the CLI to exit 2."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field, in both UI languages."""

    field: str
    code: str
    text_zh: str
    text_en: str

    def text(self, locale: str) -> str:
        """The message in ``locale`` (``zh…`` gives Chinese, anything else English)."""
        return self.text_zh if locale.lower().startswith("zh") else self.text_en


@dataclass
class PlanInputError(Exception):
    """The inputs of a quote or search are invalid; ``errors`` says which field and why."""

    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{e.field}: {e.text_en}" for e in self.errors)


class UnknownVehicle(LookupError):
    """No vehicle with that id in the catalogue."""


#: Message texts by code: (zh-CN, en). ``{…}`` placeholders are filled by :func:`error`.
MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("必填", "This field is required"),
    "not_a_number": ("请输入数字", "Enter a number"),
    "not_an_integer": ("请输入整数", "Enter a whole number"),
    "not_positive": ("必须大于 0", "Must be greater than 0"),
    "below_one_fen": ("金额不足 1 分", "Less than one fen (0.01)"),
    "negative": ("不能为负数", "Must not be negative"),
    "too_large": ("数值过大（上限 {limit}）", "Too large (at most {limit})"),
    "down_above_price": ("首付不能超过车价", "The down payment cannot exceed the vehicle price"),
    "term_range": ("期限须为 {min}–{max} 个月", "The term must be {min}–{max} months"),
    "rate_range": ("年利率须在 0%–{max}% 之间", "The annual rate must be between 0% and {max}%"),
    "ratio_range": ("比例须在 0%–{max}% 之间", "The ratio must be between 0% and {max}%"),
    "residual_above_principal": (
        "尾付租金不能达到或超过融资本金",
        "The residual (balloon) must be below the financed principal",
    ),
    "timing": ("付款方式须为 arrears（期末）或 advance（期初）", "Timing must be 'arrears' or 'advance'"),
    "unknown_option": ("未知选项：{value}", "Unknown option: {value}"),
    "unknown_vehicle": ("未找到该车型", "No such vehicle"),
    "mobile_format": ("请输入 11 位中国大陆手机号", "Enter an 11-digit mainland China mobile number"),
    "not_boolean": ("须为 true 或 false", "Must be true or false"),
    "too_many_decimals": ("最多 {places} 位小数", "At most {places} decimal places"),
    "exclusive_coverages": ("{a} 与 {b} 只能选一项", "Choose either {a} or {b}, not both"),
    "out_of_range": ("须在 {min}–{max} 之间", "Must be between {min} and {max}"),
    "no_net_credit": (
        "首付、费用与保证金合计过高，客户未获得净融资",
        "The down payment, fees and deposit leave the customer no net credit",
    ),
    "nothing_financed": ("融资金额必须大于 0", "The financed amount must be greater than 0"),
}


def error(field_name: str, code: str, **params: object) -> FieldError:
    """Build a :class:`FieldError` from the message catalogue."""
    zh, en = MESSAGES[code]
    return FieldError(field_name, code, zh.format(**params), en.format(**params))
