"""What a server-side session holds is sealed under a key only its id gives (infra/sessions.py)."""

from __future__ import annotations

import pytest

from infra.sessions import seal
from infra.sessions import session_key
from infra.sessions import unseal


def test_sealed_data_opens_with_its_own_id_only() -> None:
    sealed = seal("id-one-" + "x" * 36, '{"uid": "u-1"}')
    assert "u-1" not in sealed and sealed != seal("id-one-" + "x" * 36, '{"uid": "u-1"}')  # a fresh nonce each time
    assert unseal("id-one-" + "x" * 36, sealed) == '{"uid": "u-1"}'
    with pytest.raises(ValueError):
        unseal("id-two-" + "x" * 36, sealed)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        unseal("id-one-" + "x" * 36, tampered)


def test_the_key_a_session_is_stored_under_is_the_ids_sha256() -> None:
    assert session_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
