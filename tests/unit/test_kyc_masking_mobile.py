from __future__ import annotations

import pytest

from kyc.masking import mask_id_number
from kyc.masking import mask_mobile
from kyc.masking import mask_name
from kyc.mobile import check_mobile


def test_mask_id_number() -> None:
    assert mask_id_number("110101199003071234") == "1101**********1234"
    assert mask_id_number("11010519491231002x") == "1101**********002X"
    assert mask_id_number(None) == ""
    assert mask_id_number("") == ""
    assert "9" not in mask_id_number("1234999")[1:]


def test_mask_mobile() -> None:
    assert mask_mobile("13800138000") == "138****8000"
    assert mask_mobile(None) == ""
    assert mask_mobile("123") == "1**"


def test_mask_name() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳建国") == "欧***"
    assert mask_name("Zhang Sanfeng") == "Z**** S******"
    assert mask_name("Li") == "L*"
    assert mask_name(None) == ""
    assert mask_name("   ") == ""


@pytest.mark.parametrize(("typed", "normalized"), [
    ("13800138000", "13800138000"),
    ("138 0013 8000", "13800138000"),
    ("138-0013-8000", "13800138000"),
    ("+86 138 0013 8000", "13800138000"),
    ("8613800138000", "13800138000"),
    ("19912345678", "19912345678"),
])
def test_valid_mobiles(typed: str, normalized: str) -> None:
    result = check_mobile(typed)
    assert result.valid
    assert result.normalized == normalized


@pytest.mark.parametrize("typed", ["", "12800138000", "1380013800", "138001380001", "1380013800a", "+1 415 555 0100",
                                   "010-12345678"])
def test_invalid_mobiles(typed: str) -> None:
    result = check_mobile(typed)
    assert not result.valid
    assert [r.code for r in result.reasons] == ["mobile_format"]
    assert result.reasons[0].text_zh and result.reasons[0].text_en
