"""JSON and MessagePack codecs (spec/protocol.md section 6).

Decoding has two paths. The fast path decodes canonical input straight into the model with
msgspec, every constraint checked in C. Anything it refuses goes to the slow path: a plain decode
followed by :func:`message_from_data`, which is the single place that decides which error code a
bad message gets (ERR-002's order) and which tolerated variants are accepted (COD-006, COD-010).
"""

from __future__ import annotations

import math
import struct
from typing import Annotated, Any, Final, Literal

import msgpack
import msgspec

from ._errors import (
    InvalidPriority,
    MessageTooLarge,
    MissingField,
    ProtocolError,
    SerializationError,
    UuidParseError,
)
from ._ids import is_canonical_uuid, parse_uuid, uuid_from_bytes
from ._model import (
    RESPONSE,
    Header,
    Message,
    MessageType,
    ProtocolVersion,
    Ttl,
    check_endpoint,
    check_message_type,
    check_metadata_key,
    endpoint_ok,
    good_endpoints,
    good_metadata_keys,
    metadata_key_ok,
)
from ._time import NS, Timestamp, _canon_base, _frac_prefix, format_rfc3339, parse_rfc3339

MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 64  # we accept this deep (ENV-014 asks for at least 32)
U16: Final = 0xFFFF
U32: Final = 0xFFFF_FFFF
U64: Final = 0xFFFF_FFFF_FFFF_FFFF
_I64_MIN: Final = -(2**63)

Codec = Literal["json", "msgpack"]
CODECS: Final[tuple[Codec, ...]] = ("json", "msgpack")


# ---------------------------------------------------------------- the slow path: data -> Message


def _require(obj: dict[str, Any], key: str, where: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise MissingField(f"{where}{key}") from None


def _uint(value: object, bound: int, field: str) -> int:
    if type(value) is not int or not 0 <= value <= bound:
        raise SerializationError(f"{field}: expected an integer in [0, {bound}], got {value!r}", field=field)
    return value


def check_value(value: object, depth: int = 0) -> None:
    """Check that ``value`` is in the JSON data model and nested at most MAX_DEPTH deep.

    It runs on every encode and on every decode of a container payload, so containers are tested
    first and their common leaves (strings, booleans, null, in-range integers, finite floats) are
    checked inline, without a call each (``x - x == 0.0`` is false exactly for inf and NaN).
    """
    t = type(value)
    if t is dict:
        if depth >= MAX_DEPTH:
            raise SerializationError(f"value nested deeper than {MAX_DEPTH} levels")
        for k, item in value.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                raise SerializationError(f"map key {k!r} is not a string")
            ti = type(item)
            if (
                ti is str
                or ti is bool
                or item is None
                or (ti is int and _I64_MIN <= item <= U64)
                or (ti is float and item - item == 0.0)
            ):
                continue
            check_value(item, depth + 1)
        return
    if t is list:
        if depth >= MAX_DEPTH:
            raise SerializationError(f"value nested deeper than {MAX_DEPTH} levels")
        for item in value:  # type: ignore[attr-defined]
            ti = type(item)
            if (
                ti is str
                or ti is bool
                or item is None
                or (ti is int and _I64_MIN <= item <= U64)
                or (ti is float and item - item == 0.0)
            ):
                continue
            check_value(item, depth + 1)
        return
    if t is str or t is bool or value is None:
        return
    if t is int:
        if not _I64_MIN <= value <= U64:  # type: ignore[operator]
            raise SerializationError(f"integer {value} is outside [-2^63, 2^64 - 1] (COD-008)")
        return
    if t is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise SerializationError(f"{value!r} is not a JSON number")
        return
    if depth >= MAX_DEPTH:
        raise SerializationError(f"value nested deeper than {MAX_DEPTH} levels")
    raise SerializationError(f"a {t.__name__} is not a value of the JSON data model")


def _ok(value: Any) -> Any:
    """Raise a fault another codec found while converting this member, at its place in ERR-002's order."""
    if isinstance(value, ProtocolError):
        raise value
    return value


def message_from_data(obj: object) -> Message:
    """Validate a message in its JSON data-model form and build it, raising the spec's error."""
    if type(obj) is not dict:
        raise SerializationError(f"a message is an object, got {type(obj).__name__}")
    h = _require(obj, "header", "")
    if type(h) is not dict:
        raise SerializationError(f"header: expected an object, got {type(h).__name__}")
    mid = parse_uuid(_ok(_require(h, "id", "header.")), "id")
    cid_raw = _ok(h.get("correlation_id"))
    cid = None if cid_raw is None else parse_uuid(cid_raw, "correlation_id")
    mtype = check_message_type(_require(h, "message_type", "header."))
    source = check_endpoint(_require(h, "source", "header."), "source")
    target = check_endpoint(_require(h, "target", "header."), "target")
    ts = _ok(_require(h, "timestamp", "header."))
    ts_ns = ts.ns if isinstance(ts, Timestamp) else parse_rfc3339(ts)
    ttl_raw = _ok(h.get("ttl"))
    ttl = None
    if ttl_raw is not None:
        if type(ttl_raw) is not dict:
            raise SerializationError(f"ttl: expected null or an object, got {type(ttl_raw).__name__}")
        secs = _uint(_require(ttl_raw, "secs", "ttl."), U64, "ttl.secs")
        nanos = _uint(_require(ttl_raw, "nanos", "ttl."), NS - 1, "ttl.nanos")
        ttl = Ttl(secs, nanos)
    prio = _require(h, "priority", "header.")
    if type(prio) is not int:
        raise SerializationError(f"priority: expected an integer, got {prio!r}")
    if not -1000 <= prio <= 1000:
        raise InvalidPriority(f"priority {prio} is outside [-1000, 1000]", priority=prio)
    ver = _ok(_require(h, "version", "header."))
    if type(ver) is not dict:
        raise SerializationError(f"version: expected an object, got {type(ver).__name__}")
    major = _uint(_require(ver, "major", "version."), U16, "version.major")
    minor = _uint(_require(ver, "minor", "version."), U16, "version.minor")
    payload = _require(obj, "payload", "")
    check_value(payload)
    metadata = _require(obj, "metadata", "")
    if type(metadata) is not dict:
        raise SerializationError(f"metadata: expected an object, got {type(metadata).__name__}")
    for key, value in metadata.items():
        check_metadata_key(key)
        check_value(value, 1)
    if mtype is RESPONSE and cid is None:
        raise MissingField("correlation_id", "a Response needs a correlation_id")
    return Message(
        Header(mid, cid, mtype, source, target, Timestamp(ts_ns), ttl, prio, ProtocolVersion(major, minor)),
        payload,
        metadata,
    )


def message_to_data(msg: Message) -> dict[str, Any]:
    """The JSON data-model form of a message (what the JSON codec writes, as Python objects)."""
    h = msg.header
    return {
        "header": {
            "id": h.id,
            "correlation_id": h.correlation_id,
            "message_type": h.message_type.value,
            "source": h.source,
            "target": h.target,
            "timestamp": format_rfc3339(h.timestamp.ns),
            "ttl": None if h.ttl is None else {"secs": h.ttl.secs, "nanos": h.ttl.nanos},
            "priority": h.priority,
            "version": {"major": h.version.major, "minor": h.version.minor},
        },
        "payload": msg.payload,
        "metadata": msg.metadata,
    }


# ---------------------------------------------------------------- JSON


def _enc_hook(obj: Any) -> Any:
    raise SerializationError(f"a {type(obj).__name__} is not a value of the JSON data model")


# The JSON wire form of the header: the model's, with the timestamp as RFC 3339 text (the model's
# Timestamp is a msgspec struct, which msgspec would write as an object). Encoding fills one and
# lets msgspec write it; decoding reads canonical input into one, with every type and numeric
# bound checked in C, and the model is built from it once the checks msgspec cannot express pass.
class _JsonHeaderOut(msgspec.Struct, gc=False):
    id: str
    correlation_id: str | None
    message_type: MessageType
    source: str
    target: str
    timestamp: str
    ttl: Ttl | None
    priority: int
    version: ProtocolVersion


class _JsonMessageOut(msgspec.Struct, gc=False):
    header: _JsonHeaderOut
    payload: Any
    metadata: dict[str, Any]


class _JsonTtlIn(msgspec.Struct, gc=False):
    secs: Annotated[int, msgspec.Meta(ge=0)]
    nanos: Annotated[int, msgspec.Meta(ge=0, le=NS - 1)]  # required: the model's Ttl defaults it


class _JsonHeaderIn(msgspec.Struct, gc=False):
    id: str
    correlation_id: str | None
    message_type: MessageType
    source: str
    target: str
    timestamp: str
    ttl: _JsonTtlIn | None
    priority: Annotated[int, msgspec.Meta(ge=-1000, le=1000)]
    version: ProtocolVersion  # its fields carry their u16 bounds


class _JsonMessageIn(msgspec.Struct, gc=False):
    header: _JsonHeaderIn
    payload: Any
    metadata: dict[str, Any]


_json_writer = msgspec.json.Encoder(enc_hook=_enc_hook)
_json_fast = msgspec.json.Decoder(_JsonMessageIn)
_json_any = msgspec.json.Decoder()


def _json_bytes(msg: Message) -> bytes:
    """The canonical JSON of ``msg`` (COD-001), without the checks of :func:`encode_json`."""
    h = msg.header
    return _json_writer.encode(
        _JsonMessageOut(
            _JsonHeaderOut(
                h.id,
                h.correlation_id,
                h.message_type,
                h.source,
                h.target,
                format_rfc3339(h.timestamp.ns),
                h.ttl,
                h.priority,
                h.version,
            ),
            msg.payload,
            msg.metadata,
        )
    )


class _MessageJsonEncoder:
    """``encode(msg)``: the canonical JSON bytes, unchecked (``bus/_core.py`` sizes messages with it)."""

    __slots__ = ()

    @staticmethod
    def encode(msg: Message) -> bytes:
        return _json_bytes(msg)


_json_encoder: Final = _MessageJsonEncoder()


def _values_ok(payload: Any, metadata: dict[str, Any]) -> bool:
    """Payload and metadata checks the fast decoders leave to Python (patterns, nesting, ranges)."""
    try:
        if type(payload) is not str:
            check_value(payload)
        for k, v in metadata.items():
            if not (k in good_metadata_keys or metadata_key_ok(k)):
                return False
            tv = type(v)
            if not (tv is str or tv is bool or v is None):
                check_value(v, 1)
    except SerializationError:
        return False
    return True


# The fewest bytes a message the fast decoder accepts can have besides its payload and metadata
# values (every member is required there, the id and timestamp are canonical): what is left of an
# input is all the payload and metadata can take, and nesting past MAX_DEPTH takes 2 bytes a level.
_MIN_JSON: Final = len(
    b'{"header":{"id":"' + b"0" * 36 + b'","correlation_id":null,"message_type":"Event","source":"a",'
    b'"target":"a","timestamp":"' + b"0" * 20 + b'","ttl":null,"priority":0,'
    b'"version":{"major":0,"minor":0}},"payload":,"metadata":{}}'
)
_NEST_BYTES: Final = 2 * (MAX_DEPTH + 1)
_int_probe = msgspec.msgpack.Encoder().encode  # refuses exactly the integers outside [-2^63, 2^64-1]


def _json_values_ok(size: int, payload: Any, metadata: dict[str, Any]) -> bool:
    """:func:`_values_ok` for values msgspec decoded from JSON of ``size`` bytes, mostly in C.

    JSON gives only string keys and finite numbers (msgspec refuses overflowing ones), so what is
    left is the integer range, which msgspec's MessagePack encoder checks, and the nesting, which a
    short input cannot exceed; anything else is walked.
    """
    if size - _MIN_JSON >= _NEST_BYTES:
        return _values_ok(payload, metadata)
    try:
        if type(payload) is not str:
            _int_probe(payload)
        for k, v in metadata.items():
            if not (k in good_metadata_keys or metadata_key_ok(k)):
                return False
            tv = type(v)
            if not (tv is str or tv is bool or v is None):
                _int_probe(v)
    except (OverflowError, TypeError, ValueError, msgspec.EncodeError):
        return _values_ok(payload, metadata)  # the walk decides
    return True


def _check_encodable(msg: Message) -> None:
    """What the model's constructors do not check, checked before either codec writes a byte."""
    if type(msg.payload) is not str:
        check_value(msg.payload)
    if msg.metadata:
        for k, v in msg.metadata.items():
            if k not in good_metadata_keys:
                check_metadata_key(k)
            check_value(v, 1)
    ttl = msg.header.ttl
    if ttl is not None and not (0 <= ttl.secs <= U64 and 0 <= ttl.nanos < NS):
        raise SerializationError(f"ttl {ttl!r} is outside secs u64, nanos [0, 10^9)")


def encode_json(msg: Message) -> bytes:
    """Encode in the canonical JSON form (COD-001)."""
    payload, metadata, h = msg.payload, msg.metadata, msg.header
    # _check_encodable and _json_bytes, inlined (the hot path)
    if type(payload) is not str:
        check_value(payload)
    if metadata:
        for k, v in metadata.items():
            if k not in good_metadata_keys:
                check_metadata_key(k)
            check_value(v, 1)
    ttl = h.ttl
    if ttl is not None and not (0 <= ttl.secs <= U64 and 0 <= ttl.nanos < NS):
        raise SerializationError(f"ttl {ttl!r} is outside secs u64, nanos [0, 10^9)")
    # format_rfc3339's hot path, inlined: a nanosecond clock's reading in a second seen lately
    secs, frac = divmod(h.timestamp.ns, NS)
    if frac % 1000 and (dotted := _frac_prefix.get(secs)) is not None:
        text = dotted + str(NS + frac)[1:] + "Z"
    else:
        text = format_rfc3339(h.timestamp.ns)
    out = _json_writer.encode(
        _JsonMessageOut(
            _JsonHeaderOut(
                h.id,
                h.correlation_id,
                h.message_type,
                h.source,
                h.target,
                text,
                ttl,
                h.priority,
                h.version,
            ),
            payload,
            metadata,
        )
    )
    if len(out) > MAX_MESSAGE_SIZE:
        raise MessageTooLarge(f"encoded message is {len(out)} bytes, over {MAX_MESSAGE_SIZE}")
    return out


def decode_json(data: bytes | bytearray | memoryview | str) -> Message:
    """Decode one JSON message; raise a :class:`ProtocolError` subclass with the spec's code."""
    if type(data) is not bytes:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        if len(data) > MAX_MESSAGE_SIZE:
            raise MessageTooLarge(f"message is {len(data)} bytes, over {MAX_MESSAGE_SIZE}")
        data = bytes(data)
    elif len(data) > MAX_MESSAGE_SIZE:
        raise MessageTooLarge(f"message is {len(data)} bytes, over {MAX_MESSAGE_SIZE}")
    # msgspec skips unknown members without checking their UTF-8 or \\u escapes (COD-004):
    # check UTF-8 here (ASCII needs no check), and let input with \\u escapes take the slow path.
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SerializationError(f"malformed JSON: {e}") from None
    if b"\\" in data and b"\\u" in data:  # one byte is a memchr; two are a slower search
        return _decode_json_slow(data)
    try:
        w = _json_fast.decode(data)
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return _decode_json_slow(data)
    # What msgspec cannot express, checked here inline (this is the hot path); any failure sends
    # the input to the slow path, which reports the fault in ERR-002's order.
    h = w.header
    mid, cid, src, tgt, text = h.id, h.correlation_id, h.source, h.target, h.timestamp
    # _time.canonical_ns, inlined: the 9-digit canonical form in a second seen lately
    base = _canon_base.get(text[:20])
    if (
        base is not None
        and len(text) == 30
        and text[29] == "Z"
        and (f := text[20:29]).isdigit()
        and f.isascii()
    ):
        ts = base + int(f)
    else:
        try:
            ts = parse_rfc3339(text, lenient=False)
        except SerializationError:
            return _decode_json_slow(data)
    if not (
        is_canonical_uuid(mid)
        and (cid is None or is_canonical_uuid(cid))
        and (src in good_endpoints or endpoint_ok(src))
        and (tgt in good_endpoints or endpoint_ok(tgt))
    ):
        return _decode_json_slow(data)
    wttl = h.ttl
    ttl = None
    if wttl is not None:
        if wttl.secs > U64:
            return _decode_json_slow(data)
        ttl = Ttl(wttl.secs, wttl.nanos)
    payload, metadata = w.payload, w.metadata
    tp = type(payload)
    if metadata or not (tp is str or payload is None or tp is bool):
        if metadata or len(data) - _MIN_JSON >= _NEST_BYTES:
            if not _json_values_ok(len(data), payload, metadata):
                return _decode_json_slow(data)
        else:  # _json_values_ok's usual case, inlined: a short input, a container payload
            try:
                _int_probe(payload)
            except (OverflowError, TypeError, ValueError, msgspec.EncodeError):
                if not _values_ok(payload, metadata):
                    return _decode_json_slow(data)
    mtype = h.message_type
    if cid is None and mtype is RESPONSE:
        raise MissingField("correlation_id", "a Response needs a correlation_id")  # after members: ERR-002
    return Message(
        Header(mid, cid, mtype, src, tgt, Timestamp(ts), ttl, h.priority, h.version), payload, metadata
    )


def _decode_json_slow(data: bytes | bytearray | memoryview) -> Message:
    try:
        obj = _json_any.decode(data)
    except RecursionError:
        raise SerializationError("JSON nested too deeply") from None
    except (msgspec.MsgspecError, UnicodeDecodeError, ValueError) as e:
        raise SerializationError(f"malformed JSON: {e}") from None
    try:
        return message_from_data(obj)
    except RecursionError:
        raise SerializationError("JSON nested too deeply") from None


# ---------------------------------------------------------------- MessagePack


def _mp_enc_hook(obj: Any) -> Any:
    if isinstance(obj, str):  # a str subclass (an endpoint given to new_message, say): its text
        return str(obj)
    raise TypeError(f"a {type(obj).__name__} is not a value of the JSON data model")


_mp_encoder = msgspec.msgpack.Encoder(enc_hook=_mp_enc_hook)
_TS_EXT: Final = -1
_U64: Final = struct.Struct(">Q")
_U32: Final = struct.Struct(">I")
_U32_I64: Final = struct.Struct(">Iq")


def _timestamp_ext(ns: int) -> msgspec.msgpack.Ext:
    """The timestamp extension (-1) in its smallest format: 32, 64 or 96 bits (COD-102)."""
    secs, nsec = divmod(ns, NS)
    if secs >> 34 == 0:
        data64 = nsec << 34 | secs
        if data64 >> 32:
            return msgspec.msgpack.Ext(_TS_EXT, _U64.pack(data64))
        return msgspec.msgpack.Ext(_TS_EXT, _U32.pack(data64))
    return msgspec.msgpack.Ext(_TS_EXT, nsec.to_bytes(4) + secs.to_bytes(8, signed=True))


def encode_msgpack(msg: Message) -> bytes:
    """Encode in the canonical MessagePack layout (COD-101, COD-102)."""
    _check_encodable(msg)
    h = msg.header
    ttl = h.ttl
    cid = h.correlation_id
    try:
        out = _mp_encoder.encode(
            [
                [
                    bytes.fromhex(h.id.replace("-", "")),
                    None if cid is None else bytes.fromhex(cid.replace("-", "")),
                    h.message_type,  # msgspec writes an enum member's value (``.value`` is slow)
                    h.source,
                    h.target,
                    _timestamp_ext(h.timestamp.ns),
                    None if ttl is None else [ttl.secs, ttl.nanos],
                    h.priority,
                    [h.version.major, h.version.minor],
                ],
                msg.payload,
                msg.metadata,
            ]
        )
    except (OverflowError, TypeError, ValueError, msgspec.EncodeError) as e:
        raise SerializationError(f"cannot encode as MessagePack: {e}") from None
    if len(out) > MAX_MESSAGE_SIZE:
        raise MessageTooLarge(f"encoded message is {len(out)} bytes, over {MAX_MESSAGE_SIZE}")
    return out


# The fast MessagePack path: msgspec decodes the positional arrays of COD-101 into typed tuples
# (bin 16 ids, the timestamp as a raw extension: msgspec would turn it into a datetime, losing the
# nanoseconds), the rest is checked as for JSON. Anything it refuses takes the slow path below.
_Bin16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
_MpHeader = tuple[
    _Bin16,
    _Bin16 | None,
    MessageType,
    str,
    str,
    msgspec.msgpack.Ext,
    tuple[Annotated[int, msgspec.Meta(ge=0)], Annotated[int, msgspec.Meta(ge=0, le=NS - 1)]] | None,
    Annotated[int, msgspec.Meta(ge=-1000, le=1000)],
    tuple[Annotated[int, msgspec.Meta(ge=0, le=U16)], Annotated[int, msgspec.Meta(ge=0, le=U16)]],
]
_mp_fast = msgspec.msgpack.Decoder(tuple[_MpHeader, Any, dict[str, Any]])
_versions: dict[tuple[int, int], ProtocolVersion] = {(1, 0): ProtocolVersion(1, 0)}


def _ext_timestamp_ns(ext: msgspec.msgpack.Ext) -> int | None:
    """Nanoseconds of a timestamp extension, or None if it is not a valid one in range."""
    if ext.code != _TS_EXT:
        return None
    data = bytes(ext.data)  # the same object when it is bytes already
    n = len(data)
    if n == 8:
        data64 = _U64.unpack(data)[0]
        nsec = data64 >> 34
        return None if nsec >= NS else (data64 & 0x3_FFFF_FFFF) * NS + nsec
    if n == 4:
        return int(_U32.unpack(data)[0]) * NS
    if n == 12:
        nsec, secs = _U32_I64.unpack(data)
        ns = secs * NS + nsec
        return None if nsec >= NS or not _MIN_NS <= ns <= _MAX_NS else ns
    return None


def _decode_msgpack_fast(data: bytes | bytearray | memoryview) -> Message | None:
    try:
        h, payload, metadata = _mp_fast.decode(data)
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return None
    ts = _ext_timestamp_ns(h[5])
    if ts is None:
        return None
    ttl, ver, cid = h[6], h[8], h[1]
    msg = Message(
        Header(
            uuid_from_bytes(h[0]),
            None if cid is None else uuid_from_bytes(cid),
            h[2],
            h[3],
            h[4],
            Timestamp(ts),
            None if ttl is None else Ttl(ttl[0], ttl[1]),
            h[7],
            _versions.get(ver) or ProtocolVersion(ver[0], ver[1]),
        ),
        payload,
        metadata,
    )
    src, tgt = msg.header.source, msg.header.target
    if not (src in good_endpoints or endpoint_ok(src)) or not (tgt in good_endpoints or endpoint_ok(tgt)):
        return None
    return msg if _values_ok(payload, metadata) else None


def _mp_uuid(value: object, field: str) -> str | ProtocolError:
    if type(value) is not bytes or len(value) != 16:
        return UuidParseError(f"{field}: expected bin 8 of 16 bytes, got {value!r:.60}", field=field)
    return uuid_from_bytes(value)


_MP_MEMBERS: Final = {
    "message": ("header", "payload", "metadata"),
    "header": (
        "id",
        "correlation_id",
        "message_type",
        "source",
        "target",
        "timestamp",
        "ttl",
        "priority",
        "version",
    ),
    "ttl": ("secs", "nanos"),
    "version": ("major", "minor"),
}


def _mp_array(value: object, field: str) -> list[Any] | ProtocolError:
    """A positional array of COD-101; too short names the first missing member (ERR-004)."""
    members = _MP_MEMBERS[field]
    n = len(members)
    if type(value) is not list:
        return SerializationError(f"{field}: expected an array of {n}, got {type(value).__name__}")
    if len(value) != n:
        if len(value) < n:
            missing = members[len(value)]
            return MissingField(missing, f"{field}: expected an array of {n}, missing {missing!r}")
        return SerializationError(f"{field}: expected an array of {n}, got {len(value)} items")
    return value


def _mp_timestamp(value: object) -> Timestamp | ProtocolError:
    if not isinstance(value, msgpack.Timestamp):
        return SerializationError(f"timestamp: expected extension -1, got {value!r:.60}")
    ns = value.to_unix_nano()
    if not _MIN_NS <= ns <= _MAX_NS:
        return SerializationError("timestamp is outside years 0001-9999")
    return Timestamp(ns)


_MIN_NS: Final = -62135596800 * NS
_MAX_NS: Final = 253402300799 * NS + NS - 1


def decode_msgpack(data: bytes | bytearray | memoryview) -> Message:
    """Decode one MessagePack message; raise a :class:`ProtocolError` subclass with the spec's code."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise MessageTooLarge(f"message is {len(data)} bytes, over {MAX_MESSAGE_SIZE}")
    fast = _decode_msgpack_fast(data)
    if fast is not None:
        h = fast.header
        if h.correlation_id is None and h.message_type is RESPONSE:
            raise MissingField("correlation_id", "a Response needs a correlation_id")
        return fast
    try:
        obj = msgpack.unpackb(data, raw=False, timestamp=0, strict_map_key=False)
    except RecursionError:
        raise SerializationError("MessagePack nested too deeply") from None
    except Exception as e:  # msgpack raises many unrelated types for malformed input
        raise SerializationError(f"malformed MessagePack: {type(e).__name__}: {e}") from None
    msg = _ok(_mp_array(obj, "message"))
    h = _ok(_mp_array(msg[0], "header"))
    ttl: Any = h[6]
    if ttl is not None:
        ttl = _mp_array(ttl, "ttl")
        if not isinstance(ttl, ProtocolError):
            ttl = {"secs": ttl[0], "nanos": ttl[1]}
    ver: Any = _mp_array(h[8], "version")
    if not isinstance(ver, ProtocolError):
        ver = {"major": ver[0], "minor": ver[1]}
    data_form = {
        "header": {
            "id": _mp_uuid(h[0], "id"),
            "correlation_id": None if h[1] is None else _mp_uuid(h[1], "correlation_id"),
            "message_type": h[2],
            "source": h[3],
            "target": h[4],
            "timestamp": _mp_timestamp(h[5]),
            "ttl": ttl,
            "priority": h[7],
            "version": ver,
        },
        "payload": msg[1],
        "metadata": msg[2],
    }
    try:
        return message_from_data(data_form)
    except RecursionError:
        raise SerializationError("MessagePack nested too deeply") from None


def encode(msg: Message, codec: Codec = "json") -> bytes:
    if codec == "json":
        return encode_json(msg)
    if codec == "msgpack":
        return encode_msgpack(msg)
    raise ValueError(f"unknown codec {codec!r}")


def decode(data: bytes | bytearray | memoryview, codec: Codec = "json") -> Message:
    if codec == "json":
        return decode_json(data)
    if codec == "msgpack":
        return decode_msgpack(data)
    raise ValueError(f"unknown codec {codec!r}")


__all__ = [
    "CODECS",
    "MAX_MESSAGE_SIZE",
    "Codec",
    "ProtocolError",
    "decode",
    "decode_json",
    "decode_msgpack",
    "encode",
    "encode_json",
    "encode_msgpack",
    "message_from_data",
    "message_to_data",
]
