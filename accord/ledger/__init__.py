"""The ledger: signed envelopes, hash chain and Merkle tree, storage, checkpoints, proofs
and verification."""

from accord.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    cosign,
    sign_checkpoint,
    verify_checkpoint,
    verify_checkpoint_consistency,
)
from accord.ledger.envelope import Envelope, EnvelopeError, Signer
from accord.ledger.identity import Identity, PublicKeys
from accord.ledger.store import DEFAULT_LEDGER, Entry, Ledger, LedgerError, SessionInfo, SessionWriter
from accord.ledger.verify import Problem, VerifyReport, verify_entries

__all__ = [
    "DEFAULT_LEDGER",
    "Checkpoint",
    "CheckpointError",
    "Entry",
    "Envelope",
    "EnvelopeError",
    "Identity",
    "Ledger",
    "LedgerError",
    "Problem",
    "PublicKeys",
    "SessionInfo",
    "SessionWriter",
    "Signer",
    "VerifyReport",
    "cosign",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_checkpoint_consistency",
    "verify_entries",
]
