"""Finding protocols and strategies: entry points, so a researcher's package plugs in.

A package declares, in its pyproject.toml:

    [project.entry-points."accord.protocols"]
    my-protocol = "my_package.module:MyProtocol"

and `accord protocols` lists it, `protocol: {name: my-protocol}` runs it.
"""

from __future__ import annotations

import functools
import importlib
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from delegates.base import Strategy
from protocols.base import Protocol

PROTOCOL_GROUP = "accord.protocols"
STRATEGY_GROUP = "accord.strategies"

# Built-ins are listed here too (as import paths, loaded on first use), so a source
# checkout that was never pip-installed still finds them.
_BUILTIN_PROTOCOL_PATHS = {
    "stacked-alternating-offers": "protocols.stacked_alternating_offers:StackedAlternatingOffers",
    "single-text": "protocols.single_text:SingleNegotiationText",
    "mopac": "protocols.mopac:Mopac",
    "voting": "protocols.voting:Voting",
    "habermas": "protocols.habermas:HabermasConsensus",
    "zeuthen": "protocols.zeuthen:MonotonicConcession",
}
_BUILTIN_STRATEGY_PATHS = {
    "boulware": "delegates.time_dependent:Boulware",
    "linear": "delegates.time_dependent:Linear",
    "conceder": "delegates.time_dependent:Conceder",
    "tit-for-tat": "delegates.tit_for_tat:TitForTat",
    "aspiration": "delegates.aspiration:AspirationWithOpponentModel",
    "log-rolling": "delegates.log_rolling:LogRolling",
    "llm": "delegates.llm:LLMStrategy",
}


def _load_builtins(paths: dict[str, str]) -> dict[str, Any]:
    found = {}
    for name, path in paths.items():
        module, _, attr = path.partition(":")
        try:
            found[name] = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return found


_BUILTIN_PROTOCOLS: dict[str, type[Protocol]] = _load_builtins(_BUILTIN_PROTOCOL_PATHS)
_BUILTIN_STRATEGIES: dict[str, type[Strategy]] = _load_builtins(_BUILTIN_STRATEGY_PATHS)


class PluginError(LookupError):
    pass


@functools.lru_cache(maxsize=16)
def _entry_points(group: str, path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    """The group's entry points, found once per import path: scanning every installed
    distribution's metadata takes tens of milliseconds, and `build_plan` asks for each
    strategy and the protocol. A changed `sys.path` (a package added at run time) is
    another key, so it is scanned afresh."""
    del path  # only the cache key: `entry_points` reads sys.path itself
    return tuple(entry_points(group=group))


def _discover(group: str, base: type, builtins: dict[str, Any]) -> dict[str, Any]:
    found = dict(builtins)
    for ep in _entry_points(group, tuple(sys.path)):
        if ep.name in found:
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break the CLI
            raise PluginError(f"plug-in {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise PluginError(f"plug-in {ep.name!r} ({ep.value}) is not a {base.__name__}")
        found[ep.name] = obj
    return found


def protocols() -> dict[str, type[Protocol]]:
    return _discover(PROTOCOL_GROUP, Protocol, _BUILTIN_PROTOCOLS)


def strategies() -> dict[str, type[Strategy]]:
    return _discover(STRATEGY_GROUP, Strategy, _BUILTIN_STRATEGIES)


def protocol(name: str) -> type[Protocol]:
    known = protocols()
    if name not in known:
        raise PluginError(
            f"unknown protocol {name!r}; installed: {', '.join(sorted(known))} "
            f"(a plug-in registers under the entry-point group {PROTOCOL_GROUP!r})"
        )
    return known[name]


def strategy(name: str) -> type[Strategy]:
    known = strategies()
    if name not in known:
        raise PluginError(
            f"unknown strategy {name!r}; installed: {', '.join(sorted(known))} "
            f"(a plug-in registers under the entry-point group {STRATEGY_GROUP!r})"
        )
    return known[name]
