"""Language models in the runtime and the CLI: choosing them, checking keys before a
session starts, summing what they cost, labelling delegates, and `accord elicit`.

Wiring (the CLI owner mounts these):

- `accord run FILE --model M`: `spec = apply_model_override(spec, M)` before build_plan.
- before the session starts: `problems = check_model_credentials(plan)`; if any, raise
  `SessionFileError(file, problems)` (one error naming every delegate without a key).
- the outcome table: `delegate_labels(plan)` ("llm (anthropic:claude-sonnet-4-5)" or the
  strategy name) and `llm_usage(rows)` (tokens and estimated cost, per delegate and total).
- `app.add_typer(elicit_app, name="elicit")`: interview a constituent, write a card.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.panel import Panel

from accord.session_file import DelegateSpec, SessionSpec
from delegates.llm import (
    DEFAULT_MODEL,
    PRICE_SOURCE,
    LLMStrategy,
    credential_problem,
    estimate_cost,
)

if TYPE_CHECKING:
    from accord.session_plan import Participant, SessionPlan

LLM_STRATEGY = "llm"
#: An LLM move (with its tool round-trip and retries) takes longer than a rule's.
LLM_TURN_TIMEOUT_S = 180.0


# -- choosing the model --------------------------------------------------------------------


def apply_model_override(
    spec: SessionSpec,
    model: str,
    only: Sequence[str] | None = None,
    min_turn_timeout_s: float = LLM_TURN_TIMEOUT_S,
) -> SessionSpec:
    """The session with `model` for its LLM delegates (`accord run --model M`).

    - Delegates already using the `llm` strategy get `options.model = model`.
    - If none does (and `only` is not given), every delegate becomes an LLM delegate, and
      its configured rule-based strategy (with its options) becomes its fallback.
    - With `only` (delegate ids), exactly those become (or stay) LLM delegates.
    The turn timeout is raised to at least `min_turn_timeout_s`: a model's move takes
    longer than a rule's. The returned spec is what the ledger records.
    """
    ids = [c.id for c in spec.constituencies]
    unknown = [d for d in only or () if d not in ids]
    if unknown:
        raise ValueError(f"--model: no delegate {', '.join(unknown)}; delegates: {', '.join(ids)}")
    current = {d: spec.delegate_spec(d) for d in ids}
    if only:
        targets = list(only)
    else:
        targets = [d for d, s in current.items() if s.strategy == LLM_STRATEGY] or ids
    delegates = dict(spec.delegates)
    for d in targets:
        dspec = current[d]
        if dspec.strategy == LLM_STRATEGY:
            options = {**dspec.options, "model": model}
        else:
            options = {"model": model, "fallback": dspec.strategy}
            if dspec.options:
                options["fallback_options"] = dict(dspec.options)
        delegates[d] = DelegateSpec(strategy=LLM_STRATEGY, options=options)
    update: dict[str, Any] = {"delegates": delegates}
    if spec.turn_timeout_s < min_turn_timeout_s:
        update["turn_timeout_s"] = min_turn_timeout_s
    return spec.model_copy(update=update)


def llm_models(plan: SessionPlan) -> dict[str, list[str]]:
    """Model name -> the delegates (and other users, e.g. 'assess_missing') that call it."""
    used: dict[str, list[str]] = {}
    for p in plan.participants:
        strategy = p.delegate.strategy
        if isinstance(strategy, LLMStrategy):
            used.setdefault(strategy.model_name, []).append(f"delegates.{p.id}")
    assess = getattr(plan.spec, "assess_missing", None)
    if assess is not None:
        name = assess.get("model") if isinstance(assess, Mapping) else getattr(assess, "model", None)
        if name:
            used.setdefault(str(name), []).append("assess_missing")
    if plan.protocol_params is not None and getattr(plan.protocol_params, "drafter", None) == "llm":
        from protocols.llm_drafter import drafter_model

        used.setdefault(drafter_model(), []).append("protocol.drafter")
    return used


def check_model_credentials(plan: SessionPlan, environ: Mapping[str, str] | None = None) -> list[str]:
    """Problems that would stop the session's models from answering (a missing API key, a
    missing client library), one per model, naming who uses it; empty when all is well.

    Raise them as `SessionFileError(path, problems)` before the session starts."""
    problems = []
    for model, users in llm_models(plan).items():
        why = credential_problem(model, environ)
        if why is not None:
            problems.append(f"{', '.join(users)}: {why}")
    return problems


def prepare_llm_spec(
    spec: SessionSpec,
    path: str | Path,
    model: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[SessionSpec, dict[str, Any] | None]:
    """Everything model-related that happens before `build_plan`, for `accord run`:

    1. `--model`: `apply_model_override` (when `model` is given);
    2. `assess_missing:` (when the file asks): check that model's key, score the unscored
       pairs (cached), and add them to the spec, labelled `by: model`.

    Returns the spec to build the plan from, and the assessor's ledger body (or None) to
    record beside the session's opening entry. Raises `SessionFileError` for a missing key
    and for an assessor that fails. Then build the plan and check the delegates' keys
    with `check_model_credentials(plan)`."""
    from accord.llm_assessor import AssessMissing, AssessorError, assess_missing, with_assessments
    from accord.session_file import SessionFileError

    if model:
        spec = apply_model_override(spec, model)
    raw = getattr(spec, "assess_missing", None)
    if raw is None:
        return spec, None
    settings = raw if isinstance(raw, AssessMissing) else AssessMissing.model_validate(raw)
    problem = credential_problem(settings.model, environ)
    if problem is not None:
        raise SessionFileError(path, [f"assess_missing: {problem}"])
    try:
        result = assess_missing(spec, settings, session_path=path)
    except AssessorError as exc:
        raise SessionFileError(path, [f"assess_missing: {exc}"]) from None
    return with_assessments(spec, result.assessments), result.ledger_body(settings.model)


# -- what the outcome table shows ---------------------------------------------------------------


def delegate_label(participant: Participant) -> str:
    """'llm (anthropic:claude-sonnet-4-5)' for an LLM delegate, else the strategy name."""
    strategy = participant.delegate.strategy
    if isinstance(strategy, LLMStrategy):
        return f"llm ({strategy.model_name})"
    return participant.strategy_name


def delegate_labels(plan: SessionPlan) -> dict[str, str]:
    return {p.id: delegate_label(p) for p in plan.participants}


class LLMUsage(BaseModel):
    """Tokens and estimated cost of the LLM moves of one delegate (or all)."""

    moves: int = 0
    fallbacks: int = 0
    retries: int = 0
    requests: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = Field(default=0.0, description="None if any move's price is unknown.")
    models: list[str] = Field(default_factory=list)

    def add(self, record: Mapping[str, Any]) -> None:
        self.moves += 1
        self.fallbacks += 1 if record.get("fallback") else 0
        self.retries += int(record.get("retries") or 0)
        self.requests += int(record.get("requests") or 0)
        self.input_tokens += int(record.get("input_tokens") or 0)
        self.output_tokens += int(record.get("output_tokens") or 0)
        self.cache_read_tokens += int(record.get("cache_read_tokens") or 0)
        cost = record.get("cost_usd")
        self.cost_usd = None if cost is None or self.cost_usd is None else round(self.cost_usd + cost, 6)
        model = record.get("model")
        if model and model not in self.models:
            self.models.append(model)

    def describe(self) -> str:
        cost = "cost unknown" if self.cost_usd is None else f"~${self.cost_usd:.4f}"
        fb = f", {self.fallbacks} fell back" if self.fallbacks else ""
        return (
            f"{self.moves} LLM moves{fb}, {self.input_tokens:,} in / {self.output_tokens:,} out "
            f"tokens, {cost}"
        )


class LLMUsageSummary(BaseModel):
    per_delegate: dict[str, LLMUsage] = Field(default_factory=dict)
    total: LLMUsage = Field(default_factory=LLMUsage)
    price_source: str = PRICE_SOURCE


def _row_parts(row: Any) -> tuple[str, str, Mapping[str, Any]]:
    if isinstance(row, Mapping):
        return str(row.get("kind")), str(row.get("actor")), row.get("body") or {}
    return row.kind, row.actor, row.body


def llm_usage(rows: Iterable[Any]) -> LLMUsageSummary:
    """Sum the `llm` records of a session's move entries (ledger rows, or dicts with
    kind/actor/body), per delegate and in total."""
    summary = LLMUsageSummary()
    for row in rows:
        kind, actor, body = _row_parts(row)
        record = body.get("llm") if kind == "move" else None
        if not record:
            continue
        summary.per_delegate.setdefault(actor, LLMUsage()).add(record)
        summary.total.add(record)
    return summary


def recost(record: Mapping[str, Any]) -> float | None:
    """A move's cost recomputed from its tokens with today's price table."""
    return estimate_cost(
        str(record.get("model")),
        int(record.get("input_tokens") or 0),
        int(record.get("output_tokens") or 0),
        int(record.get("cache_read_tokens") or 0),
        int(record.get("cache_write_tokens") or 0),
    )


# -- accord elicit --------------------------------------------------------------------------------

elicit_app = typer.Typer(
    help="Interview a constituent about what they attend to when choosing, and write a values card.",
    no_args_is_help=False,
    add_completion=False,
    invoke_without_command=True,
)
console = Console()


@elicit_app.callback()
def elicit(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Constituency YAML file: the card is appended, or a new file is written."
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", envvar="ACCORD_ELICIT_MODEL", help="pydantic-ai model string.")
    ] = DEFAULT_MODEL,
    context: Annotated[
        str | None,
        typer.Option(
            "--context", "-c",
            help="The kind of choice to talk about, e.g. 'When deciding how public land is used'.",
        ),
    ] = None,
    constituent: Annotated[
        str | None, typer.Option("--constituent", help="The constituent's pseudonymous id; they will hold the card.")
    ] = None,
    constituency: Annotated[
        str | None, typer.Option("--constituency", help="Constituency id, for a new file (default: the file's name).")
    ] = None,
    card_id: Annotated[
        str | None, typer.Option("--card-id", help="Id of the new card (default: from its title).")
    ] = None,
    max_questions: Annotated[int, typer.Option(help="Questions before the card is written.")] = 6,
    max_retries: Annotated[int, typer.Option(help="Attempts to fix a card that fails the quality check.")] = 2,
) -> None:
    """Interview one constituent (one question at a time), then show a values card to confirm or edit."""
    from accord.elicit import ElicitError, TerminalIO, interview, save_card

    problem = credential_problem(model, os.environ)
    if problem is not None:
        console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    io = TerminalIO(console)
    try:
        result = interview(
            model, io, context=context, max_questions=max_questions, max_retries=max_retries, card_id=card_id
        )
    except ElicitError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if result is None:
        console.print("Nothing saved.")
        raise typer.Exit(1)
    try:
        where, saved_id = save_card(out, result.card, constituent=constituent, constituency=constituency)
    except ElicitError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        Panel(
            f"Saved card [bold]{saved_id}[/] to {where}"
            + (f", held by {constituent}" if constituent else "")
            + f". Written with {result.model} ({result.questions} questions); {result.usage_text}.",
            title="values card saved",
        ),
        highlight=False,
    )


# -- what a session with LLM delegates would cost ----------------------------------------------------


class CallEstimate(BaseModel):
    delegate: str
    round: int
    move: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class SessionEstimate(BaseModel):
    """Tokens an all-LLM run would use, from the real prompts of a recorded run's calls."""

    session: str
    calls: int
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = Field(description="Of the input, what prefix caching would read.")
    cache_write_tokens: int
    per_delegate: dict[str, dict[str, int]]
    cost_usd: dict[str, float | None] = Field(description="Per model, without prompt caching.")
    cost_usd_cached: dict[str, float | None] = Field(
        description="Per model, with the fixed prefix (instructions, tools) cached."
    )
    method: str
    per_call: list[CallEstimate] = Field(default_factory=list, repr=False)


#: Output tokens a model such as Claude spends on text before a tool call or answer.
REASONING_TOKENS = 100


def estimate_session(
    plan: SessionPlan,
    rows: Sequence[Any],
    models: Sequence[str] = ("anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5", "anthropic:claude-opus-4-5"),
    chars_per_token: float = 4.0,
    reasoning_tokens: int = REASONING_TOKENS,
) -> SessionEstimate:
    """Estimate the tokens of the same session with every delegate an LLM delegate.

    For each call a delegate answered in `rows` (a recorded run, e.g. rule-based), build
    the prompt the LLM strategy would send at that point: its instructions, the turn
    prompt with the history it would have seen, and the definitions of the tools it would
    be offered (as pydantic-ai sends them). A proposal is counted as two requests (a
    `utility` tool call on the offer, then the move; the second request re-sends the
    first with the tool call and its result); an accept, reject, rank or vote as one (its
    figures are in the prompt). Output is the move's JSON plus `reasoning_tokens` per
    request. Tokens are characters / `chars_per_token`. Retries are not counted (each
    adds about one request's input).
    """
    import json

    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from delegates import llm_prompt as prompts
    from delegates.llm import LLMOptions, registered_model, utility_report
    from accord.delegate_runner import call_for
    from protocols.events import Call

    captured: dict[tuple[str, ...], int] = {}

    def capture(messages: list[Any], info: AgentInfo) -> Any:
        tools = [*info.function_tools, *info.output_tools]
        size = sum(
            len(json.dumps({"name": t.name, "description": t.description, "input_schema": t.parameters_json_schema}))
            for t in tools
        )
        raise _Captured(size)

    def tool_chars(strategy: LLMStrategy, allowed: tuple[str, ...]) -> int:
        if allowed not in captured:
            agent = strategy._build_agent(allowed)
            try:
                agent.run_sync("measure", deps=None)
            except _Captured as got:
                captured[allowed] = got.size
        return captured[allowed]

    def tokens(chars: int) -> int:
        return int(round(chars / chars_per_token))

    name = "accord-estimate"
    per_call: list[CallEstimate] = []
    written: set[tuple[str, tuple[str, ...]]] = set()
    with registered_model(name, FunctionModel(capture, model_name=name)):
        strategies = {
            p.id: LLMStrategy(p.delegate.view, LLMOptions(model=name)) for p in plan.participants
        }
        pending: dict[str, Call] = {}
        for row in rows:
            kind, actor, body = _row_parts(row)
            if actor == "chair" and kind == "call":
                pending[body["to"]] = Call.model_validate(body)
            elif actor == "chair" and kind == "calls":  # one call to many delegates
                for to in body.get("to", []):
                    pending[to] = Call.model_validate(call_for(kind, body, to))
            elif actor == "chair" and kind == "rejection" and body.get("to") in strategies:
                strategies[body["to"]].observe_rejection(str(body.get("reason", "")))
            elif kind == "move" and actor in pending:
                call = pending.pop(actor)
                s = strategies[actor]
                view = s.view
                move = body["move"]
                allowed = tuple(k for k in call.allowed)
                prompt = prompts.turn_prompt(call, view.model, view.mandate, view.agenda, s.history)
                prefix = len(s.instructions) + tool_chars(s, allowed)
                first = prefix + len(prompt)
                out = len(json.dumps(move)) + 4 * reasoning_tokens
                if move["kind"] == "propose":
                    call_json = json.dumps({"outcome": move["offer"]})
                    result_json = json.dumps(utility_report(view, move["offer"]))
                    second = first + len(call_json) + len(result_json) + 4 * reasoning_tokens
                    requests, chars_in = 2, first + second
                    out += len(call_json) + 4 * reasoning_tokens
                else:
                    requests, chars_in = 1, first
                # Prefix caching: the first request with this prefix writes it, later ones read it.
                key = (actor, allowed)
                writes = 0 if key in written else 1
                written.add(key)
                per_call.append(
                    CallEstimate(
                        delegate=actor, round=call.round, move=move["kind"], requests=requests,
                        input_tokens=tokens(chars_in), output_tokens=tokens(out),
                        cache_write_tokens=tokens(prefix) * writes,
                        cache_read_tokens=tokens(prefix) * (requests - writes),
                    )
                )
                s.restore(call, move)
    per_delegate: dict[str, dict[str, int]] = {}
    for c in per_call:
        d = per_delegate.setdefault(c.delegate, {"calls": 0, "requests": 0, "input_tokens": 0, "output_tokens": 0})
        d["calls"] += 1
        d["requests"] += c.requests
        d["input_tokens"] += c.input_tokens
        d["output_tokens"] += c.output_tokens
    total_in = sum(c.input_tokens for c in per_call)
    total_out = sum(c.output_tokens for c in per_call)
    reads = sum(c.cache_read_tokens for c in per_call)
    writes = sum(c.cache_write_tokens for c in per_call)
    return SessionEstimate(
        session=plan.spec.id,
        calls=len(per_call),
        requests=sum(c.requests for c in per_call),
        input_tokens=total_in,
        output_tokens=total_out,
        cache_read_tokens=reads,
        cache_write_tokens=writes,
        per_delegate=per_delegate,
        cost_usd={m: estimate_cost(m, total_in, total_out) for m in models},
        cost_usd_cached={m: estimate_cost(m, total_in, total_out, reads, writes) for m in models},
        method=(
            f"real prompts of each recorded call; characters / {chars_per_token:g} per token; "
            f"proposals 2 requests, other moves 1; {reasoning_tokens} output tokens of text per "
            "request; no retries; cached: instructions and tool definitions cached per delegate "
            "and move set (first request writes at 1.25x, later ones read at 0.1x)"
        ),
        per_call=per_call,
    )


class _Captured(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def estimate_file(path: str | Path, **kwargs: Any) -> SessionEstimate:
    """Run the session file as written (rule-based, in a throwaway ledger), then estimate
    what the same calls would cost with every delegate an LLM delegate."""
    import asyncio

    from accord.ledger import Ledger
    from accord.session import run_session
    from accord.session_plan import load_plan

    plan, _ = load_plan(path)

    async def go() -> list[Any]:
        with tempfile.TemporaryDirectory() as tmp:
            ledger = await Ledger.open(str(Path(tmp) / "estimate.db"))
            try:
                result = await run_session(plan, ledger)
                return await ledger.entries(result.session_id)
            finally:
                await ledger.close()

    return estimate_session(plan, asyncio.run(go()), **kwargs)


llm_app = typer.Typer(help="Language models in Accord: estimate what a session would cost.", add_completion=False)


@llm_app.callback()
def _llm_group() -> None:
    """Language models in Accord."""


@llm_app.command("estimate")
def estimate_command(
    file: Annotated[Path, typer.Argument(help="Session file (YAML or JSON).")],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Models to price (repeatable).")] = None,
) -> None:
    """Tokens and cost of FILE with every delegate an LLM delegate, from the real prompts."""
    models = model or ["anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5", "anthropic:claude-opus-4-5"]
    e = estimate_file(file, models=models)
    console.print(
        f"[bold]{e.session}[/]: {e.calls} calls, {e.requests} requests, "
        f"{e.input_tokens:,} input tokens ({e.cache_read_tokens:,} of them cacheable reads), "
        f"{e.output_tokens:,} output tokens",
        highlight=False,
    )
    for m in models:
        plain, cached = e.cost_usd[m], e.cost_usd_cached[m]
        said = "price unknown" if plain is None else f"~${plain:.2f} (with prompt caching ~${cached:.2f})"
        console.print(f"  {m}: {said}", highlight=False)
    console.print(f"[dim]method: {e.method}[/]", highlight=False)
