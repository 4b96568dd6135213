"""Baselines (``--expected-failures``, ``--update-baseline``) and early stops (``--max-fail``,
``--fail-fast``): in-process runs of the priority profile, quick Hypothesis settings."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from symphony_conformance import spec_dir
from symphony_conformance._baseline import (
    PLACEHOLDER_REASON,
    BaselineError,
    apply_baseline,
    parse_baseline,
)
from symphony_conformance._results import CaseRecord, requirement_results
from symphony_conformance._spec import requirements
from symphony_conformance.cli import main

FIFO_BY_TIMESTAMP = "python:symphony_conformance.mutants:fifo_by_timestamp"  # breaks PRI-004 alone
LIFO = "python:symphony_conformance.mutants:lifo_within_priority"  # PRI-001, PRI-003, PRI-004


def run(
    tmp_path: Path, *args: str, baseline: dict[str, Any] | None = None
) -> tuple[int, str, dict[str, Any]]:
    argv = ["run", "--profile", "priority", "--hypothesis-profile", "quick", "--seed", "5", *args]
    if baseline is not None:
        path = tmp_path / "baseline.json"
        path.write_text(json.dumps(baseline))
        argv += ["--expected-failures", str(path)]
    report = tmp_path / "report.json"
    out = io.StringIO()
    rc = main([*argv, "--report-json", str(report)], out=out)
    return rc, out.getvalue(), json.loads(report.read_text()) if report.exists() else {}


def test_baseline_schema_is_valid() -> None:
    schema = json.loads((spec_dir() / "baseline.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"expected_failures": [{"requirement": "PRI-004", "reason": "r", "link": "x"}]})
    assert not validator.is_valid({"expected_failures": [{"requirement": "PRI-004"}]})  # no reason
    assert not validator.is_valid(
        {"expected_failures": [{"requirement": "PRI-004", "case": "c", "reason": "r"}]}
    )
    assert not validator.is_valid({"expected_failures": [{"reason": "r"}]})


def test_a_listed_real_failure_does_not_fail_the_run(tmp_path: Path) -> None:
    rc, out, _ = run(tmp_path, "--impl", FIFO_BY_TIMESTAMP)
    assert rc == 1  # without a baseline
    entry = {
        "requirement": "PRI-004",
        "reason": "our queue orders by timestamp",
        "link": "https://x.invalid/1",
    }
    rc, out, report = run(tmp_path, "--impl", FIFO_BY_TIMESTAMP, baseline={"expected_failures": [entry]})
    assert rc == 0, out
    assert "EXPECTED FAILURE requirement PRI-004: our queue orders by timestamp" in out
    assert report["conformance"]["expected_failures"] == ["PRI-004"]
    assert report["conformance"]["conforms"] is True
    pri4 = next(r for r in report["requirements"] if r["id"] == "PRI-004")
    assert pri4["verdict"] == "failed"
    assert pri4["expected_failure"]["reason"] == "our queue orders by timestamp"
    failing = [c for c in report["cases"] if c["outcome"] == "failed"]
    assert failing
    assert all(c["expected_failure"] for c in failing)
    assert report["baseline"]["entries"][0]["status"] == "expected"


def test_a_case_entry_by_vector_id_expects_that_case_only(tmp_path: Path) -> None:
    entry = {"case": "priority/order-fifo-not-timestamp", "reason": "known"}
    rc, out, report = run(tmp_path, "--impl", FIFO_BY_TIMESTAMP, baseline={"expected_failures": [entry]})
    assert rc == 0, out
    assert report["conformance"]["expected_failures"] == ["PRI-004"]
    # the same entry does not cover the other failures of another mutant
    rc, out, report = run(tmp_path, "--impl", LIFO, baseline={"expected_failures": [entry]})
    assert rc == 1
    assert "PRI-004" in report["conformance"]["failed"]


def test_a_stale_entry_fails_the_run_and_is_named(tmp_path: Path) -> None:
    baseline = {
        "expected_failures": [
            {"requirement": "PRI-002", "reason": "fixed since"},
            {"case": "priority/order-mixed", "reason": "fixed too"},
        ]
    }
    rc, out, report = run(tmp_path, baseline=baseline)
    assert rc == 1
    assert "STALE baseline entry requirement PRI-002" in out
    assert "STALE baseline entry case priority/order-mixed" in out
    assert "DOES NOT CONFORM" in out
    assert report["conformance"]["stale_baseline"] == ["requirement PRI-002", "case priority/order-mixed"]
    assert report["conformance"]["conforms"] is False
    assert [e["status"] for e in report["baseline"]["entries"]] == ["stale", "stale"]


def test_an_entry_of_a_profile_not_run_is_neither_expected_nor_stale(tmp_path: Path) -> None:
    rc, out, report = run(
        tmp_path, baseline={"expected_failures": [{"requirement": "ENV-005", "reason": "r"}]}
    )
    assert rc == 0, out
    assert "baseline entry requirement ENV-005: not run" in out
    assert report["baseline"]["entries"][0]["status"] == "not run"


def test_update_baseline_drops_stale_entries_and_adds_failures_on_request(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    baseline = {
        "description": "release 1.2",
        "expected_failures": [
            {"requirement": "PRI-002", "reason": "stale now"},
            {"requirement": "PRI-004", "reason": "still failing"},
        ],
    }
    rc, out, _ = run(tmp_path, "--impl", LIFO, "--update-baseline", str(new), baseline=baseline)
    assert rc == 1  # PRI-001 and PRI-003 fail unexpectedly, PRI-002 is stale
    doc = json.loads(new.read_text())
    assert doc == {
        "description": "release 1.2",
        "expected_failures": [{"requirement": "PRI-004", "reason": "still failing"}],
    }
    rc, out, _ = run(
        tmp_path, "--impl", LIFO, "--update-baseline", str(new), "--baseline-add-failures", baseline=baseline
    )
    doc = json.loads(new.read_text())
    assert [e["requirement"] for e in doc["expected_failures"]] == ["PRI-004", "PRI-001", "PRI-003"]
    assert doc["expected_failures"][1]["reason"] == PLACEHOLDER_REASON
    assert "1 stale removed, 2 added" in out
    # the updated baseline gates the same mutant green
    rc, out, _ = run(tmp_path, "--impl", LIFO, "--expected-failures", str(new))
    assert rc == 0, out


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"expected_failures": [{"requirement": "XYZ-999", "reason": "r"}]},
            "unknown requirement id 'XYZ-999'",
        ),
        ({"expected_failures": [{"requirement": "PRI-004"}]}, "does not match spec/baseline.schema.json"),
        (
            {"expected_failures": [{"case": "a", "reason": "r"}, {"case": "a", "reason": "s"}]},
            "listed twice",
        ),
    ],
)
def test_a_bad_baseline_is_a_harness_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict[str, Any], message: str
) -> None:
    rc, _, _ = run(tmp_path, baseline=doc)
    assert rc == 2
    assert message in capsys.readouterr().err
    with pytest.raises(BaselineError, match="baseline"):
        parse_baseline(doc)


def test_apply_baseline_rules() -> None:
    """A case failing only listed requirements is expected; a requirement whose failing cases are
    all listed is expected; what passes is stale; what did not run is not."""
    reqs = requirements()
    wanted = [reqs[r] for r in ("PRI-001", "PRI-003", "PRI-004", "PRI-005")]
    records = [
        CaseRecord("a", "failed", ("PRI-003", "PRI-004")),
        CaseRecord("b", "failed", ("PRI-004",), vector_id="priority/x"),
        CaseRecord("c", "passed", ("PRI-001",)),
        CaseRecord("d", "errored", ("PRI-005",)),
    ]
    results = requirement_results(records, wanted)
    baseline = parse_baseline(
        {
            "expected_failures": [
                {"requirement": "PRI-004", "reason": "r"},
                {"case": "d", "reason": "r"},
                {"requirement": "PRI-001", "reason": "r"},
                {"requirement": "PRI-002", "reason": "r"},
            ]
        }
    )
    outcome = apply_baseline(baseline, results, records)
    assert [s.status for s in outcome.statuses] == ["expected", "expected", "stale", "not run"]
    assert outcome.expected_cases == {"b", "d"}  # "a" also fails PRI-003, which is not listed
    assert outcome.expected_requirements == ("PRI-004", "PRI-005")
    assert baseline.expects_case("b", "priority/x", ["PRI-004"])
    assert baseline.expects_case("zz", "d", ["PRI-003"])
    assert not baseline.expects_case("a", None, ["PRI-003", "PRI-004"])


def test_fail_fast_stops_and_says_so(tmp_path: Path) -> None:
    rc, out, report = run(tmp_path, "--impl", LIFO, "--fail-fast")
    assert rc == 1
    assert "RUN CUT SHORT: stopped after 1 failed case(s) (max-fail 1)" in out
    assert report["conformance"]["cut_short"]
    assert report["run"]["max_fail"] == 1
    assert sum(1 for c in report["cases"] if c["outcome"] == "failed") == 1
    assert len(report["cases"]) < 68  # the priority profile has 68 cases
    rc, out, report = run(tmp_path, "--impl", LIFO, "--max-fail", "3")
    assert rc == 1
    assert sum(1 for c in report["cases"] if c["outcome"] == "failed") == 3


def test_max_fail_does_not_count_expected_failures(tmp_path: Path) -> None:
    baseline = {"expected_failures": [{"requirement": "PRI-004", "reason": "known"}]}
    rc, out, report = run(tmp_path, "--impl", FIFO_BY_TIMESTAMP, "-x", baseline=baseline)
    assert rc == 0, out
    assert report["conformance"]["cut_short"] is None
    assert len(report["cases"]) == 68


@pytest.mark.parametrize(
    ("args", "message"), [(["--max-fail", "0"], "--max-fail"), (["--baseline-add-failures"], "needs")]
)
def test_bad_gate_options_are_harness_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc, _, _ = run(tmp_path, *args)
    assert rc == 2
    assert message in capsys.readouterr().err
