"""``symphony-conformance run`` and the profile transport: the reference in process (every built-in
transport), behind the driver (same verdicts), a plugged-in TCP transport, a running server
(``--endpoint``), the seeded transport faults, undeclared profiles, and nothing left behind.

Runs go through a subprocess (as a user runs them) in a directory whose pytest.ini and conftest.py
a run must not pick up; each carries a token in its environment, so a process it leaves behind is
found afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from symphony_conformance.cli import main
from symphony_conformance.transport_checks import IN_PROCESS_CHECKS, child_processes, open_fds
from symphony_conformance.transport_mutants import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
TCP_EXAMPLE = ROOT / "examples" / "tcp_transport.py"
DRIVER = f"exec:{sys.executable} -m symphony_ipc.cli driver"
HOSTILE_INI = "[pytest]\naddopts = --no-such-option-anywhere\n"
HOSTILE_CONFTEST = "raise RuntimeError('the user conftest.py must not be loaded by a conformance run')\n"
TOKEN_VAR = "SYMPHONY_TEST_RUN_TOKEN"
IN_PROCESS = ("unix", "fifo", "pipe", "memory")
ENDPOINTS = ("unix", "fifo", "stdio")
METRICS = ("no_leaks", "reconnection", "pool_reuse")  # seed 004's success metrics
#: What only the in-process checks reach (the interface's errors, close, pools, reconnection):
#: through the driver these are untested, not failed.
IN_PROCESS_ONLY = {
    *("TRN-011", "TRN-012", "TRN-014", "TRN-020", "TRN-023", "TRN-030", "TRN-032", "TRN-033"),
    *("TRN-001", "TRN-004", "TRN-021", "TRN-022", "TRN-024", "TRN-031"),
}


def _survivors(token: str) -> list[str]:
    """Processes that still carry ``token`` in their environment (children a run left behind)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"{TOKEN_VAR}={token}".encode() in env.split(b"\0"):
            found.append(f"{pid}: {cmd}")
    return found


def run_cli(tmp_path: Path, *args: str, timeout: float = 300) -> tuple[int, str, str, dict[str, Any] | None]:
    """Run ``symphony-conformance ARGS --json`` in ``tmp_path``; (exit code, stdout, stderr, results).
    Fails when a process of the run outlives it."""
    (tmp_path / "pytest.ini").write_text(HOSTILE_INI)
    (tmp_path / "conftest.py").write_text(HOSTILE_CONFTEST)
    out_json = tmp_path / "results.json"
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_", "COV_"))}
    env[TOKEN_VAR] = token
    cmd = [sys.executable, "-m", "symphony_conformance.cli", *args, "--json", str(out_json)]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    results = json.loads(out_json.read_text()) if out_json.exists() else None
    deadline = time.monotonic() + 10  # a child reaped just after the run's exit
    while (left := _survivors(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left behind by the run: {left}"
    return proc.returncode, proc.stdout, proc.stderr, results


def verdicts(results: dict[str, Any], profile: str = "transport") -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in results["requirements"] if r["profile"] == profile}


def outcomes(results: dict[str, Any]) -> dict[str, str]:
    """Test id (the part in brackets of a transport case) -> outcome."""
    out = {}
    for c in results["cases"]:
        node = c["nodeid"]
        if node.startswith("suite/test_transport.py::"):
            out[node.split("::", 1)[1]] = c["outcome"]
    return out


def _why(out: str, err: str) -> str:
    return out[-4000:] + err[-3000:]


@pytest.mark.slow
def test_main_job_passes_on_every_transport_and_the_driver_agrees(tmp_path: Path) -> None:
    """The default run (every profile the reference declares) exits 0; in it, every in-process
    check passes on unix, fifo, pipe and memory (seed 004's metric checks included), every wire
    check on the unix, fifo and stdio endpoints, and every framing vector. Behind the driver
    (frames, handshake, listen) the reference gets the same outcome on every one of those cases
    but the in-process checks, which cannot run in another process: the requirements only they
    reach are untested there, not failed, and every other requirement has the same verdict."""
    a, b = tmp_path / "in-process", tmp_path / "driver"
    a.mkdir()
    b.mkdir()
    rc, out, err, results = run_cli(a, "run", "--hypothesis-profile", "quick", "--seed", "4")
    assert rc == 0, _why(out, err)
    assert results is not None
    assert results["conformance"]["conforms"] is True
    assert "transport" in results["run"]["implementation"]["profiles"]
    assert results["run"]["implementation"]["transports"] == ["fifo", "stdio", "unix"]
    assert all(v == "passed" for rid, v in verdicts(results, "envelope").items() if rid != "ENV-015")
    got = outcomes(results)
    for transport in IN_PROCESS:
        for check in IN_PROCESS_CHECKS:
            assert got[f"test_transport_check[{transport}-{check}]"] == "passed", (transport, check)
    for scheme in ENDPOINTS:
        ran = {k for k in got if k.startswith(f"test_endpoint_check[{scheme}-")}
        assert len(ran) >= 10, ran
        assert all(got[k] == "passed" for k in ran)
    vectors = [k for k in got if k.startswith("test_framing_vector[")]
    assert len(vectors) >= 70
    assert all(got[k] == "passed" for k in vectors)
    inproc = verdicts(results)
    for rid in ("FRM-001", "FRM-003", "FRM-007", "TRN-013", "TRN-016", "TRN-023", "TRN-033"):
        assert inproc[rid] == "passed", rid
    assert not [rid for rid, v in inproc.items() if v not in ("passed", "untested")]

    rc, out, err, driven = run_cli(b, "run", "--profile", "transport", "--impl", DRIVER)
    assert rc == 0, _why(out, err)
    assert driven is not None
    assert driven["run"]["implementation"]["name"] == "symphony-ipc"
    assert driven["run"]["implementation"]["transports"] == ["fifo", "stdio", "unix"]
    over_driver = outcomes(driven)
    assert over_driver == {k: v for k, v in got.items() if not k.startswith("test_transport_check[")}
    differ = {rid for rid, v in verdicts(driven).items() if v != inproc[rid]}
    assert differ <= IN_PROCESS_ONLY
    assert all(verdicts(driven)[rid] == "untested" for rid in differ)
    assert {rid for rid, v in verdicts(driven).items() if v == "passed"} >= {"FRM-003", "TRN-013", "TRN-016"}


def test_tcp_example_passes_unmodified(tmp_path: Path) -> None:
    """examples/tcp_transport.py, plugged in with --transport, passes every in-process check."""
    rc, out, err, results = run_cli(tmp_path, "run", "--transport", f"python:{TCP_EXAMPLE}:make")
    assert rc == 0, _why(out, err)
    assert results is not None
    assert "transport under test: --transport" in out
    assert results["run"]["selected_profiles"] == ["transport"]
    got = outcomes(results)
    checks = {k: v for k, v in got.items() if k.startswith("test_transport_check[")}
    assert checks == {f"test_transport_check[tcp-{c}]": "passed" for c in IN_PROCESS_CHECKS}
    assert not any(k.startswith("test_endpoint_check[") for k in got)  # those check the --impl
    for rid in ("TRN-016", "TRN-023", "TRN-033"):
        assert verdicts(results)[rid] == "passed"


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_transport_mutant_is_caught_and_named(tmp_path: Path, name: str) -> None:
    mutant = CATALOGUE[name]
    extra: list[str] = []
    if mutant.kind == "impl":
        # An --impl mutant of the frame decoder: the transports and endpoints it runs are the
        # reference's, unchanged, so only the vectors are run here (they are what catches it).
        extra = ["-k", "framing_vector"]
    rc, out, err, results = run_cli(tmp_path, "run", *mutant.args, *extra)
    assert rc == 1, _why(out, err)
    assert results is not None
    for rid in mutant.breaks:
        assert verdicts(results)[rid] == "failed", (rid, verdicts(results))
        assert rid in results["conformance"]["failed"]
        assert f"FAILED {rid} " in out  # named under the table
    assert "DOES NOT CONFORM" in out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``symphony-ipc serve`` on a Unix socket in a short directory, stopped afterwards."""
    directory = tempfile.mkdtemp(prefix="sy-", dir="/tmp")
    path = os.path.join(directory, "s.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "symphony_ipc.cli", "serve", "--echo", "--listen", f"unix:{path}"],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(path):
            assert proc.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.02)
        yield f"unix:{path}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        os.rmdir(directory)  # serve removed its socket


def test_endpoint_checks_a_running_server(tmp_path: Path, served: str) -> None:
    """--endpoint runs the wire checks alone, against the server at the address (its descriptors
    are counted through the socket's peer credentials)."""
    rc, out, err, results = run_cli(tmp_path, "run", "--endpoint", served)
    assert rc == 0, _why(out, err)
    assert results is not None
    assert f"the server at {served}" in out
    got = outcomes(results)
    assert got
    assert all(k.startswith("test_endpoint_check[unix-") for k in got)
    assert all(v == "passed" for v in got.values())
    assert got["test_endpoint_check[unix-no_leaks]"] == "passed"
    assert verdicts(results)["TRN-016"] == "passed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "unix:/tmp/sy-nobody-listens-here.sock"], "cannot connect"),
        (["--endpoint", "tcp:127.0.0.1:1"], "expected unix:PATH"),
        (["--endpoint", "unix:/tmp/x.sock", "--impl", "exec:true"], "exclusive"),
        (["--transport", "python:no_such_module_here:make"], "cannot import"),
        (["--transport", "python:os:getcwd"], "not a transport maker"),
        (["--transport", f"python:{TCP_EXAMPLE}:make", "--profile", "envelope"], "--profile transport"),
    ],
)
def test_bad_transport_options_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


UNDECLARED = textwrap.dedent(
    """
    from dataclasses import replace

    from symphony_conformance import Capabilities, ReferenceImplementation


    class PriorityOnly(ReferenceImplementation):
        @property
        def info(self):
            caps = Capabilities(frozenset({"priority"}), frozenset())
            return replace(super().info, name="priority only", capabilities=caps)


    def make():
        return PriorityOnly()
    """
)


def test_undeclared_transport_profile_is_skipped_not_failed(tmp_path: Path) -> None:
    (tmp_path / "priority_only.py").write_text(UNDECLARED)
    rc, out, err, results = run_cli(
        tmp_path,
        "run",
        "--impl",
        "python:priority_only:make",  # the run's working directory is tmp_path
        "--profile",
        "priority",
        "--profile",
        "transport",
        "--hypothesis-profile",
        "quick",
    )
    assert rc == 0, _why(out, err)
    assert results is not None
    assert "not declared, skipped: transport" in out
    transport = [c for c in results["cases"] if "transport" in c["profiles"]]
    assert transport
    assert all(c["outcome"] == "skipped" and c["skip_kind"] == "capability" for c in transport)
    assert set(verdicts(results).values()) <= {"skipped", "untested"}
    assert all(v == "passed" for v in verdicts(results, "priority").values())


def test_an_in_process_run_leaves_nothing_behind(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run in this process (echo endpoints on a background thread, stdio children, the TCP
    example's sockets) ends with this process's descriptors, threads and children as before, and
    the temporary directories it made removed."""
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    before_fds, before_threads, before_kids = open_fds(), threading.active_count(), child_processes()
    rc = main(
        [
            "run",
            "--profile",
            "transport",
            "-k",
            "endpoint_check and (unix-echo or fifo-echo or stdio-child_exit)",
        ]
    )
    assert rc == 0, capsys.readouterr().out[-3000:]
    rc = main(["run", "--transport", f"python:{TCP_EXAMPLE}:make", "-k", "echo or handshake"])
    assert rc == 0, capsys.readouterr().out[-3000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        open_fds() > before_fds
        or threading.active_count() > before_threads
        or child_processes() != before_kids
    ):
        time.sleep(0.05)
    assert open_fds() <= before_fds
    assert threading.active_count() <= before_threads
    assert child_processes() == before_kids
    assert made  # the endpoints' directory and the checks' ones
    assert not [d for d in made if os.path.exists(d)]


def _readme_examples() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    text = (ROOT / "spec" / "driver" / "README.md").read_text(encoding="utf-8")
    block = text.split("Examples (`→` to the driver, `←` from it):", 1)[1].split("```")[1]
    lines = [line for line in block.splitlines() if line.strip()]
    assert [line[0] for line in lines] == ["→", "←"] * (len(lines) // 2)
    return [(json.loads(a[2:]), json.loads(b[2:])) for a, b in zip(lines[::2], lines[1::2], strict=True)]


def test_driver_readme_examples_are_what_the_reference_driver_answers() -> None:
    """The transport examples of spec/driver/README.md follow the schemas and are the reference
    driver's answers (addresses and pids aside); its endpoints are gone after shutdown."""
    from symphony_conformance._driver_client import schema_errors

    examples = _readme_examples()
    hello = {
        "cmd": "hello",
        "seq": 0,
        "harness": {"name": "test", "version": "0"},
        "driver_protocol": 1,
        "spec_version": "1.0.0",
    }
    requests = [hello] + [req for req, _ in examples] + [{"cmd": "shutdown", "seq": 99}]
    proc = subprocess.run(
        [sys.executable, "-m", "symphony_ipc.cli", "driver"],
        input="".join(json.dumps(r) + "\n" for r in requests),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == len(requests)
    assert "transport" in answers[0]["result"]["capabilities"]["profiles"]
    for (req, documented), got in zip(examples, answers[1:-1], strict=True):
        assert schema_errors(req["cmd"], "request", req) == []
        assert schema_errors(req["cmd"], "response", documented) == []
        if req["cmd"] != "listen":
            assert got == documented
            continue
        address = got["result"]["address"]
        assert address.partition(":")[0] == req["scheme"]
        assert set(got["result"]) == set(documented["result"])
        if req["scheme"] == "unix":
            assert got["result"]["pid"] > 0
            assert not os.path.exists(os.path.dirname(address.partition(":")[2]))  # removed at shutdown
