"""Genius XML and GeniusWeb JSON negotiation domains -> an Accord session.

A domain folder holds one domain file (issues and their values) and two or more
preference profiles, one per party. Each profile becomes a constituency with a *thin*,
documented value model, built so that Accord's utility of every outcome equals the
profile's utility in Genius:

- one card per issue, `source: preference-derived`, restricted by `contexts` to that
  issue's context ("When deciding <issue name>"), held by one synthetic constituent
  `<party>-profile`; so in each issue's context exactly one card applies, with weight 1;
- `issue_weights` = the profile's issue weights, normalised to sum 1;
- the assessment of option v on issue i against that issue's card is the profile's
  per-issue utility of v:
    * Genius XML, discrete issue: evaluation(v) / the largest evaluation of the issue
      (Genius `EvaluatorDiscrete.normalize`; 0 when that largest is below 1e-5);
    * Genius XML, integer issue: offset + slope * (v - lowerbound), clamped to [0, 1]
      (Genius `EvaluatorInteger`); see "Integer issues" below;
    * GeniusWeb JSON: the value utility as written (GeniusWeb's LinearAdditiveUtilitySpace
      does not rescale per issue: utility = sum_i w_i * u_i(v), each u_i in [0, 1]).
  With these, Accord's utility = sum_i (w_i / sum w) * score_i(v): the Genius utility.
  Genius itself multiplies by the raw weights (and caps the sum at 1); the two differ only
  when a file's weights do not sum to 1 (Laptop, 2011 and 2013: 1.000052, a relative
  difference of 5.2e-5).

Mandate and time: the profile's reservation value becomes `mandate.reservation` (absent:
0, Genius's default; GeniusWeb: the utility of the profile's `reservationBid`). The
discount factor has no field in a session file: it is written into the constituency's
`description` and returned in `GeniusImport.profiles[*].discount_factor` (Genius
discounts a utility u agreed at normalised time t in [0, 1] to u * d**t; Accord does not
discount, so it is recorded, never applied).

Which file is the domain: the one whose utility space declares no `<weight>` (in XML), or
whose top level has `issuesValues` (in JSON); the file name does not matter.

Integer issues: no domain in the shared ANAC data uses them (every issue there is
discrete; `real` issues are refused with a clear error). An integer issue
`<issue type="integer" lowerbound=L upperbound=U>` becomes one option per integer when
there are at most `max_integer_values` (50) of them, else `integer_bins` (11) evenly
spaced integers from L to U inclusive; each option scores Genius's linear evaluation of
its integer, read from the profile's `<evaluator slope=.. offset=..>`. Binning changes the
outcome space (fewer outcomes), not the utility of the outcomes kept.

Ids: issue and value names are sanitised to Accord's id alphabet (see
`accord.importers.sanitise_id`); the original names stay in the descriptions and in
`GeniusImport.issues` (the mapping).

Deadline: ANAC 2010-2013 ran on a wall-clock deadline (180 s), not on rounds. Accord's
stacked alternating offers counts rounds (one turn per delegate), and time-dependent
strategies concede on round / deadline; the default of 100 rounds samples that curve in
steps of 0.01 and keeps a run short. Raise it (`--deadline`) for large domains such as Energy (390 625
outcomes) so that a concession-based strategy can explore more of the space.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from accord.importers import IdAllocator, ImporterError, fit_id, sanitise_id
from accord.session_file import DelegateSpec, ProtocolSpec, SessionSpec
from constituencies import Assessment, Constituency, Constituent, Mandate, ValuesCard
from protocols.agenda import Issue, Option

DEFAULT_DEADLINE_ROUNDS = 100
DEFAULT_STRATEGY = "boulware"
MAX_INTEGER_VALUES = 50
INTEGER_BINS = 11
PARTY_ID_MAX = 48  # leaves room for "-profile" and for "<party>.<issue>" card ids

PROFILE_POLICIES = (
    "EVALUATIONS that the imported preference profile gives each option of this issue",
    "DISTANCES between an option's evaluation and the best evaluation on this issue",
    "NUMBERS taken from a preference profile rather than reasons voiced by people",
)

Format = Literal["genius-xml", "geniusweb-json"]


class GeniusImportError(ImporterError):
    """A Genius or GeniusWeb file that cannot be imported (file, element, reason)."""


@dataclass(frozen=True)
class ImportedOption:
    id: str
    name: str
    integer: int | None = None


@dataclass(frozen=True)
class ImportedIssue:
    id: str
    name: str
    context: str
    options: tuple[ImportedOption, ...]
    index: int | None = None  # Genius XML `index`; None for GeniusWeb
    kind: Literal["discrete", "integer"] = "discrete"
    bounds: tuple[int, int] | None = None
    binned: bool = False


@dataclass(frozen=True)
class ImportedProfile:
    """One party's preference profile, as read and as turned into scores."""

    party: str
    name: str
    file: Path
    weights: dict[str, float]  # issue id -> weight as written
    scores: dict[str, dict[str, float]]  # issue id -> option id -> per-issue utility in [0, 1]
    rationales: dict[str, dict[str, str]]
    reservation: float
    reservation_note: str
    discount_factor: float | None
    reservation_bid: dict[str, str] | None = None

    @property
    def issue_weights(self) -> dict[str, float]:
        """The weights normalised to sum 1 (what the constituency's `issue_weights` holds)."""
        total = sum(self.weights.values())
        return {i: w / total for i, w in self.weights.items()}

    def utility(self, outcome: Mapping[str, str]) -> float:
        """The profile's utility of `outcome` (issue id -> option id), weights normalised."""
        shares = self.issue_weights
        return sum(shares[i] * self.scores[i][o] for i, o in outcome.items())


@dataclass(frozen=True)
class GeniusImport:
    """The session, and what the session file has no field for."""

    spec: SessionSpec
    format: Format
    folder: Path
    domain_file: Path
    domain_name: str
    issues: tuple[ImportedIssue, ...]
    profiles: tuple[ImportedProfile, ...]
    deadline_rounds: int
    notes: tuple[str, ...] = field(default=())

    @property
    def outcome_space_size(self) -> int:
        return math.prod(len(i.options) for i in self.issues)

    def profile(self, party: str) -> ImportedProfile:
        for p in self.profiles:
            if p.party == party:
                return p
        raise KeyError(party)

    def side_data(self) -> dict[str, Any]:
        """JSON-ready: the id mapping, reservations and discount factors (the sidecar)."""
        return {
            "kind": "accord-import/genius",
            "format": self.format,
            "folder": str(self.folder),
            "domain_file": self.domain_file.name,
            "domain_name": self.domain_name,
            "outcome_space_size": self.outcome_space_size,
            "deadline_rounds": self.deadline_rounds,
            "issues": [
                {
                    "id": i.id,
                    "name": i.name,
                    "genius_index": i.index,
                    "kind": i.kind,
                    "context": i.context,
                    "options": {o.id: o.name for o in i.options},
                    **({"bounds": list(i.bounds), "binned": i.binned} if i.bounds else {}),
                }
                for i in self.issues
            ],
            "parties": [
                {
                    "constituency": p.party,
                    "name": p.name,
                    "file": p.file.name,
                    "issue_weights": p.weights,
                    "reservation": p.reservation,
                    "reservation_note": p.reservation_note,
                    "reservation_bid": p.reservation_bid,
                    "discount_factor": p.discount_factor,
                }
                for p in self.profiles
            ],
            "notes": list(self.notes),
        }


# -- entry point ------------------------------------------------------------------------


def import_genius(
    folder: str | Path,
    *,
    deadline_rounds: int = DEFAULT_DEADLINE_ROUNDS,
    strategy: str = DEFAULT_STRATEGY,
    session_id: str | None = None,
    max_integer_values: int = MAX_INTEGER_VALUES,
    integer_bins: int = INTEGER_BINS,
) -> GeniusImport:
    """Read a Genius XML or GeniusWeb JSON domain folder into a session.

    Raises `GeniusImportError` naming the file, the element and the reason.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GeniusImportError(folder, "folder", "not a directory")
    xml_files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".xml")
    json_files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".json")
    if xml_files:
        fmt: Format = "genius-xml"
        domain_file, name, issues, profiles, notes = _read_xml_folder(
            folder, xml_files, max_integer_values, integer_bins
        )
    elif json_files:
        fmt = "geniusweb-json"
        domain_file, name, issues, profiles, notes = _read_json_folder(folder, json_files)
    else:
        raise GeniusImportError(
            folder, "folder", "holds no Genius XML (*.xml) or GeniusWeb JSON (*.json) files"
        )
    spec = _build_spec(
        folder, fmt, domain_file, name, issues, profiles, deadline_rounds, strategy, session_id
    )
    return GeniusImport(
        spec=spec,
        format=fmt,
        folder=folder,
        domain_file=domain_file,
        domain_name=name,
        issues=tuple(issues),
        profiles=tuple(profiles),
        deadline_rounds=deadline_rounds,
        notes=tuple(notes),
    )


# -- Genius XML -------------------------------------------------------------------------


def _parse_xml(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise GeniusImportError(
            path, f"XML line {line}, column {col}", f"not well-formed: {exc}"
        ) from None
    except OSError as exc:
        raise GeniusImportError(path, "file", f"cannot read: {exc}") from None


def _utility_space(root: ET.Element) -> ET.Element | None:
    if root.tag == "utility_space":
        return root
    if root.tag == "negotiation_template":
        return root.find("utility_space")
    return None


def _describe(el: ET.Element, parent: str = "") -> str:
    attrs = " ".join(
        f"{k}={el.get(k)!r}" for k in ("index", "name", "value") if el.get(k) is not None
    )
    here = f"<{el.tag}{' ' + attrs if attrs else ''}>"
    return f"{parent} {here}".strip()


def _attr_float(path: Path, el: ET.Element, attr: str, where: str) -> float:
    raw = el.get(attr)
    if raw is None:
        raise GeniusImportError(path, where, f"missing attribute {attr!r}")
    try:
        value = float(raw)
    except ValueError:
        raise GeniusImportError(path, where, f"attribute {attr}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise GeniusImportError(path, where, f"attribute {attr}={raw!r} is not a finite number")
    return value


def _attr_int(path: Path, el: ET.Element, attr: str, where: str) -> int:
    raw = el.get(attr)
    if raw is None:
        raise GeniusImportError(path, where, f"missing attribute {attr!r}")
    try:
        return int(raw.strip())
    except ValueError:
        raise GeniusImportError(
            path, where, f"attribute {attr}={raw!r} is not an integer"
        ) from None


def _issue_type(el: ET.Element) -> str:
    for attr in ("type", "etype", "vtype"):
        value = el.get(attr)
        if value:
            return value.strip().lower()
    return "discrete"


def _objective(path: Path, space: ET.Element) -> ET.Element:
    objective = space.find("objective")
    if objective is None:
        raise GeniusImportError(path, f"<{space.tag}>", "has no <objective> holding the issues")
    nested = objective.find("objective")
    if nested is not None:
        raise GeniusImportError(
            path,
            _describe(nested, "<objective>"),
            "nested objectives (an objective tree) are not supported; only issues directly "
            "under the root objective",
        )
    return objective


def _read_xml_folder(
    folder: Path, files: list[Path], max_integer_values: int, integer_bins: int
) -> tuple[Path, str, list[ImportedIssue], list[ImportedProfile], list[str]]:
    notes: list[str] = []
    domains: list[tuple[Path, ET.Element]] = []
    profiles: list[tuple[Path, ET.Element]] = []
    for path in files:
        root = _parse_xml(path)
        space = _utility_space(root)
        if space is None:
            if root.tag == "negotiation_template":
                raise GeniusImportError(path, "<negotiation_template>", "has no <utility_space>")
            notes.append(
                f"{path.name}: skipped (root <{root.tag}> is not a Genius domain or utility space)"
            )
            continue
        (profiles if space.find(".//weight") is not None else domains).append((path, space))
    if len(domains) != 1:
        found = ", ".join(p.name for p, _ in domains) or "none"
        raise GeniusImportError(
            folder,
            "domain file",
            f"expected exactly one domain file (a utility space without <weight> elements); found {found}",
        )
    domain_path, domain_space = domains[0]
    if len(profiles) < 2:
        raise GeniusImportError(
            folder,
            "profiles",
            f"expected two or more utility-space (profile) files with <weight> elements; found "
            f"{len(profiles)}",
        )
    issues = _xml_issues(domain_path, domain_space, max_integer_values, integer_bins)
    name = (domain_space.find("objective").get("name") or "").strip()  # type: ignore[union-attr]
    if not name or name == "root":
        name = folder.name
    parties = IdAllocator(PARTY_ID_MAX)
    read = [
        _xml_profile(path, space, issues, parties.take(path.stem, f"party{n + 1}"), notes)
        for n, (path, space) in enumerate(profiles)
    ]
    return domain_path, name, issues, read, notes


def _contexts(names: list[str]) -> list[str]:
    contexts: list[str] = []
    for n, name in enumerate(names):
        text = f"When deciding {name.strip() or f'issue {n + 1}'}"
        if text in contexts:
            text = f"{text} (issue {n + 1})"
        contexts.append(text)
    return contexts


def _xml_issues(
    path: Path, space: ET.Element, max_integer_values: int, integer_bins: int
) -> list[ImportedIssue]:
    objective = _objective(path, space)
    elements = objective.findall("issue")
    if not elements:
        raise GeniusImportError(path, "<objective>", "declares no <issue>")
    ids = IdAllocator()
    seen_index: dict[int, str] = {}
    names = [(el.get("name") or "").strip() for el in elements]
    contexts = _contexts(names)
    issues: list[ImportedIssue] = []
    for n, el in enumerate(elements):
        where = _describe(el, "<objective>")
        name = names[n]
        if not name:
            raise GeniusImportError(path, where, "issue has no name attribute")
        index = _attr_int(path, el, "index", where)
        if index in seen_index:
            raise GeniusImportError(
                path, where, f"index {index} is already used by issue {seen_index[index]!r}"
            )
        seen_index[index] = name
        kind = _issue_type(el)
        issue_id = ids.take(name, f"issue{index}")
        if kind == "discrete":
            items = el.findall("item")
            values: list[str] = []
            for item in items:
                value = item.get("value")
                if value is None:
                    raise GeniusImportError(
                        path, _describe(item, where), "item has no value attribute"
                    )
                if value in values:
                    raise GeniusImportError(
                        path, _describe(item, where), f"value {value!r} is listed twice"
                    )
                values.append(value)
            if len(values) < 2:
                raise GeniusImportError(
                    path,
                    where,
                    f"has {len(values)} value(s); an Accord issue needs at least 2 options",
                )
            option_ids = IdAllocator()
            options = tuple(
                ImportedOption(option_ids.take(v, f"v{k + 1}"), v) for k, v in enumerate(values)
            )
            issues.append(ImportedIssue(issue_id, name, contexts[n], options, index))
        elif kind == "integer":
            low = _attr_int(path, el, "lowerbound", where)
            high = _attr_int(path, el, "upperbound", where)
            if high <= low:
                raise GeniusImportError(
                    path, where, f"upperbound {high} is not above lowerbound {low}"
                )
            count = high - low + 1
            if count <= max_integer_values:
                points, binned = list(range(low, high + 1)), False
            else:
                bins = max(2, integer_bins)
                points = sorted({round(low + k * (high - low) / (bins - 1)) for k in range(bins)})
                binned = True
            options = tuple(ImportedOption(f"v{v}", str(v), integer=v) for v in points)
            issues.append(
                ImportedIssue(
                    issue_id, name, contexts[n], options, index, "integer", (low, high), binned
                )
            )
        else:
            raise GeniusImportError(
                path,
                where,
                f"issue type {kind!r} is not supported (discrete and integer are; no domain in "
                "the shared ANAC data uses real issues)",
            )
    return issues


def _xml_profile(
    path: Path,
    space: ET.Element,
    issues: list[ImportedIssue],
    party: str,
    notes: list[str],
) -> ImportedProfile:
    objective = _objective(path, space)
    by_index: dict[int, ET.Element] = {}
    for el in objective.findall("issue"):
        where = _describe(el, "<objective>")
        by_index[_attr_int(path, el, "index", where)] = el
    weights_by_index: dict[int, float] = {}
    for w in objective.findall("weight"):
        where = _describe(w, "<objective>")
        index = _attr_int(path, w, "index", where)
        value = _attr_float(path, w, "value", where)
        if value < 0:
            raise GeniusImportError(path, where, f"weight {value} is negative")
        weights_by_index[index] = value
    weights: dict[str, float] = {}
    scores: dict[str, dict[str, float]] = {}
    rationales: dict[str, dict[str, str]] = {}
    for issue in issues:
        assert issue.index is not None
        el = by_index.get(issue.index)
        if el is None:
            raise GeniusImportError(
                path,
                f"<objective> <issue index={str(issue.index)!r}>",
                f"missing: the domain declares issue {issue.name!r} with this index",
            )
        where = _describe(el, "<objective>")
        if (el.get("name") or "").strip() != issue.name:
            raise GeniusImportError(
                path,
                where,
                f"issue name {el.get('name')!r} differs from the domain's {issue.name!r} at index "
                f"{issue.index}: is this profile for another domain?",
            )
        if issue.index not in weights_by_index:
            raise GeniusImportError(
                path,
                f"<objective> <weight index={str(issue.index)!r}>",
                f"missing: no weight for issue {issue.name!r}",
            )
        weights[issue.id] = weights_by_index[issue.index]
        if issue.kind == "discrete":
            scores[issue.id], rationales[issue.id] = _xml_discrete_scores(
                path, el, where, issue, notes
            )
        else:
            scores[issue.id], rationales[issue.id] = _xml_integer_scores(path, el, where, issue)
    if sum(weights.values()) <= 0:
        raise GeniusImportError(path, "<objective> <weight>", "all issue weights are zero")
    reservation_el = space.find("reservation")
    if reservation_el is not None:
        reservation = _attr_float(path, reservation_el, "value", "<reservation>")
        if not 0.0 <= reservation <= 1.0:
            raise GeniusImportError(path, "<reservation>", f"value {reservation} is outside [0, 1]")
        note = f"reservation value {reservation:g} from {path.name}"
    else:
        reservation = 0.0
        note = f"{path.name} states no reservation value: Genius's default 0"
    discount_el = space.find("discount_factor")
    discount = (
        _attr_float(path, discount_el, "value", "<discount_factor>")
        if discount_el is not None
        else None
    )
    return ImportedProfile(
        party=party,
        name=path.stem,
        file=path,
        weights=weights,
        scores=scores,
        rationales=rationales,
        reservation=reservation,
        reservation_note=note,
        discount_factor=discount,
    )


def _xml_discrete_scores(
    path: Path, el: ET.Element, where: str, issue: ImportedIssue, notes: list[str]
) -> tuple[dict[str, float], dict[str, str]]:
    evaluations: dict[str, float] = {}
    for item in el.findall("item"):
        value = item.get("value")
        item_where = _describe(item, where)
        if value is None:
            raise GeniusImportError(path, item_where, "item has no value attribute")
        raw = item.get("evaluation")
        if raw is None or raw == "null":
            continue  # Genius skips it; a domain value left without one is caught below
        evaluation = _attr_float(path, item, "evaluation", item_where)
        if evaluation < 0:
            raise GeniusImportError(
                path, item_where, f"evaluation {evaluation} is negative (Genius requires >= 0)"
            )
        evaluations[value] = evaluation
    known = {o.name for o in issue.options}
    extra = sorted(set(evaluations) - known)
    if extra:
        notes.append(
            f"{path.name}: issue {issue.name!r} evaluates values the domain does not list: {extra}"
        )
    largest = max(evaluations.values(), default=0.0)
    scores: dict[str, float] = {}
    rationales: dict[str, str] = {}
    for option in issue.options:
        if option.name not in evaluations:
            raise GeniusImportError(
                path,
                f"{where} <item value={option.name!r}>",
                "missing: the value has no evaluation",
            )
        e = evaluations[option.name]
        scores[option.id] = 0.0 if largest < 1e-5 else e / largest
        rationales[option.id] = f"from {path.name}: evaluation {e:g} of max {largest:g}"
    return scores, rationales


def _xml_integer_scores(
    path: Path, el: ET.Element, where: str, issue: ImportedIssue
) -> tuple[dict[str, float], dict[str, str]]:
    evaluator = el.find("evaluator")
    if evaluator is None:
        raise GeniusImportError(path, where, "integer issue has no <evaluator slope=.. offset=..>")
    ev_where = f"{where} <evaluator>"
    slope = _attr_float(path, evaluator, "slope", ev_where)
    offset = _attr_float(path, evaluator, "offset", ev_where)
    assert issue.bounds is not None
    low = (
        _attr_int(path, el, "lowerbound", where)
        if el.get("lowerbound") is not None
        else issue.bounds[0]
    )
    scores: dict[str, float] = {}
    rationales: dict[str, str] = {}
    for option in issue.options:
        assert option.integer is not None
        raw = offset + slope * (option.integer - low)
        scores[option.id] = min(1.0, max(0.0, raw))
        rationales[option.id] = (
            f"from {path.name}: linear evaluation {offset:g} + {slope:g} * ({option.integer} - {low}) "
            f"= {raw:g}, clamped to [0, 1]"
        )
    return scores, rationales


# -- GeniusWeb JSON ---------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GeniusImportError(
            path, f"JSON line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeniusImportError(path, "file", f"cannot read: {exc}") from None


def _read_json_folder(
    folder: Path, files: list[Path]
) -> tuple[Path, str, list[ImportedIssue], list[ImportedProfile], list[str]]:
    notes: list[str] = []
    domains: list[tuple[Path, dict[str, Any]]] = []
    profiles: list[tuple[Path, dict[str, Any]]] = []
    for path in files:
        doc = _load_json(path)
        if not isinstance(doc, dict):
            raise GeniusImportError(path, "top level", "expected a JSON object")
        if "issuesValues" in doc:
            domains.append((path, doc))
        elif len(doc) == 1 and isinstance(next(iter(doc.values())), dict):
            kind = next(iter(doc))
            if kind != "LinearAdditiveUtilitySpace":
                raise GeniusImportError(
                    path, kind, "unsupported profile type (only LinearAdditiveUtilitySpace is)"
                )
            profiles.append((path, doc[kind]))
        else:
            notes.append(f"{path.name}: skipped (neither a GeniusWeb domain nor a profile)")
    if len(domains) != 1:
        found = ", ".join(p.name for p, _ in domains) or "none"
        raise GeniusImportError(
            folder,
            "domain file",
            f"expected exactly one GeniusWeb domain (with issuesValues); found {found}",
        )
    domain_path, domain = domains[0]
    if len(profiles) < 2:
        raise GeniusImportError(
            folder,
            "profiles",
            f"expected two or more LinearAdditiveUtilitySpace profiles; found {len(profiles)}",
        )
    name = str(domain.get("name") or folder.name)
    issues = _json_issues(domain_path, domain)
    parties = IdAllocator(PARTY_ID_MAX)
    read = [
        _json_profile(
            path,
            doc,
            name,
            issues,
            parties.take(str(doc.get("name") or path.stem), f"party{n + 1}"),
        )
        for n, (path, doc) in enumerate(profiles)
    ]
    return domain_path, name, issues, read, notes


def _json_issues(path: Path, domain: dict[str, Any]) -> list[ImportedIssue]:
    issues_values = domain["issuesValues"]
    if not isinstance(issues_values, dict) or not issues_values:
        raise GeniusImportError(path, "issuesValues", "expected a non-empty object of issues")
    names = list(issues_values)
    contexts = _contexts(names)
    ids = IdAllocator()
    issues: list[ImportedIssue] = []
    for n, name in enumerate(names):
        spec = issues_values[name]
        where = f"issuesValues.{name}"
        if not isinstance(spec, dict) or "values" not in spec:
            raise GeniusImportError(
                path, where, 'expected {"values": [...]} (number value sets are not supported)'
            )
        values = spec["values"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise GeniusImportError(path, f"{where}.values", "expected a list of strings")
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise GeniusImportError(path, f"{where}.values", f"values listed twice: {dupes}")
        if len(values) < 2:
            raise GeniusImportError(
                path,
                f"{where}.values",
                f"has {len(values)} value(s); an Accord issue needs at least 2 options",
            )
        option_ids = IdAllocator()
        options = tuple(
            ImportedOption(option_ids.take(v, f"v{k + 1}"), v) for k, v in enumerate(values)
        )
        issues.append(ImportedIssue(ids.take(name, f"issue{n + 1}"), name, contexts[n], options))
    return issues


def _json_number(path: Path, where: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise GeniusImportError(path, where, f"{raw!r} is not a number")
    return float(raw)


def _json_profile(
    path: Path, doc: dict[str, Any], domain_name: str, issues: list[ImportedIssue], party: str
) -> ImportedProfile:
    root = "LinearAdditiveUtilitySpace"
    embedded = doc.get("domain")
    if isinstance(embedded, dict) and embedded.get("name") not in (None, domain_name):
        raise GeniusImportError(
            path,
            f"{root}.domain.name",
            f"{embedded.get('name')!r} is not this folder's domain {domain_name!r}",
        )
    utilities = doc.get("issueUtilities")
    weights_doc = doc.get("issueWeights")
    if not isinstance(utilities, dict):
        raise GeniusImportError(path, f"{root}.issueUtilities", "missing or not an object")
    if not isinstance(weights_doc, dict):
        raise GeniusImportError(path, f"{root}.issueWeights", "missing or not an object")
    weights: dict[str, float] = {}
    scores: dict[str, dict[str, float]] = {}
    rationales: dict[str, dict[str, str]] = {}
    for issue in issues:
        where_w = f"{root}.issueWeights.{issue.name}"
        if issue.name not in weights_doc:
            raise GeniusImportError(path, where_w, "missing: no weight for this issue")
        weight = _json_number(path, where_w, weights_doc[issue.name])
        if weight < 0:
            raise GeniusImportError(path, where_w, f"weight {weight} is negative")
        weights[issue.id] = weight
        where = f"{root}.issueUtilities.{issue.name}"
        entry = utilities.get(issue.name)
        if not isinstance(entry, dict):
            raise GeniusImportError(path, where, "missing: no utilities for this issue")
        discrete = entry.get("discreteutils")
        if not isinstance(discrete, dict) or not isinstance(discrete.get("valueUtilities"), dict):
            raise GeniusImportError(
                path,
                where,
                "expected discreteutils.valueUtilities (number utilities are not supported)",
            )
        table = discrete["valueUtilities"]
        scores[issue.id], rationales[issue.id] = {}, {}
        for option in issue.options:
            where_v = f"{where}.discreteutils.valueUtilities.{option.name}"
            if option.name not in table:
                raise GeniusImportError(path, where_v, "missing: the value has no utility")
            u = _json_number(path, where_v, table[option.name])
            if not 0.0 <= u <= 1.0:
                raise GeniusImportError(path, where_v, f"utility {u} is outside [0, 1]")
            scores[issue.id][option.id] = u
            rationales[issue.id][option.id] = (
                f"from {path.name}: value utility {u:g} (GeniusWeb: not rescaled per issue)"
            )
    if sum(weights.values()) <= 0:
        raise GeniusImportError(path, f"{root}.issueWeights", "all issue weights are zero")
    reservation, note, bid = 0.0, f"{path.name} has no reservationBid: reservation 0", None
    raw_bid = doc.get("reservationBid")
    if raw_bid is not None:
        values = raw_bid.get("issuevalues") if isinstance(raw_bid, dict) else None
        if not isinstance(values, dict):
            raise GeniusImportError(
                path, f"{root}.reservationBid.issuevalues", "missing or not an object"
            )
        bid = {}
        for issue in issues:
            where_b = f"{root}.reservationBid.issuevalues.{issue.name}"
            chosen = values.get(issue.name)
            option = next((o for o in issue.options if o.name == chosen), None)
            if option is None:
                raise GeniusImportError(path, where_b, f"{chosen!r} is not a value of this issue")
            bid[issue.id] = option.id
        total = sum(weights.values())
        reservation = sum(weights[i] / total * scores[i][o] for i, o in bid.items())
        note = (
            f"utility {reservation:.6g} of the reservation bid in {path.name} "
            f"({', '.join(f'{i}={o}' for i, o in bid.items())})"
        )
    return ImportedProfile(
        party=party,
        name=str(doc.get("name") or path.stem),
        file=path,
        weights=weights,
        scores=scores,
        rationales=rationales,
        reservation=reservation,
        reservation_note=note,
        discount_factor=None,
        reservation_bid=bid,
    )


# -- the session ------------------------------------------------------------------------


def _card_id(party: str, issue_id: str) -> str:
    return fit_id(f"{party}.{issue_id}", key=f"{party}\x00{issue_id}")


def _profile_description(fmt: Format, profile: ImportedProfile) -> str:
    source = "Genius" if fmt == "genius-xml" else "GeniusWeb"
    if profile.discount_factor is None:
        discount = "No discount factor is stated."
    else:
        discount = (
            f"Discount factor {profile.discount_factor:g}: in {source} a utility u agreed at "
            f"normalised time t in [0, 1] is worth u * {profile.discount_factor:g}**t. Accord does not "
            "discount over time, so it is recorded here and not applied."
        )
    return (
        f"The {source} preference profile {profile.file.name}, imported as a thin, "
        "preference-derived value model (one card per issue; not values elicited from people). "
        f"Reservation: {profile.reservation_note}. {discount}"
    )


def _issue_description(issue: ImportedIssue) -> str:
    if issue.bounds is None:
        return issue.name
    low, high = issue.bounds
    return f"{issue.name} (integer {low}..{high}{', binned' if issue.binned else ''})"


def _build_spec(
    folder: Path,
    fmt: Format,
    domain_file: Path,
    domain_name: str,
    issues: list[ImportedIssue],
    profiles: list[ImportedProfile],
    deadline_rounds: int,
    strategy: str,
    session_id: str | None,
) -> SessionSpec:
    agenda = [
        Issue(
            id=i.id,
            description=_issue_description(i),
            context=i.context,
            options=[Option(id=o.id, description=o.name) for o in i.options],
        )
        for i in issues
    ]
    source = "Genius" if fmt == "genius-xml" else "GeniusWeb"
    scaling = (
        "its evaluations divided by the largest evaluation on this issue, as Genius does"
        if fmt == "genius-xml"
        else "its value utilities, as GeniusWeb uses them"
    )
    constituencies: list[Constituency] = []
    assessments: list[Assessment] = []
    for p in profiles:
        cards = []
        for i in issues:
            card_id = _card_id(p.party, i.id)
            cards.append(
                ValuesCard(
                    id=card_id,
                    title=f"{i.name[:150]} (preference-derived)",
                    description=(
                        f"How the preference profile {p.file.name} scores the options for "
                        f"{i.name!r}: {scaling}. A number from an imported negotiation domain, "
                        "not a value elicited from people."
                    ),
                    policies=list(PROFILE_POLICIES),
                    contexts=[i.context],
                    source="preference-derived",
                )
            )
            for o in i.options:
                assessments.append(
                    Assessment(
                        option=f"{i.id}/{o.id}",
                        card=card_id,
                        score=p.scores[i.id][o.id],
                        rationale=p.rationales[i.id][o.id],
                        by="organizer",
                    )
                )
        constituencies.append(
            Constituency(
                id=p.party,
                name=p.name,
                description=_profile_description(fmt, p),
                cards=cards,
                constituents=[Constituent(id=f"{p.party}-profile", holds=[c.id for c in cards])],
                mandate=Mandate(reservation=p.reservation),
                issue_weights=p.issue_weights,
            )
        )
    size = math.prod(len(i.options) for i in issues)
    discounts = ", ".join(
        f"{p.party} {p.discount_factor:g}" for p in profiles if p.discount_factor is not None
    )
    description = (
        f"Imported from the {source} domain {domain_name!r} ({folder.name}/{domain_file.name}; "
        f"{len(issues)} issues, {size} outcomes, {len(profiles)} parties). Each party's preference "
        "profile is a thin, preference-derived value model whose Accord utility equals its "
        f"{source} utility (issue weights normalised to sum 1). "
        + (f"Discount factors (recorded, not applied): {discounts}. " if discounts else "")
        + f"Deadline {deadline_rounds} rounds (ANAC ran on a 180 s clock; see accord.importers.genius)."
    )
    try:
        return SessionSpec(
            id=session_id or sanitise_id(folder.name, "genius-domain"),
            title=f"{source} domain {domain_name}",
            description=description,
            agenda=agenda,
            constituencies=constituencies,
            assessments=assessments,
            protocol=ProtocolSpec(
                name="stacked-alternating-offers", deadline_rounds=deadline_rounds
            ),
            delegates={p.party: DelegateSpec(strategy=strategy) for p in profiles},
        )
    except ValidationError as exc:  # a bug here, or a bad session id / strategy options
        raise GeniusImportError(
            folder, "session", f"the imported session is invalid: {exc}"
        ) from None
