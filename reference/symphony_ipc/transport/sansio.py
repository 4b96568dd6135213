"""The sans-I/O core of every transport (spec/transport.md sections 1 to 3), in the style of h11.

No sockets, no clocks, no asyncio: bytes go in (:meth:`Connection.receive_data`,
:meth:`Connection.receive_eof`), events come out (:class:`HandshakeDone`, :class:`Frame`,
:class:`ConnectionClosed`, :class:`ProtocolViolation`), and the bytes to write come back from
:meth:`Connection.initiate`, :meth:`Connection.send_frame` and :meth:`Connection.data_to_send`.
The adapters only move bytes; every protocol decision is made here, so a split of the input at any
byte boundary gives the same events (FRM-005). The states and their transitions are the one table
:data:`TRANSITIONS`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from struct import Struct
from typing import Any, Final

from .._errors import ERROR_TABLE, ErrorCode
from ._errors import FrameTooLarge, HandshakeFailed, PeerBroken, PeerClosed, TransportClosed, TransportError

MAX_FRAME_SIZE: Final = 16 * 1024 * 1024  #: FRM-002, the maximum message size of ENV-013
MAX_HELLO_SIZE: Final = 4096  #: FRM-010: hello, welcome and error frames
PROTOCOL_VERSION: Final = (1, 0)
DEFAULT_CODECS: Final = ("msgpack", "json")
KNOWN_CODECS: Final = frozenset({"json", "msgpack"})

_LEN = Struct(">I")
_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,4})\.(0|[1-9][0-9]{0,4})")


class Mode(StrEnum):
    FRAMES = "frames"  #: 4-byte big-endian length prefix (FRM-001), the default
    NDJSON = "ndjson"  #: one JSON text per LF-terminated line (FRM-021)


_NDJSON: Final = Mode.NDJSON
_FRAMES: Final = Mode.FRAMES


class Role(StrEnum):
    CLIENT = "client"
    SERVER = "server"


class State(StrEnum):
    START = "start"  #: client, hello not sent yet
    AWAIT_HELLO = "await-hello"  #: server
    AWAIT_WELCOME = "await-welcome"  #: client
    OPEN = "open"
    CLOSED = "closed"  #: the peer closed cleanly (terminal)
    BROKEN = "broken"  #: the peer vanished mid-frame (terminal)
    FAILED = "failed"  #: a protocol violation: we refused and close (terminal)
    CLOSED_LOCAL = "closed-local"  #: we closed (terminal)


TERMINAL: Final = frozenset({State.CLOSED, State.BROKEN, State.FAILED, State.CLOSED_LOCAL})
# Enum members as module constants for the per-frame paths: ``State.OPEN`` is a descriptor lookup
# on the enum class (~0.15 us on CPython 3.11), a global is a dict lookup.
_OPEN: Final = State.OPEN
_START: Final = State.START


class Trigger(StrEnum):
    SEND_HELLO = "send-hello"
    HELLO_OK = "hello-ok"
    HELLO_BAD = "hello-bad"
    WELCOME_OK = "welcome-ok"
    WELCOME_BAD = "welcome-bad"
    FRAME = "frame"
    OVERSIZE = "oversize"
    EOF_CLEAN = "eof-clean"
    EOF_BROKEN = "eof-broken"
    LOCAL_CLOSE = "local-close"


def _table() -> dict[tuple[Role, State, Trigger], State]:
    c, s, t = Role.CLIENT, Role.SERVER, Trigger
    table: dict[tuple[Role, State, Trigger], State] = {
        (c, State.START, t.SEND_HELLO): State.AWAIT_WELCOME,
        (c, State.AWAIT_WELCOME, t.WELCOME_OK): State.OPEN,
        (c, State.AWAIT_WELCOME, t.WELCOME_BAD): State.FAILED,
        (s, State.AWAIT_HELLO, t.HELLO_OK): State.OPEN,
        (s, State.AWAIT_HELLO, t.HELLO_BAD): State.FAILED,
    }
    for role in (c, s):
        live = (State.START, State.AWAIT_WELCOME) if role is c else (State.AWAIT_HELLO,)
        for state in (*live, State.OPEN):
            table[role, state, t.EOF_CLEAN] = State.CLOSED
            table[role, state, t.EOF_BROKEN] = State.BROKEN
            table[role, state, t.LOCAL_CLOSE] = State.CLOSED_LOCAL
        table[role, State.OPEN, t.FRAME] = State.OPEN
        table[role, State.OPEN, t.OVERSIZE] = State.FAILED
        for state in TERMINAL:
            table[role, state, t.LOCAL_CLOSE] = State.CLOSED_LOCAL
    return table


#: (role, state, trigger) -> next state; a pair that is not here is a bug in the caller.
TRANSITIONS: Final = _table()


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    codec: str
    peer_version: tuple[int, int]
    mode: Mode


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    clean: bool  #: True: end of stream at a frame boundary; False: inside a frame (FRM-006)


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    code: ErrorCode
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    local: bool = True  #: True: we found it; False: the peer sent us an error frame


Event = HandshakeDone | Frame | ConnectionClosed | ProtocolViolation


class LocalProtocolError(Exception):
    """The caller used the core in a way its state forbids (a bug in the I/O layer)."""


class _Violation(Exception):
    def __init__(self, code: ErrorCode, message: str, *, remote: bool = False, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.remote = remote  # the peer's error frame, not our finding
        self.details = details


# ---------------------------------------------------------------- decoders


class FrameDecoder:
    """Length-prefixed frames (FRM-001). :meth:`next_frame` gives ``b""`` for a zero-length frame.

    The length is checked against ``limit`` as soon as its four bytes are in (FRM-003): nothing is
    allocated for the payload, the bytes simply accumulate as they arrive.
    """

    __slots__ = ("_buf", "_pos", "limit")

    def __init__(self, limit: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.limit = limit

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def next_frame(self) -> bytes | None:
        """The next payload, or None until more bytes arrive; raises ``_Violation`` on a bad length."""
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail < 4:
            return None
        n = _LEN.unpack_from(buf, pos)[0]
        if n > self.limit:
            raise _Violation(ErrorCode.MESSAGE_TOO_LARGE, f"frame length {n} over {self.limit}", size=n)
        end = pos + 4 + n
        if avail < 4 + n:
            if pos:
                del buf[:pos]
                self._pos = 0
            return None
        with memoryview(buf) as mv:
            payload = mv[pos + 4 : end].tobytes()
        if end == len(buf):
            buf.clear()
            self._pos = 0
        else:
            self._pos = end
        return payload


class NdjsonDecoder:
    """NDJSON lines (FRM-021); :meth:`next_frame` gives ``b""`` for an empty line (a keep-alive)."""

    __slots__ = ("_buf", "_pos", "_scan", "limit")

    def __init__(self, limit: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._scan = 0
        self.limit = limit

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = self._scan = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def next_frame(self) -> bytes | None:
        buf, pos = self._buf, self._pos
        i = buf.find(b"\n", max(pos, self._scan))
        if i < 0 or i - pos > self.limit:
            if len(buf) - pos > self.limit:
                raise _Violation(
                    ErrorCode.MESSAGE_TOO_LARGE, f"line longer than {self.limit} bytes", size=len(buf) - pos
                )
            self._scan = len(buf)
            if pos:
                del buf[:pos]
                self._pos = 0
                self._scan -= pos
            return None
        line = bytes(buf[pos:i])
        self._pos = self._scan = i + 1
        return line


Decoder = FrameDecoder | NdjsonDecoder


def frame_bytes(payload: bytes, mode: Mode = Mode.FRAMES) -> bytes:
    """Frame one payload, refusing a payload over the maximum (FRM-002)."""
    n = len(payload)
    if n > MAX_FRAME_SIZE:
        raise FrameTooLarge(n, MAX_FRAME_SIZE)
    if mode is _NDJSON:
        if b"\n" in payload:
            raise ValueError("an NDJSON frame cannot contain a newline (FRM-021)")
        return payload + b"\n"
    return _LEN.pack(n) + payload


# ---------------------------------------------------------------- hello, welcome, error frames


def _json_bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def format_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse_version(value: object) -> tuple[int, int]:
    if not isinstance(value, str) or not (m := _VERSION_RE.fullmatch(value)):
        raise _Violation(ErrorCode.SERIALIZATION, f"symphony: expected 'MAJOR.MINOR', got {value!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    if major > 0xFFFF or minor > 0xFFFF:
        raise _Violation(ErrorCode.SERIALIZATION, f"symphony: {value!r} is out of the u16 range")
    return major, minor


def make_hello(version: tuple[int, int], codecs: tuple[str, ...]) -> bytes:
    return _json_bytes({"symphony": format_version(version), "codecs": list(codecs)})


def make_welcome(version: tuple[int, int], codec: str) -> bytes:
    return _json_bytes({"symphony": format_version(version), "codec": codec})


def make_error(code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> bytes:
    category, recoverable = ERROR_TABLE[code]
    err: dict[str, Any] = {"code": code.value, "category": category, "recoverable": recoverable}
    err["message"] = message[:512]
    if details:
        err["details"] = details
    return _json_bytes({"error": err})


def _json_object(payload: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _Violation(ErrorCode.SERIALIZATION, f"the {what} is not UTF-8 JSON: {e}") from None
    except RecursionError:  # ~1,000 nested arrays fit in 4,096 bytes (spec/security.md ROB-003)
        raise _Violation(ErrorCode.SERIALIZATION, f"the {what} is nested too deeply") from None
    if not isinstance(obj, dict):
        raise _Violation(ErrorCode.SERIALIZATION, f"the {what} is not a JSON object")
    return obj


def parse_hello(
    payload: bytes, version: tuple[int, int], codecs: tuple[str, ...], mode: Mode
) -> tuple[str, tuple[int, int]]:
    """Check a hello in FRM-014's order; return (chosen codec, client version)."""
    if not payload:
        raise _Violation(ErrorCode.SERIALIZATION, "the first frame is empty, not a hello")
    obj = _json_object(payload, "hello")
    if "symphony" not in obj:
        raise _Violation(ErrorCode.SERIALIZATION, "the hello has no 'symphony' member")
    peer = parse_version(obj["symphony"])
    offered = obj.get("codecs")
    if not isinstance(offered, list) or not offered or not all(isinstance(c, str) for c in offered):
        raise _Violation(ErrorCode.SERIALIZATION, "hello 'codecs' must be a non-empty array of strings")
    if peer[0] != version[0]:
        raise _Violation(
            ErrorCode.INVALID_PROTOCOL_VERSION,
            f"client speaks {format_version(peer)}, server {format_version(version)}",
            major=peer[0],
            minor=peer[1],
        )
    usable = ("json",) if mode is Mode.NDJSON else codecs
    for name in offered:
        if name in usable:
            return name, peer
    raise _Violation(
        ErrorCode.SERIALIZATION, f"no codec in common: client offers {offered}, server has {list(usable)}"
    )


def parse_welcome(
    payload: bytes, version: tuple[int, int], offered: tuple[str, ...]
) -> tuple[str, tuple[int, int]]:
    """Check the server's answer (FRM-016); an error frame raises with the server's code."""
    obj = _json_object(payload, "welcome")
    if "error" in obj:
        err = obj["error"]
        code_text = str(err.get("code")) if isinstance(err, dict) else ""
        msg = err.get("message", "") if isinstance(err, dict) else ""
        try:
            code = ErrorCode(code_text)
        except ValueError:
            raise _Violation(ErrorCode.SERIALIZATION, f"malformed error frame: {err!r}") from None
        details = err.get("details") if isinstance(err.get("details"), dict) else {}
        raise _Violation(code, f"server refused: {msg}", remote=True, **details)
    if "symphony" not in obj:
        raise _Violation(ErrorCode.SERIALIZATION, "the welcome has no 'symphony' member")
    peer = parse_version(obj["symphony"])
    if peer[0] != version[0]:
        raise _Violation(
            ErrorCode.INVALID_PROTOCOL_VERSION,
            f"server speaks {format_version(peer)}, client {format_version(version)}",
            major=peer[0],
            minor=peer[1],
        )
    codec = obj.get("codec")
    if not isinstance(codec, str) or codec not in offered:
        raise _Violation(
            ErrorCode.SERIALIZATION, f"the server chose codec {codec!r}, not one offered {list(offered)}"
        )
    return codec, peer


# ---------------------------------------------------------------- the connection state machine


class Connection:
    """One side of one connection. Not thread-safe; one per connection.

    ``codecs``: for a client, what it offers, most preferred first; for a server, what it supports.
    ``mode``: the client's framing (FRM-023); a server detects the client's (FRM-020) and accepts
    NDJSON when ``accept_ndjson``.
    """

    def __init__(
        self,
        role: Role,
        *,
        codecs: tuple[str, ...] = DEFAULT_CODECS,
        version: tuple[int, int] = PROTOCOL_VERSION,
        mode: Mode = Mode.FRAMES,
        accept_ndjson: bool = True,
    ) -> None:
        if not codecs:
            raise ValueError("at least one codec")
        self.role = role
        self.codecs = tuple(codecs)
        self.version = version
        self.accept_ndjson = accept_ndjson
        self.state = State.START if role is Role.CLIENT else State.AWAIT_HELLO
        self.mode: Mode | None = mode if role is Role.CLIENT else None
        self.codec: str | None = None
        self.peer_version: tuple[int, int] | None = None
        self.violation: ProtocolViolation | None = None
        self._decoder: Decoder | None = None
        if role is Role.CLIENT:
            self._decoder = self._new_decoder(mode, MAX_HELLO_SIZE)
        self._out = bytearray()

    # -- transitions

    def _go(self, trigger: Trigger) -> None:
        try:
            self.state = TRANSITIONS[self.role, self.state, trigger]
        except KeyError:
            raise LocalProtocolError(f"{self.role} cannot {trigger} in state {self.state}") from None

    @staticmethod
    def _new_decoder(mode: Mode, limit: int) -> Decoder:
        return NdjsonDecoder(limit) if mode is Mode.NDJSON else FrameDecoder(limit)

    # -- outgoing

    def initiate(self) -> bytes:
        """Client: the hello to write first (FRM-010)."""
        if self.role is not Role.CLIENT:
            raise LocalProtocolError("only a client sends a hello")
        self._go(Trigger.SEND_HELLO)
        assert self.mode is not None
        return frame_bytes(make_hello(self.version, self.codecs), self.mode)

    def send_frame(self, payload: bytes) -> bytes:
        """The bytes of one frame; FrameTooLarge (state unchanged) over the maximum (FRM-002).

        An empty payload is refused with ValueError: on the wire it would be a keep-alive (FRM-004).
        """
        if not payload:
            raise ValueError("an empty payload is a keep-alive on the wire; use keepalive()")
        if self.state is not _OPEN and not (
            self.state is State.AWAIT_WELCOME and len(self.codecs) == 1  # FRM-015
        ):
            raise self.terminal_error() or LocalProtocolError(f"cannot send in state {self.state}")
        n = len(payload)
        if n <= MAX_FRAME_SIZE and self.mode is _FRAMES:  # frame_bytes, inlined for the hot path
            return _LEN.pack(n) + payload
        return frame_bytes(payload, self.mode or Mode.FRAMES)

    def send_frame_iov(self, payload: bytes) -> tuple[bytes, bytes]:
        """:meth:`send_frame` in two pieces to write with one ``writev``: the length prefix and the
        payload (NDJSON: the line and its LF), so a large payload is not copied to be framed."""
        if not payload:
            raise ValueError("an empty payload is a keep-alive on the wire; use keepalive()")
        if self.state is not _OPEN and not (
            self.state is State.AWAIT_WELCOME and len(self.codecs) == 1  # FRM-015
        ):
            raise self.terminal_error() or LocalProtocolError(f"cannot send in state {self.state}")
        n = len(payload)
        if n > MAX_FRAME_SIZE:
            raise FrameTooLarge(n, MAX_FRAME_SIZE)
        if self.mode is _NDJSON:
            if b"\n" in payload:
                raise ValueError("an NDJSON frame cannot contain a newline (FRM-021)")
            return payload, b"\n"
        return _LEN.pack(n), payload

    def keepalive(self) -> bytes:
        """A keep-alive frame (FRM-004)."""
        if self.state is not State.OPEN:
            raise self.terminal_error() or LocalProtocolError(f"cannot send in state {self.state}")
        return b"\n" if self.mode is Mode.NDJSON else b"\0\0\0\0"

    def data_to_send(self) -> bytes:
        """Bytes the core produced while receiving (the welcome or an error frame); drains them."""
        if not self._out:  # the usual case, asked after every read
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def close(self) -> None:
        """We close: idempotent."""
        if self.state is not State.CLOSED_LOCAL:
            self._go(Trigger.LOCAL_CLOSE)

    @property
    def must_close(self) -> bool:
        """True once the I/O layer should flush :meth:`data_to_send` and close (a terminal state)."""
        return self.state in TERMINAL

    def terminal_error(self) -> TransportError | None:
        """The error every further operation reports in a terminal state (TRN-012, TRN-014)."""
        st = self.state
        if st not in TERMINAL:  # the usual case, asked before every blocking read
            return None
        if st is State.CLOSED_LOCAL:
            return TransportClosed("the connection was closed")
        if st is State.CLOSED:
            return PeerClosed("the peer closed the connection")
        if st is State.BROKEN:
            return PeerBroken("the peer broke the connection inside a frame")
        if st is State.FAILED:
            v = self.violation
            assert v is not None
            if v.code is ErrorCode.MESSAGE_TOO_LARGE and self.codec is not None:
                return FrameTooLarge(
                    int(v.details.get("size", MAX_FRAME_SIZE + 1)), MAX_FRAME_SIZE, received=True
                )
            return HandshakeFailed(v.code, v.message, v.details)
        return None

    # -- incoming

    def receive_single(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """The payload, when ``data`` is exactly one whole frame of the open state with nothing
        buffered (the usual read: one message, one read); else None and nothing is consumed: give
        the same bytes to :meth:`receive_data`. The same outcome as :meth:`receive_data` without
        the event objects: the hot path of every reader."""
        dec = self._decoder
        # ``not dec._buf``: nothing buffered (a decoder empties its buffer when it has handed out
        # everything in it)
        if self.state is _OPEN and type(dec) is FrameDecoder and not dec._buf and len(data) > 4:
            n = _LEN.unpack_from(data, 0)[0]
            if len(data) == 4 + n and n <= dec.limit:
                return bytes(data[4:])  # the payload copied out once
        return None

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the peer; return the events they complete."""
        if self.state in TERMINAL or not data:
            return []
        dec = self._decoder
        if self.state is _OPEN and type(dec) is FrameDecoder and not dec._buf and len(data) > 4:
            # the usual read: exactly one whole frame, nothing buffered; copy the payload out once
            # (the general path appends to the decoder's buffer, then copies the frame out of it)
            n = _LEN.unpack_from(data, 0)[0]
            if len(data) == 4 + n and n <= dec.limit:
                return [Frame(bytes(data[4:]))]
        if self.state is _START:
            raise LocalProtocolError("a client sends its hello (initiate) before it receives")
        if self._decoder is None:  # server: the first byte tells the mode (FRM-020)
            first = data[0]
            if first == 0x00:
                self.mode = Mode.FRAMES
            elif first == 0x7B and self.accept_ndjson:
                self.mode = Mode.NDJSON
            else:
                self.mode = Mode.FRAMES
                return self._refuse(
                    _Violation(ErrorCode.SERIALIZATION, f"first byte {first:#04x} starts no hello frame")
                )
            self._decoder = self._new_decoder(self.mode, MAX_HELLO_SIZE)
        self._decoder.receive_data(data)
        return self._drain()

    def receive_eof(self) -> list[Event]:
        """The peer's end of stream."""
        if self.state in TERMINAL:
            return []
        clean = self._decoder is None or self._decoder.buffered == 0
        self._go(Trigger.EOF_CLEAN if clean else Trigger.EOF_BROKEN)
        return [ConnectionClosed(clean)]

    def handshake_timeout(self) -> list[Event]:
        """The I/O layer's clock ran out before the handshake completed (FRM-017, spec/security.md
        ROB-002): a server queues an error frame ``HANDSHAKE_TIMEOUT``; either side is then FAILED."""
        if self.state not in (State.AWAIT_HELLO, State.AWAIT_WELCOME):
            return []
        return self._refuse(_Violation(ErrorCode.HANDSHAKE_TIMEOUT, "the handshake did not complete in time"))

    def receive_reset(self) -> list[Event]:
        """The byte stream failed (a reset, a broken pipe): broken by the peer whatever was buffered."""
        if self.state in TERMINAL:
            return []
        self._go(Trigger.EOF_BROKEN)
        return [ConnectionClosed(False)]

    def _drain(self) -> list[Event]:
        events: list[Event] = []
        dec = self._decoder
        assert dec is not None
        while self.state not in TERMINAL:
            try:
                payload = dec.next_frame()
            except _Violation as v:
                if self.state is State.OPEN:
                    self._go(Trigger.OVERSIZE)
                    self.violation = ProtocolViolation(v.code, v.message, v.details)
                    events.append(self.violation)
                    return events
                # before the handshake a length over 4096 is no hello (FRM-013)
                events.extend(self._refuse(_Violation(ErrorCode.SERIALIZATION, f"not a hello: {v.message}")))
                return events
            if payload is None:
                break
            if self.state is _OPEN:
                if payload:  # a zero-length frame is a keep-alive (FRM-004)
                    events.append(Frame(payload))
                continue
            try:
                if self.state is State.AWAIT_HELLO:
                    codec, peer = parse_hello(payload, self.version, self.codecs, self.mode or Mode.FRAMES)
                else:
                    if not payload:
                        raise _Violation(ErrorCode.SERIALIZATION, "a keep-alive before the welcome")
                    codec, peer = parse_welcome(payload, self.version, self.codecs)
            except _Violation as v:
                events.extend(self._refuse(v))
                return events
            if self.state is State.AWAIT_HELLO:
                self._out += frame_bytes(make_welcome(self.version, codec), self.mode or Mode.FRAMES)
                self._go(Trigger.HELLO_OK)
            else:
                self._go(Trigger.WELCOME_OK)
            self.codec, self.peer_version = codec, peer
            dec.limit = MAX_FRAME_SIZE
            events.append(HandshakeDone(codec, peer, self.mode or Mode.FRAMES))
        return events

    def _refuse(self, v: _Violation) -> list[Event]:
        """A handshake failure: the server answers with an error frame (FRM-012/013), the client not."""
        if self.role is Role.SERVER:
            self._out += frame_bytes(
                make_error(v.code, v.message, v.details or None), self.mode or Mode.FRAMES
            )
            self._go(Trigger.HELLO_BAD)
        else:
            self._go(Trigger.WELCOME_BAD)
        self.violation = ProtocolViolation(v.code, v.message, v.details, local=not v.remote)
        return [self.violation]


# ---------------------------------------------------------------- golden vectors (fixtures/framing.json)


def run_frames_vector(inp: dict[str, Any]) -> dict[str, Any]:
    """Run a ``frames`` vector's input through a bare decoder (after the handshake).

    Returns ``{"frames": [hex, ...], "state": "open"|"clean-eof"|"broken"}`` or ``{"error": CODE}``.
    """
    mode = Mode(inp.get("mode", "frames"))
    dec: Decoder = NdjsonDecoder() if mode is Mode.NDJSON else FrameDecoder()
    dec.receive_data(bytes.fromhex(inp["hex"]))
    frames: list[str] = []
    try:
        while (payload := dec.next_frame()) is not None:
            if payload:
                frames.append(payload.hex())
    except _Violation as v:
        return {"error": v.code.value}
    state = "open"
    if inp.get("eof", True):
        state = "clean-eof" if dec.buffered == 0 else "broken"
    return {"frames": frames, "state": state}


def run_handshake_vector(inp: dict[str, Any], chunks: list[bytes] | None = None) -> dict[str, Any]:
    """Run a ``handshake`` vector's input through a :class:`Connection` of the given role.

    Returns ``{"codec", "mode", "reply" | "hello", "frames", "state"}`` and, on a violation,
    ``"error"``; ``chunks`` feeds the input split (it must join to the input bytes).
    """
    role = Role(inp["role"])
    cfg = inp.get(role.value, {})
    ver = cfg.get("version", {"major": 1, "minor": 0})
    version = (ver["major"], ver["minor"])
    codecs = tuple(cfg.get("codecs", DEFAULT_CODECS))
    conn = Connection(role, codecs=codecs, version=version, mode=Mode(cfg.get("mode", "frames")))
    sent = bytearray(conn.initiate() if role is Role.CLIENT else b"")
    data = bytes.fromhex(inp["hex"])
    events: list[Event] = []
    for chunk in chunks if chunks is not None else [data]:
        events += conn.receive_data(chunk)
    if inp.get("eof", True):
        events += conn.receive_eof()
    sent += conn.data_to_send()
    out: dict[str, Any] = {
        "codec": conn.codec,
        "mode": conn.mode.value if conn.mode else None,
        "frames": [e.payload.hex() for e in events if isinstance(e, Frame)],
    }
    out["sent"] = _split_sent(bytes(sent), conn.mode or Mode.FRAMES)
    out["state"] = _VECTOR_STATE[conn.state]
    if conn.violation is not None:
        out["error"] = conn.violation.code.value
    return out


_VECTOR_STATE: Final = {
    State.START: "handshaking",
    State.AWAIT_HELLO: "handshaking",
    State.AWAIT_WELCOME: "handshaking",
    State.OPEN: "open",
    State.CLOSED: "clean-eof",
    State.BROKEN: "broken",
    State.FAILED: "failed",
    State.CLOSED_LOCAL: "closed-local",
}


def _split_sent(sent: bytes, mode: Mode) -> list[Any]:
    """The JSON objects a side sent during the handshake (hello, welcome or error frame)."""
    dec: Decoder = NdjsonDecoder() if mode is Mode.NDJSON else FrameDecoder()
    dec.receive_data(sent)
    objs: list[Any] = []
    while (p := dec.next_frame()) is not None:
        objs.append(json.loads(p))
    return objs


__all__ = [
    "DEFAULT_CODECS",
    "MAX_FRAME_SIZE",
    "MAX_HELLO_SIZE",
    "PROTOCOL_VERSION",
    "TERMINAL",
    "TRANSITIONS",
    "Connection",
    "ConnectionClosed",
    "Event",
    "Frame",
    "FrameDecoder",
    "HandshakeDone",
    "LocalProtocolError",
    "Mode",
    "NdjsonDecoder",
    "ProtocolViolation",
    "Role",
    "State",
    "Trigger",
    "format_version",
    "frame_bytes",
    "make_error",
    "make_hello",
    "make_welcome",
    "parse_hello",
    "parse_version",
    "parse_welcome",
    "run_frames_vector",
    "run_handshake_vector",
]
