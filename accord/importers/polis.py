"""A Polis open-data conversation export -> an Accord session.

Files read (an export folder as in github.com/compdemocracy/openData):
- `comments.csv`: `comment-id`, `moderated` (1 in, 0 unmoderated, -1 out), `comment-body`;
- `participants-votes.csv`: one row per participant, `participant`, `group-id` (the
  opinion group Polis assigned; empty: none), then one column per comment id with the
  participant's vote (1 agree, -1 disagree, 0 pass, empty not seen);
- `votes.csv`: every vote with its time; used only for a moderated-in statement that has
  no column in participants-votes.csv (its latest vote per participant counts);
- `summary.csv` (topic, description) and `comment-groups.csv` where present.

The session:
- agenda: ONE issue `statement`; its options are the moderated-in statements
  (`moderated == 1`; unmoderated and moderated-out ones are left out), id `s<comment-id>`,
  description the statement text. `max_statements=N` keeps the N statements with the most
  votes (agree + disagree + pass, by every participant, grouped or not; ties to the lower
  comment id), listed in comment-id order;
- one constituency `group-<g>` per opinion group, with its delegate (strategy `boulware`
  unless told otherwise); participants without a group are left out (counted in
  `PolisImport.ungrouped`);
- its participants are pseudonymous constituents `p<participant id>`, all holding ONE thin
  card `group-<g>-votes` ("What group G's votes say", `source: preference-derived`: votes
  are a preference signal, not values elicited in MAI's sense);
- assessments, per (statement, group card): the group's mean vote on the statement (agree
  1, disagree -1, pass 0; participants who did not see it are left out; no votes at all ->
  no assessment, i.e. score 0), `by: constituents`, rationale "a agree, d disagree, p pass
  of the group's N participants";
- protocol `voting` with `rule: schulze` (protocols/voting.py; its ballot weights default to
  the constituencies' sizes).

Group-informed consensus (GIC), as Polis computes it (compdemocracy/polis,
math/src/polismath/math/conversation.clj, `:group-aware-consensus`): for statement c,

    GIC(c) = product over opinion groups g of (A_g(c) + 1) / (S_g(c) + 2)

where A_g(c) counts the agree votes of group g's members on c and S_g(c) counts ALL their
votes on c, agree + disagree + pass (Polis's `:S`, "seen": any non-missing vote). A group
with no votes on c contributes 1/2. Only members of opinion groups count. The counts come
from `comment-groups.csv` where present (`group-<letter>-agrees` and `group-<letter>-votes`,
letter a = group-id 0, as Polis's export writes them), else are recomputed from
participants-votes.csv (tested to agree where both exist). The figures are returned in
`PolisImport.gic` and written by `accord import polis` to `<output stem>.gic.json` beside
the session file, so a metrics step can report the chosen statement's GIC next to the best.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from accord.importers import ImporterError, sanitise_id
from accord.session_file import DelegateSpec, ProtocolSpec, SessionSpec
from constituencies import Assessment, Constituency, Constituent, ValuesCard
from protocols.agenda import Issue, Option

ISSUE_ID = "statement"
CONTEXT = "When choosing which statement the whole conversation stands behind"
DEFAULT_RULE = "schulze"
DEFAULT_STRATEGY = "boulware"
GIC_DEFINITION = (
    "GIC(c) = product over opinion groups g of (A_g(c) + 1) / (S_g(c) + 2), A_g = agree votes of "
    "g's members on c, S_g = all their votes on c (agree + disagree + pass); Polis "
    "math/src/polismath/math/conversation.clj :group-aware-consensus"
)

GROUP_POLICIES = (
    "STATEMENTS that most of this group's participants agreed with when they voted",
    "DISAGREEMENTS that this group's participants registered against a statement",
    "VOTES cast by the group's participants rather than reasons they gave",
)

Source = Literal["comment-groups.csv", "participants-votes.csv"]


class PolisImportError(ImporterError):
    """A Polis export file that cannot be imported (file, field, reason)."""


@dataclass(frozen=True)
class GroupTally:
    """One opinion group's votes on one statement."""

    agrees: int
    disagrees: int
    passes: int
    members: int

    @property
    def votes(self) -> int:
        return self.agrees + self.disagrees + self.passes

    @property
    def mean(self) -> float | None:
        return (self.agrees - self.disagrees) / self.votes if self.votes else None


@dataclass(frozen=True)
class Statement:
    option_id: str
    comment_id: int
    text: str
    votes: int  # by every participant, grouped or not
    groups: dict[str, GroupTally]


@dataclass(frozen=True)
class PolisImport:
    """The session, and what it has no field for (GIC, who was left out)."""

    spec: SessionSpec
    folder: Path
    topic: str
    statements: tuple[Statement, ...]  # on the agenda, in comment-id order
    moderated_in: int
    left_out_by_max: tuple[int, ...]  # comment ids dropped by max_statements
    groups: dict[str, tuple[str, ...]]  # group id -> participant ids
    participants: int
    ungrouped: int  # participants without an opinion group, left out
    gic: dict[str, float]  # option id -> GIC, every moderated-in statement
    gic_source: Source
    notes: tuple[str, ...] = field(default=())

    @property
    def agenda_gic(self) -> dict[str, float]:
        return {s.option_id: self.gic[s.option_id] for s in self.statements}

    def gic_document(self) -> dict[str, Any]:
        """JSON-ready sidecar: the GIC of every statement, the best, and the counts used."""
        on_agenda = self.agenda_gic
        best = max(on_agenda, key=lambda o: (on_agenda[o], -int(o[1:])))
        best_all = max(self.gic, key=lambda o: (self.gic[o], -int(o[1:])))
        return {
            "kind": "accord-import/polis-gic",
            "folder": str(self.folder),
            "topic": self.topic,
            "definition": GIC_DEFINITION,
            "counts_from": self.gic_source,
            "issue": ISSUE_ID,
            "groups": sorted(self.groups, key=int),
            "best": {"option": best, "gic": on_agenda[best]},
            "best_moderated_in": {"option": best_all, "gic": self.gic[best_all]},
            "gic": on_agenda,
            "not_on_agenda": {o: g for o, g in self.gic.items() if o not in on_agenda},
            "per_group": {
                s.option_id: {
                    g: {
                        "agrees": t.agrees,
                        "disagrees": t.disagrees,
                        "passes": t.passes,
                        "votes": t.votes,
                    }
                    for g, t in s.groups.items()
                }
                for s in self.statements
            },
            "participants": self.participants,
            "ungrouped_left_out": self.ungrouped,
        }


# -- reading ----------------------------------------------------------------------------


def _rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise PolisImportError(path, "file", "missing")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            missing = [c for c in required if c not in header]
            if missing:
                raise PolisImportError(path, f"column {missing[0]!r}", "missing from the header")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PolisImportError(path, "file", f"cannot read as CSV: {exc}") from None
    return header, rows


def _int(path: Path, row: int, column: str, raw: str | None) -> int:
    try:
        return int((raw or "").strip())
    except ValueError:
        raise PolisImportError(
            path, f"row {row}, column {column!r}", f"{raw!r} is not an integer"
        ) from None


def _vote(path: Path, row: int, column: str, raw: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value not in (-1.0, 0.0, 1.0):
        raise PolisImportError(
            path,
            f"row {row}, column {column!r}",
            f"vote {raw!r} is not 1 (agree), -1 (disagree) or 0 (pass)",
        )
    return int(value)


def _summary(folder: Path) -> dict[str, str]:
    path = folder / "summary.csv"
    if not path.is_file():
        return {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return {row[0].strip(): row[1] for row in csv.reader(handle) if len(row) >= 2}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PolisImportError(path, "file", f"cannot read as CSV: {exc}") from None


@dataclass
class _Export:
    comments: dict[int, tuple[int, str]]  # comment id -> (moderated, text)
    participant_group: dict[str, str | None]  # participant id -> group id or None
    votes: dict[int, dict[str, int]]  # comment id -> participant -> vote
    notes: list[str]


def _read_comments(folder: Path) -> dict[int, tuple[int, str]]:
    path = folder / "comments.csv"
    _, rows = _rows(path, ("comment-id", "moderated", "comment-body"))
    comments: dict[int, tuple[int, str]] = {}
    for n, row in enumerate(rows, start=2):
        cid = _int(path, n, "comment-id", row["comment-id"])
        if cid in comments:
            raise PolisImportError(
                path, f"row {n}, column 'comment-id'", f"comment {cid} is listed twice"
            )
        comments[cid] = (
            _int(path, n, "moderated", row["moderated"]),
            (row["comment-body"] or "").strip(),
        )
    return comments


def _read_participants(folder: Path) -> tuple[dict[str, str | None], dict[int, dict[str, int]]]:
    path = folder / "participants-votes.csv"
    header, rows = _rows(path, ("participant", "group-id"))
    comment_columns = [c for c in header if re.fullmatch(r"\d+", c.strip())]
    groups: dict[str, str | None] = {}
    votes: dict[int, dict[str, int]] = {int(c): {} for c in comment_columns}
    for n, row in enumerate(rows, start=2):
        pid = str(_int(path, n, "participant", row["participant"]))
        if pid in groups:
            raise PolisImportError(
                path, f"row {n}, column 'participant'", f"participant {pid} is listed twice"
            )
        raw_group = (row["group-id"] or "").strip()
        groups[pid] = str(_int(path, n, "group-id", raw_group)) if raw_group else None
        for column in comment_columns:
            raw = row.get(column)
            if raw is None:
                continue  # a short row: not seen
            vote = _vote(path, n, column, raw)
            if vote is not None:
                votes[int(column)][pid] = vote
    return groups, votes


def latest_votes(folder: str | Path) -> dict[int, dict[str, int]]:
    """votes.csv reduced to each participant's latest vote per comment (by timestamp)."""
    path = Path(folder) / "votes.csv"
    _, rows = _rows(path, ("timestamp", "comment-id", "voter-id", "vote"))
    latest: dict[tuple[int, str], tuple[int, int, int]] = {}
    for n, row in enumerate(rows, start=2):
        cid = _int(path, n, "comment-id", row["comment-id"])
        pid = str(_int(path, n, "voter-id", row["voter-id"]))
        stamp = _int(path, n, "timestamp", row["timestamp"])
        vote = _vote(path, n, "vote", row["vote"])
        if vote is None:
            raise PolisImportError(path, f"row {n}, column 'vote'", "empty vote")
        held = latest.get((cid, pid))
        if held is None or (stamp, n) >= held[:2]:
            latest[(cid, pid)] = (stamp, n, vote)
    out: dict[int, dict[str, int]] = {}
    for (cid, pid), (_, _, vote) in latest.items():
        out.setdefault(cid, {})[pid] = vote
    return out


def _read_export(folder: Path) -> _Export:
    if not folder.is_dir():
        raise PolisImportError(folder, "folder", "not a directory")
    comments = _read_comments(folder)
    participant_group, votes = _read_participants(folder)
    notes: list[str] = []
    missing = sorted(c for c, (mod, _) in comments.items() if mod == 1 and c not in votes)
    if missing:
        from_log = latest_votes(folder)
        for cid in missing:
            votes[cid] = {p: v for p, v in from_log.get(cid, {}).items() if p in participant_group}
        notes.append(
            f"participants-votes.csv has no column for moderated-in statement(s) {missing}: their "
            "votes come from votes.csv (each participant's latest)"
        )
    return _Export(comments, participant_group, votes, notes)


def _tally(export: _Export, cid: int, members: dict[str, list[str]]) -> dict[str, GroupTally]:
    column = export.votes.get(cid, {})
    out: dict[str, GroupTally] = {}
    for g, people in members.items():
        cast = [column[p] for p in people if p in column]
        out[g] = GroupTally(cast.count(1), cast.count(-1), cast.count(0), len(people))
    return out


def _group_members(export: _Export) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for pid, g in export.participant_group.items():
        if g is not None:
            members.setdefault(g, []).append(pid)
    return {g: sorted(members[g], key=int) for g in sorted(members, key=int)}


def _gic(counts: dict[str, tuple[int, int]]) -> float:
    value = 1.0
    for agrees, votes in counts.values():
        value *= (agrees + 1) / (votes + 2)
    return value


def gic_from_participant_votes(folder: str | Path) -> dict[str, float]:
    """GIC of every moderated-in statement, counts recomputed from participants-votes.csv."""
    export = _read_export(Path(folder))
    members = _group_members(export)
    out: dict[str, float] = {}
    for cid, (mod, _) in sorted(export.comments.items()):
        if mod == 1:
            tallies = _tally(export, cid, members)
            out[f"s{cid}"] = _gic({g: (t.agrees, t.votes) for g, t in tallies.items()})
    return out


def gic_from_comment_groups(folder: str | Path) -> dict[str, float]:
    """GIC of every moderated-in statement with a row in comment-groups.csv, from its counts."""
    folder = Path(folder)
    comments = _read_comments(folder)
    path = folder / "comment-groups.csv"
    header, rows = _rows(path, ("comment-id",))
    letters = sorted(
        {m.group(1) for c in header if (m := re.fullmatch(r"group-([a-z])-votes", c.strip()))}
    )
    if not letters:
        raise PolisImportError(
            path, "column 'group-a-votes'", "no group-<letter>-votes columns in the header"
        )
    for letter in letters:
        if f"group-{letter}-agrees" not in header:
            raise PolisImportError(
                path, f"column 'group-{letter}-agrees'", "missing from the header"
            )
    out: dict[str, float] = {}
    for n, row in enumerate(rows, start=2):
        cid = _int(path, n, "comment-id", row["comment-id"])
        if comments.get(cid, (0, ""))[0] != 1:
            continue
        counts = {
            str(ord(letter) - ord("a")): (
                _int(path, n, f"group-{letter}-agrees", row[f"group-{letter}-agrees"]),
                _int(path, n, f"group-{letter}-votes", row[f"group-{letter}-votes"]),
            )
            for letter in letters
        }
        for g, (agrees, votes) in counts.items():
            if not 0 <= agrees <= votes:
                raise PolisImportError(
                    path,
                    f"row {n}, column 'group-{chr(ord('a') + int(g))}-agrees'",
                    f"{agrees} agrees out of {votes} votes",
                )
        out[f"s{cid}"] = _gic(counts)
    return out


def group_informed_consensus(folder: str | Path) -> dict[str, float]:
    """Polis's group-informed consensus of every moderated-in statement (option id -> GIC).

    From comment-groups.csv where the export has it (statements missing from it are
    recomputed), else recomputed from participants-votes.csv. See the module docstring.
    """
    folder = Path(folder)
    recomputed = gic_from_participant_votes(folder)
    if not (folder / "comment-groups.csv").is_file():
        return recomputed
    exported = gic_from_comment_groups(folder)
    return {o: exported.get(o, g) for o, g in recomputed.items()}


# -- the session ------------------------------------------------------------------------


def import_polis(
    folder: str | Path,
    *,
    max_statements: int | None = None,
    strategy: str = DEFAULT_STRATEGY,
    rule: str = DEFAULT_RULE,
    session_id: str | None = None,
) -> PolisImport:
    """Read a Polis open-data export folder into a session. Raises `PolisImportError`."""
    folder = Path(folder)
    export = _read_export(folder)
    summary = _summary(folder)
    topic = (summary.get("topic") or folder.name).strip()
    members = _group_members(export)
    pv = folder / "participants-votes.csv"
    if len(members) < 2:
        raise PolisImportError(
            pv,
            "column 'group-id'",
            f"found {len(members)} opinion group(s); a session needs at least two",
        )
    moderated_in = sorted(c for c, (mod, _) in export.comments.items() if mod == 1)
    total_votes = {c: len(export.votes.get(c, {})) for c in moderated_in}
    kept = moderated_in
    left_out: list[int] = []
    if max_statements is not None:
        if max_statements < 2:
            raise PolisImportError(
                folder, "max_statements", f"{max_statements} < 2: an issue needs two options"
            )
        ranked = sorted(moderated_in, key=lambda c: (-total_votes[c], c))
        kept = sorted(ranked[:max_statements])
        left_out = sorted(ranked[max_statements:])
    if len(kept) < 2:
        raise PolisImportError(
            folder / "comments.csv",
            "column 'moderated'",
            f"{len(kept)} moderated-in statement(s) (moderated == 1); an issue needs at least two",
        )
    statements = tuple(
        Statement(f"s{c}", c, export.comments[c][1], total_votes[c], _tally(export, c, members))
        for c in kept
    )
    if (folder / "comment-groups.csv").is_file():
        gic, source = group_informed_consensus(folder), "comment-groups.csv"
    else:
        gic = {
            f"s{c}": _gic({g: (t.agrees, t.votes) for g, t in _tally(export, c, members).items()})
            for c in moderated_in
        }
        source = "participants-votes.csv"
    ungrouped = sum(1 for g in export.participant_group.values() if g is None)
    spec = _build_spec(
        folder,
        topic,
        summary,
        statements,
        members,
        ungrouped,
        strategy,
        rule,
        session_id,
        len(export.participant_group),
        len(moderated_in),
        left_out,
    )
    return PolisImport(
        spec=spec,
        folder=folder,
        topic=topic,
        statements=statements,
        moderated_in=len(moderated_in),
        left_out_by_max=tuple(left_out),
        groups={g: tuple(f"p{p}" for p in people) for g, people in members.items()},
        participants=len(export.participant_group),
        ungrouped=ungrouped,
        gic=gic,
        gic_source=source,  # type: ignore[arg-type]
        notes=tuple(export.notes),
    )


def _letter(g: str) -> str:
    n = int(g)
    return chr(ord("A") + n) if 0 <= n < 26 else g


def _build_spec(
    folder: Path,
    topic: str,
    summary: dict[str, str],
    statements: tuple[Statement, ...],
    members: dict[str, list[str]],
    ungrouped: int,
    strategy: str,
    rule: str,
    session_id: str | None,
    participants: int,
    moderated_in: int,
    left_out: list[int],
) -> SessionSpec:
    issue = Issue(
        id=ISSUE_ID,
        description=f"Which statement of the Polis conversation {topic!r} to adopt",
        context=CONTEXT,
        options=[Option(id=s.option_id, description=s.text) for s in statements],
    )
    constituencies: list[Constituency] = []
    assessments: list[Assessment] = []
    for g, people in members.items():
        card_id = f"group-{g}-votes"
        constituencies.append(
            Constituency(
                id=f"group-{g}",
                name=f"Opinion group {_letter(g)}",
                description=(
                    f"The {len(people)} participants Polis placed in opinion group {g} "
                    f"({_letter(g)}) of the conversation {topic!r}. One thin, preference-derived card "
                    "stands for their votes; it is not a set of values elicited from them."
                ),
                cards=[
                    ValuesCard(
                        id=card_id,
                        title=f"What group {_letter(g)}'s votes say",
                        description=(
                            f"The agree, disagree and pass votes of opinion group {_letter(g)} on each "
                            "statement, averaged (agree 1, disagree -1, pass 0). Derived from votes, "
                            "not elicited values."
                        ),
                        policies=list(GROUP_POLICIES),
                        contexts=[CONTEXT],
                        source="preference-derived",
                    )
                ],
                constituents=[Constituent(id=f"p{p}", holds=[card_id]) for p in people],
            )
        )
        for s in statements:
            t = s.groups[g]
            if t.mean is None:
                continue
            assessments.append(
                Assessment(
                    option=f"{ISSUE_ID}/{s.option_id}",
                    card=card_id,
                    score=t.mean,
                    rationale=(
                        f"{t.agrees} agree, {t.disagrees} disagree, {t.passes} pass of the group's "
                        f"{t.members} participants"
                    ),
                    by="constituents",
                )
            )
    grouped = sum(len(p) for p in members.values())
    kept = (
        f"{len(statements)} of {moderated_in} moderated-in statements (the {len(statements)} with most votes)"
        if left_out
        else f"all {moderated_in} moderated-in statements"
    )
    about = (summary.get("conversation-description") or "").strip()
    description = (
        (f"{about}\n\n" if about else "")
        + f"Imported from the Polis open-data export {folder.name} ({summary.get('url', 'no url')}). "
        f"{participants} participants: {grouped} in {len(members)} opinion groups, {ungrouped} without "
        f"a group left out. Agenda: {kept}. Group-informed consensus per statement: the .gic.json "
        "sidecar written beside this file. Data CC BY 4.0, The Computational Democracy Project."
    )
    try:
        return SessionSpec(
            id=session_id or sanitise_id(folder.name, "polis-conversation"),
            title=topic,
            description=description,
            agenda=[issue],
            constituencies=constituencies,
            assessments=assessments,
            protocol=ProtocolSpec(name="voting", rule=rule),
            delegates={f"group-{g}": DelegateSpec(strategy=strategy) for g in members},
        )
    except ValidationError as exc:
        raise PolisImportError(
            folder, "session", f"the imported session is invalid: {exc}"
        ) from None
