"""What the suite needs from an implementation under test, whatever its language.

Messages cross this interface in their JSON data-model form (the parsed canonical JSON wire form,
``spec/message.schema.json``) and encoded messages as ``bytes``, so an in-process Python
implementation and an out-of-process one behind the driver protocol look the same to the suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .bus_testing import BusUnderTest

#: Profiles of the spec an implementation may declare (spec/requirements.json "profile").
PROFILES: tuple[str, ...] = (
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
CODECS: tuple[str, ...] = ("json", "msgpack")
#: Transports an implementation may offer an echo endpoint (and, profile ``bus-node``, a bus node)
#: on (``capabilities.transports``): the schemes the harness's raw wire client opens
#: (spec/transport.md section 4).
TRANSPORTS: tuple[str, ...] = ("unix", "fifo", "stdio")

MessageData = dict[str, Any]
"""A message in its JSON data-model form: ``{"header": {...}, "payload": ..., "metadata": {...}}``."""


@dataclass(frozen=True)
class Capabilities:
    profiles: frozenset[str]
    codecs: frozenset[str]
    transports: frozenset[str] = frozenset()
    """The schemes of :data:`TRANSPORTS` the implementation can listen on (profile ``transport``)."""

    def to_dict(self) -> dict[str, list[str]]:
        out = {"profiles": sorted(self.profiles), "codecs": sorted(self.codecs)}
        if self.transports:
            out["transports"] = sorted(self.transports)
        return out


@dataclass(frozen=True)
class ImplInfo:
    """Who the implementation under test says it is (the driver handshake's answer)."""

    name: str
    version: str
    language: str
    spec_version: str
    capabilities: Capabilities
    extra: Mapping[str, Any] = field(default_factory=dict)


class ImplError(Exception):
    """The implementation reported a protocol error with one of the spec's codes (an expected outcome).

    ``category`` and ``recoverable`` are ``None`` when the implementation did not report them;
    when given, the suite checks them against the spec's error table (ERR-001).
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        details: Mapping[str, Any] | None = None,
        *,
        category: str | None = None,
        recoverable: bool | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.category = category
        self.recoverable = recoverable


class ImplSkipped(Exception):
    """The implementation declined an operation it does not support; the case is skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImplBroken(Exception):
    """The implementation misbehaved (timeout, crash, garbage, schema-invalid answer, lie).

    The case is *errored*, not failed; ``evidence`` holds what the report shows (request,
    response, stderr tail, ...).
    """

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence = dict(evidence or {})


@runtime_checkable
class Implementation(Protocol):
    """The operations the conformance suite drives. Every method may raise :class:`ImplError`
    (a protocol error the spec defines), :class:`ImplSkipped` or :class:`ImplBroken`.
    """

    @property
    def info(self) -> ImplInfo: ...

    def set_clock(self, now_ns: int) -> None:
        """Fix the implementation's notion of now (ns since the epoch) for build/receive."""

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        """Build a message with the implementation's builder. ``fields`` may hold
        ``message_type``, ``source``, ``target``, ``payload``, ``priority``, ``ttl``
        (``{"secs", "nanos"}``), ``correlation_id`` and ``metadata`` (an object); absent ones are
        not set on the builder. Id and timestamp come from the implementation (its clock)."""
        ...

    def encode(self, codec: str, message: MessageData) -> bytes:
        """Encode ``message`` with ``codec`` (``json`` or ``msgpack``)."""
        ...

    def decode(self, codec: str, data: bytes) -> MessageData:
        """Decode ``data`` with ``codec``; a rejected input raises :class:`ImplError`."""
        ...

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        """Decode, then apply a receiver's checks at ``receiver_version`` and the clock's now
        (version, then TTL: INVALID_PROTOCOL_VERSION, TTL_EXPIRED)."""
        ...

    def order(self, messages: Sequence[MessageData]) -> list[int]:
        """Given messages in arrival order, return their indices in processing order."""
        ...

    def is_expired(self, message: MessageData, now_ns: int) -> bool: ...

    def is_compatible(self, a: tuple[int, int], b: tuple[int, int]) -> bool: ...

    def expects_response(self, message_type: str) -> bool: ...

    def close(self) -> None:
        """Free every resource; safe to call twice."""


@dataclass(frozen=True)
class Endpoint:
    """A running echo endpoint of an implementation (spec/transport.md section 4 addresses)."""

    address: str
    pid: int | None = None
    """The process serving it, when known: the suite counts its file descriptors (TRN-016)."""


@runtime_checkable
class TransportImplementation(Protocol):
    """What an implementation declaring the profile ``transport`` offers besides
    :class:`Implementation` (optional: an implementation without these methods declines the
    transport tests). Bytes are ``bytes``; a refusal is an :class:`ImplError` with the spec's code.
    """

    def frames(self, data: bytes, *, eof: bool, mode: str) -> dict[str, Any]:
        """Feed ``data`` (the bytes after the handshake) to a frame decoder in ``mode``
        (``frames`` or ``ndjson``), then the end of stream if ``eof``; return ``{"frames":
        [bytes, ...], "state": "open" | "clean-eof" | "broken"}`` (keep-alives excluded), or raise
        :class:`ImplError` (``MESSAGE_TOO_LARGE``) when the decoder refuses."""
        ...

    def handshake(self, role: str, config: Mapping[str, Any], data: bytes, *, eof: bool) -> dict[str, Any]:
        """Run a fresh connection of ``role`` (``client`` or ``server``, configured by ``config``:
        ``version``, ``codecs``, ``mode``) on ``data`` received from the peer; return ``{"codec",
        "mode", "sent": [JSON objects written], "frames": [bytes, ...], "state"}`` plus ``"error"``
        (a code) when it refused (docs/vectors-format.md, operation ``handshake``)."""
        ...

    def listen(
        self, scheme: str, security: Mapping[str, Any] | None = None, *, role: str = "echo"
    ) -> Endpoint:
        """Start an echo endpoint on ``scheme`` (one of ``capabilities.transports``) and return its
        address; it runs until :meth:`Implementation.close`. Raise :class:`ImplSkipped` for a
        scheme it does not offer. ``security`` (profile ``security``): the limits it enforces, the
        driver's ``listen`` member of the same name (``SecurityConfig.to_wire``). ``role``
        ``bus-node`` (profile ``bus-node``): a bus node of spec/bus.md section 14 with the default
        limits instead of an echo endpoint (an implementation whose ``listen`` takes no ``role``
        declines the bus-node checks)."""
        ...


@runtime_checkable
class BusImplementation(Protocol):
    """What an implementation declaring the profile ``bus`` offers besides :class:`Implementation`
    (optional: one without it declines the bus tests). The suite runs the state machine of
    :mod:`symphony_conformance.bus_testing` and targeted tests on the buses it hands out.
    """

    def new_bus(self) -> BusUnderTest:
        """A fresh bus (one per state-machine sequence: the driver command ``bus_reset``) behind
        the operations of spec/bus.md section 13; a refusal is an :class:`ImplError` with the
        spec's code. Only the latest bus is in use at any time."""
        ...
