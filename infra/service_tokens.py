"""Service-to-service tokens: short-lived JWTs (RFC 9068 access-token profile) signed with Ed25519.

The BFF mints its own client-credentials token with the issuer key (an *embedded token service*): in
development and tests the signing key is a PEM file made on first run in ``var/``
(:func:`load_or_create_signing_key`) and each service verifies with its public half
(:func:`public_jwks`). In production the verifier is pointed at the platform issuer's JWKS instead
(``LEASELINE_SERVICE_JWKS``, the ``keys`` of ``<issuer>/.well-known/jwks.json``), and the BFF obtains its token
from that issuer with the OAuth2 client-credentials grant; nothing else changes.

Algorithms: ``Ed25519`` (RFC 9864's fully-specified name; joserfc warns on the deprecated ``EdDSA``), and
``RS256`` / ``ES256`` / ``PS256`` for platform issuers that sign with RSA or P-256.
Library: joserfc (https://jose.authlib.org/en/), not ``authlib.jose`` (deprecated).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.errors import ExpiredTokenError
from joserfc.errors import InvalidClaimError
from joserfc.errors import JoseError
from joserfc.errors import MissingClaimError
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import OKPKey
from joserfc.jwk import RSAKey
from joserfc.jwt import JWTClaimsRegistry

from infra.keyfiles import create_once

log = logging.getLogger(__name__)

SCOPE_ASSESS = "risk:assess"
SCOPE_REVIEW = "risk:review"
#: what a verifier accepts; the signing side uses the algorithm that fits its key
ALGORITHMS = ("Ed25519", "RS256", "PS256", "ES256")
MAX_TOKEN_BYTES = 8192

SigningKey = OKPKey | RSAKey | ECKey


class InvalidToken(Exception):  # noqa: N818 — the name callers read in `except InvalidToken`
    """A bearer token is refused; ``reason`` is short and safe to log (never the token itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    """The verified claims of a service token."""

    subject: str
    scopes: frozenset[str]
    issuer: str
    audience: str
    token_id: str
    issued_at: int
    expires_at: int
    client_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def _algorithm(key: SigningKey) -> str:
    if isinstance(key, OKPKey):
        if key.curve_name != "Ed25519":
            raise ValueError("service tokens sign with Ed25519 OKP keys only")
        return "Ed25519"
    if isinstance(key, RSAKey):
        return "RS256"
    return "ES256"


def generate_signing_key() -> OKPKey:
    """A fresh Ed25519 private key (in memory)."""
    return OKPKey.generate_key("Ed25519")


def key_id(key: SigningKey) -> str:
    """A stable key id: the RFC 7638 thumbprint of the public key."""
    return key.thumbprint()


def load_signing_key(pem: bytes | str) -> SigningKey:
    """A private key from PEM (Ed25519, RSA or P-256)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    for cls in (OKPKey, RSAKey, ECKey):
        try:
            key = cls.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
        if not key.is_private:
            raise ValueError("the service signing key file holds a public key, not a private one")
        return key
    raise ValueError("the service signing key is not a PEM private key (Ed25519, RSA or P-256)")


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The private key in ``path`` (PEM), made on first run: Ed25519, file mode 0600 (race-safe, never
    overwritten: :func:`infra.keyfiles.create_once`)."""
    content = create_once(Path(path), lambda: generate_signing_key().as_pem(private=True), "service signing key")
    try:
        return load_signing_key(content)
    except ValueError as exc:
        raise ValueError(f"service signing key file {path}: {exc}") from None


def public_jwks(private_key: SigningKey, kid: str | None = None) -> dict[str, Any]:
    """The JWK Set (RFC 7517) that verifies tokens signed by ``private_key``: public parts only."""
    jwk = dict(private_key.as_dict(private=False))
    jwk.update(kid=kid or key_id(private_key), use="sig", alg=_algorithm(private_key))
    return {"keys": [jwk]}


class TokenIssuer:
    """Mints service access tokens signed by ``private_key`` (header ``typ: at+jwt``, ``kid``)."""

    def __init__(self, private_key: SigningKey, issuer: str, kid: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not private_key.is_private:
            raise ValueError("TokenIssuer needs a private key")
        self.key = private_key
        self.issuer = issuer
        self.kid = kid or key_id(private_key)
        self.algorithm = _algorithm(private_key)
        self._clock = clock

    def issue(self, subject: str, audience: str, scopes: Sequence[str], ttl: int = 300,
              **extra: Any) -> str:
        """A signed JWT for ``subject`` (the calling service) to call ``audience`` with ``scopes``."""
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        now = int(self._clock())
        claims: dict[str, Any] = {
            **extra,
            "iss": self.issuer, "sub": subject, "aud": audience, "client_id": subject,
            "scope": " ".join(scopes), "iat": now, "nbf": now, "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
        }
        header = {"alg": self.algorithm, "kid": self.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, self.key, algorithms=[self.algorithm])


def _key_set(public_keys: KeySet | Mapping[str, Any] | SigningKey) -> KeySet:
    if isinstance(public_keys, KeySet):
        return public_keys
    if isinstance(public_keys, OKPKey | RSAKey | ECKey):
        return KeySet.import_key_set(public_jwks(public_keys))  # type: ignore[arg-type]
    if isinstance(public_keys, Mapping) and isinstance(public_keys.get("keys"), list):
        keys = [{k: v for k, v in dict(jwk).items() if k != "d"} for jwk in public_keys["keys"]]  # never private
        return KeySet.import_key_set({"keys": keys})  # type: ignore[typeddict-item]
    raise ValueError("public keys must be a joserfc KeySet or a JWKS dict {'keys': [...]}")


class TokenVerifier:
    """Verifies service tokens: signature (by ``kid``), issuer, audience, expiry and not-before.

    A caller keeps its token for minutes and sends it on every call, so the claims of the last ``cache_size``
    tokens that passed are kept, keyed by the whole token string (signature included): a token seen before is
    only checked for expiry again, which is the one check whose answer changes with time. Verifying the
    signature and claims again cost as much as the rest of a risk assessment's request handling."""

    def __init__(self, public_keys: KeySet | Mapping[str, Any] | SigningKey, issuer: str, audience: str,
                 leeway: int = 30, clock: Callable[[], float] = time.time, cache_size: int = 256) -> None:
        self.keys = _key_set(public_keys)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._clock = clock
        self._cache_size = cache_size
        self._verified: OrderedDict[str, Claims] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Claims:
        """The claims of ``token``; :class:`InvalidToken` when it is malformed, forged, for someone else or stale."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("malformed token")
        with self._lock:
            known = self._verified.get(token)
            if known is not None:
                self._verified.move_to_end(token)
        if known is not None:
            if known.expires_at <= int(self._clock()) - self.leeway:  # as joserfc's exp check
                with self._lock:
                    self._verified.pop(token, None)
                raise InvalidToken("expired")
            return known
        claims = self._verify(token)
        if self._cache_size > 0:
            with self._lock:
                self._verified[token] = claims
                if len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> Claims:
        try:
            decoded = jwt.decode(token, self.keys, algorithms=list(ALGORITHMS))
        except BadSignatureError:
            raise InvalidToken("bad signature") from None
        except JoseError as exc:  # unknown kid, wrong alg, not three parts, bad base64 or JSON …
            if exc.error == "invalid_key_id":
                raise InvalidToken("unknown signing key") from None
            raise InvalidToken(f"malformed token ({exc.error})") from None
        except (ValueError, TypeError, KeyError):
            raise InvalidToken("malformed token") from None
        claims = decoded.claims
        registry = JWTClaimsRegistry(
            now=lambda: int(self._clock()), leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("expired") from None
        except MissingClaimError as exc:
            raise InvalidToken(f"missing claim {exc.description or ''}".strip()) from None
        except InvalidClaimError as exc:
            claim = str(exc.claim if hasattr(exc, "claim") else exc.description or "")
            label = {"iss": "wrong issuer", "aud": "wrong audience", "nbf": "not yet valid",
                     "iat": "issued in the future"}.get(claim, f"invalid claim {claim}")
            raise InvalidToken(label) from None
        except JoseError as exc:
            raise InvalidToken(f"invalid claims ({exc.error})") from None
        scope = claims.get("scope", "")
        scopes = scope.split() if isinstance(scope, str) else [s for s in scope if isinstance(s, str)] \
            if isinstance(scope, list) else []
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise InvalidToken("invalid claim sub")
        try:
            issued, expires = int(claims.get("iat", 0)), int(claims["exp"])
        except (TypeError, ValueError):
            raise InvalidToken("invalid claim exp") from None
        return Claims(subject=subject, scopes=frozenset(scopes), issuer=self.issuer, audience=self.audience,
                      token_id=str(claims.get("jti", "")), issued_at=issued, expires_at=expires,
                      client_id=str(claims.get("client_id", subject)), raw=dict(claims))
