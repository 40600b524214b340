"""Card quality after MAI's rubric (the checks that need no model), and canonical cards.

The rubric is MAI's `attentionPoliciesCriteria` / `valuesCardCriteria`
(github.com/meaningalignment/dft, `app/values-tools/prompt-segments.ts`): policies
"start with plural noun phrases ... a capitalized phrase that's the kind of thing to
attend to ('MOMENTS', 'SENSATIONS', 'CHOICES'), followed by a qualifier phrase"; "no
goals"; a source of meaning is not "a rule", "a norm"; "no poetry" ('meaningful',
'deep'). What text alone can decide is an error: 3 to 7 policies, no duplicates, a
capitalised head, a qualifier after it. What needs judgement is a warning, because the
heuristics misfire: whether the head is plural (mass nouns like 'CLARITY' are common in
MAI's own graph), and goal, rule or poetic wording.

Canonicalisation: constituents often hold the same card; cards whose normalised title
and policies (as a set) are equal collapse into one canonical card that remembers its
holders, so support is counted once per person and votes can be rewritten onto it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from constituencies.cards import ValuesCard
from constituencies.constituency import Constituent, WiserThanVote
from constituencies.hashing import content_hash
from constituencies.moral_graph import MAX_POLICIES, MIN_POLICIES, MoralGraph

_GOAL = re.compile(
    r"\b(in order to|so that|achiev(?:e|es|ed|ing)|(?:maxim|minim|optim)i[sz](?:e|es|ed|ing)"
    r"|ensur(?:e|es|ed|ing))\b",
    re.IGNORECASE,
)
_RULE = re.compile(
    r"\b(should|must|ought|never|always|ha(?:ve|s) to|needs? to)\b", re.IGNORECASE
)
_POETIC = re.compile(r"\b(meaningful\w*|deep|deeply|deeper)\b", re.IGNORECASE)
_IMPERATIVES = frozenset(
    "encourage promote foster ensure avoid make help provide give be do don't keep let try use "
    "ask tell show remember consider focus prioritize prioritise".split()
)
_DETERMINERS = frozenset("the a an their its his her our my your this these those".split())
_CONNECTORS = frozenset({"and", "or", "&", "of", "/"})
_IRREGULAR_PLURALS = frozenset(
    "people children men women data criteria phenomena media feet teeth mice geese "
    "persons folk police".split()
)


class QualityIssue(BaseModel):
    """One finding; `policy` is the index of the policy it concerns, if any."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    policy: int | None = None


class CardQualityReport(BaseModel):
    """Errors (the card breaks the rubric) and warnings (it probably does) for one card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card_id: str
    errors: list[QualityIssue] = Field(default_factory=list)
    warnings: list[QualityIssue] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_policies(card_id: str, policies: Sequence[str]) -> CardQualityReport:
    """Check a card's attentional policies, whatever their number (lenient input)."""
    errors: list[QualityIssue] = []
    warnings: list[QualityIssue] = []
    if not MIN_POLICIES <= len(policies) <= MAX_POLICIES:
        errors.append(
            QualityIssue(
                code="policy-count",
                message=f"has {len(policies)} attentional policies; "
                f"a card needs {MIN_POLICIES} to {MAX_POLICIES}",
            )
        )
    first_seen: dict[str, int] = {}
    for i, policy in enumerate(policies):
        key = normalise_text(policy)
        if key in first_seen:
            errors.append(
                QualityIssue(
                    code="duplicate-policy",
                    message=f"repeats policies[{first_seen[key]}]",
                    policy=i,
                )
            )
        else:
            first_seen[key] = i
        found_errors, found_warnings = _check_policy(policy)
        errors += [QualityIssue(code=c, message=m, policy=i) for c, m in found_errors]
        warnings += [QualityIssue(code=c, message=m, policy=i) for c, m in found_warnings]
    return CardQualityReport(card_id=card_id, errors=errors, warnings=warnings)


def check_card(card: ValuesCard) -> CardQualityReport:
    return check_policies(card.id, card.policies)


def check_moral_graph(graph: MoralGraph) -> list[CardQualityReport]:
    """A report for every value of a MAI graph, including those that cannot be cards."""
    return [
        check_policies(graph.card_id(value.id), value.evaluation_criteria)
        for value in graph.values
    ]


def policy_head(policy: str) -> tuple[str, str] | None:
    """(head noun phrase, qualifier) of a policy, or None when it has no capitalised head.

    The head is the leading run of UPPERCASE words (joined by and/or/of), after an
    optional determiner ("The child's ZONE ..."); failing that, a single capitalised
    first word ("Moments when ...").
    """
    words = policy.split()
    i = 0
    if len(words) > 1 and words[0].lower() in _DETERMINERS:
        i = 1
        while i < len(words) - 1 and _is_lower_possessive(words[i]):
            i += 1
    if i >= len(words):
        return None
    if _is_upper(words[i]):
        j = i + 1
        while j < len(words):
            if _is_upper(words[j]):
                j += 1
            elif (
                words[j].lower() in _CONNECTORS
                and j + 1 < len(words)
                and _is_upper(words[j + 1])
            ):
                j += 2
            else:
                break
    elif i == 0 and words[0][:1].isupper():
        j = 1
    else:
        return None
    return " ".join(words[i:j]), " ".join(words[j:])


def _check_policy(policy: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    split = policy_head(policy)
    if split is None:
        errors.append(
            ("no-head", "does not start with a capitalised noun phrase (e.g. 'MOMENTS when ...')")
        )
    else:
        head, qualifier = split
        if not re.search(r"[A-Za-z]", qualifier):
            errors.append(
                ("no-qualifier", f"'{head}' has no qualifier saying which of them to attend to")
            )
        if not any(_is_plural(part.split()[-1]) for part in _conjuncts(head)):
            warnings.append(
                ("not-plural", f"head '{head}' does not look plural ('MOMENTS', 'SIGNS', ...)")
            )
    first = policy.split()[0] if policy.split() else ""
    verb = first.strip(".,;:!").lower()
    if verb in _IMPERATIVES and not _is_upper(first):  # 'FOCUS on ...' is a noun head
        warnings.append(
            ("imperative", f"starts with the verb '{verb}': say what to attend to, not what to do")
        )
    for pattern, code, why in (
        (_GOAL, "instrumental", "reads like a goal"),
        (_RULE, "prescriptive", "reads like a rule or norm"),
        (_POETIC, "poetic", "vague praise; say what is worth attending to"),
    ):
        match = pattern.search(policy)
        if match:
            warnings.append((code, f"'{match.group(0)}' {why}"))
    return errors, warnings


def _conjuncts(head: str) -> list[str]:
    parts = re.split(r"\s+(?:and|or|&|/)\s+", head, flags=re.IGNORECASE)
    return [p for p in parts if p.strip()]


def _letters(word: str) -> str:
    return "".join(ch for ch in word if ch.isalpha())


def _is_upper(word: str) -> bool:
    letters = _letters(word.replace("'S", "").replace("’S", ""))
    return len(letters) >= 2 and letters.isupper()


def _is_lower_possessive(word: str) -> bool:
    return word[:1].islower() and word.rstrip(",").endswith(("'s", "’s", "s'", "s’"))


def _is_plural(word: str) -> bool:
    w = word.lower().strip(".,;:!?\"()")
    if w.endswith(("'s", "’s")):
        return False
    w = w.strip("'’")
    if w in _IRREGULAR_PLURALS:
        return True
    return w.endswith("s") and not w.endswith(("ss", "us", "is", "ness", "ous"))


def normalise_text(text: str) -> str:
    """Case, width, quote style, spacing and end punctuation do not change meaning."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    text = " ".join(text.casefold().split())
    return text.strip(" .;:,!")


def card_identity(card: ValuesCard) -> str:
    """A card's identity: hash of its normalised title and its set of normalised policies."""
    return content_hash(
        {
            "title": normalise_text(card.title),
            "policies": sorted(normalise_text(p) for p in card.policies),
        }
    )


class CanonicalCard(BaseModel):
    """One card standing for identical cards, with who holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card: ValuesCard = Field(description="The member with the smallest id, contexts merged.")
    identity: str
    merged: list[str] = Field(description="Ids of every card that collapsed into this one.")
    holders: list[str] = Field(description="Constituents holding any of them, sorted.")
    support: float = Field(description="Summed weight of the holders, each counted once.")


class Canonicalisation(BaseModel):
    """Canonical cards and the map from every original card id to its canonical id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cards: list[CanonicalCard]
    canonical_id: dict[str, str]

    def remap_votes(self, votes: Iterable[WiserThanVote]) -> list[WiserThanVote]:
        """Votes rewritten onto canonical ids; a vote between two merged cards is dropped."""
        out = []
        for vote in votes:
            less_wise = self.canonical_id.get(vote.less_wise, vote.less_wise)
            wiser = self.canonical_id.get(vote.wiser, vote.wiser)
            if less_wise != wiser:
                out.append(vote.model_copy(update={"less_wise": less_wise, "wiser": wiser}))
        return out


def canonicalise(
    cards: Iterable[ValuesCard], constituents: Iterable[Constituent] = ()
) -> Canonicalisation:
    """Collapse identical cards; the result does not depend on input order.

    Contexts merge: a member that applies everywhere (no contexts) makes the canonical
    card apply everywhere; otherwise it applies in the union of the members' contexts.
    """
    groups: dict[str, list[ValuesCard]] = {}
    for card in cards:
        groups.setdefault(card_identity(card), []).append(card)
    people = list(constituents)
    canonical_id: dict[str, str] = {}
    result: list[CanonicalCard] = []
    for identity, members in groups.items():
        members.sort(key=lambda c: c.id)
        ids = [c.id for c in members]
        if any(not c.contexts for c in members):
            contexts: list[str] = []
        else:
            contexts = sorted({ctx for c in members for ctx in c.contexts})
        holders = [p for p in people if any(h in ids for h in p.holds)]
        result.append(
            CanonicalCard(
                card=members[0].model_copy(update={"contexts": contexts}),
                identity=identity,
                merged=ids,
                holders=sorted(p.id for p in holders),
                support=sum(p.weight for p in holders),
            )
        )
        canonical_id.update({i: members[0].id for i in ids})
    result.sort(key=lambda c: c.card.id)
    return Canonicalisation(cards=result, canonical_id=canonical_id)
