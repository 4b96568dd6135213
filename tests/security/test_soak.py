"""Nothing lost under load (spec/security.md ROB-008, ROB-009; transport TRN-016, TRN-032/033).

Several client processes push thousands of requests each through one ``symphony-ipc serve --echo``
endpoint on a Unix socket, then again with faults:
clients SIGKILLed at random mid-run and the node itself SIGKILLed and restarted once while the
others reconnect with the reference's reconnecting client. Every message a surviving client sent is
answered with its own bytes exactly once or reported to it as failed with a reason; the node's
descriptors are back to their baseline afterwards and its memory stays bounded. The same load goes
through the bus node (``symphony-ipc serve``): senders to a sink endpoint in another process.

Bounded in count and time, loopback only (a Unix socket in a private directory). The figures are
printed and recorded as test properties (and written to ``$SYMPHONY_SOAK_REPORT`` when set).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "soak_client.py"
CLIENTS = int(os.environ.get("SYMPHONY_SOAK_CLIENTS", "4"))
MESSAGES = int(os.environ.get("SYMPHONY_SOAK_MESSAGES", "5000"))
FAULT_MESSAGES = int(os.environ.get("SYMPHONY_SOAK_FAULT_MESSAGES", "2000"))
DEADLINE = 120.0  # a run that takes longer fails (it is ~10-30 s on 2 loaded cores)
RSS_GROWTH_BOUND = 64 << 20  # the node may grow by this much over its idle size, whatever the load


@dataclass
class Node:
    """One ``symphony-ipc serve`` process."""

    address: str
    proc: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> Node:
        path = self.address.partition(":")[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "symphony_ipc.cli", "serve", "--echo", "--listen", self.address],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not os.path.exists(path) or not self._answers(path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not start (exit {self.proc.poll()})")
            time.sleep(0.02)
        return self

    @staticmethod
    def _answers(path: str) -> bool:
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(path)
            except OSError:
                return False
        return True

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def memory(self) -> dict[str, int]:
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        return out

    def settle_fds(self, baseline: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        n = self.fds()
        while n > baseline and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.fds()
        return n

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _spawn_client(address: str, k: int, count: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(CLIENT), address, str(k), str(count), str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


@dataclass
class Account:
    """What one client's log says."""

    sent: set[int] = field(default_factory=set)
    ok: list[int] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    done: bool = False

    @classmethod
    def read(cls, log: Path) -> Account:
        a = cls()
        for line in log.read_text().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "s":
                a.sent.add(int(rest))
            elif kind == "ok":
                a.ok.append(int(rest))
            elif kind == "bad":
                a.bad.append(int(rest))
            elif kind == "fail":
                seq, _, reason = rest.partition(" ")
                a.failed[int(seq)] = reason
            elif kind == "done":
                a.done = True
        return a

    @property
    def duplicates(self) -> int:
        outcomes = self.ok + self.bad + list(self.failed)
        return len(outcomes) - len(set(outcomes)) + len(self.bad)

    @property
    def unaccounted(self) -> set[int]:
        return self.sent - set(self.ok) - set(self.failed) - set(self.bad)


@pytest.fixture
def node_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-soak-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _wait_all(procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    q.kill()
            raise AssertionError("the soak did not finish in time") from None


def _report(record_property: Any, name: str, figures: dict[str, Any]) -> None:
    print(f"\nsoak {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    for k, v in figures.items():
        record_property(f"soak_{name}_{k}", v)
    path = os.environ.get("SYMPHONY_SOAK_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"run": name, **figures}) + "\n")


def _warm(node: Node, address: str, logs: Path) -> None:
    """A few connections first, so lazily created resources are in the baseline."""
    p = _spawn_client(address, 99, 20, logs / "warm.log")
    _wait_all([p], time.monotonic() + 30)
    assert Account.read(logs / "warm.log").done


def test_soak_nothing_lost(node_dir: str, record_property: Any) -> None:
    """ROB-009: CLIENTS clients x MESSAGES requests: each answered exactly once, none failed; fds
    back to the baseline, memory bounded."""
    address = f"unix:{node_dir}/node.sock"
    logs = Path(node_dir)
    node = Node(address).start()
    try:
        _warm(node, address, logs)
        time.sleep(0.1)
        fds_before, idle = node.fds(), node.memory()["VmRSS"]
        t0 = time.monotonic()
        procs = [_spawn_client(address, k, MESSAGES, logs / f"c{k}.log") for k in range(CLIENTS)]
        _wait_all(procs, t0 + DEADLINE)
        duration = time.monotonic() - t0
        fds_after = node.settle_fds(fds_before)
        mem = node.memory()
    finally:
        node.stop()
    accounts = [Account.read(logs / f"c{k}.log") for k in range(CLIENTS)]
    for k, (p, a) in enumerate(zip(procs, accounts, strict=True)):
        assert p.returncode == 0, f"client {k} exited {p.returncode}: {p.stderr.read() if p.stderr else ''}"
        assert a.done
    figures = {
        "clients": CLIENTS,
        "messages": sum(len(a.sent) for a in accounts),
        "answered": sum(len(a.ok) for a in accounts),
        "failed": sum(len(a.failed) for a in accounts),
        "lost": sum(len(a.unaccounted) for a in accounts),
        "duplicates": sum(a.duplicates for a in accounts),
        "duration_s": round(duration, 2),
        "fds_before": fds_before,
        "fds_after": fds_after,
        "rss_idle_mib": round(idle / 2**20, 1),
        "peak_rss_mib": round(mem["VmHWM"] / 2**20, 1),
    }
    _report(record_property, "clean", figures)
    assert figures["messages"] == CLIENTS * MESSAGES
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["answered"] == CLIENTS * MESSAGES, "a request failed with no fault injected"
    assert fds_after <= fds_before, f"the node holds {fds_after - fds_before} more descriptors"
    assert mem["VmHWM"] - idle < RSS_GROWTH_BOUND, f"the node grew from {idle} to {mem['VmHWM']} bytes"


def test_soak_with_faults(node_dir: str, record_property: Any) -> None:
    """ROB-008, ROB-009, TRN-032, TRN-033: clients SIGKILLed at random and the node SIGKILLed and
    restarted once mid-run: survivors account for every message (answered once, or failed with a
    reason at the restart), killed ones had at most their one in-flight request open, the restarted
    node's descriptors return to its baseline."""
    address = f"unix:{node_dir}/node.sock"
    logs = Path(node_dir)
    rng = random.Random(int(os.environ.get("SYMPHONY_SOAK_SEED", "7")))
    node = Node(address).start()
    restarted: Node | None = None
    victims_n = 2
    try:
        _warm(node, address, logs)
        t0 = time.monotonic()
        procs = [_spawn_client(address, k, FAULT_MESSAGES, logs / f"f{k}.log") for k in range(CLIENTS)]
        victims = [
            _spawn_client(address, 100 + v, 10 * FAULT_MESSAGES, logs / f"v{v}.log") for v in range(victims_n)
        ]
        progress_log = logs / "f0.log"

        def progress() -> int:
            return progress_log.read_text().count("\nok ") if progress_log.exists() else 0

        kill_at = sorted(rng.uniform(0.1, 0.4) * FAULT_MESSAGES for _ in victims)
        restart_at = 0.5 * FAULT_MESSAGES
        for v, at in zip(victims, kill_at, strict=True):
            while progress() < at and time.monotonic() - t0 < DEADLINE:
                time.sleep(0.01)
            v.send_signal(signal.SIGKILL)
            v.wait(10)
        while progress() < restart_at and time.monotonic() - t0 < DEADLINE:
            time.sleep(0.01)
        node.kill()  # a crash: the socket file stays behind, stale; the new node replaces it
        time.sleep(0.05)
        restarted = Node(address).start()
        fds_before = restarted.fds()
        _wait_all(procs, t0 + DEADLINE)
        duration = time.monotonic() - t0
        fds_after = restarted.settle_fds(fds_before)
        mem = restarted.memory()
    finally:
        node.kill()
        if restarted is not None:
            restarted.stop()
    survivors = [Account.read(logs / f"f{k}.log") for k in range(CLIENTS)]
    killed = [Account.read(logs / f"v{v}.log") for v in range(victims_n)]
    for k, (p, a) in enumerate(zip(procs, survivors, strict=True)):
        assert p.returncode == 0, f"client {k} exited {p.returncode}: {p.stderr.read() if p.stderr else ''}"
        assert a.done
    reasons: dict[str, int] = {}
    for a in survivors:
        for why in a.failed.values():
            reasons[why] = reasons.get(why, 0) + 1
    figures = {
        "clients": CLIENTS,
        "killed_clients": victims_n,
        "node_restarts": 1,
        "messages": sum(len(a.sent) for a in survivors),
        "answered": sum(len(a.ok) for a in survivors),
        "failed_with_reason": sum(len(a.failed) for a in survivors),
        "failure_reasons": reasons,
        "lost": sum(len(a.unaccounted) for a in survivors),
        "duplicates": sum(a.duplicates for a in survivors + killed),
        "killed_in_flight": sum(len(a.unaccounted) for a in killed),
        "killed_answered": sum(len(a.ok) for a in killed),
        "duration_s": round(duration, 2),
        "fds_before": fds_before,
        "fds_after": fds_after,
        "peak_rss_mib": round(mem["VmHWM"] / 2**20, 1),
    }
    _report(record_property, "faults", figures)
    assert figures["messages"] == CLIENTS * FAULT_MESSAGES
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["failed_with_reason"] <= CLIENTS, "more than the one in-flight request per client failed"
    assert set(reasons) <= {"PeerBroken", "PeerClosed", "TransportTimeout"}, reasons
    assert figures["answered"] + figures["failed_with_reason"] == CLIENTS * FAULT_MESSAGES
    assert all(not a.done for a in killed), "a victim finished before it was killed"
    assert figures["killed_in_flight"] <= victims_n
    assert fds_after <= fds_before, f"the restarted node holds {fds_after - fds_before} more descriptors"


BUS_CLIENT = HERE / "soak_bus_client.py"


def test_soak_bus_node(node_dir: str, record_property: Any) -> None:
    """ROB-009 through the bus node (``symphony-ipc serve`` routing, windows, acknowledgements):
    CLIENTS sender processes send MESSAGES events each to one sink endpoint in another process;
    every one is delivered to the sink exactly once or reported refused to its sender; the node's
    descriptors are back to their baseline after, its memory bounded."""
    address = f"unix:{node_dir}/bus.sock"
    logs = Path(node_dir)
    path = address.partition(":")[2]
    node = subprocess.Popen(
        [sys.executable, "-m", "symphony_ipc.cli", "serve", "--listen", address], stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while not (os.path.exists(path) and Node._answers(path)):
            assert node.poll() is None, "the bus node did not start"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        probe = Node(address)
        probe.proc = node
        time.sleep(0.1)
        fds_before, idle = probe.fds(), probe.memory()["VmRSS"]
        total = CLIENTS * MESSAGES
        t0 = time.monotonic()
        sink = subprocess.Popen(
            [sys.executable, str(BUS_CLIENT), "sink", address, str(total), str(logs / "sink.log")],
            stderr=subprocess.PIPE,
        )
        time.sleep(0.3)  # the sink registers first: no message finds nobody there
        senders = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(BUS_CLIENT),
                    "send",
                    address,
                    f"sender-{k}",
                    str(MESSAGES),
                    str(logs / f"b{k}.log"),
                ],
                stderr=subprocess.PIPE,
            )
            for k in range(CLIENTS)
        ]
        _wait_all([*senders, sink], t0 + DEADLINE)
        duration = time.monotonic() - t0
        fds_after = probe.settle_fds(fds_before)
        mem = probe.memory()
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(10)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
    for p in [*senders, sink]:
        assert p.returncode == 0, p.stderr.read() if p.stderr else b""
    received: dict[tuple[str, int], int] = {}
    sink_lines = (logs / "sink.log").read_text().splitlines()
    assert sink_lines[-1] == "done"
    for line in sink_lines[:-1]:
        _, source, seq = line.split()
        received[(source, int(seq))] = received.get((source, int(seq)), 0) + 1
    sent: set[tuple[str, int]] = set()
    refused = 0
    for k in range(CLIENTS):
        lines = (logs / f"b{k}.log").read_text().splitlines()
        assert lines[-1] == "done"
        sent |= {(f"sender-{k}", int(x.split()[1])) for x in lines if x.startswith("s ")}
        refused += sum(1 for x in lines if x.startswith("refused "))
    figures = {
        "clients": CLIENTS,
        "messages": len(sent),
        "delivered": sum(1 for key in sent if received.get(key) == 1),
        "refused_with_reason": refused,
        "lost": len(sent) - sum(1 for key in sent if key in received) - refused,
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "duration_s": round(duration, 2),
        "fds_before": fds_before,
        "fds_after": fds_after,
        "rss_idle_mib": round(idle / 2**20, 1),
        "peak_rss_mib": round(mem["VmHWM"] / 2**20, 1),
    }
    _report(record_property, "bus", figures)
    assert figures["messages"] == total
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert set(received) <= sent, "the sink received a message nobody sent"
    assert fds_after <= fds_before, f"the node holds {fds_after - fds_before} more descriptors"
    assert mem["VmHWM"] - idle < RSS_GROWTH_BOUND, f"the node grew from {idle} to {mem['VmHWM']} bytes"
