"""PiiVault: AES-256-GCM tokens bound to their context, keyed lookup hashes, key files and env keys."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from infra.pii import PiiError
from infra.pii import PiiVault
from infra.pii import key_from_env
from infra.pii import load_or_create_key

ID_NUMBER = "11010519491231002X"
KEY = bytes(range(32))


@pytest.fixture
def vault() -> PiiVault:
    return PiiVault(KEY)


def test_round_trip(vault: PiiVault) -> None:
    token = vault.encrypt(ID_NUMBER, "id_number")
    assert token.startswith("v1:") and token.isascii()
    assert ID_NUMBER not in token
    assert vault.decrypt(token, "id_number") == ID_NUMBER
    assert vault.decrypt(vault.encrypt("张三 13800138000", "mobile"), "mobile") == "张三 13800138000"


def test_fresh_nonce_each_time(vault: PiiVault) -> None:
    tokens = {vault.encrypt(ID_NUMBER, "id_number") for _ in range(50)}
    assert len(tokens) == 50
    nonces = {base64.urlsafe_b64decode(t[3:] + "==")[:12] for t in tokens}
    assert len(nonces) == 50


def test_tampered_token_fails(vault: PiiVault) -> None:
    token = vault.encrypt(ID_NUMBER, "id_number")
    raw = bytearray(base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4)))
    for index in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        bad = "v1:" + base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
        with pytest.raises(PiiError):
            vault.decrypt(bad, "id_number")
    for bad in ("", "v1:", "v1:!!!", "v9:" + token[3:], token[3:], "v1:" + token[3:20]):
        with pytest.raises(PiiError):
            vault.decrypt(bad, "id_number")


def test_wrong_context_fails(vault: PiiVault) -> None:
    token = vault.encrypt(ID_NUMBER, "id_number")
    with pytest.raises(PiiError):
        vault.decrypt(token, "mobile")


def test_wrong_key_fails(vault: PiiVault) -> None:
    token = vault.encrypt(ID_NUMBER, "id_number")
    with pytest.raises(PiiError):
        PiiVault(bytes(32)).decrypt(token, "id_number")


def test_rotation_reads_old_tokens_and_reencrypts() -> None:
    old = PiiVault(KEY)
    token = old.encrypt(ID_NUMBER, "id_number")
    new = PiiVault(bytes(32), key_id="v2", old_keys={"v1": KEY})
    assert new.decrypt(token, "id_number") == ID_NUMBER
    assert new.needs_rotation(token)
    fresh = new.reencrypt(token, "id_number")
    assert fresh.startswith("v2:") and not new.needs_rotation(fresh)
    assert new.decrypt(fresh, "id_number") == ID_NUMBER


def test_lookup_hash_is_stable_normalized_and_per_context(vault: PiiVault) -> None:
    digest = vault.lookup_hash(ID_NUMBER, "id_number")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert vault.lookup_hash(ID_NUMBER, "id_number") == digest
    assert PiiVault(KEY).lookup_hash(ID_NUMBER, "id_number") == digest  # stable across instances
    assert vault.lookup_hash("  11010519491231002x ", "id_number") == digest  # strip, upper-case
    assert vault.lookup_hash("１１０１０５１９４９１２３１００２Ｘ", "id_number") == digest  # full-width input
    assert vault.lookup_hash(ID_NUMBER, "mobile") != digest
    assert vault.lookup_hash("110105194912310036", "id_number") != digest
    assert PiiVault(bytes(32)).lookup_hash(ID_NUMBER, "id_number") != digest  # keyed, not a plain hash


def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pii_key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert key_from_env(path.read_text()) == key
    assert [p.name for p in path.parent.iterdir()] == ["pii_key"]  # no temporary file left behind


def test_key_file_never_overwritten_and_garbage_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pii_key"
    path.write_text("not a key")
    with pytest.raises(ValueError, match="pii_key"):
        load_or_create_key(path)
    assert path.read_text() == "not a key"


def test_env_key_accepted_in_both_alphabets() -> None:
    key = os.urandom(32)
    assert key_from_env(base64.b64encode(key).decode()) == key
    assert key_from_env(" " + base64.urlsafe_b64encode(key).decode().rstrip("=") + "\n") == key


@pytest.mark.parametrize("value", ["", "   ", "not base64 at all!", base64.b64encode(b"short").decode(),
                                   base64.b64encode(os.urandom(64)).decode()])
def test_bad_env_key_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="32 random bytes") as info:
        key_from_env(value)
    assert not value.strip() or value.strip() not in str(info.value)  # the secret is never echoed


def test_bad_keys_rejected_by_vault() -> None:
    with pytest.raises(ValueError):
        PiiVault(b"short")
    with pytest.raises(ValueError):
        PiiVault(KEY, key_id="V1:")


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "pii_key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key(path), range(32)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["pii_key"]
