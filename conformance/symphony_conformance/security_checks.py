"""Reusable checks of the profile ``security`` (spec/security.md) against a live endpoint.

Each check is a plain function ``check_*(start)`` that raises :class:`AssertionError` naming the
requirement ids it verifies (the ids its docstring begins with, :func:`requirements_of`). ``start``
is given a :class:`SecurityConfig` and returns a :class:`Target`: an echo endpoint the
implementation started with that configuration (a handshake timeout, a connection limit, a rate, an
allow list, a socket mode, a shared secret). A target opens blocking raw connections
(:class:`~symphony_conformance.transport_checks.RawWire` for ``unix:``, ``fifo:`` and ``stdio:``
addresses, or a plugged-in transport's raw pipes), so the checks speak the wire as written in the
spec, independent of the reference.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ._wirecheck import LEN
from ._wirecheck import check as _check
from ._wirecheck import fail as _fail
from ._wirecheck import frame as _frame
from .transport_checks import RawWire

MAX_FRAME = 16 * 1024 * 1024
HELLO_MAX = 4096
LABEL_SERVER = b"symphony-auth-v1 server"
LABEL_CLIENT = b"symphony-auth-v1 client"


class NotObservable(Exception):
    """A check cannot see what it needs here (no pid, no other user, no credentials): a skip."""


def _hello(codecs: Iterable[str] = ("json",), version: str = "1.0") -> bytes:
    return _frame(json.dumps({"symphony": version, "codecs": list(codecs)}, separators=(",", ":")).encode())


# ---------------------------------------------------------------- configuration and targets


@dataclass(frozen=True)
class SecurityConfig:
    """What an endpoint is asked to enforce (the driver's ``listen`` member ``security``).

    ``None`` everywhere: the implementation's defaults (its own user only, its default limits).
    """

    handshake_timeout: float | None = None
    max_connections: int | None = None
    rate: float | None = None
    burst: int | None = None
    allow_uids: tuple[int, ...] | None = None
    socket_mode: int | None = None
    secret: bytes | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("handshake_timeout", "max_connections", "rate", "burst", "socket_mode"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.allow_uids is not None:
            out["allow_uids"] = list(self.allow_uids)
        if self.secret is not None:
            out["secret_hex"] = self.secret.hex()
        return out


class RawConn(Protocol):
    """A blocking raw connection: bytes out, frames in (:class:`RawWire` is one)."""

    def send(self, data: bytes) -> None: ...

    def read_frame(self) -> bytes | None: ...

    def at_eof(self) -> bool: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


class Target(Protocol):
    """An echo endpoint started with one configuration."""

    address: str
    pid: int | None
    config: SecurityConfig

    def open(self, timeout: float = 10.0) -> RawConn: ...


@dataclass
class WireTarget:
    """An endpoint reachable through its address alone (``unix:``, ``fifo:``, ``stdio:``)."""

    address: str
    pid: int | None = None
    config: SecurityConfig = field(default_factory=SecurityConfig)

    def open(self, timeout: float = 10.0) -> RawConn:
        return RawWire(self.address, timeout)


Starter = Callable[[SecurityConfig], Target]


def _open(target: Target, reqs: str, timeout: float = 10.0) -> RawConn:
    try:
        return target.open(timeout)
    except OSError as e:
        raise _fail(reqs, f"cannot connect to {target.address}: {e}") from e


def _scheme(target: Target) -> str:
    return target.address.partition(":")[0]


def _error_code(frame: bytes | None) -> str | None:
    if frame is None:
        return None
    try:
        obj = json.loads(frame)
    except ValueError:
        return None
    err = obj.get("error") if isinstance(obj, dict) else None
    return err.get("code") if isinstance(err, dict) else None


def _expect_refusal(w: RawConn, code: str, reqs: str, what: str) -> None:
    """The next frame is an error frame with ``code``, then the end of the stream."""
    try:
        frame = w.read_frame()
    except TimeoutError:
        raise _fail(reqs, f"{what}: no answer in time (expected an error frame {code})") from None
    _check(frame is not None, reqs, f"{what}: the connection closed without the error frame {code}")
    got = _error_code(frame)
    _check(got == code, reqs, f"{what}: expected an error frame {code}, got {frame!r:.200}")
    try:
        _check(w.at_eof(), reqs, f"{what}: the connection stayed open after the error frame {code}")
    except TimeoutError:
        raise _fail(reqs, f"{what}: the connection stayed open after the error frame {code}") from None


def _handshake(w: RawConn, reqs: str, codecs: Iterable[str] = ("json",)) -> dict[str, Any]:
    w.send(_hello(codecs))
    frame = w.read_frame()
    _check(frame is not None, reqs, "closed without answering the hello")
    assert frame is not None
    obj: dict[str, Any] = json.loads(frame)
    _check("codec" in obj, reqs, f"the hello was answered with {obj}")
    return obj


def _echo(w: RawConn, payload: bytes, reqs: str) -> None:
    w.send(_frame(payload))
    got = w.read_frame()
    _check(got == payload, reqs, f"{payload[:40]!r} came back as {None if got is None else got[:40]!r}")


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError as e:
        raise NotObservable(f"cannot read the memory of process {pid}: {e.strerror}") from None
    raise NotObservable(f"process {pid} reports no VmRSS")


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError as e:
        raise NotObservable(f"cannot list the descriptors of process {pid}: {e.strerror}") from None


def _message(seq: int) -> tuple[str, bytes]:
    """A canonical JSON Request (spec/protocol.md section 6.1), written here from the spec."""
    mid = str(uuid.uuid4())
    msg = {
        "header": {
            "id": mid,
            "correlation_id": None,
            "message_type": "Request",
            "source": "harness",
            "target": "echo",
            "timestamp": "2025-01-02T03:04:05.123Z",
            "ttl": None,
            "priority": 0,
            "version": {"major": 1, "minor": 0},
        },
        "payload": {"seq": seq},
        "metadata": {},
    }
    return mid, json.dumps(msg, separators=(",", ":")).encode()


# ---------------------------------------------------------------- the checks


def check_oversize_length(start: Starter, *, connections: int = 20) -> None:
    """ROB-001: a length over the maximum is refused on its four bytes alone: before the handshake
    with an error frame SERIALIZATION, after it with a close, at once; announcing 4 GiB over and
    over does not grow the server's memory."""
    target = start(SecurityConfig())
    reqs = "ROB-001"
    with _open(target, reqs, timeout=5.0) as w:
        w.send(LEN.pack(0xFFFFFFFF))
        _expect_refusal(w, "SERIALIZATION", reqs, "a first length of 4 GiB")
    before = _rss(target.pid) if target.pid else None
    for i in range(connections):
        with _open(target, reqs, timeout=5.0) as w:
            _handshake(w, reqs)
            w.send(LEN.pack(MAX_FRAME + 1 if i % 2 else 0xFFFFFFFF) + b"x" * 1000)
            try:
                closed = w.at_eof()
            except TimeoutError:
                raise _fail(reqs, "the server waits for the payload of a length over 16 MiB") from None
            _check(closed, reqs, "the server answered a length over the maximum instead of closing")
    if before is not None and target.pid:
        grown = _rss(target.pid) - before
        _check(grown < 64 << 20, reqs, f"the server grew by {grown} bytes while peers announced 4 GiB frames")


def check_slow_handshake(start: Starter, *, timeout: float = 0.5, slack: float = 5.0) -> None:
    """ROB-002: with a handshake timeout, a silent client and one trickling its hello a byte at a
    time get an error frame HANDSHAKE_TIMEOUT and a close; a client connecting meanwhile is served."""
    target = start(SecurityConfig(handshake_timeout=timeout))
    reqs = "ROB-002"
    silent = _open(target, reqs, timeout=timeout + slack)
    trickle = _open(target, reqs, timeout=timeout + slack)
    stop = threading.Event()

    def dribble() -> None:
        for b in _hello():
            if stop.wait(0.05):
                return
            with contextlib.suppress(OSError):
                trickle.send(bytes([b]))

    t = threading.Thread(target=dribble, daemon=True)
    t.start()
    try:
        with _open(target, reqs) as normal:
            _handshake(normal, reqs)
            _echo(normal, b"not delayed", reqs)
        t0 = time.monotonic()
        _expect_refusal(silent, "HANDSHAKE_TIMEOUT", reqs, "a client silent after connecting")
        _expect_refusal(trickle, "HANDSHAKE_TIMEOUT", reqs, "a client trickling its hello")
        _check(time.monotonic() - t0 < timeout + slack, reqs, "the timeout came late")
    finally:
        stop.set()
        t.join()
        silent.close()
        trickle.close()


GARBAGE: tuple[tuple[str, bytes, str], ...] = (
    ("an HTTP request", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "SERIALIZATION"),
    ("a TLS ClientHello", bytes.fromhex("1603010200010001fc0303") + b"\x00" * 32, "SERIALIZATION"),
    ("random bytes", bytes(range(0x80, 0x100)) * 4, "SERIALIZATION"),
    ("a hello of 4097 bytes", LEN.pack(HELLO_MAX + 1), "SERIALIZATION"),
    ("invalid UTF-8", _frame(b'{"symphony":"1.0","codecs":["json"],"x":"\xff\xfe"}'), "SERIALIZATION"),
    ("a JSON array", _frame(b'["symphony","1.0"]'), "SERIALIZATION"),
    (
        "deep nesting",
        _frame(b'{"symphony":"1.0","codecs":' + b"[" * 1500 + b"]" * 1500 + b"}"),
        "SERIALIZATION",
    ),
    ("an empty first frame", LEN.pack(0), "SERIALIZATION"),
    ("version 99.0", _hello(version="99.0"), "INVALID_PROTOCOL_VERSION"),
    ("version 1.65536", _hello(version="1.65536"), "SERIALIZATION"),
    ("no common codec", _hello(codecs=("cbor", "protobuf")), "SERIALIZATION"),
)


def check_garbage(start: Starter) -> None:
    """ROB-003: garbage, invalid UTF-8, deep nesting, oversized or empty hellos and unknown versions
    before the handshake each get their typed error frame and a close; a stream ending inside the
    hello is closed; the server goes on serving."""
    target = start(SecurityConfig())
    reqs = "ROB-003"
    for what, data, code in GARBAGE:
        with _open(target, reqs, timeout=5.0) as w:
            w.send(data)
            _expect_refusal(w, code, reqs, what)
    with _open(target, reqs, timeout=5.0) as w:  # truncated: half a hello, then our end
        w.send(_hello()[:9])
        if _shut(w):  # (a plugged-in transport's raw pipe has no half close: not checked there)
            try:
                frame = w.read_frame()
            except TimeoutError:
                raise _fail(reqs, "a stream ending inside the hello was not closed") from None
            _check(frame is None or _error_code(frame) == "SERIALIZATION", reqs, f"answered {frame!r:.80}")
    with _open(target, reqs) as w:
        _handshake(w, reqs)
        _echo(w, b"still serving", reqs)


def _shut(w: RawConn) -> bool:
    """End our direction of the stream (a half close); False when the connection cannot."""
    if not isinstance(w, RawWire):
        return False
    if w.address.startswith("unix:"):
        import socket

        with socket.socket(fileno=os.dup(w.wfd)) as s:
            s.shutdown(socket.SHUT_WR)
        return True
    if w.proc is not None and w.proc.stdin is not None:
        w.proc.stdin.close()
    else:
        os.close(w.wfd)
    w.wfd = w.rfd
    return True


def check_connection_flood(start: Starter, *, limit: int = 3, flood: int = 30) -> None:
    """ROB-006: with a connection limit, the connection beyond it gets an error frame
    CONNECTION_LIMIT and a close; a slot frees when a connection closes; a flood of connections
    opened and dropped leaves the server serving."""
    target = start(SecurityConfig(max_connections=limit))
    reqs = "ROB-006"
    held: list[RawConn] = []
    try:
        for _ in range(limit):
            w = _open(target, reqs)
            held.append(w)
            _handshake(w, reqs)
        with _open(target, reqs, timeout=5.0) as extra:
            _expect_refusal(extra, "CONNECTION_LIMIT", reqs, f"connection {limit + 1} of a limit of {limit}")
        held.pop().close()
        deadline = time.monotonic() + 5.0
        while True:  # the server notices the close asynchronously
            with _open(target, reqs, timeout=5.0) as w:
                w.send(_hello())
                frame = w.read_frame()
                if frame is not None and b"codec" in frame:
                    _echo(w, b"a slot was freed", reqs)
                    break
                _check(time.monotonic() < deadline, reqs, "no slot was freed after a connection closed")
            time.sleep(0.05)
    finally:
        for w in held:
            w.close()
    for _ in range(flood):
        with contextlib.suppress(OSError), _open(target, reqs, timeout=5.0) as w:
            w.send(b"\x00\x00")
    deadline = time.monotonic() + 10.0
    while True:
        try:
            with _open(target, reqs, timeout=5.0) as w:
                _handshake(w, reqs)
                _echo(w, b"after the flood", reqs)
                return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def check_rate_limit(start: Starter, *, rate: float = 4.0, burst: int = 3, sent: int = 12) -> None:
    """ROB-007: over its rate a sender's messages are answered with Error messages RATE_LIMITED
    (recoverable, correlation_id the message's id, retry_after_ms) instead of being processed; the
    connection stays open; after a pause its messages are processed again; another sender is not
    affected."""
    target = start(SecurityConfig(rate=rate, burst=burst))
    reqs = "ROB-007"
    with _open(target, reqs) as w, _open(target, reqs) as other:
        _handshake(w, reqs)
        _handshake(other, reqs)
        msgs = [_message(i) for i in range(sent)]
        w.send(b"".join(_frame(m) for _, m in msgs))
        echoed, limited = 0, 0
        for mid, m in msgs:
            got = w.read_frame()
            _check(got is not None, reqs, "the connection closed when the sender went over its rate")
            assert got is not None
            if got == m:
                echoed += 1
                continue
            try:
                reply = json.loads(got)
                header, err = reply["header"], reply["payload"]
            except (ValueError, KeyError, TypeError):
                raise _fail(reqs, f"a message over the rate was answered with {got!r:.200}") from None
            _check(
                header.get("message_type") == "Error", reqs, f"the answer is not an Error message: {header}"
            )
            _check(
                header.get("correlation_id") == mid,
                reqs,
                f"the Error's correlation_id is not {mid}: {header}",
            )
            _check(
                isinstance(err, dict)
                and err.get("code") == "RATE_LIMITED"
                and err.get("recoverable") is True,
                reqs,
                f"the Error's payload is {err!r:.200}, not a recoverable RATE_LIMITED",
            )
            _check(isinstance(err.get("details", {}).get("retry_after_ms"), int), reqs, "no retry_after_ms")
            limited += 1
        _check(echoed >= burst, reqs, f"only {echoed} of a burst of {burst} were processed")
        _check(limited >= sent - burst - 3, reqs, f"{sent} messages at once, only {limited} RATE_LIMITED")
        _, m = _message(-1)
        _echo(other, m, reqs)  # another sender: its own budget
        time.sleep(2.0 / rate)
        _, m = _message(-2)
        _echo(w, m, reqs)  # recovered after a pause, on the same connection


def check_peer_not_allowed(start: Starter) -> None:
    """SEC-004, SEC-005: a server whose allow list does not hold our uid refuses us with an error
    frame PEER_NOT_ALLOWED and a close, before parsing anything we send (garbage is not answered
    SERIALIZATION)."""
    reqs = "SEC-004, SEC-005"
    other_uid = os.geteuid() + 1 if os.geteuid() != 65533 else 65532
    target = start(SecurityConfig(allow_uids=(other_uid,)))
    if _scheme(target) not in ("unix", "fifo"):
        raise NotObservable(f"{_scheme(target)}: no kernel peer credentials (SEC-006 and SEC-007 apply)")
    with _open(target, reqs) as w:
        w.send(_hello())
        _expect_refusal(w, "PEER_NOT_ALLOWED", reqs, "a peer not on the allow list")
    with _open(target, reqs) as w:
        w.send(b"GET / HTTP/1.1\r\n\r\n")
        _expect_refusal(w, "PEER_NOT_ALLOWED", reqs, "garbage from a peer not on the allow list")


_FOREIGN = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect": e.errno})); sys.exit(0)
body = b'{"symphony":"1.0","codecs":["json"]}'
s.sendall(struct.pack(">I", len(body)) + body)
s.settimeout(10)
data = b""
try:
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError as e:
    print(json.dumps({"recv": e.errno})); sys.exit(0)
print(json.dumps({"answer": data[4:].decode(errors="replace")}))
"""


def foreign_python() -> str:
    """A Python interpreter another user can run (a virtualenv's may live in root's home)."""
    return shutil.which("python3", path="/usr/bin:/usr/local/bin:/bin") or sys.executable


def check_foreign_user(start: Starter, *, uid: int = 65534) -> None:
    """SEC-005: a client running as another user (nobody), on a socket that user may connect to
    (mode 0666), gets an error frame PEER_NOT_ALLOWED. Needs root to run a client as another user."""
    reqs = "SEC-005"
    if os.geteuid() != 0:
        raise NotObservable("running a client as another user needs root")
    target = start(SecurityConfig(socket_mode=0o666))
    if _scheme(target) != "unix":
        raise NotObservable("the foreign-user check connects to Unix sockets only")
    path = target.address.partition(":")[2]
    out = subprocess.run(
        [foreign_python(), "-I", "-S", "-c", _FOREIGN, path],
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        timeout=30,
        cwd="/",
    )
    if out.returncode != 0:
        raise NotObservable(
            f"the client as uid {uid} did not run: {out.stderr.decode(errors='replace')[-300:]}"
        )
    result = json.loads(out.stdout)
    if "connect" in result:
        import errno

        if result["connect"] == errno.EACCES:
            raise NotObservable(
                f"uid {uid} cannot reach {path} (directory permissions): the check cannot run"
            )
        raise _fail(reqs, f"uid {uid} could not connect: errno {result['connect']}")
    if "recv" in result:
        raise _fail(
            reqs, f"uid {uid} connected and was reset without an error frame (errno {result['recv']})"
        )
    answer = result["answer"]
    _check(
        _error_code(answer.encode()) == "PEER_NOT_ALLOWED",
        reqs,
        f"a client of uid {uid} was answered {answer[:200]!r}, not PEER_NOT_ALLOWED",
    )


def check_socket_mode(start: Starter) -> None:
    """SEC-001, SEC-003: a Unix socket is created owner-only (0600) unless configured, and with the
    configured mode otherwise; a FIFO rendezvous is 0600 in a directory no one else may write."""
    target = start(SecurityConfig())
    scheme, _, path = target.address.partition(":")
    if scheme == "unix":
        mode = stat.S_IMODE(os.stat(path).st_mode)
        _check(mode == 0o600, "SEC-001", f"{path} has mode {mode:04o}, not 0600")
        wide = start(SecurityConfig(socket_mode=0o660))
        wpath = wide.address.partition(":")[2]
        mode = stat.S_IMODE(os.stat(wpath).st_mode)
        _check(mode == 0o660, "SEC-001", f"asked for 0660, {wpath} has mode {mode:04o}")
        return
    if scheme == "fifo":
        rendezvous = os.path.join(path, "connect")
        mode = stat.S_IMODE(os.stat(rendezvous).st_mode)
        _check(mode == 0o600, "SEC-003", f"{rendezvous} has mode {mode:04o}, not 0600")
        dmode = stat.S_IMODE(os.stat(path).st_mode)
        _check(not dmode & 0o022, "SEC-003", f"{path} is writable by others (mode {dmode:04o})")
        return
    raise NotObservable(f"{scheme}: no socket or FIFO file to look at")


_DIES = r"""
import os, sys, time
from symphony_conformance.transport_checks import RawWire
w = RawWire(sys.argv[1])
body = b'{"symphony":"1.0","codecs":["json"]}'
w.send(len(body).to_bytes(4, "big") + body)
w.read_frame()
w.send((1 << 20).to_bytes(4, "big") + b"x" * 1000)
print("ready", flush=True)
time.sleep(60)
"""


def check_killed_client(start: Starter, *, victims: int = 3, frames: int = 300) -> None:
    """ROB-008: clients SIGKILLed mid-frame and mid-handshake disturb no other: a live client's
    frames all come back, in order, meanwhile."""
    target = start(SecurityConfig())
    reqs = "ROB-008"
    procs: list[subprocess.Popen[bytes]] = []
    half: list[RawConn] = []
    with _open(target, reqs) as live:
        _handshake(live, reqs)
        try:
            if _scheme(target) in ("unix", "fifo"):
                for _ in range(victims):
                    proc = subprocess.Popen(
                        [sys.executable, "-c", _DIES, target.address], stdout=subprocess.PIPE
                    )
                    procs.append(proc)
                    assert proc.stdout is not None
                    _check(proc.stdout.readline() == b"ready\n", reqs, "a victim client did not start")
            else:  # no process to kill: connections dropped mid-frame instead
                for _ in range(victims):
                    w = _open(target, reqs)
                    _handshake(w, reqs)
                    w.send(LEN.pack(1 << 20) + b"x" * 1000)
                    half.append(w)
            mid = _open(target, reqs)  # one more, gone mid-handshake
            mid.send(_hello()[:7])
            half.append(mid)
            payloads = [b"live %d" % i for i in range(frames)]
            for i, p in enumerate(payloads):
                live.send(_frame(p))
                if i == frames // 2:
                    for v in procs:
                        v.kill()
                    for w in half:
                        w.close()
            for i, p in enumerate(payloads):
                got = live.read_frame()
                _check(got == p, reqs, f"frame {i} of the live client came back as {got!r:.60}")
        finally:
            for v in procs:
                v.kill()
                v.wait()
            for w in half:
                w.close()


def check_load(start: Starter, *, clients: int = 4, messages: int = 300) -> None:
    """ROB-009: several clients at once, each message answered exactly once and in order; the
    server's descriptors are back to their baseline when they leave."""
    target = start(SecurityConfig())
    reqs = "ROB-009"
    with _open(target, reqs) as w:  # warm-up
        _handshake(w, reqs)
        _echo(w, b"warm", reqs)
    time.sleep(0.05)
    before = _fds(target.pid) if target.pid else None
    errors: list[BaseException] = []

    def one(k: int) -> None:
        try:
            with _open(target, reqs) as w:
                _handshake(w, reqs)
                payloads = [_message(i)[1] for i in range(messages)]
                sender = threading.Thread(target=lambda: w.send(b"".join(_frame(p) for p in payloads)))
                sender.start()
                try:
                    for i, p in enumerate(payloads):
                        got = w.read_frame()
                        _check(got == p, reqs, f"client {k}: message {i} lost, duplicated or reordered")
                finally:
                    sender.join()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    if before is not None and target.pid:
        deadline = time.monotonic() + 5.0
        after = _fds(target.pid)
        while after > before and time.monotonic() < deadline:
            time.sleep(0.05)
            after = _fds(target.pid)
        _check(after <= before, reqs, f"{after - before} more descriptors after {clients} clients left")


def _auth_client(w: RawConn, secret: bytes, reqs: str) -> bytes:
    """The client side of the secret handshake (spec/security.md section 2); returns the proof sent."""
    nc = secrets.token_bytes(32)
    w.send(_frame(json.dumps({"auth": "hmac-sha256", "nonce": nc.hex()}).encode()))
    frame = w.read_frame()
    _check(frame is not None, reqs, "closed without answering the auth frame")
    assert frame is not None
    obj = json.loads(frame)
    _check(obj.get("auth") == "hmac-sha256", reqs, f"the auth frame was answered {obj}")
    ns = bytes.fromhex(obj["nonce"])
    expected = hmac.new(secret, LABEL_SERVER + nc + ns, hashlib.sha256).hexdigest()
    _check(hmac.compare_digest(obj.get("proof", ""), expected), reqs, "the server's proof is wrong")
    return hmac.new(secret, LABEL_CLIENT + nc + ns, hashlib.sha256).digest()


def check_secret(start: Starter) -> None:
    """SEC-007: with a shared secret, a client that proves it connects; one that sends its hello
    without authenticating, or a wrong proof, gets PEER_NOT_ALLOWED and a close; the server proves
    itself with the right label and nonces."""
    secret = secrets.token_bytes(32)
    target = start(SecurityConfig(secret=secret))
    reqs = "SEC-007"
    with _open(target, reqs) as w:
        proof = _auth_client(w, secret, reqs)
        w.send(_frame(json.dumps({"proof": proof.hex()}).encode()))
        _handshake(w, reqs)
        _echo(w, b"authenticated", reqs)
    with _open(target, reqs) as w:
        w.send(_hello())
        _expect_refusal(w, "PEER_NOT_ALLOWED", reqs, "a hello without the secret handshake")
    with _open(target, reqs) as w:
        _auth_client(w, secret, reqs)
        w.send(_frame(json.dumps({"proof": secrets.token_bytes(32).hex()}).encode()) + _hello())
        _expect_refusal(w, "PEER_NOT_ALLOWED", reqs, "a wrong proof")


#: every check, by name
CHECKS: dict[str, Callable[..., None]] = {
    "oversize_length": check_oversize_length,
    "slow_handshake": check_slow_handshake,
    "garbage": check_garbage,
    "connection_flood": check_connection_flood,
    "rate_limit": check_rate_limit,
    "peer_not_allowed": check_peer_not_allowed,
    "foreign_user": check_foreign_user,
    "socket_mode": check_socket_mode,
    "killed_client": check_killed_client,
    "load": check_load,
    "secret": check_secret,
}


# ---------------------------------------------------------------- a listener in this process

#: ``listen(address, **options)``: the implementation's listener in this process (options:
#: ``security`` a ``symphony_ipc.security.SecurityPolicy``, ``handshake_timeout``)
ListenFn = Callable[..., Awaitable[Any]]
#: ``connect(address, **options)`` (options: ``secret``)
ConnectFn = Callable[..., Awaitable[Any]]

NO_CREDENTIALS = "sy-nocreds"


def _no_credentials_scheme() -> None:
    """Register (once) ``sy-nocreds:NAME``: in-process pipes that cannot tell their peer's
    credentials, like loopback TCP (the transport SEC-006 is about)."""
    from symphony_ipc.transport import (
        ConnectionRefused,
        MemoryPipe,
        PipeServer,
        Scheme,
        register_scheme,
        schemes,
    )

    if NO_CREDENTIALS in schemes():
        return

    class Blind(MemoryPipe):
        def peer_credentials(self) -> None:  # type: ignore[override]
            return None

    servers: dict[str, Callable[[Any], None]] = {}

    class Server(PipeServer):
        def __init__(self, name: str) -> None:
            self.name = name

        def close(self) -> None:
            servers.pop(self.name, None)

    class NoCredentials(Scheme):
        name = NO_CREDENTIALS

        async def open(self, target: str, timeout: float | None) -> Any:
            on_pipe = servers.get(target)
            if on_pipe is None:
                raise ConnectionRefused(f"nothing listens at {NO_CREDENTIALS}:{target}")
            client, served = Blind.pair()
            on_pipe(served)
            return client

        async def serve(self, target: str, on_pipe: Callable[[Any], None], options: Any) -> Any:
            servers[target] = on_pipe
            return Server(target)

    with contextlib.suppress(ValueError):
        register_scheme(NoCredentials())


def _arun(coro: Coroutine[Any, Any, None], reqs: str, timeout: float) -> None:
    import asyncio

    from symphony_ipc.transport import TransportError

    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)

    try:
        asyncio.run(bounded())
    except TimeoutError:
        raise _fail(reqs, f"did not complete within {timeout} s") from None
    except TransportError as e:
        raise _fail(reqs, f"unexpected {type(e).__name__}: {e}") from e


async def _refused(connect: ConnectFn, address: str, code: str, reqs: str, what: str, **options: Any) -> None:
    from symphony_ipc.transport import HandshakeFailed

    try:
        conn = await connect(address, **options)
    except HandshakeFailed as e:
        _check(e.code.value == code, reqs, f"{what}: refused with {e.code.value}, not {code}")
    else:
        await conn.close()
        raise _fail(reqs, f"{what}: admitted, not refused with {code}")


async def _served(listener: Any, connect: ConnectFn, reqs: str, what: str, **options: Any) -> tuple[Any, Any]:
    """Connect, accept and echo one frame; returns both ends (open: the caller closes them)."""
    import asyncio

    accepting = asyncio.ensure_future(listener.accept())
    try:
        client = await connect(listener.address, **options)
    except Exception as e:
        accepting.cancel()
        raise _fail(reqs, f"{what}: not admitted: {type(e).__name__}: {e}") from e
    server = await accepting
    await client.send_frame(b"served")
    _check(await server.recv_frame() == b"served", reqs, f"{what}: the frame did not cross")
    return client, server


async def _close_all(*conns: Any) -> None:
    for c in conns:
        await c.close()


def check_unsafe_directory(
    listen: ListenFn, connect: ConnectFn, directory: str, *, timeout: float = 20.0
) -> None:
    """SEC-002: a server refuses to listen (``unix:`` and ``fifo:``) in a directory, or under an
    ancestor, writable by group or others without the sticky bit, with an error naming that
    directory, and creates nothing there; a sticky world-writable directory is accepted."""
    reqs = "SEC-002"

    async def body() -> None:
        base = os.path.join(directory, f"d{uuid.uuid4().hex[:6]}")
        os.mkdir(base, 0o700)
        made = {}
        for name, mode in (("open", 0o777), ("group", 0o770), ("sticky", 0o1777)):
            path = os.path.join(base, name)
            os.mkdir(path)
            os.chmod(path, mode)
            made[name] = path
        inner = os.path.join(made["open"], "inner")
        os.mkdir(inner, 0o700)
        try:
            cases = [
                (made["open"], made["open"], "unix:{}/s.sock"),
                (made["group"], made["group"], "fifo:{}/ff"),
                (inner, made["open"], "unix:{}/s.sock"),
                (inner, made["open"], "fifo:{}/ff"),
            ]
            for where, culprit, pattern in cases:
                address = pattern.format(where)
                before = sorted(os.listdir(where))
                try:
                    listener = await listen(address)
                except AssertionError:
                    raise
                except Exception as e:
                    _check(
                        culprit in str(e), reqs, f"listen({address}) refused without naming {culprit}: {e}"
                    )
                else:
                    await listener.close()
                    raise _fail(
                        reqs, f"listened at {address}, under {culprit} (mode {os.stat(culprit).st_mode:o})"
                    )
                _check(
                    sorted(os.listdir(where)) == before,
                    reqs,
                    f"listen({address}) created files before refusing",
                )
            for pattern in ("unix:{}/s.sock", "fifo:{}/ff"):
                address = pattern.format(made["sticky"])
                try:
                    listener = await listen(address)
                except Exception as e:
                    raise _fail(reqs, f"refused a sticky world-writable directory ({address}): {e}") from e
                try:
                    await _close_all(*await _served(listener, connect, reqs, address))
                finally:
                    await listener.close()
        finally:
            for path in (inner, *made.values()):
                os.chmod(path, 0o700)
            shutil.rmtree(base, ignore_errors=True)

    _arun(body(), reqs, timeout)


SECRET = b"symphony conformance secret 0123"


def check_unverified_peers(
    listen: ListenFn, connect: ConnectFn, directory: str, *, timeout: float = 20.0
) -> None:
    """SEC-006: a server on a transport that cannot tell its peer's credentials refuses every peer
    with PEER_NOT_ALLOWED by default, and admits them when configured to accept unverified peers
    or with a shared secret (the peer proving it)."""
    from symphony_ipc.security import SecurityPolicy

    reqs = "SEC-006"
    _no_credentials_scheme()

    async def body() -> None:
        tag = uuid.uuid4().hex[:8]
        listener = await listen(f"{NO_CREDENTIALS}:{tag}-default")
        try:
            for i in range(2):
                await _refused(connect, listener.address, "PEER_NOT_ALLOWED", reqs, f"unverified peer {i}")
        finally:
            await listener.close()
        for name, policy, options in (
            ("allowed", SecurityPolicy(allow_unverified=True), {}),
            ("secret", SecurityPolicy(secret=SECRET), {"secret": SECRET}),
        ):
            listener = await listen(f"{NO_CREDENTIALS}:{tag}-{name}", security=policy)
            try:
                ends = await _served(listener, connect, reqs, f"an unverified peer, {name}", **options)
                await _close_all(*ends)
            finally:
                await listener.close()

    _arun(body(), reqs, timeout)


def check_refusals_counted(
    listen: ListenFn, connect: ConnectFn, directory: str, *, timeout: float = 20.0
) -> None:
    """SEC-008: refusals are counted per reason in the listener's statistics (credentials, no
    credentials, connection limit, handshake timeout), a refusal of known credentials is logged
    with them, and the server keeps serving others meanwhile."""
    import asyncio
    import logging

    from symphony_ipc.security import SecurityPolicy
    from symphony_ipc.transport import parse_address

    from .transport_checks import RawPeer

    reqs = "SEC-008"
    _no_credentials_scheme()
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    def stats(listener: Any) -> Any:
        st = getattr(listener, "security_stats", None)
        if st is None:
            raise NotObservable("the listener has no security_stats (its refusal counts)")
        return st

    async def body() -> None:
        other = os.geteuid() + 1 if os.geteuid() != 65533 else 65532
        tag = uuid.uuid4().hex[:6]
        policy = SecurityPolicy(allow_uids=frozenset({other}), linger=0.05)
        listener = await listen(f"unix:{directory}/r{tag}.sock", security=policy)
        try:
            for i in range(2):
                await _refused(
                    connect, listener.address, "PEER_NOT_ALLOWED", reqs, f"peer {i} off the allow list"
                )
            _check(stats(listener).refused_peer == 2, reqs, f"2 peers refused, counted {stats(listener)}")
        finally:
            await listener.close()
        ours = (f"uid {os.geteuid()}", f"pid {os.getpid()}")
        _check(
            any(any(c in m for c in ours) for m in records),
            reqs,
            f"no log record of the refusal names the peer's credentials {ours}: {records[-3:]}",
        )
        listener = await listen(f"{NO_CREDENTIALS}:{tag}")
        try:
            await _refused(connect, listener.address, "PEER_NOT_ALLOWED", reqs, "an unverified peer")
            _check(stats(listener).refused_unverified == 1, reqs, f"unverified refusal: {stats(listener)}")
        finally:
            await listener.close()
        policy = SecurityPolicy(max_connections=1, linger=0.05)
        listener = await listen(f"unix:{directory}/l{tag}.sock", security=policy, handshake_timeout=0.2)
        try:
            held, held_server = await _served(listener, connect, reqs, "the first connection")
            try:
                await _refused(
                    connect, listener.address, "CONNECTION_LIMIT", reqs, "a connection over the limit"
                )
                _check(stats(listener).refused_limit == 1, reqs, f"limit refusal: {stats(listener)}")
                await held.send_frame(b"still served")  # the refusal did not disturb the held one
                got = await held_server.recv_frame()
                _check(got == b"still served", reqs, "a refusal disturbed a connection being served")
            finally:
                await _close_all(held, held_server)
            for _ in range(100):
                if stats(listener).live == 0:
                    break
                await asyncio.sleep(0.01)
            scheme, target = parse_address(listener.address)
            silent = RawPeer(await scheme.open(target, 5.0))
            try:
                await asyncio.wait_for(silent.wait_eof(), 5.0)
            except TimeoutError:
                raise _fail(reqs, "a silent client was not cut off by the handshake timeout") from None
            finally:
                silent.close()
            _check(stats(listener).handshake_timeouts == 1, reqs, f"handshake timeout: {stats(listener)}")
            await _close_all(*await _served(listener, connect, reqs, "a client after the refusals"))
        finally:
            await listener.close()

    handler = Capture(logging.INFO)
    logger = logging.getLogger()
    logger.addHandler(handler)
    try:
        _arun(body(), reqs, timeout)
    finally:
        logger.removeHandler(handler)


#: checks of a listener in this process: ``check(listen, connect, directory)``
LISTENER_CHECKS: dict[str, Callable[..., None]] = {
    "unsafe_directory": check_unsafe_directory,
    "unverified_peers": check_unverified_peers,
    "refusals_counted": check_refusals_counted,
}


def requirements_of(check: Callable[..., None]) -> tuple[str, ...]:
    """The requirement ids a check verifies: the ids its docstring begins with."""
    import re

    head = (check.__doc__ or "").split(":", 1)[0]
    return tuple(re.findall(r"\b(?:SEC|ROB)-\d{3}\b", head))


# ---------------------------------------------------------------- plugged-in transports


class MakerTarget:
    """A ``--transport`` maker's listener, served by the reference's echo on a background event
    loop; raw connections are the maker's ``open_raw`` pipes behind a blocking facade."""

    def __init__(self, maker: Any, config: SecurityConfig) -> None:
        import asyncio

        from symphony_ipc._serve import serve_echo
        from symphony_ipc.security import settings_from_config

        self.maker = maker
        self.config = config
        self.pid: int | None = os.getpid()
        self.address: str = maker.fresh_address()
        policy, timeout, rate = settings_from_config(config.to_wire())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="security-target")
        self._thread.start()

        async def begin() -> Any:
            try:
                listener = await maker.listen(self.address, security=policy)
            except TypeError as e:
                raise NotObservable(f"the --transport maker's listen takes no security policy: {e}") from None
            if timeout is not None and hasattr(listener, "_options"):
                listener._options = replace(listener._options, handshake_timeout=timeout)
            self._listener = listener
            self._server = asyncio.ensure_future(serve_echo(listener, rate=rate))

        try:
            asyncio.run_coroutine_threadsafe(begin(), self._loop).result(20)
        except BaseException:
            self.close()
            raise

    def open(self, timeout: float = 10.0) -> RawConn:
        return _LoopConn(self, timeout)

    def close(self) -> None:
        import asyncio

        async def end() -> None:
            listener = getattr(self, "_listener", None)
            if listener is not None:
                await listener.close()
            server = getattr(self, "_server", None)
            if server is not None:
                server.cancel()
                await asyncio.gather(server, return_exceptions=True)

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(end(), self._loop).result(20)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()


class _LoopConn:
    """A blocking raw connection over a maker's ``open_raw`` pipe running on the target's loop."""

    def __init__(self, target: MakerTarget, timeout: float) -> None:
        from .transport_checks import RawPeer

        self._target = target
        self.timeout = timeout
        self.address = target.address

        async def make() -> RawPeer:
            return RawPeer(await target.maker.open_raw(target.address))

        self.peer = self._call(make())

    def _call(self, coro: Any) -> Any:
        import asyncio

        fut = asyncio.run_coroutine_threadsafe(coro, self._target._loop)
        try:
            return fut.result(self.timeout)
        except TimeoutError:
            fut.cancel()
            raise TimeoutError(f"{self.address}: nothing received within {self.timeout} s") from None

    def send(self, data: bytes) -> None:
        async def go() -> None:
            try:
                await self.peer.send(data)
            except Exception as e:
                raise OSError(str(e)) from None

        self._call(go())

    def read_frame(self) -> bytes | None:
        async def go() -> bytes | None:
            frame: bytes | None = await self.peer.read_frame()
            return frame

        return self._call(go())  # type: ignore[no-any-return]

    def at_eof(self) -> bool:
        async def go() -> bool:
            await self.peer.wait_eof()
            return not self.peer.buf

        return bool(self._call(go()))

    def close(self) -> None:
        async def go() -> None:
            self.peer.close()

        with contextlib.suppress(Exception):
            self._call(go())

    def __enter__(self) -> _LoopConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "CHECKS",
    "GARBAGE",
    "LISTENER_CHECKS",
    "MakerTarget",
    "NotObservable",
    "RawConn",
    "SecurityConfig",
    "Starter",
    "Target",
    "WireTarget",
    "check_connection_flood",
    "check_foreign_user",
    "check_garbage",
    "check_killed_client",
    "check_load",
    "check_oversize_length",
    "check_peer_not_allowed",
    "check_refusals_counted",
    "check_rate_limit",
    "check_secret",
    "check_slow_handshake",
    "check_socket_mode",
    "check_unsafe_directory",
    "check_unverified_peers",
    "foreign_python",
    "requirements_of",
]
