"""Password and recovery-code hashing with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError

_hasher = PasswordHasher()
#: verified against when the account does not exist, so timing does not reveal which emails exist
DUMMY_HASH = _hasher.hash("no such account")


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(hashed: str | None, secret: str) -> bool:
    """True when ``secret`` matches ``hashed``; always does the work of one verification."""
    try:
        return _hasher.verify(hashed or DUMMY_HASH, secret) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False
