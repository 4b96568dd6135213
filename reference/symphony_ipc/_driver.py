"""The reference implementation served over the conformance driver protocol (spec/driver/README.md).

One JSON request per line on stdin, one JSON response per line on stdout; stderr is the log.
:class:`Driver` maps requests to responses and is reused by the harness's miniature drivers.
:class:`EchoEndpoints` runs the echo endpoints of the ``listen`` command (profile ``transport``)
on an event loop in a background thread, so the request loop stays synchronous.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any, Final

from . import SPEC_VERSION, __version__
from ._codec import CODECS, Codec, decode, encode, message_from_data, message_to_data
from ._errors import ERROR_TABLE, ErrorCode, ProtocolError
from ._fields import build_from_fields
from ._model import Message, ProtocolVersion, check_message_type
from ._ordering import order
from ._receive import receive
from ._time import ManualClock, SystemClock, parse_rfc3339

if TYPE_CHECKING:
    import asyncio

    from .transport import Listener

DRIVER_PROTOCOL: Final = 1
PROFILES: Final = (
    "envelope",
    "codec-json",
    "codec-msgpack",
    "priority",
    "ttl",
    "versioning",
    "transport",
    "security",
    "bus",
    "bus-node",
)
#: The schemes ``listen`` serves an echo endpoint (or, ``role`` bus-node, a bus node) on.
TRANSPORTS: Final = ("unix", "fifo", "stdio")

Response = dict[str, Any]


class _Errored(Exception):
    """The driver itself cannot serve a request (unknown command, malformed request)."""


class _Rejected(Exception):
    """An expected refusal carried as a wire error (``frames``: the decoder refused the stream)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


class _Skipped(Exception):
    """The driver does not offer what was asked (``listen`` on a scheme it does not serve)."""


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise _Errored(f"data_b64 is not base64: {e}") from None


def _codec(value: object) -> Codec:
    if value not in CODECS:
        raise _Errored(f"unknown codec {value!r}")
    return value


def _b64s(payloads: list[str]) -> list[str]:
    """Hex payloads (the sans-I/O core's vector form) as base64 (the driver protocol's form)."""
    return [base64.b64encode(bytes.fromhex(h)).decode("ascii") for h in payloads]


def _wire_error(code: str, message: str) -> dict[str, Any]:
    category, recoverable = ERROR_TABLE[ErrorCode(code)]
    return {"code": code, "category": category, "recoverable": recoverable, "message": message}


#: What ``listen`` serves: an echo endpoint (profile transport) or a bus node (profile bus-node).
ROLES: Final = ("echo", "bus-node")


def stdio_address(role: str = "echo") -> str:
    """The address of the reference's stdio echo endpoint (or bus node): a child serving on its
    stdin/stdout."""
    echo = ["--echo"] if role == "echo" else []
    command = [sys.executable, "-m", "symphony_ipc.cli", "serve", *echo, "--listen", "stdio"]
    return "stdio:" + shlex.join(command)


class EchoEndpoints:
    """Echo endpoints (``symphony-ipc serve``'s echo) at fresh addresses, served by an event loop
    in a daemon thread; :meth:`close` stops them and removes their socket files and FIFOs.

    ``unix`` and ``fifo`` endpoints live in a short temporary directory (a socket path is at most
    107 bytes); ``stdio`` has nothing to run here: its address is a command the client spawns.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._dir: str | None = None
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._count = 0

    def listen(
        self,
        scheme: str,
        timeout: float = 10.0,
        security: Mapping[str, Any] | None = None,
        role: str = "echo",
    ) -> str:
        """Start an echo endpoint on ``scheme`` (one of :data:`TRANSPORTS`); return its address.
        ``security``: the limits of spec/security.md (``security.settings_from_config``).
        ``role`` ``bus-node``: a bus node (spec/bus.md section 14, default limits) instead."""
        if scheme not in TRANSPORTS:
            raise ValueError(f"no echo endpoint on {scheme!r}; schemes: {', '.join(TRANSPORTS)}")
        if role not in ROLES:
            raise ValueError(f"no listen role {role!r}; roles: {', '.join(ROLES)}")
        if scheme == "stdio":
            return stdio_address(role)
        import asyncio

        with self._lock:
            loop = self._start_loop()
            assert self._dir is not None
            self._count += 1
            name = f"e{self._count}.sock" if scheme == "unix" else f"e{self._count}"
            address = f"{scheme}:{os.path.join(self._dir, name)}"
        serve = self._serve_node if role == "bus-node" else self._serve
        asyncio.run_coroutine_threadsafe(serve(address, security), loop).result(timeout)
        return address

    def _start_loop(self) -> asyncio.AbstractEventLoop:
        import asyncio

        if self._loop is None:
            self._dir = tempfile.mkdtemp(prefix="sy-ep-", dir="/tmp")
            os.chmod(self._dir, 0o711)  # others may reach a socket made 0666 (SEC-005), not list
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name="symphony-echo-endpoints", daemon=True
            )
            self._thread.start()
            self._loop = loop
        return self._loop

    async def _serve(self, address: str, security: Mapping[str, Any] | None = None) -> None:
        import asyncio

        from ._serve import serve_echo
        from .security import settings_from_config
        from .transport import listen

        policy, handshake_timeout, rate = settings_from_config(security)
        listener = await listen(address, security=policy, handshake_timeout=handshake_timeout)
        self._listeners.append(listener)
        self._tasks.append(asyncio.get_running_loop().create_task(serve_echo(listener, rate=rate)))

    async def _serve_node(self, address: str, security: Mapping[str, Any] | None = None) -> None:
        import asyncio

        from .bus import BusNode
        from .security import settings_from_config
        from .transport import listen

        policy, handshake_timeout, rate = settings_from_config(security)
        listener = await listen(address, security=policy, handshake_timeout=handshake_timeout)
        self._listeners.append(listener)
        node = BusNode(rate=rate)
        self._tasks.append(asyncio.get_running_loop().create_task(node.serve(listener)))

    async def _stop(self) -> None:
        import asyncio

        for listener in self._listeners:
            await listener.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self, timeout: float = 10.0) -> None:
        """Stop every endpoint, the loop and its thread; remove the directory. Idempotent."""
        import asyncio

        with self._lock:
            loop, thread, directory = self._loop, self._thread, self._dir
            self._loop = self._thread = self._dir = None
        if loop is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout)
            if thread is None or not thread.is_alive():
                loop.close()
        self._listeners.clear()
        self._tasks.clear()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


class _TestBus:
    """The reference bus behind the ``bus_*`` commands (spec/bus.md section 13): a ``BusCore`` on
    a manual clock whose endpoints' handlers record the copies they accept and fail on demand."""

    def __init__(self, now_ns: int) -> None:
        from .bus import BusConfig, BusCore

        self.clock = ManualClock(now_ns)
        self.core = BusCore(BusConfig(backpressure_timeout_ns=0), clock=self.clock)
        self.received: dict[str, list[tuple[Message, int]]] = {}
        self.failing: dict[str, int] = {}

    def handler(self, endpoint: str) -> Callable[[Message, int], None]:
        def handle(msg: Message, attempt: int) -> None:
            if self.failing.get(endpoint, 0):
                self.failing[endpoint] -= 1
                raise RuntimeError("failing on demand (bus_set_failing)")
            self.received.setdefault(endpoint, []).append((msg, attempt))

        return handle


class Driver:
    """Answers driver-protocol requests with the reference implementation."""

    def __init__(self) -> None:
        self.clock = ManualClock(SystemClock().now_ns())
        self.greeted = False
        self.done = False
        self.endpoints = EchoEndpoints()
        self._commands: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "hello": self._hello,
            "clock": self._clock,
            "build": self._build,
            "encode": self._encode,
            "decode": self._decode,
            "receive": self._receive,
            "order": self._order,
            "is_expired": self._is_expired,
            "is_compatible": self._is_compatible,
            "expects_response": self._expects_response,
            "frames": self._frames,
            "handshake": self._handshake,
            "listen": self._listen,
            "shutdown": self._shutdown,
        }
        self._bus: _TestBus | None = None
        for name in dir(self):
            if name.startswith("_bus_"):
                self._commands[name[1:]] = getattr(self, name)

    def handle(self, request: Mapping[str, Any]) -> Response:
        """One request -> its response; never raises for a request that is a JSON object."""
        seq = request.get("seq")
        cmd = request.get("cmd")
        try:
            if not isinstance(seq, int) or isinstance(seq, bool):
                raise _Errored("request has no integer seq")
            handler = self._commands.get(cmd) if isinstance(cmd, str) else None
            if handler is None:
                raise _Errored(f"unknown command {cmd!r}")
            if cmd != "hello" and not self.greeted:
                raise _Errored("the first request must be hello")
            return {"seq": seq, "ok": True, "result": handler(request)}
        except ProtocolError as e:
            return {"seq": seq, "ok": False, "error": e.to_dict()}
        except _Rejected as e:
            return {"seq": seq, "ok": False, "error": e.error}
        except _Skipped as e:
            return {"seq": seq, "skipped": {"reason": str(e)}}
        except _Errored as e:
            return {"seq": seq, "errored": {"message": str(e)}}
        except Exception as e:  # the driver's own bug: report it, keep serving
            tb = traceback.format_exception(e)
            return {
                "seq": seq,
                "errored": {
                    "message": f"{type(e).__name__}: {e}",
                    "context": {"traceback": "".join(tb[-3:])},
                },
            }

    # ------------------------------------------------------------ commands

    def _hello(self, req: Mapping[str, Any]) -> dict[str, Any]:
        if req.get("driver_protocol") != DRIVER_PROTOCOL:
            raise _Errored(f"driver_protocol {req.get('driver_protocol')!r} is not {DRIVER_PROTOCOL}")
        self.greeted = True
        return {
            "name": "symphony-ipc",
            "version": __version__,
            "language": "python",
            "spec_version": SPEC_VERSION,
            "driver_protocol": DRIVER_PROTOCOL,
            "capabilities": {
                "profiles": list(PROFILES),
                "codecs": list(CODECS),
                "transports": list(TRANSPORTS),
            },
        }

    def _clock(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.clock.set(parse_rfc3339(req["now"], lenient=False))
        return {}

    def _build(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"message": message_to_data(build_from_fields(req["fields"], self.clock))}

    def _encode(self, req: Mapping[str, Any]) -> dict[str, Any]:
        msg = message_from_data(req["message"])
        data = encode(msg, _codec(req["codec"]))
        return {"data_b64": base64.b64encode(data).decode("ascii")}

    def _decode(self, req: Mapping[str, Any]) -> dict[str, Any]:
        msg = decode(_b64(req["data_b64"]), _codec(req["codec"]))
        return {"message": message_to_data(msg)}

    def _receive(self, req: Mapping[str, Any]) -> dict[str, Any]:
        rv = req["receiver_version"]
        msg = receive(
            _b64(req["data_b64"]),
            _codec(req["codec"]),
            now_ns=self.clock.now_ns(),
            version=ProtocolVersion(rv["major"], rv["minor"]),
        )
        return {"message": message_to_data(msg)}

    def _order(self, req: Mapping[str, Any]) -> dict[str, Any]:
        messages = [message_from_data(m) for m in req["messages"]]
        index = {id(m): i for i, m in enumerate(messages)}
        return {"order": [index[id(m)] for m in order(messages)]}

    def _is_expired(self, req: Mapping[str, Any]) -> dict[str, Any]:
        msg: Message = message_from_data(req["message"])
        return {"expired": msg.is_expired(parse_rfc3339(req["now"], lenient=False))}

    def _is_compatible(self, req: Mapping[str, Any]) -> dict[str, Any]:
        a, b = req["a"], req["b"]
        va = ProtocolVersion(a["major"], a["minor"])
        return {"compatible": va.is_compatible(ProtocolVersion(b["major"], b["minor"]))}

    def _expects_response(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"expects_response": check_message_type(req["message_type"]).expects_response}

    def _frames(self, req: Mapping[str, Any]) -> dict[str, Any]:
        from .transport.sansio import run_frames_vector

        data = _b64(req["data_b64"])
        out = run_frames_vector({"hex": data.hex(), "eof": req["eof"], "mode": req.get("mode", "frames")})
        if "error" in out:
            raise _Rejected(_wire_error(out["error"], "the frame decoder refused the stream"))
        return {"frames_b64": _b64s(out["frames"]), "state": out["state"]}

    def _handshake(self, req: Mapping[str, Any]) -> dict[str, Any]:
        from .transport.sansio import run_handshake_vector

        role = req["role"]
        if role not in ("client", "server"):
            raise _Errored(f"unknown role {role!r}")
        data = _b64(req["data_b64"])
        out = run_handshake_vector(
            {"role": role, role: req.get("config", {}), "hex": data.hex(), "eof": req["eof"]}
        )
        result = {
            "codec": out["codec"],
            "mode": out["mode"],
            "sent": out["sent"],
            "frames_b64": _b64s(out["frames"]),
            "state": out["state"],
        }
        if "error" in out:
            result["error"] = out["error"]
        return result

    def _listen(self, req: Mapping[str, Any]) -> dict[str, Any]:
        scheme = req["scheme"]
        role = req.get("role", "echo")
        if role not in ROLES:
            raise _Errored(f"listen: unknown role {role!r} (roles: {', '.join(ROLES)})")
        if scheme not in TRANSPORTS:
            raise _Skipped(f"no endpoint on {scheme!r} (offered: {', '.join(TRANSPORTS)})")
        security = req.get("security")
        if security and scheme == "stdio":
            raise _Skipped("a stdio endpoint serves the one parent that spawned it: no security settings")
        address = self.endpoints.listen(scheme, security=security, role=role)
        return {"address": address} if scheme == "stdio" else {"address": address, "pid": os.getpid()}

    # ------------------------------------------------------------ the profile bus

    @property
    def bus(self) -> _TestBus:
        if self._bus is None:
            self._bus = _TestBus(SystemClock().now_ns())
        return self._bus

    def _bus_reset(self, req: Mapping[str, Any]) -> dict[str, Any]:
        now = self._bus.clock.now_ns() if self._bus is not None else SystemClock().now_ns()
        self._bus = _TestBus(now)
        return {}

    def _bus_configure(self, req: Mapping[str, Any]) -> dict[str, Any]:
        from .bus import BusConfig

        limits = req["limits"]
        if not isinstance(limits, dict):
            raise _Errored("limits must be an object")
        self.bus.core.configure(BusConfig(backpressure_timeout_ns=0, **limits))
        return {}

    def _bus_clock(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.clock.set(parse_rfc3339(req["now"], lenient=False))
        self.bus.core.poll()
        return {}

    def _bus_register(self, req: Mapping[str, Any]) -> dict[str, Any]:
        bus, endpoint = self.bus, req["endpoint"]
        bus.core.register(endpoint, bus.handler(endpoint))
        bus.received[endpoint] = []
        bus.failing[endpoint] = 0
        return {}

    def _bus_unregister(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.core.unregister(req["endpoint"])
        return {}

    def _bus_set_failing(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.failing[req["endpoint"]] = int(req["failures"])
        return {}

    def _bus_subscribe(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.core.subscribe(req["endpoint"], req["topic"])
        return {}

    def _bus_unsubscribe(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.core.unsubscribe(req["endpoint"], req["topic"])
        return {}

    def _bus_add_rule(self, req: Mapping[str, Any]) -> dict[str, Any]:
        from .bus import Rule

        self.bus.core.add_rule(Rule.from_dict(req["rule"]))
        return {}

    def _bus_remove_rule(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.core.remove_rule(req["rule_id"])
        return {}

    def _bus_enable_rule(self, req: Mapping[str, Any]) -> dict[str, Any]:
        if type(req["enabled"]) is not bool:
            raise _Errored("enabled must be a boolean")
        self.bus.core.enable_rule(req["rule_id"], req["enabled"])
        return {}

    def _bus_send(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.core.submit(message_from_data(req["message"]))
        return {}

    def _bus_deliver(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.bus.core.deliver(req["endpoint"])
        return {}

    def _bus_received(self, req: Mapping[str, Any]) -> dict[str, Any]:
        got = self.bus.received.get(req["endpoint"], [])
        self.bus.received[req["endpoint"]] = []
        return {"received": [{"message": message_to_data(m), "attempt": a} for m, a in got]}

    def _bus_dead_letters(self, req: Mapping[str, Any]) -> dict[str, Any]:
        from .bus import dead_letter_to_data

        return {"dead_letters": [dead_letter_to_data(e) for e in self.bus.core.dead_letters()]}

    def _bus_stats(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"stats": self.bus.core.stats().to_dict()}

    def _bus_history(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"history": [message_to_data(m) for m in self.bus.core.history()]}

    def _shutdown(self, req: Mapping[str, Any]) -> dict[str, Any]:
        self.done = True
        self.endpoints.close()
        return {}


def dumps(response: Response) -> bytes:
    """One response line (ASCII-only JSON, so any string survives, lone surrogates included)."""
    return json.dumps(response, separators=(",", ":")).encode("ascii") + b"\n"


def serve(
    stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None, driver: Driver | None = None
) -> int:
    """Serve requests until ``shutdown`` or end of input; return the exit status."""
    inp = stdin if stdin is not None else sys.stdin.buffer
    out = stdout if stdout is not None else sys.stdout.buffer
    if stdout is None:
        sys.stdout = sys.stderr  # a stray print() must not corrupt the protocol stream
    drv = driver or Driver()
    try:
        for line in inp:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError as e:
                print(f"symphony-ipc driver: request is not JSON ({e}): {line[:200]!r}", file=sys.stderr)
                return 2
            if not isinstance(request, dict):
                print(f"symphony-ipc driver: request is not an object: {line[:200]!r}", file=sys.stderr)
                return 2
            out.write(dumps(drv.handle(request)))
            out.flush()
            if drv.done:
                break
    finally:
        drv.endpoints.close()  # the listen endpoints end with the driver, at shutdown or end of input
    return 0
