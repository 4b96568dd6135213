"""``symphony-ipc serve`` as a bus node with client *processes*, over a Unix socket (and stdio).

Two client processes (tests/bus/node_client.py) do pub/sub and request/response through one node;
every message must arrive exactly once, and the copies queued while the subscriber was registered
but not reading must come out highest priority first, in publication order within a priority.
Every wait is bounded; every process is reaped, killed if need be.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from symphony_ipc.bus import BusClient

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "node_client.py"
CLI = [sys.executable, "-m", "symphony_ipc.cli"]
N, M = 240, 400  # published events, requests
DEADLINE = 60.0


class Lines:
    """The lines of a child's stream, read by a daemon thread, taken with a deadline (never hang:
    a select on the pipe would miss lines already in the text buffer)."""

    def __init__(self, stream: IO[str], proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def next(self, deadline: float) -> str:
        try:
            line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no line from {self.proc.args!r} in time") from None
        if line is None:
            raise AssertionError(f"{self.proc.args!r} exited ({self.proc.wait(5)}) without the line")
        return line


class Children:
    """Every process a test starts, stopped and reaped at the end whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str], **kw: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, text=True, **kw)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    c = Children()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def short_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-nodep-", dir="/tmp")  # a socket path is at most 107 bytes
    try:
        yield d
    finally:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


def start_node(children: Children, address: str, *extra: str) -> subprocess.Popen[str]:
    node = children.start([*CLI, "serve", "--listen", address, *extra], stderr=subprocess.PIPE)
    assert node.stderr is not None
    line = Lines(node.stderr, node).next(time.monotonic() + 20)
    assert line == f"symphony-ipc serve: bus node on {address}", line
    return node


def stop_node(node: subprocess.Popen[str], path: str) -> None:
    node.send_signal(signal.SIGTERM)
    assert node.wait(10) == 0
    assert not os.path.exists(path), "the node left its socket behind"


async def _final_stats(address: str) -> dict[str, Any]:
    client = await BusClient.connect(address, "inspector")
    try:
        return await client.stats()
    finally:
        await client.close()


def test_two_client_processes_pub_sub_and_request_response(children: Children, short_dir: str) -> None:
    deadline = time.monotonic() + DEADLINE
    path = f"{short_dir}/bus.sock"
    address = f"unix:{path}"
    node = start_node(children, address)
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    sub = children.start([sys.executable, str(CLIENT), "sub", address, str(N), str(M)], **pipes)
    assert sub.stdout is not None
    assert sub.stdin is not None
    sub_out = Lines(sub.stdout, sub)
    assert sub_out.next(deadline) == "ready"
    pub = children.start([sys.executable, str(CLIENT), "pub", address, str(N), str(M)], **pipes)
    assert pub.stdout is not None
    assert pub.stdin is not None
    pub_out = Lines(pub.stdout, pub)
    assert pub_out.next(deadline) == "published"  # all N pending at the node

    sub.stdin.write("go\n")
    sub.stdin.flush()
    got = [json.loads(sub_out.next(deadline)) for _ in range(N)]
    assert sub_out.next(deadline) == "received"
    seqs = [g["seq"] for g in got]
    assert sorted(seqs) == list(range(N)), "every event exactly once"
    by_order = sorted(got, key=lambda g: (-g["priority"], g["seq"]))
    assert got == by_order, "priority order, publication order within a priority (BUS-027)"

    pub.stdin.write("go\n")
    pub.stdin.flush()
    answers = [json.loads(pub_out.next(deadline)) for _ in range(M)]
    assert sorted(a["n"] for a in answers) == list(range(M)), "every request answered exactly once"
    assert all(a["answer"] == {"n": a["n"], "twice": 2 * a["n"]} for a in answers)
    assert len({a["correlation_id"] for a in answers}) == M
    assert pub.wait(max(1.0, deadline - time.monotonic())) == 0
    assert sub.wait(max(1.0, deadline - time.monotonic())) == 0

    stats = asyncio.run(asyncio.wait_for(_final_stats(address), 20))
    assert stats["accepted"] == N + 2 * M  # events, requests, responses
    assert stats["delivered"] == N + 2 * M  # the copies, the requests, the answers
    assert (stats["rejected"], stats["dead_lettered"], stats["pending"]) == (0, 0, 0)
    assert stats["outstanding_requests"] == 0
    stop_node(node, path)


def test_cli_send_and_subscribe(children: Children, short_dir: str) -> None:
    deadline = time.monotonic() + DEADLINE
    path = f"{short_dir}/cli.sock"
    address = f"unix:{path}"
    node = start_node(children, address)
    watcher = children.start(
        [*CLI, "subscribe", address, "--as", "watcher", "jobs", "--count", "2", "--answer"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert watcher.stderr is not None
    assert watcher.stdout is not None
    watched = Lines(watcher.stdout, watcher)
    assert Lines(watcher.stderr, watcher).next(deadline).startswith("symphony-ipc subscribe: watcher on")

    def send(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "send", address, "--from", "cli", *args], capture_output=True, text=True, timeout=30
        )

    done = send("--to", "topic:jobs", "--payload", '{"job": 1}', "--priority", "100")
    assert done.returncode == 0, done.stderr
    sent = json.loads(done.stdout)
    assert json.loads(watched.next(deadline)) == sent  # unchanged (BUS-003)

    done = send("--to", "watcher", "--request", "--payload", '"ping"', "--timeout", "10")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["header"]["message_type"], answer["payload"]) == ("Response", "ping")
    request = json.loads(watched.next(deadline))
    assert answer["header"]["correlation_id"] == request["header"]["id"]
    assert watcher.wait(10) == 0  # --count 2

    refused = send("--to", "nobody", "--payload", "1")
    assert refused.returncode == 1
    assert refused.stderr.startswith("symphony-ipc send: NO_ROUTE: ")
    timed_out = send("--to", "cli", "--request", "--timeout", "0.2")  # nobody answers itself
    assert timed_out.returncode == 1
    assert timed_out.stderr.startswith("symphony-ipc send: REQUEST_TIMEOUT: ")
    bad = send("--to", "x", "--payload", "{nope")
    assert bad.returncode == 2
    stop_node(node, path)
    unreachable = send("--to", "x")
    assert unreachable.returncode == 2
    assert "error" in unreachable.stderr


def test_a_stdio_node_serves_its_parent() -> None:
    """``stdio:COMMAND``: the client spawns the node as its child (one connection)."""

    async def main() -> None:
        address = "stdio:" + shlex.join([*CLI, "serve", "--listen", "stdio"])
        client = await BusClient.connect(address, "solo", timeout=20)
        try:
            await client.subscribe("self")
            sent = await client.publish("self", {"x": 1}, confirm=True)
            assert await client.receive(timeout=10) == sent
            assert (await client.stats())["delivered"] == 1
        finally:
            await client.close()

    asyncio.run(asyncio.wait_for(main(), 40))


def test_the_blocking_helpers(children: Children, short_dir: str) -> None:
    """``send_sync`` and ``request_sync``: one message each, from a plain function."""
    from symphony_ipc import NoRoute
    from symphony_ipc.bus import request_sync, send_sync

    deadline = time.monotonic() + DEADLINE
    path = f"{short_dir}/sync.sock"
    address = f"unix:{path}"
    node = start_node(children, address)
    watcher = children.start(
        [*CLI, "subscribe", address, "--as", "echo", "--count", "2", "--answer"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert watcher.stderr is not None
    assert watcher.stdout is not None
    watched = Lines(watcher.stdout, watcher)
    Lines(watcher.stderr, watcher).next(deadline)
    sent = send_sync(address, "s1", "echo", {"n": 1})
    assert json.loads(watched.next(deadline))["header"]["id"] == sent.header.id
    answer = request_sync(address, "s2", "echo", {"n": 2}, timeout=10)
    assert answer.payload == {"n": 2}
    assert answer.header.correlation_id == json.loads(watched.next(deadline))["header"]["id"]
    with pytest.raises(NoRoute):
        send_sync(address, "s3", "nobody", 3)
    assert watcher.wait(10) == 0
    stop_node(node, path)
