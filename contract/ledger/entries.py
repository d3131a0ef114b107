"""The bytes of one evidence entry: what the log hashes into a leaf, so they must never depend on who wrote them.

An entry is the canonical JSON (UTF-8, keys sorted, no spaces, non-ASCII kept as is) of::

    {"v": 1, "kind": "contract_signed", "subject": "<application id>", "at": "2025-01-02T03:04:05.000000Z",
     "data": {...}}

``data`` holds strings, integers, booleans, null, lists and objects with string keys only. Floats are
refused: money is a decimal string (``"12345.60"``), because a float is binary (0.1 + 0.2 != 0.3) and
readers in other languages may spell or round it differently, so the same amount could hash differently.
Documents and KYC evidence are logged by their :func:`sha256_hex`, never by content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from typing import NoReturn

from contract.ledger.rfc3339 import format_utc
from contract.ledger.rfc3339 import parse_utc

VERSION = 1
KINDS = frozenset({
    "consent_given",
    "kyc_outcome",
    "plan_accepted",
    "risk_decision",
    "contract_generated",
    "contract_signed",
    "payment",
    "capture",
    "refund",
    "delivery",  # the vehicle handed over (交车): the lease's term starts
    "handover_signed",  # the signed handover record (车辆交接确认书): the term runs from its day (contract/handover.py)
    "terms_explained",  # the dealer's staff explained each key term before the signature, and how (issue 16 §7)
    "lease_closed",  # the lease closed in good standing at its term's end (结清), with any deduction
    "settlement_certificate_signed",  # the lessor's settlement certificate (结清证明) of a lease settled early
    "schedule_annex_signed",  # the schedule after a partial prepayment (还款计划变更确认书), signed by the lessor
})
FIELDS = frozenset({"v", "kind", "subject", "at", "data"})
#: what an entry's subject (an application's id) may be: the API's pattern
SUBJECT_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
#: The largest leaf index (and tree size) the log serves: its index columns are signed 32-bit integers on
#: PostgreSQL (contract/db/models.py); a larger number names no entry, and PostgreSQL refuses it in a query
MAX_INDEX = 2**31 - 1


def sha256_hex(data: bytes) -> str:
    """The lower-case hex SHA-256 of a document or of KYC evidence, as an entry's ``data`` records it."""
    return hashlib.sha256(data).hexdigest()


def encode_entry(kind: str, subject: str, data: Mapping[str, Any], at: datetime) -> bytes:
    """The canonical bytes of one entry; raises :class:`ValueError` for an unknown kind, an empty subject,
    a naive ``at`` or data that is not plain JSON (a float, a non-string key, a Decimal, …)."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"unknown evidence kind {kind!r}; expected one of {', '.join(sorted(KINDS))}")
    if not isinstance(subject, str) or not subject:
        raise ValueError("the subject of an evidence entry must be a non-empty string")
    if not isinstance(data, Mapping):
        raise ValueError("data must be a JSON object")
    payload = dict(data)
    check_json(payload, "data")
    entry = {"v": VERSION, "kind": kind, "subject": subject, "at": format_utc(at), "data": payload}
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def decode_entry(raw: bytes) -> dict[str, Any]:
    """The fields of an entry written by :func:`encode_entry`, with ``at`` as an aware UTC datetime.

    Bytes that are valid JSON but not the canonical encoding of what they hold are refused, so that
    ``encode_entry(e["kind"], e["subject"], e["data"], e["at"]) == raw`` for every entry that decodes.
    """
    try:
        entry = json.loads(raw.decode("utf-8"), parse_float=refuse_float, parse_constant=refuse_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"an evidence entry must be UTF-8 JSON: {exc}") from exc
    if not isinstance(entry, dict) or entry.keys() != FIELDS:
        raise ValueError(f"an evidence entry is a JSON object with exactly the fields {', '.join(sorted(FIELDS))}")
    if entry["v"] != VERSION:
        raise ValueError(f"unsupported evidence entry version {entry['v']!r}")
    if not isinstance(entry["at"], str):
        raise ValueError("the field 'at' must be an RFC 3339 UTC timestamp string")
    at = parse_utc(entry["at"])
    if encode_entry(entry["kind"], entry["subject"], entry["data"], at) != raw:
        raise ValueError("the entry is not in canonical form (key order, spacing or escaping differ)")
    return {**entry, "at": at}


def check_json(value: object, path: str) -> None:
    """Refuse anything but str, int, bool, None, list and str-keyed dict, naming where it was found: a tuple
    would come back as a list, and a Decimal or a date has no JSON form at all."""
    if value is None or isinstance(value, str | int):  # bool is an int
        return
    if isinstance(value, float):
        raise ValueError(f"{path} is a float: write money and rates as decimal strings such as '12345.60'")
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has the key {key!r}: JSON object keys must be strings")
            check_json(item, f"{path}.{key}")
        return
    raise ValueError(f"{path} is a {type(value).__name__}, which has no single JSON spelling")


def refuse_float(text: str) -> NoReturn:
    """JSON's non-integer numbers (and NaN, Infinity) never appear in an entry; say so while parsing."""
    raise ValueError(f"an evidence entry holds the non-integer number {text}: money must be a decimal string")
