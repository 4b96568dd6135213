"""Gating a release on conformance: what ``run`` does once pytest is done (the baseline, the
verdict, the reports, the counterexample vectors, the updated baseline), and the ``report`` and
``diff`` commands. See docs/ci.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from . import _spec


def _harness_error(message: str) -> Exception:
    from .cli import HarnessError

    return HarnessError(message)


def preflight(args: argparse.Namespace) -> None:
    """Check the gate options of ``run`` before anything runs (a bad one is exit 2)."""
    from ._baseline import BaselineError, load_baseline

    if getattr(args, "fail_fast", False):
        if args.max_fail not in (None, 1):
            raise _harness_error("--fail-fast is --max-fail 1; give one of them")
        args.max_fail = 1
    if args.max_fail is not None and args.max_fail < 1:
        raise _harness_error("--max-fail: expected a number >= 1")
    if args.expected_failures:
        try:
            load_baseline(args.expected_failures)
        except BaselineError as e:
            raise _harness_error(str(e)) from None
    if args.baseline_add_failures and not args.update_baseline:
        raise _harness_error("--baseline-add-failures needs --update-baseline FILE")
    for option, value in (
        ("--report-json", args.json_out),
        ("--junit-xml", args.junit_xml),
        ("--markdown", args.markdown),
        ("--update-baseline", args.update_baseline),
    ):
        if value:
            try:
                Path(value).resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise _harness_error(f"{option} {value}: cannot create the directory: {e.strerror}") from None
    args.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args.started = time.monotonic()


def pytest_options(args: argparse.Namespace) -> list[str]:
    """The plugin options of the gate (``--max-fail`` counts failures the baseline does not expect)."""
    out: list[str] = []
    if getattr(args, "max_fail", None):
        out += ["--symphony-max-fail", str(args.max_fail)]
    if getattr(args, "expected_failures", None):
        out += ["--symphony-expected-failures", str(args.expected_failures)]
    return out


def _write(path: str, text: str, option: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise _harness_error(f"{option} {path}: cannot write: {e.strerror or e}") from None


def finish_run(
    args: argparse.Namespace,
    config: Any,
    *,
    profiles: Sequence[str],
    declared: Sequence[str],
    implementation: Mapping[str, Any],
    seed: int,
    vectors: Sequence[Any],
    out: TextIO,
) -> int:
    """Grade the run, print the verdict, write what was asked for; the exit code of ``run``."""
    from . import __version__
    from ._baseline import apply_baseline, load_baseline, summary_lines, updated_baseline, write_baseline
    from ._render import failure_details, requirement_table, summary_line
    from ._reports import RunContext, build_report, render_junit, render_markdown, verdict_notes, write_json
    from ._results import RunInfo, conformance, requirement_results
    from .plugin import results_collector

    collector = results_collector(config)
    records = collector.records
    reqs = _spec.requirements()
    wanted = [r for r in reqs.values() if r.profile in profiles]
    results = requirement_results(records, wanted)
    baseline = load_baseline(args.expected_failures) if args.expected_failures else None
    outcome = apply_baseline(baseline, results, records) if baseline is not None else None
    verdict = conformance(
        results,
        declared,
        expected=outcome.expected_requirements if outcome else (),
        stale=[e.label for e in outcome.stale] if outcome else (),
        cut_short=collector.cut_short,
    )
    info = RunInfo(
        impl_spec=args.impl,
        implementation=dict(implementation),
        selected_profiles=tuple(profiles),
        hypothesis_profile=args.hypothesis_profile,
        seed=seed,
        spec_version=_spec.spec_version(),
        harness_version=__version__,
    )
    print("", file=out)
    print(requirement_table(results, declared), file=out)
    details = failure_details(results)
    if details:
        print("", file=out)
        print(details, file=out)
    if outcome is not None:
        print("", file=out)
        print("\n".join(summary_lines(outcome)), file=out)
    print("", file=out)
    print(summary_line(results, verdict), file=out)
    for note in verdict_notes(verdict):
        print(note, file=out)
    print(f"seed: {info.seed} (reproduce with --seed {info.seed})", file=out)

    saved: list[dict[str, Any]] = []
    if args.save_counterexamples:
        from ._counterexamples import save_counterexamples

        try:
            found = save_counterexamples(records, args.save_counterexamples, seed=seed)
        except OSError as e:
            raise _harness_error(f"--save-counterexamples {args.save_counterexamples}: {e}") from None
        saved = [c.to_dict() for c in found]
        files = [c for c in found if c.file]
        print(
            f"counterexamples: {len(files)} vector file(s) in {args.save_counterexamples} "
            f"({sum(1 for c in files if c.reproduces)} reproduce the failure on their own); "
            f"replay: symphony-conformance run --vectors {args.save_counterexamples} --impl {args.impl}",
            file=out,
        )
        for c in found:
            if not c.file:
                print(f"  no vector for {c.case}: {c.note}", file=out)

    if args.json_out or args.junit_xml or args.markdown:
        reasons: dict[str, Mapping[str, Any]] = {}
        if outcome is not None:
            for s in outcome.statuses:
                if s.status != "expected":
                    continue
                if s.entry.kind == "requirement":
                    reasons[s.entry.id] = s.entry.to_dict()
                else:
                    for r in results:
                        if set(s.cases) & set(r.failing_cases):
                            reasons.setdefault(r.id, s.entry.to_dict())
        ctx = RunContext(
            info=info,
            results=results,
            verdict=verdict,
            records=records,
            vectors=vectors,
            vectors_dir=str(args.vectors) if args.vectors else None,
            started_at=getattr(args, "started_at", ""),
            duration=time.monotonic() - getattr(args, "started", time.monotonic()),
            workers=args.workers,
            keyword=args.keyword,
            max_fail=args.max_fail,
            baseline=(
                {"file": str(args.expected_failures), "entries": [s.to_dict() for s in outcome.statuses]}
                if outcome is not None
                else None
            ),
            expected_requirements=outcome.expected_requirements if outcome else (),
            expected_cases=outcome.expected_cases if outcome else frozenset(),
            expected_reasons=reasons,
            counterexamples=saved,
        )
        report = build_report(ctx)
        if args.json_out:
            try:
                write_json(report, args.json_out)
            except OSError as e:
                raise _harness_error(
                    f"--report-json {args.json_out}: cannot write: {e.strerror or e}"
                ) from None
        if args.junit_xml:
            _write(args.junit_xml, render_junit(report), "--junit-xml")
        if args.markdown:
            _write(args.markdown, render_markdown(report), "--markdown")

    if args.update_baseline:
        new = updated_baseline(baseline, outcome, results, declared, add_failures=args.baseline_add_failures)
        try:
            write_baseline(new, args.update_baseline)
        except OSError as e:
            raise _harness_error(f"--update-baseline {args.update_baseline}: {e.strerror or e}") from None
        before = len(baseline.entries) if baseline is not None else 0
        removed = len(outcome.stale) if outcome is not None else 0
        added = len(new.entries) - before + removed
        print(
            f"baseline written to {args.update_baseline}: {len(new.entries)} entries "
            f"({removed} stale removed, {added} added)",
            file=out,
        )
    return 0 if verdict.conforms else 1


# ---------------------------------------------------------------- report, diff


def report_command(args: argparse.Namespace, out: TextIO) -> int:
    from ._reports import ReportError, load_report, render_markdown, render_text

    try:
        report = load_report(args.file)
    except ReportError as e:
        raise _harness_error(str(e)) from None
    print(render_markdown(report) if args.format == "markdown" else render_text(report), file=out)
    return 0


def diff_command(args: argparse.Namespace, out: TextIO) -> int:
    from ._reports import ReportError, diff_reports, load_report, render_diff

    try:
        old, new = load_report(args.old), load_report(args.new)
    except ReportError as e:
        raise _harness_error(str(e)) from None
    d = diff_reports(old, new)
    print(render_diff(d, args.old, args.new), file=out)
    return 1 if d.regression else 0


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The reporting and gating options of ``run``."""
    group = run.add_argument_group("reports and gating (docs/ci.md)")
    group.add_argument(
        "--report-json",
        "--json",
        dest="json_out",
        default=None,
        metavar="FILE",
        help="write the JSON report (spec/report.schema.json)",
    )
    group.add_argument(
        "--junit-xml", default=None, metavar="FILE", help="write JUnit XML (one suite per profile)"
    )
    group.add_argument(
        "--markdown",
        default=None,
        metavar="FILE",
        help="write a Markdown summary (CI step summary, PR comment)",
    )
    group.add_argument(
        "--save-counterexamples",
        default=None,
        metavar="DIR",
        help="write each failing Hypothesis example as a vector file (replay with --vectors DIR)",
    )
    group.add_argument(
        "--expected-failures",
        default=None,
        metavar="FILE",
        help="a baseline (spec/baseline.schema.json): listed failures do not fail the run, "
        "listed entries that pass (stale) do",
    )
    group.add_argument(
        "--update-baseline",
        default=None,
        metavar="FILE",
        help="write the baseline without its stale entries (to FILE; may be the --expected-failures file)",
    )
    group.add_argument(
        "--baseline-add-failures",
        action="store_true",
        help="with --update-baseline: also add every unexpected failed MUST, with a placeholder reason",
    )
    group.add_argument(
        "--max-fail",
        type=int,
        default=None,
        metavar="N",
        help="stop after N failed cases the baseline does not expect (the run then exits 1)",
    )
    group.add_argument("-x", "--fail-fast", action="store_true", help="stop at the first unexpected failure")
