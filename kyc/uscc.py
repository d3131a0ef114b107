"""Unified social credit codes (统一社会信用代码, GB 32100-2015): the company identifier on a contract."""

from __future__ import annotations

import re

#: 18 characters of this alphabet (no I, O, S, V, Z); the last is a check character, weights 3^i mod 31
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
PATTERN = re.compile(f"[{ALPHABET}]{{18}}")


def check_char(first17: str) -> str:
    """The check character of a code's first 17 characters."""
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    """Whether ``code`` (upper case, no spaces) is a well-formed code with the right check character."""
    return bool(PATTERN.fullmatch(code)) and code[17] == check_char(code[:17])
