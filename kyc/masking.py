"""Masking personal data for screens, logs and receipts (PIPL: show only what the reader needs)."""

from __future__ import annotations


def _mask(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return value[:1] + "*" * (len(value) - 1) if value else ""
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail:]


def mask_id_number(value: str | None) -> str:
    """``110101199003071234`` → ``1101**********1234`` (first 4, last 4 shown)."""
    return _mask("".join((value or "").split()).upper(), 4, 4)


def mask_mobile(value: str | None) -> str:
    """``13800138000`` → ``138****8000`` (first 3, last 4 shown)."""
    return _mask("".join((value or "").split()), 3, 4)


def mask_name(value: str | None) -> str:
    """``张三丰`` → ``张**``; ``Zhang Sanfeng`` → ``Z**** S******`` (first letter of each word)."""
    name = (value or "").strip()
    if not name:
        return ""
    if " " in name:
        return " ".join(w[0] + "*" * (len(w) - 1) for w in name.split())
    return name[0] + "*" * (len(name) - 1)
