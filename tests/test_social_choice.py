"""Weighted Schulze on textbook profiles, its tie rule, and the other rules via pref_voting."""

from __future__ import annotations

import random

import pytest

from protocols.social_choice import Ballot, ballot_problem, rule_problem, schulze, tally

# Wikipedia, "Schulze method", the 45-voter example (also Schulze 2011): winner E.
WIKIPEDIA = [
    (5, "ACBED"),
    (5, "ADECB"),
    (8, "BEDAC"),
    (3, "CABED"),
    (7, "CAEBD"),
    (2, "CBADE"),
    (7, "DCEBA"),
    (8, "EBADC"),
]
ABCDE = list("ABCDE")


def ballots(profile: list[tuple[float, str]]) -> list[Ballot]:
    return [Ballot(list(order), weight) for weight, order in profile]


def expanded(profile: list[tuple[int, str]]) -> list[Ballot]:
    return [Ballot(list(order)) for weight, order in profile for _ in range(weight)]


def test_wikipedia_45_voters_pairwise_paths_and_winner() -> None:
    result = schulze(ABCDE, ballots(WIKIPEDIA))
    d = [[result.d[x].get(y) for y in ABCDE] for x in ABCDE]
    assert d == [
        [None, 20, 26, 30, 22],
        [25, None, 16, 33, 18],
        [19, 29, None, 17, 24],
        [15, 12, 28, None, 14],
        [23, 27, 21, 31, None],
    ]
    p = [[result.p[x].get(y) for y in ABCDE] for x in ABCDE]
    assert p == [
        [None, 28, 28, 30, 24],
        [25, None, 28, 33, 24],
        [25, 29, None, 29, 24],
        [25, 28, 28, None, 24],
        [25, 28, 28, 31, None],
    ]
    assert result.winners == ["E"] and result.winner == "E"
    assert result.ranking == ["E", "A", "C", "B", "D"]


def test_weighted_ballots_count_as_repeated_ballots() -> None:
    assert schulze(ABCDE, ballots(WIKIPEDIA)) == schulze(ABCDE, expanded(WIKIPEDIA))
    rng = random.Random("social-choice:weights")
    for _ in range(50):
        cands = list("PQRST")[: rng.randint(2, 5)]
        profile = [(rng.randint(1, 4), "".join(rng.sample(cands, len(cands)))) for _ in range(rng.randint(1, 6))]
        assert schulze(cands, ballots(profile)) == schulze(cands, expanded(profile))


def test_tally_reports_rule_margins_and_weight() -> None:
    result = tally("schulze", ABCDE, ballots(WIKIPEDIA))
    assert result.winner == "E" and result.tied == ["E"] and result.ranking == ["E", "A", "C", "B", "D"]
    assert result.total_weight == 45 and result.ballots == 8
    # p[E][A] - p[A][E] = 25 - 24: E's narrowest beatpath win.
    assert (result.beatpath, result.beatpath_rival) == (1, "A")
    # E is no Condorcet winner: C beats it head to head 24 to 21.
    assert (result.head_to_head, result.head_to_head_rival) == (-3, "C")
    text = result.describe()
    assert "schulze winner E" in text and "beatpath margin 1 over A" in text
    assert "loses to C by 3" in text and "total weight 45" in text


def test_a_condorcet_winner_wins_and_beats_everyone_head_to_head() -> None:
    result = tally("schulze", ["x", "y", "z"], ballots([(2, "yxz"), (2, "xzy"), (1, "zxy")]))
    assert result.winner == "x" and result.head_to_head is not None and result.head_to_head > 0


def test_a_perfect_cycle_is_a_tie_won_by_the_first_listed() -> None:
    cycle = ballots([(1, "abc"), (1, "bca"), (1, "cab")])
    result = schulze(["a", "b", "c"], cycle)
    assert result.winners == ["a", "b", "c"] and result.ranking == ["a", "b", "c"]
    assert schulze(["c", "a", "b"], cycle).ranking == ["c", "a", "b"]
    t = tally("schulze", ["b", "c", "a"], cycle)
    assert t.winner == "b" and t.tied == ["b", "c", "a"] and t.beatpath == 0
    assert "tie went to the first listed" in t.describe()


def test_tie_rule_only_breaks_real_ties() -> None:
    # b beats a, so listing a first does not help it.
    result = schulze(["a", "b"], ballots([(2, "ba"), (1, "ab")]))
    assert result.winners == ["b"] and result.ranking == ["b", "a"]


def test_ranking_is_a_linear_extension_of_the_schulze_order() -> None:
    rng = random.Random("social-choice:ranking")
    for _ in range(40):
        cands = [f"k{i}" for i in range(rng.randint(2, 7))]
        profile = [
            (rng.choice([0.5, 1, 2, 3.25]), rng.sample(cands, len(cands))) for _ in range(rng.randint(1, 9))
        ]
        result = schulze(cands, [Ballot(order, w) for w, order in profile])
        pos = {c: i for i, c in enumerate(result.ranking)}
        assert sorted(result.ranking) == sorted(cands)
        for x in cands:
            for y in cands:
                if x != y and result.beats(x, y):
                    assert pos[x] < pos[y]
        assert result.winner in result.winners
        assert result.winner == next(c for c in cands if c in result.winners)


def test_decimal_weights_are_exact() -> None:
    # 0.1 + 0.2 against 0.3 is a tie, not a float accident.
    t = tally("schulze", ["a", "b"], [Ballot(["a", "b"], 0.1), Ballot(["a", "b"], 0.2), Ballot(["b", "a"], 0.3)])
    assert t.tied == ["a", "b"] and t.head_to_head == 0
    t = tally("schulze", ["b", "a"], [Ballot(["a", "b"], 0.1), Ballot(["a", "b"], 0.2), Ballot(["b", "a"], 0.3)])
    assert t.winner == "b"


def test_weights_can_decide() -> None:
    few_but_many = [Ballot(["a", "b"], 1), Ballot(["a", "b"], 1), Ballot(["b", "a"], 3)]
    assert tally("schulze", ["a", "b"], few_but_many).winner == "b"


@pytest.mark.parametrize(
    ("ranking", "reason"),
    [
        (["a", "b", "z"], "unknown candidate(s): z"),
        (["a", "a", "b", "c"], "ranks a more than once"),
        (["a", "b"], "leaves out c"),
        (["c", "b", "a"], None),
    ],
)
def test_ballot_problems(ranking: list[str], reason: str | None) -> None:
    problem = ballot_problem(ranking, ["a", "b", "c"])
    assert problem == reason if reason is None else reason in (problem or "")


def test_bad_profiles_are_refused() -> None:
    with pytest.raises(ValueError, match="no ballots"):
        schulze(["a", "b"], [])
    with pytest.raises(ValueError, match="leaves out"):
        schulze(["a", "b"], [Ballot(["a"])])
    with pytest.raises(ValueError, match="positive"):
        schulze(["a", "b"], [Ballot(["a", "b"], 0)])
    with pytest.raises(ValueError, match="distinct"):
        schulze(["a", "a"], [Ballot(["a", "a"])])
    assert rule_problem("dictator") is not None and rule_problem("schulze") is None


def test_a_single_candidate_wins_unopposed() -> None:
    t = tally("schulze", ["solo"], [Ballot(["solo"])])
    assert t.winner == "solo" and t.head_to_head is None


# -- other rules, through pref_voting ---------------------------------------------------


@pytest.fixture(scope="module")
def pref_voting():  # noqa: ANN201
    return pytest.importorskip("pref_voting")


def _borda(cands: list[str], profile: list[tuple[int, str]]) -> str:
    score = dict.fromkeys(cands, 0)
    for w, order in profile:
        for pos, c in enumerate(order):
            score[c] += w * (len(cands) - 1 - pos)
    return max(cands, key=lambda c: (score[c], -cands.index(c)))


def test_other_rules_on_the_wikipedia_profile(pref_voting) -> None:  # noqa: ANN001
    b = ballots(WIKIPEDIA)
    # First preferences A 10, B 8, C 12, D 7, E 8: C leads and wins the runoff too.
    assert tally("plurality", ABCDE, b).winner == "C"
    assert tally("instant-runoff", ABCDE, b).winner == "C"
    # Copeland: E beats A, B and D and loses only to C.
    assert tally("copeland", ABCDE, b).winner == "E"
    # Minimax: E's worst defeat (24 for C) is the smallest.
    assert tally("minimax", ABCDE, b).winner == "E"
    # Ranked pairs locks B>D, E>D, A>D, C>B, A>C, C>E (skipping cycles): A on top.
    assert tally("ranked-pairs", ABCDE, b).winner == "A"
    assert tally("borda", ABCDE, b).winner == _borda(ABCDE, WIKIPEDIA)


def test_other_rules_use_weights_and_the_tie_rule(pref_voting) -> None:  # noqa: ANN001
    weighted = [Ballot(["a", "b", "c"], 1), Ballot(["b", "a", "c"], 2.5)]
    for rule in ("plurality", "borda", "instant-runoff", "minimax", "copeland", "ranked-pairs"):
        assert tally(rule, ["a", "b", "c"], weighted).winner == "b", rule
    tied = [Ballot(["a", "b"], 1), Ballot(["b", "a"], 1)]
    for rule in ("plurality", "borda", "instant-runoff", "minimax", "copeland", "ranked-pairs"):
        assert tally(rule, ["a", "b"], tied).winner == "a", rule
        assert tally(rule, ["b", "a"], tied).winner == "b", rule


def test_schulze_agrees_with_pref_voting_beat_path(pref_voting) -> None:  # noqa: ANN001
    from pref_voting.profiles import Profile
    from pref_voting.voting_methods import beat_path

    rng = random.Random("social-choice:cross-check")
    for _ in range(60):
        n = rng.randint(2, 6)
        cands = [f"k{i}" for i in range(n)]
        rows = [rng.sample(range(n), n) for _ in range(rng.randint(1, 8))]
        counts = [rng.randint(1, 5) for _ in rows]
        ours = schulze(cands, [Ballot([cands[i] for i in r], w) for r, w in zip(rows, counts, strict=True)])
        theirs = beat_path(Profile(rows, rcounts=counts))
        assert ours.winners == [cands[i] for i in sorted(theirs)]
