"""``symphony-conformance selftest``: every seeded-fault mutant is caught by a failing case of each
requirement it declares, and the reference passes (one run of the whole catalogue, 2 workers)."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from symphony_conformance._selftest import REFERENCE, Job, JobResult, jobs_for, kill_rates, render_table
from symphony_conformance.cli import main
from symphony_conformance.mutants import CATALOGUE

#: The issue's minimum number of mutants per profile.
MINIMUM = {"envelope": 6, "codec-json": 6, "codec-msgpack": 5, "priority": 4, "ttl": 4, "versioning": 4}


def test_the_catalogue_spreads_over_every_message_profile() -> None:
    assert len(CATALOGUE) >= 30
    per = Counter(m.profile for m in CATALOGUE.values())
    for profile, minimum in MINIMUM.items():
        assert per[profile] >= minimum, profile
    for m in CATALOGUE.values():
        assert m.breaks
        assert m.description


@pytest.mark.slow
def test_selftest_catches_every_mutant(tmp_path: Path) -> None:
    out = io.StringIO()
    rc = main(["selftest", "-n", "2", "--json", str(tmp_path / "selftest.json")], out=out)
    text = out.getvalue()
    assert rc == 0, text
    assert re.search(r"^reference\s+\(7 profiles\)\s+-\s+PASS\s", text, re.M), text  # bus included
    for name, m in CATALOGUE.items():
        line = next((ln for ln in text.splitlines() if ln.startswith(name + " ")), "")
        assert re.match(
            rf"{name}\s+{re.escape(m.profile)}\s+{re.escape(', '.join(m.breaks))}\s+caught\s", line
        ), line
        for rid in m.breaks:
            assert rid in line.split("caught", 1)[1]
    for profile in MINIMUM:
        n = sum(1 for m in CATALOGUE.values() if m.profile == profile)
        assert re.search(rf"^  {re.escape(profile)}\s+{n}/{n}\s+\(100%\)", text, re.M), profile
    n = len(CATALOGUE)
    assert re.search(rf"^  overall\s+{n}/{n}\s+\(100%\)", text, re.M)
    assert "selftest PASSED" in text
    doc = json.loads((tmp_path / "selftest.json").read_text())
    assert doc["passed"] is True
    assert {r["name"] for r in doc["results"]} == {REFERENCE, *CATALOGUE}
    assert all(r["caught_by"] == r["breaks"] for r in doc["results"] if r["name"] != REFERENCE)


def _result(breaks: tuple[str, ...], code: int, hit: list[str], error: str = "") -> JobResult:
    job = Job("m", "python:x:m", ("priority",), breaks)
    return JobResult(
        job, code, 0.1, failed_requirements=hit, failing_cases=[(f"t[{r}]", [r]) for r in hit], error=error
    )


def test_a_mutant_is_caught_only_by_failures_of_every_requirement_it_declares() -> None:
    assert _result(("PRI-004",), 1, ["PRI-004", "PRI-003"]).status == "caught"
    assert _result(("PRI-004",), 1, ["PRI-003"]).status == "SURVIVED"  # failed, but not what it breaks
    assert _result(("PRI-004",), 0, []).status == "SURVIVED"
    assert _result(("PRI-003", "PRI-004"), 1, ["PRI-004"]).status == "PARTLY CAUGHT"
    assert _result(("PRI-004",), 2, [], error="cannot import").status == "ERROR"
    ref = JobResult(Job(REFERENCE, REFERENCE, ("priority",)), 1, 1.0, failed_requirements=["PRI-001"])
    assert ref.status == "FAIL"
    assert not ref.ok
    rows = [ref, _result(("PRI-004",), 1, ["PRI-004"]), _result(("PRI-004",), 0, [])]
    assert kill_rates(rows) == [("priority", 1, 2), ("overall", 1, 2)]
    table = render_table(rows)
    assert "SURVIVED" in table
    assert "no failing case of PRI-004" in table
    assert "does not conform: PRI-001" in table


def test_selection_and_bad_options() -> None:
    jobs = jobs_for(["ttl"])
    assert jobs[0] == Job(REFERENCE, REFERENCE, ("ttl",))
    assert {j.profiles for j in jobs[1:]} == {("ttl",)}
    assert [j.name for j in jobs_for(names=["fifo_by_timestamp"])] == [REFERENCE, "fifo_by_timestamp"]
    with pytest.raises(ValueError, match="unknown mutant"):
        jobs_for(names=["no_such_mutant"])
    assert main(["selftest", "--mutant", "no_such_mutant"], out=io.StringIO()) == 2
    assert main(["selftest", "--profile", "bus-node"], out=io.StringIO()) == 2
    assert main(["selftest", "-n", "0"], out=io.StringIO()) == 2
