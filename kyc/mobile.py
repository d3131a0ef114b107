"""Mainland China mobile numbers: 11 digits ``1[3-9]xxxxxxxxx``, typed with spaces, dashes or +86."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kyc.reasons import Reason

_MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True)
class MobileCheck:
    valid: bool
    reasons: tuple[Reason, ...]
    normalized: str

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reasons": [r.as_dict() for r in self.reasons], "normalized": self.normalized}


def normalize_mobile(value: str) -> str:
    """Digits only, without a leading ``+86`` / ``86`` / ``0086`` country code."""
    number = re.sub(r"[\s\-()]", "", value or "")
    for prefix in ("+86", "0086", "86"):
        if number.startswith(prefix) and len(number) == len(prefix) + 11:
            return number[len(prefix):]
    return number


def check_mobile(value: str) -> MobileCheck:
    number = normalize_mobile(value)
    if _MOBILE.fullmatch(number):
        return MobileCheck(True, (), number)
    return MobileCheck(False, (Reason("mobile_format", "请输入 11 位中国大陆手机号",
                                      "Enter an 11-digit mainland China mobile number"),), number)
