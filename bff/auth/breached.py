"""New passwords are checked against the most common breached passwords, offline.

NIST SP 800-63B §5.1.1.2 asks verifiers to refuse passwords "obtained from previous breach corpuses" and
"commonly-used"; OWASP ASVS 4.0.3 2.1.7 asks for a check against "at least the top 1,000 or 10,000 most common
passwords". Nothing is looked up on the network at run time: the list ships with the code.

``common-passwords.txt.gz`` (beside this module) is ``10-million-password-list-top-100000.txt`` from SecLists
(https://github.com/danielmiessler/SecLists, ``Passwords/Common-Credentials/``; MIT licence, Copyright (c) 2025
Daniel Miessler, whose notice is in ``common-passwords-LICENSE.md`` beside it): the 100,000 most frequent of the
ten million passwords from real breaches that Mark Burnett published for research in 2015 (xato.net, "Today I
am releasing ten million passwords"), most frequent first, one per line, UTF-8, gzipped with mtime 0 (SHA-256 of
the uncompressed file: 84f9f01da3323b41cdc030f89f7fab65bf76a7e0d5265acabb715c2b3795f148). It has
``123456789012``, which a staff account was found to accept, and keyboard walks like ``1qaz2wsx3edc``; the
length rule (12 characters) already refuses most of the others, which are kept so that the file stays the
published one.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

LIST = Path(__file__).with_name("common-passwords.txt.gz")


@cache
def listed() -> frozenset[str]:
    """The list, lowercased (about 4 MB in memory, read once per process on first use)."""
    with gzip.open(LIST, "rt", encoding="utf-8") as fh:
        return frozenset(line.rstrip("\n").lower() for line in fh if line.strip())


def is_breached(password: str) -> bool:
    """True when ``password`` is on the list, whatever its case and surrounding spaces (``Password``, ``PASSWORD``
    and ``password `` are all the same guess for an attacker's list)."""
    return password.strip().lower() in listed()
