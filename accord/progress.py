"""What a running session reports as it goes, for live views and tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SessionEvent:
    """One recorded step: `kind` is the envelope kind, `actor` who signed it."""

    idx: int
    kind: str
    actor: str
    body: dict[str, Any]


class ProgressSink(Protocol):
    def __call__(self, event: SessionEvent) -> None: ...
