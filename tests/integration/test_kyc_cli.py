"""``leaseline kyc …`` as a staff member or a script runs it: the installed entry point, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.common.faces import encode
from tests.common.faces import id_portrait
from tests.common.faces import images_dir
from tests.common.faces import photo

LEASELINE = str(Path(sys.executable).with_name("leaseline"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LEASELINE, "kyc", *args], capture_output=True, text=True, timeout=120, check=False)


def test_check_id_valid_json() -> None:
    done = run("check-id", "11010519491231002x", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"valid": True, "reasons": [], "birth_date": "1949-12-31", "sex": "female",
                                       "region_code": "110105"}


def test_check_id_invalid_is_an_answer_not_an_error() -> None:
    done = run("check-id", "110105194912310021", "--json")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["valid"] is False
    assert [r["code"] for r in data["reasons"]] == ["id_check_digit"]
    assert data["reasons"][0]["text_zh"]


def test_check_id_text() -> None:
    done = run("check-id", "12345")
    assert done.returncode == 0
    assert "invalid" in done.stdout and "18 characters" in done.stdout


def test_check_vin() -> None:
    assert json.loads(run("check-vin", "1M8GDM9AXKP042788", "--json").stdout) == {"valid": True, "reasons": []}
    data = json.loads(run("check-vin", "1M8GDM9A1KP042788", "--json").stdout)
    assert data["valid"] is False and data["reasons"][0]["code"] == "vin_check_digit"
    assert "valid" in run("check-vin", "1M8GDM9AXKP042788").stdout


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kyc-cli")
    (folder / "portrait.jpg").write_bytes(encode(id_portrait(photo("obama.jpg")), quality=90))
    (folder / "biden-portrait.png").write_bytes(encode(id_portrait(photo("biden.jpg")), "PNG"))
    (folder / "blank.jpg").write_bytes(encode(photo("obama.jpg").point(lambda _: 128)))
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_match_same_person(photo_dir: Path) -> None:
    done = run("match", str(photo_dir / "portrait.jpg"), str(images_dir() / "obama2.jpg"), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["outcome"] == "pass"
    assert 0 < data["distance"] <= 0.5
    assert data["faces"] == {"id": 1, "selfie": 1}
    assert [c["code"] for c in data["checks"]] == ["faces_id", "faces_selfie", "face_distance"]


def test_match_other_person_text(photo_dir: Path) -> None:
    done = run("match", str(photo_dir / "biden-portrait.png"), str(images_dir() / "obama3.jpg"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("fail") and "does not match" in done.stdout


def test_match_no_face(photo_dir: Path) -> None:
    data = json.loads(run("match", str(photo_dir / "portrait.jpg"), str(photo_dir / "blank.jpg"), "--json").stdout)
    assert (data["outcome"], data["distance"], data["faces"]) == ("fail", None, {"id": 1, "selfie": 0})


@pytest.mark.parametrize(("name", "message"), [("missing.jpg", "No such file"), ("notes.txt", "not a photo")])
def test_match_unreadable_input_is_a_one_line_error(photo_dir: Path, name: str, message: str) -> None:
    done = run("match", str(photo_dir / "portrait.jpg"), str(photo_dir / name), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and name in lines[0]
    assert "Traceback" not in done.stderr


def test_specimen_card_is_read_back_by_the_ocr_with_its_persona(tmp_path: Path) -> None:
    from PIL import Image

    from kyc import ocr
    from kyc.idnumber import check_id_number

    done = run("specimen-card", "--persona", "thin_file", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    front = ocr.read_front(Image.open(tmp_path / "front.jpg").convert("RGB"))
    back = ocr.read_back(Image.open(tmp_path / "back.jpg").convert("RGB"))
    assert front.name == "张伟" and check_id_number(front.id_number).valid
    assert front.id_number[15:17] == "91"  # the sandbox's thin file
    assert front.id_number in done.stdout and back.valid_to is not None


def test_specimen_card_with_your_own_photo_matches_that_face(tmp_path: Path) -> None:
    from PIL import Image

    from kyc import faces
    from kyc import ocr

    selfie = tmp_path / "me.jpg"
    selfie.write_bytes(encode(photo("obama.jpg")))
    done = run("specimen-card", "--portrait", str(selfie), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    portrait = ocr.portrait(Image.open(tmp_path / "front.jpg").convert("RGB"))
    assert faces.match(portrait, photo("obama3.jpg")).outcome == "pass"
    assert faces.match(portrait, photo("biden.jpg")).outcome == "fail"


def test_specimen_card_refuses_a_photo_without_one_face(tmp_path: Path) -> None:
    from PIL import Image

    empty = tmp_path / "wall.jpg"
    Image.new("RGB", (640, 480), (120, 120, 120)).save(empty)
    done = run("specimen-card", "--portrait", str(empty), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "0 faces found" in done.stderr
    assert not (tmp_path / "out" / "front.jpg").exists()


@pytest.fixture(scope="module")
def card_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from kyc import specimens

    folder = tmp_path_factory.mktemp("read-card")
    data = specimens.person(name="林晓峰", seed=4417)
    specimens.front(data).save(folder / "front.jpg", "JPEG", quality=90)
    specimens.degrade(specimens.back(data)).save(folder / "back.jpg", "JPEG", quality=90)
    (folder / "notes.txt").write_text("not a photo")
    specimens.blank().save(folder / "blank.jpg", "JPEG", quality=90)
    return folder, data


def test_read_card_prints_each_field_with_a_confidence(card_dir: tuple[Path, Any]) -> None:
    folder, data = card_dir
    done = run("read-card", str(folder / "front.jpg"), "--back", str(folder / "back.jpg"), "--json")
    assert done.returncode == 0, done.stderr
    fields = json.loads(done.stdout)
    assert {name: f["value"] for name, f in fields.items()} == {
        "name": data.name, "id_number": data.id_number, "address": data.address, "sex": data.sex,
        "ethnicity": data.ethnicity, "birth": data.birth.isoformat(), "authority": data.authority,
        "valid_from": data.valid_from.isoformat(), "valid_to": data.valid_to.isoformat()}
    assert all(0.9 <= f["confidence"] <= 1 for f in fields.values()), fields


def test_read_card_front_alone_as_text_lowest_confidence_first(card_dir: tuple[Path, Any]) -> None:
    folder, data = card_dir
    done = run("read-card", str(folder / "front.jpg"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 6 and any(data.name in line for line in lines)
    confidences = [float(line.split()[1]) for line in lines]
    assert confidences == sorted(confidences)


@pytest.mark.parametrize(("args", "message"), [
    (("missing.jpg",), "No such file"), (("notes.txt",), "not a photo"), (("blank.jpg",), "No ID card"),
    (("back.jpg",), "back of the card"), (("front.jpg", "--back", "front.jpg"), "front of the card")])
def test_read_card_bad_or_unreadable_file_is_a_one_line_error(card_dir: tuple[Path, Any], args: tuple[str, ...],
                                                                message: str) -> None:
    folder, _data = card_dir
    done = run("read-card", *(str(folder / a) if a.endswith((".jpg", ".txt")) else a for a in args), "--json")
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "Traceback" not in done.stderr
