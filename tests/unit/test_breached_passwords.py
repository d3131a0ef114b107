"""The offline list of common breached passwords that new staff passwords are checked against."""

from __future__ import annotations

from bff.auth.breached import is_breached
from bff.auth.breached import listed


def test_the_list_is_the_top_100000_and_loads_offline() -> None:
    words = listed()
    assert len(words) > 96_000  # 100,000 entries; about 3,500 coincide once lowercased (Password, PASSWORD)
    assert {"123456", "password", "qwerty"} <= words


def test_common_passwords_are_found_whatever_their_case_or_surrounding_spaces() -> None:
    for common in ("123456789012", "Password", "QWERTYUIOP123", " 1qaz2wsx3edc "):
        assert is_breached(common), common


def test_an_uncommon_passphrase_is_not() -> None:
    for fine in ("晨跑-西湖-二〇二六-lease", "correct horse battery staple 79", "Leaseline-demo-2026"):
        assert not is_breached(fine), fine
