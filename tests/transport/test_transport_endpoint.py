"""``symphony-ipc serve`` in a child process, checked through its address only (the raw-wire
checks), and ``symphony-ipc ping`` against it; stdio spawns the server as ping's child."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from symphony_conformance import transport_checks as tc

CLI = [sys.executable, "-m", "symphony_ipc.cli"]
STDIO = "stdio:" + shlex.join([*CLI, "serve", "--echo", "--listen", "stdio"])


def _wait_for(path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {proc.communicate()[1]!r}")
        time.sleep(0.01)


class Served:
    def __init__(self, address: str, marker: str) -> None:
        self.address = address
        self.marker = marker
        self.proc = subprocess.Popen([*CLI, "serve", "--echo", "--listen", address], stderr=subprocess.PIPE)
        _wait_for(marker, self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, bytes]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture(scope="module")
def module_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", params=["unix", "fifo", "stdio"])
def endpoint(request: pytest.FixtureRequest, module_dir: str) -> Iterator[str]:
    if request.param == "stdio":
        yield STDIO
        return
    if request.param == "unix":
        path = os.path.join(module_dir, "echo.sock")
        served = Served(f"unix:{path}", path)
    else:
        path = os.path.join(module_dir, "echo-fifo")
        served = Served(f"fifo:{path}", os.path.join(path, "connect"))
    yield served.address
    code, err = served.stop()
    assert code == 0, err
    assert not os.path.exists(served.marker), "serve left its socket/FIFO behind"


@pytest.mark.parametrize("check", sorted(tc.ENDPOINT_CHECKS))
def test_endpoint_check(endpoint: str, check: str) -> None:
    tc.ENDPOINT_CHECKS[check](endpoint)


def _ping(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "ping", *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    "extra",
    [[], ["--io", "asyncio"], ["--codec", "json", "--size", "65536"], ["--frames-only", "--io", "asyncio"]],
    ids=["blocking", "asyncio", "json-64k", "frames-only"],
)
def test_ping(endpoint: str, extra: list[str]) -> None:
    done = _ping(endpoint, "-n", "50", *extra)
    assert done.returncode == 0, done.stderr
    assert "min " in done.stdout
    assert "median " in done.stdout
    assert "p99 " in done.stdout
    assert "n=50" in done.stdout


def _one_line_error(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]


def test_ping_bad_address() -> None:
    _one_line_error(_ping("nope:x", "-n", "1"), "unknown transport")


def test_ping_refused(module_dir: str) -> None:
    _one_line_error(_ping(f"unix:{module_dir}/nobody.sock", "-n", "1"), "nobody listens")
    _one_line_error(_ping(f"fifo:{module_dir}/nobody", "-n", "1"), "nobody listens")


def test_ping_version_mismatch(endpoint: str) -> None:
    _one_line_error(_ping(endpoint, "-n", "1", "--protocol-version", "2.0"), "INVALID_PROTOCOL_VERSION")


def test_serve_bad_address() -> None:
    done = subprocess.run([*CLI, "serve", "--listen", "tcp:1"], capture_output=True, text=True, check=False)
    _one_line_error(done, "unknown transport")


def test_serve_address_in_use(endpoint: str) -> None:
    if endpoint.startswith("stdio"):
        pytest.skip("a stdio server has no shared address")
    argv = [*CLI, "serve", "--echo", "--listen", endpoint]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    _one_line_error(done, "already listens")


def test_sigint_closes_and_unlinks(module_dir: str) -> None:
    path = os.path.join(module_dir, "int.sock")
    served = Served(f"unix:{path}", path)
    assert tc.RawWire(served.address).handshake()["codec"] == "json"
    code, err = served.stop(signal.SIGINT)
    assert code == 0, err
    assert not os.path.exists(path)


def test_stdio_server_exits_at_end_of_stdin() -> None:
    proc = subprocess.Popen(
        [*CLI, "serve", "--echo", "--listen", "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    out, _ = proc.communicate(b"", timeout=30)
    assert proc.returncode == 0
    assert out == b""  # nothing but frames ever goes to stdout
