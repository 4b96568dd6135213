"""Property tests of the reference, driven by the public strategies of symphony_conformance."""

from __future__ import annotations

import json
import math
import uuid
from functools import cache
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symphony_ipc as s
from symphony_conformance import spec_dir
from symphony_conformance import strategies as sst

NS = 1_000_000_000


def assert_same(a: Any, b: Any, path: str = "$") -> None:
    """Equality that also tells 1, 1.0 and True apart, and -0.0 from 0.0."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == b, f"{path}: {a!r} != {b!r}"
        assert math.copysign(1.0, a) == math.copysign(1.0, b), f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_assert_same_bites() -> None:
    for a, b in [(1, 1.0), (True, 1), (0.0, -0.0), ({"a": [1]}, {"a": [1, 2]}), ("a", "b")]:
        with pytest.raises(AssertionError):
            assert_same(a, b)


@cache
def _message_validator() -> Any:
    path = spec_dir() / "message.schema.json"
    if not path.exists():
        return None
    import jsonschema

    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def message_validator() -> Any:
    validator = _message_validator()
    if validator is None:
        pytest.skip("spec/message.schema.json is not written yet (a colleague is writing it in parallel)")
    return validator


# ---------------------------------------------------------------- round trips (COD-002/003, COD-103/104)


@settings(deadline=None)
@given(sst.messages())
def test_json_round_trip(data: dict[str, Any]) -> None:
    msg = s.message_from_data(data)
    assert_same(s.message_to_data(msg), data)
    encoded = s.encode_json(msg)
    assert_same(json.loads(encoded), data)  # the encoder writes the canonical data (COD-001)
    assert_same(s.message_to_data(s.decode_json(encoded)), data)
    # and from JSON the reference did not write
    assert_same(s.message_to_data(s.decode_json(sst.json_bytes(data))), data)
    assert_same(s.message_to_data(s.decode_json(json.dumps(data, ensure_ascii=True))), data)


@settings(deadline=None)
@given(sst.messages())
def test_msgpack_round_trip_and_agreement_with_json(data: dict[str, Any]) -> None:
    msg = s.message_from_data(data)
    encoded = s.encode_msgpack(msg)
    from_msgpack = s.message_to_data(s.decode_msgpack(encoded))
    assert_same(from_msgpack, data)
    assert_same(from_msgpack, s.message_to_data(s.decode_json(sst.json_bytes(data))))
    assert s.encode_msgpack(s.decode_msgpack(encoded)) == encoded


def _spec_layout(data: dict[str, Any]) -> bytes:
    """The MessagePack layout of spec section 6.2, packed by the msgpack library from the data form."""
    h = data["header"]
    ns = s.parse_rfc3339(h["timestamp"])
    ttl = h["ttl"]
    return msgpack.packb(  # type: ignore[no-any-return]
        [
            [
                uuid.UUID(h["id"]).bytes,
                None if h["correlation_id"] is None else uuid.UUID(h["correlation_id"]).bytes,
                h["message_type"],
                h["source"],
                h["target"],
                msgpack.Timestamp.from_unix_nano(ns),
                None if ttl is None else [ttl["secs"], ttl["nanos"]],
                h["priority"],
                [h["version"]["major"], h["version"]["minor"]],
            ],
            data["payload"],
            data["metadata"],
        ],
        use_bin_type=True,
    )


@settings(deadline=None)
@given(sst.messages())
def test_msgpack_encoding_is_the_spec_layout(data: dict[str, Any]) -> None:
    assert s.encode_msgpack(s.message_from_data(data)) == _spec_layout(data)


# ---------------------------------------------------------------- the JSON Schema


def test_schema_is_not_vacuous() -> None:
    validator = message_validator()
    good = s.message_to_data(s.MessageBuilder().message_type("Event").source("a").target("b").build())
    validator.validate(good)
    for member, bad in [("priority", 5000), ("message_type", "Nope"), ("id", "x"), ("source", "")]:
        assert not validator.is_valid({**good, "header": {**good["header"], member: bad}})
    assert not validator.is_valid({k: v for k, v in good.items() if k != "payload"})


@settings(deadline=None)
@given(sst.messages())
def test_encoded_messages_validate_against_the_schema(data: dict[str, Any]) -> None:
    validator = message_validator()
    validator.validate(json.loads(s.encode_json(s.message_from_data(data))))


@settings(deadline=None)
@given(sst.builder_fields(), sst.timestamps_ns())
def test_built_messages(fields: dict[str, Any], now: int) -> None:
    b = s.MessageBuilder(s.ManualClock(now))
    b.message_type(fields["message_type"]).source(fields["source"]).target(fields["target"])
    if "payload" in fields:
        b.payload(fields["payload"])
    if "priority" in fields:
        b.priority(fields["priority"])
    if "ttl" in fields:
        ttl = fields["ttl"]
        b.ttl(None if ttl is None else s.Ttl(ttl["secs"], ttl["nanos"]))
    if "correlation_id" in fields:
        b.correlation_id(fields["correlation_id"])
    for key, value in fields.get("metadata", {}).items():
        b.metadata(key, value)
    data = s.message_to_data(b.build())
    h = data["header"]
    expected_header = {
        "correlation_id": fields.get("correlation_id"),
        "message_type": fields["message_type"],
        "source": fields["source"],
        "target": fields["target"],
        "timestamp": sst.canonical_timestamp(now),
        "ttl": fields.get("ttl"),
        "priority": fields.get("priority", 0),
        "version": {"major": 1, "minor": 0},
    }
    assert_same({k: v for k, v in h.items() if k != "id"}, expected_header)
    assert uuid.UUID(h["id"]).version == 4
    assert_same(data["payload"], fields.get("payload"))
    assert_same(data["metadata"], fields.get("metadata", {}))
    encoded = s.encode_json(s.message_from_data(data))
    assert_same(s.message_to_data(s.decode_json(encoded)), data)
    validator = _message_validator()
    if validator is not None:
        validator.validate(json.loads(encoded))


# ---------------------------------------------------------------- invalid input (ERR-002, ERR-003)


@settings(deadline=None)
@given(sst.invalid_messages())
def test_invalid_messages_are_rejected_with_the_spec_code(case: tuple[Any, str]) -> None:
    message, code = case
    raw = message if isinstance(message, bytes) else sst.json_bytes(message)
    with pytest.raises(s.ProtocolError) as info:
        s.decode_json(raw)
    assert info.value.code == code, f"{info.value!r} for {raw[:300]!r}"
    if not isinstance(message, bytes):  # the data-model path decides the same
        with pytest.raises(s.ProtocolError) as info:
            s.message_from_data(message)
        assert info.value.code == code


# ---------------------------------------------------------------- expiry (TTL-002, TTL-003)

ttl_values = st.builds(
    lambda secs, nanos: {"secs": secs, "nanos": nanos},
    st.one_of(st.integers(0, 100), st.integers(0, 2**64 - 1)),
    st.one_of(st.sampled_from([0, 1, NS - 1]), st.integers(0, NS - 1)),
)


@settings(deadline=None)
@given(sst.timestamps_ns(), ttl_values, st.integers(-(10**20), 10**20), st.integers(0, 10**20))
def test_expiry_is_exact_and_monotonic(ts: int, ttl: dict[str, int], offset: int, later: int) -> None:
    msg = (
        s.MessageBuilder()
        .message_type("Event")
        .source("a")
        .target("b")
        .timestamp(ts)
        .ttl(s.Ttl(ttl["secs"], ttl["nanos"]))
        .build()
    )
    limit = ts + ttl["secs"] * NS + ttl["nanos"]
    assert not msg.is_expired(limit)
    assert msg.is_expired(limit + 1)
    now = limit + offset
    assert msg.is_expired(now) == (offset > 0)
    if msg.is_expired(now):
        assert msg.is_expired(now + later)
    assert msg.is_expired(now) == msg.is_expired(clock=s.ManualClock(now))


@settings(deadline=None)
@given(sst.messages(ttl=st.none()), st.integers(-(10**30), 10**30))
def test_null_ttl_never_expires(data: dict[str, Any], now: int) -> None:
    assert not s.message_from_data(data).is_expired(now)


# ---------------------------------------------------------------- timestamps (COD-001, COD-002, COD-006)


@given(sst.timestamps_ns())
def test_timestamps_round_trip_to_the_nanosecond(ns: int) -> None:
    text = sst.canonical_timestamp(ns)
    assert s.format_rfc3339(ns) == text
    assert s.parse_rfc3339(text) == ns
    assert s.parse_rfc3339(text, lenient=False) == ns


@given(sst.timestamps_ns(), st.integers(-(23 * 60 + 59), 23 * 60 + 59))
def test_offsets_are_converted_to_utc(ns: int, offset_minutes: int) -> None:
    local = ns + offset_minutes * 60 * NS
    try:
        local_text = sst.canonical_timestamp(local)
    except ValueError:
        return  # the local time is outside years 0001-9999: not representable in this form
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"{local_text[:-1]}{sign}{hours:02d}:{minutes:02d}"
    assert s.parse_rfc3339(text) == ns


@given(sst.timestamps_ns(), st.integers(1, 9))
def test_any_exact_fraction_length_parses(ns: int, digits: int) -> None:
    secs, frac = divmod(ns, NS)
    if frac % 10 ** (9 - digits):
        return  # not exactly representable with that many digits
    text = sst.canonical_timestamp(secs * NS)[:-1] + "." + f"{frac:09d}"[:digits] + "Z"
    assert s.parse_rfc3339(text) == ns
