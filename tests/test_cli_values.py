"""`accord values`: show, check, graph, import-graph and export-graph, through the CLI."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from accord import cli_values
from accord.cli_values import values_app
from accord.session_file import SessionSpec, load_session
from constituencies import Constituency
from constituencies.moral_graph import assemble_moral_graph, load_moral_graph
from constituencies.quality import check_card
from constituencies.wisdom import RankingOptions, rank_values

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"
RIVERSIDE = ROOT / "examples" / "riverside" / "session.yaml"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_GRAPH = SHARED / "data" / "moral-graph" / "moral-graph-prolific-run.json"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

runner = CliRunner()


def invoke(*args: str | Path) -> Any:
    return runner.invoke(values_app, [str(a) for a in args])


def flat(text: str) -> str:
    """Output with rich's line wrapping undone, for substring checks."""
    return " ".join(text.split())


@pytest.fixture
def real_graph_path() -> Path:
    if not REAL_GRAPH.is_file():
        pytest.skip(
            f"the shared moral graph {REAL_GRAPH} is absent "
            "(../shared sits beside the checkout in CI)"
        )
    return REAL_GRAPH


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render as on an 80-column terminal, whatever COLUMNS says."""
    monkeypatch.setattr(cli_values, "console", Console(width=80))


def _value(value_id: int, title: str, policies: list[str]) -> dict[str, Any]:
    return {
        "id": value_id,
        "title": title,
        "instructionsShort": f"{title}, briefly.",
        "instructionsDetailed": f"{title}, at length.",
        "evaluationCriteria": policies,
    }


def _edge(a: int, b: int, contexts: list[str], wiser: int, not_wiser: int, unsure: int,
          less_wise: int, impressions: int) -> dict[str, Any]:
    return {
        "sourceValueId": a,
        "wiserValueId": b,
        "contexts": contexts,
        "counts": {
            "markedWiser": wiser,
            "markedNotWiser": not_wiser,
            "markedLessWise": less_wise,
            "markedUnsure": unsure,
            "impressions": impressions,
        },
        "summary": {"wiserLikelihood": 0.5, "entropy": 1.0},
    }


def small_graph() -> dict[str, Any]:
    """Three good values, one with two policies; a two-context edge, reverse votes, and
    impressions beyond the recorded answers."""
    good = ["MOMENTS when {t} shows", "SIGNS that {t} matters", "CHOICES that keep {t} going"]
    values = [
        _value(1, "Candour", [p.format(t="candour") for p in good]),
        _value(2, "Care", [p.format(t="care") for p in good]),
        _value(3, "Patience", [p.format(t="patience") for p in good]),
        _value(4, "Thin", ["MOMENTS of thinness", "SIGNS of thinness"]),
    ]
    edges = [
        _edge(1, 2, ["When advising", "When consoling"], 5, 1, 2, 1, 11),
        _edge(2, 3, ["When advising"], 3, 0, 0, 0, 3),
        _edge(3, 4, ["When advising"], 2, 0, 0, 0, 2),
    ]
    return {"values": values, "edges": edges}


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


# --- show ------------------------------------------------------------------------------------


def test_show_tiny_lists_cards_weights_holders_and_mandate(narrow: None) -> None:
    result = invoke("show", TINY)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    for expected in (
        "neighbours: Neighbours", "shops: Shopkeepers", "parents: Parents",
        "Restful evenings", "MOMENTS when the street goes quiet",
        "all contexts", "C1 When deciding how public land is used",
        "nb-1, nb-2", "park=lot", "reservation +0.00", "No wiser-than votes.",
    ):
        assert expected in out, expected


@pytest.mark.parametrize("path", [TINY, RIVERSIDE], ids=["tiny", "riverside"])
def test_show_json_gives_card_weights_per_context(path: Path) -> None:
    result = invoke("show", path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    spec, _ = load_session(path)
    assert doc["kind"] == "session" and doc["session"] == spec.id
    assert [c["id"] for c in doc["constituencies"]] == [c.id for c in spec.constituencies]
    issue_contexts = {i.context for i in spec.agenda if i.context}
    for shown, c in zip(doc["constituencies"], spec.constituencies, strict=True):
        contexts = [w["context"] for w in shown["weights"]]
        assert contexts[0] is None and shown["weights"][0]["label"] == "all contexts"
        assert issue_contexts <= set(contexts)
        for entry in shown["weights"]:
            assert entry["weights"] == pytest.approx(c.card_weights(entry["context"]))
            if entry["weights"]:
                assert sum(entry["weights"].values()) == pytest.approx(1.0)
        assert shown["support"] == pytest.approx(c.support())
        for card in c.cards:
            assert shown["holders"][card.id] == [p.id for p in c.constituents if card.id in p.holds]
        assert shown["mandate"] == c.mandate.model_dump(mode="json")
        assert shown["wiser_than_votes"] == len(c.wiser_than)
        counted = sum(t["upgrade"] + t["no_upgrade"] + t["not_sure"] for t in shown["wiser_than"])
        assert counted == len(c.wiser_than)


def test_show_one_constituency_with_its_votes(narrow: None) -> None:
    result = invoke("show", RIVERSIDE, "--constituency", "environment")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "environment: Friends of the Wend" in out
    assert "residents" not in out.split("environment: Friends")[1]
    assert "env-alive → env-compact │ 1 │ 1 │ 1 │ env-02, env-03, env-06" in out
    assert "riverbank=promenade" in out
    doc = json.loads(invoke("show", RIVERSIDE, "-c", "environment", "--json").stdout)
    [env] = doc["constituencies"]
    compact = next(w for w in env["weights"] if w["context"] and "skyline" in w["context"])
    assert "env-compact" in compact["weights"]
    land_use = "When deciding how public land is used"
    land = next(w for w in env["weights"] if w["context"] == land_use)
    assert "env-compact" not in land["weights"]  # restricted to the skyline context

    missing = invoke("show", RIVERSIDE, "--constituency", "nobody")
    assert missing.exit_code == 2
    assert "no constituency 'nobody'" in flat(missing.output)


@pytest.mark.parametrize(
    "args", [["show", RIVERSIDE], ["check", RIVERSIDE], ["show", "REAL"], ["check", "REAL"]],
    ids=["show riverside", "check riverside", "show real graph", "check real graph"],
)
def test_output_fits_80_columns(
    narrow: None, request: pytest.FixtureRequest, args: list[Any]
) -> None:
    if args[1] == "REAL":
        args = [args[0], request.getfixturevalue("real_graph_path")]
    result = invoke(*args)
    assert result.exit_code in (0, 1), result.output  # check exits 1 on the real graph
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_show_moral_graph_ranks_values_as_mai(real_graph_path: Path, narrow: None) -> None:
    result = invoke("show", real_graph_path)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "59 values, 67 edges, 11 contexts" in out
    assert "top 20 of 59 ranked values (67 kept edges)" in out
    assert "Information Empowerment" in out

    doc = json.loads(invoke("show", real_graph_path, "--json", "--top", "5").stdout)
    graph = load_moral_graph(real_graph_path)
    expected = rank_values(graph)[None].ranked()[:5]
    [pooled] = doc["rankings"]
    assert pooled["context"] is None and pooled["kept_edges"] == 67
    assert [(r["id"], r["weight"]) for r in pooled["top"]] == [
        (v, pytest.approx(w)) for v, w in expected
    ]
    assert pooled["top"][0]["title"] == "Information Empowerment"
    assert doc["edges"] == 67 and len(doc["values"]) == 59

    per = json.loads(
        invoke("show", real_graph_path, "--json", "--per-context", "--top", "0").stdout
    )
    ranked = rank_values(graph, RankingOptions(per_context=True))
    assert [r["context"] for r in per["rankings"]] == list(ranked)
    for r in per["rankings"]:
        assert {row["id"]: row["weight"] for row in r["top"]} == pytest.approx(
            ranked[r["context"]].weights
        )


def test_per_context_is_for_moral_graphs() -> None:
    result = invoke("show", TINY, "--per-context")
    assert result.exit_code == 2
    assert "--per-context applies to moral graphs" in flat(result.output)


# --- check -----------------------------------------------------------------------------------


def test_check_clean_file_exits_0(narrow: None) -> None:
    result = invoke("check", TINY)
    assert result.exit_code == 0, result.output
    assert "4 cards, 0 with errors, 0 with warnings" in flat(result.stdout)


def test_check_riverside_warnings_fail_only_when_strict() -> None:
    spec, _ = load_session(RIVERSIDE)
    reports = [check_card(card) for c in spec.constituencies for card in c.cards]
    warned = sum(1 for r in reports if r.warnings)
    assert warned > 0 and not any(r.errors for r in reports)
    result = invoke("check", RIVERSIDE)
    assert result.exit_code == 0, result.output
    assert f"{len(reports)} cards, 0 with errors, {warned} with warnings" in flat(result.stdout)
    assert "policies[1]: GROUND" in flat(result.stdout)
    assert invoke("check", RIVERSIDE, "--strict").exit_code == 1


def test_check_real_graph_reports_values_that_cannot_be_cards(real_graph_path: Path) -> None:
    result = invoke("check", real_graph_path)
    assert result.exit_code == 1
    assert "59 cards, 5 with errors," in flat(result.stdout)
    doc = json.loads(invoke("check", real_graph_path, "--json").stdout)
    assert doc["ok"] is False and doc["summary"]["with_errors"] == 5
    failing = {c["card"] for c in doc["cards"] if c["errors"]}
    assert failing == {"mg-332", "mg-219", "mg-304", "mg-284", "mg-208"}
    engaging = next(c for c in doc["cards"] if c["card"] == "mg-332")
    assert engaging["errors"][0]["code"] == "policy-count"
    goal = next(w for w in engaging["warnings"] if w["code"] == "instrumental")
    assert "ZONE OF PROXIMAL DEVELOPMENT" in goal["policy_text"]


def bad_constituency() -> dict[str, Any]:
    """Valid as a `ValuesCard` (3 policies, at least 3 characters each), bad as a value."""
    return {
        "id": "street",
        "cards": [
            {
                "id": "quiet",
                "title": "Quiet [night]",
                "description": "A quiet street.",
                "policies": [
                    "moments when the street goes quiet",
                    "Neighbours should always keep the noise down",
                    "SIGNS",
                ],
            },
            {
                "id": "fine",
                "title": "Fine",
                "description": "A fine card.",
                "policies": [
                    "MOMENTS when a neighbour waves",
                    "SIGNS that someone is home",
                    "CHANCES to talk over the fence",
                ],
            },
        ],
    }


def test_check_exits_1_on_a_bad_card(tmp_path: Path, narrow: None) -> None:
    path = tmp_path / "street.yaml"
    path.write_text(yaml.safe_dump(bad_constituency()), encoding="utf-8")
    result = invoke("check", path)
    assert result.exit_code == 1, result.output
    out = flat(result.stdout)
    assert "2 cards, 1 with errors, 1 with warnings" in out
    assert "policies[0]: moments when the" in out
    assert "Quiet [night]" in out  # user text is not read as rich markup
    doc = json.loads(invoke("check", path, "--json").stdout)
    [quiet] = [c for c in doc["cards"] if c["card"] == "quiet"]
    assert {(e["code"], e["policy"]) for e in quiet["errors"]} == {
        ("no-head", 0), ("no-qualifier", 2),
    }
    assert ("prescriptive", "Neighbours should always keep the noise down") in {
        (w["code"], w["policy_text"]) for w in quiet["warnings"]
    }


def test_check_exits_1_on_a_moral_graph_value_with_two_policies(tmp_path: Path) -> None:
    path = write_json(tmp_path / "graph.json", small_graph())
    result = invoke("check", path, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["summary"] == {"cards": 4, "with_errors": 1, "with_warnings": 0}
    [thin] = [c for c in doc["cards"] if c["errors"]]
    assert thin["card"] == "mg-4" and thin["errors"][0]["code"] == "policy-count"


def test_check_reports_identical_cards(tmp_path: Path, narrow: None) -> None:
    doc = bad_constituency()
    doc["cards"] = [doc["cards"][1], {**doc["cards"][1], "id": "fine-2", "title": "FINE "}]
    doc["constituents"] = [{"id": "p1", "holds": ["fine"]}, {"id": "p2", "holds": ["fine-2"]}]
    path = tmp_path / "twins.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = invoke("check", path)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "2 cards, 0 with errors, 2 with warnings" in out
    assert "canonicalise() would collapse them into fine" in out
    assert invoke("check", path, "--strict").exit_code == 1
    report = json.loads(invoke("check", path, "--json").stdout)
    assert report["identical_cards"] == [
        {"constituency": "street", "canonical": "fine", "merged": ["fine", "fine-2"],
         "holders": ["p1", "p2"], "support": 2.0}
    ]


# --- malformed input -------------------------------------------------------------------------


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    bad_yaml = tmp / "bad.yaml"
    bad_yaml.write_text("agenda: [unclosed\n", encoding="utf-8")
    odd = write_json(tmp / "odd.json", {"colour": "blue"})
    listed = tmp / "list.yaml"
    listed.write_text("- 1\n- 2\n", encoding="utf-8")
    broken_json = tmp / "broken.json"
    broken_json.write_text('{"values": [', encoding="utf-8")
    graph = small_graph()
    graph["edges"][0]["wiserValueId"] = 99
    dangling = write_json(tmp / "dangling.json", graph)
    session = yaml.safe_load(TINY.read_text())
    session["assessments"][0]["card"] = "nobody"
    bad_session = tmp / "session.yaml"
    bad_session.write_text(yaml.safe_dump(session), encoding="utf-8")
    return {
        "bad yaml": (bad_yaml, "not valid YAML"),
        "unknown shape": (odd, "not a session file, a constituency or a moral graph"),
        "not a mapping": (listed, "the top level must be a mapping"),
        "bad json": (broken_json, "not valid JSON"),
        "bad graph": (dangling, "unknown value id 99"),
        "bad session": (bad_session, "unknown card 'nobody'"),
        "missing": (tmp / "absent.yaml", "file not found"),
    }


@pytest.mark.parametrize(
    "command",
    [
        ["show"],
        ["check"],
        ["graph", "-o", "{tmp}/out.png"],
        ["export-graph", "-o", "{tmp}/out.json"],
        ["import-graph", "-o", "{tmp}/out.yaml", "--id", "x"],
    ],
    ids=lambda c: c[0],
)
def test_malformed_input_names_the_file_and_exits_2(tmp_path: Path, command: list[str]) -> None:
    for case, (path, reason) in _bad_inputs(tmp_path).items():
        args = [command[0], str(path), *(a.format(tmp=tmp_path) for a in command[1:])]
        result = runner.invoke(values_app, args)
        assert result.exit_code == 2, (case, result.output)
        message = flat(result.stderr)
        assert path.name in message and reason in message, (case, message)
        assert not list(tmp_path.glob("out.*")), case


# --- graph -----------------------------------------------------------------------------------


def test_graph_png_of_a_constituency(tmp_path: Path) -> None:
    out = tmp_path / "neighbours.png"
    result = invoke("graph", TINY, "--constituency", "neighbours", "-o", out)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_graph_svg_in_one_context(tmp_path: Path) -> None:
    out = tmp_path / "environment.svg"
    result = invoke(
        "graph", RIVERSIDE, "-c", "environment", "--context", "height", "-o", out
    )
    assert result.exit_code == 0, result.output
    assert "5 nodes, 1 edge" in flat(result.stdout)  # only the skyline vote
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    assert len(out.read_text(encoding="utf-8")) > 5000


def test_graph_png_of_the_real_moral_graph(tmp_path: Path, real_graph_path: Path) -> None:
    out = tmp_path / "real.png"
    result = invoke("graph", real_graph_path, "-o", out)
    assert result.exit_code == 0, result.output
    assert "59 nodes, 67 edges" in flat(result.stdout)
    assert out.read_bytes().startswith(PNG_MAGIC)
    parenting = tmp_path / "parenting.svg"
    result = invoke("graph", real_graph_path, "--context", "When parenting", "-o", parenting)
    assert result.exit_code == 0, result.output
    assert ET.parse(parenting).getroot().tag.endswith("svg")
    unknown = invoke("graph", real_graph_path, "--context", "When cooking", "-o", parenting)
    assert unknown.exit_code == 2 and "When parenting" in flat(unknown.stderr)


def test_graph_draws_text_literally(tmp_path: Path) -> None:
    doc = bad_constituency()
    doc["cards"][1]["title"] = r"Fees of $5 \frac or $6 [waived]"
    doc["wiser_than"] = [
        {"context": "evenings", "less_wise": "quiet", "wiser": "fine", "vote": "upgrade"}
    ]
    path = tmp_path / "street.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = tmp_path / "street.svg"
    result = invoke("graph", path, "-o", out, "--context", "evenings")
    assert result.exit_code == 0, result.output
    assert "2 nodes, 1 edge" in flat(result.stdout)
    assert ET.parse(out).getroot().tag.endswith("svg")


def test_graph_rejects_other_formats(tmp_path: Path) -> None:
    out = tmp_path / "graph.pdf"
    result = invoke("graph", TINY, "-c", "neighbours", "-o", out)
    assert result.exit_code == 2
    assert "must be .png or .svg" in flat(result.stderr)
    assert not out.exists()


def test_graph_of_a_session_needs_a_constituency(tmp_path: Path) -> None:
    result = invoke("graph", RIVERSIDE, "-o", tmp_path / "g.png")
    assert result.exit_code == 2
    assert "choose one with --constituency" in flat(result.stderr)


def test_graph_without_matplotlib_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = invoke("graph", TINY, "-c", "neighbours", "-o", tmp_path / "g.png")
    assert result.exit_code == 2
    assert "pip install 'accord[graph]'" in flat(result.stderr)
    assert not (tmp_path / "g.png").exists()


# --- import-graph / export-graph -------------------------------------------------------------


def _edges_by_card(graph_json: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    card = {v["id"]: v.get("cardId") or f"mg-{v['id']}" for v in graph_json["values"]}
    return {(card[e["sourceValueId"]], card[e["wiserValueId"]]): e for e in graph_json["edges"]}


def test_import_graph_expands_counts_into_votes(tmp_path: Path) -> None:
    source = write_json(tmp_path / "small.json", small_graph())
    out = tmp_path / "advisers.yaml"
    result = invoke("import-graph", source, "-o", out, "--id", "advisers", "--name", "Advisers")
    assert result.exit_code == 0, result.output
    warning = flat(result.stderr)
    assert "value 4 'Thin': has 2 attentional policies" in warning
    assert "1 edge" in warning

    text = out.read_text(encoding="utf-8")
    assert "Individual voters are unknown in an MAI export" in " ".join(
        line.lstrip("# ") for line in text.splitlines() if line.startswith("#")
    )
    c = Constituency.model_validate(yaml.safe_load(text))
    assert (c.id, c.name) == ("advisers", "Advisers")
    assert [card.id for card in c.cards] == ["mg-1", "mg-2", "mg-3"]
    assert c.constituents == [] and all(v.by is None for v in c.wiser_than)
    assert {x.description for x in c.contexts} == {"When advising", "When consoling"}

    def count(less: str, wiser: str, vote: str, context: str | None = None) -> int:
        return sum(
            1 for v in c.wiser_than
            if (v.less_wise, v.wiser, v.vote) == (less, wiser, vote)
            and (context is None or v.context == context)
        )

    # 1 -> 2: 5 wiser, 1 not wiser, 2 unsure over two contexts; the reverse pair gets the
    # 1 less-wise upgrade and the 11 - 9 = 2 unrecorded impressions as not_sure.
    assert (count("mg-1", "mg-2", "upgrade"), count("mg-1", "mg-2", "no_upgrade"),
            count("mg-1", "mg-2", "not_sure")) == (5, 1, 2)
    assert count("mg-1", "mg-2", "upgrade", "When advising") == 3
    assert count("mg-1", "mg-2", "upgrade", "When consoling") == 2
    assert count("mg-2", "mg-1", "upgrade") == 1 and count("mg-2", "mg-1", "not_sure") == 2
    assert count("mg-2", "mg-3", "upgrade") == 3
    assert len(c.wiser_than) == 5 + 1 + 2 + 1 + 2 + 3

    # The declared contexts make the imported constituency usable in a session as it is.
    session = yaml.safe_load(TINY.read_text())
    session["constituencies"].append(yaml.safe_load(text))
    SessionSpec.model_validate(session)

    back = tmp_path / "back.json"
    result = invoke("export-graph", out, "-o", back)
    assert result.exit_code == 0, result.output
    exported = _edges_by_card(json.loads(back.read_text()))
    original = _edges_by_card(small_graph())
    for pair in [("mg-1", "mg-2"), ("mg-2", "mg-3")]:
        assert exported[pair]["counts"] == original[pair]["counts"]
        assert sorted(exported[pair]["contexts"]) == sorted(original[pair]["contexts"])


def test_import_graph_needs_a_moral_graph_and_a_valid_id(tmp_path: Path) -> None:
    source = write_json(tmp_path / "small.json", small_graph())
    wrong = invoke("import-graph", TINY, "-o", tmp_path / "x.yaml", "--id", "x")
    assert wrong.exit_code == 2 and "not a moral graph" in flat(wrong.stderr)
    bad_id = invoke("import-graph", source, "-o", tmp_path / "x.yaml", "--id", "no spaces")
    assert bad_id.exit_code == 2 and "--id" in flat(bad_id.stderr)
    assert not (tmp_path / "x.yaml").exists()


def test_round_trip_of_the_real_graph(tmp_path: Path, real_graph_path: Path) -> None:
    constituency_file = tmp_path / "dft.yaml"
    result = invoke("import-graph", real_graph_path, "-o", constituency_file, "--id", "dft")
    assert result.exit_code == 0, result.output
    assert "5 values" in flat(result.stderr)  # the 2- and 9-policy values
    c = Constituency.model_validate(yaml.safe_load(constituency_file.read_text(encoding="utf-8")))
    assert len(c.cards) == 54 and not c.constituents

    exported_file = tmp_path / "dft.json"
    result = invoke("export-graph", constituency_file, "-o", exported_file)
    assert result.exit_code == 0, result.output
    exported = _edges_by_card(json.loads(exported_file.read_text(encoding="utf-8")))
    load_moral_graph(exported_file)  # MAI's shape, valid

    original = json.loads(real_graph_path.read_text(encoding="utf-8"))
    converted = {card.id for card in c.cards}
    compared = 0
    for pair, edge in _edges_by_card(original).items():
        if not set(pair) <= converted:
            continue
        compared += 1
        assert exported[pair]["counts"] == edge["counts"], pair
        assert sorted(exported[pair]["contexts"]) == sorted(edge["contexts"]), pair
    assert compared == 67 - 14  # 14 edges touch the five values left out

    # The imported file is a constituency file for every other command too.
    assert invoke("show", constituency_file, "--json").exit_code == 0
    assert invoke("check", constituency_file).exit_code == 0


def test_export_graph_of_a_session_constituency(tmp_path: Path) -> None:
    out = tmp_path / "residents.json"
    several = invoke("export-graph", RIVERSIDE, "-o", out)
    assert several.exit_code == 2 and "--constituency" in flat(several.stderr)
    result = invoke("export-graph", RIVERSIDE, "-c", "residents", "-o", out)
    assert result.exit_code == 0, result.output
    spec, _ = load_session(RIVERSIDE)
    residents = next(c for c in spec.constituencies if c.id == "residents")
    assert json.loads(out.read_text()) == json.loads(
        assemble_moral_graph(residents.cards, residents.wiser_than).model_dump_json(
            by_alias=True, exclude_unset=True
        )
    )
    skyline = tmp_path / "skyline.json"
    result = invoke(
        "export-graph", RIVERSIDE, "-c", "residents", "--context", "height", "-o", skyline
    )
    assert result.exit_code == 0, result.output
    graph = load_moral_graph(skyline)
    assert {tuple(e.contexts) for e in graph.edges} == {
        ("When deciding how a neighbourhood's skyline and density change",)
    }
