"""LLM delegates under the same rules as everyone: validated, retried, fallen back, refused
by the mandate, logged; never calling a real model (ALLOW_MODEL_REQUESTS is False)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli_llm import (
    apply_model_override,
    check_model_credentials,
    delegate_labels,
    llm_usage,
)
from accord.delegate_runner import DelegateRunner
from accord.ledger import Identity, PublicKeys, Signer, verify_entries
from accord.session_file import SessionFileError, load_session
from accord.session_plan import build_plan
from delegates import llm_prompt
from delegates.base import DelegateView
from delegates.llm import (
    LLMOptions,
    LLMStrategy,
    InvalidMove,
    credential_problem,
    estimate_cost,
    utility_report,
    validate_move,
)
from delegates.time_dependent import Boulware
from protocols.events import Call, Candidate, TableOffer
from protocols.moves import Accept, Justification, Propose
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import run_plan
from tests.llm_conftest import (  # noqa: F401 - fixtures
    Scripted,
    call_tool,
    justification,
    llm_plan,
    llm_strategy_registered,
    move,
    no_model_requests,
    retries_sent,
    sensible,
    sequence,
    tool_returns,
    user_prompt,
)

TINY = FIXTURES / "tiny.yaml"
GOOD = {"park": "garden", "hours": "day"}
CALL = Call(
    to="neighbours",
    round=2,
    deadline_round=12,
    allowed=["propose", "accept"],
    standing_offer={"park": "play", "hours": "late"},
    offered_by="shops",
)


def fresh_view(seed: int = 7) -> DelegateView:
    spec, _ = load_session(TINY)
    plan = build_plan(spec.model_copy(update={"seed": seed}))
    return plan.participant("neighbours").delegate.view


@pytest.fixture
def view() -> DelegateView:
    return fresh_view()


def llm(view: DelegateView, name: str = "scripted", **options: object) -> LLMStrategy:
    return LLMStrategy(view, LLMOptions(model=name, **options))


def good_justification(view: DelegateView, outcome: dict[str, str], rationale: str) -> dict:
    return justification(utility_report(view, outcome), rationale)


# -- retries: each kind of invalid move is sent back with its reason -------------------------------


def test_a_citation_of_a_card_it_does_not_hold_is_retried(view: DelegateView) -> None:
    bad = good_justification(view, GOOD, "first")
    bad["cited"].append({"card": "s-trade", "contribution": 0.1})
    with Scripted(
        sequence(
            move("propose", offer=GOOD, justification=bad),
            move("propose", offer=GOOD, justification=good_justification(view, GOOD, "second")),
        )
    ) as model:
        s = llm(view)
        chosen = s.respond(CALL)
    assert model.calls == 2
    assert isinstance(chosen, Propose) and chosen.offer == GOOD
    assert chosen.justification.rationale == "second"  # the second attempt is the move
    assert s.last_llm is not None and s.last_llm.retries == 1 and s.last_llm.fallback is None
    sent = retries_sent(model.seen[1])
    assert len(sent) == 1
    assert "cites card(s) s-trade that are not among your values cards" in sent[0]
    assert s.last_llm.retry_reasons == sent


def test_an_unknown_option_is_retried(view: DelegateView) -> None:
    moon = {"park": "moon", "hours": "day"}
    with Scripted(
        sequence(
            move("propose", offer=moon, justification=good_justification(view, GOOD, "x")),
            move("propose", offer=GOOD, justification=good_justification(view, GOOD, "fixed")),
        )
    ) as model:
        s = llm(view)
        chosen = s.respond(CALL)
    assert chosen.offer == GOOD and chosen.justification.rationale == "fixed"
    assert "unknown option 'moon' for issue 'park'" in retries_sent(model.seen[1])[0]


def test_an_incomplete_offer_is_retried(view: DelegateView) -> None:
    with Scripted(
        sequence(
            move("propose", offer={"park": "garden"}, justification=good_justification(view, GOOD, "x")),
            move("propose", offer=GOOD, justification=good_justification(view, GOOD, "fixed")),
        )
    ) as model:
        chosen = llm(view).respond(CALL)
    assert chosen.justification.rationale == "fixed"
    assert "no option chosen for issue(s): hours" in retries_sent(model.seen[1])[0]


def test_a_move_kind_the_call_does_not_allow_is_retried(view: DelegateView) -> None:
    only_propose = CALL.model_copy(update={"allowed": ["propose"], "standing_offer": None, "offered_by": None})
    with Scripted(
        sequence(
            move("accept", offer=GOOD, justification=good_justification(view, GOOD, "x")),
            move("propose", offer=GOOD, justification=good_justification(view, GOOD, "fixed")),
        )
    ) as model:
        s = llm(view)
        chosen = s.respond(only_propose)
    # The agent only offers output tools for the kinds the call allows...
    assert [t.name for t in model.infos[0].output_tools] == ["propose"]
    assert isinstance(chosen, Propose) and chosen.justification.rationale == "fixed"
    assert "accept" in retries_sent(model.seen[1])[0]
    assert s.last_llm.retries == 1
    # ...and the validator checks the kind again (defence in depth).
    accept = Accept(offer=GOOD, justification=Justification(utility=0.45, cited=[], rationale="x"))
    with pytest.raises(InvalidMove, match="a accept move is not allowed now; allowed: propose"):
        validate_move(view, only_propose, accept)


def test_accepting_anything_but_the_offer_on_the_table_is_retried(view: DelegateView) -> None:
    on_table = CALL.standing_offer
    with Scripted(
        sequence(
            move("accept", offer=GOOD, justification=good_justification(view, GOOD, "x")),
            move("accept", offer=on_table, justification=good_justification(view, on_table, "ok")),
        )
    ) as model:
        chosen = llm(view).respond(CALL)
    assert isinstance(chosen, Accept) and chosen.offer == on_table
    assert "accept must name the offer on the table exactly" in retries_sent(model.seen[1])[0]


def test_a_wrong_utility_is_retried_with_the_right_figures(view: DelegateView) -> None:
    wrong = good_justification(view, GOOD, "wrong")
    wrong["utility"] = 0.9
    wrong["cited"][0]["contribution"] = 0.5

    def copy_the_figures(messages, info):  # noqa: ANN001, ANN202
        reason = retries_sent(messages)[-1]
        m = re.search(r"utility (\S+) and cited = (\[.*?\]);", reason)
        assert m, reason
        return move(
            "propose",
            offer=GOOD,
            justification={"utility": float(m.group(1)), "cited": json.loads(m.group(2)), "rationale": "corrected"},
        )

    with Scripted(sequence(move("propose", offer=GOOD, justification=wrong), copy_the_figures)) as model:
        s = llm(view)
        chosen = s.respond(CALL)
    reason = retries_sent(model.seen[1])[0]
    assert "the utility is +0.450000, not +0.900000" in reason
    assert "contributes" in reason and "not +0.500000" in reason
    assert chosen.justification.rationale == "corrected"
    # The move carries the value model's exact figures, not the 6-decimal copies.
    assert chosen.justification.utility == view.model.utility(GOOD)
    assert sum(c.contribution for c in chosen.justification.cited) == pytest.approx(view.model.utility(GOOD), abs=1e-15)


def test_the_utility_tool_gives_the_breakdown_to_cite(view: DelegateView) -> None:
    def script(messages, info):  # noqa: ANN001, ANN202
        reports = tool_returns(messages)
        if not reports:
            return call_tool("utility", outcome=GOOD)
        return move("propose", offer=GOOD, justification=justification(reports[-1], "from the tool"))

    with Scripted(script) as model:
        s = llm(view)
        chosen = s.respond(CALL)
    assert model.calls == 2 and s.last_llm.retries == 0
    assert chosen.justification.utility == pytest.approx(0.45)
    assert {c.card for c in chosen.justification.cited} == {"n-quiet", "n-green"}
    assert [t.name for t in model.infos[0].function_tools] == ["utility", "find_outcomes"]
    report = utility_report(view, {"park": "lot", "hours": "day"})
    assert report["mandate"].startswith("outside the mandate: crosses red line park=lot")
    assert "error" in utility_report(view, {"park": "lot"})


def test_a_ballot_must_rank_every_candidate_once(view: DelegateView) -> None:
    cands = [
        Candidate(id="s1", outcome={"park": "play", "hours": "late"}, text="A"),
        Candidate(id="s2", outcome=GOOD, text="B"),
    ]
    call = Call(to="neighbours", round=2, deadline_round=4, allowed=["rank"], phase="ranking", candidates=cands)
    with Scripted(
        sequence(
            move("rank", ranking=["s2"], justification=good_justification(view, GOOD, "x")),
            move("rank", ranking=["s2", "s1"], justification=good_justification(view, GOOD, "ranked")),
        )
    ) as model:
        chosen = llm(view).respond(call)
    assert chosen.ranking == ["s2", "s1"]
    assert "leaves out s1" in retries_sent(model.seen[1])[0]


def test_a_critique_and_votes_are_checked_against_the_call(view: DelegateView) -> None:
    cand = Candidate(id="s3", outcome=GOOD, text="A garden by day.")
    critique_call = Call(to="neighbours", round=3, deadline_round=4, allowed=["critique"], candidates=[cand])
    with Scripted(
        sequence(
            move("critique", candidate="s9", text="no", justification=good_justification(view, GOOD, "x")),
            move("critique", candidate="s3", text="Fine.", justification=good_justification(view, GOOD, "ok")),
        )
    ) as model:
        chosen = llm(view).respond(critique_call)
    assert chosen.candidate == "s3"
    assert "critiques 's9'; the candidate is s3" in retries_sent(model.seen[1])[0]

    play = {"park": "play", "hours": "day"}
    vote_call = Call(
        to="neighbours", round=2, deadline_round=6, allowed=["votes"], phase="voting",
        table=[TableOffer(by="shops", offer=play), TableOffer(by="neighbours", offer=GOOD)],
    )
    vote = {"offer": GOOD, "min_power": 2, "max_power": 3, "justification": good_justification(view, GOOD, "v")}
    stray = {**vote, "offer": {"park": "garden", "hours": "late"}}
    with Scripted(
        sequence(
            move("votes", votes=[stray], justification=good_justification(view, GOOD, "x")),
            move("votes", votes=[vote], justification=good_justification(view, GOOD, "voted")),
        )
    ) as model:
        chosen = llm(view).respond(vote_call)
    assert chosen.justification.rationale == "voted" and len(chosen.votes) == 1
    assert "which is not on the table" in retries_sent(model.seen[1])[0]


# -- falling back ------------------------------------------------------------------------------------


def test_after_the_retry_limit_the_rule_strategy_moves_and_says_so(view: DelegateView) -> None:
    wrong = good_justification(view, GOOD, "wrong")
    wrong["utility"] = 0.9
    with Scripted(sequence(move("propose", offer=GOOD, justification=wrong))) as model:
        s = llm(view, max_retries=2)
        chosen = s.respond(CALL)
    assert model.calls == 3  # the first answer and two retries
    rule = Boulware(fresh_view(), None).respond(CALL)
    assert chosen.model_dump(exclude={"justification"}) == rule.model_dump(exclude={"justification"})
    why = chosen.justification.rationale
    assert why.startswith("LLM move invalid after 2 retries (misstates the figures of")
    assert "; fell back to boulware. " in why
    assert why.endswith(rule.justification.rationale)
    assert s.last_fallback is not None and s.last_fallback.endswith("fell back to boulware")
    assert s.last_llm.retries == 2


def test_no_retries_means_one_attempt(view: DelegateView) -> None:
    with Scripted(sequence(move("propose", offer={"park": "moon", "hours": "day"}, justification=good_justification(view, GOOD, "x")))) as model:
        chosen = llm(view, max_retries=0, fallback="linear").respond(CALL)
    assert model.calls == 1
    assert chosen.justification.rationale.startswith(
        "LLM move invalid after 0 retries (the offer is not a complete outcome of the agenda: unknown option 'moon'"
    )
    assert "fell back to linear" in chosen.justification.rationale


def test_a_model_error_falls_back(view: DelegateView) -> None:
    def broken(messages, info):  # noqa: ANN001, ANN202
        raise ConnectionError("the network is down")

    with Scripted(broken):
        s = llm(view)
        chosen = s.respond(CALL)
    assert chosen.justification.rationale.startswith(
        "LLM call failed (ConnectionError: the network is down); fell back to boulware."
    )
    assert s.ledger_notes()["llm"]["fallback"].startswith("LLM call failed")


def test_a_real_model_is_never_called_in_tests(view: DelegateView, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    s = llm(view, name="anthropic:claude-sonnet-4-5")
    chosen = s.respond(CALL)
    assert "LLM call failed" in chosen.justification.rationale
    assert s.last_llm.requests == 0 and s.last_llm.input_tokens == 0
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-key")
    chosen = llm(view, name="anthropic:claude-sonnet-4-5").respond(CALL)
    assert "Model requests are not allowed" in chosen.justification.rationale


async def test_respond_works_inside_a_running_event_loop(view: DelegateView) -> None:
    with Scripted(sequence(move("propose", offer=GOOD, justification=good_justification(view, GOOD, "sync")))):
        s = llm(view)
        chosen = s.respond(CALL)  # synchronous call while this loop runs: a worker thread
        assert chosen.justification.rationale == "sync"
        again = await s.respond_async(CALL)
        assert again.justification.rationale == "sync"


# -- prompts -----------------------------------------------------------------------------------------


def test_the_prompt_carries_the_value_model_mandate_agenda_and_call(view: DelegateView) -> None:
    s = llm(view)
    text = s.instructions
    for needed in (
        "Restful evenings", "Evenings at home that are calm enough to recover in.",
        "SOUNDS of birds rather than engines at dusk", "Applies in: every context",
        "park (context \"When deciding how public land is used\"): share 0.500; card weights: n-quiet 0.500, n-green 0.500",
        "park=garden: n-green +0.90 (A garden is exactly shared growing; by constituents)",
        "Red line: never propose or accept an outcome with park=lot.",
        "worth less than +0.000", "- garden: A community garden", "+0.450000 {\"park\": \"garden\", \"hours\": \"day\"}",
    ):
        assert needed in text, needed
    s.observe_rejection("the offer was stale")
    turn = llm_prompt.turn_prompt(CALL, view.model, view.mandate, view.agenda, s.history)
    for needed in (
        "## Your turn: round 2 of 12", "Allowed moves now: propose, accept.",
        "On the table (offered by shops): {\"park\": \"play\", \"hours\": \"late\"}",
        "Worth to you: utility -0.225000 = n-quiet -0.250000 + n-green +0.025000",
        "the chair refused your last move: the offer was stale",
    ):
        assert needed in turn, needed


# -- whole sessions ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("llm_strategy_registered")
def test_a_red_line_crossed_by_the_model_is_refused_and_logged(tmp_path: Path) -> None:
    lot = {"park": "lot", "hours": "day"}

    def stubborn(messages, info):  # noqa: ANN001, ANN202
        reports = tool_returns(messages)
        if not reports:
            return call_tool("utility", outcome=lot)
        return move("propose", offer=lot, justification=justification(reports[-1], "A car park, please."))

    with Scripted(stubborn) as model:
        plan = llm_plan(TINY, "neighbours", "scripted")
        _, result, rows = run(run_plan(plan, tmp_path / "l.db"))
    assert model.calls > 0
    assert verify_entries(result.session_id, rows).ok
    refusals = [r for r in rows if r.kind == "refusal" and r.actor == "neighbours"]
    assert refusals
    assert refusals[0].body["reason"].startswith("mandate forbids: propose hours=day, park=lot") or refusals[0].body[
        "reason"
    ].startswith("mandate forbids: propose park=lot")
    assert "crosses red line park=lot" in refusals[0].body["reason"]
    assert refusals[0].body["refused"]["offer"] == lot
    moves = [r for r in rows if r.kind == "move" and r.actor == "neighbours"]
    for row in moves:
        assert row.body["move"]["offer"]["park"] != "lot"
        assert row.body["llm"]["model"] == "scripted" and row.body["llm"]["fallback"] is None
    assert "Refused a move the mandate forbids" in moves[0].body["move"]["justification"]["rationale"]
    assert any("mandate refused" in h for h in plan.participant("neighbours").delegate.strategy.history)
    if result.ended.agreement:
        assert result.ended.agreement["park"] != "lot"


@pytest.mark.usefixtures("llm_strategy_registered")
@pytest.mark.parametrize(
    ("path", "who", "top"), [(TINY, "neighbours", 10), (EXAMPLES[-1], "residents", 60)], ids=["tiny", "riverside"]
)
def test_a_well_behaved_model_reaches_agreement(path: Path, who: str, top: int, tmp_path: Path) -> None:
    assert path.parent.name in ("fixtures", "riverside")
    with Scripted(sensible()) as model:
        # The scripted negotiator concedes along the list of best outcomes it is shown.
        plan = llm_plan(path, who, "scripted", top_outcomes=top)
        _, result, rows = run(run_plan(plan, tmp_path / "l.db"))
    assert result.ended.agreement is not None, result.ended.reason
    assert verify_entries(result.session_id, rows).ok
    mine = [r for r in rows if r.kind == "move" and r.actor == who]
    assert mine and all(r.body["llm"]["fallback"] is None for r in mine)
    usage = llm_usage(rows)
    assert set(usage.per_delegate) == {who}
    assert usage.total.moves == len(mine) and usage.total.requests == model.calls
    assert usage.total.input_tokens > 0 and usage.total.cost_usd is None  # a scripted model has no price
    for r in mine:  # every number still traces to the value model
        just = r.body["move"]["justification"]
        assert just["utility"] == pytest.approx(plan.participant(who).model.utility(r.body["move"]["offer"]), abs=1e-12)
    labels = delegate_labels(plan)
    assert labels[who] == "llm (scripted)"
    assert all(v != "llm" and not v.startswith("llm (") for k, v in labels.items() if k != who)


@pytest.mark.usefixtures("llm_strategy_registered")
def test_fallbacks_are_logged_in_the_ledger(tmp_path: Path) -> None:
    with Scripted(sequence(move("propose", offer={"park": "moon", "hours": "day"}, justification={"utility": 0, "cited": [], "rationale": "x"}))):
        plan = llm_plan(TINY, "neighbours", "scripted", max_retries=1)
        _, result, rows = run(run_plan(plan, tmp_path / "l.db"))
    mine = [r for r in rows if r.kind == "move" and r.actor == "neighbours"]
    assert mine
    for r in mine:
        assert r.body["llm"]["fallback"].startswith("LLM move invalid after 1 retries (")
        assert r.body["llm"]["fallback"].endswith("fell back to boulware")
        assert r.body["llm"]["retries"] == 1
        assert "fell back to boulware" in r.body["move"]["justification"]["rationale"]
    assert llm_usage(rows).total.fallbacks == len(mine)
    assert verify_entries(result.session_id, rows).ok


@pytest.mark.usefixtures("llm_strategy_registered")
def test_a_resumed_session_replays_llm_moves_without_calling_the_model(tmp_path: Path) -> None:
    with Scripted(sensible()):
        plan = llm_plan(TINY, "neighbours", "scripted")
        _, result, rows = run(run_plan(plan, tmp_path / "l.db"))
    with Scripted(sensible()) as again:
        fresh = llm_plan(TINY, "neighbours", "scripted")
        delegate = fresh.participant("neighbours").delegate
        me = Identity.generate("neighbours")
        runner = DelegateRunner(
            result.session_id, delegate, Signer(me, result.session_id),
            PublicKeys({"chair": Identity.generate("chair").public_key}), None, "h",  # type: ignore[arg-type]
        )
        runner.replay(rows)
    assert again.calls == 0
    history = delegate.strategy.history
    assert history and "(recorded)" in history[-1]


# -- configuration, keys, labels, costs ---------------------------------------------------------------


@pytest.mark.usefixtures("llm_strategy_registered")
def test_bad_llm_options_are_a_session_file_error() -> None:
    with pytest.raises(SessionFileError) as info:
        llm_plan(TINY, "neighbours", "scripted", fallback="nonsense")
    assert "delegates.neighbours.options" in str(info.value)
    assert "unknown fallback strategy 'nonsense'" in str(info.value)
    with pytest.raises(SessionFileError, match="must be a rule-based strategy"):
        llm_plan(TINY, "neighbours", "scripted", fallback="llm")
    with pytest.raises(SessionFileError, match="fallback_options.e"):
        llm_plan(TINY, "neighbours", "scripted", fallback_options={"e": -1})


@pytest.mark.usefixtures("llm_strategy_registered")
def test_a_missing_key_is_one_clear_problem_before_the_session() -> None:
    spec, _ = load_session(TINY)
    plan = build_plan(apply_model_override(spec, "anthropic:claude-sonnet-4-5"))
    problems = check_model_credentials(plan, environ={})
    assert problems == [
        "delegates.neighbours, delegates.shops, delegates.parents: model "
        "'anthropic:claude-sonnet-4-5' needs an API key: set ANTHROPIC_API_KEY"
    ]
    assert check_model_credentials(plan, environ={"ANTHROPIC_API_KEY": "k"}) == []
    with Scripted(sequence(move("propose", offer=GOOD, justification={})), name="offline-model"):
        offline = build_plan(apply_model_override(spec, "offline-model"))
        assert check_model_credentials(offline, environ={}) == []
    assert check_model_credentials(build_plan(spec), environ={}) == []  # rule-based: nothing to check
    assert credential_problem("claude-haiku-4-5", {}) == "model 'claude-haiku-4-5' needs an API key: set ANTHROPIC_API_KEY"
    problem = credential_problem("openai:gpt-4.1", {}) or ""
    assert "pip install 'pydantic-ai-slim[openai]'" in problem or "set OPENAI_API_KEY" in problem
    assert "name the provider" in credential_problem("mystery-model", {})


@pytest.mark.usefixtures("llm_strategy_registered")
def test_model_override_switches_rule_delegates_and_keeps_their_rules_as_fallback() -> None:
    spec, _ = load_session(EXAMPLES[-1])
    assert spec.id == "riverside"
    all_llm = apply_model_override(spec, "openai:gpt-4.1")
    for d in ("residents", "business", "environment", "finance"):
        dspec = all_llm.delegate_spec(d)
        assert dspec.strategy == "llm" and dspec.options["model"] == "openai:gpt-4.1"
        assert dspec.options["fallback"] == spec.delegate_spec(d).strategy
    assert all_llm.turn_timeout_s >= 120
    mixed = apply_model_override(spec, "m1", only=["residents"])
    assert mixed.delegate_spec("residents").strategy == "llm"
    assert mixed.delegate_spec("business").strategy == "linear"
    # A session that already has LLM delegates: only their model changes.
    again = apply_model_override(mixed, "m2")
    assert again.delegate_spec("residents").options == {"model": "m2", "fallback": "boulware"}
    assert again.delegate_spec("finance").strategy == "linear"
    with pytest.raises(ValueError, match="no delegate nobody"):
        apply_model_override(spec, "m", only=["nobody"])
    with Scripted(sensible(), name="m2"):
        plan = build_plan(again)
    assert delegate_labels(plan) == {
        "residents": "llm (m2)", "business": "linear", "environment": "conceder", "finance": "linear"
    }


def test_costs_are_estimated_from_a_price_table() -> None:
    assert estimate_cost("anthropic:claude-sonnet-4-5", 1_000_000, 0) == 3.0
    assert estimate_cost("anthropic:claude-sonnet-4-5-20250929", 0, 1_000_000) == 15.0
    assert estimate_cost("anthropic:claude-haiku-4-5", 10_000, 1_000) == pytest.approx(0.015)
    assert estimate_cost("someone:unheard-of", 10, 10) is None
    rows = [
        {"kind": "move", "actor": "a", "body": {"llm": {"model": "anthropic:claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 100, "cost_usd": 0.0045, "requests": 2, "retries": 1, "fallback": None}}},
        {"kind": "move", "actor": "a", "body": {"llm": {"model": "anthropic:claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 100, "cost_usd": 0.0045, "requests": 1, "retries": 0, "fallback": "x"}}},
        {"kind": "move", "actor": "b", "body": {"move": {}}},
        {"kind": "move", "actor": "c", "body": {"llm": {"model": "x:y", "input_tokens": 5, "output_tokens": 5, "cost_usd": None}}},
    ]
    summary = llm_usage(rows)
    assert summary.per_delegate["a"].cost_usd == pytest.approx(0.009)
    assert summary.per_delegate["a"].fallbacks == 1 and summary.per_delegate["a"].retries == 1
    assert summary.total.cost_usd is None and summary.total.input_tokens == 2005
    assert "cost unknown" in summary.total.describe()
    assert "b" not in summary.per_delegate


# -- the default run never calls a model ----------------------------------------------------------


@pytest.mark.parametrize("path", [TINY, *EXAMPLES], ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_the_default_accord_run_calls_no_model(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pydantic_ai
    from pydantic_ai.models import Model

    from accord.cli import app

    def forbidden(*args: object, **kwargs: object) -> None:
        pytest.fail("a language model was called during a default `accord run`")

    for name in ("run", "run_sync", "iter", "run_stream"):
        monkeypatch.setattr(pydantic_ai.Agent, name, forbidden)
    monkeypatch.setattr(Model, "request", forbidden, raising=False)
    result = CliRunner().invoke(app, ["run", str(path), "--ledger", str(tmp_path / "l.db"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Outcome" in result.output or "agreement" in result.output.lower()


def test_prompt_caching_is_priced_and_the_session_estimate_uses_the_real_prompts(tmp_path: Path) -> None:
    from accord.cli_llm import estimate_session, llm_app

    # Anthropic bills cache reads at 0.1x and 5-minute writes at 1.25x of input.
    assert estimate_cost("anthropic:claude-sonnet-4-5", 1_000_000, 0, cache_read_tokens=1_000_000) == pytest.approx(0.3)
    assert estimate_cost("anthropic:claude-sonnet-4-5", 1_000_000, 0, cache_write_tokens=1_000_000) == pytest.approx(3.75)
    assert estimate_cost("openai:gpt-4.1", 1_000_000, 0, cache_read_tokens=1_000_000) == pytest.approx(2.0)
    plan, result, rows = run(__import__("tests.helpers", fromlist=["run_file"]).run_file(TINY, tmp_path / "l.db"))
    e = estimate_session(plan, rows)
    answered = [r for r in rows if r.kind == "move"]
    assert e.calls == len(answered)
    proposals = sum(1 for r in answered if r.body["move"]["kind"] == "propose")
    assert e.requests == len(answered) + proposals
    assert e.input_tokens > e.calls * 1000  # instructions alone are ~1k tokens for tiny
    assert 0 < e.cost_usd_cached["anthropic:claude-sonnet-4-5"] < e.cost_usd["anthropic:claude-sonnet-4-5"]
    first = e.per_call[0]
    s = LLMStrategy(plan.participant(first.delegate).delegate.view, LLMOptions(model="test"))
    assert first.input_tokens > len(s.instructions) // 4  # the real instructions, and more
    out = CliRunner().invoke(llm_app, ["estimate", str(TINY)])
    assert out.exit_code == 0, out.output
    assert "anthropic:claude-sonnet-4-5: ~$" in out.output
