"""Genius XML / GeniusWeb JSON domains imported as sessions (accord/importers/genius.py).

The shared data (../shared/data/genius) is read in place, never copied into the project.
The utility check recomputes every outcome's Genius utility from the files with a small
parser written here, independent of the importer, and compares it with what Accord's own
ValueModel computes from the imported session.
"""

from __future__ import annotations

import itertools
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli_import import import_app
from accord.importers import (
    GeniusImportError,
    IdAllocator,
    dump_session_yaml,
    import_genius,
    sanitise_id,
)
from accord.importers.genius import PROFILE_POLICIES
from accord.session_file import load_session
from accord.session_plan import build_plan
from constituencies import ValueModel
from constituencies.quality import check_card

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GENIUS = SHARED / "data" / "genius"
ABSENT = f"the shared data folder {GENIUS} is absent (it sits beside the checkout)"


def _domain_folders() -> list[object]:
    if not GENIUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=ABSENT), id="shared-data-absent")]
    folders = sorted({f.parent for f in GENIUS.rglob("*") if f.suffix in (".xml", ".json")})
    return [pytest.param(f, id=str(f.relative_to(GENIUS))) for f in folders]


def _folder(*parts: str) -> Path:
    path = GENIUS.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(ABSENT)
    return path


# -- every folder -----------------------------------------------------------------------


@pytest.mark.parametrize("folder", _domain_folders())
def test_every_domain_imports_writes_loads_and_plans(folder: Path, tmp_path: Path) -> None:
    result = import_genius(folder)
    spec = result.spec
    assert len(result.profiles) >= 2
    assert len(spec.constituencies) == len(result.profiles)
    issue_contexts = {i.id: i.context for i in spec.agenda}
    assert len(set(issue_contexts.values())) == len(spec.agenda)
    for c in spec.constituencies:
        assert len(c.cards) == len(spec.agenda)
        assert [p.id for p in c.constituents] == [f"{c.id}-profile"]
        assert c.constituents[0].holds == [card.id for card in c.cards]
        assert sum(c.issue_weights.values()) == pytest.approx(1.0, abs=1e-12)
        for card, issue in zip(c.cards, spec.agenda, strict=True):
            assert card.source == "preference-derived"
            assert card.contexts == [issue.context]
            assert card.title.endswith("(preference-derived)")
            assert card.policies == list(PROFILE_POLICIES)
            assert check_card(card).ok
    # every (option, card) pair that applies is assessed exactly once, within [0, 1]
    assert len(spec.assessments) == len(spec.constituencies) * sum(
        len(i.options) for i in spec.agenda
    )
    assert all(0.0 <= a.score <= 1.0 and a.by == "organizer" for a in spec.assessments)

    path = tmp_path / "session.yaml"
    path.write_text(dump_session_yaml(spec, "test"), encoding="utf-8")
    loaded, _ = load_session(path)
    assert loaded == spec
    plan = build_plan(loaded, str(path))
    assert [p.id for p in plan.participants] == [p.party for p in result.profiles]
    assert all(p.strategy_name == "boulware" for p in plan.participants)
    assert plan.protocol_params.deadline_rounds == 100  # type: ignore[attr-defined]
    assert plan.agenda.size == result.outcome_space_size


# -- utilities equal Genius's, outcome by outcome -----------------------------------------


def _xml_reference(
    folder: Path,
) -> tuple[list[tuple[str, int, list[str]]], dict[str, tuple[dict, dict]]]:
    """Independent reading: issues (name, index, values) from the domain file; per profile
    file, its weights by issue index and its evaluations scaled by each issue's largest."""
    domain, profiles = None, {}
    for path in sorted(folder.glob("*.xml")):
        root = ET.parse(path).getroot()
        space = root if root.tag == "utility_space" else root.find("utility_space")
        if space.find(".//weight") is None:
            domain = space
            continue
        objective = space.find("objective")
        weights = {int(w.get("index")): float(w.get("value")) for w in objective.findall("weight")}
        evals = {}
        for el in objective.findall("issue"):
            table = {
                item.get("value"): float(item.get("evaluation")) for item in el.findall("item")
            }
            top = max(table.values())
            evals[int(el.get("index"))] = {v: e / top for v, e in table.items()}
        profiles[path.name] = (weights, evals)
    issues = [
        (el.get("name"), int(el.get("index")), [item.get("value") for item in el.findall("item")])
        for el in domain.find("objective").findall("issue")
    ]
    return issues, profiles


def _genius_utility(
    weights: dict[int, float],
    evals: dict,
    indices: list[int],
    combo: tuple[str, ...],
    normalise: bool,
) -> float:
    total = sum(weights[i] for i in indices) if normalise else 1.0
    u = sum(weights[i] / total * evals[i][v] for i, v in zip(indices, combo, strict=True))
    return u if normalise else min(u, 1.0)  # Genius caps a utility at 1


EXACT_XML = [
    ("anac", "y2011", "Laptop"),
    ("anac", "y2010", "ItexvsCypress"),
    ("anac", "y2011", "Car"),  # profiles nest <item>s in similarity functions: ignored
    ("anac", "y2013", "Icecream"),
    ("anac", "y2013", "Outfit"),
    ("anac", "y2010", "EnglandZimbabwe"),
]


@pytest.mark.parametrize("parts", EXACT_XML, ids=["/".join(p) for p in EXACT_XML])
def test_accord_utility_equals_genius_utility_for_every_outcome(parts: tuple[str, ...]) -> None:
    folder = _folder(*parts)
    result = import_genius(folder)
    spec = result.spec
    issues, profiles = _xml_reference(folder)
    indices = [index for _, index, _ in issues]
    # the agenda keeps the original names in its descriptions
    assert [i.description for i in spec.agenda] == [name for name, _, _ in issues]
    assert [[o.description for o in i.options] for i in spec.agenda] == [
        values for _, _, values in issues
    ]
    by_name = {i.id: ({o.id: o.description for o in i.options}) for i in spec.agenda}
    contexts = spec.agenda_model.issue_contexts
    for constituency, imported in zip(spec.constituencies, result.profiles, strict=True):
        weights, evals = profiles[imported.file.name]
        model = ValueModel(constituency, spec.assessments, contexts)
        raw_sum = sum(weights.values())
        checked = 0
        for outcome in spec.agenda_model.outcomes():
            combo = tuple(by_name[i][o] for i, o in outcome.items())
            expected = _genius_utility(weights, evals, indices, combo, normalise=True)
            assert model.utility(outcome) == pytest.approx(expected, abs=1e-12)
            assert model.breakdown(outcome).utility == pytest.approx(expected, abs=1e-12)
            assert imported.utility(outcome) == pytest.approx(expected, abs=1e-12)
            # Genius multiplies by the raw weights: equal when they sum to 1 (Laptop: 1.000052)
            raw = _genius_utility(weights, evals, indices, combo, normalise=False)
            assert model.utility(outcome) == pytest.approx(raw, abs=abs(raw_sum - 1.0) + 1e-12)
            checked += 1
        assert checked == result.outcome_space_size


def test_geniusweb_utility_is_the_weighted_sum_of_value_utilities() -> None:
    folder = _folder("geniusweb", "Party")
    result = import_genius(folder)
    spec = result.spec
    assert result.format == "geniusweb-json"
    domain = json.loads((folder / "party.json").read_text())
    names = list(domain["issuesValues"])
    contexts = spec.agenda_model.issue_contexts
    for constituency, imported in zip(spec.constituencies, result.profiles, strict=True):
        doc = json.loads(imported.file.read_text())["LinearAdditiveUtilitySpace"]
        model = ValueModel(constituency, spec.assessments, contexts)
        for outcome in spec.agenda_model.outcomes():
            values = [spec.agenda_model.issue(i).option(o).description for i, o in outcome.items()]
            expected = sum(
                doc["issueWeights"][n]
                * doc["issueUtilities"][n]["discreteutils"]["valueUtilities"][v]
                for n, v in zip(names, values, strict=True)
            )
            assert model.utility(outcome) == pytest.approx(expected, abs=1e-12)
        # reservation = utility of the reservation bid
        bid = doc["reservationBid"]["issuevalues"]
        expected = sum(
            doc["issueWeights"][n]
            * doc["issueUtilities"][n]["discreteutils"]["valueUtilities"][bid[n]]
            for n in names
        )
        assert constituency.mandate.reservation == pytest.approx(expected, abs=1e-12)


# -- names, ids, reservation, discount ------------------------------------------------------


def test_ids_are_sanitised_and_mapped_back_to_the_original_names() -> None:
    result = import_genius(_folder("anac", "y2011", "Laptop"))
    monitor = next(i for i in result.issues if i.name == "External Monitor")
    assert monitor.id == "External_Monitor"
    assert monitor.context == "When deciding External Monitor"
    assert {o.id: o.name for o in monitor.options} == {
        "19_LCD": "19'' LCD",
        "20_LCD": "20'' LCD",
        "23_LCD": "23'' LCD",
    }
    side = result.side_data()
    assert side["issues"][2]["options"]["19_LCD"] == "19'' LCD"
    price = next(
        i for i in import_genius(_folder("geniusweb", "Fitness")).issues if i.name == "price"
    )
    assert [o.id for o in price.options] == ["5", "15", "50", "200"]  # "$5" -> "5"


def test_sanitise_id_and_allocator() -> None:
    assert sanitise_id("19'' LCD", "x") == "19_LCD"
    assert sanitise_id("  ", "fallback") == "fallback"
    assert sanitise_id("Custom, Handmade", "x") == "Custom_Handmade"
    long = sanitise_id("a" * 100, "x")
    assert len(long) == 64 and long != sanitise_id("a" * 99, "x")
    ids = IdAllocator()
    assert [ids.take(t, "v") for t in ("a b", "a_b", "a-b", "A B")] == [
        "a_b",
        "a_b-2",
        "a-b",
        "A_B-3",
    ]


def test_reservation_and_discount_are_kept() -> None:
    laptop = import_genius(_folder("anac", "y2011", "Laptop"))
    for constituency, profile in zip(laptop.spec.constituencies, laptop.profiles, strict=True):
        assert profile.discount_factor == pytest.approx(0.42441038)
        assert "Discount factor 0.42441" in constituency.description
        assert constituency.mandate.reservation == 0.0
    assert [p["discount_factor"] for p in laptop.side_data()["parties"]] == [0.42441038, 0.42441038]
    lunch = import_genius(_folder("anac", "y2013", "Lunch"))
    assert [c.mandate.reservation for c in lunch.spec.constituencies] == [0.8, 0.8]
    nice = import_genius(_folder("anac", "y2011", "NiceOrDie"))  # no reservation, no discount
    assert [p.discount_factor for p in nice.profiles] == [None, None]
    assert "No discount factor" in nice.spec.constituencies[0].description


def test_the_domain_file_is_found_by_content_not_by_name(tmp_path: Path) -> None:
    source = _folder("anac", "y2011", "Laptop")
    shutil.copy(source / "laptop_domain.xml", tmp_path / "zzz.xml")
    shutil.copy(source / "laptop_buyer_utility.xml", tmp_path / "a_domain.xml")
    shutil.copy(source / "laptop_seller_utility.xml", tmp_path / "b.xml")
    result = import_genius(tmp_path, session_id="renamed")
    assert result.domain_file.name == "zzz.xml"
    assert [p.party for p in result.profiles] == ["a_domain", "b"]


def test_deadline_and_strategy_options() -> None:
    result = import_genius(
        _folder("anac", "y2013", "Coffee"), deadline_rounds=37, strategy="conceder"
    )
    assert result.spec.protocol.params == {"deadline_rounds": 37}
    assert {d.strategy for d in result.spec.delegates.values()} == {"conceder"}


# -- integer issues (none in the shared data; Genius's EvaluatorInteger semantics) -----------

INT_DOMAIN = """<negotiation_template><utility_space number_of_issues="2">
<objective index="0" name="root" type="objective" etype="objective">
  <issue index="1" name="Price" type="integer" etype="integer" vtype="integer" lowerbound="{low}" upperbound="{high}"/>
  <issue index="2" name="Colour" type="discrete" etype="discrete" vtype="discrete">
    <item index="1" value="red"/><item index="2" value="blue"/>
  </issue>
</objective></utility_space></negotiation_template>"""

INT_PROFILE = """<utility_space><objective index="0" name="root" type="objective" etype="objective">
  <issue index="1" name="Price" type="integer" etype="integer" vtype="integer" lowerbound="{low}" upperbound="{high}">
    <evaluator ftype="linear" slope="{slope}" offset="{offset}"/>
  </issue>
  <issue index="2" name="Colour" type="discrete" etype="discrete" vtype="discrete">
    <item index="1" value="red" evaluation="{red}"/><item index="2" value="blue" evaluation="{blue}"/>
  </issue>
  <weight index="1" value="{w1}"/><weight index="2" value="{w2}"/>
</objective><reservation value="0.25"/></utility_space>"""


def _write_int_domain(folder: Path, low: int, high: int) -> None:
    (folder / "d.xml").write_text(INT_DOMAIN.format(low=low, high=high))
    (folder / "buyer.xml").write_text(
        INT_PROFILE.format(
            low=low, high=high, slope=-0.3, offset=1.1, red=4, blue=8, w1=0.6, w2=0.4
        )
    )
    (folder / "seller.xml").write_text(
        INT_PROFILE.format(
            low=low, high=high, slope=0.25, offset=0.0, red=3, blue=1, w1=0.5, w2=0.5
        )
    )


def test_integer_issue_is_discretised_with_linear_evaluation(tmp_path: Path) -> None:
    _write_int_domain(tmp_path, 0, 4)
    result = import_genius(tmp_path)
    spec = result.spec
    price = spec.agenda_model.issue("Price")
    assert [o.id for o in price.options] == ["v0", "v1", "v2", "v3", "v4"]
    contexts = spec.agenda_model.issue_contexts
    params = {
        "buyer": (-0.3, 1.1, {"red": 0.5, "blue": 1.0}, 0.6),
        "seller": (0.25, 0.0, {"red": 1.0, "blue": 1 / 3}, 0.5),
    }
    for constituency in spec.constituencies:
        slope, offset, colour, w1 = params[constituency.id]
        model = ValueModel(constituency, spec.assessments, contexts)
        for v, c in itertools.product(range(5), ("red", "blue")):
            expected = w1 * min(1.0, max(0.0, offset + slope * v)) + (1 - w1) * colour[c]
            assert model.utility({"Price": f"v{v}", "Colour": c}) == pytest.approx(
                expected, abs=1e-12
            )
        assert constituency.mandate.reservation == 0.25


def test_wide_integer_range_is_binned(tmp_path: Path) -> None:
    _write_int_domain(tmp_path, 0, 1000)
    result = import_genius(tmp_path)
    price = result.issues[0]
    assert price.binned and price.bounds == (0, 1000)
    assert [o.integer for o in price.options] == [
        0,
        100,
        200,
        300,
        400,
        500,
        600,
        700,
        800,
        900,
        1000,
    ]


# -- bad input: an error naming the file and the element -------------------------------------


def _laptop_copy(tmp_path: Path) -> Path:
    source = _folder("anac", "y2011", "Laptop")
    for f in source.glob("*.xml"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_malformed_xml_names_the_file_and_position(tmp_path: Path) -> None:
    folder = _laptop_copy(tmp_path)
    (folder / "laptop_seller_utility.xml").write_text(
        "<utility_space><objective>\n<issue index='1'>\n</utility_space>"
    )
    with pytest.raises(GeniusImportError) as caught:
        import_genius(folder)
    message = str(caught.value)
    assert (
        "laptop_seller_utility.xml" in message
        and "line 3" in message
        and "not well-formed" in message
    )


def test_missing_evaluation_names_the_item(tmp_path: Path) -> None:
    folder = _laptop_copy(tmp_path)
    path = folder / "laptop_buyer_utility.xml"
    path.write_text(
        path.read_text().replace(
            'evaluation="20" description="quality laptop"', 'description="quality laptop"'
        )
    )
    with pytest.raises(GeniusImportError) as caught:
        import_genius(folder)
    err = caught.value
    assert err.file.endswith("laptop_buyer_utility.xml")
    assert (
        "<issue index='1' name='Laptop'>" in err.element
        and "<item value='Macintosh'>" in err.element
    )
    assert "no evaluation" in err.reason


def test_missing_weight_and_bad_numbers_name_the_element(tmp_path: Path) -> None:
    folder = _laptop_copy(tmp_path)
    path = folder / "laptop_buyer_utility.xml"
    text = path.read_text()
    path.write_text(
        text.replace(
            '<weight index="3" value="0.1767567099260568">', '<weight index="3" value="heavy">'
        )
    )
    with pytest.raises(
        GeniusImportError,
        match=r"laptop_buyer_utility\.xml: <objective> <weight index='3' value='heavy'>: attribute value='heavy' is not a number",
    ):
        import_genius(folder)
    path.write_text(
        text.replace(
            '<weight index="3" value="0.1767567099260568">', '<weight index="4" value="0.17">'
        )
    )
    with pytest.raises(
        GeniusImportError,
        match=r"<weight index='3'>: missing: no weight for issue 'External Monitor'",
    ):
        import_genius(folder)


def test_unsupported_issue_type_and_missing_domain(tmp_path: Path) -> None:
    folder = _laptop_copy(tmp_path)
    domain = folder / "laptop_domain.xml"
    domain.write_text(
        domain.read_text().replace('name="Harddisk" type="discrete"', 'name="Harddisk" type="real"')
    )
    with pytest.raises(
        GeniusImportError,
        match=r"laptop_domain\.xml: <objective> <issue index='2' name='Harddisk'>: issue type 'real'",
    ):
        import_genius(folder)
    domain.unlink()
    with pytest.raises(GeniusImportError, match="expected exactly one domain file"):
        import_genius(folder)


def test_malformed_json_names_the_file_and_field(tmp_path: Path) -> None:
    source = _folder("geniusweb", "Party")
    for f in source.glob("*.json"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "party2.json").write_text('{"LinearAdditiveUtilitySpace": {"issueUtilities": ')
    with pytest.raises(
        GeniusImportError, match=r"party2\.json: JSON line 1, column \d+: not valid JSON"
    ):
        import_genius(tmp_path)
    doc = json.loads((source / "party2.json").read_text())
    del doc["LinearAdditiveUtilitySpace"]["issueUtilities"]["Music"]["discreteutils"][
        "valueUtilities"
    ]["DJ"]
    (tmp_path / "party2.json").write_text(json.dumps(doc))
    with pytest.raises(GeniusImportError) as caught:
        import_genius(tmp_path)
    assert caught.value.file.endswith("party2.json")
    assert (
        caught.value.element
        == "LinearAdditiveUtilitySpace.issueUtilities.Music.discreteutils.valueUtilities.DJ"
    )


# -- the CLI -------------------------------------------------------------------------------


def test_cli_writes_session_and_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "out" / "laptop.yaml"
    runner = CliRunner()
    result = runner.invoke(
        import_app,
        ["genius", str(_folder("anac", "y2011", "Laptop")), "-o", str(out), "--deadline", "40"],
    )
    assert result.exit_code == 0, result.output
    spec, _ = load_session(out)
    assert spec.protocol.params == {"deadline_rounds": 40}
    side = json.loads((tmp_path / "out" / "laptop.genius.json").read_text())
    assert side["outcome_space_size"] == 27
    assert [p["discount_factor"] for p in side["parties"]] == [0.42441038, 0.42441038]
    assert out.read_text().startswith("# Imported by `accord import genius`")


def test_cli_reports_errors_without_writing(tmp_path: Path) -> None:
    out = tmp_path / "x.yaml"
    runner = CliRunner()
    result = runner.invoke(import_app, ["genius", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 2
    assert "holds no Genius XML" in result.output
    result = runner.invoke(
        import_app,
        ["genius", str(_folder("anac", "y2011", "Laptop")), "-o", str(out), "--strategy", "nope"],
    )
    assert result.exit_code == 2 and "unknown strategy 'nope'" in result.output
    assert not out.exists()
