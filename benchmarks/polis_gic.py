"""Polis: the group-informed consensus of the statement each protocol chooses, vs the best.

Run from the checkout (a measurement, not a test):

    python benchmarks/polis_gic.py               # table on stdout
    python benchmarks/polis_gic.py --write-md    # ... and the section in BENCHMARKS.md

For every Polis conversation in `../shared/data/polis`, through the real CLI:
`accord import polis DIR -o FILE` (which writes FILE's `.gic.json` sidecar: Polis's
group-informed consensus of every statement), then, for each statement-selecting
protocol (`voting` with the importer's Schulze rule, `habermas` with its defaults),
`accord run FILE --json --quiet --ledger L` and `accord verify`; then
`accord.gic_report.gic_report` reads the sidecar and the ledger's `ended` entry and gives
the chosen statement's GIC next to the best on the agenda. "random" is the ratio a
uniformly random statement would get on average (mean GIC / best GIC).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accord.gic_report import gic_report  # noqa: E402
from negmas_compare import machine, write_section  # noqa: E402 - helpers only; NegMAS is never imported

POLIS = ROOT.parent / "shared" / "data" / "polis"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
SECTION = "Polis: group-informed consensus of the chosen statement"
PROTOCOLS = ("voting", "habermas")


def accord(*args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ACCORD_LEDGER", "ACCORD_KEYS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "accord.cli", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"accord {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return done


def with_protocol(base: Path, protocol: str) -> Path:
    if protocol == "voting":
        return base  # what the importer writes: voting, Schulze
    doc = yaml.safe_load(base.read_text(encoding="utf-8"))
    doc["protocol"] = {"name": protocol}
    out = base.with_name(f"{base.stem}.{protocol}.yaml")
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    # the sidecar belongs beside the session file it describes (same agenda)
    shutil.copy(base.with_name(f"{base.stem}.gic.json"), out.with_name(f"{out.stem}.gic.json"))
    return out


def measure(work: Path, conversations: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for folder in conversations:
        print(f"polis: {folder.name}", file=sys.stderr, flush=True)
        base = work / f"{folder.name}.yaml"
        accord("import", "polis", folder, "-o", base, cwd=work)
        side = json.loads(base.with_name(f"{base.stem}.gic.json").read_text())
        texts = {
            o["id"]: o.get("description", "")
            for o in yaml.safe_load(base.read_text())["agenda"][0]["options"]
        }
        for protocol in PROTOCOLS:
            session = with_protocol(base, protocol)
            ledger = work / f"{folder.name}.{protocol}.db"
            start = time.perf_counter()
            result = json.loads(accord("run", session, "--json", "--quiet", "--ledger", ledger, cwd=work).stdout)
            wall = time.perf_counter() - start
            verified = accord("verify", result["session"], "--ledger", ledger, cwd=work)
            report = gic_report(session, ledger, result["session"])
            rows.append(
                {
                    "conversation": folder.name,
                    "topic": side.get("topic", ""),
                    "groups": len(side.get("groups", [])),
                    "protocol": protocol,
                    "statements": report.statements,
                    "chosen": report.chosen,
                    "chosen_text": texts.get(report.chosen or "", ""),
                    "chosen_gic": report.chosen_gic,
                    "best": report.best,
                    "best_text": texts.get(report.best, ""),
                    "best_gic": report.best_gic,
                    "ratio": report.ratio,
                    "rank": report.rank,
                    "random_ratio": report.random_ratio,
                    "reason": report.reason,
                    "entries": result["entries"],
                    "verified": verified.returncode == 0,
                    "run_wall_s": wall,
                }
            )
    return rows


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= n else text[: n - 1] + "…"


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"## {SECTION}",
        "",
        f"Command: `{meta['command']}`. Measured {meta['date']} on {meta['machine']} (2 cores, "
        "shared and noisy; run times include starting the CLI). For each Polis conversation in "
        "`../shared/data/polis`: `accord import polis` (every moderated-in statement on the agenda, one "
        "constituency per opinion group, ballots weighted by group size), then `accord run` under each "
        "statement-selecting protocol and `accord verify` (all passed: "
        f"{all(r['verified'] for r in rows)}); `accord.gic_report` reads the `.gic.json` sidecar and the "
        "ledger's `ended` entry. GIC is Polis's group-informed consensus, the product over opinion "
        "groups of (agrees + 1) / (votes + 2); *ratio* = chosen GIC / best GIC on the agenda; *rank* "
        "of the chosen statement by GIC (1 = best); *random* = the ratio a uniformly random statement "
        "gets on average.",
        "",
        "| conversation | groups | statements | protocol | chosen | chosen GIC | best | best GIC | ratio | rank | random | run s |",
        "|---|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['conversation']} | {r['groups']} | {r['statements']} | {r['protocol']} | {r['chosen']} | "
            f"{r['chosen_gic']:.4f} | {r['best']} | {r['best_gic']:.4f} | {r['ratio']:.3f} | {r['rank']} | "
            f"{r['random_ratio']:.3f} | {r['run_wall_s']:.1f} |"
        )
    lines += ["", "Mean ratio over the conversations:", ""]
    for protocol in PROTOCOLS:
        mine = [r for r in rows if r["protocol"] == protocol]
        if mine:
            best = sum(r["chosen"] == r["best"] for r in mine)
            lines.append(
                f"- {protocol}: {sum(r['ratio'] for r in mine) / len(mine):.3f} (random pick "
                f"{sum(r['random_ratio'] for r in mine) / len(mine):.3f}); chose the best statement in "
                f"{best} of {len(mine)}"
            )
    lines += ["", "The statements chosen, and the best by GIC:", ""]
    for r in rows:
        same = " (the best)" if r["chosen"] == r["best"] else f"; best {r['best']}: \"{_short(r['best_text'])}\""
        lines.append(
            f"- {r['conversation']}, {r['protocol']}: {r['chosen']} \"{_short(r['chosen_text'])}\"{same}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-md", action="store_true", help=f"write the section into {BENCHMARKS_MD.name}")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if not POLIS.is_dir():
        raise SystemExit(f"the shared Polis data is not at {POLIS}")
    conversations = sorted(p for p in POLIS.iterdir() if (p / "comments.csv").is_file())
    with tempfile.TemporaryDirectory(prefix="accord-polis-gic-") as tmp:
        rows = measure(Path(tmp), conversations)
    meta = {
        "command": "python benchmarks/polis_gic.py",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    md = markdown(rows, meta)
    print(md)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    if args.write_md:
        write_section(
            BENCHMARKS_MD, SECTION, md,
            "# Benchmarks\n\nMeasured figures for Accord, each section with the command that produces it.\n",
        )
        print(f"wrote the section {SECTION!r} of {BENCHMARKS_MD}", file=sys.stderr)


if __name__ == "__main__":
    main()
