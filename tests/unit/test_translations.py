"""The Chinese catalogue covers every message the UI can show, and keeps every placeholder."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

CATALOGUE = Path(__file__).resolve().parents[2] / "bff/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
ROOT = CATALOGUE.parents[4]
METHODS = [("bff/**.py", "python"), ("pwa/templates/**.html", "jinja2"), ("pwa/templates/**.webmanifest", "jinja2")]


def extracted_ids() -> set[str]:
    """Every msgid in the source today (not the possibly stale messages.pot)."""
    ids: set[str] = set()
    for folder in ("bff", "pwa/templates"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, [(f"{pattern.split('/', 1)[1] if folder == 'bff' else pattern.split('/', 2)[2]}", m)
                            for pattern, m in METHODS if pattern.startswith(folder)],
            keywords={"_": None, "gettext": None, "lazy_gettext": None},
        ):
            ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_every_message_is_translated_with_its_placeholders() -> None:
    with CATALOGUE.open("rb") as fh:
        catalogue = read_po(fh)
    ids = extracted_ids()
    assert len(ids) > 50
    missing = sorted(i for i in ids if catalogue.get(i) is None or not catalogue.get(i).string)
    assert missing == [], "run pybabel extract/update and translate these"
    for message in catalogue:
        if message.id:
            assert not message.fuzzy, message.id
            assert sorted(re.findall(r"%\(\w+\)s", str(message.id))) == sorted(
                re.findall(r"%\(\w+\)s", str(message.string))), message.id


def test_every_message_of_the_catalogue_is_still_used() -> None:
    """A message no view or template shows any more is dead weight for translators and reviewers: remove its entry
    from messages.po by hand (a full ``pybabel update`` would reorder the file)."""
    with CATALOGUE.open("rb") as fh:
        catalogue = read_po(fh)
    ids = extracted_ids()
    unused = sorted(str(m.id) for m in catalogue if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in ids)
    assert unused == []
