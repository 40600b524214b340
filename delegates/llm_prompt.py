"""What an LLM delegate is told: pure functions from (value model, mandate, agenda, call,
history) to prompt text. Nothing here calls a model, so prompts can be read, tested and
measured (docs/llm.md estimates a session's tokens from them).

The prompt has two parts. The *instructions* are fixed for a delegate and a session: who
it speaks for and what a values card is (after the Meaning Alignment Institute), every
card with its attentional policies, contexts and weights, how each option bears on each
card, the mandate, the agenda and the rules for justifying a move. The *turn prompt*
changes at every call: what is on the table (with its worth to the delegate, card by
card), which moves are allowed, the round and deadline, and what the delegate has seen so
far.

Figures are shown with 6 decimals: the validator accepts a cited figure within 1e-6 of the
value model's own, so a model that copies them is always right.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from constituencies import Mandate, ValueModel
from protocols.agenda import Agenda
from protocols.events import Call

#: Digits shown for utilities and contributions (the validator's tolerance is 1e-6).
DIGITS = 6

#: How each move kind is described to the model (its output tool's description).
MOVE_GUIDE: dict[str, str] = {
    "propose": (
        "Put a complete outcome on the table as your offer: `offer` names one option for "
        "EVERY issue of the agenda. The justification is about that offer."
    ),
    "accept": (
        "Accept the outcome on the table: `offer` must repeat the standing offer exactly. "
        "The justification is about that offer."
    ),
    "reject": (
        "Decline the outcome put to the vote: `offer` must repeat it exactly. The "
        "justification is about that outcome."
    ),
    "rank": (
        "A ballot over the candidates, best first: `ranking` lists every candidate id exactly "
        "once. The justification is about your top candidate's outcome."
    ),
    "critique": (
        "Say what you would change in the candidate statement and why (`text`), naming it in "
        "`candidate`; `suggestion` may give a complete amended outcome you would prefer. The "
        "justification is about the candidate's outcome as it stands."
    ),
    "votes": (
        "Your conditional votes on offers on the table (possibly none): each vote repeats one "
        "offer exactly and says between how many members (`min_power`..`max_power`, you "
        "included) the coalition accepting it must have. Each vote carries a justification "
        "about its own offer; the overall justification is about the best offer you vote for."
    ),
}


def fmt(x: float) -> str:
    return f"{x:+.{DIGITS}f}"


def outcome_json(outcome: Mapping[str, str]) -> str:
    """An outcome as compact JSON, issues in the given order: what the model copies."""
    return json.dumps(dict(outcome), separators=(", ", ": "))


# -- the instructions (fixed per delegate) ---------------------------------------------------


def role_text(model: ValueModel) -> str:
    c = model.constituency
    head = f"You are the delegate of a constituency, {c.label} ({c.id}), in a negotiation with other delegates."
    if c.description.strip():
        head += " " + c.description.strip()
    if c.constituents:
        head += f" You speak for {len(c.constituents)} constituent(s)."
    values = (
        "You carry a model of your constituents' values in the sense of the Meaning Alignment "
        "Institute: each values card is a source of meaning, described by its attentional "
        "policies (what a person attends to when choosing well), not a goal or a rule. How "
        "much an outcome is worth to your constituents is the weighted sum, over the cards, of "
        "how far it honours (+) or violates (-) each card: this figure is the *utility*, in "
        "[-1, 1]. It is computed for you (see the `utility` tool); you never invent it."
    )
    conduct = (
        "Argue for your constituents' values, honestly and in their terms; seek an agreement "
        "they can live with rather than holding out for everything. Every move you make is "
        "signed, logged and read by your constituents, with the cards you cite."
    )
    return "\n\n".join([head, values, conduct])


def cards_text(model: ValueModel) -> str:
    c = model.constituency
    support = c.support()
    lines = ["## Your values cards"]
    for card in c.cards:
        lines.append(f"- {card.id}: \"{card.title}\" - {card.description}")
        lines.append("  Attends to: " + "; ".join(card.policies))
        where = ", ".join(f'"{x}"' for x in card.contexts) if card.contexts else "every context"
        total = sum(p.weight for p in c.constituents)
        held = f"; held by {support[card.id]:g} of {total:g} (weighted) constituents" if total else ""
        lines.append(f"  Applies in: {where}{held}")
    return "\n".join(lines)


def weights_text(model: ValueModel, agenda: Agenda) -> str:
    lines = [
        "## How much each card counts, issue by issue",
        "utility = sum over issues of (issue share x sum over cards of card weight x score)",
    ]
    for issue in agenda.issues:
        ctx = model.issue_contexts.get(issue.id)
        share = model.issue_shares.get(issue.id, 0.0)
        weights = model.constituency.card_weights(ctx)
        listed = ", ".join(f"{card} {w:.3f}" for card, w in weights.items() if w > 0) or "no card applies"
        where = f' (context "{ctx}")' if ctx else ""
        lines.append(f"- {issue.id}{where}: share {share:.3f}; card weights: {listed}")
    return "\n".join(lines)


def assessments_text(model: ValueModel, agenda: Agenda) -> str:
    lines = [
        "## How each option bears on your cards (score in [-1, 1]; unlisted pairs score 0)"
    ]
    by_option: dict[tuple[str, str], list[str]] = {}
    for a in model.assessments:
        said = f"{a.card} {a.score:+.2f}"
        who = a.by if a.by != "model" else f"model {a.model}"
        why = a.rationale.strip().rstrip(".")
        note = f" ({why}; by {who})" if why else f" (by {who})"
        by_option.setdefault((a.issue, a.option_id), []).append(said + note)
    for issue in agenda.issues:
        for option in issue.options:
            found = by_option.get((issue.id, option.id))
            if found:
                lines.append(f"- {issue.id}={option.id}: " + "; ".join(found))
    if len(lines) == 1:
        lines.append("(no assessments: every outcome is worth 0)")
    return "\n".join(lines)


def mandate_text(mandate: Mandate) -> str:
    lines = [
        "## Your mandate",
        "The runtime enforces it: a move across it is refused, replaced and logged as a refusal.",
    ]
    if mandate.red_lines:
        for line in mandate.red_lines:
            lines.append(f"- Red line: never propose or accept an outcome with {line.describe()}.")
    else:
        lines.append("- No red lines.")
    if mandate.reservation > -1.0:
        lines.append(
            f"- Reservation level: never propose or accept an outcome worth less than "
            f"{mandate.reservation:+.3f} to you (no agreement is better)."
        )
    for rule in mandate.ratification:
        lines.append(
            f"- Needs your constituents' ratification before you propose or accept it: {rule.describe()}."
        )
    return "\n".join(lines)


def agenda_text(agenda: Agenda) -> str:
    lines = ["## The agenda (an outcome picks one option for every issue)"]
    for issue in agenda.issues:
        ctx = f' [context: "{issue.context}"]' if issue.context else ""
        lines.append(f"- {issue.id}: {issue.description or issue.id}{ctx}")
        for option in issue.options:
            lines.append(f"  - {option.id}: {option.description or option.id}")
    return "\n".join(lines)


def best_outcomes_text(ranked: Sequence[tuple[float, Mapping[str, str]]], n: int) -> str:
    if n <= 0 or not ranked:
        return ""
    lines = [f"## Your {min(n, len(ranked))} best outcomes within the mandate (utility, outcome)"]
    for u, outcome in ranked[:n]:
        lines.append(f"- {fmt(u)} {outcome_json(outcome)}")
    worst = ranked[-1]
    lines.append(f"The worst outcome within your mandate is worth {fmt(worst[0])}.")
    return "\n".join(lines)


JUSTIFY_RULES = """## How to answer
Answer with exactly one move, using the output tool of its kind; only the kinds the call
allows are available. Every move carries a justification about one outcome (each move
kind says which):
- `utility`: the outcome's utility to you, exactly as the value model computes it;
- `cited`: every card with a non-zero contribution to it, each with its `contribution`,
  copied exactly (6 decimals are enough); they add up to `utility`;
- `rationale`: one to three sentences, in your constituents' terms, naming the cards
  (by title) that decide the matter.
Figures for what is on the table are given in the turn; for any other outcome, call the
`utility` tool first (it also says whether the outcome is within your mandate);
`find_outcomes` lists outcomes within your mandate from a utility level up, so you can
look for a concession that others may accept. Use only
issue and option ids from the agenda, and only your own card ids. An invalid move is sent
back to you with the reason; repeated invalid moves are replaced by a rule-based move."""


def instructions(
    model: ValueModel,
    mandate: Mandate,
    agenda: Agenda,
    best: Sequence[tuple[float, Mapping[str, str]]] = (),
    top: int = 5,
) -> str:
    """Everything fixed for a delegate in a session; `best` is its admissible outcomes,
    best first (DelegateView.space.admissible)."""
    parts = [
        role_text(model),
        agenda_text(agenda),
        cards_text(model),
        weights_text(model, agenda),
        assessments_text(model, agenda),
        mandate_text(mandate),
        best_outcomes_text(best, top),
        JUSTIFY_RULES,
    ]
    return "\n\n".join(p for p in parts if p)


# -- the turn prompt (changes at every call) --------------------------------------------------


def breakdown_text(model: ValueModel, outcome: Mapping[str, str]) -> str:
    """'utility +0.412000 = n-quiet +0.250000 + n-green +0.162000' (non-zero cards only)."""
    b = model.breakdown(outcome)
    parts = [f"{c.card} {fmt(c.contribution)}" for c in b.contributions if c.contribution != 0.0]
    return f"utility {fmt(b.utility)}" + (f" = {' + '.join(parts)}" if parts else " (no card is touched)")


def mandate_note(model: ValueModel, mandate: Mandate, outcome: Mapping[str, str]) -> str:
    why = mandate.violation(outcome, model.utility(outcome))
    return f"; OUTSIDE your mandate: {why}" if why else ""


def call_text(call: Call, model: ValueModel, mandate: Mandate, agenda: Agenda) -> str:
    lines = [
        f"## Your turn: round {call.round} of {call.deadline_round}"
        + (f", phase {call.phase}" if call.phase else ""),
        f"Allowed moves now: {', '.join(call.allowed)}.",
    ]
    rounds_left = call.deadline_round - call.round
    lines.append(
        f"{rounds_left} round(s) remain after this one; at the deadline without agreement "
        "the session ends with no agreement."
    )

    def worth(outcome: Mapping[str, str]) -> str:
        if agenda.problem_with(outcome):
            return f"(not a complete outcome: {agenda.problem_with(outcome)})"
        return breakdown_text(model, outcome) + mandate_note(model, mandate, outcome)

    if call.standing_offer is not None:
        by = f" (offered by {call.offered_by})" if call.offered_by else ""
        lines.append(f"On the table{by}: {outcome_json(call.standing_offer)}")
        lines.append(f"  Worth to you: {worth(call.standing_offer)}")
    if call.compare_to is not None:
        lines.append(f"It would replace: {outcome_json(call.compare_to)}")
        lines.append(f"  Worth to you: {worth(call.compare_to)}")
    for cand in call.candidates or []:
        lines.append(f"Candidate {cand.id}: {outcome_json(cand.outcome)}")
        if cand.text:
            lines.append(f"  Statement: {cand.text}")
        lines.append(f"  Worth to you: {worth(cand.outcome)}")
    for n, entry in enumerate(call.table or [], start=1):
        lines.append(f"Table offer {n} (by {entry.by}): {outcome_json(entry.offer)}")
        lines.append(f"  Worth to you: {worth(entry.offer)}")
    if call.note:
        lines.append(f"Note from the chair: {call.note}")
    lines.append("")
    lines.append("Move kinds allowed now:")
    for kind in call.allowed:
        lines.append(f"- {kind}: {MOVE_GUIDE.get(kind, '')}")
    return "\n".join(lines)


def history_text(history: Sequence[str]) -> str:
    if not history:
        return "## What you have seen so far\nNothing yet: this is your first turn."
    return "## What you have seen so far (oldest first)\n" + "\n".join(f"- {h}" for h in history)


def turn_prompt(
    call: Call, model: ValueModel, mandate: Mandate, agenda: Agenda, history: Sequence[str]
) -> str:
    return "\n\n".join([history_text(history), call_text(call, model, mandate, agenda)])


# -- retry messages and history lines ----------------------------------------------------------


def correct_figures(model: ValueModel, outcome: Mapping[str, str]) -> str:
    """The right figures to cite, for a retry message."""
    b = model.breakdown(outcome)
    cited = [
        {"card": c.card, "contribution": round(c.contribution, DIGITS)}
        for c in b.contributions
        if c.contribution != 0.0
    ]
    return (
        f"For {outcome_json(outcome)} the value model gives utility {round(b.utility, DIGITS)} "
        f"and cited = {json.dumps(cited)}; cite exactly these figures."
    )


def seen_line(call: Call, model: ValueModel, me: str) -> str | None:
    """A history line for what a call shows of the others' positions, if anything."""
    parts: list[str] = []
    if call.standing_offer is not None and call.offered_by and call.offered_by != me:
        parts.append(
            f"{call.offered_by} had on the table {outcome_json(call.standing_offer)} "
            f"(worth {fmt(model.utility(call.standing_offer))} to you)"
        )
    elif call.standing_offer is not None and not call.offered_by:
        parts.append(f"put to the vote: {outcome_json(call.standing_offer)}")
    for entry in call.table or []:
        if entry.by != me:
            parts.append(f"{entry.by} offered {outcome_json(entry.offer)}")
    if call.candidates:
        parts.append(f"{len(call.candidates)} candidate(s): {', '.join(c.id for c in call.candidates)}")
    if not parts:
        return None
    phase = f" {call.phase}" if call.phase else ""
    return f"round {call.round}{phase}: " + "; ".join(parts)


def move_line(call: Call, move: Mapping[str, object], via: str = "") -> str:
    """A history line for our own move (a move's JSON dump)."""
    kind = move.get("kind")
    what = ""
    if "offer" in move and isinstance(move["offer"], Mapping):
        what = " " + outcome_json(move["offer"])  # type: ignore[arg-type]
    elif kind == "rank":
        what = " " + " > ".join(move.get("ranking", []))  # type: ignore[arg-type]
    elif kind == "critique":
        what = f" {move.get('candidate')}"
    elif kind == "votes":
        what = f" ({len(move.get('votes', []))} vote(s))"  # type: ignore[arg-type]
    return f"round {call.round}: you made the move {kind}{what}{via}"


def estimate_tokens(texts: Iterable[str]) -> int:
    """A rough token count: characters / 4 (no tokenizer for Claude models is public)."""
    return sum(len(t) for t in texts) // 4
