"""``symphony-conformance latency``: round trips against an endpoint, written as pyperf JSON.

Tiny settings (one run, one value, a few milliseconds each): this proves the pipeline, it asserts
no latency.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyperf
import pytest

from symphony_conformance.cli import main

QUICK = ["--runs", "1", "--values", "1", "--warmups", "0", "--min-time", "0.002", "--timeout", "10"]


@pytest.fixture
def short_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-lat-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def unix_server(short_dir: str) -> Iterator[str]:
    address = f"unix:{short_dir}/s.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "symphony_ipc.cli", "serve", "--echo", "--listen", address],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not Path(short_dir, "s.sock").exists():
            assert proc.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.02)
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["latency", *argv], out=out), out.getvalue()


def test_latency_against_an_endpoint_writes_pyperf_json(unix_server: str, tmp_path: Path) -> None:
    path = tmp_path / "lat.json"
    code, out = _run("--endpoint", unix_server, "--size", "200", "--size", "4096", *QUICK, "-o", str(path))
    assert code == 0, out
    suite = pyperf.BenchmarkSuite.load(str(path))
    names = sorted(suite.get_benchmark_names())
    assert names == ["transport.unix.message_rt.200B", "transport.unix.message_rt.4KiB"]
    for bench in suite.get_benchmarks():
        md = bench.get_metadata()
        assert md["transport"] == "unix"
        assert md["frame_bytes"] > md["payload_bytes"]
        assert md["implementation"] == f"endpoint {unix_server}"
        assert bench.median() > 0
    assert "transport.unix.message_rt.200B" in out
    stats = subprocess.run(
        [sys.executable, "-m", "pyperf", "stats", str(path)], capture_output=True, text=True, timeout=60
    )
    assert stats.returncode == 0, stats.stderr
    assert "percentile" in stats.stdout


def test_latency_through_the_drivers_listen(tmp_path: Path) -> None:
    path = tmp_path / "impl.json"
    code, out = _run("--transport", "unix", "--size", "200", *QUICK, "-o", str(path))  # default: reference
    assert code == 0, out
    suite = pyperf.BenchmarkSuite.load(str(path))
    (bench,) = suite.get_benchmarks()
    assert bench.get_name() == "transport.unix.message_rt.200B"
    assert "symphony-ipc" in bench.get_metadata()["implementation"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--endpoint", "tcp:1.2.3.4"],
        ["--endpoint", "unix:/nonexistent/dir/s.sock"],
        ["--endpoint", "unix:/x.sock", "--transport", "unix"],
        ["--impl", "python:symphony_conformance._adapters:ReferenceImplementation", "--transport", "unix"],
        ["--impl", "exec:/nonexistent-driver"],
        ["--runs", "0", "--endpoint", "unix:/x.sock"],
    ],
)
def test_latency_refusals_are_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(*argv, *QUICK)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("symphony-conformance latency: error:"), err
    assert err.count("\n") == 1, err


def test_latency_refuses_to_overwrite(unix_server: str, tmp_path: Path) -> None:
    path = tmp_path / "exists.json"
    path.write_text("{}")
    code, _ = _run("--endpoint", unix_server, *QUICK, "-o", str(path))
    assert code == 2
    assert path.read_text() == "{}"
