"""A malformed session file: one clear error naming the file and field; nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from accord.cli import app
from accord.session_file import SessionFileError, load_session
from tests.conftest import FIXTURES

runner = CliRunner()


def _tiny() -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / "tiny.yaml").read_text())


def _drop_agenda(doc: dict[str, Any]) -> None:
    del doc["agenda"]


def _unknown_option(doc: dict[str, Any]) -> None:
    doc["assessments"].append({"option": "park/skatepark", "card": "n-quiet", "score": 0.2})


def _unknown_card(doc: dict[str, Any]) -> None:
    doc["assessments"].append({"option": "park/garden", "card": "nobody", "score": 0.2})


def _one_policy(doc: dict[str, Any]) -> None:
    doc["constituencies"][0]["cards"][0]["policies"] = ["MOMENTS of quiet"]


def _duplicate_card(doc: dict[str, Any]) -> None:
    cards = doc["constituencies"][0]["cards"]
    cards.append(dict(cards[0]))


def _duplicate_constituency(doc: dict[str, Any]) -> None:
    doc["constituencies"][1]["id"] = doc["constituencies"][0]["id"]


def _score_out_of_range(doc: dict[str, Any]) -> None:
    doc["assessments"][0]["score"] = 3


def _bad_red_line(doc: dict[str, Any]) -> None:
    doc["constituencies"][0]["mandate"]["red_lines"] = [{"park": "casino"}]


def _unknown_protocol(doc: dict[str, Any]) -> None:
    doc["protocol"] = {"name": "telepathy"}


def _bad_protocol_param(doc: dict[str, Any]) -> None:
    doc["protocol"]["deadline_rounds"] = 0


def _unknown_strategy(doc: dict[str, Any]) -> None:
    doc["delegates"]["shops"] = {"strategy": "bribery"}


def _context_typo(doc: dict[str, Any]) -> None:
    doc["constituencies"][0]["cards"][0]["contexts"] = ["When deciding how public land is usd"]


def _duplicate_assessment(doc: dict[str, Any]) -> None:
    doc["assessments"].append(dict(doc["assessments"][0]))


CASES = {
    "missing agenda": (_drop_agenda, "agenda", "Field required"),
    "assessment of unknown option": (_unknown_option, "assessments[15].option", "skatepark"),
    "assessment of unknown card": (_unknown_card, "assessments[15].card", "nobody"),
    "card with one policy": (_one_policy, "constituencies.0.cards.0.policies", "at least 3"),
    "duplicate card ids": (_duplicate_card, "constituencies.0", "duplicate card ids: n-quiet"),
    "duplicate constituency ids": (_duplicate_constituency, "constituencies", "duplicate id"),
    "score out of range": (_score_out_of_range, "assessments.0.score", "less than or equal to 1"),
    "red line on unknown option": (_bad_red_line, "mandate.red_lines[0]", "casino"),
    "unknown protocol": (_unknown_protocol, "protocol.name", "telepathy"),
    "bad protocol parameter": (_bad_protocol_param, "protocol.deadline_rounds", "greater than or equal to 1"),
    "unknown strategy": (_unknown_strategy, "delegates.shops.strategy", "bribery"),
    "context typo": (_context_typo, "cards.n-quiet.contexts", "is not the context of any agenda issue"),
    "duplicate assessment": (_duplicate_assessment, "assessments[15]", "repeats assessments[0]"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_file_gets_one_clear_error_and_writes_nothing(case: str, tmp_path: Path) -> None:
    mutate, field, words = CASES[case]
    doc = _tiny()
    mutate(doc)
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    ledger = tmp_path / "ledger.db"
    out = runner.invoke(app, ["run", str(path), "--ledger", str(ledger), "--quiet"])
    assert out.exit_code == 2, out.output
    message = out.output
    assert str(path) in message.replace("\n", "")
    assert field in message, message
    assert words in message, message
    assert "Traceback" not in message
    assert not ledger.exists(), "a session that cannot start must not touch the ledger"


def test_not_yaml_at_all(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("agenda: [unclosed\n")
    with pytest.raises(SessionFileError, match="broken.yaml"):
        load_session(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SessionFileError, match="file not found"):
        load_session(tmp_path / "nope.yaml")


def test_json_is_accepted(tmp_path: Path) -> None:
    import json

    path = tmp_path / "s.json"
    path.write_text(json.dumps(_tiny()))
    spec, _ = load_session(path)
    assert spec.id == "tiny"


def test_constituency_by_path(tmp_path: Path) -> None:
    doc = _tiny()
    (tmp_path / "parents.yaml").write_text(yaml.safe_dump(doc["constituencies"][2]))
    doc["constituencies"][2] = {"path": "parents.yaml"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    spec, _ = load_session(path)
    assert spec.constituencies[2].id == "parents"
