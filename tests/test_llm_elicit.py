"""`accord elicit`: a scripted interviewer (FunctionModel) and a scripted person (CliRunner
input) produce a values card that passes the quality check, confirmed or edited, saved."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic_ai.messages import ModelRequest, UserPromptPart
from typer.testing import CliRunner

from accord.cli_llm import elicit_app
from accord.elicit import CardDraft, card_problems, save_card
from constituencies import Constituency, ValuesCard
from constituencies.quality import check_card
from tests.llm_conftest import Scripted, call_tool, no_model_requests, sequence  # noqa: F401

CONTEXT = "When deciding how public land is used"
GOOD = {
    "title": "Shared digging",
    "description": "Working the same soil as neighbours one would not otherwise meet.",
    "policies": [
        "CONVERSATIONS that start over a shared task",
        "MOMENTS when a stranger hands you a tool",
        "SIGNS of a season's work visible to passers-by",
        "OPPORTUNITIES to learn a neighbour's name while working",
    ],
}
BAD = {"title": "Gardens", "description": "Gardens are good.", "policies": ["notice the birds", "GARDENS"]}
STORY = "We turned the empty lot into a garden last spring."
ATTENTION = "The way people talked to each other while digging."


def last_user_text(messages) -> str:  # noqa: ANN001
    for m in reversed(messages):
        if isinstance(m, ModelRequest):
            for p in m.parts:
                if isinstance(p, UserPromptPart) and isinstance(p.content, str):
                    return p.content
    return ""


def interviewer(*cards: dict) -> Scripted:  # noqa: ANN001
    return Scripted(
        sequence(
            call_tool("ask", question="Tell me about a time you chose how a shared place was used, and it felt right."),
            call_tool("ask", question="What did you pay attention to in that moment?"),
            *(call_tool("write_card", **card) for card in cards),
        )
    )


def elicit(out: Path, user_input: str, *extra: str):  # noqa: ANN201
    args = ["--out", str(out), "--model", "scripted", "--context", CONTEXT, *extra]
    return CliRunner().invoke(elicit_app, args, input=user_input)


def test_an_interview_writes_a_card_that_passes_the_quality_check(tmp_path: Path) -> None:
    out = tmp_path / "residents.yaml"
    with interviewer(BAD, GOOD) as model:
        result = elicit(out, f"{STORY}\n{ATTENTION}\ny\n", "--constituent", "r01", "--constituency", "residents")
    assert result.exit_code == 0, result.output
    assert model.calls == 4  # two questions, a card that failed the check, the card
    # One question at a time, each answer fed back in.
    assert "Tell me about a time" in result.output and "What did you pay attention to" in result.output
    assert last_user_text(model.seen[1]) == STORY
    assert last_user_text(model.seen[2]) == ATTENTION
    retry = last_user_text(model.seen[3])
    assert retry.startswith("The card does not pass the quality check:")
    assert "has 2 attentional policies; a card needs 3 to 7" in retry
    assert "does not start with a capitalised noun phrase" in retry
    assert "has no qualifier" in retry
    doc = yaml.safe_load(out.read_text())
    constituency = Constituency.model_validate(doc)
    assert constituency.id == "residents"
    card = constituency.card("shared-digging")
    assert check_card(card).ok
    assert card.policies == GOOD["policies"] and card.contexts == [CONTEXT]
    assert doc["constituents"] == [{"id": "r01", "holds": ["shared-digging"]}]
    assert "Saved card shared-digging" in result.output


def test_the_person_can_edit_title_description_and_each_policy(tmp_path: Path) -> None:
    out = tmp_path / "c.yaml"
    keystrokes = "\n".join(
        [
            STORY, ATTENTION,
            "n",                      # not as it stands
            "y",                      # edit it
            "Digging together",       # title
            "",                       # description kept
            "", "-", "", "",          # policies: keep, remove the second, keep, keep
            "PLACES where tools are shared without asking",  # one more
            "",                       # no more
            "y",                      # save
        ]
    ) + "\n"
    with interviewer(GOOD):
        result = elicit(out, keystrokes, "--card-id", "dig")
    assert result.exit_code == 0, result.output
    card = Constituency.model_validate(yaml.safe_load(out.read_text())).card("dig")
    assert card.title == "Digging together"
    assert card.description == GOOD["description"]
    assert card.policies == [
        GOOD["policies"][0], GOOD["policies"][2], GOOD["policies"][3],
        "PLACES where tools are shared without asking",
    ]


def test_the_interviewer_must_write_the_card_after_the_last_question(tmp_path: Path) -> None:
    def curious(messages, info):  # noqa: ANN001, ANN202
        names = [t.name for t in info.output_tools]
        if names == ["write_card"]:
            return call_tool("write_card", **GOOD)
        return call_tool("ask", question="And then?")

    with Scripted(curious) as model:
        result = elicit(tmp_path / "c.yaml", "a\nb\nc\ny\n", "--max-questions", "3")
    assert result.exit_code == 0, result.output
    assert model.calls == 4 and result.output.count("And then?") == 3


def test_a_card_is_appended_to_an_existing_constituency_file(tmp_path: Path) -> None:
    out = tmp_path / "residents.yaml"
    out.write_text(
        "# our cards\nid: residents\ncards:\n"
        "  - id: shared-digging\n    title: Older card\n    description: An older card.\n"
        "    policies: [MOMENTS when it rains, SIGNS of spring in the trees, PLACES where people sit]\n"
        "constituents:\n  - {id: r01, holds: [shared-digging]}\n"
    )
    with interviewer(GOOD):
        result = elicit(out, f"{STORY}\n{ATTENTION}\ny\n", "--constituent", "r01")
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    assert [c["id"] for c in doc["cards"]] == ["shared-digging", "shared-digging-2"]
    assert doc["constituents"] == [{"id": "r01", "holds": ["shared-digging", "shared-digging-2"]}]
    assert (tmp_path / "residents.yaml.bak").read_text().startswith("# our cards")
    not_a_constituency = tmp_path / "session.yaml"
    not_a_constituency.write_text("id: s\nagenda: []\n")
    card = ValuesCard(id="x", **GOOD)
    with pytest.raises(Exception, match="not a constituency file"):
        save_card(not_a_constituency, card)


def test_discarding_saves_nothing(tmp_path: Path) -> None:
    with interviewer(GOOD):
        result = elicit(tmp_path / "c.yaml", f"{STORY}\n{ATTENTION}\nn\nn\n")
    assert result.exit_code == 1 and "Nothing saved" in result.output
    assert not (tmp_path / "c.yaml").exists()


def test_a_missing_key_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = CliRunner().invoke(elicit_app, ["--out", str(tmp_path / "c.yaml"), "--model", "anthropic:claude-sonnet-4-5"])
    assert result.exit_code == 2
    assert "needs an API key: set ANTHROPIC_API_KEY" in " ".join(result.output.split())


def test_quality_problems_are_reported_per_policy() -> None:
    card, errors, warnings = card_problems(CardDraft(**BAD), "gardens", [])
    assert card is None
    assert any(e.startswith("policy 1 ('notice the birds') does not start with") for e in errors)
    card, errors, warnings = card_problems(CardDraft(**GOOD), "ok", [CONTEXT])
    assert card is not None and not errors
