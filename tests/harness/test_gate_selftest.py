"""``symphony-conformance selftest``: every seeded-fault mutant of the three catalogues (message
profiles and bus, transport, security) is caught by a failing case of each requirement it
declares, and the reference passes (one run of every catalogue, ``-n 2``); a mutant declared to
break what its profile does not catch is reported as survived."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from symphony_conformance import _selftest, node_mutants, security_mutants, transport_mutants
from symphony_conformance._selftest import (
    CATALOGUES,
    REFERENCE,
    Entry,
    Job,
    JobResult,
    _Scheduler,
    catalogue_entries,
    isolated,
    jobs_for,
    kill_rates,
    render_table,
)
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


def test_selftest_runs_the_transport_security_and_node_catalogues_too() -> None:
    entries = catalogue_entries()
    assert {e.catalogue for e in entries} == set(CATALOGUES)
    by_name = {e.name: e for e in entries}
    assert len(by_name) == len(entries)
    for t in transport_mutants.CATALOGUE.values():
        e = by_name[t.name]
        assert (e.catalogue, e.profile, e.breaks) == ("transport", "transport", t.breaks)
        # a maker is plugged in with --transport (the implementation is the reference), the
        # frame-decoder mutant is an --impl
        assert (e.transport, e.impl) == ((t.spec, REFERENCE) if t.kind == "transport" else ("", t.spec))
    for m in security_mutants.CATALOGUE.values():
        assert by_name[m.name] == Entry(m.name, "security", "security", m.breaks, impl=m.spec)
    assert sum(1 for e in entries if e.catalogue == "transport") >= 7
    assert sum(1 for e in entries if e.catalogue == "security") >= 6
    for n in node_mutants.CATALOGUE.values():
        assert by_name[n.name] == Entry(n.name, "bus-node", "bus-node", n.breaks, impl=n.spec)
    assert sum(1 for e in entries if e.catalogue == "bus-node") >= 10


@pytest.mark.slow
def test_selftest_catches_every_mutant(tmp_path: Path) -> None:
    out = io.StringIO()
    rc = main(["selftest", "-n", "2", "--json", str(tmp_path / "selftest.json")], out=out)
    text = out.getvalue()
    assert rc == 0, text
    # the reference passes every profile: once per catalogue, as its mutants are run
    assert re.search(r"^reference\s+\(7 profiles\)\s+-\s+PASS\s", text, re.M), text  # bus included
    assert re.search(r"^reference\s+transport\s+-\s+PASS\s", text, re.M), text
    assert re.search(r"^reference\s+security\s+-\s+PASS\s", text, re.M), text
    assert re.search(r"^reference\s+bus-node\s+-\s+PASS\s", text, re.M), text
    entries = catalogue_entries()
    for m in entries:
        line = next((ln for ln in text.splitlines() if ln.startswith(m.name + " ")), "")
        assert re.match(
            rf"{m.name}\s+{re.escape(m.profile)}\s+{re.escape(', '.join(m.breaks))}\s+caught\s", line
        ), line
        for rid in m.breaks:
            assert rid in line.split("caught", 1)[1]
    for profile in [*MINIMUM, "bus", "transport", "security", "bus-node"]:
        n = sum(1 for m in entries if m.profile == profile)
        assert n
        assert re.search(rf"^  {re.escape(profile)}\s+{n}/{n}\s+\(100%\)", text, re.M), profile
    n = len(entries)
    assert re.search(rf"^  overall\s+{n}/{n}\s+\(100%\)", text, re.M)
    assert "selftest PASSED" in text
    doc = json.loads((tmp_path / "selftest.json").read_text())
    assert doc["passed"] is True
    assert {r["name"] for r in doc["results"]} == {REFERENCE, *(m.name for m in entries)}
    references = [r for r in doc["results"] if r["name"] == REFERENCE]
    assert sorted(r["catalogue"] for r in references) == sorted(CATALOGUES)
    assert all(r["caught_by"] == r["breaks"] for r in doc["results"] if r["name"] != REFERENCE)


def test_a_mutant_declared_to_break_what_its_profile_does_not_catch_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake entry (not in the shipped catalogues): the security mutant without a rate limit,
    declared to break SEC-007 (the shared secret), which it does not. Its run fails, on ROB-007
    only: it survived, and the selftest exits 1."""
    real = security_mutants.CATALOGUE["no_rate_limit"]
    fake = Entry("fake_rate_limit_as_secret", "security", "security", ("SEC-007",), impl=real.spec)
    shipped = catalogue_entries
    monkeypatch.setattr(_selftest, "catalogue_entries", lambda: [*shipped(), fake])
    out = io.StringIO()
    argv = ["selftest", "--mutant", fake.name, "-n", "2", "--json", str(tmp_path / "s.json")]
    rc = main(argv, out=out)
    text = out.getvalue()
    assert rc == 1, text
    assert re.search(r"^reference\s+security\s+-\s+PASS\s", text, re.M), text
    row = next(ln for ln in text.splitlines() if ln.startswith(fake.name + " "))
    assert re.match(rf"{fake.name}\s+security\s+SEC-007\s+SURVIVED\s", row), row
    assert "no failing case of SEC-007 (other failures: ROB-007)" in row, row
    assert re.search(r"^  security\s+0/1\s+\(0%\)", text, re.M), text
    assert "selftest FAILED in" in text
    assert f"{fake.name} SURVIVED" in text
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["passed"] is False
    (result,) = [r for r in doc["results"] if r["name"] == fake.name]
    assert result["status"] == "SURVIVED"
    assert result["exit_code"] == 1
    assert result["failed_requirements"] == ["ROB-007"]
    assert result["failing_cases"]
    assert all("ROB-007" in c["message"] for c in result["failing_cases"]), result  # what failed


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


def test_selection_and_bad_options(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = jobs_for(["ttl"])
    assert jobs[0] == Job(REFERENCE, REFERENCE, ("ttl",), catalogue="message")
    assert {j.profiles for j in jobs[1:]} == {("ttl",)}
    assert [j.name for j in jobs_for(names=["fifo_by_timestamp"])] == [REFERENCE, "fifo_by_timestamp"]
    with pytest.raises(ValueError, match="unknown mutant"):
        jobs_for(names=["no_such_mutant"])
    assert main(["selftest", "--mutant", "no_such_mutant"], out=io.StringIO()) == 2
    assert main(["selftest", "--profile", "no-such-profile"], out=io.StringIO()) == 2
    assert main(["selftest", "--catalogue", "security", "--profile", "ttl"], out=io.StringIO()) == 2
    assert main(["selftest", "-n", "0"], out=io.StringIO()) == 2
    # the catalogues: --catalogue, --profile and --mutant pick from all four
    jobs = jobs_for(catalogues=["security"])
    assert jobs[0] == Job(REFERENCE, REFERENCE, ("security",), catalogue="security")
    assert {j.name for j in jobs[1:]} == set(security_mutants.CATALOGUE)
    jobs = jobs_for(["transport"])
    assert [j.name for j in jobs] == [REFERENCE, *transport_mutants.CATALOGUE]
    assert {j.profiles for j in jobs} == {("transport",)}
    assert jobs_for(["transport"], catalogues=["security"]) == []
    both = jobs_for(names=["drop_byte", "no_peer_check", "constant_build_id"])
    assert [(j.name, j.catalogue) for j in both[:3]] == [
        (REFERENCE, "message"),
        (REFERENCE, "transport"),
        (REFERENCE, "security"),
    ]
    assert [j.name for j in both[3:]] == ["constant_build_id", "drop_byte", "no_peer_check"]
    assert main(["selftest", "--catalogue", "nope"], out=io.StringIO()) == 2
    with pytest.raises(ValueError, match="unknown catalogue"):
        jobs_for(catalogues=["nope"])
    # one name, one mutant: a name in two catalogues is refused
    twin = transport_mutants.TransportMutant("constant_build_id", "transport", ("FRM-007",), "twin", dict)
    monkeypatch.setitem(transport_mutants.CATALOGUE, "constant_build_id", twin)
    with pytest.raises(ValueError, match="more than one catalogue: constant_build_id"):
        jobs_for()
    assert main(["selftest", "--catalogue", "transport"], out=io.StringIO()) == 2


def test_scheduling_fits_the_jobs_cpu_shares_in_the_cores() -> None:
    msg = [Job(f"m{i}", "python:x:m", ("ttl",)) for i in range(2)]
    sec = [Job(f"s{i}", "python:x:s", ("security",), catalogue="security") for i in range(4)]
    assert isolated(sec[0])
    assert not isolated(msg[0])
    assert isolated(Job(REFERENCE, REFERENCE, ("transport",)))
    scheduler = _Scheduler([*msg, *sec], cores=2.0, processes=6)
    taken = [scheduler.take() for _ in range(5)]
    assert taken[:4] == sec  # the longest first: four security runs, mostly waiting, fit in 0.6 core
    assert taken[4] == msg[0]
    assert scheduler.pending == [msg[1]]  # 1.6 + 1.0 cores would not fit: it waits
    assert scheduler.running == 5
    scheduler.done(msg[0])
    assert scheduler.take() == msg[1]
    for job in [*sec, msg[1]]:
        scheduler.done(job)
    assert scheduler.take() is None
    assert (scheduler.running, round(scheduler.busy, 9)) == (0, 0.0)
    # a job bigger than the cores still runs, alone
    big = _Scheduler([Job("m", "python:x:m", ("ttl",))], cores=0.5, processes=1)
    assert big.take() is not None
