"""Resident identity card numbers (居民身份证号码), GB 11643-1999.

Layout: 6-digit region code (GB/T 2260), 8-digit birth date YYYYMMDD, 3-digit sequence (odd = male,
even = female), 1 check character computed with ISO 7064 MOD 11-2 (``0``–``9`` or ``X`` for 10).
Only the province prefix of the region code is validated (the 34 province-level divisions); a full
county table changes every year and is not needed to catch typing mistakes — the check digit does that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from typing import Literal

from kyc.reasons import Reason

#: Province-level codes of GB/T 2260 (31 provinces, regions and municipalities + Taiwan, Hong Kong, Macao).
PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门",
}

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(17-i) mod 11
CHECK_CHARS = "10X98765432"  # index = weighted sum mod 11
_SHAPE = re.compile(r"\d{17}[\dX]")

Sex = Literal["male", "female"]


@dataclass(frozen=True)
class IdCheck:
    """The verdict on one ID number; the decoded fields are filled whenever they could be read."""

    valid: bool
    reasons: tuple[Reason, ...]
    normalized: str
    birth_date: date | None
    sex: Sex | None
    region_code: str | None
    age: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reasons": [r.as_dict() for r in self.reasons], "normalized": self.normalized,
                "birth_date": self.birth_date.isoformat() if self.birth_date else None, "sex": self.sex,
                "region_code": self.region_code, "age": self.age}


def check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def age_on(birth: date, day: date) -> int:
    """Completed years on ``day`` (someone born on 29 February turns a year older on 1 March)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def normalize(value: str) -> str:
    """Upper-case, without spaces (people type ``x`` and group digits)."""
    return "".join(value.split()).upper()


def check_id_number(value: str, today: date | None = None) -> IdCheck:
    """Check an 18-character ID number: shape, province, birth date (real, not in the future), check digit."""
    today = today or date.today()
    number = normalize(value or "")
    if not _SHAPE.fullmatch(number):
        reason = Reason("id_format", "身份证号码应为 18 位：17 位数字加 1 位数字或 X",
                        "An ID number has 18 characters: 17 digits, then a digit or X")
        return IdCheck(False, (reason,), number, None, None, None, None)
    reasons: list[Reason] = []
    region = number[:6]
    if region[:2] not in PROVINCES:
        reasons.append(Reason("id_region", f"地区码 {region} 无效（前两位不是省级行政区代码）",
                              f"Region code {region} is not valid (the first two digits name no province)"))
    birth: date | None
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        birth = None
        reasons.append(Reason("id_birth_date", f"出生日期 {number[6:14]} 不存在",
                              f"The birth date {number[6:14]} does not exist"))
    if birth is not None and birth > today:
        reasons.append(Reason("id_birth_date", f"出生日期 {birth.isoformat()} 晚于今天",
                              f"The birth date {birth.isoformat()} is in the future"))
        birth = None
    expected = check_digit(number[:17])
    if number[17] != expected:
        reasons.append(Reason("id_check_digit", "校验码不符，请核对号码是否输入有误",
                              "The check digit does not match: please check the number for typing mistakes"))
    sex: Sex = "male" if int(number[16]) % 2 else "female"
    return IdCheck(not reasons, tuple(reasons), number, birth, sex, region,
                   age_on(birth, today) if birth else None)
