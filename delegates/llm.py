"""LLM delegates: a language model argues for the constituency, under the same rules as
every other strategy.

`LLMStrategy` asks a pydantic-ai agent for the move. The agent's structured output is
the union of the move classes the call allows (`protocols/moves.py`), so what the model
says is parsed like any other move. An output validator then checks what parsing cannot:
the cited cards exist, the move answers the call (an accept names the offer on the
table, an offer is a complete outcome of the agenda, a ballot ranks every candidate
exactly once), and the claimed utility and every cited contribution are the value
model's own figures (within 1e-6; a `utility(outcome)` tool gives the model the exact
breakdown). A failed check goes back to the model as a retry with the reason and the
right figures. After `max_retries` failed retries, or on any model error (no key, a
network failure, a refusal), the strategy falls back to its rule-based strategy for that
move, and the move's rationale says so.

The mandate is not checked here: the `Delegate` wrapper enforces it around this strategy
as around any other, so a model that proposes across a red line is refused and logged.

Each move's model, tokens, estimated cost, retries and fallback are kept in `last_llm`;
the delegate runner writes them into the move's ledger entry (`ledger_notes`).

Models are named by pydantic-ai model strings ("anthropic:claude-sonnet-4-5",
"openai:gpt-4.1", "test"); tests and embedders may register a `Model` instance under a
name (`register_model`) and use that name in a session file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from delegates import llm_prompt as prompts
from delegates.base import DelegateView, Strategy, StrategyOptions
from protocols.agenda import Outcome
from protocols.events import Call
from protocols.moves import (
    MOVE_TYPES,
    Accept,
    CardCitation,
    Critique,
    Justification,
    Move,
    Propose,
    Rank,
    Reject,
    Votes,
)
from protocols.social_choice import ballot_problem

T = TypeVar("T")

DEFAULT_MODEL = "anthropic:claude-sonnet-4-5"
TOLERANCE = 1e-6

MOVE_BY_KIND: dict[str, type[BaseModel]] = {
    cls.model_fields["kind"].default: cls for cls in MOVE_TYPES
}


# -- running coroutines from synchronous code ------------------------------------------------------

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop in a daemon thread: model clients (HTTP connection pools)
    stay bound to one loop however many synchronous calls are made."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="accord-llm-loop", daemon=True).start()
            _LOOP = loop
        return _LOOP


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code, whether or not this thread is
    running an event loop (it blocks this thread meanwhile)."""
    loop = _background_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_blocking cannot wait for its own event loop")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


# -- models by name ----------------------------------------------------------------------------

_REGISTERED: dict[str, Any] = {}


def register_model(name: str, model: Any) -> None:
    """Make a pydantic-ai `Model` instance usable as `options.model: <name>`."""
    _REGISTERED[name] = model


def unregister_model(name: str) -> None:
    _REGISTERED.pop(name, None)


@contextlib.contextmanager
def registered_model(name: str, model: Any) -> Iterator[None]:
    """`with registered_model("scripted", FunctionModel(f)):` for the block only."""
    old = _REGISTERED.get(name)
    register_model(name, model)
    try:
        yield
    finally:
        if old is None:
            unregister_model(name)
        else:
            _REGISTERED[name] = old


def resolve_model(name: str) -> Any:
    """A registered Model instance, or the model string for pydantic-ai to resolve."""
    return _REGISTERED.get(name, name)


def is_offline_model(name: str) -> bool:
    """Registered instances and pydantic-ai's `test` model need no key and no network."""
    return name in _REGISTERED or name == "test" or name.startswith(("test:", "function:"))


# -- providers and keys ------------------------------------------------------------------------

#: Provider prefix -> (environment variables, any one of which holds its key; the
#: pydantic-ai extra that installs its client library; that library's import name).
PROVIDERS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "anthropic": (("ANTHROPIC_API_KEY",), "anthropic", "anthropic"),
    "openai": (("OPENAI_API_KEY",), "openai", "openai"),
    "openai-chat": (("OPENAI_API_KEY",), "openai", "openai"),
    "openai-responses": (("OPENAI_API_KEY",), "openai", "openai"),
    "google-gla": (("GOOGLE_API_KEY", "GEMINI_API_KEY"), "google", "google.genai"),
    "gemini": (("GOOGLE_API_KEY", "GEMINI_API_KEY"), "google", "google.genai"),
    "google-vertex": ((), "google", "google.genai"),  # application default credentials
    "groq": (("GROQ_API_KEY",), "groq", "groq"),
    "mistral": (("MISTRAL_API_KEY",), "mistral", "mistralai"),
    "cohere": (("CO_API_KEY",), "cohere", "cohere"),
    "deepseek": (("DEEPSEEK_API_KEY",), "openai", "openai"),
    "openrouter": (("OPENROUTER_API_KEY",), "openai", "openai"),
    "grok": (("XAI_API_KEY", "GROK_API_KEY"), "openai", "openai"),
    "xai": (("XAI_API_KEY",), "xai", "xai_sdk"),
    "bedrock": ((), "bedrock", "boto3"),  # AWS credential chain
}


def split_model(name: str) -> tuple[str | None, str]:
    """('anthropic', 'claude-sonnet-4-5') from 'anthropic:claude-sonnet-4-5'; a bare name
    is matched to its provider by its family where that is unambiguous."""
    if ":" in name:
        provider, _, model = name.partition(":")
        return provider, model
    if name.startswith("claude"):
        return "anthropic", name
    if name.startswith(("gpt-", "o1", "o3", "o4")):
        return "openai", name
    if name.startswith("gemini"):
        return "google-gla", name
    return None, name


def credential_problem(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why the model `name` cannot be called from here (missing key or client), or None."""
    if is_offline_model(name):
        return None
    env = os.environ if environ is None else environ
    provider, model = split_model(name)
    if provider is None:
        return (
            f"model {name!r}: name the provider, e.g. 'anthropic:{name}' or 'openai:{name}' "
            "(a pydantic-ai model string)"
        )
    if provider not in PROVIDERS:
        return None  # a provider we do not know how to check: let pydantic-ai decide
    variables, extra, module = PROVIDERS[provider]
    if module is not None and importlib.util.find_spec(module.split(".")[0]) is None:
        return (
            f"model {name!r}: the {provider} client library is not installed "
            f"(pip install 'pydantic-ai-slim[{extra}]')"
        )
    if variables and not any(env.get(v) for v in variables):
        return f"model {name!r} needs an API key: set {' or '.join(variables)}"
    return None


# -- prices ------------------------------------------------------------------------------------

#: USD per million input / output tokens, base tier (prompts under 200k tokens), without
#: prompt-cache discounts. Sources: anthropic.com/pricing and openai.com/api/pricing and
#: ai.google.dev/pricing as listed in November 2025, cross-checked against the
#: genai-prices package (pydantic/genai-prices, v0.2.3). Prices change: the ledger keeps
#: tokens, so costs can be recomputed.
PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4-0": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-3-7-sonnet-latest": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
}
PRICE_SOURCE = "Accord price table (provider pricing pages, Nov 2025; base tier, no caching)"


def price_of(name: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a model string, if the table knows it."""
    _, model = split_model(name)
    if model in PRICES:
        return PRICES[model]
    # Dated snapshots ('claude-sonnet-4-5-20250929') cost what their family costs.
    for known in sorted(PRICES, key=len, reverse=True):
        if model.startswith(known + "-"):
            return PRICES[known]
    return None


#: Provider -> (price multiplier of cached input read, of input written to the cache).
#: Anthropic: reads 0.1x, 5-minute writes 1.25x (anthropic.com/pricing). Elsewhere cached
#: tokens are priced as plain input: an overestimate, never an underestimate.
CACHE_MULTIPLIERS: dict[str, tuple[float, float]] = {"anthropic": (0.1, 1.25)}


def estimate_cost(
    name: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float | None:
    """Estimated USD for a model string and token counts (`input_tokens` includes the
    cached ones, as pydantic-ai counts them); None when the price is unknown."""
    price = price_of(name)
    if price is None:
        return None
    read_x, write_x = CACHE_MULTIPLIERS.get(split_model(name)[0] or "", (1.0, 1.0))
    plain = max(input_tokens - cache_read_tokens - cache_write_tokens, 0)
    weighted = plain + cache_read_tokens * read_x + cache_write_tokens * write_x
    return round((weighted * price[0] + output_tokens * price[1]) / 1_000_000, 6)


# -- the fallback strategy ---------------------------------------------------------------------

# Rule-based strategies of this package, by name (mirrors accord.plugins, which this
# layer may not import); plug-ins are found through the same entry-point group.
_RULE_STRATEGIES = {
    "boulware": "delegates.time_dependent:Boulware",
    "linear": "delegates.time_dependent:Linear",
    "conceder": "delegates.time_dependent:Conceder",
    "tit-for-tat": "delegates.tit_for_tat:TitForTat",
    "aspiration": "delegates.aspiration:AspirationWithOpponentModel",
    "log-rolling": "delegates.log_rolling:LogRolling",
}


def fallback_strategy(name: str) -> type[Strategy]:
    """The rule-based strategy class called `name`; an LLM strategy cannot be a fallback."""
    if name == LLMStrategy.name:
        raise ValueError(f"the fallback must be a rule-based strategy, not {name!r}")
    path = _RULE_STRATEGIES.get(name)
    cls: Any = None
    if path is not None:
        module, _, attr = path.partition(":")
        with contextlib.suppress(ModuleNotFoundError):
            cls = getattr(importlib.import_module(module), attr)
    if cls is None:
        for ep in entry_points(group="accord.strategies"):
            if ep.name == name:
                cls = ep.load()
                break
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ValueError(f"unknown fallback strategy {name!r}; use a rule-based strategy such as boulware")
    if issubclass(cls, LLMStrategy):
        raise ValueError(f"the fallback must be a rule-based strategy, not {name!r}")
    return cls


# -- options and records -----------------------------------------------------------------------


class LLMOptions(StrategyOptions):
    model: str = Field(
        default=DEFAULT_MODEL,
        description="A pydantic-ai model string (provider:model), or a name registered with "
        "delegates.llm.register_model.",
    )
    max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries after an invalid move before falling back."
    )
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=64, description="Cap on tokens per answer.")
    fallback: str = Field(
        default="boulware", description="The rule-based strategy that moves when the model cannot."
    )
    fallback_options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the fallback strategy."
    )
    prompt_cache: bool = Field(
        default=True,
        description="Ask the provider to cache the fixed prefix (instructions, tools) and the "
        "conversation (pydantic-ai's `cache` setting; Anthropic bills cached reads at 0.1x).",
    )
    history: int = Field(
        default=40, ge=0, description="How many past events the prompt recalls (latest kept)."
    )
    top_outcomes: int = Field(
        default=10, ge=0, le=200, description="How many of its best outcomes the prompt lists."
    )

    @model_validator(mode="after")
    def _fallback_is_usable(self) -> LLMOptions:
        cls = fallback_strategy(self.fallback)
        try:
            cls.Options.model_validate(self.fallback_options)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"fallback_options.{where}: {first['msg']}") from None
        return self


class LLMMoveRecord(BaseModel):
    """What one move cost and how it came about; goes in the move's ledger entry as `llm`."""

    model_config = ConfigDict(extra="forbid")

    model: str
    requests: int = 0
    input_tokens: int = Field(default=0, description="All input tokens, cached ones included.")
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    price_source: str | None = None
    retries: int = 0
    retry_reasons: list[str] = Field(default_factory=list)
    fallback: str | None = Field(
        default=None, description="Why the rule-based strategy moved instead, if it did."
    )


@dataclass
class _Turn:
    """Per-run state the tool and the validator share."""

    call: Call
    failures: list[str] = field(default_factory=list)


class InvalidMove(ValueError):
    """A move that does not answer the call or misstates its figures."""


# -- the strategy ------------------------------------------------------------------------------


class LLMStrategy(Strategy):
    name: ClassVar[str] = "llm"
    description: ClassVar[str] = (
        "A language model argues from the value model (pydantic-ai); validated, retried, "
        "and replaced by a rule-based move when it fails."
    )
    Options = LLMOptions

    def __init__(self, view: DelegateView, options: LLMOptions | None = None) -> None:
        super().__init__(view, options)
        self.options: LLMOptions
        fb_cls = fallback_strategy(self.options.fallback)
        self.fallback = fb_cls(view, fb_cls.Options.model_validate(self.options.fallback_options))
        self.fallback_name = self.options.fallback
        self.history: list[str] = []
        self.instructions = prompts.instructions(
            view.model, view.mandate, view.agenda, view.space.admissible, self.options.top_outcomes
        )
        self._agents: dict[tuple[str, ...], Any] = {}
        self.last_llm: LLMMoveRecord | None = None
        self.records: list[LLMMoveRecord] = []

    # -- what the runner reads --------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self.options.model

    @property
    def last_fallback(self) -> str | None:
        return self.last_llm.fallback if self.last_llm else None

    @property
    def last_usage(self) -> dict[str, int] | None:
        if self.last_llm is None:
            return None
        return {"input_tokens": self.last_llm.input_tokens, "output_tokens": self.last_llm.output_tokens}

    def ledger_notes(self) -> dict[str, Any]:
        """Extra fields for the ledger entry of the move just made."""
        return {"llm": self.last_llm.model_dump(mode="json")} if self.last_llm else {}

    # -- the rule-based half -------------------------------------------------------------------

    def aspiration(self, call: Call) -> float:
        return self.fallback.aspiration(call)

    def observe(self, call: Call) -> None:
        super().observe(call)
        self.fallback.observe(call)
        line = prompts.seen_line(call, self.view.model, self.view.delegate_id)
        if line:
            self._remember(line)

    def observe_rejection(self, reason: str) -> None:
        self.fallback.observe_rejection(reason)
        self._remember(f"the chair refused your last move: {reason}")

    def observe_refusal(self, reason: str) -> None:
        """The mandate replaced our move (called by the Delegate wrapper)."""
        self._remember(f"your mandate refused your move and replaced it: {reason}")

    def restore(self, call: Call, move: Mapping[str, Any]) -> None:
        """Replay (resume): bring the history up to date without asking the model again."""
        self.observe(call)
        self._remember(prompts.move_line(call, move, " (recorded)"))
        self.last_llm = None

    def _remember(self, line: str) -> None:
        self.history.append(line)
        if len(self.history) > max(self.options.history, 0):
            del self.history[: len(self.history) - self.options.history]

    # -- deciding -------------------------------------------------------------------------------

    def respond(self, call: Call) -> Move:
        """Synchronous entry (simulations, `Delegate.decide`): the agent runs on Accord's
        background event loop, so this works inside a running loop too (the runner itself
        awaits `respond_async` instead)."""
        return run_blocking(self.respond_async(call))

    async def respond_async(self, call: Call) -> Move:
        from pydantic_ai import capture_run_messages
        from pydantic_ai.usage import RunUsage, UsageLimits

        # The prompt recalls what came before this call; the call itself is its own section.
        prompt = prompts.turn_prompt(call, self.view.model, self.view.mandate, self.view.agenda, self.history)
        self.observe(call)
        turn = _Turn(call)
        usage = RunUsage()
        record = LLMMoveRecord(model=self.options.model)
        move: Move | None = None
        messages: list[Any] = []
        try:
            allowed = tuple(k for k in call.allowed if k in MOVE_BY_KIND)
            if not allowed:
                raise InvalidMove(f"the call allows no move kind a model can make: {call.allowed}")
            agent = self._agent(allowed)
            limits = UsageLimits(request_limit=3 * (self.options.max_retries + 1) + 2)
            with capture_run_messages() as messages:
                result = await agent.run(prompt, deps=turn, usage=usage, usage_limits=limits)
            move = result.output
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any model failure falls back, and says why
            failure = exc
        else:
            failure = None
        sent_back = _retry_reasons(messages)
        record.retries = len(sent_back)
        record.retry_reasons = [_short(r, 500) for r in sent_back]
        record.requests = usage.requests
        record.input_tokens = usage.input_tokens
        record.output_tokens = usage.output_tokens
        record.cache_read_tokens = usage.cache_read_tokens
        record.cache_write_tokens = usage.cache_write_tokens
        record.cost_usd = estimate_cost(
            self.options.model, usage.input_tokens, usage.output_tokens,
            usage.cache_read_tokens, usage.cache_write_tokens,
        )
        record.price_source = PRICE_SOURCE if record.cost_usd is not None else None
        if failure is not None or move is None:
            why = self._failure(failure, turn, sent_back, record.retries)
            move = self._fall_back(call, why)
            record.fallback = f"{why}; fell back to {self.fallback_name}"
        self.last_llm = record
        self.records.append(record)
        via = f" (rule-based {self.fallback_name}: the model failed)" if record.fallback else ""
        self._remember(prompts.move_line(call, move.model_dump(mode="json"), via))
        return move

    def _failure(
        self, exc: Exception | None, turn: _Turn, sent_back: list[str], retries: int
    ) -> str:
        from pydantic_ai.exceptions import UnexpectedModelBehavior

        if isinstance(exc, UnexpectedModelBehavior):
            cause = exc.__cause__
            if cause is not None and type(cause).__name__ == "ModelRetry":
                reason = str(getattr(cause, "message", cause))
            elif isinstance(cause, ValidationError):
                reason = "; ".join(
                    f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in cause.errors()[:3]
                )
            elif turn.failures:
                reason = turn.failures[-1]
            elif sent_back:
                reason = sent_back[-1]
            else:
                reason = str(exc)
            return f"LLM move invalid after {retries} retries ({_short(reason)})"
        if exc is None:
            return "LLM gave no move"
        return f"LLM call failed ({type(exc).__name__}: {_short(str(exc))})"

    def _fall_back(self, call: Call, why: str) -> Move:
        move = self.fallback.respond(call)
        just = move.justification
        text = f"{why}; fell back to {self.fallback_name}. {just.rationale}"
        return move.model_copy(update={"justification": just.model_copy(update={"rationale": text})})

    # -- the agent ------------------------------------------------------------------------------

    def _agent(self, allowed: tuple[str, ...]) -> Any:
        agent = self._agents.get(allowed)
        if agent is None:
            agent = self._agents[allowed] = self._build_agent(allowed)
        return agent

    def _build_agent(self, allowed: tuple[str, ...]) -> Any:
        from pydantic_ai import Agent, ModelRetry, RunContext, ToolOutput

        settings: dict[str, Any] = {}
        if self.options.temperature is not None:
            settings["temperature"] = self.options.temperature
        if self.options.max_tokens is not None:
            settings["max_tokens"] = self.options.max_tokens
        if self.options.prompt_cache:
            settings["cache"] = True
        outputs = [
            ToolOutput(MOVE_BY_KIND[kind], name=kind, description=prompts.MOVE_GUIDE.get(kind))
            for kind in allowed
        ]
        agent: Any = Agent(
            resolve_model(self.options.model),
            output_type=outputs if len(outputs) > 1 else outputs[0],
            instructions=self.instructions,
            deps_type=_Turn,
            retries=self.options.max_retries,
            model_settings=settings or None,
            defer_model_check=True,
            name=f"delegate:{self.view.delegate_id}",
        )
        view = self.view

        @agent.tool_plain
        def utility(outcome: dict[str, str]) -> dict[str, Any]:
            """The utility of a complete outcome to your constituency, with the contribution
            of each of your cards (what a justification cites), and whether it is within
            your mandate. `outcome` maps every issue id to one of its option ids."""
            return utility_report(view, outcome)

        @agent.tool_plain
        def find_outcomes(min_utility: float, fixed: dict[str, str] | None = None) -> list[dict[str, Any]]:
            """Up to 10 complete outcomes within your mandate worth at least `min_utility`
            to you, the least valuable first (the concessions closest to that level);
            `fixed` keeps some issues at given options (e.g. as another delegate asked)."""
            return find_outcomes_report(view, min_utility, fixed or {})

        @agent.output_validator
        def check(ctx: RunContext[_Turn], move: Any) -> Any:
            try:
                return validate_move(view, ctx.deps.call, move)
            except InvalidMove as exc:
                ctx.deps.failures.append(str(exc))
                raise ModelRetry(str(exc)) from None

        return agent


# -- validation (pure) ---------------------------------------------------------------------------


def utility_report(view: DelegateView, outcome: Mapping[str, str]) -> dict[str, Any]:
    problem = view.agenda.problem_with(outcome)
    if problem:
        return {"error": f"not a complete outcome of the agenda: {problem}"}
    b = view.model.breakdown(outcome)
    why = view.mandate.violation(outcome, b.utility)
    return {
        "outcome": dict(outcome),
        "utility": round(b.utility, prompts.DIGITS),
        "cited": [
            {"card": c.card, "title": c.title, "contribution": round(c.contribution, prompts.DIGITS)}
            for c in b.contributions
            if c.contribution != 0.0
        ],
        "mandate": f"outside the mandate: {why}" if why else "within the mandate",
    }


def find_outcomes_report(
    view: DelegateView, min_utility: float, fixed: Mapping[str, str], limit: int = 10
) -> list[dict[str, Any]]:
    found = [
        {"outcome": dict(o), "utility": round(u, prompts.DIGITS)}
        for u, o in reversed(view.space.at_least(min_utility - TOLERANCE))
        if all(o.get(i) == v for i, v in fixed.items())
    ]
    return found[:limit]


def _about(view: DelegateView, call: Call, move: BaseModel) -> list[Outcome]:
    """The outcome(s) a move's justification may be about."""
    if isinstance(move, (Propose, Accept, Reject)):
        return [dict(move.offer)]
    if isinstance(move, Rank):
        outcomes = {c.id: c.outcome for c in call.candidates or []}
        return [dict(outcomes[move.ranking[0]])]
    if isinstance(move, Critique):
        outcomes = {c.id: c.outcome for c in call.candidates or []}
        return [dict(outcomes[move.candidate])]
    if isinstance(move, Votes):
        return [dict(v.offer) for v in move.votes]
    return []


def check_justification(view: DelegateView, outcome: Outcome, just: Justification) -> Justification:
    """The justification with the value model's exact figures; InvalidMove if it misstates them."""
    model = view.model
    own = {c.id for c in model.constituency.cards}
    cited_ids = [c.card for c in just.cited]
    unknown = [c for c in dict.fromkeys(cited_ids) if c not in own]
    if unknown:
        raise InvalidMove(
            f"cites card(s) {', '.join(unknown)} that are not among your values cards "
            f"({', '.join(sorted(own))}). {prompts.correct_figures(model, outcome)}"
        )
    dupes = sorted({c for c in cited_ids if cited_ids.count(c) > 1})
    if dupes:
        raise InvalidMove(f"cites {', '.join(dupes)} more than once. {prompts.correct_figures(model, outcome)}")
    b = model.breakdown(outcome)
    exact = {c.card: c.contribution for c in b.contributions}
    wrong = [
        f"{c.card} contributes {exact[c.card]:+.6f}, not {c.contribution:+.6f}"
        for c in just.cited
        if abs(exact[c.card] - c.contribution) > TOLERANCE
    ]
    if abs(b.utility - just.utility) > TOLERANCE:
        wrong.insert(0, f"the utility is {b.utility:+.6f}, not {just.utility:+.6f}")
    missing = [c for c, v in exact.items() if abs(v) > TOLERANCE and c not in cited_ids]
    if missing:
        wrong.append(f"leaves out {', '.join(missing)}, which contribute(s) to the utility")
    if wrong:
        raise InvalidMove(
            f"misstates the figures of {prompts.outcome_json(outcome)}: {'; '.join(wrong)}. "
            f"{prompts.correct_figures(model, outcome)}"
        )
    cited = [CardCitation(card=c, contribution=exact[c]) for c in cited_ids]
    return Justification(utility=b.utility, cited=cited, rationale=just.rationale)


def validate_move(view: DelegateView, call: Call, move: Any) -> Any:
    """The move with exact figures, or InvalidMove saying what is wrong (not the mandate:
    the Delegate wrapper enforces that)."""
    agenda = view.agenda
    kind = getattr(move, "kind", None)
    if kind not in call.allowed:
        raise InvalidMove(f"a {kind} move is not allowed now; allowed: {', '.join(call.allowed)}")
    table = call.standing_offer
    if isinstance(move, (Propose, Accept, Reject)):
        problem = agenda.problem_with(move.offer)
        if problem:
            raise InvalidMove(f"the offer is not a complete outcome of the agenda: {problem}")
        if isinstance(move, (Accept, Reject)):
            if table is None:
                raise InvalidMove(f"there is no offer on the table to {kind}")
            if dict(move.offer) != dict(table):
                raise InvalidMove(
                    f"{kind} must name the offer on the table exactly: {prompts.outcome_json(table)}"
                )
    elif isinstance(move, Rank):
        problem = ballot_problem(move.ranking, [c.id for c in call.candidates or []])
        if problem:
            raise InvalidMove(f"the ballot {problem}")
    elif isinstance(move, Critique):
        ids = [c.id for c in call.candidates or []]
        if move.candidate not in ids:
            raise InvalidMove(f"critiques {move.candidate!r}; the candidate is {' or '.join(ids)}")
        if move.suggestion is not None:
            problem = agenda.problem_with(move.suggestion)
            if problem:
                raise InvalidMove(f"the suggestion is not a complete outcome: {problem}")
    elif isinstance(move, Votes):
        offers = [dict(t.offer) for t in call.table or []]
        seen: list[dict[str, str]] = []
        fixed_votes = []
        for vote in move.votes:
            if dict(vote.offer) not in offers:
                raise InvalidMove(f"votes on {prompts.outcome_json(vote.offer)}, which is not on the table")
            if dict(vote.offer) in seen:
                raise InvalidMove(f"votes twice on {prompts.outcome_json(vote.offer)}")
            seen.append(dict(vote.offer))
            if vote.min_power > vote.max_power:
                raise InvalidMove("a vote's min_power is above its max_power")
            try:
                fixed = check_justification(view, dict(vote.offer), vote.justification)
            except InvalidMove as exc:
                raise InvalidMove(f"in the vote on {prompts.outcome_json(vote.offer)}: {exc}") from None
            fixed_votes.append(vote.model_copy(update={"justification": fixed}))
        move = move.model_copy(update={"votes": fixed_votes})
    about = _about(view, call, move)
    if not about:
        # No vote cast: the justification is about no outcome; its figures must still add up.
        just = move.justification
        own = {c.id for c in view.model.constituency.cards}
        unknown = [c.card for c in just.cited if c.card not in own]
        if unknown:
            raise InvalidMove(f"cites card(s) {', '.join(unknown)} that are not among your values cards")
        if abs(sum(c.contribution for c in just.cited) - just.utility) > TOLERANCE * (1 + len(just.cited)):
            raise InvalidMove("the cited contributions do not add up to the claimed utility")
        return move
    errors: list[str] = []
    for outcome in about:
        try:
            fixed = check_justification(view, outcome, move.justification)
        except InvalidMove as exc:
            errors.append(str(exc))
            continue
        return move.model_copy(update={"justification": fixed})
    if len(about) > 1:
        raise InvalidMove(
            "the justification must be about one of the offers you vote for (the best); "
            + errors[0]
        )
    raise InvalidMove(errors[0])


def _retry_reasons(messages: Sequence[Any]) -> list[str]:
    """What was sent back to the model as retries, in order (from the run's messages)."""
    from pydantic_ai.messages import RetryPromptPart

    reasons: list[str] = []
    for message in messages:
        for part in getattr(message, "parts", []):
            if isinstance(part, RetryPromptPart):
                content = part.content
                if isinstance(content, str):
                    reasons.append(content)
                else:
                    reasons.append(
                        "; ".join(
                            f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in content
                        )
                    )
            elif getattr(part, "outcome", None) == "retried":
                reasons.append(str(part.content))
    return reasons


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
