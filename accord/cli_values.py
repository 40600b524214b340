"""`accord values`: read, check, draw, import and export constituencies' values.

Mount it on the main CLI with ``app.add_typer(values_app, name="values")``:

    accord values show FILE [--constituency ID] [--per-context] [--top N] [--json]
    accord values check FILE [--strict] [--json]
    accord values graph FILE -o graph.png|graph.svg [--constituency ID] [--context CTX]
    accord values import-graph MORAL_GRAPH.json -o constituency.yaml --id ID [--name NAME]
    accord values export-graph FILE -o graph.json [--constituency ID] [--context CTX]

FILE is told apart by its shape: a session file (`agenda`, `constituencies`; read by
`load_session`), a constituency file (one constituency mapping, with `cards`), or a moral
graph in the Meaning Alignment Institute's export shape (`values` and `edges`). YAML or
JSON. A file that cannot be read, parsed or validated gets one error naming it, and exit
code 2.

`graph` needs networkx and matplotlib (the optional extra `accord[graph]`); everything
else needs only Accord's own dependencies.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from accord.session_file import SessionFileError, SessionSpec, load_session
from constituencies import Constituency, Context, WiserThanVote
from constituencies.ids import Id
from constituencies.moral_graph import (
    MoralGraph,
    MoralGraphError,
    assemble_moral_graph,
    dump_moral_graph,
)
from constituencies.quality import canonicalise, check_card, check_moral_graph
from constituencies.wisdom import RankingOptions, keeps_edge, rank_values, wiser_likelihood

FileArg = Annotated[
    Path, typer.Argument(help="Session file, constituency file or MAI moral graph.")
]
OneConstituencyOpt = Annotated[
    str | None,
    typer.Option(
        "--constituency", "-c", help="Which constituency (needed if the session has several)."
    ),
]

values_app = typer.Typer(
    help="Values cards, weights and moral graphs: show, check, draw, import and export them.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

ALL_CONTEXTS = "all contexts"
GRAPH_EXTRA_HINT = "pip install 'accord[graph]'"
UNKNOWN_CONTEXT = "Unknown context"  # for an MAI edge that lists none

Kind = Literal["session", "constituency", "moral-graph"]


class ValuesInputError(ValueError):
    """An input file or option that cannot be used; the message names the file."""


def _n(count: int, noun: str, plural: str | None = None) -> str:
    """'1 card', '2 cards'."""
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _warn(message: str) -> None:
    err.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False)


# --- reading the input -----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What FILE held: a session, one constituency, or an MAI moral graph."""

    path: Path
    kind: Kind
    session: SessionSpec | None = None
    constituencies: tuple[Constituency, ...] = ()
    graph: MoralGraph | None = None


def _read_document(path: Path) -> Any:
    if not path.exists():
        raise ValuesInputError(f"{path}: file not found")
    if path.is_dir():
        raise ValuesInputError(f"{path}: is a folder, not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValuesInputError(f"{path}: cannot read: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValuesInputError(
                f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
            ) from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ValuesInputError(f"{path}: not valid YAML: {exc}") from None


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors():
        loc = ""
        for part in error["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            elif not str(part).startswith("function-"):
                loc += f".{part}" if loc else str(part)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        out.append(f"{loc}: {message}" if loc else message)
    return out


def _invalid(path: Path, what: str, exc: ValidationError) -> ValuesInputError:
    lines = "\n".join(f"  - {p}" for p in _problems(exc))
    return ValuesInputError(f"{path}: invalid {what}\n{lines}")


def load_source(path: Path) -> Source:
    """Read FILE and decide by its shape what it is; raises `ValuesInputError`."""
    doc = _read_document(path)
    if not isinstance(doc, dict):
        raise ValuesInputError(
            f"{path}: the top level must be a mapping (a session file, a constituency or a "
            f"moral graph), not {type(doc).__name__ if doc is not None else 'an empty document'}"
        )
    if "values" in doc and "edges" in doc:
        try:
            graph = MoralGraph.model_validate(doc)
        except ValidationError as exc:
            raise _invalid(path, "moral graph", exc) from None
        return Source(path, "moral-graph", graph=graph)
    if "agenda" in doc or "constituencies" in doc:
        try:
            spec, _ = load_session(path)
        except SessionFileError as exc:
            raise ValuesInputError(str(exc)) from None
        return Source(path, "session", session=spec, constituencies=tuple(spec.constituencies))
    if "cards" in doc:
        try:
            constituency = Constituency.model_validate(doc)
        except ValidationError as exc:
            raise _invalid(path, "constituency", exc) from None
        return Source(path, "constituency", constituencies=(constituency,))
    found = ", ".join(repr(k) for k in list(doc)[:8]) or "none"
    raise ValuesInputError(
        f"{path}: not a session file, a constituency or a moral graph: expected top-level "
        f"keys 'agenda' and 'constituencies' (session), 'cards' (constituency), or 'values' "
        f"and 'edges' (MAI moral graph); found {found}"
    )


def _load(path: Path) -> Source:
    try:
        return load_source(path)
    except ValuesInputError as exc:
        _fail(str(exc))
        raise


def _pick(source: Source, wanted: str | None, *, one: bool) -> list[Constituency]:
    """The constituencies a command works on; `one`: exactly one is needed."""
    if source.kind == "moral-graph":
        if wanted is not None:
            _fail(f"{source.path}: is a moral graph; --constituency applies to session and "
                  "constituency files")
        return []
    ids = [c.id for c in source.constituencies]
    if wanted is not None:
        for c in source.constituencies:
            if c.id == wanted:
                return [c]
        _fail(f"{source.path}: no constituency {wanted!r} (it has: {', '.join(ids)})")
    if one and len(ids) > 1:
        _fail(f"{source.path}: holds {len(ids)} constituencies ({', '.join(ids)}); "
              "choose one with --constituency")
    return list(source.constituencies)


def constituency_contexts(spec: SessionSpec | None, c: Constituency) -> list[str | None]:
    """None (all contexts) first, then the contexts of the agenda's issues, of the
    constituency's cards and of its wiser-than votes, in order of appearance."""
    found: list[str] = []
    if spec is not None:
        found += [issue.context for issue in spec.agenda if issue.context]
    found += [ctx for card in c.cards for ctx in card.contexts]
    found += [vote.context for vote in c.wiser_than]
    return [None, *dict.fromkeys(found)]


def _context_labels(contexts: Sequence[str | None]) -> dict[str | None, str]:
    labels: dict[str | None, str] = {None: ALL_CONTEXTS}
    n = 0
    for ctx in contexts:
        if ctx is not None and ctx not in labels:
            n += 1
            labels[ctx] = f"C{n}"
    return labels


# --- show ------------------------------------------------------------------------------------


@dataclass
class VoteTally:
    context: str
    less_wise: str
    wiser: str
    upgrade: int = 0
    no_upgrade: int = 0
    not_sure: int = 0
    voters: list[str] = field(default_factory=list)
    unknown_voters: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "less_wise": self.less_wise,
            "wiser": self.wiser,
            "upgrade": self.upgrade,
            "no_upgrade": self.no_upgrade,
            "not_sure": self.not_sure,
            "voters": self.voters,
            "unknown_voters": self.unknown_voters,
        }


def summarise_votes(votes: Sequence[WiserThanVote]) -> list[VoteTally]:
    """Votes grouped by (context, less wise, wiser), in order of first appearance."""
    groups: dict[tuple[str, str, str], VoteTally] = {}
    for vote in votes:
        key = (vote.context, vote.less_wise, vote.wiser)
        tally = groups.setdefault(key, VoteTally(*key))
        setattr(tally, vote.vote, getattr(tally, vote.vote) + 1)
        if vote.by is None:
            tally.unknown_voters += 1
        elif vote.by not in tally.voters:
            tally.voters.append(vote.by)
    return list(groups.values())


def constituency_report(spec: SessionSpec | None, c: Constituency) -> dict[str, Any]:
    """Everything `show` says about one constituency, as plain data."""
    contexts = constituency_contexts(spec, c)
    labels = _context_labels(contexts)
    support = c.support()
    holders = {card.id: [p.id for p in c.constituents if card.id in p.holds] for card in c.cards}
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "cards": [
            {
                "id": card.id,
                "title": card.title,
                "description": card.description,
                "policies": list(card.policies),
                "contexts": list(card.contexts),
                "source": card.source,
            }
            for card in c.cards
        ],
        "contexts": [{"label": labels[ctx], "context": ctx} for ctx in contexts],
        "weights": [
            {"context": ctx, "label": labels[ctx], "weights": c.card_weights(ctx)}
            for ctx in contexts
        ],
        "constituents": [p.model_dump(mode="json") for p in c.constituents],
        "holders": holders,
        "support": support,
        "mandate": c.mandate.model_dump(mode="json"),
        "wiser_than": [t.as_json() for t in summarise_votes(c.wiser_than)],
        "wiser_than_votes": len(c.wiser_than),
    }


def graph_report(
    source: Source, options: RankingOptions, top: int
) -> dict[str, Any]:
    graph = source.graph
    assert graph is not None
    rankings = []
    for context, ranking in rank_values(graph, options).items():
        ranked = ranking.ranked()
        rankings.append(
            {
                "context": context,
                "label": context or ALL_CONTEXTS,
                "kept_edges": ranking.edges,
                "ranked_values": len(ranked),
                "top": [
                    {
                        "rank": n,
                        "id": value_id,
                        "card_id": graph.card_id(value_id),
                        "title": graph.value(value_id).title,
                        "weight": weight,
                        "score": ranking.scores[value_id],
                    }
                    for n, (value_id, weight) in enumerate(
                        ranked[:top] if top > 0 else ranked, start=1
                    )
                ],
            }
        )
    return {
        "kind": "moral-graph",
        "file": str(source.path),
        "values": [
            {
                "id": v.id,
                "card_id": graph.card_id(v.id),
                "title": v.title,
                "policies": len(v.evaluation_criteria),
            }
            for v in graph.values
        ],
        "edges": len(graph.edges),
        "contexts": graph.contexts(),
        "options": options.model_dump(mode="json"),
        "rankings": rankings,
    }


def _fmt_weight(w: float | None) -> str:
    return "—" if w is None else f"{w:.3f}"


def _print_constituency(report: dict[str, Any], spec: SessionSpec | None) -> None:
    cid = report["id"]
    heading = f"{cid}: {report['name']}" if report["name"] and report["name"] != cid else cid
    console.rule(Text(heading, style="bold"), style="cyan")
    if report["description"]:
        console.print(Text(report["description"], style="dim"))
    console.print(
        f"{_n(len(report['cards']), 'card')} · {_n(len(report['constituents']), 'constituent')} · "
        f"{_n(report['wiser_than_votes'], 'wiser-than vote')}",
        highlight=False,
    )
    labels = {c["context"]: c["label"] for c in report["contexts"]}

    cards = Table(title="Cards", title_justify="left", show_lines=True, expand=False)
    cards.add_column("card", no_wrap=True, max_width=18, overflow="fold")
    cards.add_column("title", max_width=20)
    cards.add_column("attentional policies", ratio=1)
    for card in report["cards"]:
        policies = Text("\n".join(f"• {p}" for p in card["policies"]))
        if card["contexts"]:
            where = ", ".join(labels.get(ctx, ctx) for ctx in card["contexts"])
            policies.append(f"\napplies in: {where}", style="dim italic")
        if card["source"] != "elicited":
            policies.append(f"\n{card['source']}", style="dim italic")
        cards.add_row(card["id"], Text(card["title"]), policies)
    console.print(cards)

    contexts = [c["context"] for c in report["contexts"]]
    named = [c for c in contexts if c is not None]
    if named:
        legend = Table.grid(padding=(0, 1))
        legend.add_column(style="bold", no_wrap=True)
        legend.add_column()
        for ctx in named:
            legend.add_row(labels[ctx], ctx)
        console.print(Text("Contexts", style="italic"))
        console.print(legend)

    weights = {w["context"]: w["weights"] for w in report["weights"]}
    per_table = max(1, (console.width - 40) // 9)
    for start in range(0, len(contexts), per_table):
        chunk = contexts[start : start + per_table]
        title = "Weights per context (card_weights)" if start == 0 else None
        table = Table(title=title, title_justify="left")
        table.add_column("card", no_wrap=True, max_width=18, overflow="fold")
        table.add_column("title", no_wrap=True, max_width=20, overflow="ellipsis")
        for ctx in chunk:
            table.add_column(labels[ctx], justify="right")
        for card in report["cards"]:
            table.add_row(
                card["id"],
                Text(card["title"]),
                *(_fmt_weight(weights[ctx].get(card["id"])) for ctx in chunk),
            )
        console.print(table)
    if any(card["id"] not in weights[ctx] for ctx in contexts for card in report["cards"]):
        console.print(Text("—: the card does not apply in that context.", style="dim"))

    held = Table(title="Who holds what", title_justify="left")
    held.add_column("card", no_wrap=True, max_width=18, overflow="fold")
    held.add_column("support", justify="right")
    held.add_column("held by", ratio=1)
    for card in report["cards"]:
        people = report["holders"][card["id"]]
        held.add_row(
            card["id"],
            f"{report['support'][card['id']]:g}",
            ", ".join(people) if people else Text("nobody listed", style="dim"),
        )
    if not report["constituents"]:
        held.caption = "No constituents listed."
    console.print(held)

    mandate = report["mandate"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    lines = [" and ".join(f"{i}={o}" for i, o in line.items()) for line in mandate["red_lines"]]
    grid.add_row("red lines", "; ".join(lines) if lines else "none")
    grid.add_row("reservation", f"{mandate['reservation']:+.2f}")
    rules = []
    for rule in mandate["ratification"]:
        parts = [" and ".join(f"{i}={o}" for i, o in line.items()) for line in rule["outcomes"]]
        if rule.get("below") is not None:
            parts.append(f"utility below {rule['below']:+.2f}")
        text = " or ".join(parts) or "nothing"
        rules.append(f"{text} ({rule['reason']})" if rule.get("reason") else text)
    grid.add_row("ratification", Text("; ".join(rules) if rules else "none"))
    console.print(Text("Mandate", style="italic"))
    console.print(grid)

    if report["wiser_than"]:
        votes = Table(title="Wiser-than votes", title_justify="left")
        votes.add_column("ctx", no_wrap=True)
        votes.add_column("less wise → wiser", ratio=1)
        votes.add_column("up", justify="right")
        votes.add_column("no", justify="right")
        votes.add_column("?", justify="right")
        votes.add_column("voters", max_width=22)
        for t in report["wiser_than"]:
            voters = ", ".join(t["voters"])
            if t["unknown_voters"]:
                voters = ", ".join(filter(None, [voters, f"{t['unknown_voters']} unknown"]))
            votes.add_row(
                Text(labels.get(t["context"], t["context"])),
                f"{t['less_wise']} → {t['wiser']}",
                str(t["upgrade"]),
                str(t["no_upgrade"]),
                str(t["not_sure"]),
                voters,
            )
        votes.caption = "up = upgrade, no = no_upgrade, ? = not_sure"
        console.print(votes)
    else:
        console.print(Text("No wiser-than votes.", style="dim"))
    console.print()


def _print_graph(report: dict[str, Any], top: int) -> None:
    console.print(
        f"[bold]Moral graph[/] {escape(report['file'])}: {len(report['values'])} values, "
        f"{report['edges']} edges, {len(report['contexts'])} contexts",
        highlight=False,
    )
    opts = report["options"]
    method = "per context (option (a))" if opts["per_context"] else "all contexts pooled"
    console.print(f"Weights by MAI's method (rank_values): {method}.", highlight=False)
    if not report["rankings"]:
        console.print("No edge passes MAI's thresholds: no value is ranked.")
    for ranking in report["rankings"]:
        shown = len(ranking["top"])
        console.print(
            Text(ranking["label"], style="bold").append(
                f": top {shown} of {_n(ranking['ranked_values'], 'ranked value')} "
                f"({_n(ranking['kept_edges'], 'kept edge')})",
                style="default",
            )
        )
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("id", justify="right")
        table.add_column("title", ratio=1)
        table.add_column("weight", justify="right")
        for row in ranking["top"]:
            table.add_row(
                str(row["rank"]), str(row["id"]), Text(row["title"]), f"{row['weight']:.4f}"
            )
        console.print(table)
    ranked = max((r["ranked_values"] for r in report["rankings"]), default=0)
    unranked = len(report["values"]) - ranked
    if unranked > 0 and not opts["per_context"]:
        console.print(
            f"{_n(unranked, 'value')} on no kept edge, not ranked.", style="dim", highlight=False
        )


@values_app.command()
def show(
    file: FileArg,
    constituency: Annotated[
        str | None, typer.Option("--constituency", "-c", help="Only this constituency.")
    ] = None,
    per_context: Annotated[
        bool,
        typer.Option(
            "--per-context", help="Moral graph: rank each context on its own (option (a))."
        ),
    ] = False,
    top: Annotated[
        int, typer.Option("--top", min=0, help="Moral graph: how many values to list (0: all).")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Cards, weights per context, holders, mandate, wiser-than votes; or a graph's ranking."""
    source = _load(file)
    if source.kind == "moral-graph":
        _pick(source, constituency, one=False)
        report = graph_report(source, RankingOptions(per_context=per_context), top)
        if as_json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            _print_graph(report, top)
        return
    if per_context:
        _fail(f"{file}: --per-context applies to moral graphs; a {source.kind} file is shown "
              "per context already")
    chosen = _pick(source, constituency, one=False)
    reports = [constituency_report(source.session, c) for c in chosen]
    if as_json:
        doc = {
            "kind": source.kind,
            "file": str(file),
            "session": source.session.id if source.session else None,
            "constituencies": reports,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    if source.session is not None:
        title = f" ({source.session.title})" if source.session.title else ""
        console.print(
            f"[bold]Session {source.session.id}[/]{escape(title)}: {escape(str(file))}",
            highlight=False,
        )
    for report in reports:
        _print_constituency(report, source.session)


# --- check -----------------------------------------------------------------------------------


@dataclass
class CardCheck:
    constituency: str | None
    card: str
    title: str
    policies: list[str]
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "constituency": self.constituency,
            "card": self.card,
            "title": self.title,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def _issue(issue: Any, policies: Sequence[str]) -> dict[str, Any]:
    index = issue.policy
    text = policies[index] if index is not None and index < len(policies) else None
    return {"code": issue.code, "message": issue.message, "policy": index, "policy_text": text}


def _duplicates(
    constituency: str | None,
    cards: Sequence[Any],
    constituents: Sequence[Any],
    checks: dict[str, CardCheck],
) -> list[dict[str, Any]]:
    """Groups of identical cards (canonicalise would collapse them), noted on each member."""
    found = []
    for group in canonicalise(cards, constituents).cards:
        if len(group.merged) < 2:
            continue
        found.append(
            {
                "constituency": constituency,
                "canonical": group.card.id,
                "merged": group.merged,
                "holders": group.holders,
                "support": group.support,
            }
        )
        held = f"; holders: {', '.join(group.holders)}" if group.holders else ""
        for card_id in group.merged:
            others = ", ".join(i for i in group.merged if i != card_id)
            checks[card_id].warnings.append(
                {
                    "code": "identical-card",
                    "message": f"same title and policies as {others}: canonicalise() would "
                    f"collapse them into {group.card.id}{held}",
                    "policy": None,
                    "policy_text": None,
                }
            )
    return found


def quality_report(source: Source) -> tuple[list[CardCheck], list[dict[str, Any]]]:
    """A check per card (or per value of a moral graph), and the groups of identical cards."""
    checks: list[CardCheck] = []
    duplicates: list[dict[str, Any]] = []
    if source.graph is not None:
        graph = source.graph
        by_card: dict[str, CardCheck] = {}
        for value, report in zip(graph.values, check_moral_graph(graph), strict=True):
            policies = list(value.evaluation_criteria)
            check = CardCheck(
                None,
                report.card_id,
                value.title,
                policies,
                [_issue(i, policies) for i in report.errors],
                [_issue(i, policies) for i in report.warnings],
            )
            checks.append(check)
            by_card[check.card] = check
        cards, _ = graph.to_cards()
        duplicates += _duplicates(None, cards, (), by_card)
        return checks, duplicates
    for c in source.constituencies:
        by_card = {}
        for card in c.cards:
            report = check_card(card)
            policies = list(card.policies)
            check = CardCheck(
                c.id,
                card.id,
                card.title,
                policies,
                [_issue(i, policies) for i in report.errors],
                [_issue(i, policies) for i in report.warnings],
            )
            checks.append(check)
            by_card[card.id] = check
        duplicates += _duplicates(c.id, c.cards, c.constituents, by_card)
    return checks, duplicates


def _summary(checks: Sequence[CardCheck]) -> tuple[int, int, int]:
    return (
        len(checks),
        sum(1 for c in checks if c.errors),
        sum(1 for c in checks if c.warnings),
    )


def _print_checks(source: Source, checks: Sequence[CardCheck]) -> None:
    groups: dict[str | None, list[CardCheck]] = {}
    for check in checks:
        groups.setdefault(check.constituency, []).append(check)
    for constituency, members in groups.items():
        flagged = [c for c in members if c.errors or c.warnings]
        name = f"Constituency {constituency}" if constituency else f"Moral graph {source.path.name}"
        if not flagged:
            console.print(
                f"[green]✓[/] {escape(name)}: {_n(len(members), 'card')}, no findings",
                highlight=False,
            )
            continue
        table = Table(
            title=Text(f"{name}: {len(flagged)} of {_n(len(members), 'card')} with findings"),
            title_justify="left",
        )
        table.add_column("card", max_width=18, overflow="fold")
        table.add_column("policy", ratio=3)
        table.add_column("findings", ratio=2)
        for check in flagged:
            table.add_section()
            by_policy: dict[int | None, list[Text]] = {}
            for level, style, issues in (
                ("error", "bold red", check.errors),
                ("warning", "yellow", check.warnings),
            ):
                for issue in issues:
                    line = Text(f"{level}: ", style=style).append(issue["message"], style="default")
                    by_policy.setdefault(issue["policy"], []).append(line)
            first = True
            for index in sorted(by_policy, key=lambda i: -1 if i is None else i):
                label = Text("")
                if first:
                    label = Text(check.card, style="bold").append(f"\n{check.title}", style="dim")
                    first = False
                if index is None:
                    policy = Text("(whole card)", style="dim")
                else:
                    text = check.policies[index] if index < len(check.policies) else ""
                    policy = Text(f"policies[{index}]: ", style="dim").append(text, style="default")
                table.add_row(label, policy, Text("\n").join(by_policy[index]))
        console.print(table)


@values_app.command()
def check(
    file: FileArg,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Card quality after MAI's rubric; exit 1 if any card has errors (or warnings, --strict)."""
    source = _load(file)
    checks, duplicates = quality_report(source)
    n, with_errors, with_warnings = _summary(checks)
    failed = with_errors > 0 or (strict and with_warnings > 0)
    if as_json:
        doc = {
            "kind": source.kind,
            "file": str(file),
            "cards": [c.as_json() for c in checks],
            "identical_cards": duplicates,
            "summary": {"cards": n, "with_errors": with_errors, "with_warnings": with_warnings},
            "strict": strict,
            "ok": not failed,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_checks(source, checks)
        style = "bold red" if failed else ("yellow" if with_warnings else "green")
        summary = f"{_n(n, 'card')}, {with_errors} with errors, {with_warnings} with warnings"
        console.print(Text(summary, style=style))
        if duplicates:
            console.print(
                f"{_n(len(duplicates), 'group')} of identical cards that canonicalise() would "
                "collapse (listed as 'identical-card' warnings).",
                highlight=False,
            )
    if failed:
        raise typer.Exit(1)


# --- graph -----------------------------------------------------------------------------------


@dataclass
class DrawNode:
    key: str
    title: str
    weight: float


@dataclass
class DrawEdge:
    less_wise: str
    wiser: str
    width: float
    kept: bool
    label: str = ""


@dataclass
class Drawing:
    title: str
    nodes: list[DrawNode]
    edges: list[DrawEdge]
    note: str


def _graph_drawing(source: Source, context: str | None) -> Drawing:
    graph = source.graph
    assert graph is not None
    if context is not None:
        known = graph.contexts()
        if context not in known:
            _fail(f"{source.path}: no edge in context {context!r}; its contexts: "
                  + "; ".join(known))
        edges = [e for e in graph.edges if context in e.contexts]
        ranking = rank_values(graph, RankingOptions(per_context=True)).get(context)
        on_edges = {v for e in edges for v in (e.source_value_id, e.wiser_value_id)}
        values = [v for v in graph.values if v.id in on_edges]
    else:
        edges = list(graph.edges)
        ranking = rank_values(graph).get(None)
        values = list(graph.values)
    weights = ranking.weights if ranking is not None else {}
    nodes = [DrawNode(str(v.id), v.title, weights.get(v.id, 0.0)) for v in values]
    label_edges = len(edges) <= 25
    drawn = [
        DrawEdge(
            str(e.source_value_id),
            str(e.wiser_value_id),
            max(wiser_likelihood(e.counts), 0.0),
            keeps_edge(e.counts),
            f"{wiser_likelihood(e.counts):.2f}" if label_edges else "",
        )
        for e in edges
    ]
    return Drawing(
        title=f"Moral graph {source.path.name} — {context or ALL_CONTEXTS}",
        nodes=nodes,
        edges=drawn,
        note="Arrows point from the less wise value to the wiser one. Node size: weight "
        "(MAI's PageRank). Edge width: wiser likelihood; dashed: below MAI's thresholds.",
    )


def _resolve_context(source: Source, c: Constituency, context: str | None) -> str | None:
    if context is None:
        return None
    spec = source.session
    if spec is not None:
        for issue in spec.agenda:
            if issue.id == context:
                if issue.context is None:
                    return None
                return issue.context
    known = [x for x in constituency_contexts(spec, c) if x is not None]
    declared = [x.id for x in c.contexts] + [x.description for x in c.contexts]
    if context in known or context in declared:
        return context
    listed = "; ".join(known) or "none"
    _fail(f"{source.path}: constituency {c.id!r} has no context {context!r} "
          f"(an agenda issue id or one of: {listed})")
    return None


def _constituency_drawing(source: Source, c: Constituency, context: str | None) -> Drawing:
    weights = c.card_weights(context)
    cards = [card for card in c.cards if card.applies_in(context)]
    inside = {card.id for card in cards}
    votes = [
        v for v in c.wiser_than
        if (context is None or v.context == context) and v.less_wise in inside and v.wiser in inside
    ]
    pairs: dict[tuple[str, str], list[int]] = {}
    for vote in votes:
        counts = pairs.setdefault((vote.less_wise, vote.wiser), [0, 0, 0])
        counts[("upgrade", "no_upgrade", "not_sure").index(vote.vote)] += 1
    top = max((up for up, _, _ in pairs.values()), default=0)
    edges = []
    for (less_wise, wiser), (up, no, unsure) in pairs.items():
        parts = [f"{n} {word}" for n, word in ((up, "up"), (no, "no"), (unsure, "?")) if n]
        edges.append(
            DrawEdge(less_wise, wiser, up / top if top else 0.0, up > 0, ", ".join(parts))
        )
    name = c.name or c.id
    return Drawing(
        title=f"{name} — {context or ALL_CONTEXTS}",
        nodes=[DrawNode(card.id, card.title, weights.get(card.id, 0.0)) for card in cards],
        edges=edges,
        note="Arrows point from the less wise card to the wiser one. Node size: card weight "
        "(card_weights). Edge width: upgrade votes; dashed: no upgrade vote. "
        "Labels: up = upgrade, no = no_upgrade, ? = not_sure.",
    )


def _import_drawing_libraries() -> tuple[Any, Any, Any]:
    try:
        import matplotlib
        import networkx as nx

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")  # no display needed; networkx imports pyplot
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "a drawing library"
        _fail(f"drawing a graph needs networkx and matplotlib ({missing} is not installed): "
              f"{GRAPH_EXTRA_HINT}")
        raise
    return nx, Figure, FigureCanvasAgg


UNIT_INCHES = 1.25  # one unit of layout distance (one edge) on the page


def _plain(text: str) -> str:
    """Text for matplotlib, which would read a pair of '$' as mathematics."""
    return text.replace("$", r"\$")
MAX_INCHES = 34.0


def _rotate_wiser_up(pos: dict[str, Any], edges: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Turn a component's layout so that, on average, arrows point up (wiser above)."""
    dx = dy = 0.0
    for less_wise, wiser in edges:
        vx, vy = pos[wiser][0] - pos[less_wise][0], pos[wiser][1] - pos[less_wise][1]
        norm = math.hypot(vx, vy)
        if norm > 0:
            dx, dy = dx + vx / norm, dy + vy / norm
    if math.hypot(dx, dy) < 1e-9:
        return pos
    angle = math.pi / 2 - math.atan2(dy, dx)
    cos, sin = math.cos(angle), math.sin(angle)
    return {k: (x * cos - y * sin, x * sin + y * cos) for k, (x, y) in pos.items()}


def _stress_layout(
    nx: Any, sub: Any, nodes: list[str], seed: int
) -> dict[str, tuple[float, float]]:
    """Stress majorisation (SMACOF, weights 1/d^2) on shortest-path distances: nodes one
    edge apart sit one unit apart, which spreads sparse, tree-like moral graphs evenly."""
    import numpy as np

    n = len(nodes)
    index = {node: i for i, node in enumerate(nodes)}
    dist = np.ones((n, n))
    for source, lengths in nx.all_pairs_shortest_path_length(sub.to_undirected()):
        for target, d in lengths.items():
            dist[index[source], index[target]] = d
    np.fill_diagonal(dist, 0.0)
    weight = np.zeros((n, n))
    off = ~np.eye(n, dtype=bool)
    weight[off] = dist[off] ** -2.0
    laplacian = -weight
    np.fill_diagonal(laplacian, weight.sum(axis=1))
    pinv = np.linalg.pinv(laplacian)
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 2)) * math.sqrt(n)
    for _ in range(300):
        gaps = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
        b = np.zeros((n, n))
        mask = off & (gaps > 1e-12)
        b[mask] = -weight[mask] * dist[mask] / gaps[mask]
        np.fill_diagonal(b, -b.sum(axis=1))
        x = pinv @ (b @ x)
    return {node: (float(x[i, 0]), float(x[i, 1])) for node, i in index.items()}


def layout(nx: Any, g: Any, seed: int = 7) -> dict[str, tuple[float, float]]:
    """Positions in layout units (one edge ~ one unit): each connected component laid out
    on its own, turned so that wiser values sit above less wise ones, then the components
    packed in rows, largest first. Deterministic for a given graph."""
    components = sorted(
        (sorted(c) for c in nx.weakly_connected_components(g)), key=lambda c: (-len(c), c)
    )
    boxes: list[tuple[float, float, dict[str, tuple[float, float]]]] = []
    for nodes in components:
        sub = g.subgraph(nodes)
        if len(nodes) == 1:
            pos = {nodes[0]: (0.0, 0.0)}
        else:
            pos = _rotate_wiser_up(_stress_layout(nx, sub, nodes, seed), list(sub.edges))
        xs = [x for x, _ in pos.values()]
        ys = [y for _, y in pos.values()]
        width, height = max(xs) - min(xs) + 1.6, max(ys) - min(ys) + 1.2
        shifted = {k: (x - min(xs) + 0.8, y - max(ys) - 0.6) for k, (x, y) in pos.items()}
        boxes.append((width, height, shifted))
    row_width = max(
        max(w for w, _, _ in boxes), 1.5 * math.sqrt(sum(w * h for w, h, _ in boxes))
    )
    placed: dict[str, tuple[float, float]] = {}
    x = y = row_height = 0.0
    for width, height, pos in boxes:
        if x > 0 and x + width > row_width:
            x, y, row_height = 0.0, y - row_height, 0.0
        for k, (px, py) in pos.items():
            placed[k] = (x + px, y + py)
        x += width
        row_height = max(row_height, height)
    return placed


def render_drawing(drawing: Drawing, output: Path, fmt: str) -> None:
    """Lay the graph out with networkx (and numpy) and draw it with matplotlib's Agg
    canvas; the image is written whole or not at all."""
    nx, Figure, FigureCanvasAgg = _import_drawing_libraries()
    from matplotlib import colormaps

    g = nx.DiGraph()
    for node in drawing.nodes:
        g.add_node(node.key)
    for edge in drawing.edges:
        g.add_edge(edge.less_wise, edge.wiser)
    pos = layout(nx, g)
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    pad = 0.9
    span_x = max(xs) - min(xs) + 2 * pad
    span_y = max(ys) - min(ys) + 2 * pad
    unit = min(UNIT_INCHES, MAX_INCHES / max(span_x, span_y))
    chrome = 1.3  # inches for the title and the note
    fig = Figure(
        figsize=(max(span_x * unit, 6.0), span_y * unit + chrome),
        dpi=100 if fmt == "png" else 72,
    )
    FigureCanvasAgg(fig)
    height_in = fig.get_figheight()
    ax = fig.add_axes((0.0, 0.55 / height_in, 1.0, 1.0 - chrome / height_in))
    ax.set_axis_off()
    ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_aspect("equal", adjustable="box")

    heaviest = max((node.weight for node in drawing.nodes), default=0.0)
    nodelist = [node.key for node in drawing.nodes]
    rel = [node.weight / heaviest if heaviest > 0 else 0.0 for node in drawing.nodes]
    points = unit * 72.0  # one layout unit in points
    sizes = [(0.2 + 0.4 * math.sqrt(r)) ** 2 * points**2 for r in rel]  # area ~ weight
    cmap = colormaps["YlGnBu"]
    colours = [cmap(0.15 + 0.6 * r) if r > 0 else "#dddddd" for r in rel]
    nx.draw_networkx_nodes(
        g, pos, nodelist=nodelist, node_size=sizes, node_color=colours,
        edgecolors="#445566", linewidths=0.8, ax=ax,
    )
    for kept in (True, False):
        chosen = [e for e in drawing.edges if e.kept is kept]
        if not chosen:
            continue
        nx.draw_networkx_edges(
            g, pos,
            edgelist=[(e.less_wise, e.wiser) for e in chosen],
            width=[1.0 + 4.0 * e.width for e in chosen] if kept else 1.0,
            edge_color="#34495e" if kept else "#8a8a8a",
            style="solid" if kept else "dashed",
            alpha=0.8,
            arrows=True, arrowstyle="-|>", arrowsize=16,
            nodelist=nodelist, node_size=sizes,
            connectionstyle="arc3,rad=0.1", ax=ax,
        )
    edge_labels = {(e.less_wise, e.wiser): _plain(e.label) for e in drawing.edges if e.label}
    if edge_labels:
        nx.draw_networkx_edge_labels(
            g, pos, edge_labels=edge_labels, font_size=8, font_color="#333333",
            connectionstyle="arc3,rad=0.1", rotate=False,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            ax=ax,
        )
    labels = {}
    for node in drawing.nodes:
        text = textwrap.fill(_plain(node.title), width=18)
        if node.weight > 0:
            text += f"\n{node.weight:.3f}"
        labels[node.key] = text
    nx.draw_networkx_labels(
        g, pos, labels=labels, font_size=8 if len(drawing.nodes) > 16 else 9,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.75},
        ax=ax,
    )
    fig.suptitle(
        textwrap.fill(_plain(drawing.title), int(fig.get_figwidth() * 9)),
        fontsize=13, y=1.0 - 0.25 / height_in, va="top",
    )
    fig.text(
        0.5, 0.2 / height_in, textwrap.fill(drawing.note, int(fig.get_figwidth() * 15)),
        ha="center", va="bottom", fontsize=8, color="#444444",
    )

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    try:
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(tmp, format=fmt, metadata=metadata, facecolor="white")
        _publish(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _publish(tmp: str, target: Path) -> None:
    """Give a finished temp file the usual permissions (mkstemp makes it 0600) and move it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)


@values_app.command()
def graph(
    file: FileArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Image to write: .png or .svg.", dir_okay=False)
    ],
    constituency: OneConstituencyOpt = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context", help="Only this context (for a session, an agenda issue id works too)."
        ),
    ] = None,
) -> None:
    """Draw the moral graph: values sized by weight, arrows from less wise to wiser.

    Needs networkx and matplotlib: install the 'graph' extra of accord.
    """
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        _fail(f"{output}: the image format follows the suffix, which must be .png or .svg "
              f"(not {output.suffix or 'none'})")
    _import_drawing_libraries()
    source = _load(file)
    if source.kind == "moral-graph":
        _pick(source, constituency, one=True)
        drawing = _graph_drawing(source, context)
    else:
        [chosen] = _pick(source, constituency, one=True)
        drawing = _constituency_drawing(source, chosen, _resolve_context(source, chosen, context))
    if not drawing.nodes:
        _fail(f"{file}: nothing to draw in {context or ALL_CONTEXTS}")
    render_drawing(drawing, output, fmt)
    console.print(Text(
        f"Wrote {output}: {_n(len(drawing.nodes), 'node')}, {_n(len(drawing.edges), 'edge')}."
    ))


# --- import-graph / export-graph -------------------------------------------------------------


@dataclass
class GraphImport:
    """A constituency made from an MAI moral graph, and what was left out or assumed."""

    constituency: Constituency
    rejected: list[tuple[int, str, str]]  # value id, title, reason
    skipped_edges: int
    split_edges: int  # edges listing several contexts, their votes split between them
    reverse_upgrades: int
    reverse_unknown: int


def _context_id(text: str, used: set[str]) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
    base = "-".join(part for part in base.split("-") if part)[:56] or "context"
    candidate, n = base, 2
    while candidate in used:
        candidate = f"{base}-{n}"
        n += 1
    used.add(candidate)
    return candidate


def _split(count: int, parts: int) -> list[int]:
    return [count // parts + (1 if i < count % parts else 0) for i in range(parts)]


def constituency_from_graph(
    graph: MoralGraph, constituency_id: str, name: str = "", *, origin: str = "a moral graph"
) -> GraphImport:
    """Cards from `to_cards()`, and one WiserThanVote per vote counted on each edge.

    An MAI export keeps only counts, so every vote has `by: None` and there are no
    constituents. Per edge A -> B: `markedWiser`, `markedNotWiser`, `markedUnsure` become
    that many upgrade / no_upgrade / not_sure votes on A -> B; when the export has no
    B -> A edge, `markedLessWise` becomes that many upgrade votes on B -> A, and the
    impressions left over (answers on B -> A that were not upgrades, which the export does
    not tell apart) become not_sure votes on B -> A, so that assembling the votes again
    gives the same five counts. An edge's counts are pooled over its contexts; for an
    edge listing several, the votes are split as evenly as possible between them.
    Edges touching a value that cannot become a card are left out.
    """
    cards, rejected_ids = graph.to_cards()
    converted = {card.id for card in cards}
    pairs = {(e.source_value_id, e.wiser_value_id) for e in graph.edges}
    votes: list[WiserThanVote] = []
    skipped = split = reverse_up = reverse_unknown = 0
    for edge, tally in zip(graph.edges, graph.to_tallies(), strict=True):
        if tally.less_wise not in converted or tally.wiser not in converted:
            skipped += 1
            continue
        contexts = list(dict.fromkeys(tally.contexts)) or [UNKNOWN_CONTEXT]
        if len(contexts) > 1:
            split += 1
        batches = [
            (tally.less_wise, tally.wiser, "upgrade", tally.upgrade),
            (tally.less_wise, tally.wiser, "no_upgrade", tally.no_upgrade),
            (tally.less_wise, tally.wiser, "not_sure", tally.not_sure),
        ]
        if (edge.wiser_value_id, edge.source_value_id) not in pairs:
            unknown = tally.impressions - (
                tally.upgrade + tally.no_upgrade + tally.not_sure + tally.reverse_upgrade
            )
            batches += [
                (tally.wiser, tally.less_wise, "upgrade", tally.reverse_upgrade),
                (tally.wiser, tally.less_wise, "not_sure", max(unknown, 0)),
            ]
            reverse_up += tally.reverse_upgrade
            reverse_unknown += max(unknown, 0)
        for less_wise, wiser, kind, count in batches:
            for ctx, n in zip(contexts, _split(count, len(contexts)), strict=True):
                votes.extend(
                    WiserThanVote(context=ctx, less_wise=less_wise, wiser=wiser, vote=kind)
                    for _ in range(n)
                )
    used: set[str] = set()
    contexts_seen = list(dict.fromkeys(v.context for v in votes))
    declared = [Context(id=_context_id(ctx, used), description=ctx) for ctx in contexts_seen]
    description = (
        f"Imported from {origin}: {len(cards)} of {len(graph.values)} values as cards; "
        f"{len(votes)} wiser-than votes expanded from the edge counts (individual voters are "
        "unknown in an MAI export)."
    )
    constituency = Constituency(
        id=constituency_id,
        name=name,
        description=description,
        contexts=declared,
        cards=cards,
        constituents=[],
        wiser_than=votes,
    )
    rejected = [(vid, graph.value(vid).title, reason) for vid, reason in rejected_ids]
    return GraphImport(constituency, rejected, skipped, split, reverse_up, reverse_unknown)


class _Flow(dict):  # type: ignore[type-arg]
    """A mapping written on one line: `- {context: ..., less_wise: ..., ...}`."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Flow,
    lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=True
    ),
)


def constituency_yaml(result: GraphImport, origin: str) -> str:
    c = result.constituency
    doc: dict[str, Any] = {"id": c.id}
    if c.name:
        doc["name"] = c.name
    doc["description"] = c.description
    doc["contexts"] = [x.model_dump(mode="json") for x in c.contexts]
    doc["cards"] = [card.model_dump(mode="json", exclude_defaults=True) for card in c.cards]
    doc["constituents"] = []
    doc["wiser_than"] = [_Flow(v.model_dump(mode="json", exclude_none=True)) for v in c.wiser_than]
    left_out = "; ".join(f"{vid} {title!r} ({reason})" for vid, title, reason in result.rejected)
    paragraphs = [
        f"Constituency {c.id!r}, made by `accord values import-graph` from the MAI moral graph "
        f"{origin}.",
        f"Cards: {len(c.cards)} values, as cards mg-<value id> (title; instructionsShort as the "
        "description; evaluationCriteria as the attentional policies). Left out: "
        + (left_out or "nothing")
        + (f"; with them, {_n(result.skipped_edges, 'edge')}." if result.skipped_edges else "."),
        "Wiser-than votes are expanded from each edge's counts: markedWiser, markedNotWiser and "
        "markedUnsure become that many upgrade, no_upgrade and not_sure votes. Individual voters "
        "are unknown in an MAI export, so no vote has `by:` and there are no constituents: add "
        "them (with the cards they hold) to weigh cards by support.",
        f"Reverse votes: markedLessWise became {_n(result.reverse_upgrades, 'upgrade vote')} for "
        f"the reverse pair, and {_n(result.reverse_unknown, 'impression')} of the reverse pair "
        "whose answer the export does not record (no_upgrade or not_sure) became not_sure votes, "
        "so that `accord values export-graph` gives back the same five counts per edge.",
        f"Counts are pooled over an edge's contexts: {_n(result.split_edges, 'edge')} "
        f"list{'s' if result.split_edges == 1 else ''} several contexts, and "
        "their votes are split as evenly as possible between them.",
    ]
    header = []
    for paragraph in paragraphs:
        if header:
            header.append("")
        header += textwrap.wrap(paragraph, width=90, break_on_hyphens=False)
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "".join(f"# {line}\n" if line else "#\n" for line in header) + body


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@values_app.command("import-graph")
def import_graph(
    file: Annotated[Path, typer.Argument(help="A moral graph in MAI's export shape (JSON).")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Constituency file to write (YAML).", dir_okay=False),
    ],
    constituency_id: Annotated[str, typer.Option("--id", help="The constituency's id.")],
    name: Annotated[str, typer.Option("--name", help="The constituency's display name.")] = "",
) -> None:
    """An Accord constituency from an MAI moral graph: its values as cards, its counts as votes."""
    try:
        TypeAdapter(Id).validate_python(constituency_id)
    except ValidationError:
        _fail(f"--id {constituency_id!r}: an id is 1 to 64 letters, digits, '.', '_' or '-', "
              "starting with a letter or digit")
    source = _load(file)
    if source.graph is None:
        _fail(f"{file}: is a {source.kind} file, not a moral graph ({{\"values\", \"edges\"}})")
    assert source.graph is not None
    try:
        result = constituency_from_graph(
            source.graph, constituency_id, name, origin=f"{file.name}"
        )
    except (ValidationError, ValueError) as exc:
        _fail(f"{file}: cannot make a constituency: {exc}")
        raise
    if result.rejected:
        listed = "".join(
            f"\n  - value {vid} {title!r}: {reason}" for vid, title, reason in result.rejected
        )
        edges = (
            f", and with them {_n(result.skipped_edges, 'edge')}" if result.skipped_edges else ""
        )
        _warn(
            f"{_n(len(result.rejected), 'value')} of {file} cannot become cards and "
            f"{'was' if len(result.rejected) == 1 else 'were'} left out{edges}:{listed}"
        )
    _write_atomic(output, constituency_yaml(result, str(file)))
    c = result.constituency
    console.print(Text(
        f"Wrote {output}: constituency {c.id!r} with {_n(len(c.cards), 'card')}, "
        f"{_n(len(c.wiser_than), 'wiser-than vote')} (voters unknown), "
        f"{_n(len(c.contexts), 'context')}."
    ))


@values_app.command("export-graph")
def export_graph(
    file: Annotated[Path, typer.Argument(help="Session file or constituency file.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Moral graph to write (JSON).", dir_okay=False)
    ],
    constituency: OneConstituencyOpt = None,
    context: Annotated[
        str | None, typer.Option("--context", help="Count only this context's votes.")
    ] = None,
) -> None:
    """A constituency's cards and wiser-than votes as a moral graph in MAI's shape."""
    source = _load(file)
    if source.kind == "moral-graph":
        _fail(f"{file}: is a moral graph already; export-graph reads a session or a "
              "constituency file")
    [chosen] = _pick(source, constituency, one=True)
    ctx = _resolve_context(source, chosen, context)
    try:
        graph = assemble_moral_graph(chosen.cards, chosen.wiser_than, context=ctx)
    except MoralGraphError as exc:
        _fail(f"{file}: constituency {chosen.id!r}: {exc}")
        raise
    output.parent.mkdir(parents=True, exist_ok=True)
    dump_moral_graph(graph, output)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(output, 0o666 & ~umask)  # dump_moral_graph's temp file is created 0600
    console.print(Text(
        f"Wrote {output}: {_n(len(graph.values), 'value')}, {_n(len(graph.edges), 'edge')} from "
        f"constituency {chosen.id!r} ({ctx or ALL_CONTEXTS})."
    ))
