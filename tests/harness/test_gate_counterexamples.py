"""``run --save-counterexamples DIR``: failing Hypothesis examples become golden vectors that
``run --vectors DIR`` replays; the same seed gives the same failures and the same files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from symphony_conformance._counterexamples import slug, sweep_call, vector_body
from symphony_conformance._recording import reference_answer
from symphony_conformance._vectors import load_vectors
from symphony_conformance.cli import main

MUTANT = "python:symphony_conformance.mutants:huge_ttl_overflows"  # caught by test_expiry[TTL-005]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(["run", "--profile", "ttl", "--seed", "77", *argv], out=out)
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("ce")
    out: dict[str, Any] = {"dir": d}
    for name in ("first", "second"):
        rc, text = run(
            "--impl",
            MUTANT,
            "--save-counterexamples",
            str(d / name),
            "--report-json",
            str(d / f"{name}.json"),
        )
        out[name] = {"rc": rc, "text": text, "report": json.loads((d / f"{name}.json").read_text())}
    return out


def test_counterexamples_are_written_as_valid_vector_files(saved: dict[str, Any]) -> None:
    assert saved["first"]["rc"] == 1
    files = sorted((saved["dir"] / "first").glob("*.json"))
    assert files
    assert any(f.name.startswith("counterexample-test_expiry-ttl-005-") for f in files)
    vectors = load_vectors(saved["dir"] / "first", schema_check=True)  # spec/vectors.schema.json
    assert all(v.id.startswith("counterexample/") for v in vectors)
    assert all("counterexample" in v.flags for v in vectors)
    ttl5 = [v for v in vectors if v.id.startswith("counterexample/test_expiry-ttl-005-")]
    assert ttl5
    assert ttl5[0].requirements == ("TTL-005",)
    assert ttl5[0].operation == "expiry"
    assert ttl5[0].expected == {"expired": False}  # the reference's answer
    listed = saved["first"]["report"]["counterexamples"]
    assert {Path(c["file"]).name for c in listed if c["file"]} == {f.name for f in files}
    assert all(c["reproduces"] for c in listed if c["case"].endswith("test_expiry[TTL-005]"))
    assert "vector file(s) in" in saved["first"]["text"]


def test_the_failing_property_case_carries_the_shrunk_example(saved: dict[str, Any]) -> None:
    case = next(c for c in saved["first"]["report"]["cases"] if c["nodeid"].endswith("test_expiry[TTL-005]"))
    assert case["outcome"] == "failed"
    assert case["falsifying_example"]
    assert [c["op"] for c in case["calls"]] == ["is_expired"]
    assert case["calls"][0]["actual"] == {"result": True}
    assert case["calls"][0]["reference"] == {"result": False}


def test_replay_fails_the_mutant_and_passes_the_reference(saved: dict[str, Any]) -> None:
    directory = str(saved["dir"] / "first")
    rc, text = run(
        "--impl", MUTANT, "--vectors", directory, "-k", "test_vector", "--hypothesis-profile", "quick"
    )
    assert rc == 1, text
    assert "FAILED TTL-005" in text
    assert "test_vector[counterexample/test_expiry-ttl-005-" in text
    rc, text = run("--vectors", directory, "-k", "test_vector", "--hypothesis-profile", "quick")
    assert rc == 0, text


def test_same_seed_same_failures_and_same_counterexamples(saved: dict[str, Any]) -> None:
    def failures(report: dict[str, Any]) -> list[tuple[str, str | None]]:
        return [(c["nodeid"], c["falsifying_example"]) for c in report["cases"] if c["outcome"] == "failed"]

    first, second = saved["first"]["report"], saved["second"]["report"]
    assert failures(first)
    assert failures(first) == failures(second)
    a = {f.name: f.read_text() for f in (saved["dir"] / "first").glob("*.json")}
    b = {f.name: f.read_text() for f in (saved["dir"] / "second").glob("*.json")}
    assert a == b


def test_vector_bodies_grade_by_the_reference() -> None:
    canonical = (
        '{"header":{"id":"0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a","correlation_id":null,"message_type":"Event",'
        '"source":"a","target":"b","timestamp":"2024-05-17T10:30:21Z","ttl":null,"priority":0,'
        '"version":{"major":1,"minor":0}},"payload":1,"metadata":{}}'
    )
    call = {"op": "decode", "codec": "json", "data_text": canonical}
    body = vector_body(call, reference_answer(call))
    assert body is not None
    assert body["result"] == "valid"
    tolerated = {"op": "decode", "codec": "json", "data_text": canonical.replace("0191c3a2", "0191C3A2")}
    body = vector_body(tolerated, reference_answer(tolerated))
    assert body is not None
    assert body["result"] == "acceptable"  # a tolerated spelling (COD-006) the reference accepts
    bad = {"op": "decode", "codec": "json", "data_text": canonical.replace('"priority":0', '"priority":5000')}
    body = vector_body(bad, reference_answer(bad))
    assert body is not None
    assert (body["result"], body["error"]) == ("invalid", "INVALID_PRIORITY")
    build = {
        "op": "build",
        "fields": {"message_type": "Event", "source": "a", "target": "b"},
        "now_ns": 10**18,
    }
    body = vector_body(build, reference_answer(build))
    assert body is not None
    assert "id" not in body["expected"]["match"]["header"]
    assert body["input"]["now"] == "2001-09-09T01:46:40Z"
    assert vector_body({"op": "build", "fields": {}, "now_ns": None}, None) is None


def test_the_sweeps_failure_text_becomes_a_decode_call() -> None:
    call = sweep_call("decoding (json) b'{\"header\": 1}'")
    assert call == {"op": "decode", "codec": "json", "data_text": '{"header": 1}', "example": True}
    assert sweep_call("decoding (json) b'{\"head...") is None  # cut: not replayable
    assert sweep_call("Falsifying example: prop(value=1)") is None
    assert slug("suite/test_properties.py::test_round_trip[json-COD-003]") == "test_round_trip-json-cod-003"
