"""GB 11643-1999 ID numbers: the standard's own examples, then every way a number can be wrong."""

from __future__ import annotations

from datetime import date

import pytest

from kyc.idnumber import PROVINCES
from kyc.idnumber import age_on
from kyc.idnumber import check_digit
from kyc.idnumber import check_id_number

TODAY = date(2025, 6, 1)

# The two examples printed in GB 11643-1999 itself (the second one ends in the check character X).
PUBLISHED = ["11010519491231002X", "440524188001010014"]


@pytest.mark.parametrize("number", PUBLISHED)
def test_published_examples_are_valid(number: str) -> None:
    result = check_id_number(number, TODAY)
    assert result.valid, result.reasons
    assert result.reasons == ()


def test_check_digit_reproduces_the_published_examples() -> None:
    assert [check_digit(n[:17]) for n in PUBLISHED] == ["X", "4"]


def test_decoded_fields() -> None:
    result = check_id_number("11010519491231002X", TODAY)
    assert result.birth_date == date(1949, 12, 31)
    assert result.sex == "female"  # sequence 002: even
    assert result.region_code == "110105"
    assert result.age == 75
    assert check_id_number("440524188001010014", TODAY).sex == "male"  # 001: odd
    assert result.as_dict() == {"valid": True, "reasons": [], "normalized": "11010519491231002X",
                                "birth_date": "1949-12-31", "sex": "female", "region_code": "110105", "age": 75}


def test_lower_case_x_and_spaces_are_accepted() -> None:
    result = check_id_number(" 110105 19491231 002x ", TODAY)
    assert result.valid
    assert result.normalized == "11010519491231002X"


@pytest.mark.parametrize("number", ["", "11010519491231002", "11010519491231002XX", "1101051949123100X2",
                                    "11010519491231002Y", "ABCDEFGHIJKLMNOPQR"])
def test_wrong_shape(number: str) -> None:
    result = check_id_number(number, TODAY)
    assert not result.valid
    assert [r.code for r in result.reasons] == ["id_format"]
    assert result.birth_date is None


def test_every_single_digit_typo_is_caught() -> None:
    number = "440524188001010014"
    for i in range(17):
        for digit in "0123456789":
            if digit != number[i]:
                typo = number[:i] + digit + number[i + 1:]
                assert not check_id_number(typo, TODAY).valid, typo


def test_wrong_check_digit() -> None:
    result = check_id_number("110105194912310021", TODAY)
    assert [r.code for r in result.reasons] == ["id_check_digit"]
    assert result.birth_date == date(1949, 12, 31)  # decoded all the same, for the message


def _with_check(first17: str) -> str:
    return first17 + check_digit(first17)


def test_unknown_province() -> None:
    result = check_id_number(_with_check("99010519491231002"), TODAY)
    assert [r.code for r in result.reasons] == ["id_region"]
    assert len(PROVINCES) == 34


@pytest.mark.parametrize("birth", ["19490230", "19491301", "19490000", "20250229"])
def test_impossible_birth_date(birth: str) -> None:
    result = check_id_number(_with_check(f"110105{birth}002"), TODAY)
    assert [r.code for r in result.reasons] == ["id_birth_date"]
    assert result.birth_date is None and result.age is None


def test_birth_date_in_the_future() -> None:
    result = check_id_number(_with_check("11010520250602002"), TODAY)
    assert [r.code for r in result.reasons] == ["id_birth_date"]
    assert check_id_number(_with_check("11010520250601002"), TODAY).valid  # born today


def test_leap_day_birth() -> None:
    assert check_id_number(_with_check("11010520000229002"), TODAY).valid


def test_reasons_speak_both_languages() -> None:
    for number in ["123", "110105194912310021", _with_check("99010519491231002")]:
        for reason in check_id_number(number, TODAY).reasons:
            assert reason.text_zh and reason.text_en and reason.text_zh != reason.text_en


def test_age_on() -> None:
    assert age_on(date(1990, 3, 7), date(2025, 3, 6)) == 34
    assert age_on(date(1990, 3, 7), date(2025, 3, 7)) == 35
    assert age_on(date(2000, 2, 29), date(2018, 2, 28)) == 17
    assert age_on(date(2000, 2, 29), date(2018, 3, 1)) == 18
