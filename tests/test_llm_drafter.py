"""The language-model drafter: valid outcomes (retried), labelled text, cached, and a
whole Habermas session with it in the real runtime."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from accord.ledger import verify_entries
from accord.session_file import ProtocolSpec, load_session
from accord.session_plan import build_plan
from protocols import drafting
from protocols.agenda import Agenda
from protocols.events import Candidate
from protocols.llm_drafter import LLMDrafter, draft_prompt, prompt_hash
from protocols.moves import CardCitation, Critique, Justification, Propose
from tests.conftest import FIXTURES, run
from tests.helpers import run_plan
from tests.llm_conftest import Scripted, call_tool, no_model_requests, retries_sent, user_prompt  # noqa: F401

TINY = FIXTURES / "tiny.yaml"


def J(text: str = "r") -> Justification:  # noqa: N802
    return Justification(utility=0.2, cited=[CardCitation(card="n-green", contribution=0.2)], rationale=text)


def agenda() -> Agenda:
    spec, _ = load_session(TINY)
    return spec.agenda_model


POSITIONS = {
    "neighbours": Propose(offer={"park": "garden", "hours": "day"}, justification=J("Quiet evenings.")),
    "shops": Propose(offer={"park": "lot", "hours": "late"}, justification=J("Custom.")),
    "parents": Propose(offer={"park": "play", "hours": "day"}, justification=J("Children.")),
}


def writer(first_bad: bool = False):  # noqa: ANN201
    """Statements from the outcomes the prompt mentions (positions or suggestions)."""

    def script(messages, info):  # noqa: ANN001, ANN202
        prompt = user_prompt(messages)
        mentioned = [json.loads(m) for m in re.findall(r"(?:proposes|suggests instead:) (\{.*\})", prompt)]
        winner = re.search(r"won the ranking \(\w+\): (\{.*\})", prompt)
        if winner:
            w = json.loads(winner.group(1))
            mentioned += [{**w, "hours": "late" if w["hours"] == "day" else "day"}]
            mentioned = [m for m in mentioned if m != w]
        distinct = [m for k, m in enumerate(mentioned) if m not in mentioned[:k]]
        n = int(re.search(r"Draft up to (\d+)", prompt).group(1))
        statements = [
            {"outcome": o, "text": f"We agree on {o['park']} open {o['hours']}."} for o in distinct[:n]
        ]
        if first_bad and not retries_sent(messages):
            statements[0] = {"outcome": {"park": "moon"}, "text": "To the moon."}
        return call_tool(info.output_tools[0].name, statements=statements)

    return script


def test_drafts_are_complete_outcomes_retried_and_labelled(tmp_path: Path) -> None:
    s = Scripted(writer(first_bad=True))
    drafter = LLMDrafter(model="scripted", cache=tmp_path / "drafts.json")
    LLMDrafter.model_override = s.model
    try:
        drafted = drafter.draft(agenda(), POSITIONS, 3, random.Random(1))
    finally:
        LLMDrafter.model_override = None
    assert s.calls == 2
    reason = retries_sent(s.seen[1])[0]
    assert "statement 1: not a complete outcome of the agenda: unknown option 'moon'" in reason or (
        "statement 1: not a complete outcome of the agenda: no option chosen for issue(s): hours" in reason
    )
    assert [c.outcome for c in drafted] == [p.offer for p in POSITIONS.values()]
    for c in drafted:
        assert agenda().problem_with(c.outcome) is None
        assert c.text.endswith("(Model-written by scripted.)")
    assert drafter.records == [
        {
            "step": "draft", "model": "scripted", "by": "model", "cached": False,
            "prompt_hash": prompt_hash("scripted", draft_prompt(agenda(), POSITIONS, 3)),
            "requests": 2, "input_tokens": drafter.records[0]["input_tokens"],
            "output_tokens": drafter.records[0]["output_tokens"],
        }
    ]


def test_a_second_draft_with_the_same_positions_reads_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scripted(writer())
    monkeypatch.setattr(LLMDrafter, "model_override", s.model)
    first = LLMDrafter(model="scripted", cache=tmp_path / "d.json").draft(agenda(), POSITIONS, 3, random.Random(1))
    calls = s.calls
    again = LLMDrafter(model="scripted", cache=tmp_path / "d.json")
    second = again.draft(agenda(), POSITIONS, 3, random.Random(2))
    assert s.calls == calls == 1
    assert second == first
    assert again.records[0]["cached"] is True and again.model_calls == 0


def test_revisions_keep_the_winner_first_and_differ_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scripted(writer())
    monkeypatch.setattr(LLMDrafter, "model_override", s.model)
    winner = Candidate(id="s2", outcome={"park": "garden", "hours": "day"}, text="A garden by day.")
    critiques = {
        "shops": Critique(candidate="s2", text="Open late.", suggestion={"park": "garden", "hours": "late"}, justification=J()),
        "parents": Critique(candidate="s2", text="Fine.", justification=J()),
    }
    revised = LLMDrafter(model="scripted", cache=tmp_path / "d.json").revise(agenda(), winner, critiques, 3, random.Random(1))
    assert revised[0] == winner
    assert [c.outcome for c in revised[1:]] == [{"park": "garden", "hours": "late"}]
    assert "Open late." in user_prompt(s.seen[0])


def test_a_failing_model_leaves_the_offline_drafter_in_charge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(messages, info):  # noqa: ANN001, ANN202
        raise ConnectionError("down")

    monkeypatch.setattr(LLMDrafter, "model_override", Scripted(broken).model)
    drafter = LLMDrafter(model="scripted", cache=tmp_path / "d.json")
    drafted = drafter.draft(agenda(), POSITIONS, 3, random.Random(1))
    assert drafted == drafting.OfflineDrafter().draft(agenda(), POSITIONS, 3, random.Random(1))
    assert drafter.records[0]["fallback"].startswith("ConnectionError: down")


def test_a_habermas_session_with_the_llm_drafter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scripted(writer())
    monkeypatch.setitem(drafting._BUILTIN, "llm", LLMDrafter)
    monkeypatch.setattr(LLMDrafter, "model_override", s.model)
    monkeypatch.setenv("ACCORD_LLM_CACHE", str(tmp_path / "cache"))
    spec, _ = load_session(TINY)
    spec = spec.model_copy(update={"protocol": ProtocolSpec(name="habermas", drafter="llm", rounds=1)})

    def session(db: str):  # noqa: ANN202
        return run(run_plan(build_plan(spec), tmp_path / db))

    _, result, rows = session("a.db")
    assert verify_entries(result.session_id, rows).ok
    assert result.ended.chosen is not None and result.ended.agreement is not None
    drafted = [
        c
        for r in rows
        if r.kind == "call" and r.body.get("phase") == "ranking"
        for c in r.body["candidates"]
    ]
    assert drafted and all("(Model-written by scripted.)" in c["text"] for c in drafted)
    calls = s.calls
    assert calls >= 2  # the draft and the revision
    _, again, _ = session("b.db")
    assert s.calls == calls  # everything came from the cache
    assert again.ended == result.ended
