"""``symphony-conformance list`` and ``validate`` (in process)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgpack
import pytest

import symphony_ipc as ref
from symphony_conformance.cli import main

GOOD = {
    "header": {
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "correlation_id": None,
        "message_type": "Request",
        "source": "client/1",
        "target": "svc@host:9000",
        "timestamp": "2025-01-02T03:04:05.123456789Z",
        "ttl": {"secs": 30, "nanos": 5},
        "priority": 100,
        "version": {"major": 1, "minor": 0},
    },
    "payload": {"n": 1},
    "metadata": {"trace.id": "abc"},
}


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(list(args), out=out)
    return rc, out.getvalue()


def test_list_shows_profiles_requirements_levels_and_vector_counts() -> None:
    rc, out = run("list")
    assert rc == 0
    lines = out.splitlines()
    env1 = next(line for line in lines if line.startswith("ENV-001 "))
    assert env1.split()[1:3] == ["MUST", "envelope"]
    assert int(env1.split()[3]) > 0  # vectors naming it
    assert next(line for line in lines if line.startswith("ENV-015 ")).split()[1] == "SHOULD"
    assert next(line for line in lines if line.startswith("COD-006 ")).split()[1] == "MAY"
    profile_lines = [line.split()[0] for line in lines if line.startswith("  ")]
    for profile in ("envelope", "codec-json", "codec-msgpack", "priority", "ttl", "versioning"):
        assert profile in profile_lines


def test_list_one_profile() -> None:
    rc, out = run("list", "--profile", "ttl")
    assert rc == 0
    ids = [line.split()[0] for line in out.splitlines() if line[:4] in ("TTL-", "ENV-", "PRI-")]
    assert ids
    assert all(i.startswith("TTL-") for i in ids)


def test_validate_good_json_and_msgpack(tmp_path: Path) -> None:
    good_json = tmp_path / "good.json"
    good_json.write_bytes(ref.encode_json(ref.message_from_data(GOOD)))
    good_mp = tmp_path / "good.msgpack"
    good_mp.write_bytes(ref.encode_msgpack(ref.message_from_data(GOOD)))
    sniffed = tmp_path / "good.bin"  # no telling extension: sniffed
    sniffed.write_bytes(good_mp.read_bytes())
    rc, out = run("validate", str(good_json), str(good_mp), str(sniffed))
    assert rc == 0, out
    assert f"{good_json}: OK (json)" in out
    assert f"{good_mp}: OK (msgpack)" in out
    assert f"{sniffed}: OK (msgpack)" in out


def test_validate_bad_files_say_what_and_where(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(GOOD))
    bad["header"]["priority"] = 5000
    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps(bad))
    upper = json.loads(json.dumps(GOOD))
    upper["header"]["id"] = upper["header"]["id"].upper()  # tolerated by decoders, not canonical
    upper_json = tmp_path / "upper.json"
    upper_json.write_text(json.dumps(upper))
    broken = tmp_path / "broken.json"
    broken.write_text('{"header": {"id": 1,\n  }')
    truncated = tmp_path / "truncated.msgpack"
    truncated.write_bytes(ref.encode_msgpack(ref.message_from_data(GOOD))[:-3])
    rc, out = run("validate", str(bad_json), str(upper_json), str(broken), str(truncated))
    assert rc == 1
    sections = out.split(str(tmp_path))
    bad_report = next(s for s in sections if s.startswith("/bad.json"))
    assert "INVALID (json)" in bad_report
    assert "schema: /header/priority: 5000 is greater than the maximum of 1000" in bad_report
    assert "reference decoder: INVALID_PRIORITY" in bad_report
    upper_report = next(s for s in sections if s.startswith("/upper.json"))
    assert "schema: /header/id:" in upper_report
    assert "reference decoder" not in upper_report  # the reference accepts it (COD-006)
    broken_report = next(s for s in sections if s.startswith("/broken.json"))
    assert "not JSON: line 2 column 3" in broken_report
    assert "reference decoder: SERIALIZATION" in broken_report
    trunc_report = next(s for s in sections if s.startswith("/truncated.msgpack"))
    assert "INVALID (msgpack)" in trunc_report
    assert "reference decoder: SERIALIZATION" in trunc_report


def test_validate_noncanonical_msgpack(tmp_path: Path) -> None:
    """A MessagePack message the reference decodes but would encode differently (a timestamp
    96 where timestamp 32 would do) is reported, not passed."""
    arr = msgpack.unpackb(ref.encode_msgpack(ref.message_from_data(GOOD)), raw=False, timestamp=0)
    canonical = msgpack.packb(arr, use_bin_type=True)
    ts = msgpack.packb(arr[0][5])
    secs, nanos = divmod(arr[0][5].to_unix_nano(), 10**9)
    ts96 = b"\xc7\x0c\xff" + nanos.to_bytes(4, "big") + secs.to_bytes(8, "big", signed=True)
    path = tmp_path / "ts96.msgpack"
    path.write_bytes(canonical.replace(ts, ts96, 1))
    rc, out = run("validate", str(path))
    assert rc == 1
    assert "not canonical" in out


def test_validate_unreadable_file_is_a_harness_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _ = run("validate", str(tmp_path / "missing.json"))
    assert rc == 2
    assert "cannot read" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["validate"]) == 2
    assert "usage:" in capsys.readouterr().err
