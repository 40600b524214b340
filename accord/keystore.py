"""Private keys of a session's actors, kept off the ledger so that a session can resume.

The ledger holds only public keys. Resuming a crashed session needs the chair's and the
delegates' private keys, so the runner that generated them keeps them in a directory
readable only by its user (mode 0600 files), one JSON file per session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from accord.ledger.identity import Identity, b64, unb64


class KeyStoreError(RuntimeError):
    pass


def default_keys_dir(ledger_location: str) -> Path:
    """`accord.db` keeps its keys in `accord.keys/`; a database URL uses `./accord.keys/`."""
    if "://" not in ledger_location:
        path = Path(ledger_location)
        return path.with_name(path.stem + ".keys")
    return Path("accord.keys")


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, session_id: str) -> Path:
        return self.directory / f"{session_id}.json"

    def save(self, session_id: str, identities: dict[str, Identity]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(session_id)
        doc = {actor: b64(i.private_bytes()) for actor, i in identities.items()}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
        return path

    def actor_identity(self, session_id: str, actor: str) -> tuple[Identity, bool]:
        """One actor's key for a session, created on first use: (identity, existed before).

        For actors that run in their own processes (a delegate on another machine keeps
        only its own key). `existed` tells a restarted process from a new one.
        """
        path = self.directory / f"{session_id}.{actor}.json"
        if path.exists():
            try:
                raw = json.loads(path.read_text())[actor]
            except (OSError, json.JSONDecodeError, KeyError) as exc:
                raise KeyStoreError(f"{path}: unreadable key file: {exc}") from None
            return Identity.from_private_bytes(actor, unb64(raw)), True
        identity = Identity.generate(actor)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({actor: b64(identity.private_bytes())}, fh)
        return identity, False

    def load(self, session_id: str) -> dict[str, Identity]:
        path = self._path(session_id)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise KeyStoreError(
                f"no keys for session {session_id!r} in {self.directory} (pass --keys DIR if "
                "the session was run with another key directory)"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise KeyStoreError(f"{path}: unreadable key file: {exc}") from None
        return {actor: Identity.from_private_bytes(actor, unb64(raw)) for actor, raw in doc.items()}
