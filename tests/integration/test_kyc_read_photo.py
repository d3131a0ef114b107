"""``leaseline kyc read-card`` on a phone's photo of the card, as the KYC job reads it (issue 17 §3): the card is found
in the 4:3 picture (tests/common/card_photos.py: 60–90 % of its width, turned, tilted, on a table) before its fields
are read, so the name and the number come out exact."""

from __future__ import annotations

import json
import random
from pathlib import Path

from kyc import specimens
from tests.common import card_photos
from tests.integration.test_kyc_cli import run


def test_read_card_finds_the_card_in_a_phone_photo(tmp_path: Path) -> None:
    data = specimens.person(name="慕容晓彤", seed=5521)
    rng = random.Random(5521)
    front, back = tmp_path / "front.jpg", tmp_path / "back.jpg"
    front.write_bytes(card_photos.photographed(specimens.front(data), rng, (1280, 960)))
    back.write_bytes(card_photos.photographed(specimens.back(data), rng, (1280, 960)))
    done = run("read-card", str(front), "--back", str(back), "--json")
    assert done.returncode == 0, done.stderr
    fields = json.loads(done.stdout)
    assert (fields["name"]["value"], fields["id_number"]["value"]) == (data.name, data.id_number)
    assert fields["valid_to"]["value"] == data.valid_to.isoformat()
