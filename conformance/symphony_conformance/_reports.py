"""Reports of a conformance run: the JSON report (``spec/report.schema.json``), JUnit XML, a
Markdown summary, a plain-text rendering, and the comparison of two JSON reports.

Everything here works on the JSON report alone (a ``dict``), so a saved report can be rendered
again (``symphony-conformance report FILE``) and compared (``symphony-conformance diff``) without
running anything.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from . import _spec
from ._resources import spec_dir
from ._results import CaseRecord, Conformance, RequirementResult, RunInfo

REPORT_FORMAT: Final = 1
_BAD: Final = ("failed", "errored")


class ReportError(Exception):
    """A report file that is unreadable or does not match spec/report.schema.json."""


# ---------------------------------------------------------------- hashes


def _canonical_sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def requirements_sha256(requirements: Iterable[_spec.Requirement]) -> str:
    """The hash of the requirement list (id, level, profile, statement), in document order."""
    return _canonical_sha256([[r.id, r.level, r.profile, r.statement] for r in requirements])


def vectors_sha256(raw_vectors: Iterable[Mapping[str, Any]]) -> str:
    """The hash of a vector set (each vector as data, in id order): equal sets, equal hashes,
    whatever their files' formatting."""
    return _canonical_sha256(sorted((dict(v) for v in raw_vectors), key=lambda v: str(v.get("id"))))


# ---------------------------------------------------------------- building the report


def _vector_expectation(vector: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"operation": vector.operation, "result": vector.result}
    for key in ("expected", "error", "error_field"):
        value = getattr(vector, key)
        if value is not None:
            out[key] = value
    return out


def _expected_and_actual(
    record: CaseRecord, calls: Sequence[Mapping[str, Any]], vectors: Mapping[str, Any]
) -> tuple[Any, Any]:
    """What the case expected and what the implementation answered, where known."""
    vector = vectors.get(record.vector_id) if record.vector_id else None
    if vector is not None:
        last = calls[-1] if calls else None
        actual = {"operation": last["op"], **last["actual"]} if last and "actual" in last else None
        return _vector_expectation(vector), actual
    for call in calls:
        if call.get("agrees") is False and call.get("reference") is not None:
            return {"operation": call["op"], **call["reference"]}, {"operation": call["op"], **call["actual"]}
    return None, None


def _case_entry(
    record: CaseRecord, vectors: Mapping[str, Any], expected_cases: frozenset[str]
) -> dict[str, Any]:
    from ._recording import with_reference_answers

    out = record.to_dict()
    calls = with_reference_answers(record.calls) if record.calls else []
    out["calls"] = calls
    expected, actual = (None, None)
    if record.outcome in _BAD:
        expected, actual = _expected_and_actual(record, calls, vectors)
    out["expected"] = expected
    out["actual"] = actual
    out["expected_failure"] = record.nodeid in expected_cases
    return out


def _profile_summaries(
    requirements: Sequence[Mapping[str, Any]], cases: Sequence[Mapping[str, Any]], selected: Sequence[str]
) -> list[dict[str, Any]]:
    out = []
    for profile in selected:
        reqs = [r for r in requirements if r["profile"] == profile]
        musts = [r for r in reqs if r["level"] == "MUST"]
        of_profile = [c for c in cases if _home_profile(c, selected) == profile]
        counts = {
            o: sum(1 for c in of_profile if c["outcome"] == o)
            for o in ("passed", "failed", "skipped", "errored")
        }
        ran = counts["passed"] + counts["failed"] + counts["errored"]
        out.append(
            {
                "profile": profile,
                "declared": bool(reqs and reqs[0]["declared"]),
                "requirements": len(reqs),
                "requirements_passed": sum(1 for r in reqs if r["verdict"] == "passed"),
                "must": len(musts),
                "must_passed": sum(1 for r in musts if r["verdict"] == "passed"),
                "must_failed": sum(1 for r in musts if r["verdict"] in _BAD and not r["expected_failure"]),
                "expected_failures": sum(1 for r in reqs if r["expected_failure"]),
                "cases": counts,
                "case_pass_rate": round(counts["passed"] / ran, 4) if ran else None,
            }
        )
    return out


def _home_profile(case: Mapping[str, Any], selected: Sequence[str]) -> str:
    """The profile a case is filed under: the first of its profiles the run selected."""
    for p in case.get("profiles") or ():
        if p in selected:
            return str(p)
    profiles = case.get("profiles") or ["unknown"]
    return str(profiles[0])


def reproduce_command(info: RunInfo, *, vectors_dir: str | None = None, keyword: str | None = None) -> str:
    parts = ["symphony-conformance", "run", "--impl", info.impl_spec]
    for option in ("transport", "endpoint"):  # the transport under test, when one was plugged in
        value = info.implementation.get(option)
        if isinstance(value, str) and value:
            parts += [f"--{option}", value]
    for p in info.selected_profiles:
        parts += ["--profile", p]
    parts += ["--seed", str(info.seed), "--hypothesis-profile", info.hypothesis_profile]
    if vectors_dir:
        parts += ["--vectors", vectors_dir]
    if keyword:
        parts += ["-k", keyword]
    return shlex.join(parts)


@dataclass
class RunContext:
    """What a run adds to its results to make a report."""

    info: RunInfo
    results: Sequence[RequirementResult]
    verdict: Conformance
    records: Sequence[CaseRecord]
    vectors: Sequence[Any]
    """The run's :class:`~._vectors.Vector` objects."""
    vectors_dir: str | None = None
    started_at: str = ""
    duration: float = 0.0
    workers: int = 1
    keyword: str | None = None
    max_fail: int | None = None
    baseline: Mapping[str, Any] | None = None
    """``{"file": ..., "entries": [...]}`` when a baseline was applied."""
    expected_requirements: Sequence[str] = ()
    expected_cases: frozenset[str] = frozenset()
    expected_reasons: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Requirement id -> the baseline entry (reason, link) that expects its failure."""
    counterexamples: Sequence[Mapping[str, Any]] = ()


def build_report(ctx: RunContext) -> dict[str, Any]:
    """The JSON report of a run (``spec/report.schema.json``)."""
    from . import __version__

    reqs = _spec.requirements()
    declared = set(ctx.verdict.declared_profiles)
    by_id = {v.id: v for v in ctx.vectors}
    expected_reqs = set(ctx.expected_requirements)
    requirements = []
    for r in ctx.results:
        entry = r.to_dict()
        entry["declared"] = r.profile in declared
        entry["expected_failure"] = (
            dict(ctx.expected_reasons.get(r.id) or {"reason": "every failing case is listed"})
            if r.id in expected_reqs
            else None
        )
        requirements.append(entry)
    cases = [_case_entry(rec, by_id, ctx.expected_cases) for rec in ctx.records]
    run = ctx.info.to_dict()
    run.update(
        {
            "started_at": ctx.started_at,
            "duration": round(ctx.duration, 3),
            "workers": ctx.workers,
            "keyword": ctx.keyword,
            "max_fail": ctx.max_fail,
            "cut_short": ctx.verdict.cut_short,
            "reproduce": reproduce_command(ctx.info, vectors_dir=ctx.vectors_dir, keyword=ctx.keyword),
        }
    )
    return {
        "report_format": REPORT_FORMAT,
        "harness": {"name": "symphony-conformance", "version": __version__},
        "spec": {
            "version": ctx.info.spec_version,
            "requirements": len(reqs),
            "requirements_sha256": requirements_sha256(reqs.values()),
        },
        "vectors": {
            "source": ctx.vectors_dir or "bundled",
            "count": len(ctx.vectors),
            "sha256": vectors_sha256(v.raw for v in ctx.vectors),
        },
        "run": run,
        "conformance": ctx.verdict.to_dict(),
        "profiles": _profile_summaries(requirements, cases, ctx.info.selected_profiles),
        "requirements": requirements,
        "cases": cases,
        "baseline": dict(ctx.baseline) if ctx.baseline is not None else None,
        "counterexamples": [dict(c) for c in ctx.counterexamples],
    }


# ---------------------------------------------------------------- reading and checking


@cache
def _validator() -> Any:
    jsonschema: Any = importlib.import_module("jsonschema")  # no type stubs
    schema = json.loads((spec_dir() / "report.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def report_errors(doc: Any) -> list[str]:
    """Where ``doc`` breaks spec/report.schema.json (at most 10)."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message[:300]}" for e in errors[:10]]


def load_report(path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: cannot read: {e}") from None
    problems = report_errors(doc)
    if problems:
        raise ReportError(
            f"{path} is not a conformance report (spec/report.schema.json): " + "; ".join(problems[:3])
        )
    return doc  # type: ignore[no-any-return]


def write_json(doc: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(
        json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )


# ---------------------------------------------------------------- text


def _results_of(report: Mapping[str, Any]) -> list[RequirementResult]:
    out = []
    for r in report["requirements"]:
        out.append(
            RequirementResult(
                id=r["id"],
                level=r["level"],
                profile=r["profile"],
                statement=r["statement"],
                verdict=r["verdict"],
                passed=r["passed"],
                failed=r["failed"],
                skipped=r["skipped"],
                errored=r["errored"],
                declined=r.get("declined", 0),
                failing_cases=tuple(r.get("failing_cases", ())),
            )
        )
    return out


def _conformance_of(report: Mapping[str, Any]) -> Conformance:
    c = report["conformance"]
    return Conformance(
        declared_profiles=tuple(c["declared_profiles"]),
        failed=tuple(c["failed"]),
        errored=tuple(c["errored"]),
        skipped=tuple(c["skipped"]),
        untested=tuple(c["untested"]),
        passed=tuple(c["passed"]),
        expected_failures=tuple(c.get("expected_failures", ())),
        stale_baseline=tuple(c.get("stale_baseline", ())),
        cut_short=c.get("cut_short"),
    )


def baseline_lines(report: Mapping[str, Any]) -> list[str]:
    baseline = report.get("baseline")
    if not baseline:
        return []
    out = []
    for e in baseline["entries"]:
        label = f"requirement {e['requirement']}" if "requirement" in e else f"case {e['case']}"
        link = f" ({e['link']})" if e.get("link") else ""
        if e["status"] == "expected":
            out.append(f"EXPECTED FAILURE {label}: {e['reason']}{link}")
        elif e["status"] == "stale":
            shown = ", ".join(e["cases"][:3]) + (" ..." if len(e["cases"]) > 3 else "")
            out.append(
                f"STALE baseline entry {label}: it passes now ({shown}); remove it (--update-baseline)"
            )
        else:
            out.append(f"baseline entry {label}: not run")
    return out


def verdict_notes(verdict: Conformance) -> list[str]:
    """The lines under the summary line that a baseline or an early stop add."""
    out = []
    if verdict.expected_failures:
        out.append(f"expected failures (baseline): {', '.join(verdict.expected_failures)}")
    if verdict.stale_baseline:
        out.append(f"STALE baseline entries (they pass now): {', '.join(verdict.stale_baseline)}")
    if verdict.cut_short:
        out.append(f"RUN CUT SHORT: {verdict.cut_short}; the requirements after the stop were not checked")
    return out


def render_text(report: Mapping[str, Any]) -> str:
    """The table, the failure details and the verdict, as ``run`` prints them."""
    from ._render import failure_details, requirement_table, summary_line

    run = report["run"]
    impl = run["implementation"]
    results = _results_of(report)
    verdict = _conformance_of(report)
    lines = [
        f"Symphony IPC conformance {report['harness']['version']}: {impl.get('name')} {impl.get('version')} "
        f"({impl.get('language')}), --impl {run['impl_spec']}",
        f"spec {report['spec']['version']}; vectors {report['vectors']['source']} "
        f"({report['vectors']['count']}); hypothesis profile {run['hypothesis_profile']}; seed {run['seed']}",
        "",
        requirement_table(results, verdict.declared_profiles),
    ]
    details = failure_details(results)
    if details:
        lines += ["", details]
    extra = baseline_lines(report)
    if extra:
        lines += ["", *extra]
    lines += ["", summary_line(results, verdict), *verdict_notes(verdict)]
    lines.append(f"seed: {run['seed']} (reproduce: {run.get('reproduce') or '--seed ' + str(run['seed'])})")
    return "\n".join(lines)


# ---------------------------------------------------------------- Markdown


def _md(text: Any, limit: int = 160) -> str:
    """One line of Markdown table/list text."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def _short_case(nodeid: str) -> str:
    return nodeid.rpartition("::")[2] or nodeid


def render_markdown(report: Mapping[str, Any], *, max_failures: int = 30) -> str:
    """A summary for a CI step summary or a pull-request comment."""
    run = report["run"]
    impl = run["implementation"]
    verdict = report["conformance"]
    head = "✅ CONFORMS" if verdict["conforms"] else "❌ DOES NOT CONFORM"
    out = [
        f"## Symphony IPC conformance: {head}",
        "",
        f"**{_md(impl.get('name'))} {_md(impl.get('version'))}** ({_md(impl.get('language'))}) · "
        f"`--impl {_md(run['impl_spec'], 200)}` · harness {report['harness']['version']} · "
        f"spec {report['spec']['version']} · seed `{run['seed']}` · "
        f"Hypothesis profile `{run['hypothesis_profile']}`",
        "",
        "| profile | declared | MUST passed | requirements passed | cases passed | failed | errored "
        "| skipped | case pass rate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["profiles"]:
        rate = "n/a" if p["case_pass_rate"] is None else f"{100 * p['case_pass_rate']:.1f}%"
        c = p["cases"]
        declared = "yes" if p["declared"] else "no"
        out.append(
            f"| {p['profile']} | {declared} | {p['must_passed']}/{p['must']} | "
            f"{p['requirements_passed']}/{p['requirements']} | {c['passed']} | {c['failed']} | "
            f"{c['errored']} | {c['skipped']} | {rate} |"
        )
    cases_by_id = {c["nodeid"]: c for c in report["cases"]}
    failing = [r for r in report["requirements"] if r["declared"] and r["verdict"] in _BAD]
    unexpected = [r for r in failing if not r["expected_failure"]]
    if unexpected:
        out += ["", f"### Failing requirements ({len(unexpected)})", ""]
        for r in unexpected[:max_failures]:
            first = r["failing_cases"][0] if r["failing_cases"] else None
            example = ""
            if first is not None:
                msg = (cases_by_id.get(first) or {}).get("message", "")
                example = f" — e.g. `{_md(_short_case(first), 100)}`: {_md(msg, 160)}"
            out.append(
                f"- **{r['id']}** ({r['level']}, {r['profile']}, {r['verdict']}, "
                f"{len(r['failing_cases'])} case(s)): {_md(r['statement'], 120)}{example}"
            )
        if len(unexpected) > max_failures:
            out.append(f"- … and {len(unexpected) - max_failures} more (see the JSON report)")
    expected = [r for r in failing if r["expected_failure"]]
    if expected:
        out += ["", f"### Expected failures (baseline, {len(expected)})", ""]
        for r in expected:
            why = r["expected_failure"]
            link = f" ({why['link']})" if why.get("link") else ""
            out.append(f"- **{r['id']}**: {_md(why.get('reason', ''))}{link}")
    if verdict.get("stale_baseline"):
        out += ["", "### Stale baseline entries", ""]
        out += [f"- `{_md(e)}` passes now: remove it from the baseline" for e in verdict["stale_baseline"]]
    if verdict.get("cut_short"):
        out += ["", f"**Run cut short:** {_md(verdict['cut_short'])}; later requirements were not checked."]
    if verdict.get("skipped"):
        out += ["", f"**MUST skipped by the implementation:** {', '.join(verdict['skipped'])}"]
    saved = [c for c in report.get("counterexamples") or [] if c.get("file")]
    if saved:
        out += ["", f"Counterexamples saved as vectors: {len(saved)} file(s) (replay with `--vectors DIR`)."]
    out += ["", "### Reproduce", "", "```sh", run.get("reproduce") or f"--seed {run['seed']}", "```", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- JUnit XML

_XML_ILLEGAL: Final = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: Any) -> str:
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def render_junit(report: Mapping[str, Any]) -> str:
    """JUnit XML: one ``testsuite`` per selected profile (``symphony.<profile>``), one ``testcase``
    per case, named after its test id and requirement ids; stale baseline entries are failures of
    a ``symphony.baseline`` suite."""
    run = report["run"]
    selected = list(run["selected_profiles"])
    suites: dict[str, list[Mapping[str, Any]]] = {p: [] for p in selected}
    for case in report["cases"]:
        suites.setdefault(_home_profile(case, selected), []).append(case)
    root = ET.Element("testsuites", name="symphony-conformance")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for profile, cases in suites.items():
        suite = ET.SubElement(
            root, "testsuite", name=f"symphony.{profile}", timestamp=run.get("started_at") or ""
        )
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("implementation", f"{run['implementation'].get('name')} {run['implementation'].get('version')}"),
            ("impl", run["impl_spec"]),
            ("seed", run["seed"]),
            ("hypothesis_profile", run["hypothesis_profile"]),
            ("spec_version", report["spec"]["version"]),
        ):
            ET.SubElement(props, "property", name=name, value=_xml_text(value))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        suite_time = 0.0
        for case in cases:
            counts["tests"] += 1
            suite_time += float(case.get("duration") or 0.0)
            nodeid = case["nodeid"]
            module = nodeid.partition("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
            reqs = " ".join(case["requirements"])
            tc = ET.SubElement(
                suite,
                "testcase",
                classname=f"symphony.{profile}.{module}",
                name=_xml_text(f"{_short_case(nodeid)} [{reqs}]"),
                time=f"{float(case.get('duration') or 0.0):.6f}",
            )
            tprops = ET.SubElement(tc, "properties")
            for rid in case["requirements"]:
                ET.SubElement(tprops, "property", name="requirement", value=rid)
            if case.get("vector_id"):
                ET.SubElement(tprops, "property", name="vector", value=_xml_text(case["vector_id"]))
            outcome = case["outcome"]
            message = _xml_text(case.get("message") or outcome)
            body = _xml_text(case.get("longrepr") or case.get("message") or "")
            if outcome in _BAD and case.get("expected_failure"):
                counts["skipped"] += 1
                ET.SubElement(
                    tc, "skipped", type="expected-failure", message=f"expected failure (baseline): {message}"
                )
                ET.SubElement(tc, "system-out").text = body
            elif outcome == "failed":
                counts["failures"] += 1
                ET.SubElement(tc, "failure", message=message, type="nonconformance").text = body
            elif outcome == "errored":
                counts["errors"] += 1
                evidence = json.dumps(case.get("evidence") or {}, indent=1, ensure_ascii=False)[:20000]
                ET.SubElement(tc, "error", message=message, type="implementation-broken").text = _xml_text(
                    f"{body}\n{evidence}"
                )
            elif outcome == "skipped":
                counts["skipped"] += 1
                ET.SubElement(tc, "skipped", message=message)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{suite_time:.3f}")
        total_time += suite_time
    stale = report["conformance"].get("stale_baseline") or []
    if stale:
        suite = ET.SubElement(root, "testsuite", name="symphony.baseline", tests=str(len(stale)))
        suite.set("failures", str(len(stale)))
        for entry in stale:
            tc = ET.SubElement(suite, "testcase", classname="symphony.baseline", name=_xml_text(entry))
            ET.SubElement(
                tc,
                "failure",
                type="stale-baseline",
                message=f"stale baseline entry {_xml_text(entry)}: it passes now",
            )
        totals["tests"] += len(stale)
        totals["failures"] += len(stale)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- diff


@dataclass
class ReportDiff:
    regressed: list[tuple[str, str, str]] = field(default_factory=list)
    improved: list[tuple[str, str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)
    newly_failing: list[tuple[str, str, str]] = field(default_factory=list)
    """Cases failing or erroring in the new report that passed (or were skipped) in the old one."""
    new_failing: list[tuple[str, str]] = field(default_factory=list)
    """Failing cases of the new report the old one did not have."""
    newly_passing: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regression(self) -> bool:
        """A requirement regressed, or a case that passed before fails now."""
        return bool(self.regressed or any(old == "passed" for _, old, _ in self.newly_failing))


def _verdicts(report: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for r in report["requirements"]:
        if not r.get("declared", True):
            out[r["id"]] = "not declared"
        elif r["verdict"] == "skipped" and r.get("declined"):
            out[r["id"]] = "declined"
        else:
            out[r["id"]] = r["verdict"]
    return out


def diff_reports(old: Mapping[str, Any], new: Mapping[str, Any]) -> ReportDiff:
    """What changed from ``old`` to ``new``: requirements that regressed (passed or untested before,
    failed/errored/declined now), improved (failed/errored/declined before, passed now) or changed
    otherwise, and the cases whose outcome changed."""
    d = ReportDiff()
    for key, label in (
        (("spec", "requirements_sha256"), "the requirement lists differ"),
        (("vectors", "sha256"), "the vector sets differ"),
        (("run", "seed"), "the seeds differ (the property tests drew other examples)"),
        (("run", "hypothesis_profile"), "the Hypothesis profiles differ"),
    ):
        a, b = old[key[0]].get(key[1]), new[key[0]].get(key[1])
        if a != b:
            d.notes.append(f"{label}: {a} -> {b}")
    ov, nv = _verdicts(old), _verdicts(new)
    bad = ("failed", "errored", "declined")
    for rid in [*nv, *(r for r in ov if r not in nv)]:
        a, b = ov.get(rid, "not run"), nv.get(rid, "not run")
        if a == b:
            continue
        if b in bad and a not in bad:
            d.regressed.append((rid, a, b))
        elif a in bad and b == "passed":
            d.improved.append((rid, a, b))
        else:
            d.changed.append((rid, a, b))
    oc = {c["nodeid"]: c["outcome"] for c in old["cases"]}
    for c in new["cases"]:
        was, now = oc.get(c["nodeid"]), c["outcome"]
        if now in _BAD:
            if was is None:
                d.new_failing.append((c["nodeid"], now))
            elif was not in _BAD:
                d.newly_failing.append((c["nodeid"], was, now))
        elif now == "passed" and was in _BAD:
            d.newly_passing.append((c["nodeid"], str(was), now))
    return d


def render_diff(d: ReportDiff, old_name: str, new_name: str, *, limit: int = 50) -> str:
    lines = [f"comparing {old_name} -> {new_name}"]
    lines += [f"note: {n}" for n in d.notes]

    def section(title: str, rows: Sequence[tuple[str, ...]]) -> None:
        if not rows:
            return
        lines.append(f"{title} ({len(rows)}):")
        for row in rows[:limit]:
            head, *rest = row
            lines.append(f"  {head}: {' -> '.join(rest)}")
        if len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more")

    section("REGRESSED requirements", d.regressed)
    section("improved requirements", d.improved)
    section("changed requirements", d.changed)
    section("cases newly failing", d.newly_failing)
    section("new cases failing (not in the old report)", d.new_failing)
    section("cases newly passing", d.newly_passing)
    if not (d.regressed or d.improved or d.changed or d.newly_failing or d.new_failing or d.newly_passing):
        lines.append("no change in requirement verdicts or case outcomes")
    lines.append("verdict: REGRESSION" if d.regression else "verdict: no regression")
    return "\n".join(lines)
