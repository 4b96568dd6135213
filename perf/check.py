"""The latency gate: compare pyperf results with perf/targets.toml and print a table.

Usage: ``python perf/check.py RESULTS.json [MORE.json ...] [--targets FILE] [--ratios-only]
[--markdown]``.

Each row: the benchmark, its median (and rate, for throughput targets), the target, the ratio to
its floor, the ratio to each peer, the verdict. Exit 1 when a gating target is missed. With
``--ratios-only`` absolute targets (microseconds, messages per second) are shown but only ratios
gate: CI machines are shared and noisy, ratios to a floor measured in the same run much less so.
A benchmark missing from the results is a miss, so a broken benchmark cannot pass silently, unless
the run's metadata says why it was skipped (no C compiler, a peer not installed, a component not
written yet): then the row says so and does not gate. Exit 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyperf

HERE = Path(__file__).resolve().parent
SKIP_KEY = "perf_skipped"  # as in perf/_common.py (kept importable without the benchmarks' imports)
SKIP_SEP = " | "

_KNOWN_KEYS = frozenset(
    {"benchmark", "max_us", "min_per_s", "floor", "max_ratio", "peers", "peer_max_ratio", "source"}
)


@dataclass
class Results:
    medians: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # of the first benchmark: machine, versions
    loads: list[float] = field(default_factory=list)  # pyperf's load_avg_1min of every run


@dataclass
class Row:
    benchmark: str
    median: str
    target: str
    floor_ratio: str
    peers: str
    verdict: str

    @property
    def missed(self) -> bool:
        return self.verdict.startswith("MISS")


def _parse_skips(text: str) -> dict[str, str]:
    out = {}
    for item in text.split(SKIP_SEP):
        name, _, reason = item.partition(": ")
        if name:
            out[name.strip()] = reason.strip()
    return out


def load_results(paths: list[Path]) -> Results:
    res = Results()
    for path in paths:
        suite = pyperf.BenchmarkSuite.load(str(path))
        for bench in suite.get_benchmarks():
            res.medians[bench.get_name()] = bench.median()
            for run in bench.get_runs():
                load = run.get_metadata().get("load_avg_1min")
                if isinstance(load, int | float):
                    res.loads.append(float(load))
            md = bench.get_metadata()
            if not res.metadata:
                res.metadata = dict(md)
            if SKIP_KEY in md:
                res.skipped.update(_parse_skips(str(md[SKIP_KEY])))
    for name in res.medians:  # measured after all (e.g. a later file): not skipped
        res.skipped.pop(name, None)
    return res


def load_medians(paths: list[Path]) -> dict[str, float]:
    return load_results(paths).medians


def _fmt_time(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.3g} us" if us < 1000 else f"{us / 1000:.3g} ms"


def _fmt_rate(per_s: float) -> str:
    return f"{per_s / 1000:,.0f}k/s" if per_s >= 10_000 else f"{per_s:,.0f}/s"


def check_targets(targets: list[dict[str, Any]]) -> None:
    """Refuse a malformed targets file (a typo must not turn a gate into a no-op)."""
    for t in targets:
        if "benchmark" not in t:
            raise ValueError(f"a target without a benchmark: {t}")
        unknown = set(t) - _KNOWN_KEYS
        if unknown:
            raise ValueError(f"{t['benchmark']}: unknown keys {sorted(unknown)}")
        if "max_ratio" in t and "floor" not in t:
            raise ValueError(f"{t['benchmark']}: max_ratio without a floor")
        for key in ("max_us", "min_per_s", "max_ratio"):
            if key in t and not (isinstance(t[key], int | float) and t[key] > 0):
                raise ValueError(f"{t['benchmark']}: {key} must be a positive number")
        pmr = t.get("peer_max_ratio", {})
        if not isinstance(pmr, dict) or not all(isinstance(v, int | float) and v > 0 for v in pmr.values()):
            raise ValueError(f"{t['benchmark']}: peer_max_ratio must map peers to positive numbers")


def evaluate(targets: list[dict[str, Any]], results: Results, ratios_only: bool) -> list[Row]:
    medians, skipped = results.medians, results.skipped
    rows = []
    for t in targets:
        name = t["benchmark"]
        med = medians.get(name)
        if med is None:
            if name in skipped:
                rows.append(Row(name, "-", _target_text(t), "-", "-", f"skipped: {skipped[name]}"))
            else:
                rows.append(Row(name, "-", _target_text(t), "-", "-", "MISS (not measured)"))
            continue
        misses: list[str] = []
        info: list[str] = []  # absolute misses under --ratios-only
        notes: list[str] = []  # gates that could not be evaluated (a skipped floor or peer)
        median_txt = _fmt_time(med)
        if "max_us" in t and med * 1e6 >= t["max_us"]:
            (info if ratios_only else misses).append("absolute")
        if "min_per_s" in t:
            median_txt += f" ({_fmt_rate(1 / med)})"
            if 1 / med < t["min_per_s"]:
                (info if ratios_only else misses).append("throughput")
        floor_txt = "-"
        if "floor" in t:
            floor = t["floor"]
            fmed = medians.get(floor)
            if fmed is None:
                if floor in skipped:
                    floor_txt = f"{floor}: skipped"
                    if "max_ratio" in t:
                        notes.append(f"floor skipped ({skipped[floor]})")
                else:
                    floor_txt = f"{floor}: not measured"
                    misses.append(f"floor {floor} not measured")
            else:
                ratio = med / fmed
                floor_txt = f"{ratio:.2f}x {floor}"
                if "max_ratio" in t and not ratio <= t["max_ratio"]:
                    misses.append("ratio to floor")
        gated: dict[str, float] = t.get("peer_max_ratio", {})
        peer_parts = []
        for peer in [*t.get("peers", []), *(p for p in gated if p not in t.get("peers", []))]:
            pmed = medians.get(peer)
            if pmed is None:
                why = "skipped" if peer in skipped else "not measured"
                peer_parts.append(f"{peer}: {why}")
                if peer in gated:
                    if peer in skipped:
                        notes.append(f"{peer} skipped ({skipped[peer]})")
                    else:
                        misses.append(f"peer {peer} not measured")
                continue
            ratio = med / pmed
            peer_parts.append(f"{ratio:.2f}x {peer}")
            if peer in gated and not ratio <= gated[peer]:
                misses.append(f"ratio to {peer}")
        if misses:
            verdict = "MISS (" + ", ".join(misses) + ")"
        else:
            verdict = "pass"
            if info:
                verdict += " (ratios; " + ", ".join(info) + " target missed: informational)"
            if notes:
                verdict += "; not checked: " + "; ".join(notes)
        rows.append(Row(name, median_txt, _target_text(t), floor_txt, ", ".join(peer_parts) or "-", verdict))
    return rows


def _target_text(t: dict[str, Any]) -> str:
    parts = []
    if "max_us" in t:
        parts.append(f"< {t['max_us']:g} us")
    if "min_per_s" in t:
        parts.append(f">= {t['min_per_s']:,}/s")
    if "max_ratio" in t:
        parts.append(f"<= {t['max_ratio']:g}x floor")
    for peer, r in t.get("peer_max_ratio", {}).items():
        parts.append(f"<= {r:g}x {peer.split('.')[1] if peer.count('.') else peer}")
    return "; ".join(parts) or "-"


HEADER = ("benchmark", "median", "target", "ratio to floor", "ratio to peers", "verdict")


def render(rows: list[Row], markdown: bool = False) -> str:
    table = [HEADER] + [(r.benchmark, r.median, r.target, r.floor_ratio, r.peers, r.verdict) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table]
        lines.insert(1, "|" + "---|" * len(HEADER))
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def describe(results: Results) -> str:
    md = results.metadata
    keys = ("cpu_model_name", "cpu_count", "python_version", "symphony-ipc_version")
    parts = [f"{k}={md[k]}" for k in keys if k in md]
    if results.loads:
        lo, hi, mid = min(results.loads), max(results.loads), statistics.median(results.loads)
        parts.append(f"load average (1 min) during the runs: {lo:.2f} to {hi:.2f}, median {mid:.2f}")
    return "measured on: " + (", ".join(parts) if parts else "(no metadata)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--targets", type=Path, default=HERE / "targets.toml")
    parser.add_argument("--ratios-only", action="store_true", help="absolute targets are informational")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    try:
        targets = tomllib.loads(args.targets.read_text(encoding="utf-8"))["target"]
        check_targets(targets)
        results = load_results(args.results)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"perf check: {e}", file=sys.stderr)
        return 2
    if not results.medians:
        print("perf check: the results hold no benchmark", file=sys.stderr)
        return 2
    if not all(math.isfinite(v) and v > 0 for v in results.medians.values()):
        print("perf check: a median is not a positive number", file=sys.stderr)
        return 2
    rows = evaluate(targets, results, args.ratios_only)
    print(describe(results))
    print(render(rows, args.markdown))
    missed = [r for r in rows if r.missed]
    skipped = [r for r in rows if r.verdict.startswith("skipped")]
    print(
        f"\n{len(rows) - len(missed) - len(skipped)} of {len(rows)} targets met"
        + (f"; {len(skipped)} skipped" if skipped else "")
        + (f"; missed: {', '.join(r.benchmark for r in missed)}" if missed else "")
        + (" (--ratios-only: absolute targets informational)" if args.ratios_only else "")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
