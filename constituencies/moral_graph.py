"""Moral graphs in the Meaning Alignment Institute's export shape, and Accord's view of them.

A moral graph file is `{"values": [...], "edges": [...]}` as MAI's `summarizeGraph`
writes it (see `shared/data/moral-graph/SOURCE.md` and `constituencies.wisdom`). Reading
one gives a `MoralGraph` whose fields keep MAI's names on the wire (camelCase) and any
extra fields, so writing it back gives the same JSON. From it Accord takes values cards
(`to_cards`) and wiser-than tallies (`to_tallies`); and `assemble_moral_graph` builds
the same shape from a constituency's own cards and votes, so that one set of statistics
runs on both.

File reading happens only in `load_moral_graph` / `dump_moral_graph`, on a path the
caller gives: the module stays free of network and database.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from constituencies.cards import ValuesCard
from constituencies.constituency import WiserThanVote
from constituencies.ids import Id
from constituencies.wisdom import (
    EdgeSummary,
    RankingOptions,
    VoteCounts,
    rank_values,
    summarize,
)

ValueId = Annotated[int, Strict()]

_WIRE = ConfigDict(extra="allow", frozen=True, alias_generator=to_camel, populate_by_name=True)

CARD_ID_PREFIX = "mg-"
MIN_POLICIES, MAX_POLICIES = 3, 7  # what `ValuesCard` accepts


class MoralGraphError(ValueError):
    """A moral graph that cannot be read or built; the message names file, entry and field."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = list(problems)


class MoralGraphValue(BaseModel):
    """A value (MAI's canonical values card). Unknown fields are kept."""

    model_config = _WIRE

    id: ValueId
    title: str
    instructions_short: str
    instructions_detailed: str
    evaluation_criteria: list[str] = Field(description="Its attentional policies.")
    created_at: str | None = None
    updated_at: str | None = None
    card_id: Id | None = Field(
        default=None,
        description="Accord extension: the card this value was assembled from.",
    )


class MoralGraphEdge(BaseModel):
    """Votes on 'wiserValueId is wiser than sourceValueId', pooled over its contexts."""

    model_config = _WIRE

    source_value_id: ValueId
    wiser_value_id: ValueId
    contexts: list[str]
    counts: VoteCounts
    summary: EdgeSummary


class WiserThanTally(BaseModel):
    """An edge's counts in the vocabulary of `WiserThanVote` (upgrade | no_upgrade | not_sure)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contexts: list[str]
    less_wise: Id
    wiser: Id
    upgrade: int = Field(ge=0, description="MAI's markedWiser")
    no_upgrade: int = Field(ge=0, description="MAI's markedNotWiser")
    not_sure: int = Field(ge=0, description="MAI's markedUnsure")
    reverse_upgrade: int = Field(
        ge=0, description="upgrade votes for less_wise over wiser: MAI's markedLessWise"
    )
    impressions: int = Field(ge=0, description="votes in either direction")


class MoralGraph(BaseModel):
    """Values and wiser-than edges; every edge names two distinct known values."""

    model_config = _WIRE

    values: list[MoralGraphValue]
    edges: list[MoralGraphEdge]

    _by_id: dict[int, MoralGraphValue] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> MoralGraph:
        by_id: dict[int, MoralGraphValue] = {}
        for i, value in enumerate(self.values):
            if value.id in by_id:
                raise ValueError(f"values[{i}].id: duplicate value id {value.id}")
            by_id[value.id] = value
        seen: dict[tuple[int, int], int] = {}
        for i, edge in enumerate(self.edges):
            for field, ref in (
                ("sourceValueId", edge.source_value_id),
                ("wiserValueId", edge.wiser_value_id),
            ):
                if ref not in by_id:
                    raise ValueError(f"edges[{i}].{field}: unknown value id {ref}")
            pair = (edge.source_value_id, edge.wiser_value_id)
            if pair[0] == pair[1]:
                raise ValueError(f"edges[{i}]: an edge links value {pair[0]} to itself")
            if pair in seen:
                raise ValueError(
                    f"edges[{i}]: duplicate edge {pair[0]} -> {pair[1]} (see edges[{seen[pair]}])"
                )
            seen[pair] = i
        self._by_id = by_id
        return self

    def value(self, value_id: int) -> MoralGraphValue:
        try:
            return self._by_id[value_id]
        except KeyError:
            raise KeyError(f"the moral graph has no value {value_id}") from None

    def card_id(self, value_id: int) -> str:
        """The Accord card id of a value: the card it came from, else 'mg-<id>'."""
        value = self.value(value_id)
        return value.card_id or f"{CARD_ID_PREFIX}{value.id}"

    def contexts(self) -> list[str]:
        return sorted({c for edge in self.edges for c in edge.contexts})

    def to_cards(self) -> tuple[list[ValuesCard], list[tuple[int, str]]]:
        """Values that make valid Accord cards, and (value id, reason) for the rest.

        MAI's values may have any number of policies; an Accord card needs 3 to 7, so
        some values cannot become cards. `constituencies.quality` still checks them all.
        """
        cards: list[ValuesCard] = []
        rejected: list[tuple[int, str]] = []
        for value in self.values:
            n = len(value.evaluation_criteria)
            if not MIN_POLICIES <= n <= MAX_POLICIES:
                rejected.append(
                    (
                        value.id,
                        f"has {n} attentional policies; a card needs "
                        f"{MIN_POLICIES} to {MAX_POLICIES}",
                    )
                )
                continue
            description = (
                value.instructions_short.strip()
                or value.instructions_detailed.strip()
                or value.title
            )
            try:
                cards.append(
                    ValuesCard(
                        id=self.card_id(value.id),
                        title=value.title,
                        description=description,
                        policies=value.evaluation_criteria,
                    )
                )
            except ValidationError as exc:
                rejected.append((value.id, _first_reason(exc)))
        return cards, rejected

    def to_tallies(self) -> list[WiserThanTally]:
        """Each edge's counts as wiser-than tallies between Accord card ids."""
        return [
            WiserThanTally(
                contexts=list(edge.contexts),
                less_wise=self.card_id(edge.source_value_id),
                wiser=self.card_id(edge.wiser_value_id),
                upgrade=edge.counts.marked_wiser,
                no_upgrade=edge.counts.marked_not_wiser,
                not_sure=edge.counts.marked_unsure,
                reverse_upgrade=edge.counts.marked_less_wise,
                impressions=edge.counts.impressions,
            )
            for edge in self.edges
        ]


def load_moral_graph(path: str | os.PathLike[str]) -> MoralGraph:
    """Read a moral graph file; any problem raises `MoralGraphError` naming entry and field."""
    where = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MoralGraphError(f"{where}: cannot read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MoralGraphError(
            f"{where}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from exc
    try:
        return MoralGraph.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        lines = [f"{loc}: {msg}" if loc else msg for loc, msg in problems]
        raise MoralGraphError(f"{where}: " + "; ".join(lines), problems) from exc


def moral_graph_json(graph: MoralGraph) -> str:
    """MAI's JSON text for a graph: 2-space indent, whole floats written as integers
    (as JavaScript writes them), so the file read from MAI comes back byte for byte."""
    data = graph.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json.dumps(_js_numbers(data), indent=2, ensure_ascii=False)


def dump_moral_graph(graph: MoralGraph, path: str | os.PathLike[str]) -> None:
    """Write a graph in MAI's shape, atomically: a failed write leaves no half file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(moral_graph_json(graph))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def assemble_moral_graph(
    cards: Sequence[ValuesCard],
    votes: Iterable[WiserThanVote],
    *,
    context: str | None = None,
) -> MoralGraph:
    """A constituency's cards and individual votes, counted the way MAI counts them.

    Values get ids 1..N in card-id order and remember their card (`cardId`). Every
    ordered pair that any vote touches becomes an edge, unfiltered: the thresholds are
    applied when ranking. With `context`, only that context's votes count, which gives
    exact per-context counts. Each vote counts once: constituent weights do not apply,
    as in MAI.
    """
    ordered = sorted(cards, key=lambda c: c.id)
    value_of: dict[str, int] = {}
    for card in ordered:
        if card.id in value_of:
            raise MoralGraphError(f"cards: duplicate card id {card.id!r}")
        value_of[card.id] = len(value_of) + 1

    tallies: dict[tuple[int, int], dict[str, int]] = {}
    contexts: dict[tuple[int, int], set[str]] = {}

    def tally(a: int, b: int) -> dict[str, int]:
        return tallies.setdefault(
            (a, b),
            {"wiser": 0, "not_wiser": 0, "less_wise": 0, "unsure": 0, "impressions": 0},
        )

    for i, vote in enumerate(votes):
        for field, ref in (("less_wise", vote.less_wise), ("wiser", vote.wiser)):
            if ref not in value_of:
                raise MoralGraphError(f"votes[{i}].{field}: unknown card {ref!r}")
        if vote.less_wise == vote.wiser:
            raise MoralGraphError(f"votes[{i}]: a card cannot be wiser than itself")
        if context is not None and vote.context != context:
            continue
        a, b = value_of[vote.less_wise], value_of[vote.wiser]
        forward, backward = tally(a, b), tally(b, a)
        forward["impressions"] += 1
        backward["impressions"] += 1
        if vote.vote == "upgrade":
            forward["wiser"] += 1
            backward["less_wise"] += 1
        elif vote.vote == "no_upgrade":
            forward["not_wiser"] += 1
        else:
            forward["unsure"] += 1
        contexts.setdefault((a, b), set()).add(vote.context)
        contexts.setdefault((b, a), set()).add(vote.context)

    values = [
        MoralGraphValue(
            id=value_of[card.id],
            title=card.title,
            instructions_short=card.description,
            instructions_detailed=card.description,
            evaluation_criteria=list(card.policies),
            card_id=card.id,
        )
        for card in ordered
    ]
    edges = []
    for (a, b), t in sorted(tallies.items()):
        counts = VoteCounts(
            marked_wiser=t["wiser"],
            marked_not_wiser=t["not_wiser"],
            marked_less_wise=t["less_wise"],
            marked_unsure=t["unsure"],
            impressions=t["impressions"],
        )
        edges.append(
            MoralGraphEdge(
                source_value_id=a,
                wiser_value_id=b,
                contexts=sorted(contexts[(a, b)]),
                counts=counts,
                summary=summarize(counts),
            )
        )
    return MoralGraph(values=values, edges=edges)


def wisdom_weights(
    cards: Sequence[ValuesCard],
    votes: Iterable[WiserThanVote],
    options: RankingOptions | None = None,
    *,
    personalization: Mapping[str, float] | None = None,
) -> dict[str | None, dict[str, float]]:
    """A constituency's own cards and votes -> weights by card id (each map sums to 1).

    Pooled, the key is None. Per context (option (a)) each context's graph is assembled
    from that context's votes alone, so its counts are exact rather than pooled; a MAI
    export cannot do this because it has lost which vote came from which context.
    `personalization` is the teleport mass by card id (e.g. `Constituency.support()`);
    `options.personalization`, keyed by the graph's internal value ids, must stay unset.
    Cards on no kept edge get no weight, as in MAI.
    """
    opts = options or RankingOptions()
    if opts.personalization is not None:
        raise ValueError("give the personalization by card id, not in options")
    vote_list = list(votes)
    if opts.per_context:
        graphs = {
            c: assemble_moral_graph(cards, vote_list, context=c)
            for c in sorted({v.context for v in vote_list})
        }
    else:
        graphs = {None: assemble_moral_graph(cards, vote_list)}
    result: dict[str | None, dict[str, float]] = {}
    for context, graph in graphs.items():
        by_value = None
        if personalization is not None:
            by_value = {
                v.id: personalization.get(graph.card_id(v.id), 0.0) for v in graph.values
            }
        pooled = RankingOptions(
            **{**opts.model_dump(), "per_context": False, "personalization": by_value}
        )
        ranking = rank_values(graph, pooled).get(None)
        if ranking is not None:
            result[context] = {graph.card_id(v): w for v, w in ranking.weights.items()}
    return result


def _problem(err: Any) -> tuple[str, str]:
    """(location like 'edges[12].counts.markedWiser', reason) from a pydantic error."""
    loc = ""
    for part in err["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        message = str(err["ctx"]["error"])
    else:
        message = err["msg"]
    if err["type"] == "missing":
        message = "required field is missing"
    return loc, message


def _first_reason(exc: ValidationError) -> str:
    loc, message = _problem(exc.errors()[0])
    return f"{loc}: {message}" if loc else message


def _js_numbers(data: Any) -> Any:
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, dict):
        return {k: _js_numbers(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_js_numbers(v) for v in data]
    return data
