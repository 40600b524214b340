"""The trail reads grouped calls (one `calls` entry for many delegates) like single ones."""

from __future__ import annotations

import json
from typing import Any

from accord.ledger import Entry
from accord.trail import read_trail


def _entry(idx: int, kind: str, body: dict[str, Any]) -> Entry:
    envelope = json.dumps({"actor": "chair", "kind": kind, "body": body})
    return Entry("s", idx, "chair", idx + 1, kind, envelope, "", "")


def test_grouped_call_is_shown_with_its_addressees_when_calls_are_asked_for() -> None:
    rows = [
        _entry(0, "call", {"round": 1, "to": "alpha"}),
        _entry(1, "calls", {"round": 2, "to": [f"d{i}" for i in range(7)]}),
    ]
    assert read_trail(rows) == []
    items = read_trail(rows, include_calls=True)
    assert [i.detail for i in items] == [
        "call to alpha",
        "call to 7 delegates: d0, d1, d2, d3, d4 and 2 more",
    ]
    assert [i.round for i in items] == [1, 2]
