"""Importers: the field's standard data sets turned into Accord session files.

- `accord.importers.genius`: Genius XML and GeniusWeb JSON negotiation domains (ANAC).
- `accord.importers.polis`: Polis open-data conversation exports.

Both produce a validated `SessionSpec` plus a side structure with what a session file has
no field for (original names, discount factors, Polis group-informed consensus), and
never write anything themselves: `accord import ...` (accord/cli_import.py) writes the
session YAML and a JSON sidecar beside it, each atomically.

Imported profiles are *thin*: a preference profile or a group's votes is not a value in
the Meaning Alignment Institute's sense, so every card these importers make says
`source: preference-derived` and its policies say where the numbers come from.

The helpers below (ids, YAML, atomic writes, the error type) are shared by both.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from accord.session_file import SessionSpec

ID_MAX = 64
_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")
_ID_LEAD = re.compile(r"^[^A-Za-z0-9]+")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class ImporterError(ValueError):
    """Input that cannot be imported: which file, which element or field, and why."""

    def __init__(self, file: Path | str, element: str, reason: str) -> None:
        self.file = str(file)
        self.element = element
        self.reason = reason
        super().__init__(f"{self.file}: {element}: {reason}")


def sanitise_id(text: str, fallback: str, max_len: int = ID_MAX) -> str:
    """`text` in Accord's id alphabet (`^[A-Za-z0-9][A-Za-z0-9_.-]*$`, at most `max_len`).

    Runs of other characters become one `_`; leading non-alphanumerics are dropped
    ("$5" -> "5", "19'' LCD" -> "19_LCD"); an empty result becomes `fallback`. Truncated
    ids keep a short hash of the full text so that two long names stay apart.
    """
    cleaned = _ID_LEAD.sub("", _ID_BAD.sub("_", text.strip())).rstrip("_")
    if not cleaned:
        cleaned = fallback
    return fit_id(cleaned, max_len, key=text)


def fit_id(candidate: str, max_len: int = ID_MAX, key: str | None = None) -> str:
    """`candidate` cut to `max_len`, ending in an 8-hex hash of `key` when it had to be cut."""
    if len(candidate) <= max_len:
        return candidate
    digest = hashlib.sha256((key if key is not None else candidate).encode("utf-8")).hexdigest()[:8]
    return candidate[: max_len - 9].rstrip("_.-") + "-" + digest


class IdAllocator:
    """Distinct ids in one namespace (issue ids, or the option ids of one issue)."""

    def __init__(self, max_len: int = ID_MAX) -> None:
        self.max_len = max_len
        self._used: set[str] = set()

    def take(self, text: str, fallback: str) -> str:
        base = sanitise_id(text, fallback, self.max_len)
        candidate, n = base, 2
        while candidate.casefold() in self._used:
            suffix = f"-{n}"
            candidate = fit_id(base, self.max_len - len(suffix), key=text) + suffix
            n += 1
        self._used.add(candidate.casefold())
        return candidate


def _prune(node: Any) -> Any:
    """Drop empty lists and mappings (every such field of a session defaults to empty)."""
    if isinstance(node, dict):
        return {k: _prune(v) for k, v in node.items() if v != [] and v != {}}
    if isinstance(node, list):
        return [_prune(v) for v in node]
    return node


def session_document(spec: SessionSpec) -> dict[str, Any]:
    """The spec as a plain mapping in model field order, shorn of clutter for readers.

    Dropped: null fields, empty lists and mappings, a constituent's default `weight: 1.0`
    and a constituency's default `weighting`. Nothing else, so the file loads back to an
    equal spec (tested); `by`, `source`, the protocol name and strategies stay explicit.
    """
    from constituencies.constituency import Weighting

    doc = spec.model_dump(mode="json", exclude_none=True)
    default_weighting = Weighting().model_dump(mode="json")
    for constituency in doc.get("constituencies", []):
        if constituency.get("weighting") == default_weighting:
            del constituency["weighting"]
        for person in constituency.get("constituents", []):
            if person.get("weight") == 1.0:
                del person["weight"]
    return _prune(doc)


def dump_session_yaml(spec: SessionSpec, header: str = "") -> str:
    """Readable YAML of `spec` (fields in model order), loadable by `load_session`."""
    body = yaml.safe_dump(session_document(spec), sort_keys=False, allow_unicode=True, width=100)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + body


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sidecar_path(output: Path, kind: str) -> Path:
    """`session.yaml` -> `session.<kind>.json`, beside the session file."""
    output = Path(output)
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.{kind}.json")


from accord.importers.genius import (  # noqa: E402 - the helpers above are theirs too
    GeniusImport,
    GeniusImportError,
    import_genius,
)
from accord.importers.polis import (  # noqa: E402
    PolisImport,
    PolisImportError,
    group_informed_consensus,
    import_polis,
)

__all__ = [
    "GeniusImport",
    "GeniusImportError",
    "IdAllocator",
    "ImporterError",
    "PolisImport",
    "PolisImportError",
    "dump_session_yaml",
    "fit_id",
    "group_informed_consensus",
    "import_genius",
    "import_polis",
    "sanitise_id",
    "sidecar_path",
    "write_text_atomic",
]
