"""The ledger: signed envelopes, hash chain, storage and verification."""

from accord.ledger.envelope import Envelope, EnvelopeError, Signer
from accord.ledger.identity import Identity, PublicKeys
from accord.ledger.store import DEFAULT_LEDGER, Entry, Ledger, LedgerError, SessionInfo
from accord.ledger.verify import VerifyReport, verify_entries

__all__ = [
    "DEFAULT_LEDGER",
    "Entry",
    "Envelope",
    "EnvelopeError",
    "Identity",
    "Ledger",
    "LedgerError",
    "PublicKeys",
    "SessionInfo",
    "Signer",
    "VerifyReport",
    "verify_entries",
]
