"""The latency gate: compare pyperf results with perf/targets.toml and print a table.

Usage: ``python perf/check.py RESULTS.json [MORE.json ...] [--targets FILE] [--ratios-only]``.
Exit 1 when a gating target is missed (with ``--ratios-only``, absolute targets are shown but only
ratios gate: CI machines are shared and noisy, ratios to a floor measured in the same run are not).
A benchmark missing from the results is a miss, so a broken benchmark cannot pass silently.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyperf

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    benchmark: str
    median_us: float | None
    target: str
    floor_ratio: str
    peers: str
    verdict: str


def load_medians(paths: list[Path]) -> dict[str, float]:
    medians: dict[str, float] = {}
    for path in paths:
        suite = pyperf.BenchmarkSuite.load(str(path))
        for bench in suite.get_benchmarks():
            medians[bench.get_name()] = bench.median()
    return medians


def _fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.3g} us"


def evaluate(targets: list[dict[str, Any]], medians: dict[str, float], ratios_only: bool) -> list[Row]:
    rows = []
    for t in targets:
        name = t["benchmark"]
        med = medians.get(name)
        if med is None:
            rows.append(Row(name, None, "-", "-", "-", "MISS (not measured)"))
            continue
        misses: list[str] = []
        notes: list[str] = []
        parts = []
        if "max_us" in t:
            parts.append(f"< {t['max_us']} us")
            if med * 1e6 >= t["max_us"]:
                (notes if ratios_only else misses).append("absolute")
        if "min_per_s" in t:
            parts.append(f">= {t['min_per_s']:,}/s")
            if 1 / med < t["min_per_s"]:
                (notes if ratios_only else misses).append("throughput")
        floor_txt = "-"
        if "floor" in t:
            fmed = medians.get(t["floor"])
            if fmed is None:
                misses.append(f"floor {t['floor']} not measured")
            else:
                ratio = med / fmed
                floor_txt = f"{ratio:.2f}x {t['floor']}"
                if "max_ratio" in t:
                    parts.append(f"<= {t['max_ratio']}x floor")
                    if ratio > t["max_ratio"]:
                        misses.append("ratio")
        peer_txt = (
            ", ".join(f"{med / medians[p]:.2f}x {p}" for p in t.get("peers", []) if p in medians) or "-"
        )
        verdict = "pass" if not misses else "MISS (" + ", ".join(misses) + ")"
        if notes and not misses:
            verdict = "pass (ratios); absolute missed: informational"
        rows.append(Row(name, med * 1e6, "; ".join(parts) or "-", floor_txt, peer_txt, verdict))
    return rows


def render(rows: list[Row]) -> str:
    header = ("benchmark", "median", "target", "ratio to floor", "ratio to peers", "verdict")
    table = [header] + [
        (
            r.benchmark,
            "-" if r.median_us is None else f"{r.median_us:.3g} us",
            r.target,
            r.floor_ratio,
            r.peers,
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--targets", type=Path, default=HERE / "targets.toml")
    parser.add_argument("--ratios-only", action="store_true", help="absolute targets are informational")
    args = parser.parse_args(argv)
    try:
        targets = tomllib.loads(args.targets.read_text(encoding="utf-8"))["target"]
        medians = load_medians(args.results)
    except (OSError, ValueError, KeyError) as e:
        print(f"perf check: {e}", file=sys.stderr)
        return 2
    rows = evaluate(targets, medians, args.ratios_only)
    print(render(rows))
    missed = [r for r in rows if r.verdict.startswith("MISS")]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} targets met"
        + (f"; missed: {', '.join(r.benchmark for r in missed)}" if missed else "")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
