"""The session file an organizer writes (YAML, or JSON), validated at the boundary.

Every cross-reference is checked here, before anything runs, so that a bad file gets one
clear error naming the file and the field and never reaches the ledger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from accord.llm_assessor import AssessMissing
from constituencies import Assessment, Constituency
from constituencies.ids import Id
from protocols.agenda import Agenda, Issue


class SessionFileError(ValueError):
    """A session file that cannot be used, with where and why."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{self.path}: invalid session file\n{lines}")


class ProtocolSpec(BaseModel):
    """Which protocol runs the session, and its parameters (checked by the protocol)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "stacked-alternating-offers"

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DelegateSpec(BaseModel):
    """How one constituency's delegate decides; `options` go to the strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = "boulware"
    options: dict[str, Any] = Field(default_factory=dict)


class RatificationDecision(BaseModel):
    """Constituents' answer, decided ahead, on outcomes their mandate reserves for them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delegate: Id
    outcome: dict[Id, Id] = Field(description="A partial outcome: the decision covers every outcome matching it.")
    decision: Literal["approve", "reject"]
    by: list[Id] = Field(default_factory=list, description="The constituents who decided.")
    note: str = ""


class SessionSpec(BaseModel):
    """A whole deliberation session: agenda, constituencies, assessments, protocol, delegates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id = Field(description="A short name for the session; runs get it as a prefix.")
    title: str = ""
    description: str = ""
    agenda: list[Issue] = Field(min_length=1)
    constituencies: list[Constituency] = Field(min_length=2)
    assessments: list[Assessment] = Field(default_factory=list)
    protocol: ProtocolSpec = Field(default_factory=ProtocolSpec)
    delegates: dict[Id, DelegateSpec] = Field(default_factory=dict)
    ratifications: list[RatificationDecision] = Field(
        default_factory=list,
        description="Decisions on outcomes that need ratification, so a session can run "
        "unattended; without one, `accord run` asks at the prompt (or treats it as refused).",
    )
    assess_missing: AssessMissing | None = Field(
        default=None,
        description="Have a language model score the (option, card) pairs nobody assessed; "
        "its assessments are labelled as model-written and never override people's.",
    )
    seed: int = 0
    turn_timeout_s: float = Field(
        default=30.0, gt=0, description="Wall-clock time a delegate has to answer a call."
    )

    @model_validator(mode="after")
    def _cross_references(self) -> SessionSpec:
        Agenda(issues=self.agenda)  # distinct issue ids
        problems: list[str] = []
        ids = [c.id for c in self.constituencies]
        for dupe in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"constituencies: duplicate id {dupe!r}")
        owner: dict[str, str] = {}
        for c in self.constituencies:
            for card in c.cards:
                if card.id in owner and owner[card.id] != c.id:
                    problems.append(
                        f"constituencies.{c.id}.cards: card id {card.id!r} is already used by "
                        f"constituency {owner[card.id]!r} (card ids must be unique in a session)"
                    )
                owner.setdefault(card.id, c.id)
        options = {i.id: {o.id for o in i.options} for i in self.agenda}
        for n, a in enumerate(self.assessments):
            where = f"assessments[{n}]"
            if a.issue not in options:
                problems.append(f"{where}.option: unknown issue {a.issue!r} in {a.option!r}")
            elif a.option_id not in options[a.issue]:
                problems.append(
                    f"{where}.option: unknown option {a.option_id!r} for issue {a.issue!r}"
                )
            if a.card not in owner:
                problems.append(f"{where}.card: unknown card {a.card!r}")
        for c in self.constituencies:
            for n, line in enumerate(c.mandate.red_lines):
                for issue, option in line.root.items():
                    if issue not in options:
                        problems.append(
                            f"constituencies.{c.id}.mandate.red_lines[{n}]: unknown issue {issue!r}"
                        )
                    elif option not in options[issue]:
                        problems.append(
                            f"constituencies.{c.id}.mandate.red_lines[{n}]: unknown option "
                            f"{option!r} for issue {issue!r}"
                        )
        # Contexts are matched as text, so a typo would silently switch a value off.
        issue_context = {i.id: i.context for i in self.agenda}
        known_contexts = {i.context for i in self.agenda if i.context}
        for c in self.constituencies:
            declared = {x.id for x in c.contexts} | {x.description for x in c.contexts}
            for card in c.cards:
                for ctx in card.contexts:
                    if ctx not in known_contexts and ctx not in declared:
                        problems.append(
                            f"constituencies.{c.id}.cards.{card.id}.contexts: {ctx!r} is not the "
                            "context of any agenda issue nor one the constituency declares"
                        )
            for n, vote in enumerate(c.wiser_than):
                if vote.context not in known_contexts and vote.context not in declared:
                    problems.append(
                        f"constituencies.{c.id}.wiser_than[{n}].context: {vote.context!r} is not "
                        "the context of any agenda issue nor one the constituency declares"
                    )
        cards = {card.id: card for c in self.constituencies for card in c.cards}
        seen: dict[tuple[str, str, str], int] = {}
        for n, a in enumerate(self.assessments):
            key = (a.option, a.card, a.by)
            if key in seen:
                problems.append(
                    f"assessments[{n}]: repeats assessments[{seen[key]}] ({a.option}, {a.card}, "
                    f"by {a.by}); keep one"
                )
            seen.setdefault(key, n)
            card = cards.get(a.card)
            if card is not None and a.issue in issue_context and not card.applies_in(issue_context[a.issue]):
                problems.append(
                    f"assessments[{n}].card: card {a.card!r} does not apply in the context of issue "
                    f"{a.issue!r} ({issue_context[a.issue]!r}), so this score would be ignored"
                )
        for c in self.constituencies:
            for issue in c.issue_weights or {}:
                if issue not in options:
                    problems.append(f"constituencies.{c.id}.issue_weights: unknown issue {issue!r}")
        by_id = {c.id: c for c in self.constituencies}
        for n, d in enumerate(self.ratifications):
            where = f"ratifications[{n}]"
            if d.delegate not in by_id:
                problems.append(f"{where}.delegate: no constituency {d.delegate!r}")
                continue
            for issue, option in d.outcome.items():
                if issue not in options or option not in options[issue]:
                    problems.append(f"{where}.outcome: unknown option {issue}={option}")
            people = {p.id for p in by_id[d.delegate].constituents}
            for who in d.by:
                if who not in people:
                    problems.append(f"{where}.by: {who!r} is not a constituent of {d.delegate!r}")
        for c in self.constituencies:
            for n, rule in enumerate(c.mandate.ratification):
                for line in rule.outcomes:
                    for issue, option in line.root.items():
                        if issue not in options or option not in options[issue]:
                            problems.append(
                                f"constituencies.{c.id}.mandate.ratification[{n}]: unknown option {issue}={option}"
                            )
        for name in self.delegates:
            if name not in ids:
                problems.append(f"delegates.{name}: no constituency with that id")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def agenda_model(self) -> Agenda:
        return Agenda(issues=self.agenda)

    def delegate_spec(self, constituency_id: str) -> DelegateSpec:
        return self.delegates.get(constituency_id, DelegateSpec())


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SessionFileError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionFileError(path, [f"cannot read: {exc}"]) from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        # libyaml's loader when present: ten times faster on large session files.
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SessionFileError(path, [f"not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"]) from None


def _inline_constituencies(doc: dict[str, Any], base: Path) -> None:
    """Replace `{path: other.yaml}` (or a bare string) entries with the file's content."""
    entries = doc.get("constituencies")
    if not isinstance(entries, list):
        return
    for n, entry in enumerate(entries):
        ref = entry if isinstance(entry, str) else entry.get("path") if isinstance(entry, dict) and set(entry) == {"path"} else None
        if ref is None:
            continue
        target = (base / ref).resolve()
        loaded = _read_document(target)
        if not isinstance(loaded, dict):
            raise SessionFileError(target, [f"constituencies[{n}]: expected a mapping"])
        entries[n] = loaded


def _format_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in err["loc"] if not str(part).startswith("function-"))
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def load_session(path: str | Path) -> tuple[SessionSpec, Any]:
    """Read and validate a session file; returns the spec and the raw document it came from."""
    path = Path(path)
    doc = _read_document(path)
    if not isinstance(doc, dict):
        raise SessionFileError(path, ["the top level must be a mapping of fields"])
    _inline_constituencies(doc, path.parent)
    try:
        spec = SessionSpec.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            text = _format_error(err)
            problems.extend(p.strip() for p in text.split("; ")) if "; " in text else problems.append(text)
        raise SessionFileError(path, problems) from None
    return spec, doc


def session_schema() -> dict[str, Any]:
    """JSON Schema of the session file, for editors."""
    schema = SessionSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Accord session file"
    return schema
