"""Vehicle identification numbers (车辆识别代号), ISO 3779 / GB 16735.

17 characters from ``0-9A-Z`` without I, O and Q. Position 9 is a check character (0–9 or X), mandatory
in China (GB 16735) and North America: transliterate letters to numbers, weight, sum, mod 11.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kyc.reasons import Reason

TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_SHAPE = re.compile(r"[0-9A-HJ-NPR-Z]{17}")


@dataclass(frozen=True)
class VinCheck:
    valid: bool
    reasons: tuple[Reason, ...]
    normalized: str

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reasons": [r.as_dict() for r in self.reasons], "normalized": self.normalized}


def vin_check_digit(vin: str) -> str:
    """The check character (position 9) for a 17-character VIN; position 9 itself has weight 0."""
    total = sum(TRANSLITERATION[c] * w for c, w in zip(vin, WEIGHTS, strict=True)) % 11
    return "X" if total == 10 else str(total)


def check_vin(value: str) -> VinCheck:
    """Check a VIN's length, alphabet and check digit. Spaces and dashes are ignored, letters upper-cased."""
    vin = re.sub(r"[\s-]", "", value or "").upper()
    if len(vin) != 17:
        return VinCheck(False, (Reason("vin_length", f"车架号应为 17 位，当前为 {len(vin)} 位",
                                       f"A VIN has 17 characters, not {len(vin)}"),), vin)
    if set(vin) & set("IOQ"):
        return VinCheck(False, (Reason("vin_letters", "车架号不含字母 I、O、Q（请检查是否为数字 1、0）",
                                       "A VIN never contains I, O or Q (did you mean 1 or 0?)"),), vin)
    if not _SHAPE.fullmatch(vin):
        return VinCheck(False, (Reason("vin_characters", "车架号只能包含数字和字母",
                                       "A VIN contains only digits and letters"),), vin)
    if vin[8] != vin_check_digit(vin):
        return VinCheck(False, (Reason("vin_check_digit", "车架号第 9 位校验位不符，请核对",
                                       "The check digit (9th character) does not match: please check the VIN"),), vin)
    return VinCheck(True, (), vin)
