"""The NegMAS side of `benchmarks/negmas_compare.py`. Runs ONLY in the NegMAS virtualenv.

NegMAS is AGPL-3.0. Accord never imports it: this script is started by
`negmas_compare.py` as a subprocess of `benchmarks/.venv-negmas/bin/python` (a venv that
the benchmark creates and fills from `benchmarks/requirements-negmas.txt`), and the two
talk through JSON only (a job file in, JSON on stdout out).

For each ANAC domain of the job it loads the scenario with NegMAS's own Genius loader
(`Scenario.from_genius_folder`, discounting ignored because Accord records discount
factors but does not apply them; reservation values kept), orders the utility functions
as Accord orders the parties (by profile file), and runs NegMAS's SAO mechanism with
`n_steps` = Accord's `deadline_rounds` (one SAO step = one turn of each negotiator, as
an Accord round is) between time-based negotiators:

* `named` (the default): NegMAS's own `BoulwareTBNegotiator`, `LinearTBNegotiator`,
  `ConcederTBNegotiator` (aspiration 1 - t**4, 1 - t, 1 - t**0.25);
* `matched`: NegMAS's `TimeBasedConcedingNegotiator` with Accord's curves
  (1 - t**5, 1 - t, 1 - t**0.5; Accord's e = 0.2, 1, 2 give t**(1/e)), so that the two
  frameworks play the same concession curves (the like-for-like baseline; same code
  path as `named`).

Each negotiation is timed (perf_counter, median of `reps`) from creating the mechanism
to the end of `run()`, in two modes:

* `cold`: NegMAS as normally used: every negotiator builds its own inverse utility
  function (it enumerates and sorts the outcome space) when it first proposes;
* `warm`: each party's inverse utility function (NegMAS's default,
  `AdaptiveInverseUtilityFunction(ufun, rational_only=True)`) is built and `init()`ed
  once per domain and handed to the negotiators through NegMAS's own `ufun_inverter`
  argument, so the per-negotiation time leaves out ranking the outcome space, as
  Accord's does (Accord ranks it once, in `build_plan`).

Utilities: NegMAS's Genius loader keeps each value's evaluation as written (Coffee's run
from 1 to 100), whereas Genius (`EvaluatorDiscrete`) and Accord's importer divide each
issue's evaluations by the issue's largest. Unless the job says `"genius_normalise":
false`, each loaded ufun is rebuilt as a NegMAS `LinearAdditiveUtilityFunction` with
every issue's `TableFun` divided by its largest value (0 when that is below 1e-5, as in
Genius) and the weights divided by their sum, keeping the reserved value; so both
frameworks negotiate over the same utilities (`negmas_compare.py` checks this on every
agreement). This rebuild is part of loading, not of the per-negotiation time.

Loading the scenario (and, for `warm`, building the inverses) is timed separately and
is NOT in the per-negotiation time. Nash optimality is computed here with NegMAS's own
`pareto_frontier` and `nash_points` (a cross-check; `negmas_compare.py` computes the
figures it reports from Accord's value models, the same way for both frameworks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ACCORD_EXPONENTS = {"boulware": 5.0, "linear": 1.0, "conceder": 0.5}


def _negotiator(kind: str, variant: str, name: str, inverse: Any | None) -> Any:
    from negmas.negotiators.helpers import PolyAspiration
    from negmas.sao.negotiators import (
        BoulwareTBNegotiator,
        ConcederTBNegotiator,
        LinearTBNegotiator,
        TimeBasedConcedingNegotiator,
    )

    extra: dict[str, Any] = {}
    if inverse is not None:
        extra["ufun_inverter"] = lambda _ufun, inv=inverse: inv
    if variant == "named":
        cls = {
            "boulware": BoulwareTBNegotiator,
            "linear": LinearTBNegotiator,
            "conceder": ConcederTBNegotiator,
        }[kind]
        return cls(name=name, **extra)
    return TimeBasedConcedingNegotiator(
        name=name,
        offering_curve=PolyAspiration(1.0, ACCORD_EXPONENTS[kind]),
        stochastic=False,
        **extra,
    )


def _run_once(
    scenario: Any,
    ufuns: list[Any],
    pair: list[str],
    variant: str,
    n_steps: int,
    inverses: list[Any] | None,
) -> tuple[float, Any, int]:
    from negmas.sao import SAOMechanism

    start = time.perf_counter()
    mechanism = SAOMechanism(outcome_space=scenario.outcome_space, n_steps=n_steps)
    for k, (kind, ufun) in enumerate(zip(pair, ufuns, strict=True)):
        negotiator = _negotiator(
            kind, variant, f"p{k + 1}-{kind}", inverses[k] if inverses else None
        )
        mechanism.add(negotiator, ufun=ufun)
    state = mechanism.run()
    elapsed = time.perf_counter() - start
    return elapsed, state, len(mechanism.full_trace)


def genius_normalised(ufun: Any) -> Any:
    """`ufun` with each issue's values divided by that issue's largest, weights summing to 1."""
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.preferences.value_fun import TableFun

    values = []
    for fun in ufun.values:
        if not isinstance(fun, TableFun):
            raise TypeError(f"{ufun.name}: value function {type(fun).__name__} is not a table")
        largest = max(float(v) for v in fun.mapping.values())
        scale = largest if largest >= 1e-5 else math.inf
        values.append(TableFun({k: float(v) / scale for k, v in fun.mapping.items()}))
    total = float(sum(ufun.weights))
    return LinearAdditiveUtilityFunction(
        values=values,
        weights=[float(w) / total for w in ufun.weights],
        outcome_space=ufun.outcome_space,
        reserved_value=float(ufun.reserved_value),
        name=ufun.name,
    )


def _nash(scenario: Any, ufuns: list[Any]) -> dict[str, Any]:
    """NegMAS's own Nash point (disagreement = the ufuns' reserved values)."""
    from negmas.preferences import nash_points, pareto_frontier

    start = time.perf_counter()
    frontier, _ = pareto_frontier(ufuns, issues=scenario.outcome_space.issues)
    points = nash_points(ufuns, frontier, outcome_space=scenario.outcome_space)
    reserved = [float(u.reserved_value) for u in ufuns]
    if not points:
        return {"point": None, "product": None, "seconds": time.perf_counter() - start}
    point = [float(x) for x in points[0][0]]
    product = math.prod(max(0.0, x - d) for x, d in zip(point, reserved, strict=True))
    return {"point": point, "product": product, "seconds": time.perf_counter() - start}


def run_domain(domain: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    from negmas.inout import Scenario
    from negmas.preferences import DefaultInverseUtilityFunction

    folder = Path(domain["folder"])
    start = time.perf_counter()
    scenario = Scenario.from_genius_folder(folder, ignore_discount=True)
    if scenario is None:
        return {"key": domain["key"], "error": f"NegMAS could not load {folder}"}
    by_file = {Path(str(u.path)).name: u for u in scenario.ufuns}
    try:
        ufuns = [by_file[name] for name in domain["profiles"]]
    except KeyError as exc:
        return {"key": domain["key"], "error": f"no NegMAS ufun for profile {exc}"}
    if job.get("genius_normalise", True):
        ufuns = [genius_normalised(u) for u in ufuns]
    load_s = time.perf_counter() - start
    issues = scenario.outcome_space.issues
    start = time.perf_counter()
    inverses = []
    for u in ufuns:
        inverse = DefaultInverseUtilityFunction(u, rational_only=True)
        inverse.init()
        inverses.append(inverse)
    inverse_s = time.perf_counter() - start
    nash: dict[str, Any]
    if job.get("nash", True):
        try:
            nash = _nash(scenario, ufuns)
        except Exception as exc:  # noqa: BLE001 - a cross-check only
            nash = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        nash = {}
    runs = []
    for variant in job["variants"]:
        for pair in job["pairs"]:
            modes = job["modes"]
            for mode in modes[variant] if isinstance(modes, dict) else modes:
                times: list[float] = []
                outcome: dict[str, Any] = {}
                for _ in range(job["reps"]):
                    elapsed, state, offers = _run_once(
                        scenario, ufuns, pair, variant, job["n_steps"],
                        inverses if mode == "warm" else None,
                    )
                    times.append(elapsed)
                    agreement = state.agreement
                    this = {
                        "agreement": None
                        if agreement is None
                        else {i.name: str(v) for i, v in zip(issues, agreement, strict=True)},
                        "utilities": [
                            float(u(agreement)) if agreement is not None else float(u.reserved_value)
                            for u in ufuns
                        ],
                        "steps": int(state.step),
                        "offers": offers,
                        "timedout": bool(state.timedout),
                        "broken": bool(state.broken),
                    }
                    if not outcome:
                        outcome = {**this, "deterministic": True}
                    elif any(outcome[k] != v for k, v in this.items()):
                        outcome["deterministic"] = False
                product = math.prod(
                    max(0.0, x - float(u.reserved_value))
                    for x, u in zip(outcome["utilities"], ufuns, strict=True)
                ) if outcome["agreement"] is not None else 0.0
                best = nash.get("product")
                runs.append(
                    {
                        "variant": variant,
                        "pair": pair,
                        "mode": mode,
                        "seconds": times,
                        "median_s": statistics.median(times),
                        **outcome,
                        "nash_ratio_negmas": (product / best) if best else None,
                    }
                )
    return {
        "key": domain["key"],
        "folder": str(folder),
        "outcomes": int(scenario.outcome_space.cardinality),
        "load_s": load_s,
        "inverse_s": inverse_s,
        "reserved": [float(u.reserved_value) for u in ufuns],
        "nash": nash,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", type=Path, help="JSON job written by negmas_compare.py")
    args = parser.parse_args()
    job = json.loads(args.job.read_text())
    out = sys.stdout
    start = time.perf_counter()
    import negmas  # noqa: F401 - timed: NegMAS's import cost, reported separately

    import_s = time.perf_counter() - start
    results = []
    # Anything NegMAS prints goes to stderr; stdout carries the JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        for domain in job["domains"]:
            print(f"negmas: {domain['key']}", file=sys.stderr, flush=True)
            results.append(run_domain(domain, job))
    json.dump(
        {
            "negmas_version": negmas.__version__,
            "python": sys.version.split()[0],
            "import_s": import_s,
            "domains": results,
        },
        out,
    )
    out.write("\n")


if __name__ == "__main__":
    main()
