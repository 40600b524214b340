"""Polis open-data exports imported as sessions (accord/importers/polis.py).

The shared exports (../shared/data/polis) are read in place, never copied into the
project. Group votes and group-informed consensus are checked against an independent
computation from votes.csv (each participant's latest vote, by timestamp), which the
importer does not use for statements that participants-votes.csv covers.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord import plugins
from accord.cli_import import import_app
from accord.importers import (
    PolisImportError,
    dump_session_yaml,
    group_informed_consensus,
    import_polis,
)
from accord.importers.polis import (
    GROUP_POLICIES,
    gic_from_comment_groups,
    gic_from_participant_votes,
    latest_votes,
)
from accord.session_file import ProtocolSpec, load_session
from accord.session_plan import build_plan
from constituencies.quality import check_card

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
POLIS = SHARED / "data" / "polis"
ABSENT = f"the shared data folder {POLIS} is absent (it sits beside the checkout)"


def _exports() -> list[object]:
    if not POLIS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=ABSENT), id="shared-data-absent")]
    folders = sorted(p for p in POLIS.iterdir() if (p / "comments.csv").is_file())
    return [pytest.param(f, id=f.name) for f in folders]


def _independent_tallies(folder: Path) -> tuple[dict[str, str], dict[int, dict[str, list[int]]]]:
    """Group of each participant (participants-votes.csv) and, per moderated-in comment and
    group, the latest votes from votes.csv."""
    with (folder / "participants-votes.csv").open(newline="") as f:
        group = {r["participant"]: r["group-id"] for r in csv.DictReader(f) if r["group-id"]}
    with (folder / "comments.csv").open(newline="") as f:
        moderated_in = {int(r["comment-id"]) for r in csv.DictReader(f) if r["moderated"] == "1"}
    latest: dict[tuple[int, str], tuple[int, int]] = {}
    with (folder / "votes.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            key = (int(r["comment-id"]), r["voter-id"])
            stamp = int(r["timestamp"])
            if key not in latest or stamp >= latest[key][0]:
                latest[key] = (stamp, int(r["vote"]))
    tallies: dict[int, dict[str, list[int]]] = {
        c: {g: [] for g in set(group.values())} for c in moderated_in
    }
    for (cid, pid), (_, vote) in latest.items():
        if cid in tallies and pid in group:
            tallies[cid][group[pid]].append(vote)
    return group, tallies


# -- every export ----------------------------------------------------------------------------


@pytest.mark.parametrize("folder", _exports())
def test_every_export_imports_writes_loads_and_plans(folder: Path, tmp_path: Path) -> None:
    result = import_polis(folder)
    spec = result.spec
    assert [i.id for i in spec.agenda] == ["statement"]
    with (folder / "comments.csv").open(newline="") as f:
        moderated_in = sorted(
            int(r["comment-id"]) for r in csv.DictReader(f) if r["moderated"] == "1"
        )
    assert [o.id for o in spec.agenda[0].options] == [f"s{c}" for c in moderated_in]
    assert result.moderated_in == len(moderated_in)
    # groups become constituencies; ungrouped participants are left out and counted
    group, _ = _independent_tallies(folder)
    assert sorted(c.id for c in spec.constituencies) == sorted(
        f"group-{g}" for g in set(group.values())
    )
    assert sum(len(c.constituents) for c in spec.constituencies) == len(group)
    assert result.ungrouped == result.participants - len(group)
    for c in spec.constituencies:
        (card,) = c.cards
        assert card.source == "preference-derived" and card.policies == list(GROUP_POLICIES)
        assert check_card(card).ok
        assert all(p.holds == [card.id] and p.id.startswith("p") for p in c.constituents)
    assert all(a.by == "constituents" for a in spec.assessments)
    assert spec.protocol.name == "voting" and spec.protocol.params == {"rule": "schulze"}

    path = tmp_path / "session.yaml"
    path.write_text(dump_session_yaml(spec), encoding="utf-8")
    loaded, _ = load_session(path)
    assert loaded == spec
    # The voting protocol is being built alongside: plan with it when it is installed, and
    # always check everything else with stacked alternating offers.
    swapped = loaded.model_copy(
        update={"protocol": ProtocolSpec(name="stacked-alternating-offers")}
    )
    plan = build_plan(swapped, str(path))
    assert len(plan.participants) == len(spec.constituencies)
    assert plan.agenda.size == len(moderated_in)


@pytest.mark.parametrize("folder", _exports())
def test_plans_with_the_voting_protocol_when_installed(folder: Path) -> None:
    if "voting" not in plugins.protocols():
        pytest.skip("the `voting` protocol is not installed yet (being built alongside)")
    build_plan(import_polis(folder).spec)


@pytest.mark.parametrize("folder", _exports())
def test_assessments_are_group_mean_votes(folder: Path) -> None:
    result = import_polis(folder)
    group, tallies = _independent_tallies(folder)
    sizes = {g: list(group.values()).count(g) for g in set(group.values())}
    scores = {(a.option, a.card): a for a in result.spec.assessments}
    for cid, by_group in tallies.items():
        for g, votes in by_group.items():
            found = scores.get((f"statement/s{cid}", f"group-{g}-votes"))
            if not votes:
                assert found is None  # no votes: no assessment
                continue
            assert found is not None
            assert found.score == pytest.approx(sum(votes) / len(votes), abs=1e-12)
            assert found.rationale == (
                f"{votes.count(1)} agree, {votes.count(-1)} disagree, {votes.count(0)} pass of the "
                f"group's {sizes[g]} participants"
            )


@pytest.mark.parametrize("folder", _exports())
def test_gic_is_polis_definition_from_real_votes(folder: Path) -> None:
    _, tallies = _independent_tallies(folder)
    gic = group_informed_consensus(folder)
    assert set(gic) == {f"s{c}" for c in tallies}
    for cid, by_group in tallies.items():
        expected = 1.0
        for votes in by_group.values():
            expected *= (votes.count(1) + 1) / (len(votes) + 2)  # votes: agree + disagree + pass
        assert gic[f"s{cid}"] == pytest.approx(expected, rel=1e-12)
    result = import_polis(folder)
    assert result.gic == gic
    doc = result.gic_document()
    assert doc["best"]["gic"] == max(gic.values())
    assert doc["counts_from"] == (
        "comment-groups.csv"
        if (folder / "comment-groups.csv").is_file()
        else "participants-votes.csv"
    )


@pytest.mark.parametrize("folder", _exports())
def test_comment_groups_and_participant_votes_agree_where_both_exist(folder: Path) -> None:
    if not (folder / "comment-groups.csv").is_file():
        pytest.skip(f"{folder.name} has no comment-groups.csv (none of the shared exports does)")
    exported = gic_from_comment_groups(folder)
    recomputed = gic_from_participant_votes(folder)
    for option, value in exported.items():
        assert value == pytest.approx(recomputed[option], rel=1e-12)


@pytest.mark.parametrize("folder", _exports())
def test_votes_log_and_participant_matrix_agree(folder: Path) -> None:
    """The two files the importer can read votes from say the same thing."""
    with (folder / "participants-votes.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if c.isdigit()]
        matrix = {
            (int(c), r["participant"]): int(r[c]) for r in reader for c in columns if r[c] != ""
        }
    log = latest_votes(folder)
    assert {(c, p): v for c, votes in log.items() for p, v in votes.items()} == matrix


def test_max_statements_keeps_the_most_voted() -> None:
    folder = POLIS / "canadian-electoral-reform"
    if not folder.is_dir():
        pytest.skip(ABSENT)
    full = import_polis(folder)
    cut = import_polis(folder, max_statements=20)
    ranked = sorted(full.statements, key=lambda s: (-s.votes, s.comment_id))
    assert [s.comment_id for s in cut.statements] == sorted(s.comment_id for s in ranked[:20])
    assert len(cut.left_out_by_max) == len(full.statements) - 20
    assert set(cut.gic) == set(full.gic)  # GIC of every moderated-in statement is kept
    assert set(cut.agenda_gic) == {s.option_id for s in cut.statements}
    assert "20 of 152 moderated-in statements" in cut.spec.description


# -- a small export written here, with comment-groups.csv --------------------------------------


def _write_csv(path: Path, rows: list[list[object]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _small_export(folder: Path, *, comment_groups: bool = True) -> Path:
    _write_csv(
        folder / "summary.csv", [["topic", "Test town"], ["url", "https://pol.is/x"], ["groups", 2]]
    )
    head = [
        "timestamp",
        "datetime",
        "comment-id",
        "author-id",
        "agrees",
        "disagrees",
        "moderated",
        "comment-body",
    ]
    _write_csv(
        folder / "comments.csv",
        [
            head,
            [1, "", 0, 0, 3, 1, 1, "Parks matter"],
            [2, "", 1, 0, 3, 1, 1, "Buses, please"],
            [3, "", 2, 0, 0, 0, -1, "spam"],
            [4, "", 3, 0, 0, 0, 0, "not yet moderated"],
            [5, "", 4, 0, 1, 0, 1, "Bikes"],
        ],
    )
    _write_csv(
        folder / "participants-votes.csv",
        [
            [
                "participant",
                "group-id",
                "n-comments",
                "n-votes",
                "n-agree",
                "n-disagree",
                "0",
                "1",
                "2",
                "3",
                "4",
            ],
            [0, 0, 0, 3, 1, 1, 1, -1, "", "", 0],
            [1, 0, 0, 2, 2, 0, 1, 1, "", "", ""],
            [2, 1, 0, 3, 2, 1, -1, 1, "", "", 1],
            [3, 1, 0, 2, 1, 0, 0, 1, "", "", ""],
            [4, "", 0, 2, 2, 0, 1, 1, "", "", ""],
        ],
    )
    votes = [
        ["timestamp", "datetime", "comment-id", "voter-id", "vote"],
        [10, "", 0, 0, -1],
        [20, "", 0, 0, 1],
    ]
    for pid, row in {
        0: {1: -1, 4: 0},
        1: {0: 1, 1: 1},
        2: {0: -1, 1: 1, 4: 1},
        3: {0: 0, 1: 1},
        4: {0: 1, 1: 1},
    }.items():
        votes += [[30, "", c, pid, v] for c, v in row.items()]
    _write_csv(folder / "votes.csv", votes)
    if comment_groups:
        _write_csv(
            folder / "comment-groups.csv",
            [
                [
                    "comment-id",
                    "comment",
                    "total-votes",
                    "total-agrees",
                    "total-disagrees",
                    "total-passes",
                    "group-a-votes",
                    "group-a-agrees",
                    "group-a-disagrees",
                    "group-a-passes",
                    "group-b-votes",
                    "group-b-agrees",
                    "group-b-disagrees",
                    "group-b-passes",
                ],
                [0, "Parks matter", 4, 2, 1, 1, 2, 2, 0, 0, 2, 0, 1, 1],
                [1, "Buses, please", 4, 3, 1, 0, 2, 1, 1, 0, 2, 2, 0, 0],
                [4, "Bikes", 2, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0],
            ],
        )
    return folder


def test_small_export_by_hand(tmp_path: Path) -> None:
    folder = _small_export(tmp_path)
    expected = {"s0": 3 / 4 * 1 / 4, "s1": 2 / 4 * 3 / 4, "s4": 1 / 3 * 2 / 3}
    assert gic_from_comment_groups(folder) == pytest.approx(expected, rel=1e-15)
    assert gic_from_participant_votes(folder) == pytest.approx(expected, rel=1e-15)
    result = import_polis(folder)
    assert result.gic_source == "comment-groups.csv"
    assert result.gic == pytest.approx(expected, rel=1e-15)
    assert result.ungrouped == 1 and result.participants == 5
    assert [o.id for o in result.spec.agenda[0].options] == [
        "s0",
        "s1",
        "s4",
    ]  # moderated == 1 only
    assert result.spec.agenda[0].options[1].description == "Buses, please"
    scores = {(a.option, a.card): (a.score, a.rationale) for a in result.spec.assessments}
    assert scores[("statement/s0", "group-0-votes")] == (
        1.0,
        "2 agree, 0 disagree, 0 pass of the group's 2 participants",
    )
    assert scores[("statement/s0", "group-1-votes")] == (
        -0.5,
        "0 agree, 1 disagree, 1 pass of the group's 2 participants",
    )
    assert scores[("statement/s4", "group-0-votes")] == (
        0.0,
        "0 agree, 0 disagree, 1 pass of the group's 2 participants",
    )
    assert [p.id for p in result.spec.constituencies[0].constituents] == ["p0", "p1"]
    doc = result.gic_document()
    assert doc["best"] == {"option": "s1", "gic": 0.375}
    assert doc["per_group"]["s0"]["1"] == {"agrees": 0, "disagrees": 1, "passes": 1, "votes": 2}
    (tmp_path / "comment-groups.csv").unlink()
    assert import_polis(folder).gic_source == "participants-votes.csv"


def test_a_statement_without_a_matrix_column_takes_its_votes_from_the_log(tmp_path: Path) -> None:
    folder = _small_export(tmp_path, comment_groups=False)
    rows = list(csv.reader((folder / "participants-votes.csv").open(newline="")))
    _write_csv(folder / "participants-votes.csv", [r[:-1] for r in rows])  # drop column "4"
    result = import_polis(folder)
    assert result.gic["s4"] == pytest.approx(1 / 3 * 2 / 3, rel=1e-15)
    assert any("votes.csv" in n for n in result.notes)


# -- bad input: an error naming the file and the field -----------------------------------------


def test_malformed_csv_names_file_row_and_column(tmp_path: Path) -> None:
    folder = _small_export(tmp_path)
    path = folder / "participants-votes.csv"
    path.write_text(path.read_text().replace("2,1,0,3,2,1,-1,1", "2,1,0,3,2,1,yes,1"))
    with pytest.raises(PolisImportError) as caught:
        import_polis(folder)
    err = caught.value
    assert err.file.endswith("participants-votes.csv")
    assert err.element == "row 4, column '0'"
    assert "not 1 (agree), -1 (disagree) or 0 (pass)" in err.reason


def test_missing_column_and_single_group(tmp_path: Path) -> None:
    folder = _small_export(tmp_path)
    comments = folder / "comments.csv"
    comments.write_text(comments.read_text().replace("moderated", "status"))
    with pytest.raises(
        PolisImportError, match=r"comments\.csv: column 'moderated': missing from the header"
    ):
        import_polis(folder)
    folder = _small_export(tmp_path)
    path = folder / "participants-votes.csv"
    rows = list(csv.reader(path.open(newline="")))
    _write_csv(path, [rows[0]] + [[r[0], "0" if r[1] else "", *r[2:]] for r in rows[1:]])
    with pytest.raises(
        PolisImportError, match=r"participants-votes\.csv: column 'group-id': found 1 opinion group"
    ):
        import_polis(folder)
    with pytest.raises(PolisImportError, match="comment-groups.csv"):
        (folder / "comment-groups.csv").write_text("comment-id,comment\n0,x\n")
        gic_from_comment_groups(folder)


# -- the CLI -------------------------------------------------------------------------------


def test_cli_writes_session_and_gic_sidecar(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    folder = _small_export(tmp_path / "export")
    out = tmp_path / "town.yaml"
    result = CliRunner().invoke(
        import_app, ["polis", str(folder), "-o", str(out), "--max-statements", "2"]
    )
    assert result.exit_code == 0, result.output
    spec, _ = load_session(out)
    assert [o.id for o in spec.agenda[0].options] == ["s0", "s1"]  # 4 votes each; s4 has 2
    side = json.loads((tmp_path / "town.gic.json").read_text())
    assert side["gic"] == pytest.approx({"s0": 0.1875, "s1": 0.375})
    assert side["not_on_agenda"] == pytest.approx({"s4": 2 / 9})
    assert "1 of 5 participants had no group" in " ".join(result.output.split())
    bad = CliRunner().invoke(
        import_app, ["polis", str(folder), "-o", str(out), "--max-statements", "1"]
    )
    assert bad.exit_code == 2
