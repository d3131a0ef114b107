"""The one timestamp spelling of the ledger: RFC 3339 in UTC with microseconds and ``Z``.

Signed and hashed bytes must not depend on how a moment was written, so there is exactly one accepted form,
``2025-01-02T03:04:05.000006Z``, and parsing refuses every other (offsets, missing fraction, lower-case z).
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime

PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)


def format_utc(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; a naive datetime is refused (its zone is unknown)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no time zone: pass an aware one (UTC)")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_utc(text: str) -> datetime:
    """The aware UTC datetime written by :func:`format_utc`; anything else raises :class:`ValueError`."""
    if not PATTERN.fullmatch(text):
        raise ValueError(f"{text!r} is not an RFC 3339 UTC timestamp like 2025-01-02T03:04:05.000000Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
