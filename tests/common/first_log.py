"""A contract database as the contract service left it before the evidence log held commitments (revision 0002):
the first log's clear entries, a signed checkpoint after each append (as that version signed them), and, for a
``contract_signed`` entry, the signed contract whose signature rows name that entry's index in the first log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy import insert

from contract.db.migrate import upgrade
from contract.db.models import ContractRow
from contract.db.models import LegacyCheckpointRow
from contract.db.models import LegacyEntryRow
from contract.db.models import SignatureRow
from contract.evidence import load_or_create_key
from contract.ledger import Checkpoint
from contract.ledger import MerkleTree
from contract.ledger import encode_entry
from contract.ledger import leaf_hash
from contract.ledger import sign

AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
#: (kind, subject, data, idempotency key) as the contract service logged them before 0003
Entry = tuple[str, str, dict[str, Any], str | None]


def write_first_log(url: str, key_path: Path, entries: Sequence[Entry], origin: str) -> tuple[list[bytes], bytes]:
    """Migrate ``url`` to 0002 and write ``entries`` as the first log; the clear bytes of each, and the root."""
    upgrade(url, "0002")
    key = load_or_create_key(key_path)
    engine = create_engine(url)
    tree, raws = MerkleTree(), []
    with engine.begin() as conn:
        for i, (kind, subject, data, idem) in enumerate(entries):
            at = AT + timedelta(minutes=i)
            raw = encode_entry(kind, subject, data, at)
            raws.append(raw)
            tree.append(leaf_hash(raw))
            conn.execute(insert(LegacyEntryRow), {"idx": i, "entry": raw, "leaf_hash": leaf_hash(raw), "kind": kind,
                                                  "subject": subject, "idempotency_key": idem, "created_at": at})
            cp = sign(Checkpoint(origin, i + 1, tree.root(), at), key)
            conn.execute(insert(LegacyCheckpointRow), {
                "tree_size": i + 1, "root_hash": cp.checkpoint.root_hash, "timestamp": at, "origin": origin,
                "signature": cp.signature, "public_key": cp.public_key})
            if kind != "contract_signed":
                continue
            conn.execute(insert(ContractRow), {
                "id": data["contract_id"], "number": data["number"], "application_id": subject, "dealer_id": "d",
                "status": "signed", "snapshot_enc": "x", "lessee_masked": "王*", "draft_key": "k",
                "draft_sha256": "0" * 64, "pages": 3, "signed_sha256": data["sha256"], "created_at": at,
                "signed_at": at})
            for role in ("lessor_certification", "lessee", "lessor"):
                conn.execute(insert(SignatureRow), {
                    "contract_id": data["contract_id"], "role": role, "signer": "x", "certificate_serial": "1",
                    "certificate_sha256": "0" * 64, "identity": {}, "ledger_index": i, "signed_at": at})
    engine.dispose()
    return raws, tree.root()
