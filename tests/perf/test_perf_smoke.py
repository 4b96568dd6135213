"""perf/ never rots: every benchmark script runs (one value each) and perf/check.py reads the results.

Nothing here asserts a latency: the machine is shared. The scripts run in pyperf's worker mode (all
benchmarks in one process, ``--debug-single-value``), except the bus script, which runs the normal
way (a worker process per benchmark) so the pyperf orchestration and the skip notes' way into every
worker's metadata are exercised too.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pyperf
import pytest

PERF = Path(__file__).resolve().parents[2] / "perf"
TIMEOUT = 240  # seconds: a hang fails, it never blocks the suite


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"perf_{name}", PERF / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


check = _load("check")

REQUIRED = {
    "envelope": {
        "envelope.id",
        "envelope.create",
        "envelope.builder",
        "envelope.json_encode",
        "envelope.json_decode",
        "envelope.msgpack_encode",
        "envelope.msgpack_decode",
        "envelope.build_json_roundtrip",
        "envelope.build_msgpack_roundtrip",
        "envelope.validate",
        "ordering.push_pop_32",
        "floor.json_encode_dict",
        "floor.json_decode_dict",
        "floor.msgpack_encode_array",
        "floor.msgpack_decode_array",
        "peer.uuid4",
    },
    "transport": {
        f"{kind}.{tr}.{what}.{size}"
        for tr in ("unix", "fifo", "stdio")
        for size in ("200B", "64KiB")
        for kind, what in (("transport", "message_rt"), ("floor.py", "echo"))
    }
    | {f"peer.mp_connection.unix.message_rt.{size}" for size in ("200B", "64KiB")},
    "bus": {
        "bus.inproc.publish_deliver",
        "bus.inproc.send_deliver",
        "bus.inproc.request_rt",
        "floor.asyncio.queue_put_get",
        "bus.node.request_rt",
        "bus.node.pipelined",
    },
}
# measured when the machine has what they need (a C compiler, pyzmq, cloudevents), else skipped with
# a note
OPTIONAL = {
    "envelope": {f"peer.cloudevents_{n}" for n in ("create", "json_encode", "json_decode")},
    "transport": {f"floor.c.{tr}.echo.{s}" for tr in ("unix", "fifo", "stdio") for s in ("200B", "64KiB")}
    | {f"peer.zmq_reqrep.ipc.message_rt.{s}" for s in ("200B", "64KiB")},
    "bus": set(),
}


def _suite(path: Path) -> tuple[dict[str, pyperf.Benchmark], dict[str, str]]:
    benches = {b.get_name(): b for b in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks()}
    skipped: dict[str, str] = {}
    for b in benches.values():
        skipped.update(check._parse_skips(str(b.get_metadata().get(check.SKIP_KEY, ""))))
    return benches, skipped


def test_every_script_runs_and_check_reads_the_results(tmp_path: Path) -> None:
    out = {name: tmp_path / f"{name}.json" for name in REQUIRED}
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(PERF / f"bench_{name}.py"),
                *([] if name == "bus" else ["--worker"]),
                "--debug-single-value",
                "--quiet",
                "-o",
                str(path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, path in out.items()
    }
    logs = {}
    for name, proc in procs.items():
        try:
            logs[name] = proc.communicate(timeout=TIMEOUT)[0]
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            pytest.fail(f"bench_{name}.py took over {TIMEOUT} s")
    for name, proc in procs.items():
        assert proc.returncode == 0, f"bench_{name}.py failed:\n{logs[name][-3000:]}"

    for name, path in out.items():
        benches, skipped = _suite(path)
        assert REQUIRED[name] <= benches.keys(), f"{name}: missing {REQUIRED[name] - benches.keys()}"
        for opt in OPTIONAL[name]:
            assert opt in benches or skipped.get(opt), f"{opt}: neither measured nor skipped with a note"
        assert benches.keys() <= REQUIRED[name] | OPTIONAL[name], f"unexpected: {benches.keys()}"
        for bench in benches.values():
            md: dict[str, Any] = bench.get_metadata()
            assert md["perf_suite"] == name
            assert md["symphony-ipc_version"]
            assert md["msgspec_version"]
            assert "cpu_count" in md  # pyperf's machine information
            value = bench.median()
            assert value > 0
            if bench.get_name().startswith(("transport.", "floor.py.", "floor.c.", "peer.mp", "peer.zmq")):
                assert md["transport"]
                assert md["frame_bytes"] > md["payload_bytes"] > 0
            if bench.get_name().startswith("bus.node."):
                assert md["transport"] == "unix"
                assert md["inflight"] >= 1

    proc = subprocess.run(
        [sys.executable, str(PERF / "check.py"), "--ratios-only", *map(str, out.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: a ratio missed on this noisy machine; 2: broken
    targets = tomllib.loads((PERF / "targets.toml").read_text())["target"]
    for t in targets:
        row = next((line for line in proc.stdout.splitlines() if line.startswith(t["benchmark"] + " ")), None)
        assert row is not None, f"no row for {t['benchmark']}"
        assert "not measured" not in row, row  # every floor and peer a target names was run or skipped
    assert "targets met" in proc.stdout


# ---------------------------------------------------------------- check.py's logic, on made-up numbers


def _results(tmp_path: Path, medians: dict[str, float], skipped: str = "") -> Path:
    benches = []
    for name, value in medians.items():
        md: dict[str, Any] = {"name": name}
        if skipped:
            md[check.SKIP_KEY] = skipped
        run = pyperf.Run([value, value, value], metadata=md, collect_metadata=False)
        benches.append(pyperf.Benchmark([run]))
    path = tmp_path / "r.json"
    pyperf.BenchmarkSuite(benches).dump(str(path), replace=True)
    return path


def _targets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def _run(results: Path, targets: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = check.main([str(results), "--targets", str(targets), *extra])
    return code, capsys.readouterr().out


T = """
[[target]]
benchmark = "a"
max_us = 10.0
floor = "f"
max_ratio = 3.0
peers = ["p"]
peer_max_ratio = { "q" = 1.0 }
"""


def test_check_passes_misses_and_ratios_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = _targets(tmp_path, T)
    ok = _results(tmp_path, {"a": 20e-6, "f": 10e-6, "p": 40e-6, "q": 25e-6})
    code, out = _run(ok, targets, capsys=capsys)
    assert code == 1  # 20 us >= 10 us
    assert "MISS (absolute)" in out
    code, out = _run(ok, targets, "--ratios-only", capsys=capsys)
    assert code == 0
    assert "2.00x f" in out
    assert "0.50x p" in out
    assert "0.80x q" in out
    bad = _results(tmp_path, {"a": 20e-6, "f": 5e-6, "p": 40e-6, "q": 10e-6})
    code, out = _run(bad, targets, "--ratios-only", capsys=capsys)
    assert code == 1
    assert "ratio to floor" in out
    assert "ratio to q" in out


def test_check_missing_is_a_miss_unless_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = _targets(tmp_path, T)
    code, out = _run(_results(tmp_path, {"a": 1e-6, "f": 1e-6}), targets, "--ratios-only", capsys=capsys)
    assert code == 1
    assert "peer q not measured" in out
    code, out = _run(
        _results(tmp_path, {"a": 1e-6, "f": 1e-6}, skipped="q: not installed"),
        targets,
        "--ratios-only",
        capsys=capsys,
    )
    assert code == 0
    assert "not checked: q skipped (not installed)" in out
    code, out = _run(
        _results(tmp_path, {"f": 1e-6}, skipped="a: TODO: later | q: no"), targets, capsys=capsys
    )
    assert code == 0
    assert "skipped: TODO: later" in out
    code, out = _run(_results(tmp_path, {"f": 1e-6}), targets, capsys=capsys)
    assert code == 1
    assert "MISS (not measured)" in out


def test_check_throughput_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tp = _targets(tmp_path, '[[target]]\nbenchmark = "bus"\nmin_per_s = 200_000\n')
    code, out = _run(_results(tmp_path, {"bus": 4e-6}), tp, capsys=capsys)
    assert code == 0
    assert "250k/s" in out
    code, out = _run(_results(tmp_path, {"bus": 6e-6}), tp, capsys=capsys)
    assert code == 1
    for bad in (
        '[[target]]\nbenchmark = "a"\nmax_ratio = 2.0\n',
        '[[target]]\nbenchmark = "a"\nmax_uss = 1\n',
    ):
        code, _ = _run(_results(tmp_path, {"a": 1e-6}), _targets(tmp_path, bad), capsys=capsys)
        assert code == 2
    assert check.main([str(tmp_path / "absent.json")]) == 2


def test_bench_selects_benchmarks_by_name(tmp_path: Path) -> None:
    """``-b NAME`` (repeatable) runs only the benchmarks whose name contains NAME, in the workers too."""
    out = tmp_path / "some.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(PERF / "bench_envelope.py"),
            "--debug-single-value",
            "--quiet",
            "-b",
            "envelope.create",
            "--bench",
            "floor.json_encode",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    benches, _ = _suite(out)
    assert set(benches) == {"envelope.create", "floor.json_encode_dict"}
