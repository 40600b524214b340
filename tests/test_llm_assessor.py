"""Model-written assessments: only for unscored pairs, labelled, cached, never over people."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accord.llm_assessor import (
    AssessMissing,
    AssessorError,
    JsonCache,
    assess_missing,
    assessment_prompt,
    missing,
    prompt_hash,
    with_assessments,
)
from accord.session_file import load_session
from accord.session_plan import build_plan
from constituencies import Assessment, AssessmentTable
from tests.conftest import FIXTURES
from tests.llm_conftest import Scripted, call_tool, no_model_requests, retries_sent, user_prompt  # noqa: F401

TINY = FIXTURES / "tiny.yaml"


def asked(messages) -> list[str]:  # noqa: ANN001
    m = re.search(r"Score these options against the card: (.*)\.", user_prompt(messages))
    assert m
    return [o.strip() for o in m.group(1).split(",")]


def scorer(score: float = 0.25):  # noqa: ANN201
    def script(messages, info):  # noqa: ANN001, ANN202
        return call_tool(
            info.output_tools[0].name,
            scores=[{"option": o, "score": score, "rationale": f"{o} touches it a little."} for o in asked(messages)],
        )

    return script


def settings(tmp_path: Path, **kw: object) -> AssessMissing:
    return AssessMissing(model="assessor", cache=str(tmp_path / "cache.json"), **kw)


def test_only_unscored_pairs_are_assessed_and_labelled(tmp_path: Path) -> None:
    spec, _ = load_session(TINY)
    before = {(a.option, a.card) for a in spec.assessments}
    with Scripted(scorer(), name="assessor") as model:
        result = assess_missing(spec, settings(tmp_path))
    todo = missing(spec)
    assert model.calls == len(todo) == 3
    assert {(a.option, a.card) for a in result.assessments} == {
        ("park/lot", "n-green"), ("hours/day", "n-green"), ("hours/late", "n-green"),
        ("hours/day", "p-play"), ("hours/late", "p-play"),
    }
    assert not {(a.option, a.card) for a in result.assessments} & before  # people's scores untouched
    assert all(a.by == "model" and a.model == "assessor" for a in result.assessments)
    for r in result.records:
        assert r.by == "model" and r.model == "assessor" and not r.cached
        assert re.fullmatch(r"[0-9a-f]{64}", r.prompt_hash)
    hashes = {prompt_hash("assessor", assessment_prompt(p)) for p in todo}
    assert {r.prompt_hash for r in result.records} == hashes
    body = result.ledger_body("assessor")
    assert len(body["records"]) == 5 and body["prompts"] == 3 and body["cached_prompts"] == 0


def test_a_second_run_reads_the_cache_and_calls_no_model(tmp_path: Path) -> None:
    spec, _ = load_session(TINY)
    with Scripted(scorer(0.25), name="assessor") as first:
        one = assess_missing(spec, settings(tmp_path))
    with Scripted(scorer(-0.9), name="assessor") as second:
        two = assess_missing(spec, settings(tmp_path))
    assert first.calls == 3 and second.calls == 0
    assert [a.model_dump() for a in one.assessments] == [a.model_dump() for a in two.assessments]
    assert all(r.cached for r in two.records) and two.cached_prompts == 3
    cache = JsonCache(tmp_path / "cache.json")
    assert set(cache.data) == {r.prompt_hash for r in one.records}
    # Another model is another key: asked afresh.
    with Scripted(scorer(0.5), name="other") as third:
        assess_missing(spec, AssessMissing(model="other", cache=str(tmp_path / "cache.json")))
    assert third.calls == 3


def test_the_cache_location_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _ = load_session(TINY)
    monkeypatch.setenv("ACCORD_LLM_CACHE", str(tmp_path / "env-cache"))
    with Scripted(scorer(), name="assessor"):
        assess_missing(spec, {"model": "assessor"}, session_path=tmp_path / "s.yaml")
    assert (tmp_path / "env-cache" / "assessments.json").exists()
    monkeypatch.delenv("ACCORD_LLM_CACHE")
    with Scripted(scorer(), name="assessor"):
        assess_missing(spec, {"model": "assessor", "cache": "mine.json"}, session_path=tmp_path / "s.yaml")
    assert (tmp_path / "mine.json").exists()


def test_an_incomplete_answer_is_retried(tmp_path: Path) -> None:
    spec, _ = load_session(TINY)

    def sloppy(messages, info):  # noqa: ANN001, ANN202
        options = asked(messages)
        if not retries_sent(messages) and len(options) > 1:
            options = options[:1] + ["moon"]
        return call_tool(
            info.output_tools[0].name,
            scores=[{"option": o, "score": 0.1, "rationale": "r"} for o in options],
        )

    with Scripted(sloppy, name="assessor") as model:
        result = assess_missing(spec, settings(tmp_path))
    assert len(result.assessments) == 5
    reasons = [r for m in model.seen for r in retries_sent(m)]
    assert any("scores option(s) not asked about: moon" in r and "leaves out" in r for r in reasons)


def test_failures_stop_the_run_unless_told_otherwise(tmp_path: Path) -> None:
    spec, _ = load_session(TINY)

    def broken(messages, info):  # noqa: ANN001, ANN202
        raise ConnectionError("down")

    with Scripted(broken, name="assessor"), pytest.raises(AssessorError, match="3 of 3 assessment prompts failed"):
        assess_missing(spec, settings(tmp_path))
    with Scripted(broken, name="assessor"):
        result = assess_missing(spec, settings(tmp_path, strict=False))
    assert len(result.failures) == 3 and not result.assessments


def test_model_assessments_feed_the_value_model_but_never_outrank_people(tmp_path: Path) -> None:
    spec, _ = load_session(TINY)
    with Scripted(scorer(0.5), name="assessor"):
        result = assess_missing(spec, settings(tmp_path))
    filled = with_assessments(spec, result.assessments)
    plan = build_plan(filled)
    before = build_plan(spec).participant("parents").model.utility({"park": "play", "hours": "day"})
    after = plan.participant("parents").model.utility({"park": "play", "hours": "day"})
    assert after == pytest.approx(before + 0.5 * 0.5)  # hours has half the weight; p-play is the only card
    assert missing(filled) == []
    human = Assessment(option="park/garden", card="n-green", score=0.9, by="constituents")
    model = Assessment(option="park/garden", card="n-green", score=-1.0, by="model", model="m")
    assert AssessmentTable([model, human]).score("park", "garden", "n-green") == 0.9


def test_a_run_prepares_the_spec_only_when_the_file_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`assess_missing:` as the proposed SessionSpec field, on a subclass standing in for it."""
    from accord.cli_llm import prepare_llm_spec
    from accord.session_file import SessionFileError, SessionSpec

    class WithAssess(SessionSpec):
        assess_missing: AssessMissing | None = None

    spec, _ = load_session(TINY)
    with Scripted(scorer(), name="assessor") as model:
        same, body = prepare_llm_spec(spec, tmp_path / "s.yaml")
        assert same == spec and body is None and model.calls == 0  # not asked: nothing happens
        asking = WithAssess.model_validate(
            {**spec.model_dump(mode="json"), "assess_missing": {"model": "assessor", "cache": "c.json"}}
        )
        filled, body = prepare_llm_spec(asking, tmp_path / "s.yaml")
    assert model.calls == 3 and body is not None and len(body["records"]) == 5
    assert sum(a.by == "model" for a in filled.assessments) == 5
    assert build_plan(filled).participant("parents").model.utility({"park": "play", "hours": "day"}) > 0.5
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    needs_key = asking.model_copy(update={"assess_missing": AssessMissing(model="anthropic:claude-haiku-4-5")})
    with pytest.raises(SessionFileError, match="assess_missing: model 'anthropic:claude-haiku-4-5' needs an API key"):
        prepare_llm_spec(needs_key, tmp_path / "s.yaml", environ={})
