"""The fluent builder (ENV-007, ENV-011, ENV-012), priorities (PRI-001, PRI-002, PRI-005) and the
message types (ENV-004, ENV-008)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

import symphony_ipc as s

CID = "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"
T0 = 1_700_000_000_123_456_789


def full_builder() -> s.MessageBuilder:
    return s.Message.builder().message_type(s.MessageType.EVENT).source("svc/a").target("svc-b@host:1")


def test_fluent_api_returns_the_builder() -> None:
    b = s.MessageBuilder()
    calls: list[Callable[[], s.MessageBuilder]] = [
        lambda: b.message_type("Request"),
        lambda: b.source("a"),
        lambda: b.target("b"),
        lambda: b.payload({"x": 1}),
        lambda: b.priority(s.Priority.HIGH),
        lambda: b.ttl(s.Ttl(5, 0)),
        lambda: b.correlation_id(CID),
        lambda: b.metadata("trace_id", "abc"),
        lambda: b.clock(s.ManualClock(T0)),
        lambda: b.version(s.ProtocolVersion(1, 3)),
        lambda: b.id(CID),
        lambda: b.timestamp(T0),
    ]
    for call in calls:
        assert call() is b


def test_builder_sets_every_member() -> None:
    msg = (
        s.MessageBuilder()
        .message_type("Request")
        .source("client-1")
        .target("server.main")
        .payload([1, "two", None])
        .priority(-100)
        .ttl(s.Ttl(30, 5))
        .correlation_id(CID.upper())
        .metadata("trace_id", {"a": [1]})
        .metadata("retry", 2)
        .clock(s.ManualClock(T0))
        .build()
    )
    h = msg.header
    assert h.message_type is s.MessageType.REQUEST
    assert (h.source, h.target, h.priority, h.ttl) == ("client-1", "server.main", -100, s.Ttl(30, 5))
    assert h.correlation_id == CID  # canonicalised
    assert h.timestamp == s.Timestamp(T0)
    assert msg.payload == [1, "two", None]
    assert msg.metadata == {"trace_id": {"a": [1]}, "retry": 2}


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ((), "message_type"),
        (("source", "target"), "message_type"),
        (("source",), "message_type"),
        (("message_type",), "source"),
        (("message_type", "target"), "source"),
        (("message_type", "source"), "target"),
    ],
)
def test_missing_fields_reported_in_order(given: tuple[str, ...], missing: str) -> None:
    b = s.MessageBuilder()
    if "message_type" in given:
        b.message_type("Event")
    if "source" in given:
        b.source("a")
    if "target" in given:
        b.target("b")
    with pytest.raises(s.MissingField) as info:
        b.build()
    assert info.value.field == missing
    assert info.value.code is s.ErrorCode.MISSING_FIELD
    assert info.value.details == {"field": missing}


def test_response_needs_a_correlation_id() -> None:
    b = s.MessageBuilder().message_type("Response").source("a").target("b")
    with pytest.raises(s.MissingField) as info:
        b.build()
    assert info.value.field == "correlation_id"
    b.correlation_id(None)
    with pytest.raises(s.MissingField):
        b.build()
    assert b.correlation_id(CID).build().header.correlation_id == CID


def test_defaults() -> None:
    clock = s.ManualClock(T0)
    msg = s.MessageBuilder(clock).message_type("Heartbeat").source("a").target("b").build()
    h = msg.header
    assert msg.payload is None
    assert msg.metadata == {}
    assert h.priority == s.Priority.NORMAL == 0
    assert h.ttl is None
    assert h.correlation_id is None
    assert h.version == s.CURRENT_VERSION == s.ProtocolVersion(1, 0)
    assert h.timestamp.ns == T0
    assert s.parse_uuid(h.id) == h.id


def test_metadata_is_not_shared_between_builds() -> None:
    b = full_builder().metadata("k", 1)
    first = b.build()
    b.metadata("k2", 2)
    assert first.metadata == {"k": 1}
    assert b.build().metadata == {"k": 1, "k2": 2}


def test_fixed_id_and_timestamp() -> None:
    msg = full_builder().id(CID).timestamp(T0).build()
    assert msg.header.id == CID
    assert msg.header.timestamp.ns == T0
    assert full_builder().timestamp(s.Timestamp(5)).build().header.timestamp.ns == 5
    with pytest.raises(s.UuidParseError):
        full_builder().id("nope")


def test_manual_clock_drives_the_timestamp() -> None:
    clock = s.ManualClock(T0)
    b = full_builder().clock(clock)
    assert b.build().header.timestamp.ns == T0
    clock.advance(1)
    assert b.build().header.timestamp.ns == T0 + 1
    clock.set(42)
    assert b.build().header.timestamp.ns == 42
    assert clock.now_ns() == 42


def test_system_clock_timestamp_is_now() -> None:
    before = s.SYSTEM_CLOCK.now_ns()
    stamped = full_builder().build().header.timestamp.ns
    after = s.SYSTEM_CLOCK.now_ns()
    assert before <= stamped <= after


def test_ttl_as_seconds() -> None:
    assert full_builder().ttl(1.5).build().header.ttl == s.Ttl(1, 500_000_000)
    assert full_builder().ttl(0).build().header.ttl == s.Ttl(0, 0)
    assert full_builder().ttl(None).build().header.ttl is None
    for bad in (-1, -0.5, math.nan, math.inf):
        with pytest.raises(s.SerializationError):
            full_builder().ttl(bad)


@pytest.mark.parametrize("value", ["", "-a", "a b", "é", "a" * 129, "a\n", "svc#1"])
def test_builder_rejects_bad_endpoints(value: str) -> None:
    with pytest.raises(s.InvalidEndpointId):
        s.MessageBuilder().source(value)
    with pytest.raises(s.InvalidEndpointId):
        s.MessageBuilder().target(value)


@pytest.mark.parametrize("value", ["a", "0", "A" * 128, "svc/worker-1@host:8080", "a.b_c-d"])
def test_builder_accepts_endpoint_edges(value: str) -> None:
    assert s.MessageBuilder().message_type("Event").source(value).target(value).build().header.source == value


@pytest.mark.parametrize("key", ["", "1a", "-a", "a b", "é", "a" * 65, "a/b"])
def test_builder_rejects_bad_metadata_keys(key: str) -> None:
    with pytest.raises(s.InvalidMetadataKey):
        s.MessageBuilder().metadata(key, 1)


def test_builder_rejects_unknown_message_type() -> None:
    with pytest.raises(s.InvalidMessageType):
        s.MessageBuilder().message_type("request")
    with pytest.raises(s.SerializationError):
        s.MessageBuilder().message_type(3)  # type: ignore[arg-type]


def test_named_priorities() -> None:
    assert (
        s.Priority.CRITICAL,
        s.Priority.HIGH,
        s.Priority.NORMAL,
        s.Priority.LOW,
        s.Priority.BACKGROUND,
    ) == (
        1000,
        100,
        0,
        -100,
        -1000,
    )
    assert (s.Priority.MIN, s.Priority.MAX) == (-1000, 1000)


@pytest.mark.parametrize("level", [-1000, -999, -1, 0, 1, 999, 1000])
def test_custom_priority_in_range(level: int) -> None:
    assert s.Priority.custom(level) == level
    assert full_builder().priority(level).build().header.priority == level


@pytest.mark.parametrize("level", [-1001, 1001, 2**31, -(2**31) - 1, 2**64])
def test_custom_priority_out_of_range(level: int) -> None:
    with pytest.raises(s.InvalidPriority) as info:
        s.Priority.custom(level)
    assert info.value.code is s.ErrorCode.INVALID_PRIORITY
    with pytest.raises(s.InvalidPriority):
        full_builder().priority(level)


@pytest.mark.parametrize("level", [1.5, 100.0, True, "100", None])
def test_non_integer_priority_is_serialization(level: object) -> None:
    """PRI-002: a non-integer priority is a SERIALIZATION error, not INVALID_PRIORITY."""
    with pytest.raises(s.SerializationError):
        s.Priority.custom(level)  # type: ignore[arg-type]


def test_expects_response() -> None:
    assert {t.value: t.expects_response for t in s.MessageType} == {
        "Request": True,
        "Response": False,
        "Event": False,
        "Error": False,
        "Heartbeat": False,
    }


def test_new_message_fast_path() -> None:
    clock = s.ManualClock(T0)
    msg = s.new_message(s.MessageType.REQUEST, "a", "b", {"q": 1}, priority=100, clock=clock)
    assert (msg.header.priority, msg.header.timestamp.ns, msg.payload, msg.metadata) == (
        100,
        T0,
        {"q": 1},
        {},
    )
    assert s.parse_uuid(msg.header.id) == msg.header.id
    with pytest.raises(s.MissingField):
        s.new_message(s.MessageType.RESPONSE, "a", "b")
    with pytest.raises(s.InvalidEndpointId):
        s.new_message(s.MessageType.EVENT, "", "b")
    with pytest.raises(s.InvalidEndpointId):
        s.new_message(s.MessageType.EVENT, "a", "b c")
    with pytest.raises(s.InvalidPriority):
        s.new_message(s.MessageType.EVENT, "a", "b", priority=1001)
