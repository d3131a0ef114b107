"""The contract service's tamper-evident evidence log, pure: a transparency log after RFC 6962 / RFC 9162.

Every evidence entry (consent, KYC outcome, plan, risk decision, contract, payment …) is canonical JSON
(:mod:`contract.ledger.entries`); the public leaf of an append-only Merkle tree (:mod:`contract.ledger.merkle`)
is only a salted commitment to it (:mod:`contract.ledger.commitments`), the entry and its salt staying private
until they are handed out as a proof bundle (:mod:`contract.ledger.bundle`). The log signs its root from time to
time (:mod:`contract.ledger.checkpoint`), so a later edit, deletion or rewrite of history shows up when
:func:`verify_log` re-derives the tree (:mod:`contract.ledger.audit`). No I/O here: storage and the HTTP API
live in the service around it.
"""

from contract.ledger.audit import Report
from contract.ledger.audit import verify_log
from contract.ledger.checkpoint import Checkpoint
from contract.ledger.checkpoint import SignedCheckpoint
from contract.ledger.checkpoint import sign
from contract.ledger.checkpoint import verify
from contract.ledger.entries import KINDS
from contract.ledger.entries import MAX_INDEX
from contract.ledger.entries import SUBJECT_PATTERN
from contract.ledger.entries import decode_entry
from contract.ledger.entries import encode_entry
from contract.ledger.entries import sha256_hex
from contract.ledger.merkle import EMPTY_ROOT
from contract.ledger.merkle import MerkleTree
from contract.ledger.merkle import consistency_proof
from contract.ledger.merkle import inclusion_proof
from contract.ledger.merkle import leaf_hash
from contract.ledger.merkle import node_hash
from contract.ledger.merkle import root_hash
from contract.ledger.merkle import verify_consistency
from contract.ledger.merkle import verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "KINDS",
    "MAX_INDEX",
    "SUBJECT_PATTERN",
    "Checkpoint",
    "MerkleTree",
    "Report",
    "SignedCheckpoint",
    "consistency_proof",
    "decode_entry",
    "encode_entry",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "sha256_hex",
    "sign",
    "verify",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
]
