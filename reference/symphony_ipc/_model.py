"""The message envelope of seed 000: types, validation and the fluent builder."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from time import time_ns as _time_ns
from typing import Annotated, Any, Final

import msgspec

from . import _ids
from ._errors import (
    InvalidEndpointId,
    InvalidMessageType,
    InvalidMetadataKey,
    InvalidPriority,
    InvalidProtocolVersion,
    MissingField,
    SerializationError,
)
from ._ids import new_id, parse_uuid
from ._time import NS, SYSTEM_CLOCK, Clock, Timestamp

# Bounds msgspec checks when the JSON codec decodes straight into these types (constructors do not
# check them: the builder and the encoders do).
_U16 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
_PRIORITY = Annotated[int, msgspec.Meta(ge=-1000, le=1000)]


class MessageType(StrEnum):
    REQUEST = "Request"
    RESPONSE = "Response"
    EVENT = "Event"
    ERROR = "Error"
    HEARTBEAT = "Heartbeat"

    @property
    def expects_response(self) -> bool:
        """Only a ``Request`` expects a response (ENV-008)."""
        return self is MessageType.REQUEST


_TYPES: Final = {t.value: t for t in MessageType}
RESPONSE: Final = MessageType.RESPONSE  # for hot paths: an Enum class attribute is a slow lookup


class Priority:
    """Named priority levels (PRI-001) and the accepted range (PRI-002)."""

    CRITICAL: Final = 1000
    HIGH: Final = 100
    NORMAL: Final = 0
    LOW: Final = -100
    BACKGROUND: Final = -1000
    MIN: Final = -1000
    MAX: Final = 1000

    @staticmethod
    def custom(level: int) -> int:
        """Return ``level`` if it is a valid priority, else raise :class:`InvalidPriority`."""
        if type(level) is not int:
            raise SerializationError(f"priority {level!r} is not an integer")  # PRI-002
        if not -1000 <= level <= 1000:
            raise InvalidPriority(f"priority {level!r} is outside [-1000, 1000]", priority=level)
        return level


class Ttl(msgspec.Struct, frozen=True, gc=False):
    """A duration as the crate's ``std::time::Duration`` serializes it."""

    secs: Annotated[int, msgspec.Meta(ge=0)]
    nanos: Annotated[int, msgspec.Meta(ge=0, le=NS - 1)] = 0

    @property
    def total_ns(self) -> int:
        return self.secs * NS + self.nanos

    @classmethod
    def from_ns(cls, ns: int) -> Ttl:
        return cls(*divmod(ns, NS))

    @classmethod
    def from_seconds(cls, seconds: float) -> Ttl:
        return cls.from_ns(round(seconds * NS))


class ProtocolVersion(msgspec.Struct, frozen=True, gc=False):
    major: _U16
    minor: _U16

    def is_compatible(self, other: ProtocolVersion) -> bool:
        """Same major = compatible (VER-002)."""
        return self.major == other.major

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


CURRENT_VERSION: Final = ProtocolVersion(1, 0)


class Header(msgspec.Struct, frozen=True, gc=False):
    """The nine header members, in wire order."""

    id: str
    correlation_id: str | None
    message_type: MessageType
    source: str
    target: str
    timestamp: Timestamp
    ttl: Ttl | None
    priority: _PRIORITY
    version: ProtocolVersion

    @property
    def expires_at_ns(self) -> int | None:
        return None if self.ttl is None else self.timestamp.ns + self.ttl.secs * NS + self.ttl.nanos


class Message(msgspec.Struct, frozen=True, gc=False):
    header: Header
    payload: Any
    metadata: dict[str, Any]

    @staticmethod
    def builder() -> MessageBuilder:
        return MessageBuilder()

    def is_expired(self, now_ns: int | None = None, clock: Clock = SYSTEM_CLOCK) -> bool:
        """TTL-002: expired exactly when ``now - timestamp > ttl`` (exact integer nanoseconds)."""
        ttl = self.header.ttl
        if ttl is None:
            return False
        now = clock.now_ns() if now_ns is None else now_ns
        return now - self.header.timestamp.ns > ttl.secs * NS + ttl.nanos

    def check_version(self, receiver: ProtocolVersion = CURRENT_VERSION) -> None:
        """VER-003: raise :class:`InvalidProtocolVersion` for a different major."""
        v = self.header.version
        if v.major != receiver.major:
            raise InvalidProtocolVersion(v.major, v.minor)


ENDPOINT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
METADATA_KEY_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
# ^...$ is the schemas' (ECMAScript) spelling; in Python fullmatch avoids "$" matching before "\n".
_endpoint = re.compile(ENDPOINT_ID_PATTERN[1:-1]).fullmatch
_meta_key = re.compile(METADATA_KEY_PATTERN[1:-1]).fullmatch

# Valid endpoint ids and metadata keys seen lately (exact ``str`` only). A program talks to a few
# endpoints and uses a few keys, so a set lookup replaces the regex on the hot paths (creation,
# encoding, decoding); the bound keeps a stream of one-off ids from growing it without limit.
_KNOWN_MAX = 1024
good_endpoints: set[str] = set()
good_metadata_keys: set[str] = set()


def endpoint_ok(value: str) -> bool:
    """Is the ``str`` ``value`` a valid endpoint id? (cached; the caller checks the type)"""
    if value in good_endpoints:
        return True
    if _endpoint(value) is None:
        return False
    if len(good_endpoints) >= _KNOWN_MAX:
        good_endpoints.clear()
    good_endpoints.add(value)
    return True


def metadata_key_ok(key: str) -> bool:
    """Is the ``str`` ``key`` a valid metadata key? (cached; the caller checks the type)"""
    if key in good_metadata_keys:
        return True
    if _meta_key(key) is None:
        return False
    if len(good_metadata_keys) >= _KNOWN_MAX:
        good_metadata_keys.clear()
    good_metadata_keys.add(key)
    return True


def check_endpoint(value: object, field: str = "endpoint") -> str:
    if type(value) is not str:
        if isinstance(value, str):
            value = str(value)
        else:
            raise SerializationError(f"{field}: expected a string, got {type(value).__name__}", field=field)
    if value not in good_endpoints and not endpoint_ok(value):
        raise InvalidEndpointId(f"{field}: {value!r} is not a valid endpoint id", field=field)
    return value


def check_metadata_key(key: object) -> str:
    if not isinstance(key, str):
        raise SerializationError(f"metadata key {key!r} is not a string")
    if key not in good_metadata_keys and not metadata_key_ok(key):
        raise InvalidMetadataKey(f"metadata key {key!r} is not valid", key=str(key))
    return key


def check_message_type(value: object) -> MessageType:
    if isinstance(value, MessageType):
        return value
    if not isinstance(value, str):
        raise SerializationError(f"message_type: expected a string, got {type(value).__name__}")
    t = _TYPES.get(value)
    if t is None:
        raise InvalidMessageType(f"message_type: {value!r} is not a message type", value=value)
    return t


_NO_METADATA: Final[dict[str, Any]] = {}  # shared by builders until metadata() is called: never mutated


class MessageBuilder:
    """Fluent builder (seed 000); ``build()`` reports the first missing field (ENV-011)."""

    __slots__ = (
        "_clock",
        "_correlation_id",
        "_id",
        "_metadata",
        "_payload",
        "_priority",
        "_source",
        "_target",
        "_timestamp",
        "_ttl",
        "_type",
        "_version",
    )

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._type: MessageType | None = None
        self._source: str | None = None
        self._target: str | None = None
        self._payload: Any = None
        self._priority = 0
        self._ttl: Ttl | None = None
        self._correlation_id: str | None = None
        self._metadata = _NO_METADATA
        self._clock = clock
        self._version = CURRENT_VERSION
        self._id: str | None = None
        self._timestamp: Timestamp | None = None

    def message_type(self, value: MessageType | str) -> MessageBuilder:
        self._type = value if type(value) is MessageType else check_message_type(value)
        return self

    # known-good endpoint ids are a set lookup; anything else gets the full check
    def source(self, value: str) -> MessageBuilder:
        ok = type(value) is str and value in good_endpoints
        self._source = value if ok else check_endpoint(value, "source")
        return self

    def target(self, value: str) -> MessageBuilder:
        ok = type(value) is str and value in good_endpoints
        self._target = value if ok else check_endpoint(value, "target")
        return self

    def payload(self, value: Any) -> MessageBuilder:
        self._payload = value
        return self

    def priority(self, value: int) -> MessageBuilder:
        self._priority = Priority.custom(value)
        return self

    def ttl(self, value: Ttl | float | None) -> MessageBuilder:
        """A :class:`Ttl`, or seconds as a number."""
        if value is None or isinstance(value, Ttl):
            self._ttl = value
        else:
            if not value >= 0 or value == math.inf:  # "not >=" also catches NaN
                raise SerializationError(f"ttl: {value!r} is not a finite non-negative duration")
            self._ttl = Ttl.from_seconds(value)
        return self

    def correlation_id(self, value: str | None) -> MessageBuilder:
        self._correlation_id = None if value is None else parse_uuid(value, "correlation_id")
        return self

    def metadata(self, key: str, value: Any) -> MessageBuilder:
        key = check_metadata_key(key)
        if self._metadata is _NO_METADATA:
            self._metadata = {}
        self._metadata[key] = value
        return self

    def clock(self, clock: Clock) -> MessageBuilder:
        self._clock = clock
        return self

    def version(self, value: ProtocolVersion) -> MessageBuilder:
        self._version = value
        return self

    def id(self, value: str) -> MessageBuilder:
        """Fix the id (tests, replays); by default a fresh one is drawn."""
        self._id = parse_uuid(value, "id")
        return self

    def timestamp(self, value: Timestamp | int) -> MessageBuilder:
        """Fix the timestamp (ns or :class:`Timestamp`); by default the clock's now."""
        self._timestamp = value if isinstance(value, Timestamp) else Timestamp(value)
        return self

    def build(self) -> Message:
        if self._type is None:
            raise MissingField("message_type")
        if self._source is None:
            raise MissingField("source")
        if self._target is None:
            raise MissingField("target")
        if self._type is RESPONSE and self._correlation_id is None:
            raise MissingField("correlation_id", "a Response needs a correlation_id")
        meta = self._metadata
        mid = self._id
        if mid is None:
            try:
                mid = _ids._next()  # new_id() without its frame
            except StopIteration:
                mid = new_id()
        return Message(
            Header(
                mid,
                self._correlation_id,
                self._type,
                self._source,
                self._target,
                self._timestamp
                or Timestamp(_time_ns() if self._clock is SYSTEM_CLOCK else self._clock.now_ns()),
                self._ttl,
                self._priority,
                self._version,
            ),
            self._payload,
            dict(meta) if meta else {},
        )


def new_message(
    message_type: MessageType,
    source: str,
    target: str,
    payload: Any = None,
    *,
    priority: int = 0,
    ttl: Ttl | None = None,
    correlation_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Message:
    """Create a message in one call (the fast path; arguments are trusted to be well-typed).

    Endpoint ids and the priority are still checked; use the builder for full checking.
    """
    if source not in good_endpoints:
        check_endpoint(source, "source")
    if target not in good_endpoints:
        check_endpoint(target, "target")
    if priority and not -1000 <= priority <= 1000:
        Priority.custom(priority)
    if message_type is RESPONSE and correlation_id is None:
        raise MissingField("correlation_id", "a Response needs a correlation_id")
    try:
        mid = _ids._next()  # new_id() without its frame
    except StopIteration:
        mid = new_id()
    return Message(
        Header(
            mid,
            correlation_id,
            message_type,
            source,
            target,
            Timestamp(_time_ns() if clock is SYSTEM_CLOCK else clock.now_ns()),
            ttl,
            priority,
            CURRENT_VERSION,
        ),
        payload,
        metadata if metadata is not None else {},
    )
