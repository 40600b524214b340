"""From a validated session file to everything a run needs, checked before anything runs.

Protocol parameters and strategy options are validated here against the plug-ins'
own models, so a bad value is reported with the file and field, and the ledger is
never touched by a session that cannot start.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from accord import plugins
from accord.ratification import Ask, RecordedRatifier
from accord.session_file import SessionFileError, SessionSpec, load_session
from constituencies import Assessment, Constituency, ValueModel
from constituencies.hashing import content_hash
from delegates.base import DelegateView, Strategy
from delegates.delegate import Delegate, Ratifier
from protocols.agenda import Agenda
from protocols.base import Protocol, ProtocolParams


@dataclass
class Participant:
    constituency: Constituency
    model: ValueModel
    strategy_name: str
    delegate: Delegate

    @property
    def id(self) -> str:
        return self.constituency.id


@dataclass
class SessionPlan:
    spec: SessionSpec
    source: str
    agenda: Agenda
    protocol_cls: type[Protocol]
    protocol_params: ProtocolParams
    participants: list[Participant]
    # The delegates built, when not all of them (`build_plan(only=...)`, a delegate
    # host's plan); None when every constituency has its participant.
    hosted: frozenset[str] | None = None

    @cached_property
    def spec_hash(self) -> str:
        # Hashing the whole session file costs seconds at 1,000 delegates, and a host
        # reads it once per delegate it runs: compute it once per plan. A plan's spec
        # is never replaced (SessionSpec is frozen), so the hash cannot go stale.
        return content_hash(self.spec)

    def participant(self, delegate_id: str) -> Participant:
        for p in self.participants:
            if p.id == delegate_id:
                return p
        raise KeyError(delegate_id)

    def new_protocol(self) -> Protocol:
        if self.hosted is not None:
            # A host's plan lacks the other delegates: a protocol run from it would
            # silently leave them out. Only the chair's (whole) plan runs a protocol.
            raise ValueError("a plan built for some delegates only cannot run the protocol")
        return self.protocol_cls(
            [p.id for p in self.participants], self.agenda, self.protocol_params, self.spec.seed
        )


def _errors(prefix: str, exc: ValidationError) -> list[str]:
    return [
        f"{prefix}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else f"{prefix}: {e['msg']}"
        for e in exc.errors()
    ]


def build_plan(
    spec: SessionSpec,
    source: str = "<session>",
    ratifier: Ratifier | None = None,
    only: Collection[str] | None = None,
) -> SessionPlan:
    """Instantiate protocol parameters, value models, strategies and delegates.

    With `only`, just those delegates (a delegate host's): the spec itself was validated
    whole when it was loaded, and its hash covers the whole file, but the value models,
    outcome spaces and strategies of the others are left to their own hosts (at 1,000
    delegates, building all of them in each of ten hosts was most of their start-up).
    Ids in `only` that name no constituency are not an error here (the caller reports
    them); the protocol's parameters are still checked against every constituency.
    """
    wanted = None if only is None else frozenset(only)
    problems: list[str] = []
    agenda = spec.agenda_model
    try:
        protocol_cls: type[Protocol] | None = plugins.protocol(spec.protocol.name)
    except plugins.PluginError as exc:
        problems.append(f"protocol.name: {exc}")
        protocol_cls = None
    params: ProtocolParams | None = None
    if protocol_cls is not None:
        given = dict(spec.protocol.params)
        if "weights" in protocol_cls.Params.model_fields and "weights" not in given:
            # Ballots weigh what the constituencies weigh (their constituents), unless
            # the session file says otherwise.
            given["weights"] = {
                c.id: (sum(p.weight for p in c.constituents) if c.constituents else 1.0)
                for c in spec.constituencies
            }
        try:
            params = protocol_cls.Params.model_validate(given)
        except ValidationError as exc:
            problems.extend(_errors("protocol", exc))
    participants: list[Participant] = []
    outcomes = list(agenda.outcomes())  # one copy, shared by every delegate's ranking
    # Each value model keeps the assessments of its own cards. Handing each one all of
    # them to filter was quadratic: 1,000 constituencies x 36,000 assessments took ~9 s.
    # Grouped by card once, each gets its own (in file order, as the filter kept them).
    by_card: dict[str, list[tuple[int, Assessment]]] = {}
    for n, assessment in enumerate(spec.assessments):
        by_card.setdefault(assessment.card, []).append((n, assessment))
    for constituency in spec.constituencies:
        if wanted is not None and constituency.id not in wanted:
            continue
        cards = {c.id for c in constituency.cards}
        own = [a for _, a in sorted((x for card in cards for x in by_card.get(card, ())), key=lambda x: x[0])]
        model = ValueModel(constituency, own, agenda.issue_contexts)
        dspec = spec.delegate_spec(constituency.id)
        where = f"delegates.{constituency.id}"
        try:
            strategy_cls: type[Strategy] = plugins.strategy(dspec.strategy)
        except plugins.PluginError as exc:
            problems.append(f"{where}.strategy: {exc}")
            continue
        try:
            options = strategy_cls.Options.model_validate(dspec.options)
        except ValidationError as exc:
            problems.extend(_errors(f"{where}.options", exc))
            continue
        view = DelegateView.build(
            constituency.id, agenda, model, constituency.mandate, spec.seed, outcomes
        )
        if not view.space.admissible:
            problems.append(
                f"constituencies.{constituency.id}.mandate: no outcome of the agenda satisfies "
                "its red lines and reservation level, so its delegate could never agree"
            )
            continue
        delegate = Delegate(
            view, strategy_cls(view, options), ratifier or RecordedRatifier(spec.ratifications)
        )
        participants.append(Participant(constituency, model, dspec.strategy, delegate))
    if protocol_cls is not None and params is not None and not problems:
        # Parameters that depend on the agenda or the participants are checked by the
        # protocol's constructor: try it now, before anything touches the ledger.
        # A partial plan checks them against every constituency, as the chair will run
        # it (the chair's own plan also refuses constituencies no outcome can satisfy).
        ids = [p.id for p in participants] if wanted is None else [c.id for c in spec.constituencies]
        try:
            protocol_cls(ids, agenda, params, spec.seed)
        except (ValueError, KeyError) as exc:
            problems.append(f"protocol: {exc}")
    if problems:
        raise SessionFileError(source, problems)
    assert protocol_cls is not None and params is not None
    return SessionPlan(spec, source, agenda, protocol_cls, params, participants, wanted)


def load_plan(
    path: str | Path, ask: Ask | None = None, only: Collection[str] | None = None
) -> tuple[SessionPlan, Any]:
    """Load and build; `ask` is how to ask constituents about undecided ratifications;
    `only`, the delegates to build (see `build_plan`). The file is validated whole, once."""
    spec, raw = load_session(path)
    return build_plan(spec, str(path), RecordedRatifier(spec.ratifications, ask), only), raw
