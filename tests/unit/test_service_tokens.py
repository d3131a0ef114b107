"""Service tokens (infra/service_tokens.py): issue, verify, and every way a token is refused."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey

from infra.service_tokens import InvalidToken
from infra.service_tokens import TokenIssuer
from infra.service_tokens import TokenVerifier
from infra.service_tokens import generate_signing_key
from infra.service_tokens import load_or_create_signing_key
from infra.service_tokens import public_jwks

KEY = generate_signing_key()
ISSUER = TokenIssuer(KEY, "leaseline")
VERIFIER = TokenVerifier(public_jwks(KEY), "leaseline", "leaseline-risk")


def test_round_trip() -> None:
    token = ISSUER.issue("leaseline-bff", "leaseline-risk", ["risk:assess", "risk:review"], ttl=60)
    claims = VERIFIER.verify(token)
    assert claims.subject == "leaseline-bff" and claims.scopes == frozenset({"risk:assess", "risk:review"})
    assert claims.expires_at - claims.issued_at == 60 and claims.token_id and claims.has("risk:assess")
    assert {"iat", "nbf", "exp", "jti", "iss", "aud", "sub", "scope"} <= set(claims.raw)


def test_verifier_accepts_a_key_set() -> None:
    token = ISSUER.issue("bff", "leaseline-risk", [])
    assert TokenVerifier(KeySet.import_key_set(public_jwks(KEY)), "leaseline", "leaseline-risk").verify(token)


def test_rs256_issuer() -> None:
    rsa = RSAKey.generate_key(2048)
    token = TokenIssuer(rsa, "leaseline").issue("bff", "leaseline-risk", ["risk:assess"])
    assert TokenVerifier(public_jwks(rsa), "leaseline", "leaseline-risk").verify(token).subject == "bff"


def test_public_jwks_has_no_private_part() -> None:
    jwk = public_jwks(KEY)["keys"][0]
    assert "d" not in jwk and jwk["kid"] and jwk["alg"] == "Ed25519"


# Each case makes its token when the test runs: minted at collection time, the time-bound ones would have
# expired by the time a long suite reaches them (issued 400 s ahead, valid 5 minutes, run 15 minutes later).
@pytest.mark.parametrize(("make", "reason"), [
    (lambda: TokenIssuer(generate_signing_key(), "leaseline", kid=ISSUER.kid).issue("bff", "leaseline-risk", []),
     "bad signature"),
    (lambda: TokenIssuer(generate_signing_key(), "leaseline").issue("bff", "leaseline-risk", []),
     "unknown signing key"),
    (lambda: ISSUER.issue("bff", "leaseline-contract", []), "wrong audience"),
    (lambda: TokenIssuer(KEY, "someone-else").issue("bff", "leaseline-risk", []), "wrong issuer"),
    (lambda: TokenIssuer(KEY, "leaseline", clock=lambda: time.time() - 400).issue("bff", "leaseline-risk", [],
                                                                                  ttl=300),
     "expired"),
    (lambda: TokenIssuer(KEY, "leaseline", clock=lambda: time.time() + 400).issue("bff", "leaseline-risk", []),
     "issued in the future"),
    (lambda: "not-a-jwt", "malformed"),
    (lambda: "a.b.c", "malformed"),
    (lambda: "", "malformed"),
    (lambda: "x" * 9000, "malformed"),
], ids=["bad-signature", "unknown-key", "wrong-audience", "wrong-issuer", "expired", "future", "not-a-jwt",
        "three-parts", "empty", "huge"])
def test_refused(make: Callable[[], str], reason: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        VERIFIER.verify(make())
    assert caught.value.reason.startswith(reason)


def test_leeway_accepts_small_clock_skew() -> None:
    token = TokenIssuer(KEY, "leaseline", clock=lambda: time.time() - 310).issue("bff", "leaseline-risk", [], ttl=300)
    assert VERIFIER.verify(token).subject == "bff"


def test_signing_key_file_is_made_once_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "service_signing_key.pem"
    found: list[str] = []
    threads = [threading.Thread(target=lambda: found.append(load_or_create_signing_key(path).thumbprint()))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_signing_key(path).thumbprint() == found[0]


def test_public_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pub.pem"
    path.write_bytes(KEY.as_pem(private=False))
    with pytest.raises(ValueError, match="public key"):
        load_or_create_signing_key(path)
