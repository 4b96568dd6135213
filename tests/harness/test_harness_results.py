"""Results: per-case records, per-requirement verdicts and the conformance decision."""

from __future__ import annotations

import json

import pytest

from symphony_conformance._results import (
    CaseRecord,
    RequirementResult,
    conformance,
    requirement_results,
    verdict_of,
)
from symphony_conformance._spec import Requirement


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [
        ((3, 0, 0, 0), "passed"),
        ((3, 0, 2, 0), "passed"),  # skips do not count
        ((3, 1, 0, 1), "failed"),  # a failure wins over an error
        ((3, 0, 0, 1), "errored"),
        ((0, 0, 4, 0), "skipped"),
        ((0, 0, 0, 0), "untested"),
    ],
)
def test_verdict_of(counts: tuple[int, int, int, int], verdict: str) -> None:
    assert verdict_of(*counts) == verdict


REQS = [
    Requirement("ENV-001", "MUST", "envelope", "a"),
    Requirement("ENV-015", "SHOULD", "envelope", "b"),
    Requirement("PRI-004", "MUST", "priority", "c"),
    Requirement("TTL-001", "MUST", "ttl", "d"),
    Requirement("VER-002", "MUST", "versioning", "e"),
]


def record(nodeid: str, outcome: str, *reqs: str, skip_kind: str | None = None) -> CaseRecord:
    return CaseRecord(nodeid=nodeid, outcome=outcome, requirements=reqs, skip_kind=skip_kind)  # type: ignore[arg-type]


def test_requirement_results_and_conformance() -> None:
    records = [
        record("a", "passed", "ENV-001", "ENV-015"),
        record("b", "failed", "ENV-015"),
        record("c", "passed", "PRI-004"),
        record("d", "errored", "PRI-004"),
        record("e", "skipped", "TTL-001", skip_kind="capability"),
        record("f", "skipped", "VER-002", skip_kind="declined"),
    ]
    results = {r.id: r for r in requirement_results(records, REQS)}
    assert results["ENV-001"].verdict == "passed"
    assert results["ENV-015"].verdict == "failed"
    assert results["ENV-015"].failing_cases == ("b",)
    assert results["PRI-004"].verdict == "errored"
    assert (results["PRI-004"].passed, results["PRI-004"].errored) == (1, 1)
    assert results["TTL-001"].verdict == "skipped"
    assert results["VER-002"].declined == 1
    verdict = conformance(results.values(), ["envelope", "priority", "ttl", "versioning"])
    assert verdict.errored == ("PRI-004",)
    assert verdict.failed == ()  # ENV-015 is a SHOULD: reported, not held against
    assert verdict.skipped == ("VER-002",)  # declined by the implementation
    assert verdict.untested == ("TTL-001",)  # only skipped for lack of a capability
    assert not verdict.conforms
    only_env = conformance(results.values(), ["envelope"])
    assert only_env.conforms
    assert only_env.passed == ("ENV-001",)


def test_untested_must_does_not_fail() -> None:
    results = requirement_results([record("a", "passed", "ENV-001")], REQS[:1] + REQS[2:3])
    verdict = conformance(results, ["envelope", "priority"])
    assert verdict.untested == ("PRI-004",)
    assert verdict.conforms


def test_records_round_trip_through_json() -> None:
    rec = CaseRecord(
        nodeid="suite/test_vectors.py::test_vector[envelope/x]",
        outcome="errored",
        requirements=("ENV-001", "COD-002"),
        profiles=("envelope", "codec-json"),
        vector_id="envelope/x",
        duration=0.25,
        message="the driver crashed",
        longrepr="Traceback ...",
        evidence={"stderr_tail": "boom", "request": {"cmd": "decode"}},
        falsifying_example="Falsifying example: ...",
    )
    data = json.loads(json.dumps(rec.to_dict()))
    assert CaseRecord.from_dict(data) == rec
    assert data["requirements"] == ["ENV-001", "COD-002"]
    res = RequirementResult("ENV-001", "MUST", "envelope", "s", "passed", 1, 0, 0, 0, 0, ("x",))
    assert json.loads(json.dumps(res.to_dict()))["failing_cases"] == ["x"]
