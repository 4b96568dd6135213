"""``symphony-conformance coverage``: every MUST of the message profiles has a test or a driven
vector; a vector set that leaves some requirement without either is reported and exits 1."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from symphony_conformance import fixtures_dir
from symphony_conformance._adapters import driven_profiles
from symphony_conformance._spec import profiles as spec_profiles
from symphony_conformance.cli import main

MESSAGE_PROFILES = ("envelope", "codec-json", "codec-msgpack", "priority", "ttl", "versioning")


def coverage(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(["coverage", *argv], out=out)
    return rc, out.getvalue()


def rows(text: str) -> dict[str, tuple[str, int, int]]:
    """requirement id -> (level, tests, driven vectors), from the per-requirement table."""
    out = {}
    for m in re.finditer(r"^([A-Z]{2,4}-\d{3})\s+(MUST|SHOULD|MAY)\s+\S+\s+(\d+)\s+(\d+)", text, re.M):
        out[m[1]] = (m[2], int(m[3]), int(m[4]))
    return out


def test_every_must_of_the_message_profiles_is_covered() -> None:
    args = [a for p in MESSAGE_PROFILES for a in ("--profile", p)]
    rc, text = coverage(*args)
    assert rc == 0, text
    assert "coverage OK: each of the 48 MUST requirements has a test or a driven vector" in text
    table = rows(text)
    assert table["ENV-001"][1] > 0
    assert table["ENV-001"][2] > 0
    assert table["ERR-002"][2] > 0  # ordering of faults: vectors only
    assert table["ENV-013"][1] > 0  # the size limit: tests only
    musts = [rid for rid, (level, _, _) in table.items() if level == "MUST"]
    assert len(musts) == 48
    for profile in MESSAGE_PROFILES:
        assert re.search(rf"^{profile}\s+\d+\s+\d+\s+\d+\s+0\s", text, re.M), profile


def test_a_requirement_left_without_test_and_vector_is_a_gap(tmp_path: Path) -> None:
    """With a vector set of one vector, the requirements only vectors check are gaps."""
    doc = json.loads((fixtures_dir() / "ttl.json").read_text())
    doc["vectors"] = doc["vectors"][:1]
    (tmp_path / "ttl.json").write_text(json.dumps(doc))
    rc, text = coverage("--profile", "envelope", "--profile", "codec-msgpack", "--vectors", str(tmp_path))
    assert rc == 1
    gap = next(line for line in text.splitlines() if line.startswith("COVERAGE GAP"))
    assert "ERR-002 (envelope)" in gap
    assert "COD-106 (codec-msgpack)" in gap
    assert "ENV-001" not in gap  # it has tests
    assert rows(text)["ERR-002"] == ("MUST", 0, 0)


def test_the_default_grades_the_driven_profiles_and_says_so() -> None:
    rc, text = coverage()
    table = rows(text)
    for profile in driven_profiles():
        assert re.search(rf"^{re.escape(profile)}\s+\d+", text, re.M), profile
    gaps = [
        rid for rid, (level, tests, vectors) in table.items() if level == "MUST" and not tests and not vectors
    ]
    assert rc == (1 if gaps else 0)
    if gaps:
        assert all(rid in text.split("COVERAGE GAP")[1] for rid in gaps)
    undriven = [p for p in spec_profiles() if p not in driven_profiles()]
    if undriven:
        assert f"not graded: {', '.join(undriven)}; --all to include them" in text
    if "bus" in undriven:
        assert not any(rid.startswith("BUS-") for rid in table)


def test_all_grades_every_profile_of_the_spec() -> None:
    rc, text = coverage("--all")
    table = rows(text)
    assert any(rid.startswith("BUS-") for rid in table)
    assert any(rid.startswith("FRM-") for rid in table)
    gaps = [
        rid for rid, (level, tests, vectors) in table.items() if level == "MUST" and not tests and not vectors
    ]
    assert rc == (1 if gaps else 0)
    if "bus" not in driven_profiles():
        assert re.search(r"^bus\s+\d+\s+.*\(not driven by this harness\)", text, re.M)


def test_an_unknown_profile_is_a_harness_error() -> None:
    assert coverage("--profile", "nope")[0] == 2
