"""PII at rest: ID numbers and mobile numbers encrypted with AES-256-GCM, found again by a keyed hash.

A token is ``<key id>:<base64url(nonce | ciphertext+tag)>``, e.g. ``v1:Jx2…``: ASCII, fits a VARCHAR, and names
the key that made it so keys can rotate (old keys stay for decryption only). The ``context`` ("id_number",
"mobile") is bound as associated data, so a token copied into another column does not decrypt there.

Equality look-ups ("is this ID number already an applicant?") use :meth:`PiiVault.lookup_hash`, an HMAC under
a separate key derived from the master key: deterministic, but useless without the key (a plain hash of an
18-digit ID number is brute-forced in minutes).

The master key is 32 random bytes: ``LEASELINE_PII_KEY`` (base64) in production, a key file made on first
run in development (:func:`load_or_create_key`). Primitives: https://cryptography.io/en/latest/hazmat/primitives/aead/
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from infra.keyfiles import create_once

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12  # 96-bit random nonce: safe for far more than 2**32 messages per key at our volumes
TAG_BYTES = 16
_KEY_ID = re.compile(r"[a-z0-9]{1,16}")


class PiiError(ValueError):
    """A token cannot be decrypted: malformed, unknown key id, tampered, or for another context."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    """A 32-byte subkey for one purpose (HKDF-SHA256, RFC 5869): one master key, independent uses."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"leaseline/pii/" + purpose).derive(master)


def normalize(text: str) -> str:
    """What lookup hashes compare: NFKC (full-width digits → ASCII), trimmed, upper-case (ID check digit x/X)."""
    return unicodedata.normalize("NFKC", text).strip().upper()


class PiiVault:
    """Encrypts and decrypts PII fields; thread-safe.

    ``PiiVault(key)`` uses one key under id ``v1``. To rotate, name the new key and keep the old ones for
    reading: ``PiiVault(new, key_id="v2", old_keys={"v1": old})``; re-encrypt with :meth:`reencrypt`
    where :meth:`needs_rotation` is true. Lookup hashes derive from the current key and must be recomputed
    in the same pass.
    """

    def __init__(self, key_material: bytes, *, key_id: str = "v1", old_keys: Mapping[str, bytes] | None = None) -> None:
        keys = {**(old_keys or {}), key_id: key_material}
        for kid, key in keys.items():
            if not _KEY_ID.fullmatch(kid):
                raise ValueError(f"PII key id must be 1-16 characters of a-z 0-9; got {kid!r}")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError(f"PII key {kid!r} must be {KEY_BYTES} bytes")
        self.key_id = key_id
        self._aead = {kid: AESGCM(_derive(key, b"aes-256-gcm")) for kid, key in keys.items()}
        self._mac_key = _derive(key_material, b"lookup-hmac-sha256")

    @staticmethod
    def _aad(key_id: str, context: str) -> bytes:
        if not context:
            raise ValueError("PII context must be a non-empty name such as 'id_number'")
        return f"leaseline-pii|{key_id}|{context}".encode()

    def encrypt(self, text: str, context: str) -> str:
        """``text`` as a token ``<key id>:<base64url(nonce|ciphertext)>``, a fresh random nonce each time."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead[self.key_id].encrypt(nonce, text.encode("utf-8"), self._aad(self.key_id, context))
        return f"{self.key_id}:{base64.urlsafe_b64encode(nonce + sealed).rstrip(b'=').decode('ascii')}"

    def decrypt(self, token: str, context: str) -> str:
        """The text inside ``token``; :class:`PiiError` if it was altered, made for another context or key."""
        key_id, sep, body = token.partition(":") if isinstance(token, str) else ("", "", "")
        aead = self._aead.get(key_id)
        if not sep or aead is None:
            raise PiiError(f"not a PII token of a known key (key id {key_id[:16]!r})")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise PiiError("PII token is not valid base64url") from None
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise PiiError("PII token is too short")
        try:
            plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(key_id, context))
        except InvalidTag:
            raise PiiError("PII token does not authenticate (tampered, or another context or key)") from None
        return plain.decode("utf-8")

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` was made with a key other than the current one."""
        return token.partition(":")[0] != self.key_id

    def reencrypt(self, token: str, context: str) -> str:
        """``token`` decrypted and encrypted again under the current key."""
        return self.encrypt(self.decrypt(token, context), context)

    def lookup_hash(self, text: str, context: str) -> str:
        """Hex HMAC-SHA256 of the normalized text (:func:`normalize`), separate per context, for equality search."""
        if not context:
            raise ValueError("PII context must be a non-empty name such as 'id_number'")
        message = context.encode() + b"\x00" + normalize(text).encode()
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()


def key_from_env(value: str) -> bytes:
    """The 32-byte key in ``value`` (base64, standard or URL-safe alphabet); ValueError with a clear message.

    The message never repeats the value. Make one with
    ``python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"``.
    """
    text = (value or "").strip()
    alphabet = text.replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(alphabet + "=" * (-len(alphabet) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("PII key must be base64 of 32 random bytes; the value given is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"PII key must be base64 of {KEY_BYTES} random bytes; it decodes to {len(key)} bytes")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, made on first run: 32 random bytes, base64, file mode 0600 (race-safe,
    never overwritten: :func:`infra.keyfiles.create_once`)."""
    content = create_once(Path(path), lambda: base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n", "PII key")
    try:
        return key_from_env(content.decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"PII key file {path}: {exc}") from None


def configured_key(value: str, var_dir: Path) -> bytes:
    """The key the deployment uses: ``value`` (LEASELINE_PII_KEY, base64) when set, else ``var_dir/pii_key``
    (development; made on first run). The one place that decides, for the app and the migrations alike."""
    return key_from_env(value) if value else load_or_create_key(var_dir / "pii_key")
