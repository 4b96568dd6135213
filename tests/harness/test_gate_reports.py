"""``run --report-json/--junit-xml/--markdown``, ``report`` and ``diff``: the reports of a run.

One reference run and one mutant run of the priority profile (in process, quick Hypothesis
settings, a fixed seed) feed every test of the module.
"""

from __future__ import annotations

import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from symphony_conformance import spec_dir
from symphony_conformance._reports import diff_reports, render_markdown, report_errors
from symphony_conformance.cli import build_parser, main

MUTANT = "python:symphony_conformance.mutants:lifo_within_priority"
SEED = "1234"


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(list(argv), out=out)
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("reports")
    out: dict[str, Any] = {"dir": d}
    for name, impl in (("ref", "reference"), ("mut", MUTANT)):
        rc, text = cli(
            "run",
            "--impl",
            impl,
            "--profile",
            "priority",
            "--hypothesis-profile",
            "quick",
            "--seed",
            SEED,
            "--report-json",
            str(d / f"{name}.json"),
            "--junit-xml",
            str(d / f"{name}.xml"),
            "--markdown",
            str(d / f"{name}.md"),
        )
        out[name] = {"rc": rc, "text": text, "report": json.loads((d / f"{name}.json").read_text())}
    return out


def test_report_schema_is_a_valid_2020_12_schema() -> None:
    schema = json.loads((spec_dir() / "report.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_json_report_validates_and_records_the_run(runs: dict[str, Any]) -> None:
    assert runs["ref"]["rc"] == 0
    assert runs["mut"]["rc"] == 1
    for name in ("ref", "mut"):
        report = runs[name]["report"]
        assert report_errors(report) == []
        assert report["run"]["seed"] == int(SEED)
        assert report["run"]["hypothesis_profile"] == "quick"
        assert len(report["spec"]["requirements_sha256"]) == 64
        assert len(report["vectors"]["sha256"]) == 64
        assert "priority" in report["run"]["implementation"]["profiles"]
        assert "--seed 1234" in report["run"]["reproduce"]
    # same spec and vectors, same hashes; the implementations differ
    ref, mut = runs["ref"]["report"], runs["mut"]["report"]
    assert ref["vectors"]["sha256"] == mut["vectors"]["sha256"]
    assert ref["run"]["implementation"]["name"] != mut["run"]["implementation"]["name"]
    # a report that breaks the schema is told apart
    broken = {**mut, "run": {**mut["run"], "seed": "not a number"}}
    assert any("seed" in e for e in report_errors(broken))


def test_failed_cases_carry_expected_actual_and_the_counterexample(runs: dict[str, Any]) -> None:
    cases = {c["nodeid"]: c for c in runs["mut"]["report"]["cases"]}
    vector_case = cases["suite/test_vectors.py::test_vector[priority/order-fifo-equal]"]
    assert vector_case["outcome"] == "failed"
    assert vector_case["expected"]["expected"]["order"] == [0, 1, 2, 3, 4]
    assert vector_case["actual"]["operation"] == "order"
    assert vector_case["actual"]["result"] != vector_case["expected"]["expected"]["order"]
    prop = cases["suite/test_properties.py::test_ordering[PRI-004]"]
    assert prop["outcome"] == "failed"
    assert prop["falsifying_example"]
    assert prop["calls"]
    assert all(c["example"] for c in prop["calls"])
    assert any(c["agrees"] is False for c in prop["calls"])  # replayed on the reference
    assert prop["expected"]["result"] != prop["actual"]["result"]
    passed = next(c for c in cases.values() if c["outcome"] == "passed")
    assert passed["calls"] == []
    assert passed["expected"] is None


def test_junit_xml_parses_with_a_suite_per_profile(runs: dict[str, Any]) -> None:
    root = ET.parse(runs["dir"] / "mut.xml").getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["symphony.priority"]
    cases = suites[0].findall("testcase")
    report = runs["mut"]["report"]
    assert len(cases) == len(report["cases"]) == int(root.get("tests", "0"))
    failures = [c for c in cases if c.find("failure") is not None]
    n_failed = sum(1 for c in report["cases"] if c["outcome"] == "failed")
    assert len(failures) == n_failed == int(root.get("failures", "0")) > 0
    names = [c.get("name", "") for c in cases]
    assert "test_vector[priority/order-fifo-equal] [PRI-004]" in names
    assert "test_ordering[PRI-004] [PRI-004]" in names
    fifo = next(c for c in cases if c.get("name") == "test_vector[priority/order-fifo-equal] [PRI-004]")
    failure = fifo.find("failure")
    assert failure is not None
    assert "processing order" in (failure.get("message") or "")
    props = {(p.get("name"), p.get("value")) for p in fifo.iter("property")}
    assert ("vector", "priority/order-fifo-equal") in props
    assert ("requirement", "PRI-004") in props
    ref_root = ET.parse(runs["dir"] / "ref.xml").getroot()
    assert ref_root.get("failures") == "0"
    assert ref_root.get("errors") == "0"


def test_markdown_names_the_failing_requirements_and_how_to_reproduce(runs: dict[str, Any]) -> None:
    md = (runs["dir"] / "mut.md").read_text()
    assert "DOES NOT CONFORM" in md
    for rid in runs["mut"]["report"]["conformance"]["failed"]:
        assert f"**{rid}**" in md
    assert "PRI-004" in runs["mut"]["report"]["conformance"]["failed"]
    assert "| priority | yes | 2/5 |" in md
    assert "--seed 1234" in md
    ref_md = (runs["dir"] / "ref.md").read_text()
    assert "CONFORMS" in ref_md
    assert "Failing requirements" not in ref_md
    assert render_markdown(runs["mut"]["report"]) == md


def test_report_command_renders_a_saved_report(runs: dict[str, Any]) -> None:
    rc, text = cli("report", str(runs["dir"] / "mut.json"))
    assert rc == 0
    assert "DOES NOT CONFORM [priority]" in text
    assert "FAILED PRI-004" in text
    assert "seed: 1234" in text
    rc, md = cli("report", str(runs["dir"] / "mut.json"), "--format", "markdown")
    assert rc == 0
    assert md.strip() == (runs["dir"] / "mut.md").read_text().strip()


def test_report_command_refuses_what_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"run": {}}')
    assert cli("report", str(bad))[0] == 2
    assert "not a conformance report" in capsys.readouterr().err
    assert cli("report", str(tmp_path / "missing.json"))[0] == 2


def test_diff_names_the_regression_and_exits_1(runs: dict[str, Any]) -> None:
    old, new = runs["dir"] / "ref.json", runs["dir"] / "mut.json"
    rc, text = cli("diff", str(old), str(new))
    assert rc == 1
    assert "REGRESSED requirements" in text
    assert "PRI-004: passed -> failed" in text
    assert "suite/test_vectors.py::test_vector[priority/order-fifo-equal]: passed -> failed" in text
    assert "verdict: REGRESSION" in text
    rc, text = cli("diff", str(new), str(old))
    assert rc == 0
    assert "PRI-004: failed -> passed" in text
    assert "verdict: no regression" in text
    rc, text = cli("diff", str(old), str(old))
    assert rc == 0
    assert "no change" in text


def test_diff_tells_a_changed_verdict_and_a_changed_seed(runs: dict[str, Any]) -> None:
    old = runs["ref"]["report"]
    new = json.loads(json.dumps(old))
    new["run"]["seed"] = 1
    errored = next(r for r in new["requirements"] if r["id"] == "PRI-001")
    errored["verdict"] = "errored"
    untested = next(r for r in new["requirements"] if r["id"] == "PRI-002")
    untested["verdict"] = "untested"
    d = diff_reports(old, new)
    assert d.regressed == [("PRI-001", "passed", "errored")]
    assert d.changed == [("PRI-002", "passed", "untested")]
    assert any("seeds differ" in n for n in d.notes)
    assert d.regression


def test_the_ci_guide_and_workflow_use_real_options() -> None:
    """Every ``--option`` docs/ci.md and docs/examples/conformance.yml show is an option of a command."""
    root = Path(__file__).resolve().parents[2]
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    known: set[str] = set()
    for command in sub.choices.values():  # type: ignore[union-attr]
        for action in command._actions:
            known.update(action.option_strings)
    for doc in (root / "docs" / "ci.md", root / "docs" / "examples" / "conformance.yml"):
        used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", doc.read_text()))
        unknown = sorted(o for o in used if o not in known)
        assert not unknown, f"{doc.name} mentions options no command has: {unknown}"


BAD_DRIVER = """
import sys
from symphony_ipc._driver import Driver, serve

class Bad(Driver):
    def _expects_response(self, req):
        out = super()._expects_response(req)
        if req.get("message_type") == "Response":
            print("bad driver: Response expects a response", file=sys.stderr, flush=True)
            out = {**out, "expects_response": True}
        return out

sys.exit(serve(driver=Bad()))
"""


def test_a_driver_failure_carries_the_exchange_and_the_stderr_tail(tmp_path: Path) -> None:
    script = tmp_path / "bad_driver.py"
    script.write_text(BAD_DRIVER)
    report_path = tmp_path / "r.json"
    impl = f"exec:{sys.executable} {script}"
    rc, text = cli(
        "run", "--impl", impl, "--profile", "envelope", "-k", "expects", "--report-json", str(report_path)
    )
    assert rc == 1, text
    report = json.loads(report_path.read_text())
    assert report_errors(report) == []
    case = next(c for c in report["cases"] if c["vector_id"] == "envelope/expects-response-response")
    assert case["outcome"] == "failed"
    assert case["transcript"] == [
        {
            "request": {
                "cmd": "expects_response",
                "seq": case["transcript"][0]["request"]["seq"],
                "message_type": "Response",
            },
            "response": {
                "seq": case["transcript"][0]["request"]["seq"],
                "ok": True,
                "result": {"expects_response": True},
            },
        }
    ]
    assert "bad driver: Response expects a response" in case["stderr_tail"]
    assert case["expected"] == {
        "operation": "expects_response",
        "result": "valid",
        "expected": {"expects_response": False},
    }
    assert case["actual"] == {"operation": "expects_response", "result": True}
