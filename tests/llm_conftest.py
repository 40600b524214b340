"""Shared pieces for the LLM tests: no model is ever called over the network, and scripted
models (pydantic-ai `FunctionModel`) stand in for real ones.

Test modules import what they use from here (`from tests.llm_conftest import ...`),
including the autouse fixture that sets `ALLOW_MODEL_REQUESTS = False`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic_ai.models
import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from accord import plugins
from accord.session_file import DelegateSpec, SessionSpec, load_session
from accord.session_plan import SessionPlan, build_plan
from delegates.llm import LLMStrategy, register_model, unregister_model


@pytest.fixture(autouse=True)
def no_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches a real model: pydantic-ai refuses any non-test model request."""
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", False)


@pytest.fixture
def llm_strategy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `llm` strategy by name, as the entry point will provide once installed."""
    monkeypatch.setitem(plugins._BUILTIN_STRATEGIES, "llm", LLMStrategy)


Script = Callable[[list[ModelMessage], AgentInfo], ModelResponse]


class Scripted:
    """A FunctionModel around a script, registered under a name, counting its calls."""

    def __init__(self, script: Script, name: str = "scripted") -> None:
        self.script = script
        self.name = name
        self.calls = 0
        self.seen: list[list[ModelMessage]] = []
        self.infos: list[AgentInfo] = []

        def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            self.calls += 1
            self.seen.append(list(messages))
            self.infos.append(info)
            return self.script(messages, info)

        self.model = FunctionModel(fn, model_name=name)

    def __enter__(self) -> Scripted:
        register_model(self.name, self.model)
        return self

    def __exit__(self, *exc: object) -> None:
        unregister_model(self.name)


def sequence(*responses: ModelResponse | Callable[[list[ModelMessage], AgentInfo], ModelResponse]) -> Script:
    """A script that answers with the given responses in order (callables are called)."""
    queue = list(responses)

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        return item(messages, info) if callable(item) else item

    return script


# -- reading what the delegate sent --------------------------------------------------------------


def user_prompt(messages: list[ModelMessage]) -> str:
    for m in messages:
        if isinstance(m, ModelRequest):
            for p in m.parts:
                if isinstance(p, UserPromptPart) and isinstance(p.content, str):
                    return p.content
    return ""


def tool_returns(messages: list[ModelMessage], name: str = "utility") -> list[Any]:
    found = []
    for m in messages:
        for p in getattr(m, "parts", []):
            if isinstance(p, ToolReturnPart) and p.tool_name == name and getattr(p, "outcome", None) != "retried":
                found.append(p.content)
    return found


def retries_sent(messages: list[ModelMessage]) -> list[str]:
    """The retry prompts the delegate sent back to the model."""
    from delegates.llm import _retry_reasons

    return _retry_reasons(messages)


def parse_turn(prompt: str) -> dict[str, Any]:
    """The call as the turn prompt states it: round, deadline, allowed kinds, the table."""
    turn: dict[str, Any] = {}
    m = re.search(r"## Your turn: round (\d+) of (\d+)", prompt)
    assert m, prompt
    turn["round"], turn["deadline"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"Allowed moves now: (.*)\.", prompt)
    assert m
    turn["allowed"] = [k.strip() for k in m.group(1).split(",")]
    m = re.search(r"On the table(?: \(offered by ([\w.-]+)\))?: (\{.*\})", prompt)
    turn["standing"] = json.loads(m.group(2)) if m else None
    turn["offered_by"] = m.group(1) if m else None
    turn["candidates"] = [
        (cid, json.loads(outcome)) for cid, outcome in re.findall(r"Candidate ([\w.-]+): (\{.*\})", prompt)
    ]
    return turn


def best_outcomes(instructions: str) -> list[tuple[float, dict[str, str]]]:
    return [
        (float(u), json.loads(o))
        for u, o in re.findall(r"^- ([+-]\d\.\d+) (\{.*\})$", instructions, flags=re.MULTILINE)
    ]


# -- answering ----------------------------------------------------------------------------------


def call_tool(name: str, **args: Any) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(name, args)])


def say(text: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(text)])


def justification(report: dict[str, Any], rationale: str = "Because of our values.") -> dict[str, Any]:
    """A justification copied from a `utility` tool report."""
    return {
        "utility": report["utility"],
        "cited": [{"card": c["card"], "contribution": c["contribution"]} for c in report["cited"]],
        "rationale": rationale,
    }


def move(kind: str, **fields: Any) -> ModelResponse:
    return call_tool(kind, kind=kind, **fields)


def sensible(hold_out: float = 0.6) -> Script:
    """A well-behaved negotiator, reading only what the delegate tells it.

    It asks the `utility` tool about the offer on the table; accepts when that is within
    the mandate and at least its aspiration (which falls from its best outcome to its
    worst admissible one as the deadline nears, slowly at first: `hold_out`); else it
    asks the tool about the outcome from its list of best outcomes that matches its
    aspiration and proposes it, citing the tool's figures.
    """

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        turn = parse_turn(user_prompt(messages))
        best = best_outcomes(info.instructions or "")
        top, floor = best[0][0], best[-1][0]
        t = turn["round"] / turn["deadline"]
        aspiration = top - (top - floor) * t ** (1 / hold_out)
        reports = tool_returns(messages)
        standing = turn["standing"]
        if standing and "accept" in turn["allowed"] and not reports:
            return call_tool("utility", outcome=standing)
        if reports and standing and reports[-1].get("outcome") == standing and "accept" in turn["allowed"]:
            r = reports[-1]
            if r["mandate"] == "within the mandate" and r["utility"] >= aspiration - 1e-9:
                return move("accept", offer=standing, justification=justification(r, "Good enough for us."))
        target = min((b for b in best if b[0] >= aspiration - 1e-9), key=lambda b: b[0], default=best[0])[1]
        if not reports or reports[-1].get("outcome") != target:
            return call_tool("utility", outcome=target)
        return move("propose", offer=target, justification=justification(reports[-1], "Our offer."))

    return script


def llm_plan(
    path: Path, delegate: str, model: str, spec_update: dict[str, Any] | None = None, **options: Any
) -> SessionPlan:
    """The session at `path` with `delegate` switched to the llm strategy and `model`."""
    spec, _ = load_session(path)
    delegates = dict(spec.delegates)
    old = spec.delegate_spec(delegate)
    delegates[delegate] = DelegateSpec(
        strategy="llm", options={"model": model, "fallback": old.strategy, **options}
    )
    spec = spec.model_copy(update={"delegates": delegates, **(spec_update or {})})
    return build_plan(SessionSpec.model_validate(spec.model_dump(mode="json")), str(path))
