"""Model-written assessments for the (option, card) pairs a session file leaves unscored.

Only when the session file asks for it:

```yaml
assess_missing: {model: anthropic:claude-sonnet-4-5}   # optional: cache, max_retries, ...
```

Never in a default `accord run`. For every card and every agenda issue in whose context
the card applies, the options nobody assessed against that card are put to the model in
one prompt (the card with its attentional policies, the issue, all its options for
contrast, and which of them to score). The model answers a score in [-1, 1] and a
one-sentence rationale for each. Answers are cached in a JSON file keyed by the SHA-256
of the model name and the prompt, so a second run with the same inputs asks nothing and
gives the same session. Every new assessment is labelled `by: model` with the model's
name, and a ledger-ready record adds the prompt hash and whether it came from the cache.

Human judgement is never overridden: only pairs without any assessment are filled, and
`AssessmentTable` ranks constituents and organizer above a model in any case.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from constituencies import Assessment, Constituency, ValuesCard
from constituencies.ids import Id
from delegates.llm import DEFAULT_MODEL, estimate_cost, resolve_model, run_blocking
from protocols.agenda import Issue

if TYPE_CHECKING:
    from accord.session_file import SessionSpec

CACHE_ENV = "ACCORD_LLM_CACHE"
DEFAULT_CACHE = Path(".accord-cache") / "assessments.json"


class AssessMissing(BaseModel):
    """The session file's `assess_missing:` field (proposed): who fills unscored pairs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default=DEFAULT_MODEL, description="pydantic-ai model string.")
    cache: str | None = Field(
        default=None,
        description="JSON cache file (relative to the session file); default "
        f"$ACCORD_LLM_CACHE/assessments.json or {DEFAULT_CACHE} beside the session file.",
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    temperature: float | None = Field(default=0.0, ge=0.0, le=2.0)
    concurrency: int = Field(default=4, ge=1, le=64, description="Prompts in flight at once.")
    strict: bool = Field(
        default=True,
        description="Stop with an error if a pair cannot be assessed; otherwise leave it at 0 and report it.",
    )


class OptionScore(BaseModel):
    """The model's answer for one option."""

    option: Id = Field(description="The option id, as listed.")
    score: float = Field(
        ge=-1.0, le=1.0, description="-1 violates the card fully, 0 touches it not, +1 honours it fully."
    )
    rationale: str = Field(
        min_length=1, description="One sentence naming what in the card the option touches."
    )


class CardScores(BaseModel):
    scores: list[OptionScore]


class ModelAssessmentRecord(BaseModel):
    """What the ledger keeps about one model-written assessment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    option: str
    card: str
    score: float
    rationale: str
    by: str = "model"
    model: str
    prompt_hash: str
    cached: bool


@dataclass
class Pending:
    """One prompt: a card, an issue, and the options of that issue to score against it."""

    constituency: Constituency
    card: ValuesCard
    issue: Issue
    options: list[str]


@dataclass
class AssessorResult:
    assessments: list[Assessment] = field(default_factory=list)
    records: list[ModelAssessmentRecord] = field(default_factory=list)
    model_calls: int = 0
    prompts: int = 0
    cached_prompts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    failures: list[str] = field(default_factory=list)

    def ledger_body(self, model: str) -> dict[str, Any]:
        """A body for the ledger (e.g. `open_body["model_assessments"]`)."""
        return {
            "model": model,
            "records": [r.model_dump(mode="json") for r in self.records],
            "prompts": self.prompts,
            "cached_prompts": self.cached_prompts,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": estimate_cost(model, self.input_tokens, self.output_tokens),
            "failures": list(self.failures),
        }


class AssessorError(RuntimeError):
    pass


# -- what is missing ---------------------------------------------------------------------------


def missing(spec: SessionSpec) -> list[Pending]:
    """Every (card, issue) with options nobody assessed against the card, in file order."""
    assessed = {(a.issue, a.option_id, a.card) for a in spec.assessments}
    out: list[Pending] = []
    for constituency in spec.constituencies:
        for card in constituency.cards:
            for issue in spec.agenda:
                if not card.applies_in(issue.context):
                    continue
                todo = [o.id for o in issue.options if (issue.id, o.id, card.id) not in assessed]
                if todo:
                    out.append(Pending(constituency, card, issue, todo))
    return out


# -- prompts -------------------------------------------------------------------------------------

INSTRUCTIONS = """You assess how far options of a public decision honour or violate one values card.

A values card (after the Meaning Alignment Institute) names a source of meaning for some
people by what they attend to when they choose well (its attentional policies). For each
option you are asked about, judge how far choosing it would honour (+) or violate (-)
what the card attends to: +1 the option fully serves it, 0 it does not touch it (most
options touch most cards little), -1 it destroys it. Judge from the card's own terms,
not from your views. Give each option a one-sentence rationale naming what in the card
the option touches. Score every option you are asked about, exactly once, by its id."""


def assessment_prompt(p: Pending) -> str:
    card, issue = p.card, p.issue
    lines = [
        f"Constituency: {p.constituency.label}"
        + (f" - {p.constituency.description}" if p.constituency.description else ""),
        f"Values card {card.id}: \"{card.title}\" - {card.description}",
        "Its attentional policies:",
        *[f"- {policy}" for policy in card.policies],
        "",
        f"The decision: {issue.description or issue.id}"
        + (f" (a choice of the kind: \"{issue.context}\")" if issue.context else ""),
        "Its options:",
        *[f"- {o.id}: {o.description or o.id}" for o in issue.options],
        "",
        f"Score these options against the card: {', '.join(p.options)}.",
    ]
    return "\n".join(lines)


def prompt_hash(model: str, prompt: str) -> str:
    return hashlib.sha256(f"{model}\n{INSTRUCTIONS}\n{prompt}".encode()).hexdigest()


# -- the cache -----------------------------------------------------------------------------------


def cache_path(settings: AssessMissing, session_path: str | Path | None = None) -> Path:
    base = Path(session_path).parent if session_path else Path.cwd()
    if settings.cache:
        path = Path(settings.cache)
        return path if path.is_absolute() else base / path
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "assessments.json"
    return base / DEFAULT_CACHE


class JsonCache:
    """A JSON object of prompt hash -> answer, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.exists():
            try:
                self.data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise AssessorError(f"{path}: unreadable cache ({exc}); remove it to start afresh") from None
        self.dirty = False

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cache-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
        self.dirty = False


# -- asking ------------------------------------------------------------------------------------------


def _agent(settings: AssessMissing) -> Any:
    from pydantic_ai import Agent, ModelRetry, RunContext

    agent: Any = Agent(
        resolve_model(settings.model),
        output_type=CardScores,
        instructions=INSTRUCTIONS,
        deps_type=Pending,
        retries=settings.max_retries,
        model_settings={"temperature": settings.temperature} if settings.temperature is not None else None,
        defer_model_check=True,
        name="assessor",
    )

    @agent.output_validator
    def check(ctx: RunContext[Pending], out: CardScores) -> CardScores:
        asked = ctx.deps.options
        said = [s.option for s in out.scores]
        unknown = [o for o in said if o not in asked]
        twice = sorted({o for o in said if said.count(o) > 1})
        left = [o for o in asked if o not in said]
        problems = []
        if unknown:
            problems.append(f"scores option(s) not asked about: {', '.join(unknown)}")
        if twice:
            problems.append(f"scores {', '.join(twice)} more than once")
        if left:
            problems.append(f"leaves out {', '.join(left)}")
        if problems:
            raise ModelRetry("; ".join(problems) + f". Score exactly these options once each: {', '.join(asked)}.")
        return out

    return agent


async def assess_missing_async(
    spec: SessionSpec,
    settings: AssessMissing | Mapping[str, Any] | None = None,
    *,
    session_path: str | Path | None = None,
    cache: JsonCache | None = None,
) -> AssessorResult:
    """New model-written assessments for every unscored pair, with ledger records."""
    settings = _settings(spec, settings)
    todo = missing(spec)
    result = AssessorResult(prompts=len(todo))
    if not todo:
        return result
    cache = cache or JsonCache(cache_path(settings, session_path))
    agent = _agent(settings)
    gate = asyncio.Semaphore(settings.concurrency)

    async def one(p: Pending) -> tuple[Pending, str, list[dict[str, Any]] | None, bool]:
        prompt = assessment_prompt(p)
        key = prompt_hash(settings.model, prompt)
        hit = cache.get(key)
        if hit is not None:
            return p, key, hit["scores"], True
        from pydantic_ai.usage import RunUsage

        usage = RunUsage()
        async with gate:
            try:
                run = await agent.run(prompt, deps=p, usage=usage)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported per pair
                result.failures.append(
                    f"card {p.card.id} on issue {p.issue.id}: {type(exc).__name__}: {exc}"
                )
                return p, key, None, False
            finally:
                result.model_calls += usage.requests
                result.input_tokens += usage.input_tokens
                result.output_tokens += usage.output_tokens
        scores = [s.model_dump() for s in run.output.scores]
        cache.put(
            key,
            {
                "model": settings.model,
                "card": p.card.id,
                "issue": p.issue.id,
                "scores": scores,
                "written": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return p, key, scores, False

    answers = await asyncio.gather(*(one(p) for p in todo))
    cache.save()
    for p, key, scores, cached in answers:
        if scores is None:
            continue
        result.cached_prompts += cached
        by_option = {s["option"]: s for s in scores}
        for option in p.options:
            s = by_option[option]
            a = Assessment(
                option=f"{p.issue.id}/{option}",
                card=p.card.id,
                score=float(s["score"]),
                rationale=str(s["rationale"]),
                by="model",
                model=settings.model,
            )
            result.assessments.append(a)
            result.records.append(
                ModelAssessmentRecord(
                    option=a.option, card=a.card, score=a.score, rationale=a.rationale,
                    model=settings.model, prompt_hash=key, cached=cached,
                )
            )
    if result.failures and settings.strict:
        raise AssessorError(
            f"{len(result.failures)} of {len(todo)} assessment prompts failed: " + "; ".join(result.failures[:5])
        )
    return result


def assess_missing(
    spec: SessionSpec,
    settings: AssessMissing | Mapping[str, Any] | None = None,
    *,
    session_path: str | Path | None = None,
    cache: JsonCache | None = None,
) -> AssessorResult:
    """Synchronous `assess_missing_async`, for the CLI before a session starts."""
    return run_blocking(assess_missing_async(spec, settings, session_path=session_path, cache=cache))


def with_assessments(spec: SessionSpec, new: Sequence[Assessment]) -> SessionSpec:
    """The spec with model-written assessments added (validated again, as a file would be)."""
    data = spec.model_dump(mode="json")
    data["assessments"] = [*data["assessments"], *(a.model_dump(mode="json") for a in new)]
    return type(spec).model_validate(data)


def _settings(spec: Any, settings: AssessMissing | Mapping[str, Any] | None) -> AssessMissing:
    if isinstance(settings, AssessMissing):
        return settings
    if settings is None:
        settings = getattr(spec, "assess_missing", None)
        if isinstance(settings, AssessMissing):
            return settings
    return AssessMissing.model_validate(dict(settings or {}))
