"""Codec details: MessagePack timestamp forms (COD-102), the size limit (ENV-013), nesting
(ENV-014), non-finite numbers, canonical JSON (COD-001) and tolerated variants (COD-006, COD-010)."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

import symphony_ipc as s

NS = 1_000_000_000
MAX = 16 * 1024 * 1024
MIN_S = -62_135_596_800
MAX_S = 253_402_300_799
ID = "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"


def make(
    ts: int = 1_700_000_000 * NS, payload: Any = None, metadata: dict[str, Any] | None = None
) -> s.Message:
    b = s.MessageBuilder().message_type("Event").source("a").target("b").id(ID).timestamp(ts).payload(payload)
    for k, v in (metadata or {}).items():
        b.metadata(k, v)
    return b.build()


def _header_prefix() -> bytes:
    """The MessagePack bytes before the timestamp of ``make()``'s message, built independently."""
    return bytes(
        b"\x93\x99"
        + msgpack.packb(bytes.fromhex(ID.replace("-", "")), use_bin_type=True)
        + msgpack.packb(None)
        + msgpack.packb("Event")
        + msgpack.packb("a")
        + msgpack.packb("b")
    )


def _ts32(secs: int) -> bytes:
    return b"\xd6\xff" + secs.to_bytes(4, "big")


def _ts64(secs: int, nanos: int) -> bytes:
    return b"\xd7\xff" + ((nanos << 34) | secs).to_bytes(8, "big")


def _ts96(secs: int, nanos: int) -> bytes:
    return b"\xc7\x0c\xff" + nanos.to_bytes(4, "big") + secs.to_bytes(8, "big", signed=True)


@pytest.mark.parametrize(
    ("secs", "nanos", "expected"),
    [
        (0, 0, _ts32(0)),
        (1_700_000_000, 0, _ts32(1_700_000_000)),
        (2**32 - 1, 0, _ts32(2**32 - 1)),
        (2**32, 0, _ts64(2**32, 0)),
        (0, 1, _ts64(0, 1)),
        (1_700_000_000, 999_999_999, _ts64(1_700_000_000, 999_999_999)),
        (2**34 - 1, 5, _ts64(2**34 - 1, 5)),
        (2**34, 0, _ts96(2**34, 0)),
        (-1, 0, _ts96(-1, 0)),
        (-1, 999_999_999, _ts96(-1, 999_999_999)),
        (MIN_S, 0, _ts96(MIN_S, 0)),
        (MAX_S, 999_999_999, _ts96(MAX_S, 999_999_999)),
    ],
)
def test_msgpack_timestamp_smallest_form(secs: int, nanos: int, expected: bytes) -> None:
    ns = secs * NS + nanos
    out = s.encode_msgpack(make(ts=ns))
    prefix = _header_prefix()
    assert out.startswith(prefix)
    assert out[len(prefix) : len(prefix) + len(expected)] == expected
    assert s.decode_msgpack(out).header.timestamp.ns == ns


@pytest.mark.parametrize(
    ("form", "secs", "nanos"),
    [
        (_ts64, 5, 0),  # a timestamp 32 value in the 64 form
        (_ts96, 5, 0),  # ... and in the 96 form
        (_ts96, 5, 7),  # a timestamp 64 value in the 96 form
    ],
)
def test_msgpack_decoder_accepts_every_timestamp_form(form: Any, secs: int, nanos: int) -> None:
    canonical = s.encode_msgpack(make(ts=secs * NS + nanos))
    prefix = _header_prefix()
    smallest = _ts32(secs) if nanos == 0 else _ts64(secs, nanos)
    assert canonical[len(prefix) : len(prefix) + len(smallest)] == smallest
    other = prefix + form(secs, nanos) + canonical[len(prefix) + len(smallest) :]
    assert s.decode_msgpack(other).header.timestamp.ns == secs * NS + nanos


@pytest.mark.parametrize(
    "ext",
    [
        b"\xd7\xff" + ((NS << 34) | 5).to_bytes(8, "big"),  # nanoseconds 10^9 in timestamp 64
        b"\xc7\x0c\xff" + NS.to_bytes(4, "big") + (5).to_bytes(8, "big"),  # ... in timestamp 96
        b"\xd5\xff\x00\x05",  # length 2
        b"\xd6\x01\x00\x00\x00\x05",  # extension type 1
        b"\xce\x00\x00\x00\x05",  # an integer
        b"\xa4" + b"2024",  # a string
    ],
)
def test_msgpack_bad_timestamp_is_serialization(ext: bytes) -> None:
    canonical = s.encode_msgpack(make(ts=5 * NS))
    prefix = _header_prefix()
    bad = prefix + ext + canonical[len(prefix) + len(_ts32(5)) :]
    with pytest.raises(s.SerializationError):
        s.decode_msgpack(bad)


# ---------------------------------------------------------------- size (ENV-013)


def _json_of_size(size: int) -> bytes:
    """Built with the json module, not the reference encoder (which refuses > 16 MiB)."""
    data = s.message_to_data(make(payload=""))
    base = len(json.dumps(data).encode())
    data["payload"] = "a" * (size - base)
    out = json.dumps(data).encode()
    assert len(out) == size
    return out


def _msgpack_of_size(size: int) -> bytes:
    """Built with the msgpack library, not the reference encoder (which refuses > 16 MiB)."""
    obj = msgpack.unpackb(s.encode_msgpack(make(payload="")), raw=False, timestamp=0)
    base = len(msgpack.packb(obj, use_bin_type=True)) - 1 + 5  # payload as str 32: 5-byte header
    obj[1] = "a" * (size - base)
    out: bytes = msgpack.packb(obj, use_bin_type=True)
    assert len(out) == size
    return out


def test_json_size_limit() -> None:
    exact = _json_of_size(MAX)
    assert len(s.decode_json(exact).payload) > MAX - 400
    over = _json_of_size(MAX + 1)
    with pytest.raises(s.MessageTooLarge) as info:
        s.decode_json(over)
    assert info.value.code is s.ErrorCode.MESSAGE_TOO_LARGE
    assert info.value.category == "resource"


def test_msgpack_size_limit() -> None:
    exact = _msgpack_of_size(MAX)
    assert s.encode_msgpack(s.decode_msgpack(exact)) == exact
    with pytest.raises(s.MessageTooLarge):
        s.decode_msgpack(_msgpack_of_size(MAX + 1))


@pytest.mark.parametrize("codec", s.CODECS)
def test_size_is_checked_before_parsing(codec: s.Codec) -> None:
    with pytest.raises(s.MessageTooLarge):
        s.decode(b"\xff" * (MAX + 1), codec)


@pytest.mark.parametrize("codec", s.CODECS)
def test_encoder_refuses_too_large(codec: s.Codec) -> None:
    with pytest.raises(s.MessageTooLarge):
        s.encode(make(payload="a" * MAX), codec)


# ---------------------------------------------------------------- nesting (ENV-014)


def nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


@pytest.mark.parametrize("codec", s.CODECS)
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_depth_32_is_accepted(codec: s.Codec, kind: str) -> None:
    deep = nested(32, kind)
    m = make(payload=deep, metadata={"deep": deep})
    back = s.decode(s.encode(m, codec), codec)
    assert back.payload == deep
    assert back.metadata == {"deep": deep}
    if codec == "json":  # also from independently written JSON
        data = s.message_to_data(m)
        assert s.decode_json(json.dumps(data).encode()).payload == deep


def _json_with_payload(raw: bytes) -> bytes:
    text = s.encode_json(make(payload=None))
    assert text.count(b'"payload":null') == 1
    return text.replace(b'"payload":null', b'"payload":' + raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"[" * 100_000,  # deep and truncated
    ],
)
def test_very_deep_json_is_serialization(raw: bytes) -> None:
    with pytest.raises(s.SerializationError):
        s.decode_json(_json_with_payload(raw))
    with pytest.raises(s.SerializationError):
        s.decode_json(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x91" * 100_000 + b"\xc0",
        b"\x81\xa1a" * 100_000 + b"\xc0",
        b"\x91" * 100_000,  # truncated
    ],
)
def test_very_deep_msgpack_is_serialization(raw: bytes) -> None:
    canonical = s.encode_msgpack(make(payload=None))
    assert canonical.endswith(b"\xc0\x80")  # payload nil, metadata {}
    with pytest.raises(s.SerializationError):
        s.decode_msgpack(canonical[:-2] + raw + b"\x80")
    with pytest.raises(s.SerializationError):
        s.decode_msgpack(raw)


@pytest.mark.parametrize("codec", s.CODECS)
def test_too_deep_to_encode_is_serialization(codec: s.Codec) -> None:
    with pytest.raises(s.SerializationError):
        s.encode(make(payload=nested(5_000, "list")), codec)


@pytest.mark.parametrize("codec", s.CODECS)
def test_decoder_and_encoder_agree_on_the_depth_limit(codec: s.Codec) -> None:
    """Whatever depth the decoder accepts, the encoder can write back, and vice versa."""
    for depth in range(32, 200, 7):
        value = nested(depth, "list")
        raw = _json_with_payload(json.dumps(value).encode())
        try:
            decoded = s.decode_json(raw)
        except s.SerializationError:
            with pytest.raises(s.SerializationError):
                s.encode(make(payload=value), codec)
        else:
            assert s.decode(s.encode(decoded, codec), codec).payload == value


# The smallest envelope the fast JSON decoder accepts: its decoder skips walking the values of an
# input too short to nest past the limit, so the limit must hold exactly in the smallest one.
_SMALLEST = (
    b'{"header":{"id":"00000000-0000-4000-8000-000000000000","correlation_id":null,'
    b'"message_type":"Event","source":"a","target":"b","timestamp":"2000-01-01T00:00:00Z","ttl":null,'
    b'"priority":0,"version":{"major":1,"minor":0}},"payload":PAYLOAD,"metadata":META}'
)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_the_depth_limit_holds_in_the_smallest_envelope(kind: str) -> None:
    def raw(payload: Any, meta: Any) -> bytes:
        text = json.dumps(payload, separators=(",", ":")).encode()
        return _SMALLEST.replace(b"PAYLOAD", text).replace(
            b"META", json.dumps(meta, separators=(",", ":")).encode()
        )

    assert s.decode_json(raw(0, {})).payload == 0
    for depth in range(60, 67):
        value = nested(depth, kind)
        if depth <= 64:  # containers 64 deep in the payload, 63 in a metadata value (ENV-014)
            assert s.decode_json(raw(value, {})).payload == value
        else:
            with pytest.raises(s.SerializationError):
                s.decode_json(raw(value, {}))
        if depth <= 63:
            assert s.decode_json(raw(None, {"m": value})).metadata == {"m": value}
        else:
            with pytest.raises(s.SerializationError):
                s.decode_json(raw(None, {"m": value}))


@pytest.mark.parametrize("where", ["payload", "metadata"])
@pytest.mark.parametrize(
    ("number", "ok"), [(2**64 - 1, True), (2**64, False), (-(2**63), True), (-(2**63) - 1, False)]
)
def test_integer_bounds_in_a_short_message(where: str, number: int, ok: bool) -> None:
    payload, meta = ([number], {}) if where == "payload" else (None, {"n": [number]})
    text = _SMALLEST.replace(b"PAYLOAD", json.dumps(payload).encode()).replace(
        b"META", json.dumps(meta).encode()
    )
    if ok:
        msg = s.decode_json(text)
        assert (msg.payload, msg.metadata) == (payload, meta)
    else:
        with pytest.raises(s.SerializationError):
            s.decode_json(text)


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("codec", s.CODECS)
@pytest.mark.parametrize(
    "payload", [float("nan"), float("inf"), float("-inf"), [1, float("nan")], {"x": {"y": float("inf")}}]
)
def test_non_finite_payload_is_refused_on_encode(codec: s.Codec, payload: Any) -> None:
    with pytest.raises(s.SerializationError):
        s.encode(make(payload=payload), codec)
    with pytest.raises(s.SerializationError):
        s.encode(make(metadata={"m": payload}), codec)


@pytest.mark.parametrize("codec", s.CODECS)
@pytest.mark.parametrize("payload", [b"bytes", (1, 2), {1: "int key"}, {1, 2}, object(), 2**64, -(2**63) - 1])
def test_values_outside_the_data_model_are_refused_on_encode(codec: s.Codec, payload: Any) -> None:
    with pytest.raises(s.SerializationError):
        s.encode(make(payload=payload), codec)


@pytest.mark.parametrize("codec", s.CODECS)
def test_integer_extremes_round_trip(codec: s.Codec) -> None:
    payload = [-(2**63), 2**63 - 1, 2**63, 2**64 - 1, 0, -1, 2**53 + 1]
    back = s.decode(s.encode(make(payload=payload), codec), codec).payload
    assert back == payload
    assert all(type(v) is int for v in back)


@pytest.mark.parametrize("text", [str(2**64), str(-(2**63) - 1), "1e400", "-1e400"])
def test_out_of_range_json_numbers(text: str) -> None:
    """COD-008 lets a decoder reject these or carry them as doubles; the reference rejects them."""
    raw = _json_with_payload(text.encode())
    with pytest.raises(s.SerializationError):
        s.decode_json(raw)


def test_json_encoding_is_canonical() -> None:
    m = (
        s.MessageBuilder()
        .message_type("Response")
        .source("a")
        .target("b")
        .id(ID.upper())
        .correlation_id(ID.replace("-", ""))
        .timestamp(1_700_000_000 * NS + 120_000_000)
        .ttl(s.Ttl(5, 0))
        .priority(-100)
        .payload({"é": '\u2028\x00"\\'})
        .build()
    )
    out = s.encode_json(m)
    assert not out.startswith(b"\xef\xbb\xbf")
    data = json.loads(out)
    assert data == {
        "header": {
            "id": ID,
            "correlation_id": ID,
            "message_type": "Response",
            "source": "a",
            "target": "b",
            "timestamp": "2023-11-14T22:13:20.120Z",
            "ttl": {"secs": 5, "nanos": 0},
            "priority": -100,
            "version": {"major": 1, "minor": 0},
        },
        "payload": {"é": '\u2028\x00"\\'},
        "metadata": {},
    }


def test_tolerated_json_variants_reencode_canonically() -> None:
    data = s.message_to_data(make(payload=1))
    h = data["header"]
    h["id"] = ID.upper().replace("-", "")
    h["timestamp"] = "2023-11-15T00:13:20.5+02:00"
    del h["correlation_id"], h["ttl"]  # COD-010
    h["unknown"] = {"later": "minor"}  # VER-005
    data["extra"] = 1
    m = s.decode_json(json.dumps(data).encode())
    assert json.loads(s.encode_json(m))["header"] == {
        "id": ID,
        "correlation_id": None,
        "message_type": "Event",
        "source": "a",
        "target": "b",
        "timestamp": "2023-11-14T22:13:20.500Z",
        "ttl": None,
        "priority": 0,
        "version": {"major": 1, "minor": 0},
    }
    assert "extra" not in json.loads(s.encode_json(m))


def test_duplicate_members_last_wins_or_rejected() -> None:
    raw = _json_with_payload(b'{"k":1,"k":2}')
    try:
        m = s.decode_json(raw)
    except s.SerializationError:
        return
    assert m.payload == {"k": 2}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda obj: obj[0].__setitem__(0, b"\x00" * 15), "UUID_PARSE"),
        (lambda obj: obj[0].__setitem__(0, "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"), "UUID_PARSE"),
        (lambda obj: obj[0].__setitem__(2, "Notice"), "INVALID_MESSAGE_TYPE"),
        (lambda obj: obj[0].__setitem__(3, ""), "INVALID_ENDPOINT_ID"),
        (lambda obj: obj[0].__setitem__(7, 1001), "INVALID_PRIORITY"),
        (lambda obj: obj[0].__setitem__(7, 1.0), "SERIALIZATION"),
        (lambda obj: obj[0].__setitem__(8, [65536, 0]), "SERIALIZATION"),
        (lambda obj: obj.__setitem__(2, {"bad key": 1}), "INVALID_METADATA_KEY"),
        (lambda obj: obj.__setitem__(2, {1: 1}), "SERIALIZATION"),  # a map key that is not a string
        (lambda obj: obj.__setitem__(1, {1: 1}), "SERIALIZATION"),
        (lambda obj: obj.__setitem__(1, b"bin"), "SERIALIZATION"),
        (lambda obj: obj.__setitem__(1, msgpack.ExtType(5, b"x")), "SERIALIZATION"),
        (lambda obj: obj.append(None), "SERIALIZATION"),
        (lambda obj: obj[0].append(None), "SERIALIZATION"),
        (lambda obj: obj[0].__setitem__(2, "Response"), "MISSING_FIELD"),
    ],
)
def test_msgpack_faults(change: Any, code: str) -> None:
    obj = msgpack.unpackb(s.encode_msgpack(make(payload=None)), raw=False, timestamp=0)
    change(obj)
    with pytest.raises(s.ProtocolError) as info:
        s.decode_msgpack(msgpack.packb(obj, use_bin_type=True))
    assert info.value.code == code


@pytest.mark.parametrize("cut", [1, 2, 10, 30, 60])
def test_truncated_msgpack_is_serialization(cut: int) -> None:
    out = s.encode_msgpack(make(payload={"k": [1, 2, 3]}))
    with pytest.raises(s.SerializationError):
        s.decode_msgpack(out[:-cut])
    with pytest.raises(s.SerializationError):
        s.decode_msgpack(out + b"\xc0")  # trailing bytes


def _json_fault(**changes: Any) -> bytes:
    """A canonical message with some members replaced (header members, ``payload``, ``metadata``)."""
    data = s.message_to_data(make(payload=None))
    for key, value in changes.items():
        if key in ("payload", "metadata"):
            data[key] = value
        else:
            data["header"][key] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"ttl": {"secs": 2**64, "nanos": 0}}, "SERIALIZATION"),  # u64 + 1
        ({"ttl": {"secs": 2**64 - 1, "nanos": 999_999_999}}, None),
        ({"version": {"major": 65535, "minor": 65535}}, None),
        ({"version": {"major": 65536, "minor": 0}}, "SERIALIZATION"),
        ({"priority": 2**64}, "INVALID_PRIORITY"),
        ({"priority": True}, "SERIALIZATION"),
        ({"id": 5}, "UUID_PARSE"),
        ({"correlation_id": 5}, "UUID_PARSE"),
        ({"message_type": None}, "SERIALIZATION"),
        # ERR-002: several faults, the first in wire order wins
        ({"id": "x", "message_type": "Nope"}, "UUID_PARSE"),
        ({"message_type": "Nope", "source": ""}, "INVALID_MESSAGE_TYPE"),
        ({"source": "", "priority": 5000}, "INVALID_ENDPOINT_ID"),
        ({"timestamp": "2024-13-01T00:00:00Z", "ttl": "x"}, "SERIALIZATION"),
        ({"priority": 5000, "version": "x"}, "INVALID_PRIORITY"),
        ({"metadata": {"bad key": 1}, "message_type": "Response"}, "INVALID_METADATA_KEY"),
        (
            {"payload": [2**64], "message_type": "Response"},
            "SERIALIZATION",
        ),
        ({"payload": nested(100, "list"), "message_type": "Response"}, "SERIALIZATION"),
        ({"message_type": "Response"}, "MISSING_FIELD"),
    ],
)
def test_json_faults(changes: dict[str, Any], code: str | None) -> None:
    raw = _json_fault(**changes)
    if code is None:
        data = s.message_to_data(s.decode_json(raw))
        assert data == json.loads(raw)
        return
    with pytest.raises(s.ProtocolError) as info:
        s.decode_json(raw)
    assert info.value.code == code


def test_the_unchecked_json_writer_gives_the_canonical_bytes() -> None:
    # bus/_core.py sizes messages near the limit with it
    from symphony_ipc._codec import _json_encoder

    for msg in (make(), make(ts=1_700_000_000 * NS + 7, payload={"a": [1, 2.5, None]}, metadata={"k": "v"})):
        assert _json_encoder.encode(msg) == s.encode_json(msg)
        assert json.loads(s.encode_json(msg))["header"]["timestamp"] == str(msg.header.timestamp)
