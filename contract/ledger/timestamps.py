"""A checkpoint anchored to a third party: an RFC 3161 time-stamp token over its signed bytes.

A signed checkpoint (:mod:`contract.ledger.checkpoint`) says when it was signed only in the log's own words. A
token from a time-stamping authority (TSA) is the TSA's signature over a ``TSTInfo`` (RFC 3161 §2.4.2) that holds
the *message imprint* of the checkpoint — SHA-256 of :meth:`Checkpoint.body`, the very bytes the log's Ed25519
key signs — and the TSA's ``genTime``: proof, from someone other than the log, that this tree head existed then.
Rewriting the log after that time would need a TSA's signature too.

The token is kept beside the checkpoint (its DER bytes) and served as base64 with its genTime::

    {…the six checkpoint fields…, "anchored": true,
     "anchor": {"token": "<base64 DER TimeStampToken>", "gen_time": "2025-01-02T03:04:06.123000Z"}}

or ``"anchored": false, "anchor": null`` while it has none (no TSA configured, or the TSA was down: the service's
``ledger.anchor`` job asks again). :func:`verify_timestamp` checks a token offline against the TSA's roots.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import importlib
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeVar

from asn1crypto import cms  # type: ignore[import-untyped]
from asn1crypto import core
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from contract.ledger.checkpoint import SignedCheckpoint
from contract.ledger.rfc3339 import format_utc
from contract.ledger.rfc3339 import parse_utc

T = TypeVar("T")

#: how far a token's genTime may be from the checkpoint's own time and still corroborate it: the log stamps a
#: checkpoint right after signing it, so only clock skew and one request separate the two
ANCHOR_WINDOW = timedelta(minutes=5)
ANCHOR_FIELDS = frozenset({"anchored", "anchor"})


def message_imprint(signed: SignedCheckpoint) -> bytes:
    """SHA-256 of the checkpoint's signed bytes: what the TSA is asked to stamp (RFC 3161 §2.4.1 messageImprint)."""
    return hashlib.sha256(signed.checkpoint.body()).digest()


@dataclass(frozen=True)
class TimestampToken:
    """An RFC 3161 TimeStampToken (a CMS ``SignedData`` over a ``TSTInfo``) as DER, and its genTime."""

    token: bytes
    gen_time: datetime

    @classmethod
    def read(cls, der: bytes) -> TimestampToken:
        """Parse a token; :class:`ValueError` when it is not a CMS SignedData encapsulating a TSTInfo."""
        tst_info = _tst_info(der)
        return cls(der, parse_utc(format_utc(tst_info["gen_time"].native)))

    def imprint(self) -> tuple[str, bytes]:
        """The hash algorithm and hashed message the token stamps."""
        imprint = _tst_info(self.token)["message_imprint"]
        return str(imprint["hash_algorithm"]["algorithm"].native), bytes(imprint["hashed_message"].native)

    def to_json(self) -> dict[str, str]:
        return {"token": base64.b64encode(self.token).decode("ascii"), "gen_time": format_utc(self.gen_time)}


def _tst_info(der: bytes) -> tsp.TSTInfo:
    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            raise ValueError("not a CMS SignedData")
        encapsulated = info["content"]["encap_content_info"]
        content = encapsulated["content"]
        if encapsulated["content_type"].native != "tst_info" or not isinstance(content, core.ParsableOctetString):
            raise ValueError("the SignedData does not encapsulate a TSTInfo")
        tst_info = content.parsed
        if not isinstance(tst_info, tsp.TSTInfo) or not isinstance(tst_info["gen_time"].native, datetime):
            raise ValueError("the TSTInfo has no genTime")
        return tst_info
    except (ValueError, TypeError, KeyError) as exc:  # asn1crypto's parse errors are these
        raise ValueError(f"not an RFC 3161 time-stamp token: {exc}") from None


@dataclass(frozen=True)
class AnchoredCheckpoint:
    """A signed checkpoint as the service publishes it: with its RFC 3161 token, or ``anchor=None``."""

    signed: SignedCheckpoint
    anchor: TimestampToken | None

    def to_json(self) -> dict[str, Any]:
        """The checkpoint's six fields (:meth:`SignedCheckpoint.to_json`), ``anchored`` and ``anchor``."""
        return {**self.signed.to_json(), "anchored": self.anchor is not None,
                "anchor": self.anchor.to_json() if self.anchor is not None else None}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AnchoredCheckpoint:
        """Read :meth:`to_json`'s object back, or a bare signed checkpoint (a bundle made before anchoring)."""
        if not ANCHOR_FIELDS <= data.keys():
            return cls(SignedCheckpoint.from_json(data), None)
        signed = SignedCheckpoint.from_json({k: v for k, v in data.items() if k not in ANCHOR_FIELDS})
        anchored, anchor = data["anchored"], data["anchor"]
        if anchor is None and anchored is False:
            return cls(signed, None)
        if anchored is not True or not isinstance(anchor, Mapping) or anchor.keys() != {"token", "gen_time"}:
            raise ValueError("anchored must be true with an anchor {token, gen_time}, or false with null")
        token, gen_time = anchor["token"], anchor["gen_time"]
        if not isinstance(token, str) or not isinstance(gen_time, str):
            raise ValueError("anchor.token and anchor.gen_time must be strings")
        try:
            stamp = TimestampToken.read(base64.b64decode(token, validate=True))
        except binascii.Error as exc:
            raise ValueError(f"anchor.token is not base64: {exc}") from None
        if parse_utc(gen_time) != stamp.gen_time:
            raise ValueError("anchor.gen_time is not the token's genTime")
        return cls(signed, stamp)


def verify_timestamp(signed: SignedCheckpoint, token: bytes, tsa_roots: Sequence[x509.Certificate], *,
                     within: timedelta | None = ANCHOR_WINDOW, at: datetime | None = None) -> list[str]:
    """Every problem with ``token`` as the anchor of ``signed`` (an empty list: it holds):

    * its message imprint is SHA-256 of the checkpoint's signed bytes (RFC 3161 §2.4.2);
    * its CMS signature verifies with the TSA certificate it names, which chains to one of ``tsa_roots`` and has
      the timeStamping extended key usage (RFC 3161 §2.3), as of ``at`` (default now; no revocation fetched);
    * its genTime is not more than ``within`` (clock skew) before the checkpoint's own time: a token cannot vouch
      for a checkpoint made after it (None: not checked). A later genTime is a valid anchor: a checkpoint the
      ``ledger.anchor`` job stamped after a TSA outage is proven to exist by its genTime, which is what it says.
    """
    try:
        stamp = TimestampToken.read(token)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    algorithm, hashed = stamp.imprint()
    if algorithm != "sha256" or hashed != message_imprint(signed):
        problems.append("the token's message imprint is not SHA-256 of this checkpoint's signed bytes")
    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in tsa_roots]
    if not roots:
        problems.append("no TSA root certificate to check the token's signature against")
    else:
        problems += _signature_problems(stamp, roots, at)
    moment = signed.checkpoint.timestamp
    if within is not None and stamp.gen_time < moment - within:
        problems.append(f"the token's genTime {format_utc(stamp.gen_time)} is more than {within} before the "
                        f"checkpoint's time {format_utc(moment)}")
    return problems


def _signature_problems(stamp: TimestampToken, roots: list[asn1_x509.Certificate],
                        at: datetime | None) -> list[str]:
    """pyHanko's validation of a TST's SignedData (pyhanko.sign.validation.generic_cms.validate_tst_signed_data):
    signature integrity, then the signer's path to ``roots`` with the timeStamping EKU. The imprint is checked by
    the caller, so pyHanko is given the token's own."""
    # pyHanko's validation imports its signers, which warn about DSA on import: contract.signing loads them first
    # with that one warning filtered (its __init__), so it is imported first here (by name: this package stays
    # pure and strictly typed without the signing layer)
    importlib.import_module("contract.signing")
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko.sign.validation.status import TimestampSignatureStatus
    from pyhanko_certvalidator import ValidationContext

    signed_data = cms.ContentInfo.load(stamp.token)["content"]
    _, hashed = stamp.imprint()
    context = ValidationContext(trust_roots=roots, allow_fetching=False, moment=at, revocation_mode="soft-fail")
    try:
        kwargs = _synchronously(lambda: validate_tst_signed_data(signed_data, context, lambda _algorithm: hashed))
    except (ValueError, KeyError) as exc:  # pyHanko's SignatureValidationError is a ValueError
        return [f"the token's signature could not be checked: {exc}"]
    status = TimestampSignatureStatus(**kwargs)
    if not (status.intact and status.valid):
        return ["the token's signature does not verify with the TSA certificate it names"]
    if not status.trusted:
        return ["the token's TSA certificate is not a time-stamping certificate under the trusted TSA roots"]
    return []


def _synchronously(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run pyHanko's coroutine to its end: here, or on a thread of its own when this thread's event loop is running
    (``asyncio.run`` refuses then), as contract.signing.asyncio_bridge does for the signing layer."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()
