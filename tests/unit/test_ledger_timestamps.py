"""A checkpoint's RFC 3161 anchor, checked offline (contract/ledger/timestamps.py): tokens made by the test TSA's
own code without HTTP (tests/common/tsa.py ``TsaServer.reply``), judged against its root certificate.

pyHanko's validation is a coroutine, and asyncio's event loop opens a socketpair for its self-pipe, which the unit
tests' socket guard refuses in the test's own thread (tests/unit/conftest.py): the checks run on another thread."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyhanko.sign.timestamps import TimeStamper

from contract.ledger import Checkpoint
from contract.ledger import SignedCheckpoint
from contract.ledger import sign
from contract.ledger.bundle import Bundle
from contract.ledger.bundle import verify_bundle as verify_bundle_here
from contract.ledger.timestamps import AnchoredCheckpoint
from contract.ledger.timestamps import TimestampToken
from contract.ledger.timestamps import message_imprint
from contract.ledger.timestamps import verify_timestamp as verify_timestamp_here
from tests.common.tsa import TsaServer
from tests.unit.test_ledger_commitments import AT
from tests.unit.test_ledger_commitments import KEY
from tests.unit.test_ledger_commitments import make_bundle

NOW = datetime.now(UTC).replace(microsecond=0)


def verify_timestamp(*args: Any, **kwargs: Any) -> list[str]:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(verify_timestamp_here, *args, **kwargs).result()


def verify_bundle(*args: Any) -> list[str]:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(verify_bundle_here, *args).result()


@pytest.fixture(scope="module")
def tsa() -> TsaServer:
    return TsaServer()  # never started: its reply() makes the tokens


def checkpoint(size: int = 5, at: datetime = NOW) -> SignedCheckpoint:
    return sign(Checkpoint("t/v2", size, bytes([size]) * 32, at), Ed25519PrivateKey.generate())


def token_for(tsa: TsaServer, signed: SignedCheckpoint) -> bytes:
    _, query = TimeStamper().request_cms(message_imprint(signed), "sha256")
    return bytes(tsa.reply(query)["time_stamp_token"].dump())


def test_a_token_over_the_checkpoint_s_signed_bytes_verifies(tsa: TsaServer) -> None:
    signed = checkpoint()
    token = token_for(tsa, signed)
    assert verify_timestamp(signed, token, [tsa.root_certificate]) == []
    stamp = TimestampToken.read(token)
    assert abs(stamp.gen_time - datetime.now(UTC)) < timedelta(minutes=1)
    assert stamp.imprint() == ("sha256", message_imprint(signed))


def test_a_token_for_another_checkpoint_or_from_another_tsa_does_not(tsa: TsaServer) -> None:
    signed, other = checkpoint(5), checkpoint(6)
    token = token_for(tsa, other)
    assert "message imprint" in " ".join(verify_timestamp(signed, token, [tsa.root_certificate]))
    stranger = TsaServer()
    assert "trusted TSA roots" in " ".join(verify_timestamp(other, token, [stranger.root_certificate]))
    assert "no TSA root" in " ".join(verify_timestamp(other, token, []))


def test_a_changed_token_does_not_verify(tsa: TsaServer) -> None:
    signed = checkpoint()
    token = bytearray(token_for(tsa, signed))
    token[-10] ^= 0x01  # inside the TSA's signature value
    problems = verify_timestamp(signed, bytes(token), [tsa.root_certificate])
    assert problems and "signature" in " ".join(problems)
    assert "not an RFC 3161" in " ".join(verify_timestamp(signed, b"\x30\x03\x02\x01\x01", [tsa.root_certificate]))


def test_a_token_older_than_its_checkpoint_is_named_a_late_one_holds(tsa: TsaServer) -> None:
    """A genTime an hour before the checkpoint's own time cannot vouch for it (within=None does not look); one an
    hour after it (the anchor job after a TSA outage) is a valid anchor: the checkpoint existed by then."""
    early = checkpoint(at=NOW + timedelta(hours=1))
    token = token_for(tsa, early)
    problems = verify_timestamp(early, token, [tsa.root_certificate])
    assert len(problems) == 1 and "genTime" in problems[0] and "before" in problems[0]
    assert verify_timestamp(early, token, [tsa.root_certificate], within=None) == []
    late = checkpoint(at=NOW - timedelta(hours=1))
    assert verify_timestamp(late, token_for(tsa, late), [tsa.root_certificate]) == []


def test_the_published_checkpoint_reads_back_anchored_or_not(tsa: TsaServer) -> None:
    signed = checkpoint()
    stamp = TimestampToken.read(token_for(tsa, signed))
    data = AnchoredCheckpoint(signed, stamp).to_json()
    assert data["anchored"] is True and base64.b64decode(data["anchor"]["token"]) == stamp.token
    assert AnchoredCheckpoint.from_json(data) == AnchoredCheckpoint(signed, stamp)
    bare = AnchoredCheckpoint(signed, None).to_json()
    assert bare["anchored"] is False and bare["anchor"] is None
    assert AnchoredCheckpoint.from_json(bare).anchor is None
    assert AnchoredCheckpoint.from_json(signed.to_json()).anchor is None  # a bundle made before anchoring
    bad: list[dict[str, Any]] = [{**data, "anchored": False}, {**bare, "anchored": True},
                                 {**data, "anchor": {**data["anchor"], "gen_time": "2020-01-01T00:00:00.000000Z"}}]
    for changed in bad:
        with pytest.raises(ValueError, match="anchor"):
            AnchoredCheckpoint.from_json(changed)


def test_a_bundle_carries_its_checkpoint_s_anchor() -> None:
    tsa = TsaServer(clock=lambda: AT + timedelta(seconds=2))  # make_bundle's checkpoint is signed at AT
    bundle, _ = make_bundle()
    assert verify_bundle(bundle, KEY.public_key()) == []
    assert "not anchored" in " ".join(verify_bundle(bundle, KEY.public_key(), [tsa.root_certificate]))
    stamp = TimestampToken.read(token_for(tsa, bundle.proof.checkpoint))
    anchored = Bundle.from_json(Bundle(bundle.opening, bundle.leaf, bundle.proof, None, stamp).to_json())
    assert anchored.anchor == stamp
    assert verify_bundle(anchored, KEY.public_key(), [tsa.root_certificate]) == []
    other = TimestampToken.read(token_for(tsa, checkpoint(9, AT)))
    problems = verify_bundle(Bundle(bundle.opening, bundle.leaf, bundle.proof, None, other), KEY.public_key(),
                             [tsa.root_certificate])
    assert problems == ["timestamp: the token's message imprint is not SHA-256 of this checkpoint's signed bytes"]
