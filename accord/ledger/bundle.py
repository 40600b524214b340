"""Exported bundles: a session's whole signed log in a directory that anyone can check
without the database (`accord export SESSION -o DIR`, then `accord verify DIR`).

Layout (format ``accord-bundle/v1``)::

    README.txt        what the files are and how to check them
    manifest.json     format, session id, origin, number of entries
    entries.jsonl     entry i on line i+1: its canonical envelope (RFC 8785 JSON), as stored
    leaves.txt        line i+1: hex RFC 9162 leaf hash recorded for entry i
    checkpoints/      <tree size>.checkpoint: signed checkpoints (C2SP tlog-checkpoint)
    keys.json         the participants' public keys and note verifier keys (informational)

Verification trusts none of the files by themselves: keys come from the chair's signed
``session.open`` entry; ``leaves.txt`` is only used (to say precisely which line was
changed, removed, reordered or inserted) if it hashes to the signed checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accord.ledger.checkpoint import Checkpoint, origin_for, session_verifiers
from accord.ledger.merkle import leaf_hash
from accord.ledger.envelope import now_iso
from accord.ledger.store import Ledger, LedgerError
from accord.ledger.verify import Item, Problem, VerifyReport, verify_records

__all__ = ["BUNDLE_FORMAT", "BundleError", "export_bundle", "is_bundle", "verify_bundle"]

BUNDLE_FORMAT = "accord-bundle/v1"

README = """\
Accord ledger bundle: session {session}
=======================================

This directory holds the complete signed record of one Accord deliberation session,
as exported from the ledger on {exported}. It can be checked by anyone, offline,
without the database:

    accord verify {dirname}

which checks every line and names the first bad one, saying whether it was changed,
removed, reordered or inserted.

Files
-----
entries.jsonl   One entry per line, in log order (entry 0 on line 1). Each line is an
                envelope in RFC 8785 canonical JSON, signed with Ed25519 by its sender
                (field "sig", over the canonical JSON without "sig"). Entry 0 is the
                chair's "session.open": it lists every participant's public key.
                Each actor numbers its own messages 1, 2, 3, ... ("seq"): a gap means a
                message is missing.
leaves.txt      The RFC 9162 leaf hash, SHA-256(0x00 || line bytes), recorded for each
                entry, hex, one per line. Only used if it hashes to the checkpoints.
checkpoints/    Signed tree heads in the C2SP tlog-checkpoint format (signed notes):
                origin "{origin}", tree size, base64 RFC 9162 Merkle root.
                Signed by the chair (key name "{origin}", Ed25519 signed-note
                signature) and co-signed by delegates as witnesses (key names
                "{origin}/<delegate>", tlog-cosignature/v1). A delegate's cosignature
                means it saw this exact history: the operator cannot show a different
                one to others. A note holds at most 100 signatures: with more
                cosigners, the file holds several complete notes of the same text,
                one after the other, each starting with the chair's signature.
keys.json       The public keys from session.open, with their note key IDs and
                verifier keys. For convenience only: verification reads the keys from
                session.open. Compare the chair's key ({chair_key_id}) with one you
                obtained elsewhere (your delegate, the organizer).

Checking by hand
----------------
1. Check each line's Ed25519 signature with the key session.open lists for its
   "actor", and that each actor's "seq" numbers run 1, 2, 3, ... without gaps.
2. Hash each line as an RFC 9162 leaf, build the Merkle tree of the first N lines,
   and compare its root with the root in checkpoints/N.checkpoint.
3. Check the checkpoint's signature lines (signed-note: key ID = first 4 bytes of
   SHA-256(key name || 0x0A || 0x01 || public key); 0x04 for cosignatures).

Personal data: constituents appear only as pseudonymous ids; anything private enters
the log only as a salted SHA-256 commitment, whose salt is kept off the ledger.
"""


class BundleError(RuntimeError):
    """A bundle that cannot be written or read (not: one that fails verification)."""


def is_bundle(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "entries.jsonl").is_file()


async def export_bundle(ledger: Ledger, session_id: str, directory: str | Path) -> Path:
    """Write the session's bundle to `directory` (which must not exist, or be empty).

    Written to a temporary sibling and renamed into place, so a failure leaves nothing
    half-written. The entries are exported as stored, verified or not.
    """
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BundleError(f"{target} exists and is not an empty directory")
    rows = await ledger.entries(session_id)
    if not rows:
        raise LedgerError(f"session {session_id!r} has no entries to export")
    checkpoints = await ledger.checkpoints(session_id)
    keys: dict[str, str] = {}
    if rows[0].kind == "session.open" and isinstance(rows[0].body.get("keys"), dict):
        keys = dict(rows[0].body["keys"])
    origin = origin_for(session_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with open(staging / "entries.jsonl", "w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(row.envelope + "\n")
        with open(staging / "leaves.txt", "w", encoding="ascii", newline="\n") as fh:
            for row in rows:
                fh.write((row.leaf_hash or leaf_hash(row.envelope.encode("utf-8")).hex()) + "\n")
        (staging / "checkpoints").mkdir()
        for cp in checkpoints:
            (staging / "checkpoints" / f"{cp.size}.checkpoint").write_text(cp.text, encoding="utf-8")
        note_keys: list[dict[str, Any]] = []
        chair_key_id = "?"
        if keys.get("chair"):
            try:
                log, witnesses = session_verifiers(session_id, keys)
                chair_key_id = log.key_id.hex()
                for v in [log, *witnesses]:
                    note_keys.append({"name": v.name, "type": v.type_name, "key_id": v.key_id.hex(), "vkey": v.vkey})
            except ValueError:
                pass
        (staging / "keys.json").write_text(
            json.dumps({"session": session_id, "keys": keys, "note_keys": note_keys}, indent=2) + "\n"
        )
        exported = now_iso()
        (staging / "manifest.json").write_text(
            json.dumps(
                {
                    "format": BUNDLE_FORMAT,
                    "session": session_id,
                    "origin": origin,
                    "entries": len(rows),
                    "checkpoints": [cp.size for cp in checkpoints],
                    "exported_at": exported,
                },
                indent=2,
            )
            + "\n"
        )
        (staging / "README.txt").write_text(
            README.format(
                session=session_id,
                exported=exported,
                dirname=target.name,
                origin=origin,
                chair_key_id=chair_key_id,
            )
        )
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def verify_bundle(
    directory: str | Path, *, workers: int | None = 1, trusted: Mapping[str, str] | None = None
) -> VerifyReport:
    """Check an exported bundle with nothing but its files (see `verify_records`).

    `trusted` maps actor ids to base64 public keys obtained elsewhere; a session whose
    session.open lists other keys fails.
    """
    root = Path(directory)
    if not is_bundle(root):
        raise BundleError(f"{root} is not an Accord bundle (no entries.jsonl)")
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        session_id = manifest["session"]
        if not isinstance(session_id, str):
            raise TypeError("session is not a string")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{root / 'manifest.json'}: unreadable ({exc})") from None
    lines = _read_lines(root / "entries.jsonl")
    reference: list[bytes] | None = None
    notes: list[str] = []
    if (root / "leaves.txt").is_file():
        try:
            reference = [bytes.fromhex(line.decode("ascii")) for line in _read_lines(root / "leaves.txt")]
            if any(len(h) != 32 for h in reference):
                raise ValueError("a leaf hash is not 32 bytes")
        except (ValueError, UnicodeDecodeError) as exc:
            notes.append(f"leaves.txt is unreadable and not used: {exc}")
            reference = None
    checkpoints: list[Checkpoint | str] = []
    folder = root / "checkpoints"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file():
                checkpoints.append(path.read_text(encoding="utf-8", errors="replace"))
    items: list[Item] = [(line, None, None) for line in lines]
    report = verify_records(
        session_id,
        items,
        list(range(len(items))),
        reference=reference,
        checkpoints=checkpoints,
        workers=workers,
    )
    extra_problems: list[Problem] = []
    if trusted:
        opening = _opening_keys(lines)
        for actor, key in trusted.items():
            if opening.get(actor) != key:
                extra_problems.append(
                    Problem(idx=0, actor=actor, kind="session.open", what="checkpoint",
                            reason=f"the session's key for {actor!r} is not the one you trust")
                )
    if (root / "keys.json").is_file():
        try:
            listed = json.loads((root / "keys.json").read_text(encoding="utf-8")).get("keys")
        except (OSError, ValueError, AttributeError):
            listed = None
        if listed != _opening_keys(lines):
            notes.append("keys.json differs from the keys in session.open (keys.json is not used)")
    return report.model_copy(
        update={"problems": extra_problems + report.problems, "notes": notes + report.notes}
    )


def _opening_keys(lines: list[bytes]) -> dict[str, Any]:
    if not lines:
        return {}
    try:
        doc = json.loads(lines[0])
        keys = doc["body"]["keys"]
    except (ValueError, KeyError, TypeError):
        return {}
    return keys if isinstance(keys, dict) else {}
