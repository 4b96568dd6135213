"""Transport benchmarks: message round trips between two processes, with floors and peers.

Run: ``python perf/bench_transport.py -o results/transport.json`` (pyperf options apply: ``--fast``,
``--rigorous``, ``--debug-single-value``, ``-b NAME`` to pick benchmarks).

One round trip of ``transport.{unix,fifo,stdio}.message_rt.{200B,64KiB}``: create a message (a
payload of about 200 bytes of JSON, or 64 KiB), encode it (MessagePack, the codec the handshake
picks by default), frame it, send it to a ``symphony-ipc serve`` child with the reference's blocking
client, receive the echo, decode it and check its id. The child is started once per pyperf worker
process, outside the timing.

Floors do the same byte traffic (the encoded frame's size) with nothing of ours: ``floor.py.*`` a
blocking standard-library echo (client here, server a child), ``floor.c.*`` the same echo in C on
both sides (perf/floor_echo.c, compiled at run time; skipped without a C compiler). Peers do the
same message work (create, encode, decode, check) over another library's transport:
``peer.mp_connection.*`` (multiprocessing.connection over a Unix socket) and ``peer.zmq_reqrep.*``
(pyzmq REQ/REP over ipc://; skipped when pyzmq is not installed).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import msgspec

import symphony_ipc as s
from _common import HERE, PERF_EXTRA, WALL_CLOCK_NAME, Skips, compiled_floor, make_runner, payload_of_size

CODEC = "msgpack"
TRANSPORTS = ("unix", "fifo", "stdio")
CHILD_TIMEOUT = 20.0  # seconds for a child to come up / answer


PAYLOADS = {"200B": payload_of_size(200), "64KiB": payload_of_size(65536)}


def _message(payload: Any) -> s.Message:
    return s.new_message(s.MessageType.REQUEST, "perf-client", "perf-echo", payload)


def frame_size(payload: Any) -> int:
    return 4 + len(s.encode(_message(payload), CODEC))


class Rig(Protocol):
    def run(self, loops: int) -> float: ...

    def close(self) -> None: ...


def _python_child(*args: str, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(HERE / "_children.py"), *args], **popen)


def _await_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"echo child did not start (exit {proc.poll()}): {line!r}")


def _reap(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _TmpDir:
    def __init__(self) -> None:
        # short: a Unix socket path is at most 107 bytes
        self.path = tempfile.mkdtemp(prefix="sym-perf-", dir="/tmp" if os.path.isdir("/tmp") else None)

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------- the reference


class ReferenceRig:
    """The reference's blocking client against a ``symphony-ipc serve`` child."""

    def __init__(self, transport: str, payload: Any) -> None:
        from symphony_ipc.transport import ConnectionRefused, TransportTimeout, connect_blocking

        self.payload = payload
        self.tmp = _TmpDir()
        self.server: subprocess.Popen[bytes] | None = None
        serve = [sys.executable, "-m", "symphony_ipc.cli", "serve", "--echo", "--listen"]
        if transport == "stdio":
            address = "stdio:" + shlex.join([*serve, "stdio"])
            self.conn = connect_blocking(address, codecs=(CODEC,), timeout=CHILD_TIMEOUT)
        else:
            target = f"unix:{self.tmp.path}/s.sock" if transport == "unix" else f"fifo:{self.tmp.path}/f"
            self.server = subprocess.Popen([*serve, target], stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + CHILD_TIMEOUT
            while True:
                try:
                    self.conn = connect_blocking(target, codecs=(CODEC,), timeout=CHILD_TIMEOUT)
                    break
                except (ConnectionRefused, TransportTimeout):
                    if time.monotonic() > deadline or self.server.poll() is not None:
                        self.close()
                        raise
                    time.sleep(0.01)
        self.run(100)  # warm both processes up

    def run(self, loops: int) -> float:
        conn, payload, new_message = self.conn, self.payload, s.new_message
        encode, decode, req = s.encode, s.decode, s.MessageType.REQUEST
        t0 = time.perf_counter()
        for _ in range(loops):
            msg = new_message(req, "perf-client", "perf-echo", payload)
            conn.send_frame(encode(msg, CODEC))
            if decode(conn.recv_frame(CHILD_TIMEOUT), CODEC).header.id != msg.header.id:
                raise RuntimeError("the echo answered with another message")
        return time.perf_counter() - t0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        if self.server is not None:
            self.server.terminate()
            _reap(self.server)
        self.tmp.cleanup()


# ---------------------------------------------------------------- floors


class PythonFloorRig:
    """Raw bytes, blocking standard library on both sides: the client here, the echo a child."""

    def __init__(self, transport: str, size: int) -> None:
        self.size = size
        self.tmp = _TmpDir()
        self.sock: socket.socket | None = None
        self.buf = bytearray(size)
        self.out = b"x" * size
        if transport == "unix":
            path = f"{self.tmp.path}/floor.sock"
            self.proc = _python_child("floor", "unix", path, stdout=subprocess.PIPE)
            _await_ready(self.proc)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(CHILD_TIMEOUT)
            self.sock.connect(path)
        elif transport == "fifo":
            c2s, s2c = f"{self.tmp.path}/c2s", f"{self.tmp.path}/s2c"
            os.mkfifo(c2s, 0o600)
            os.mkfifo(s2c, 0o600)
            self.proc = _python_child("floor", "fifo", c2s, s2c)
            self.wfd = os.open(c2s, os.O_WRONLY)
            self.rfd = os.open(s2c, os.O_RDONLY)
        else:
            self.proc = _python_child("floor", "stdio", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert self.proc.stdin is not None
            assert self.proc.stdout is not None
            self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        if self.sock is None:
            self.reader = open(self.rfd, "rb", buffering=0, closefd=False)  # noqa: SIM115
        self.run(100)

    def run(self, loops: int) -> float:
        size, buf, out = self.size, self.buf, self.out
        view = memoryview(buf)
        sock = self.sock
        t0 = time.perf_counter()
        if sock is not None:
            send, recv_into = sock.sendall, sock.recv_into
            for _ in range(loops):
                send(out)
                got = 0
                while got < size:
                    n = recv_into(view[got:])
                    if not n:
                        raise RuntimeError("the echo ended")
                    got += n
        else:
            wfd, readinto, write = self.wfd, self.reader.readinto, os.write
            for _ in range(loops):
                sent = 0
                while sent < size:
                    sent += write(wfd, out[sent:] if sent else out)
                got = 0
                while got < size:
                    n = readinto(view[got:])
                    if not n:
                        raise RuntimeError("the echo ended")
                    got += n
        return time.perf_counter() - t0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        else:
            self.reader.close()
            if self.proc.stdin is None:  # fifo: our descriptors
                for fd in (self.wfd, self.rfd):
                    with contextlib.suppress(OSError):
                        os.close(fd)
        _reap(self.proc)
        self.tmp.cleanup()


class CFloorRig:
    """Raw bytes, C on both sides (perf/floor_echo.c): it times itself, we only ask."""

    def __init__(self, binary: Path, transport: str, size: int) -> None:
        self.tmp = _TmpDir()
        self.proc = subprocess.Popen(
            [str(binary), transport, str(size), self.tmp.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.run(100)

    def run(self, loops: int) -> float:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"%d\n" % loops)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"floor_echo failed (exit {self.proc.poll()})")
        return int(line) / 1e9

    def close(self) -> None:
        _reap(self.proc)
        self.tmp.cleanup()


# ---------------------------------------------------------------- peers


class MpConnectionRig:
    """multiprocessing.connection over a Unix socket: the same message work, another transport."""

    def __init__(self, payload: Any) -> None:
        from multiprocessing.connection import Client

        self.payload = payload
        self.tmp = _TmpDir()
        path = f"{self.tmp.path}/mp.sock"
        self.proc = _python_child("mpconn", path, stdout=subprocess.PIPE)
        _await_ready(self.proc)
        self.conn = Client(path, family="AF_UNIX")
        self.run(100)

    def run(self, loops: int) -> float:
        conn, payload, new_message = self.conn, self.payload, s.new_message
        encode, decode, req = s.encode, s.decode, s.MessageType.REQUEST
        send, recv = conn.send_bytes, conn.recv_bytes
        t0 = time.perf_counter()
        for _ in range(loops):
            msg = new_message(req, "perf-client", "perf-echo", payload)
            send(encode(msg, CODEC))
            if decode(recv(), CODEC).header.id != msg.header.id:
                raise RuntimeError("the echo answered with another message")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()
        _reap(self.proc)
        self.tmp.cleanup()


class ZmqRig:
    """pyzmq REQ/REP over ipc://: the same message work, another transport."""

    def __init__(self, payload: Any) -> None:
        import zmq

        self.payload = payload
        self.tmp = _TmpDir()
        endpoint = f"ipc://{self.tmp.path}/zmq.ipc"
        self.proc = _python_child("zmq", endpoint, stdout=subprocess.PIPE)
        _await_ready(self.proc)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, int(CHILD_TIMEOUT * 1000))
        self.sock.connect(endpoint)
        self.run(100)

    def run(self, loops: int) -> float:
        sock, payload, new_message = self.sock, self.payload, s.new_message
        encode, decode, req = s.encode, s.decode, s.MessageType.REQUEST
        send, recv = sock.send, sock.recv
        t0 = time.perf_counter()
        for _ in range(loops):
            msg = new_message(req, "perf-client", "perf-echo", payload)
            send(encode(msg, CODEC), copy=False)
            if decode(recv(), CODEC).header.id != msg.header.id:
                raise RuntimeError("the echo answered with another message")
        return time.perf_counter() - t0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.send(b"")  # goodbye: the child answers and exits
            self.sock.recv()
        self.sock.close()
        self.ctx.term()
        _reap(self.proc)
        self.tmp.cleanup()


# ---------------------------------------------------------------- registration

_live: dict[str, Rig] = {}


def _close_live() -> None:
    while _live:
        _, rig = _live.popitem()
        rig.close()


atexit.register(_close_live)


def lazy(name: str, make: Callable[[], Rig]) -> Callable[[int], float]:
    """A time function that starts its rig on first use (in the worker, outside the timing); one
    rig is live at a time, so a single process running every benchmark holds one child."""

    def run(loops: int) -> float:
        rig = _live.get(name)
        if rig is None:
            _close_live()
            rig = _live[name] = make()
        return rig.run(loops)

    return run


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def add_benchmarks(runner: Any, skips: Skips) -> None:
    binary, no_cc = compiled_floor()
    have_zmq = _have("zmq")
    # the skip notes first, so that every run's metadata carries them
    for label in PAYLOADS:
        if binary is None:
            for tr in TRANSPORTS:
                skips.add(f"floor.c.{tr}.echo.{label}", no_cc)
        if not have_zmq:
            skips.add(
                f"peer.zmq_reqrep.ipc.message_rt.{label}",
                f"pyzmq is not installed ({PERF_EXTRA})",
            )
    for label, payload in PAYLOADS.items():
        size = frame_size(payload)
        meta = {
            "payload_bytes": len(msgspec.json.encode(payload)),
            "frame_bytes": size,
            "codec": CODEC,
            "clock": WALL_CLOCK_NAME,
        }
        for tr in TRANSPORTS:
            tmeta = {**meta, "transport": tr}
            runner.bench_time_func(
                f"transport.{tr}.message_rt.{label}",
                lazy(f"ref-{tr}-{label}", lambda tr=tr, payload=payload: ReferenceRig(tr, payload)),
                metadata={**tmeta, "client": "connect_blocking", "server": "symphony-ipc serve"},
            )
            runner.bench_time_func(
                f"floor.py.{tr}.echo.{label}",
                lazy(f"py-{tr}-{label}", lambda tr=tr, size=size: PythonFloorRig(tr, size)),
                metadata={**tmeta, "client": "stdlib blocking", "server": "stdlib blocking child"},
            )
            if binary is not None:
                runner.bench_time_func(
                    f"floor.c.{tr}.echo.{label}",
                    lazy(f"c-{tr}-{label}", lambda tr=tr, size=size: CFloorRig(binary, tr, size)),
                    metadata={**tmeta, "client": "C", "server": "C child"},
                )
        umeta = {**meta, "transport": "unix"}
        runner.bench_time_func(
            f"peer.mp_connection.unix.message_rt.{label}",
            lazy(f"mp-{label}", lambda payload=payload: MpConnectionRig(payload)),
            metadata={**umeta, "client": "multiprocessing.connection", "server": "child"},
        )
        if have_zmq:
            runner.bench_time_func(
                f"peer.zmq_reqrep.ipc.message_rt.{label}",
                lazy(f"zmq-{label}", lambda payload=payload: ZmqRig(payload)),
                metadata={
                    **umeta,
                    "transport": "zmq ipc",
                    "client": "pyzmq REQ",
                    "server": "pyzmq REP child",
                },
            )


def main() -> None:
    runner = make_runner("transport")
    runner.parse_args()
    add_benchmarks(runner, Skips(runner))


if __name__ == "__main__":
    main()
