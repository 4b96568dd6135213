"""The seeded-fault catalogue: the reference with one behaviour broken on purpose.

Each mutant is a module-level factory registered in :data:`CATALOGUE` with the profile it
belongs to and the requirement ids it breaks. A conformance run against a mutant must not pass,
and must name those requirements: that is how the suite's power to catch faults is checked::

    symphony-conformance run --profile priority \\
        --impl python:symphony_conformance.mutants:lifo_within_priority

``symphony-conformance selftest`` runs the suite against every mutant (its profile only) and
checks that each is caught by a failing case of every requirement it declares.

To add one: subclass :class:`MutantImplementation`, override one behaviour, and register a
factory with :func:`mutant`.
"""

from __future__ import annotations

import calendar
import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

import msgpack

from ._adapters import ReferenceImplementation
from ._data import NS, canonical_timestamp, timestamp_ns
from ._impl import Implementation, ImplError, ImplInfo, MessageData

__all__ = [
    "CATALOGUE",
    "Mutant",
    "MutantImplementation",
    "lifo_within_priority",
    "mutant",
    "response_without_correlation_id",
    "ttl_expired_at_boundary",
    "uppercase_uuids_in_json",
]


@dataclass(frozen=True)
class Mutant:
    """One seeded fault: what it breaks and how to build it."""

    name: str
    profile: str
    """The profile whose tests must catch it (run with ``--profile``)."""
    breaks: tuple[str, ...]
    """The requirement ids a run must report as failed."""
    description: str
    factory: Callable[[], Implementation] = field(compare=False, repr=False)

    @property
    def impl_spec(self) -> str:
        """The ``--impl`` that loads this mutant."""
        return f"python:{getattr(self.factory, '__module__', __name__)}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profile": self.profile,
            "breaks": list(self.breaks),
            "description": self.description,
            "impl": self.impl_spec,
        }


CATALOGUE: dict[str, Mutant] = {}
"""Every registered mutant, by name."""

F = TypeVar("F", bound=Callable[[], Implementation])


def mutant(*, profile: str, breaks: Sequence[str], description: str) -> Callable[[F], F]:
    """Register a factory (named after the mutant) in :data:`CATALOGUE`."""

    def register(factory: F) -> F:
        name = factory.__name__
        if name in CATALOGUE:
            raise ValueError(f"mutant {name!r} is registered twice")
        CATALOGUE[name] = Mutant(name, profile, tuple(breaks), description, factory)
        return factory

    return register


class MutantImplementation(ReferenceImplementation):
    """The reference under another name; subclasses override exactly one behaviour."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.mutant_name = name

    @property
    def info(self) -> ImplInfo:
        base = super().info
        return replace(base, name=f"mutant {self.mutant_name} (of the reference)")


# ---------------------------------------------------------------- priority


class _LifoWithinPriority(MutantImplementation):
    def order(self, messages: Sequence[MessageData]) -> list[int]:
        prios = [self._message(m).header.priority for m in messages]
        return sorted(range(len(messages)), key=lambda i: (-prios[i], -i))


@mutant(
    profile="priority",
    breaks=["PRI-004"],
    description="messages of equal priority are processed last in, first out",
)
def lifo_within_priority() -> Implementation:
    return _LifoWithinPriority("lifo_within_priority")


# ---------------------------------------------------------------- ttl


def _at_boundary(message: MessageData, now_ns: int) -> bool:
    header = message["header"]
    ttl = header.get("ttl")
    if ttl is None:
        return False
    ttl_ns: int = ttl["secs"] * NS + ttl["nanos"]
    return now_ns - timestamp_ns(header["timestamp"]) == ttl_ns


class _TtlExpiredAtBoundary(MutantImplementation):
    def is_expired(self, message: MessageData, now_ns: int) -> bool:
        return super().is_expired(message, now_ns) or _at_boundary(message, now_ns)

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        got = super().receive(codec, data, receiver_version)
        if _at_boundary(got, self._clock.now_ns()):
            raise ImplError("TTL_EXPIRED", "expired (at the boundary)", category="expiry", recoverable=True)
        return got


@mutant(
    profile="ttl",
    breaks=["TTL-002"],
    description="a message is expired at exactly timestamp + ttl (>= instead of >)",
)
def ttl_expired_at_boundary() -> Implementation:
    return _TtlExpiredAtBoundary("ttl_expired_at_boundary")


# ---------------------------------------------------------------- envelope

_PLACEHOLDER: Final = "00000000-0000-4000-8000-000000000000"


def _missing_correlation_id(err: ImplError) -> bool:
    return err.code == "MISSING_FIELD" and str(err.details.get("field", "")).endswith("correlation_id")


def _with_placeholder(codec: str, data: bytes) -> bytes | None:
    """``data`` with a correlation id put in, or None when it cannot be parsed."""
    try:
        if codec == "json":
            obj = json.loads(data)
            obj["header"]["correlation_id"] = _PLACEHOLDER
            return json.dumps(obj, ensure_ascii=False).encode("utf-8")
        arr = msgpack.unpackb(data, raw=False, timestamp=0, strict_map_key=False)
        arr[0][1] = bytes(16)
        packed: bytes = msgpack.packb(arr, use_bin_type=True)
        return packed
    except Exception:
        return None


class _ResponseWithoutCorrelationId(MutantImplementation):
    def _lenient(self, codec: str, data: bytes, run: Callable[[bytes], MessageData]) -> MessageData:
        try:
            return run(data)
        except ImplError as e:
            patched = _with_placeholder(codec, data) if _missing_correlation_id(e) else None
            if patched is None:
                raise
        got = run(patched)
        got["header"]["correlation_id"] = None
        return got

    def decode(self, codec: str, data: bytes) -> MessageData:
        return self._lenient(codec, data, lambda d: ReferenceImplementation.decode(self, codec, d))

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        return self._lenient(
            codec, data, lambda d: ReferenceImplementation.receive(self, codec, d, receiver_version)
        )

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        if fields.get("message_type") == "Response" and fields.get("correlation_id") is None:
            got = super().build({**fields, "correlation_id": _PLACEHOLDER})
            got["header"]["correlation_id"] = None
            return got
        return super().build(fields)


@mutant(
    profile="envelope",
    breaks=["ENV-007"],
    description="a Response without correlation_id is accepted by the builder and the decoders",
)
def response_without_correlation_id() -> Implementation:
    return _ResponseWithoutCorrelationId("response_without_correlation_id")


# ---------------------------------------------------------------- codec-json


class _UppercaseUuidsInJson(MutantImplementation):
    def encode(self, codec: str, message: MessageData) -> bytes:
        out = super().encode(codec, message)
        if codec != "json":
            return out
        obj = json.loads(out)
        header = obj["header"]
        header["id"] = header["id"].upper()
        if header["correlation_id"] is not None:
            header["correlation_id"] = header["correlation_id"].upper()
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@mutant(
    profile="codec-json",
    breaks=["COD-001"],
    description="the JSON encoder writes upper-case UUIDs (a tolerated spelling, not the canonical one)",
)
def uppercase_uuids_in_json() -> Implementation:
    return _UppercaseUuidsInJson("uppercase_uuids_in_json")


# ---------------------------------------------------------------- helpers of the mutants below

_TYPES: Final = ("Request", "Response", "Event", "Error", "Heartbeat")
_MAX_SIZE: Final = 16 * 1024 * 1024
_CONSTANT_ID: Final = "6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
_KNOWN_MEMBERS: Final = {
    "message": {"header", "payload", "metadata"},
    "header": {
        "id",
        "correlation_id",
        "message_type",
        "source",
        "target",
        "timestamp",
        "ttl",
        "priority",
        "version",
    },
}

Undo = Callable[[MessageData], None]


def _json_doc(data: bytes) -> dict[str, Any] | None:
    """``data`` parsed leniently (Python's json), or None when it is not a JSON object message."""
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("header"), dict):
        return None
    return doc


def _dump(doc: Any) -> bytes | None:
    try:
        return json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError, RecursionError):
        return None


def _error(code: str, message: str, category: str, recoverable: bool = True) -> ImplError:
    return ImplError(code, message, category=category, recoverable=recoverable)


class _LenientJson(MutantImplementation):
    """A JSON decoder that accepts one kind of fault: when the reference rejects the input,
    :meth:`patch` may fix the parsed document (returning how to put the fault back into the
    decoded message) and the fixed document is decoded instead."""

    def patch(self, doc: dict[str, Any], err: ImplError) -> Undo | None:
        raise NotImplementedError

    def _lenient(self, codec: str, data: bytes, run: Callable[[bytes], MessageData]) -> MessageData:
        try:
            return run(data)
        except ImplError as e:
            doc = _json_doc(data) if codec == "json" else None
            undo = self.patch(doc, e) if doc is not None else None
            fixed = _dump(doc) if undo is not None else None
            if fixed is None or undo is None:
                raise
        got = run(fixed)
        undo(got)
        return got

    def decode(self, codec: str, data: bytes) -> MessageData:
        return self._lenient(codec, data, lambda d: ReferenceImplementation.decode(self, codec, d))

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        return self._lenient(
            codec, data, lambda d: ReferenceImplementation.receive(self, codec, d, receiver_version)
        )


def _set_header(name: str, value: Any) -> Undo:
    def undo(got: MessageData) -> None:
        got["header"][name] = value

    return undo


def _walk_numbers(value: Any, fn: Callable[[int], Any]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return fn(value)
    if isinstance(value, list):
        return [_walk_numbers(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _walk_numbers(v, fn) for k, v in value.items()}
    return value


def _ttl_ns(header: Mapping[str, Any]) -> int | None:
    ttl = header.get("ttl")
    return None if ttl is None else int(ttl["secs"]) * NS + int(ttl["nanos"])


def _expired_error() -> ImplError:
    return _error("TTL_EXPIRED", "the message has expired", "expiry")


class _ExpiryRule(MutantImplementation):
    """A mutant whose expiry rule (``is_expired``) the receiver applies too."""

    def expired(self, header: Mapping[str, Any], now_ns: int) -> bool:
        raise NotImplementedError

    def is_expired(self, message: MessageData, now_ns: int) -> bool:
        super().is_expired(message, now_ns)  # the reference's checks of the message itself
        return self.expired(message["header"], now_ns)

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        try:
            got = super().receive(codec, data, receiver_version)
        except ImplError as e:
            if e.code != "TTL_EXPIRED":
                raise
            got = self.decode(codec, data)
        if self.expired(got["header"], self._clock.now_ns()):
            raise _expired_error()
        return got


def _unpacked(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, timestamp=0, strict_map_key=False)


def _packed(obj: Any, **options: Any) -> bytes:
    out: bytes = msgpack.packb(obj, use_bin_type=True, **options)
    return out


# ---------------------------------------------------------------- envelope


class _AcceptsEmptyEndpoint(_LenientJson):
    def patch(self, doc: dict[str, Any], err: ImplError) -> Undo | None:
        header = doc["header"]
        for name in ("source", "target"):
            if err.code == "INVALID_ENDPOINT_ID" and header.get(name) == "":
                header[name] = "x"
                return _set_header(name, "")
        return None

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        empty = [n for n in ("source", "target") if fields.get(n) == ""]
        got = super().build({**fields, **dict.fromkeys(empty, "x")})
        for name in empty:
            got["header"][name] = ""
        return got


@mutant(profile="envelope", breaks=["ENV-005"], description="an empty source or target is accepted")
def accepts_empty_endpoint() -> Implementation:
    return _AcceptsEmptyEndpoint("accepts_empty_endpoint")


class _Accepts129CharEndpoint(_LenientJson):
    def patch(self, doc: dict[str, Any], err: ImplError) -> Undo | None:
        header = doc["header"]
        for name in ("source", "target"):
            value = header.get(name)
            if err.code == "INVALID_ENDPOINT_ID" and isinstance(value, str) and len(value) == 129:
                header[name] = value[:128]
                return _set_header(name, value)
        return None

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        long = {n: v for n in ("source", "target") if isinstance(v := fields.get(n), str) and len(v) == 129}
        got = super().build({**fields, **{n: v[:128] for n, v in long.items()}})
        for name, value in long.items():
            got["header"][name] = value
        return got


@mutant(
    profile="envelope",
    breaks=["ENV-005"],
    description="endpoint ids of 129 characters are accepted (length checked with <= 129)",
)
def accepts_129_char_endpoint() -> Implementation:
    return _Accepts129CharEndpoint("accepts_129_char_endpoint")


class _UuidErrorAsSerialization(MutantImplementation):
    @staticmethod
    def _renamed(e: ImplError) -> ImplError:
        if e.code != "UUID_PARSE":
            return e
        return ImplError("SERIALIZATION", e.message, e.details, category="serialization", recoverable=True)

    def decode(self, codec: str, data: bytes) -> MessageData:
        try:
            return super().decode(codec, data)
        except ImplError as e:
            raise self._renamed(e) from None

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        try:
            return super().receive(codec, data, receiver_version)
        except ImplError as e:
            raise self._renamed(e) from None

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        try:
            return super().build(fields)
        except ImplError as e:
            raise self._renamed(e) from None


@mutant(
    profile="envelope",
    breaks=["ENV-006"],
    description="a malformed UUID is reported as SERIALIZATION instead of UUID_PARSE",
)
def uuid_error_as_serialization() -> Implementation:
    return _UuidErrorAsSerialization("uuid_error_as_serialization")


class _BuilderDefaultsMissingTarget(MutantImplementation):
    def build(self, fields: Mapping[str, Any]) -> MessageData:
        if "target" not in fields and "message_type" in fields and "source" in fields:
            fields = {**fields, "target": fields["source"]}
        return super().build(fields)


@mutant(
    profile="envelope",
    breaks=["ENV-011"],
    description="the builder does not report a missing target (it sends the message back to its source)",
)
def builder_defaults_missing_target() -> Implementation:
    return _BuilderDefaultsMissingTarget("builder_defaults_missing_target")


class _ConstantBuildId(MutantImplementation):
    def build(self, fields: Mapping[str, Any]) -> MessageData:
        got = super().build(fields)
        got["header"]["id"] = _CONSTANT_ID
        return got


@mutant(
    profile="envelope", breaks=["ENV-003"], description="the builder stamps every message with the same id"
)
def constant_build_id() -> Implementation:
    return _ConstantBuildId("constant_build_id")


class _MessageTypeCaseInsensitive(_LenientJson):
    def patch(self, doc: dict[str, Any], err: ImplError) -> Undo | None:
        header = doc["header"]
        given = header.get("message_type")
        canonical = {t.lower(): t for t in _TYPES}.get(given.lower()) if isinstance(given, str) else None
        if err.code != "INVALID_MESSAGE_TYPE" or canonical is None:
            return None
        header["message_type"] = canonical
        return lambda got: None

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        given = fields.get("message_type")
        if isinstance(given, str):
            fields = {**fields, "message_type": {t.lower(): t for t in _TYPES}.get(given.lower(), given)}
        return super().build(fields)


@mutant(
    profile="envelope",
    breaks=["ENV-004"],
    description="message types are matched case-insensitively ('request' is a Request)",
)
def message_type_case_insensitive() -> Implementation:
    return _MessageTypeCaseInsensitive("message_type_case_insensitive")


class _SizeLimitInclusive(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        if len(data) >= _MAX_SIZE:
            raise _error("MESSAGE_TOO_LARGE", f"message is {len(data)} bytes", "resource")
        return super().decode(codec, data)


@mutant(
    profile="envelope",
    breaks=["ENV-013"],
    description="a message of exactly 16 MiB is rejected (size checked with >= instead of >)",
)
def size_limit_inclusive() -> Implementation:
    return _SizeLimitInclusive("size_limit_inclusive")


class _ResponseExpectsResponse(MutantImplementation):
    def expects_response(self, message_type: str) -> bool:
        return super().expects_response(message_type) or message_type == "Response"


@mutant(profile="envelope", breaks=["ENV-008"], description="a Response is said to expect a response")
def response_expects_response() -> Implementation:
    return _ResponseExpectsResponse("response_expects_response")


class _PriorityCheckedBeforeEndpoints(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        try:
            return super().decode(codec, data)
        except ImplError as e:
            doc = _json_doc(data) if codec == "json" and e.code == "INVALID_ENDPOINT_ID" else None
            prio = doc["header"].get("priority") if doc is not None else None
            if type(prio) is int and not -1000 <= prio <= 1000:
                raise _error("INVALID_PRIORITY", f"priority {prio} is out of range", "validation") from None
            raise


@mutant(
    profile="envelope",
    breaks=["ERR-002"],
    description="with several faults, a bad priority is reported before a bad endpoint id",
)
def priority_checked_before_endpoints() -> Implementation:
    return _PriorityCheckedBeforeEndpoints("priority_checked_before_endpoints")


class _WrongErrorCategory(MutantImplementation):
    @staticmethod
    def _recategorised(e: ImplError) -> ImplError:
        if e.code != "INVALID_PRIORITY":
            return e
        return ImplError(e.code, e.message, e.details, category="serialization", recoverable=False)

    def decode(self, codec: str, data: bytes) -> MessageData:
        try:
            return super().decode(codec, data)
        except ImplError as e:
            raise self._recategorised(e) from None

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        try:
            return super().build(fields)
        except ImplError as e:
            raise self._recategorised(e) from None


@mutant(
    profile="envelope",
    breaks=["ERR-001"],
    description="INVALID_PRIORITY is reported with category serialization, not recoverable",
)
def wrong_error_category() -> Implementation:
    return _WrongErrorCategory("wrong_error_category")


class _DropsDottedMetadataKeys(MutantImplementation):
    @staticmethod
    def _dropped(got: MessageData) -> MessageData:
        got["metadata"] = {k: v for k, v in got["metadata"].items() if "." not in k and "-" not in k}
        return got

    def decode(self, codec: str, data: bytes) -> MessageData:
        return self._dropped(super().decode(codec, data))

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        return self._dropped(super().receive(codec, data, receiver_version))


@mutant(
    profile="envelope",
    breaks=["ENV-009"],
    description="the decoder drops metadata entries whose (valid) key has a '.' or a '-'",
)
def drops_unknown_metadata_entries() -> Implementation:
    return _DropsDottedMetadataKeys("drops_unknown_metadata_entries")


# ---------------------------------------------------------------- codec-json


class _JsonEncoderRewrite(MutantImplementation):
    """A JSON encoder whose output's header timestamp is rewritten."""

    def timestamp(self, ns: int) -> str:
        raise NotImplementedError

    def encode(self, codec: str, message: MessageData) -> bytes:
        out = super().encode(codec, message)
        if codec != "json":
            return out
        obj = json.loads(out)
        obj["header"]["timestamp"] = self.timestamp(timestamp_ns(obj["header"]["timestamp"]))
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _JsonTimestampMicroseconds(_JsonEncoderRewrite):
    def timestamp(self, ns: int) -> str:
        return canonical_timestamp(ns - ns % 1000)


@mutant(
    profile="codec-json",
    breaks=["COD-001", "COD-003"],
    description="the JSON encoder truncates timestamps to microseconds",
)
def json_timestamp_microseconds() -> Implementation:
    return _JsonTimestampMicroseconds("json_timestamp_microseconds")


class _SevenFractionDigits(_JsonEncoderRewrite):
    def timestamp(self, ns: int) -> str:
        secs, frac = divmod(ns, NS)
        return canonical_timestamp(secs * NS)[:-1] + f".{frac // 100:07d}Z"


@mutant(
    profile="codec-json",
    breaks=["COD-001"],
    description="the JSON encoder writes 7 fraction digits (not 0, 3, 6 or 9)",
)
def emits_seven_fraction_digits() -> Implementation:
    return _SevenFractionDigits("emits_seven_fraction_digits")


class _JsonAcceptsTrailingBytes(MutantImplementation):
    def _prefix(self, codec: str, data: bytes) -> bytes | None:
        if codec != "json":
            return None
        try:
            text = bytes(data).decode("utf-8")
            _, end = json.JSONDecoder().raw_decode(text.lstrip())
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        start = len(text) - len(text.lstrip())
        return text[: start + end].encode("utf-8") if text[start + end :].strip() else None

    def decode(self, codec: str, data: bytes) -> MessageData:
        try:
            return super().decode(codec, data)
        except ImplError:
            prefix = self._prefix(codec, data)
            if prefix is None:
                raise
        return super().decode(codec, prefix)


@mutant(
    profile="codec-json",
    breaks=["COD-004"],
    description="the JSON decoder ignores bytes after the message",
)
def json_accepts_trailing_bytes() -> Implementation:
    return _JsonAcceptsTrailingBytes("json_accepts_trailing_bytes")


_NON_FINITE: Final = re.compile(rb'(?<![\w"])-?(?:NaN|Infinity)(?![\w"])')


class _JsonAcceptsNan(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        try:
            return super().decode(codec, data)
        except ImplError:
            if codec != "json" or _NON_FINITE.search(data) is None:
                raise
        return super().decode(codec, _NON_FINITE.sub(b"null", data))


@mutant(
    profile="codec-json",
    breaks=["COD-004"],
    description="the JSON decoder accepts NaN and Infinity (as null)",
)
def json_accepts_nan() -> Implementation:
    return _JsonAcceptsNan("json_accepts_nan")


class _JsonBigIntsAsDoubles(MutantImplementation):
    @staticmethod
    def _doubles(got: MessageData) -> MessageData:
        def lossy(n: int) -> Any:
            return float(n) if abs(n) > 2**53 else n

        got["payload"] = _walk_numbers(got["payload"], lossy)
        got["metadata"] = _walk_numbers(got["metadata"], lossy)
        return got

    def decode(self, codec: str, data: bytes) -> MessageData:
        got = super().decode(codec, data)
        return self._doubles(got) if codec == "json" else got


@mutant(
    profile="codec-json",
    breaks=["COD-008"],
    description="the JSON decoder reads integers beyond 2^53 as doubles",
)
def json_big_ints_as_doubles() -> Implementation:
    return _JsonBigIntsAsDoubles("json_big_ints_as_doubles")


_DATE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})(T.*)", re.ASCII)


class _JsonAcceptsImpossibleDates(_LenientJson):
    def patch(self, doc: dict[str, Any], err: ImplError) -> Undo | None:
        ts = doc["header"].get("timestamp")
        m = _DATE.fullmatch(ts) if isinstance(ts, str) and err.code == "SERIALIZATION" else None
        if m is None:
            return None
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        if not 1 <= month <= 12 or year < 1:
            return None
        last = calendar.monthrange(year, month)[1]
        if not last < day <= 31:
            return None
        doc["header"]["timestamp"] = f"{m[1]}-{m[2]}-{last:02d}{m[4]}"
        return lambda got: None


@mutant(
    profile="codec-json",
    breaks=["COD-005"],
    description="the JSON decoder accepts days past the month's end (February 30 is February 28/29)",
)
def json_accepts_impossible_dates() -> Implementation:
    return _JsonAcceptsImpossibleDates("json_accepts_impossible_dates")


class _JsonUnicodeEscapesKept(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        if codec == "json" and b"\\u" in data:
            try:
                return super().decode(codec, bytes(data).replace(b"\\u", b"\\\\u"))
            except ImplError:
                pass
        return super().decode(codec, data)


@mutant(
    profile="codec-json",
    breaks=["COD-009"],
    description="the JSON decoder keeps \\\\uXXXX escapes literally instead of decoding them",
)
def json_unicode_escapes_kept() -> Implementation:
    return _JsonUnicodeEscapesKept("json_unicode_escapes_kept")


# ---------------------------------------------------------------- codec-msgpack


class _MsgpackRepack(MutantImplementation):
    """A MessagePack encoder that rewrites the reference's encoding."""

    def repack(self, obj: Any) -> bytes:
        raise NotImplementedError

    def encode(self, codec: str, message: MessageData) -> bytes:
        out = super().encode(codec, message)
        return self.repack(_unpacked(out)) if codec == "msgpack" else out


def _message_bytes(header: Sequence[bytes], payload: Any, metadata: Any) -> bytes:
    """A message from its header's items, each already packed (fixarray 3 of a fixarray 9)."""
    return b"\x93\x99" + b"".join(header) + _packed(payload) + _packed(metadata)


class _MsgpackTimestampAlways96(_MsgpackRepack):
    def repack(self, obj: Any) -> bytes:
        header, payload, metadata = obj
        parts = [_packed(v) for v in header]
        ts = header[5]
        parts[5] = (
            b"\xc7\x0c\xff" + ts.nanoseconds.to_bytes(4, "big") + ts.seconds.to_bytes(8, "big", signed=True)
        )
        return _message_bytes(parts, payload, metadata)


@mutant(
    profile="codec-msgpack",
    breaks=["COD-102"],
    description="the MessagePack encoder always writes timestamp 96",
)
def msgpack_timestamp_always_96() -> Implementation:
    return _MsgpackTimestampAlways96("msgpack_timestamp_always_96")


class _MsgpackIdAsStr(_MsgpackRepack):
    def repack(self, obj: Any) -> bytes:
        raw = obj[0][0].hex()
        obj[0][0] = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
        return _packed(obj)


@mutant(
    profile="codec-msgpack",
    breaks=["COD-101"],
    description="the MessagePack encoder writes the id as its text (str), not 16 bytes (bin)",
)
def msgpack_id_as_str() -> Implementation:
    return _MsgpackIdAsStr("msgpack_id_as_str")


class _MsgpackFloatsAsFloat32(_MsgpackRepack):
    def repack(self, obj: Any) -> bytes:
        return _packed(obj, use_single_float=True)


@mutant(
    profile="codec-msgpack",
    breaks=["COD-101"],
    description="the MessagePack encoder writes floats as float 32",
)
def msgpack_floats_as_float32() -> Implementation:
    return _MsgpackFloatsAsFloat32("msgpack_floats_as_float32")


class _MsgpackPriorityAsInt64(_MsgpackRepack):
    def repack(self, obj: Any) -> bytes:
        header, payload, metadata = obj
        parts = [_packed(v) for v in header]
        parts[7] = b"\xd3" + int(header[7]).to_bytes(8, "big", signed=True)
        return _message_bytes(parts, payload, metadata)


@mutant(
    profile="codec-msgpack",
    breaks=["COD-101"],
    description="the MessagePack encoder writes the priority as int 64, not in its smallest form",
)
def msgpack_priority_as_int64() -> Implementation:
    return _MsgpackPriorityAsInt64("msgpack_priority_as_int64")


class _MsgpackAcceptsTrailingByte(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        try:
            return super().decode(codec, data)
        except ImplError:
            if codec != "msgpack":
                raise
            unpacker = msgpack.Unpacker(raw=False, timestamp=0, strict_map_key=False)
            unpacker.feed(data)
            try:
                unpacker.skip()
            except Exception:
                raise ImplError("SERIALIZATION", "malformed", category="serialization") from None
            end = unpacker.tell()
            if end >= len(data):
                raise
        return super().decode(codec, bytes(data[:end]))


@mutant(
    profile="codec-msgpack",
    breaks=["COD-105"],
    description="the MessagePack decoder ignores bytes after the message",
)
def msgpack_accepts_trailing_byte() -> Implementation:
    return _MsgpackAcceptsTrailingByte("msgpack_accepts_trailing_byte")


class _MsgpackDecoderDropsMetadata(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        got = super().decode(codec, data)
        if codec == "msgpack":
            got["metadata"] = {}
        return got


@mutant(
    profile="codec-msgpack",
    breaks=["COD-103"],
    description="the MessagePack decoder drops the metadata",
)
def msgpack_decoder_drops_metadata() -> Implementation:
    return _MsgpackDecoderDropsMetadata("msgpack_decoder_drops_metadata")


def _smallest_timestamp_prefix(ns: int) -> bytes:
    secs, nanos = divmod(ns, NS)
    if nanos == 0 and 0 <= secs < 2**32:
        return b"\xd6\xff"
    if 0 <= secs < 2**34:
        return b"\xd7\xff"
    return b"\xc7\x0c\xff"


class _MsgpackSmallestTimestampOnly(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        got = super().decode(codec, data)
        if codec != "msgpack":
            return got
        try:
            unpacker = msgpack.Unpacker(raw=False, timestamp=0, strict_map_key=False)
            unpacker.feed(data)
            unpacker.read_array_header()
            unpacker.read_array_header()
            for _ in range(5):
                unpacker.skip()
            at = unpacker.tell()
        except Exception:
            return got
        want = _smallest_timestamp_prefix(timestamp_ns(got["header"]["timestamp"]))
        if bytes(data[at : at + len(want)]) != want:
            raise _error("SERIALIZATION", "the timestamp is not in its smallest form", "serialization")
        return got


@mutant(
    profile="codec-msgpack",
    breaks=["COD-102"],
    description="the MessagePack decoder accepts a timestamp only in its smallest form",
)
def msgpack_smallest_timestamp_only() -> Implementation:
    return _MsgpackSmallestTimestampOnly("msgpack_smallest_timestamp_only")


# ---------------------------------------------------------------- priority


class _PriorityRangeOffByOne(_LenientJson):
    def patch(self, doc: dict[str, Any], err: ImplError) -> Undo | None:
        prio = doc["header"].get("priority")
        if err.code != "INVALID_PRIORITY" or prio not in (1001, -1001) or type(prio) is not int:
            return None
        doc["header"]["priority"] = 1000 if prio > 0 else -1000
        return _set_header("priority", prio)

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        prio = fields.get("priority")
        if type(prio) is int and prio in (1001, -1001):
            got = super().build({**fields, "priority": 1000 if prio > 0 else -1000})
            got["header"]["priority"] = prio
            return got
        return super().build(fields)


@mutant(
    profile="priority",
    breaks=["PRI-002"],
    description="priorities -1001 and 1001 are accepted (the range is off by one)",
)
def priority_range_off_by_one() -> Implementation:
    return _PriorityRangeOffByOne("priority_range_off_by_one")


class _LowestPriorityFirst(MutantImplementation):
    def order(self, messages: Sequence[MessageData]) -> list[int]:
        prios = [self._message(m).header.priority for m in messages]
        return sorted(range(len(messages)), key=lambda i: (prios[i], i))


@mutant(profile="priority", breaks=["PRI-003"], description="messages are processed lowest priority first")
def lowest_priority_first() -> Implementation:
    return _LowestPriorityFirst("lowest_priority_first")


class _DefaultPriorityLow(MutantImplementation):
    def build(self, fields: Mapping[str, Any]) -> MessageData:
        return super().build(fields if "priority" in fields else {**fields, "priority": -100})


@mutant(profile="priority", breaks=["PRI-005"], description="a message built without a priority is LOW")
def default_priority_low() -> Implementation:
    return _DefaultPriorityLow("default_priority_low")


class _FifoByTimestamp(MutantImplementation):
    def order(self, messages: Sequence[MessageData]) -> list[int]:
        msgs = [self._message(m) for m in messages]
        return sorted(
            range(len(msgs)), key=lambda i: (-msgs[i].header.priority, msgs[i].header.timestamp.ns, i)
        )


@mutant(
    profile="priority",
    breaks=["PRI-004"],
    description="messages of equal priority are processed in timestamp order, not arrival order",
)
def fifo_by_timestamp() -> Implementation:
    return _FifoByTimestamp("fifo_by_timestamp")


# ---------------------------------------------------------------- ttl


class _FutureTimestampExpired(_ExpiryRule):
    def expired(self, header: Mapping[str, Any], now_ns: int) -> bool:
        ttl = _ttl_ns(header)
        return ttl is not None and abs(now_ns - timestamp_ns(header["timestamp"])) > ttl


@mutant(
    profile="ttl",
    breaks=["TTL-004"],
    description="the age is |now - timestamp|, so a timestamp in the future can expire",
)
def future_timestamp_expired() -> Implementation:
    return _FutureTimestampExpired("future_timestamp_expired")


class _HugeTtlOverflows(_ExpiryRule):
    def expired(self, header: Mapping[str, Any], now_ns: int) -> bool:
        ttl = _ttl_ns(header)
        if ttl is None:
            return False
        wrapped = (ttl + 2**63) % 2**64 - 2**63  # the ttl in i64 nanoseconds
        return now_ns - timestamp_ns(header["timestamp"]) > wrapped


@mutant(
    profile="ttl",
    breaks=["TTL-005"],
    description="the ttl is converted to i64 nanoseconds: a huge ttl overflows and the message expires",
)
def huge_ttl_overflows() -> Implementation:
    return _HugeTtlOverflows("huge_ttl_overflows")


class _NullTtlExpires(_ExpiryRule):
    def expired(self, header: Mapping[str, Any], now_ns: int) -> bool:
        ttl = _ttl_ns(header)
        return now_ns - timestamp_ns(header["timestamp"]) > (86_400 * NS if ttl is None else ttl)


@mutant(profile="ttl", breaks=["TTL-001"], description="a message without ttl expires after a day")
def null_ttl_expires() -> Implementation:
    return _NullTtlExpires("null_ttl_expires")


class _ReceiverIgnoresTtl(MutantImplementation):
    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        try:
            return super().receive(codec, data, receiver_version)
        except ImplError as e:
            if e.code != "TTL_EXPIRED":
                raise
        return self.decode(codec, data)


@mutant(profile="ttl", breaks=["TTL-006"], description="a receiver accepts expired messages")
def receiver_ignores_ttl() -> Implementation:
    return _ReceiverIgnoresTtl("receiver_ignores_ttl")


class _TtlNanosDropped(MutantImplementation):
    @staticmethod
    def _dropped(got: MessageData) -> MessageData:
        if got["header"].get("ttl") is not None:
            got["header"]["ttl"]["nanos"] = 0
        return got

    def decode(self, codec: str, data: bytes) -> MessageData:
        return self._dropped(super().decode(codec, data))

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        return self._dropped(super().receive(codec, data, receiver_version))


@mutant(profile="ttl", breaks=["TTL-007"], description="the decoder drops ttl.nanos")
def ttl_nanos_dropped() -> Implementation:
    return _TtlNanosDropped("ttl_nanos_dropped")


# ---------------------------------------------------------------- versioning


class _ReceiverChecksTtlBeforeVersion(MutantImplementation):
    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        message = self.decode(codec, data)
        if self.is_expired(message, self._clock.now_ns()):
            raise _expired_error()
        return super().receive(codec, data, receiver_version)


@mutant(
    profile="versioning",
    breaks=["VER-003"],
    description="a receiver checks the ttl before the version (an expired message of another major "
    "is TTL_EXPIRED)",
)
def receiver_checks_ttl_before_version() -> Implementation:
    return _ReceiverChecksTtlBeforeVersion("receiver_checks_ttl_before_version")


class _MinorMismatchRejected(MutantImplementation):
    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        got = super().receive(codec, data, receiver_version)
        if got["header"]["version"]["minor"] != receiver_version[1]:
            raise _error("INVALID_PROTOCOL_VERSION", "another minor version", "version", recoverable=False)
        return got


@mutant(
    profile="versioning",
    breaks=["VER-004"],
    description="a receiver rejects a message of its major with another minor",
)
def minor_mismatch_rejected() -> Implementation:
    return _MinorMismatchRejected("minor_mismatch_rejected")


class _MajorMismatchAccepted(MutantImplementation):
    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        try:
            return super().receive(codec, data, receiver_version)
        except ImplError as e:
            if e.code != "INVALID_PROTOCOL_VERSION":
                raise
        major = self.decode(codec, data)["header"]["version"]["major"]
        return super().receive(codec, data, (major, receiver_version[1]))


@mutant(
    profile="versioning",
    breaks=["VER-003"],
    description="a receiver accepts a message of another major version",
)
def major_mismatch_accepted() -> Implementation:
    return _MajorMismatchAccepted("major_mismatch_accepted")


class _UnknownMembersRejected(MutantImplementation):
    def decode(self, codec: str, data: bytes) -> MessageData:
        got = super().decode(codec, data)
        doc = _json_doc(data) if codec == "json" else None
        if doc is not None:
            extra = sorted(set(doc) - _KNOWN_MEMBERS["message"])
            extra += sorted(f"header.{k}" for k in set(doc["header"]) - _KNOWN_MEMBERS["header"])
            if extra:
                raise _error("SERIALIZATION", f"unknown member(s) {', '.join(extra)}", "serialization")
        return got


@mutant(
    profile="versioning",
    breaks=["VER-005"],
    description="the JSON decoder rejects members it does not know",
)
def unknown_members_rejected() -> Implementation:
    return _UnknownMembersRejected("unknown_members_rejected")


class _CompatibleNeedsEqualVersions(MutantImplementation):
    def is_compatible(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        return tuple(a) == tuple(b)


@mutant(
    profile="versioning",
    breaks=["VER-002"],
    description="two versions are compatible only when equal (minors included)",
)
def compatible_needs_equal_versions() -> Implementation:
    return _CompatibleNeedsEqualVersions("compatible_needs_equal_versions")


class _VersionU16Unchecked(_LenientJson):
    def patch(self, doc: dict[str, Any], err: ImplError) -> Undo | None:
        version = doc["header"].get("version")
        if err.code != "SERIALIZATION" or not isinstance(version, dict):
            return None
        given = copy.deepcopy(version)
        wrapped = False
        for key in ("major", "minor"):
            value = version.get(key)
            if type(value) is int and value > 0xFFFF:
                version[key] = value % 0x10000
                wrapped = True
        return _set_header("version", given) if wrapped else None


@mutant(
    profile="versioning",
    breaks=["VER-001"],
    description="version numbers beyond u16 are accepted",
)
def version_u16_unchecked() -> Implementation:
    return _VersionU16Unchecked("version_u16_unchecked")


def _register_bus_mutants() -> None:
    """The seeded-fault buses of :mod:`.bus_mutants` join the catalogue as ``bus_NAME`` (profile
    ``bus``, loaded from that module), each breaking the first requirement it declares."""
    from .bus_mutants import BUS_MUTANTS, IMPLEMENTATIONS

    for m in BUS_MUTANTS.values():
        name = f"bus_{m.name}"
        CATALOGUE[name] = Mutant(name, "bus", m.breaks[:1], m.description, IMPLEMENTATIONS[name])


_register_bus_mutants()
