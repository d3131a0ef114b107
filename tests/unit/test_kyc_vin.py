"""VIN check digit (ISO 3779 / GB 16735 position 9) against published examples."""

from __future__ import annotations

import pytest

from kyc.vin import check_vin
from kyc.vin import vin_check_digit

# Examples whose check digit is published: the Wikipedia "VIN" article's worked example (X), the classic
# all-ones VIN, and a Honda Accord VIN often used in VIN-decoder documentation.
VALID = ["1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352"]


@pytest.mark.parametrize("vin", VALID)
def test_published_vins_are_valid(vin: str) -> None:
    result = check_vin(vin)
    assert result.valid, result.reasons
    assert vin_check_digit(vin) == vin[8]


def test_normalises_case_spaces_and_dashes() -> None:
    result = check_vin(" 1m8gdm9a-xkp 042788 ")
    assert result.valid
    assert result.normalized == "1M8GDM9AXKP042788"


@pytest.mark.parametrize(("vin", "code"), [
    ("1M8GDM9AXKP04278", "vin_length"),
    ("1M8GDM9AXKP0427888", "vin_length"),
    ("", "vin_length"),
    ("1M8GDM9AXKP0427O8", "vin_letters"),
    ("IM8GDM9AXKP042788", "vin_letters"),
    ("1M8GDM9AXKQ042788", "vin_letters"),
    ("1M8GDM9AXKP04278*", "vin_characters"),
    ("1M8GDM9A1KP042788", "vin_check_digit"),
    ("1M8GDM9AXKP042789", "vin_check_digit"),
])
def test_invalid(vin: str, code: str) -> None:
    result = check_vin(vin)
    assert not result.valid
    assert [r.code for r in result.reasons] == [code]
    assert all(r.text_zh and r.text_en for r in result.reasons)


def test_every_single_character_typo_outside_position_9_is_caught_or_rejected() -> None:
    vin = "1HGCM82633A004352"
    missed = []
    for i in range(17):
        if i == 8:
            continue
        for c in "0123456789ABCDEFGHJKLMNPRSTUVWXYZ":
            typo = vin[:i] + c + vin[i + 1:]
            if c != vin[i] and check_vin(typo).valid:
                missed.append(typo)
    # Letters sharing a transliterated value (A=J=1, B=K=S=2, …) cannot be told apart by the check digit.
    assert missed
    assert all(sum(a != b for a, b in zip(m, vin, strict=True)) == 1 for m in missed)
    assert len(missed) < 0.15 * 16 * 32
