"""spec/bus.md against requirements.json, the error table, the reference and the shipped machine."""

from __future__ import annotations

import json
import re

import symphony_ipc as s
from symphony_conformance import bus_testing as bt
from symphony_conformance import spec_dir

BUS_MD = spec_dir() / "bus.md"


def _requirement_lines() -> list[tuple[str, str, str]]:
    line = re.compile(r"^- \*\*(BUS-\d{3})\*\* \((MUST|SHOULD|MAY), ([a-z-]+)\) ")
    matches = [m for m in map(line.match, BUS_MD.read_text(encoding="utf-8").splitlines()) if m]
    return [(m[1], m[2], m[3]) for m in matches]


def _error_table() -> dict[str, tuple[str, bool]]:
    text = BUS_MD.read_text(encoding="utf-8")
    section = re.search(r"^## 12\. Errors$(.*?)^## 13\.", text, re.M | re.S)
    assert section is not None
    row = re.compile(r"^\| `([A-Z_]+)` \| [^|]* \| `([a-z]+)` \| (true|false) \|")
    return {m[1]: (m[2], m[3] == "true") for m in map(row.match, section.group(1).splitlines()) if m}


def test_ids_are_consecutive_and_all_in_the_bus_profile() -> None:
    lines = _requirement_lines()
    assert [rid for rid, _, _ in lines] == [f"BUS-{i:03d}" for i in range(1, len(lines) + 1)]
    assert {profile for _, _, profile in lines} == {"bus"}
    assert len(lines) >= 40


def test_requirements_json_carries_them() -> None:
    doc = json.loads((spec_dir() / "requirements.json").read_text(encoding="utf-8"))
    in_json = {
        r["id"]: r
        for r in doc["requirements"]
        if r["document"] == "spec/bus.md" and r["id"].startswith("BUS-")  # NODE-: section 14
    }
    assert sorted(in_json) == [rid for rid, _, _ in _requirement_lines()]
    assert {r["profile"] for r in in_json.values()} == {"bus"}


def test_every_cross_reference_exists() -> None:
    ids = {rid for rid, _, _ in _requirement_lines()}
    cited = set(re.findall(r"BUS-\d{3}", BUS_MD.read_text(encoding="utf-8")))
    assert cited <= ids, cited - ids


def test_error_table_matches_the_reference_and_the_machine() -> None:
    table = _error_table()
    assert set(table) == {
        "BACKPRESSURE",
        "NO_ROUTE",
        "UNMATCHED_RESPONSE",
        "REQUEST_TIMEOUT",
        "HANDLER_FAILED",
        "ENDPOINT_CLOSED",
        "INVALID_OPERATION",
    }
    for code, want in table.items():
        assert s.ERROR_TABLE[s.ErrorCode(code)] == want
        assert bt.ERROR_TABLE[code] == want
        err = s.ERROR_CLASSES[s.ErrorCode(code)]("x")
        assert (err.category, err.recoverable) == want
    for code, want in bt.ERROR_TABLE.items():
        assert s.ERROR_TABLE[s.ErrorCode(code)] == want  # the codes reused from protocol.md too
