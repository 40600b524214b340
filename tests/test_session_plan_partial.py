"""A delegate host's plan: only its own delegates built, the whole file checked and hashed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from accord.distributed import HostError, host_delegates
from accord.keystore import KeyStore
from accord.session_file import SessionFileError
from accord.session_plan import load_plan
from tests.conftest import EXAMPLES, FIXTURES


@pytest.mark.parametrize("path", [FIXTURES / "tiny.yaml", *EXAMPLES], ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_a_partial_plan_builds_the_same_delegates_and_hashes_the_whole_file(path: Path) -> None:
    full, _ = load_plan(path)
    ids = [p.id for p in full.participants]
    some = ids[1:2]
    part, _ = load_plan(path, only=some)
    assert [p.id for p in part.participants] == some
    assert part.hosted == frozenset(some) and full.hosted is None
    assert part.spec_hash == full.spec_hash  # what the chair's opening is checked against
    mine, theirs = part.participant(some[0]), full.participant(some[0])
    assert mine.model.hash == theirs.model.hash
    assert mine.strategy_name == theirs.strategy_name
    assert mine.delegate.view.space.admissible == theirs.delegate.view.space.admissible
    with pytest.raises(ValueError, match="some delegates only"):
        part.new_protocol()  # the others are missing: it must never run a session


def test_a_partial_plan_still_validates_the_whole_file(tmp_path: Path) -> None:
    text = (FIXTURES / "tiny.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    # Break something that belongs to no delegate this host runs: still refused.
    bad.write_text(text.replace("seed:", "unknown_field: 1\nseed:", 1), encoding="utf-8")
    full, _ = load_plan(FIXTURES / "tiny.yaml")
    with pytest.raises(SessionFileError):
        load_plan(bad, only=[full.participants[0].id])


def test_a_host_asked_for_an_unknown_delegate_names_every_constituency(tmp_path: Path) -> None:
    full, _ = load_plan(FIXTURES / "tiny.yaml")
    ids = [p.id for p in full.participants]
    part, _ = load_plan(FIXTURES / "tiny.yaml", only=[ids[0]])
    with pytest.raises(HostError) as caught:
        asyncio.run(host_delegates(part, "s", ["nobody"], "memory://", KeyStore(tmp_path / "keys")))
    assert all(i in str(caught.value) for i in ids)
