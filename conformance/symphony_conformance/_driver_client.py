"""The harness side of the driver protocol: an implementation in any language, run as a command.

:class:`ExecImplementation` starts the command, speaks newline-delimited JSON over its stdin and
stdout (spec/driver/README.md) and implements the suite's :class:`Implementation` interface.
Every request it sends and every response it reads is validated against the schemas in
``spec/driver/``. Whatever the process does wrong (hangs, dies, writes garbage, answers out of
turn or out of schema, lies about its capabilities) becomes :class:`ImplBroken` with evidence,
never a hang or a traceback; a process that died or was killed is restarted lazily, a bounded
number of times.

I/O is single-threaded for stdin/stdout (non-blocking pipes and ``poll``, so a timeout also cuts
a write to a process that stopped reading); one daemon thread per process drains stderr into a
bounded ring buffer.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import select
import signal
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any, Final

from referencing import Registry, Resource

from . import __version__
from ._impl import (
    CODECS,
    PROFILES,
    TRANSPORTS,
    Capabilities,
    Endpoint,
    ImplBroken,
    ImplError,
    ImplInfo,
    ImplSkipped,
    MessageData,
)
from ._resources import spec_dir

DRIVER_PROTOCOL: Final = 1
#: The operations of the profile bus (spec/bus.md section 13), each a command ``bus_OP``.
BUS_OPS: Final = (
    "reset",
    "configure",
    "clock",
    "register",
    "unregister",
    "set_failing",
    "subscribe",
    "unsubscribe",
    "add_rule",
    "remove_rule",
    "enable_rule",
    "send",
    "deliver",
    "received",
    "dead_letters",
    "stats",
    "history",
)
SPEC_VERSION: Final = "1.0.0"
SCHEMA_BASE: Final = "https://symphony-ipc.org/spec/driver/"
COMMANDS: Final = (
    "hello",
    "clock",
    "build",
    "encode",
    "decode",
    "receive",
    "order",
    "is_expired",
    "is_compatible",
    "expects_response",
    "frames",
    "handshake",
    "listen",
    *(f"bus_{op}" for op in BUS_OPS),
    "shutdown",
)
MAX_LINE: Final = 64 * 1024 * 1024  # a 16 MiB message in base64 inside JSON fits comfortably
MAX_RESTARTS: Final = 5
STDERR_LINES: Final = 64
STDERR_BYTES: Final = 8192
_ABBREV: Final = 2048


class HarnessError(Exception):
    """The harness cannot do its job (bad command line, protocol mismatch, misuse): not the
    implementation's fault, so not a test outcome."""


class DriverStartError(HarnessError):
    """The implementation's command could not be started at all."""

    def __init__(self, argv: Sequence[str], reason: str) -> None:
        super().__init__(f"cannot start the implementation {list(argv)!r}: {reason}")
        self.argv = list(argv)
        self.reason = reason


class DriverProtocolMismatch(HarnessError):
    """The implementation speaks another version of the driver protocol."""


class DriverError(ImplError):
    """:class:`ImplError` as a driver reported it, with the error's other members (ERR-001)."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(str(error["code"]), str(error.get("message", "")), error.get("details"))
        self.category: str | None = error.get("category")
        self.recoverable: bool | None = error.get("recoverable")
        self.error = dict(error)


# ---------------------------------------------------------------- schemas


@cache
def _registry(driver_dir: Path) -> Registry[Any]:
    registry: Registry[Any] = Registry()
    for path in sorted(driver_dir.glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        registry = registry.with_resource(contents["$id"], Resource.from_contents(contents))
    return registry.crawl()


def _inline(node: Any, resolver: Any) -> Any:
    """``node`` with every ``$ref`` replaced by (an ``allOf`` of) its target, resolved offline.

    The driver schemas are not recursive, so this terminates; the validator then never looks a
    reference up, which makes validating each line about three times faster.
    """
    if isinstance(node, list):
        return [_inline(item, resolver) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    parts: list[Any] = []
    for key, value in node.items():
        if key == "$ref":
            target = resolver.lookup(value)
            parts.append(_inline(target.contents, target.resolver))
        elif key == "allOf":
            parts.extend(_inline(value, resolver))
        elif key in ("$id", "$schema", "$defs"):
            continue
        elif key in ("const", "enum"):
            out[key] = value  # data, not a schema
        else:
            out[key] = _inline(value, resolver)
    if parts:
        out["allOf"] = parts
    return out


@cache
def _validator(driver_dir: Path, command: str, part: str) -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

    target = _registry(driver_dir).resolver().lookup(f"{SCHEMA_BASE}{command}.schema.json#/$defs/{part}")
    schema = _inline(target.contents, target.resolver)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return Draft202012Validator(schema)


def schema_errors(command: str, part: str, instance: object) -> list[dict[str, Any]]:
    """Why ``instance`` is not a valid ``part`` (request, response, result) of ``command``."""
    validator = _validator(spec_dir() / "driver", command, part)
    return [
        {"path": "/".join(str(p) for p in e.absolute_path), "message": _abbrev(e.message, 300)}
        for e in validator.iter_errors(instance)
    ]


# ---------------------------------------------------------------- small helpers


def format_timestamp(ns: int) -> str:
    """The canonical RFC 3339 form (spec/protocol.md 6.1) of ``ns`` since the epoch, years 1-9999."""
    secs, frac = divmod(ns, 1_000_000_000)
    try:
        dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)
    except OverflowError:
        raise HarnessError(f"instant {ns} ns is outside years 0001-9999") from None
    base = (
        dt.strftime("%Y-%m-%dT%H:%M:%S")
        if dt.year >= 1000
        else f"{dt.year:04d}" + dt.strftime("-%m-%dT%H:%M:%S")
    )
    if frac == 0:
        return base + "Z"
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:06d}Z"
    return f"{base}.{frac:09d}Z"


def _abbrev(value: Any, limit: int = _ABBREV) -> Any:
    """A copy of ``value`` with long strings cut, for evidence and transcripts."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}…[{len(value)} chars]"
    if isinstance(value, dict):
        return {k: _abbrev(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_abbrev(v, limit) for v in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _dumps(obj: object) -> bytes:
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: escape it
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode("ascii") + b"\n"
    except ValueError as e:
        raise HarnessError(f"cannot send {_abbrev(obj, 200)!r} as JSON: {e}") from None


def _version_obj(v: tuple[int, int]) -> dict[str, int]:
    return {"major": v[0], "minor": v[1]}


#: Which declared profiles make a "skipped" answer a lie (the command belongs to them).
def _profiles_needed(cmd: str, request: Mapping[str, Any]) -> set[str]:
    if cmd in ("encode", "decode"):
        return {f"codec-{request['codec']}"}
    if cmd == "receive":
        return {f"codec-{request['codec']}", "versioning", "ttl"}
    if cmd.startswith("bus_"):
        return {"bus"}
    return {
        "build": {"envelope"},
        "expects_response": {"envelope"},
        "order": {"priority"},
        "is_expired": {"ttl"},
        "is_compatible": {"versioning"},
        "frames": {"transport"},
        "handshake": {"transport"},
    }.get(cmd, set())


class _StderrTail:
    """The last lines the process wrote to stderr: at most 64 lines and 8 KiB."""

    def __init__(self) -> None:
        self._lines: deque[str] = deque(maxlen=STDERR_LINES)
        self._size = 0
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        line = line[:1024]
        with self._lock:
            if len(self._lines) == self._lines.maxlen:
                self._size -= len(self._lines[0])
            self._lines.append(line)
            self._size += len(line)
            while self._size > STDERR_BYTES and len(self._lines) > 1:
                self._size -= len(self._lines.popleft())

    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)


def _drain_stderr(pipe: IO[bytes], tail: _StderrTail) -> None:
    try:
        for chunk in iter(lambda: pipe.readline(4096), b""):
            tail.add(chunk.decode("utf-8", "replace"))
    except (OSError, ValueError):
        pass


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process and its children (it leads its own session), while it is unreaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """The last resort (garbage collection without close()): no zombie, no orphan."""
    _kill_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


class _Failure(Exception):
    """Internal: the process misbehaved; becomes ImplBroken with evidence."""

    def __init__(self, reason: str, message: str, **evidence: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.evidence = evidence


class _Process:
    """One run of the implementation's command and its pipes."""

    def __init__(
        self, argv: Sequence[str], cwd: str | os.PathLike[str] | None, env: Mapping[str, str] | None
    ) -> None:
        self.tail = _StderrTail()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,  # its own process group: a kill reaches its children too
                close_fds=True,
            )
        except FileNotFoundError as e:
            raise DriverStartError(argv, f"no such file: {e.filename or argv[0]}") from None
        except PermissionError as e:
            raise DriverStartError(argv, f"permission denied: {e.filename or argv[0]}") from None
        except OSError as e:
            raise DriverStartError(argv, str(e)) from None
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.finalizer = weakref.finalize(self, _reap, self.proc)
        self.stdin_fd = self.proc.stdin.fileno()
        self.stdout_fd = self.proc.stdout.fileno()
        os.set_blocking(self.stdin_fd, False)
        os.set_blocking(self.stdout_fd, False)
        self.buffer = bytearray()
        self.seq = 0
        self.greeted = False
        self.stderr_thread = threading.Thread(
            target=_drain_stderr, args=(self.proc.stderr, self.tail), name="driver-stderr", daemon=True
        )
        self.stderr_thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def write(self, data: bytes, deadline: float) -> None:
        """Write all of ``data``; read stdout meanwhile so a chatty process cannot deadlock us."""
        view = memoryview(data)
        poller = select.poll()
        poller.register(self.stdin_fd, select.POLLOUT)
        poller.register(self.stdout_fd, select.POLLIN)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Failure("timeout", "timed out writing the request (the process stopped reading)")
            for fd, events in poller.poll(remaining * 1000):
                if fd == self.stdout_fd:
                    if not self._fill():
                        poller.unregister(self.stdout_fd)
                elif (
                    events & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
                    and not events & select.POLLOUT
                ):
                    raise _Failure("exited", "the process closed its stdin")
                else:
                    try:
                        view = view[os.write(self.stdin_fd, view) :]
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, ConnectionResetError):
                        raise _Failure("exited", "the process closed its stdin") from None
                    if not view:
                        break

    def _fill(self) -> bool:
        """Read what stdout has; False at end of file."""
        try:
            chunk = os.read(self.stdout_fd, 1 << 20)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def read_line(self, deadline: float) -> bytes:
        poller = select.poll()
        poller.register(self.stdout_fd, select.POLLIN)
        scanned = 0
        while True:
            i = self.buffer.find(b"\n", scanned)
            if i >= 0:
                line = bytes(self.buffer[:i])
                del self.buffer[: i + 1]
                return line
            scanned = len(self.buffer)
            if scanned > MAX_LINE:
                raise _Failure(
                    "garbage", f"a line of over {MAX_LINE} bytes on stdout", raw_line=_raw(self.buffer)
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Failure("timeout", "no response in time")
            if poller.poll(remaining * 1000) and not self._fill():
                partial = {"raw_line": _raw(self.buffer)} if self.buffer else {}
                raise _Failure("exited", "the process closed its stdout (it exited or crashed)", **partial)

    def stop(self, grace: float) -> int | None:
        """Close stdin, wait ``grace`` s for an exit, then SIGTERM, then SIGKILL; reap; free everything."""
        proc = self.proc
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=min(grace, 1.0))
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        if proc.returncode is not None:
            # Children it left behind in its group: the group id cannot be reused while they live.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.finalizer.detach()
        with contextlib.suppress(OSError):
            proc.stdout.close()  # type: ignore[union-attr]
        self.stderr_thread.join(timeout=1.0)
        if not self.stderr_thread.is_alive():  # else a grandchild holds stderr: let the daemon be
            with contextlib.suppress(OSError):
                proc.stderr.close()  # type: ignore[union-attr]
        return proc.returncode

    def kill(self) -> int | None:
        _kill_group(self.proc, signal.SIGKILL)
        return self.stop(grace=1.0)

    def settle(self) -> int | None:
        """After end of file: give the process a moment to exit and stderr to drain."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1.0)
        self.stderr_thread.join(timeout=0.5)
        return self.proc.returncode


def _raw(line: bytes | bytearray) -> str:
    """A line of output as text for evidence, cut to a readable length."""
    text = bytes(line[: _ABBREV + 1]).decode("utf-8", "replace")
    return text if len(line) <= _ABBREV else f"{text[:_ABBREV]}…[{len(line)} bytes]"


# ---------------------------------------------------------------- the implementation


class ExecImplementation:
    """An implementation under test run as ``argv`` and spoken to with the driver protocol.

    ``timeout`` bounds each request (seconds), ``startup_timeout`` (default: ``max(timeout, 10)``)
    the start and handshake, ``restart`` says whether a process that died or was killed is
    started again (lazily, on the next request, at most ``max_restarts`` times), and
    ``shutdown_grace`` is how long :meth:`close` waits for a clean exit before signals.

    The constructor starts the process and does the handshake: it raises
    :class:`DriverStartError` when the command cannot be started, :class:`DriverProtocolMismatch`
    when it speaks another driver protocol, and :class:`ImplBroken` when the handshake fails.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 10.0,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        restart: bool = True,
        startup_timeout: float | None = None,
        max_restarts: int = MAX_RESTARTS,
        shutdown_grace: float = 2.0,
    ) -> None:
        if not argv:
            raise HarnessError("the implementation's command is empty")
        self.argv: list[str] = [str(a) for a in argv]
        self.timeout = timeout
        self.startup_timeout = startup_timeout if startup_timeout is not None else max(timeout, 10.0)
        self.cwd = cwd
        self.env = env
        self.restart = restart
        self.max_restarts = max_restarts
        self.shutdown_grace = shutdown_grace
        #: How many times the process was started again after the first start.
        self.restarts = 0
        self.closed = False
        self._proc: _Process | None = None
        self._dead_reason: str | None = None
        self._clock: str | None = None
        self._info: ImplInfo | None = None
        self._exchanges: list[tuple[dict[str, Any], dict[str, Any] | None, str | None]] = []
        self._lock = threading.RLock()
        self._tail = _StderrTail()
        with self._lock:
            self._start()

    # ------------------------------------------------------------ public

    @property
    def info(self) -> ImplInfo:
        assert self._info is not None  # set by the constructor's handshake
        return self._info

    @property
    def last_exchange(self) -> list[dict[str, Any]]:
        """The requests and responses of the last operation (a restart's handshake included),
        long strings cut: ``[{"request": ..., "response": ... or None, "raw_line"?: ...}]``."""
        out: list[dict[str, Any]] = []
        for req, resp, raw in self._exchanges:
            item: dict[str, Any] = {"request": _abbrev(req), "response": _abbrev(resp)}
            if raw is not None:
                item["raw_line"] = raw
            out.append(item)
        return out

    @property
    def stderr_tail(self) -> str:
        """The last lines (at most 64 lines, 8 KiB) the implementation wrote to stderr."""
        return self._proc.tail.text() if self._proc is not None else self._tail.text()

    @property
    def pid(self) -> int | None:
        """The current process's id, None when none is running."""
        return self._proc.pid if self._proc is not None else None

    def set_clock(self, now_ns: int) -> None:
        now = format_timestamp(now_ns)
        self._clock = now
        self._operation("clock", {"now": now})

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        return self._message(self._operation("build", {"fields": dict(fields)}))

    def encode(self, codec: str, message: MessageData) -> bytes:
        result = self._operation("encode", {"codec": codec, "message": message})
        try:
            return base64.b64decode(result["data_b64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise self._broken(
                _Failure("schema-invalid-response", f"data_b64 is not padded base64: {e}")
            ) from None

    def decode(self, codec: str, data: bytes) -> MessageData:
        return self._message(self._operation("decode", {"codec": codec, "data_b64": _b64(data)}))

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        req = {"codec": codec, "data_b64": _b64(data), "receiver_version": _version_obj(receiver_version)}
        return self._message(self._operation("receive", req))

    def order(self, messages: Sequence[MessageData]) -> list[int]:
        return list(self._operation("order", {"messages": list(messages)})["order"])

    def is_expired(self, message: MessageData, now_ns: int) -> bool:
        result = self._operation("is_expired", {"message": message, "now": format_timestamp(now_ns)})
        return bool(result["expired"])

    def is_compatible(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        result = self._operation("is_compatible", {"a": _version_obj(a), "b": _version_obj(b)})
        return bool(result["compatible"])

    def expects_response(self, message_type: str) -> bool:
        return bool(self._operation("expects_response", {"message_type": message_type})["expects_response"])

    # -- the profile transport (symphony_conformance._impl.TransportImplementation)

    def frames(self, data: bytes, *, eof: bool, mode: str) -> dict[str, Any]:
        result = self._operation("frames", {"data_b64": _b64(data), "eof": eof, "mode": mode})
        return {"frames": self._payloads(result), "state": result["state"]}

    def handshake(self, role: str, config: Mapping[str, Any], data: bytes, *, eof: bool) -> dict[str, Any]:
        req = {"role": role, "config": dict(config), "data_b64": _b64(data), "eof": eof}
        result = self._operation("handshake", req)
        out = {k: result[k] for k in ("codec", "mode", "sent", "state")}
        out["frames"] = self._payloads(result)
        if "error" in result:
            out["error"] = result["error"]
        return out

    def listen(
        self, scheme: str, security: Mapping[str, Any] | None = None, *, role: str = "echo"
    ) -> Endpoint:
        """Ask for an echo endpoint on ``scheme`` (with the limits ``security``, profile
        ``security``; ``role`` ``bus-node``: a bus node, profile ``bus-node``); it lives as long as
        the current process."""
        fields: dict[str, Any] = {"scheme": scheme}
        if role != "echo":
            fields["role"] = role
        if security:
            fields["security"] = dict(security)
        result = self._operation("listen", fields)
        address = str(result["address"])
        if address.partition(":")[0] != scheme:
            raise self._broken(
                _Failure("schema-invalid-response", f"listen {scheme} answered the address {address!r}")
            )
        pid = result.get("pid")
        return Endpoint(address, pid if isinstance(pid, int) else None)

    # -- the profile bus (symphony_conformance._impl.BusImplementation)

    def new_bus(self) -> DriverBus:
        """A fresh bus in the driver (``bus_reset``); the previous one is gone."""
        self._operation("bus_reset", {})
        return DriverBus(self)

    def _payloads(self, result: Mapping[str, Any]) -> list[bytes]:
        try:
            return [base64.b64decode(f, validate=True) for f in result["frames_b64"]]
        except (binascii.Error, ValueError) as e:
            raise self._broken(
                _Failure(
                    "schema-invalid-response", f"frames_b64 holds a string that is not padded base64: {e}"
                )
            ) from None

    def close(self) -> None:
        """Send shutdown, wait briefly, then terminate and kill; safe to call twice."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            proc = self._proc
            if proc is None:
                return
            self._exchanges = []
            if proc.greeted and proc.alive():
                with contextlib.suppress(_Failure, HarnessError):
                    self._roundtrip(proc, "shutdown", {}, min(self.timeout, self.shutdown_grace))
            self._discard(kill=False)

    def __enter__(self) -> ExecImplementation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ExecImplementation({self.argv!r}, pid={self.pid}, restarts={self.restarts})"

    # ------------------------------------------------------------ process life

    def _start(self) -> None:
        """Start a process, do the handshake, restore the clock; on failure leave no process."""
        proc = _Process(self.argv, self.cwd, self.env)
        self._proc = proc
        self._dead_reason = None
        try:
            self._handshake(proc)
            if self._clock is not None:
                resp = self._roundtrip(proc, "clock", {"now": self._clock}, self.timeout)
                if "errored" in resp or "error" in resp:
                    raise _Failure("errored", "restoring the clock after a restart failed", response=resp)
        except _Failure as f:
            self._dead(f.reason)
            raise self._broken(f) from None
        except BaseException:
            self._dead("the handshake failed")
            raise

    def _handshake(self, proc: _Process) -> None:
        hello = {
            "harness": {"name": "symphony-conformance", "version": __version__},
            "driver_protocol": DRIVER_PROTOCOL,
            "spec_version": SPEC_VERSION,
        }
        resp = self._roundtrip(proc, "hello", hello, self.startup_timeout)
        if resp.get("ok") is not True:
            raise _Failure("handshake-refused", "the implementation did not accept hello", response=resp)
        result = resp["result"]
        if result["driver_protocol"] != DRIVER_PROTOCOL:
            raise DriverProtocolMismatch(
                f"{self.argv!r} speaks driver protocol {result['driver_protocol']}; "
                f"this harness (symphony-conformance {__version__}) speaks {DRIVER_PROTOCOL}"
            )
        caps = result["capabilities"]
        profiles, codecs = set(caps["profiles"]), set(caps["codecs"])
        transports = set(caps.get("transports", ()))
        unknown = (
            sorted(profiles - set(PROFILES))
            + sorted(codecs - set(CODECS))
            + sorted(transports - set(TRANSPORTS))
        )
        if unknown:
            raise _Failure(
                "unknown-capability",
                f"the handshake declares capabilities this harness does not know: {unknown}"
                f" (profiles: {list(PROFILES)}, codecs: {list(CODECS)}, transports: {list(TRANSPORTS)})",
                response=resp,
            )
        mismatched = sorted(c for c in CODECS if (c in codecs) != (f"codec-{c}" in profiles))
        if mismatched:
            raise _Failure(
                "inconsistent-capabilities",
                f"codecs and codec-* profiles disagree for {mismatched}: declare a codec in both or neither",
                response=resp,
            )
        known = {"name", "version", "language", "spec_version", "driver_protocol", "capabilities"}
        self._info = ImplInfo(
            name=result["name"],
            version=result["version"],
            language=result["language"],
            spec_version=result["spec_version"],
            capabilities=Capabilities(frozenset(profiles), frozenset(codecs), frozenset(transports)),
            extra={k: v for k, v in result.items() if k not in known},
        )
        proc.greeted = True

    def _discard(self, *, kill: bool) -> None:
        """Stop the current process (if any) and keep its stderr tail for later evidence."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if kill:
                proc.kill()
            else:
                proc.stop(self.shutdown_grace)
            self._tail = proc.tail

    def _ensure_process(self) -> _Process:
        if self.closed:
            raise HarnessError(f"{self!r} is used after close()")
        if self._proc is not None:
            return self._proc
        why = self._dead_reason or "it is not running"
        if not self.restart:
            raise self._broken(_Failure("restart-disabled", f"the process is gone ({why}); restart is off"))
        if self.restarts >= self.max_restarts:
            raise self._broken(
                _Failure("gave-up-restarting", f"gave up restarting after {self.restarts} restarts ({why})")
            )
        self.restarts += 1
        try:
            self._start()
        except DriverStartError as e:
            self._dead_reason = e.reason
            raise self._broken(_Failure("start-failed", str(e))) from None
        assert self._proc is not None
        return self._proc

    # ------------------------------------------------------------ requests

    def _operation(self, cmd: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Send one command, return its result; raise ImplError / ImplSkipped / ImplBroken."""
        with self._lock:
            self._exchanges = []
            proc = self._ensure_process()
            try:
                resp = self._roundtrip(proc, cmd, fields, self.timeout)
            except _Failure as f:
                raise self._broken(f) from None
            if resp.get("ok") is True:
                result: dict[str, Any] = resp["result"]
                return result
            if "error" in resp:
                raise DriverError(resp["error"])
            if "skipped" in resp:
                reason = resp["skipped"]["reason"]
                declared = self.info.capabilities.profiles
                needed = _profiles_needed(cmd, fields)
                if cmd == "listen" and fields["scheme"] in self.info.capabilities.transports:
                    needed = {"bus-node" if fields.get("role") == "bus-node" else "transport"}
                if needed and needed <= declared:
                    raise self._broken(
                        _Failure(
                            "capability-lie",
                            f"skipped {cmd} ({reason}) although it declares {sorted(needed)}",
                            response=resp,
                        )
                    )
                raise ImplSkipped(reason)
            errored = resp["errored"]
            raise self._broken(
                _Failure("errored", f"the implementation failed: {errored['message']}", response=resp)
            )

    def _roundtrip(self, proc: _Process, cmd: str, fields: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send a request and read its response; raise _Failure for anything but a valid response.

        A failure that leaves the stream out of step (timeout, garbage, wrong seq) kills the
        process so the next request starts a fresh one.
        """
        request: dict[str, Any] = {"cmd": cmd, "seq": proc.seq, **fields}
        errors = schema_errors(cmd, "request", request)
        if errors:
            raise HarnessError(f"the harness built an invalid {cmd} request: {errors}")
        proc.seq += 1
        self._exchanges.append((request, None, None))
        data = _dumps(request)
        deadline = time.monotonic() + timeout

        def done(resp: dict[str, Any] | None, raw: str | None) -> None:
            self._exchanges[-1] = (request, resp, raw)

        try:
            proc.write(data, deadline)
            line = proc.read_line(deadline)
        except _Failure as f:
            if f.reason == "exited":
                f.evidence["returncode"] = proc.settle()
                self._dead(f"exited with status {f.evidence['returncode']}")
            else:
                self._dead(f.reason)
            raise
        try:
            resp = json.loads(line, parse_constant=_reject_constant)
        except ValueError as e:
            done(None, _raw(line))
            self._dead("garbage")
            raise _Failure("garbage", f"stdout line is not JSON: {e}", raw_line=_raw(line)) from None
        if isinstance(resp, dict) and isinstance(resp.get("seq"), int) and resp["seq"] != request["seq"]:
            done(resp, None)
            self._dead("wrong-seq")
            raise _Failure(
                "wrong-seq",
                f"response has seq {resp['seq']}, expected {request['seq']}",
                response=resp,
            )
        done(resp if isinstance(resp, dict) else None, None if isinstance(resp, dict) else _raw(line))
        errors = schema_errors(cmd, "response", resp)
        if errors:
            not_message = any(e["path"].startswith("result/message") for e in errors)
            raise _Failure(
                "not-a-message" if not_message else "schema-invalid-response",
                f"the {cmd} response is not valid: {errors[0]['path'] or '/'}: {errors[0]['message']}",
                response=resp,
                schema_errors=errors[:10],
            )
        return resp  # type: ignore[no-any-return]

    def _dead(self, why: str) -> None:
        """The current process is out of step or gone: stop it; the next request restarts."""
        self._discard(kill=True)
        self._dead_reason = why

    def _broken(self, f: _Failure) -> ImplBroken:
        last = self._exchanges[-1] if self._exchanges else None
        evidence: dict[str, Any] = {
            "reason": f.reason,
            "command": list(self.argv),
            "request": _abbrev(last[0]) if last else None,
            "stderr_tail": self.stderr_tail,
        }
        if last is not None and "response" not in f.evidence:
            evidence["response"] = _abbrev(last[1])
        evidence.update({k: _abbrev(v) for k, v in f.evidence.items()})
        return ImplBroken(f"{self.argv[0]}: {f}", evidence)

    # ------------------------------------------------------------ results

    def _message(self, result: dict[str, Any]) -> MessageData:
        message: MessageData = result["message"]
        return message


class DriverBus:
    """The bus of a driver (spec/bus.md section 13 as ``bus_*`` commands) as a
    :class:`~symphony_conformance.bus_testing.BusUnderTest`."""

    def __init__(self, impl: ExecImplementation) -> None:
        self.impl = impl

    def _op(self, op: str, **fields: Any) -> dict[str, Any]:
        return self.impl._operation(f"bus_{op}", fields)

    def configure(self, limits: Mapping[str, int]) -> None:
        self._op("configure", limits=dict(limits))

    def set_clock(self, now_ns: int) -> None:
        self._op("clock", now=format_timestamp(now_ns))

    def register(self, endpoint: str) -> None:
        self._op("register", endpoint=endpoint)

    def unregister(self, endpoint: str) -> None:
        self._op("unregister", endpoint=endpoint)

    def set_failing(self, endpoint: str, failures: int) -> None:
        self._op("set_failing", endpoint=endpoint, failures=failures)

    def subscribe(self, endpoint: str, topic: str) -> None:
        self._op("subscribe", endpoint=endpoint, topic=topic)

    def unsubscribe(self, endpoint: str, topic: str) -> None:
        self._op("unsubscribe", endpoint=endpoint, topic=topic)

    def add_rule(self, rule: Mapping[str, Any]) -> None:
        self._op("add_rule", rule=dict(rule))

    def remove_rule(self, rule_id: str) -> None:
        self._op("remove_rule", rule_id=rule_id)

    def enable_rule(self, rule_id: str, enabled: bool) -> None:
        self._op("enable_rule", rule_id=rule_id, enabled=enabled)

    def send(self, message: MessageData) -> None:
        self._op("send", message=message)

    def deliver(self, endpoint: str) -> None:
        self._op("deliver", endpoint=endpoint)

    def received(self, endpoint: str) -> list[dict[str, Any]]:
        return list(self._op("received", endpoint=endpoint)["received"])

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(self._op("dead_letters")["dead_letters"])

    def stats(self) -> dict[str, Any]:
        return dict(self._op("stats")["stats"])

    def history(self) -> list[MessageData]:
        return list(self._op("history")["history"])

    def close(self) -> None:
        """The driver's bus lives until the next ``bus_reset``."""


def _b64(data: bytes) -> str:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise HarnessError(f"expected bytes, got {type(data).__name__}")
    return base64.b64encode(bytes(data)).decode("ascii")
