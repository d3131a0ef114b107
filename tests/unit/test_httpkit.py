"""httpkit's written-out constants match what they stand for on the running Python."""

from __future__ import annotations

import re
import sys

from httpkit.openapi import NOT_BLANK
from httpkit.openapi import WHITESPACE_CLASS


def _class_of(chars: list[int]) -> str:
    ranges: list[list[int]] = []
    for c in chars:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


def test_the_white_space_class_is_what_str_isspace_calls_white_space() -> None:
    assert WHITESPACE_CLASS == _class_of([c for c in range(sys.maxunicode + 1) if chr(c).isspace()])


def test_not_blank_refuses_white_space_only_and_nul() -> None:
    pattern = re.compile(NOT_BLANK)
    for blank in ("", " ", "\u3000\t\n", "\u0085\u2028"):
        assert not pattern.fullmatch(blank), repr(blank)
    assert not pattern.fullmatch("a\u0000")
    for text in ("a", " 王小明 ", "\u3000x"):
        assert pattern.fullmatch(text), repr(text)
