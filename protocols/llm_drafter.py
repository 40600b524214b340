"""A language-model drafter for the Habermas protocol: candidate group statements written
by a model from the delegates' positions, and revised from their critiques.

After Tessler et al. (Science 386, eadq2852, 2024), where a language model drafts group
statements from participants' opinions and revises the winner from their critiques.
Here each statement is also a complete outcome of the agenda: the model returns
(outcome, text) pairs, and an output validator sends back any outcome that is not a
complete outcome of the agenda (or repeats another) with the reason, up to `max_retries`
times. If the model still fails, or cannot be reached, the offline drafter's statements
are used and the record says so.

The text of each statement is the model's, labelled as model-written
("(Model-written by anthropic:claude-sonnet-4-5.)"), so that delegates and constituents
reading the ledger see who wrote it. Answers are cached in a JSON file keyed by the
SHA-256 of the model name and the prompt: a second run with the same positions asks
nothing, so a session with a model drafter replays the same.

Registered as `drafter: llm` (entry-point group `accord.drafters`). The protocol builds
drafters without arguments, so the model comes from `ACCORD_DRAFTER_MODEL` (default
anthropic:claude-sonnet-4-5) and the cache from `ACCORD_LLM_CACHE` (a directory; default
`.accord-cache/` in the working directory); `LLMDrafter.model_override` (a pydantic-ai
`Model`) is the injection point for tests and embedders.

Drafting is synchronous in the protocol (a state machine): inside the chair's event loop
the model is called from a worker thread, and the chair waits for the statements.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from protocols.agenda import Agenda
from protocols.drafting import Drafter, OfflineDrafter
from protocols.events import Candidate
from protocols.moves import Critique, Propose

DEFAULT_MODEL = "anthropic:claude-sonnet-4-5"
MODEL_ENV = "ACCORD_DRAFTER_MODEL"
CACHE_ENV = "ACCORD_LLM_CACHE"


def drafter_model() -> str:
    """The model a drafter built without arguments uses."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


class DraftStatement(BaseModel):
    outcome: dict[str, str] = Field(description="One option id for every issue id of the agenda.")
    text: str = Field(min_length=1, description="The group statement in plain language.")


class Drafts(BaseModel):
    statements: list[DraftStatement] = Field(min_length=1)


INSTRUCTIONS = """You draft candidate group statements for a deliberation among delegates, each
speaking for a constituency and its values (after the Habermas Machine). A statement is
a complete outcome of the agenda (exactly one option id for every issue id) and a short
plain-language text (2 to 4 sentences) that states the outcome and the reasons it could
be endorsed by as many delegates as possible, drawing on the reasons they gave. Do not
invent facts; do not take sides. Use only the issue and option ids listed. Return
distinct statements (no two with the same outcome)."""


def _agenda_text(agenda: Agenda) -> str:
    lines = ["Agenda:"]
    for issue in agenda.issues:
        lines.append(f"- {issue.id}: {issue.description or issue.id}")
        for option in issue.options:
            lines.append(f"  - {option.id}: {option.description or option.id}")
    return "\n".join(lines)


def draft_prompt(agenda: Agenda, positions: Mapping[str, Propose], n: int) -> str:
    lines = [_agenda_text(agenda), "", "The delegates' positions:"]
    for who, p in positions.items():
        cites = ", ".join(f"{c.card} {c.contribution:+.2f}" for c in p.justification.cited)
        lines.append(f"- {who} proposes {json.dumps(dict(p.offer))}")
        lines.append(f"  Reasons: {p.justification.rationale}" + (f" (cards: {cites})" if cites else ""))
    lines += ["", f"Draft up to {n} candidate statements, the most widely acceptable first."]
    return "\n".join(lines)


def revise_prompt(agenda: Agenda, winner: Candidate, critiques: Mapping[str, Critique], n: int) -> str:
    lines = [
        _agenda_text(agenda),
        "",
        f"The statement that won the ranking ({winner.id}): {json.dumps(dict(winner.outcome))}",
        f"Its text: {winner.text}",
        "",
        "The delegates' critiques:",
    ]
    for who, c in critiques.items():
        lines.append(f"- {who}: {c.text}")
        if c.suggestion:
            lines.append(f"  suggests instead: {json.dumps(dict(c.suggestion))}")
    lines += [
        "",
        f"Draft up to {n} revised statements that answer the critiques while keeping what "
        "made the winner acceptable. Do not repeat the winner unchanged.",
    ]
    return "\n".join(lines)


def prompt_hash(model: str, prompt: str) -> str:
    return hashlib.sha256(f"{model}\n{INSTRUCTIONS}\n{prompt}".encode()).hexdigest()


class LLMDrafter(Drafter):
    name = "llm"
    #: A pydantic-ai Model (or model string) used instead of the configured model name.
    model_override: ClassVar[Any] = None

    def __init__(
        self,
        model: str | None = None,
        cache: str | Path | None = None,
        max_retries: int = 2,
        temperature: float | None = 0.0,
    ) -> None:
        self.model_name = model or drafter_model()
        if cache is None:
            base = Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else Path(".accord-cache")
            cache = base / "drafts.json"
        self.cache_path = Path(cache)
        self.max_retries = max_retries
        self.temperature = temperature
        self.records: list[dict[str, Any]] = []
        self.model_calls = 0

    @property
    def model(self) -> str:
        """The name of the model that writes (the override's, when one is set)."""
        override = self.model_override
        if override is None:
            return self.model_name
        return override if isinstance(override, str) else str(getattr(override, "model_name", self.model_name))

    @property
    def label(self) -> str:
        return f"(Model-written by {self.model}.)"

    # -- the Drafter interface ---------------------------------------------------------------

    def draft(
        self, agenda: Agenda, positions: Mapping[str, Propose], n: int, rng: random.Random
    ) -> list[Candidate]:
        prompt = draft_prompt(agenda, positions, n)
        drafted = self._ask("draft", agenda, prompt, n, forbid=None)
        if drafted is None:
            return OfflineDrafter().draft(agenda, positions, n, rng)
        return [
            Candidate(id=f"d{k + 1}", outcome=s["outcome"], text=f"{s['text'].strip()} {self.label}")
            for k, s in enumerate(drafted)
        ]

    def revise(
        self,
        agenda: Agenda,
        winner: Candidate,
        critiques: Mapping[str, Critique],
        n: int,
        rng: random.Random,
    ) -> list[Candidate]:
        prompt = revise_prompt(agenda, winner, critiques, max(n - 1, 1))
        drafted = self._ask("revise", agenda, prompt, max(n - 1, 1), forbid=dict(winner.outcome))
        if drafted is None:
            return OfflineDrafter().revise(agenda, winner, critiques, n, rng)
        return [winner] + [
            Candidate(id=f"r{k + 1}", outcome=s["outcome"], text=f"{s['text'].strip()} {self.label}")
            for k, s in enumerate(drafted)
        ]

    # -- asking, with a cache ------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.cache_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError):
            return {}  # an unreadable cache is ignored and rewritten

    def _store(self, key: str, value: Any) -> None:
        data = self._load()
        data[key] = value
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".drafts-", dir=self.cache_path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.cache_path)

    def _ask(
        self, what: str, agenda: Agenda, prompt: str, n: int, forbid: dict[str, str] | None
    ) -> list[dict[str, Any]] | None:
        key = prompt_hash(self.model, prompt)
        record: dict[str, Any] = {"step": what, "model": self.model, "prompt_hash": key, "by": "model"}
        hit = self._load().get(key)
        if hit is not None:
            record["cached"] = True
            self.records.append(record)
            return hit["statements"]
        record["cached"] = False
        try:
            statements, usage = _run_blocking(self._run(agenda, prompt, n, forbid))
        except Exception as exc:  # noqa: BLE001 - the offline drafter stands in, and it is recorded
            record["fallback"] = f"{type(exc).__name__}: {exc}; used the offline drafter"
            self.records.append(record)
            return None
        record.update(usage)
        self.records.append(record)
        self._store(key, {"model": self.model, "step": what, "statements": statements})
        return statements

    async def _run(
        self, agenda: Agenda, prompt: str, n: int, forbid: dict[str, str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        from pydantic_ai import Agent, ModelRetry
        from pydantic_ai.usage import RunUsage

        agent: Any = Agent(
            self.model_override if self.model_override is not None else self.model_name,
            output_type=Drafts,
            instructions=INSTRUCTIONS,
            retries=self.max_retries,
            model_settings={"temperature": self.temperature} if self.temperature is not None else None,
            defer_model_check=True,
            name="drafter",
        )

        @agent.output_validator
        def check(out: Drafts) -> Drafts:
            problems = []
            seen: list[dict[str, str]] = []
            if len(out.statements) > n:
                problems.append(f"gives {len(out.statements)} statements; at most {n}")
            for k, s in enumerate(out.statements, start=1):
                problem = agenda.problem_with(s.outcome)
                if problem:
                    problems.append(f"statement {k}: not a complete outcome of the agenda: {problem}")
                elif s.outcome in seen:
                    problems.append(f"statement {k} repeats the outcome of an earlier one")
                elif forbid is not None and s.outcome == forbid:
                    problems.append(f"statement {k} repeats the winner's outcome; revise it")
                seen.append(dict(s.outcome))
            if problems:
                raise ModelRetry("; ".join(problems))
            return out

        usage = RunUsage()
        try:
            result = await agent.run(prompt, usage=usage)
        finally:
            self.model_calls += usage.requests
        statements = [s.model_dump() for s in result.output.statements]
        return statements, {
            "requests": usage.requests,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
        }


_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _run_blocking(coro: Any) -> Any:
    """Run `coro` on a long-lived loop in a daemon thread (model clients stay bound to one
    loop), blocking the caller: the protocol is synchronous, and inside the chair's loop
    the chair simply waits for the statements."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            _LOOP = asyncio.new_event_loop()
            threading.Thread(target=_LOOP.run_forever, name="accord-drafter-loop", daemon=True).start()
        loop = _LOOP
    return asyncio.run_coroutine_threadsafe(coro, loop).result()
