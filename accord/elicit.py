"""Eliciting a values card from a constituent, after the Meaning Alignment Institute.

MAI's method (Klingefjord, Lowe and Edelman, "What are human values, and how do we align
AI to them?", 2024; the chat prompts of github.com/meaningalignment/dft): a model asks the
person for a story of a choice that mattered to them, then, one question at a time, what
they attended to when they chose well, until it can name a source of meaning by its
attentional policies. It then writes a values card (title, description, 3 to 7 policies).

Here the card must pass `constituencies.quality.check_card`; a card that does not is sent
back to the model with the quality report's errors, up to `max_retries` times. The person
then sees the card, with any warnings, and confirms it or edits its title, description
and each policy before it is saved (appended to a constituency file, or a new one).

The model is a pydantic-ai model string (or a name registered with
`delegates.llm.register_model`); the terminal is behind `InterviewIO`, so tests script
both sides (FunctionModel and typer's CliRunner `input=`).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.panel import Panel

from constituencies import Constituency, ValuesCard
from constituencies.quality import check_policies
from delegates.llm import estimate_cost, resolve_model


class Ask(BaseModel):
    """Ask the person one short question (one at a time)."""

    question: str = Field(min_length=1)


class CardDraft(BaseModel):
    """The values card: a short title, a one-sentence description, 3 to 7 attentional policies."""

    title: str = Field(description="A short name for the source of meaning (1 to 5 words).")
    description: str = Field(description="One sentence saying what it is to live by this value.")
    policies: list[str] = Field(
        description="3 to 7 attentional policies: each starts with a capitalised plural noun "
        "phrase in UPPERCASE (MOMENTS, OPPORTUNITIES, SIGNS, FEELINGS ...) and a qualifier."
    )


INSTRUCTIONS = """You help one person articulate a source of meaning they bring to a kind of choice,
following the Meaning Alignment Institute's values-card interview.

1. Ask for a story: a time they faced a choice of this kind and chose in a way that felt
   right to them, or that they are proud of.
2. Then, ONE short question at a time, ask what they paid attention to in that moment:
   what they noticed, what stood out, what they were drawn to, what felt alive or at
   stake. Ask about attention, not about goals, rules, norms or slogans. Never suggest
   answers; use their words.
3. When you understand what they attend to, write the values card (write_card).

Use the `ask` tool for a question and `write_card` for the card. The card:
- title: 1 to 5 words, in their terms;
- description: one sentence;
- policies: 3 to 7 distinct attentional policies, each beginning with a plural noun
  phrase in CAPITALS (e.g. MOMENTS, OPPORTUNITIES, SIGNS, FEELINGS, PLACES) followed by a
  qualifier that says which of them matter ("MOMENTS when a neighbour asks for help");
  no goals ("in order to", "ensure"), no rules ("should", "must"), no vague praise
  ("meaningful", "deep")."""


class ElicitError(RuntimeError):
    pass


class InterviewIO(Protocol):
    def say(self, text: str) -> None: ...
    def ask(self, question: str) -> str: ...
    def show_card(self, draft: CardDraft, errors: list[str], warnings: list[str]) -> None: ...
    def confirm(self, question: str, default: bool = True) -> bool: ...
    def edit(self, label: str, current: str) -> str: ...


class TerminalIO:
    """The interview at a terminal (rich output, typer prompts)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def ask(self, question: str) -> str:
        import typer

        self.console.print(f"\n[bold cyan]interviewer:[/] {question}", highlight=False)
        return typer.prompt("you", default="", show_default=False)

    def show_card(self, draft: CardDraft, errors: list[str], warnings: list[str]) -> None:
        lines = [f"[bold]{draft.title}[/]", draft.description, ""]
        lines += [f"{n}. {p}" for n, p in enumerate(draft.policies, start=1)]
        lines += [f"[red]error:[/] {e}" for e in errors]
        lines += [f"[yellow]warning:[/] {w}" for w in warnings]
        self.console.print(Panel("\n".join(lines), title="values card"), highlight=False)

    def confirm(self, question: str, default: bool = True) -> bool:
        import typer

        return typer.confirm(question, default=default)

    def edit(self, label: str, current: str) -> str:
        import typer

        return typer.prompt(label, default=current, show_default=bool(current))


@dataclass
class InterviewResult:
    card: ValuesCard
    model: str
    questions: int
    answers: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quality_retries: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def cost_usd(self) -> float | None:
        return estimate_cost(self.model, self.input_tokens, self.output_tokens)

    @property
    def usage_text(self) -> str:
        cost = "cost unknown" if self.cost_usd is None else f"~${self.cost_usd:.4f}"
        return f"{self.input_tokens:,} in / {self.output_tokens:,} out tokens, {cost}"


def slug(text: str, fallback: str = "card") -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text.lower()).strip("-")
    return (s or fallback)[:64].rstrip("-") or fallback


def card_problems(
    draft: CardDraft, card_id: str, contexts: list[str]
) -> tuple[ValuesCard | None, list[str], list[str]]:
    """(the card, errors, warnings): errors from the card model and the quality check."""
    report = check_policies(card_id, draft.policies)
    errors = [_issue(draft, i) for i in report.errors]
    warnings = [_issue(draft, i) for i in report.warnings]
    card = None
    try:
        card = ValuesCard(
            id=card_id, title=draft.title, description=draft.description,
            policies=draft.policies, contexts=contexts,
        )
    except ValidationError as exc:
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"])
            text = f"{where}: {e['msg']}"
            if not any(where == "policies" and "policies" in x for x in errors):
                errors.append(text)
    return (card if not errors else None), errors, warnings


def _issue(draft: CardDraft, issue: Any) -> str:
    if issue.policy is not None and issue.policy < len(draft.policies):
        return f"policy {issue.policy + 1} ({draft.policies[issue.policy]!r}) {issue.message}"
    return f"the card {issue.message}"


def interview(
    model: str,
    io: InterviewIO,
    *,
    context: str | None = None,
    max_questions: int = 6,
    max_retries: int = 2,
    card_id: str | None = None,
) -> InterviewResult | None:
    """Run the interview; None if the person discards the card."""
    from pydantic_ai import Agent, ToolOutput
    from pydantic_ai.usage import RunUsage

    instructions = INSTRUCTIONS
    if context:
        instructions += f"\n\nThe kind of choice to talk about: {context}."
    agent: Any = Agent(
        resolve_model(model),
        output_type=[ToolOutput(Ask, name="ask"), ToolOutput(CardDraft, name="write_card")],
        instructions=instructions,
        defer_model_check=True,
        name="interviewer",
    )
    card_only = ToolOutput(CardDraft, name="write_card")
    usage = RunUsage()
    history: list[Any] = []
    message = "Please begin the interview."
    if context:
        message += f" We are talking about choices of this kind: {context}."
    questions = 0
    answers: list[str] = []
    retries = 0
    contexts = [context] if context else []
    io.say("An interview about what you attend to when you choose well. Answer in your own words.")
    while True:
        force = questions >= max_questions or retries > 0
        try:
            result = agent.run_sync(
                message, message_history=history, usage=usage, output_type=card_only if force else None
            )
        except Exception as exc:  # noqa: BLE001 - the person gets one clear message
            raise ElicitError(f"the model {model!r} failed: {type(exc).__name__}: {exc}") from exc
        history = result.all_messages()
        out = result.output
        if isinstance(out, Ask):
            questions += 1
            answer = io.ask(out.question).strip()
            answers.append(answer)
            message = answer or "(no answer; ask something else, or write the card if you can)"
            continue
        draft = out
        cid = card_id or slug(draft.title)
        card, errors, warnings = card_problems(draft, cid, contexts)
        if errors and retries < max_retries:
            retries += 1
            message = (
                "The card does not pass the quality check:\n"
                + "\n".join(f"- {e}" for e in errors)
                + "\nRewrite it with write_card, keeping to the person's words."
            )
            continue
        break
    # The person has the last word.
    while True:
        cid = card_id or slug(draft.title)
        card, errors, warnings = card_problems(draft, cid, contexts)
        io.show_card(draft, errors, warnings)
        if card is not None and io.confirm("Does this card say what you attend to? Save it?", default=True):
            return InterviewResult(
                card=card, model=model, questions=questions, answers=answers, warnings=warnings,
                quality_retries=retries, requests=usage.requests,
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            )
        if errors:
            io.say("The card must be fixed before it can be saved.")
        if not io.confirm("Edit the card? (no: discard it)", default=True):
            return None
        draft = edit_draft(io, draft)


def edit_draft(io: InterviewIO, draft: CardDraft) -> CardDraft:
    """Title, description, then each policy ('-' removes it), then any new ones."""
    title = io.edit("Title", draft.title).strip() or draft.title
    description = io.edit("Description", draft.description).strip() or draft.description
    policies: list[str] = []
    for n, policy in enumerate(draft.policies, start=1):
        text = io.edit(f"Policy {n} ('-' removes it)", policy).strip()
        if text and text != "-":
            policies.append(text)
    while len(policies) < 7:
        extra = io.edit("Another policy (empty: none)", "").strip()
        if not extra:
            break
        policies.append(extra)
    return CardDraft(title=title, description=description, policies=policies)


# -- saving ---------------------------------------------------------------------------------------


def save_card(
    path: str | Path,
    card: ValuesCard,
    *,
    constituent: str | None = None,
    constituency: str | None = None,
) -> tuple[Path, str]:
    """Append `card` to the constituency file at `path` (its id made unique there), or
    write a new constituency file; `constituent` comes to hold the card. Returns the file
    and the card's id in it. The file is checked as a constituency and replaced
    atomically; comments in an existing file are not kept, so the original is kept
    beside it as `<name>.bak`."""
    path = Path(path)
    entry = card.model_dump(mode="json", exclude_defaults=True)
    entry["id"] = card.id
    if path.exists():
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text) or {}
        if not isinstance(doc, dict) or not isinstance(doc.get("cards"), list):
            raise ElicitError(f"{path}: not a constituency file (no 'cards' list)")
        taken = {c.get("id") for c in doc["cards"] if isinstance(c, dict)}
        base, n = card.id, 2
        while entry["id"] in taken:
            entry["id"] = f"{base}-{n}"
            n += 1
        doc["cards"].append(entry)
        if "#" in text:
            path.with_name(path.name + ".bak").write_text(text, encoding="utf-8")
    else:
        doc = {"id": constituency or slug(path.stem, "constituency"), "cards": [entry]}
    if constituent:
        people = doc.setdefault("constituents", [])
        person = next((p for p in people if isinstance(p, dict) and p.get("id") == constituent), None)
        if person is None:
            people.append({"id": constituent, "holds": [entry["id"]]})
        elif entry["id"] not in person.setdefault("holds", []):
            person["holds"].append(entry["id"])
    try:
        Constituency.model_validate(doc)
    except ValidationError as exc:
        raise ElicitError(f"{path}: the result would not be a valid constituency: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".elicit-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True, width=100)
    os.replace(tmp, path)
    return path, entry["id"]
