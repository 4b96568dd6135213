"""The Node.js example driver (examples/node) run by ExecImplementation agrees with the reference."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import symphony_ipc as ref
from symphony_conformance._driver_client import ExecImplementation
from symphony_conformance._impl import ImplError, ImplSkipped

NODE = shutil.which("node")
DRIVER = Path(__file__).resolve().parents[2] / "examples" / "node" / "driver.mjs"
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH")

GOLDEN = (
    b'{"header":{"id":"550e8400-e29b-41d4-a716-446655440000",'
    b'"correlation_id":"6ba7b810-9dad-41d1-80b4-00c04fd430c8","message_type":"Response",'
    b'"source":"svc@host:9000","target":"client/1","timestamp":"2025-01-02T03:04:05.000123Z",'
    b'"ttl":{"secs":18446744073709551615,"nanos":999999999},"priority":-1000,'
    b'"version":{"major":3,"minor":65535},"extra":"ignored"},'
    b'"payload":{"big":18446744073709551615,"neg":-9223372036854775808,"f":1.5,"one":1.0,'
    b'"s":"\\ud83c\\udfb5 h\\u00e9","__proto__":{"x":[]}},"metadata":{"k.1-_":null},"more":1}'
)


@pytest.fixture(scope="module")
def node() -> Iterator[ExecImplementation]:
    assert NODE is not None
    with ExecImplementation([NODE, str(DRIVER)], timeout=20) as impl:
        yield impl


def test_handshake(node: ExecImplementation) -> None:
    caps = node.info.capabilities
    assert caps.codecs == {"json"}
    assert caps.profiles == {"envelope", "codec-json", "priority", "ttl", "versioning"}
    assert node.info.language.startswith("javascript")


def test_golden_decode_and_encode(node: ExecImplementation) -> None:
    expected = ref.message_to_data(ref.decode(GOLDEN))
    got = node.decode("json", GOLDEN)
    assert got == expected
    assert got["header"]["timestamp"] == "2025-01-02T03:04:05.000123Z"
    assert type(got["payload"]["one"]) is float
    assert ref.decode(node.encode("json", got)) == ref.decode(GOLDEN)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xef\xbb\xbf" + GOLDEN,
        GOLDEN + b" x",
        b'{"a":"\\ud800"}',
        b"[1]",
        GOLDEN.replace(b'"550e8400', b"550").replace(b'-e29b-41d4-a716-446655440000"', b""),
        GOLDEN.replace(b'"Response"', b'"response"'),
        GOLDEN.replace(b'"client/1"', b'"client\\n"'),
        GOLDEN.replace(b"05.000123Z", b"05.000123"),
        GOLDEN.replace(b"2025-01-02", b"2025-02-30"),
        GOLDEN.replace(b"18446744073709551615,", b"18446744073709551616,", 1).replace(b'"big"', b'"b"'),
        GOLDEN.replace(b'"nanos":999999999', b'"nanos":1000000000'),
        GOLDEN.replace(b'"priority":-1000', b'"priority":-1001'),
        GOLDEN.replace(b'"priority":-1000', b'"priority":-1000.0'),
        GOLDEN.replace(b'"minor":65535', b'"minor":65536'),
        GOLDEN.replace(b'"k.1-_"', b'"1k"'),
        GOLDEN.replace(b'"6ba7b810-9dad-41d1-80b4-00c04fd430c8"', b"null"),
        GOLDEN.replace(b'"id":"550e8400', b'"id":"zz0e8400').replace(b'"priority":-1000', b'"priority":5000'),
        b'{"header":{},"payload":null,"metadata":{}}',
        b'{"header":{"id":"550e8400-e29b-41d4-a716-446655440000"},"payload":' + b"[" * 80 + b"]" * 80 + b"}",
    ],
)
def test_decode_errors_match_reference(node: ExecImplementation, data: bytes) -> None:
    with pytest.raises(ref.ProtocolError) as expected:
        ref.decode(data)
    with pytest.raises(ImplError) as got:
        node.decode("json", data)
    assert got.value.code == expected.value.code


def test_build_and_receive(node: ExecImplementation) -> None:
    node.set_clock(1_735_787_045_123_456_000)
    msg = node.build(
        {"message_type": "Request", "source": "a", "target": "b", "ttl": {"secs": 1, "nanos": 0}}
    )
    assert msg["header"]["timestamp"] == "2025-01-02T03:04:05.123456Z"
    assert ref.message_from_data(msg).header.ttl == ref.Ttl(1, 0)
    data = node.encode("json", msg)
    assert node.receive("json", data, (1, 4)) == msg
    with pytest.raises(ImplError, match="INVALID_PROTOCOL_VERSION"):
        node.receive("json", data, (2, 0))
    node.set_clock(1_735_787_046_123_456_001)
    with pytest.raises(ImplError, match="TTL_EXPIRED"):
        node.receive("json", data, (1, 0))
    with pytest.raises(ImplError, match="MISSING_FIELD"):
        node.build({"message_type": "Response", "source": "a", "target": "b"})


def test_priority_ttl_versioning(node: ExecImplementation) -> None:
    base = ref.message_to_data(ref.decode(GOLDEN))
    msgs = [{**base, "header": {**base["header"], "priority": p}} for p in (0, 5, 0, 1000, 5)]
    assert node.order(msgs) == [3, 1, 4, 0, 2]
    ts = ref.decode(GOLDEN).header.timestamp.ns
    assert node.is_expired(base, 253402300799 * 10**9) is False  # a u64 ttl never overflows into expired
    short = {**base, "header": {**base["header"], "ttl": {"secs": 0, "nanos": 0}}}
    assert node.is_expired(short, ts) is False
    assert node.is_expired(short, ts + 1) is True
    assert node.is_compatible((1, 0), (1, 3)) is True
    assert node.is_compatible((1, 0), (0, 0)) is False
    assert node.expects_response("Request") is True
    assert node.expects_response("Error") is False


def test_msgpack_is_skipped(node: ExecImplementation) -> None:
    with pytest.raises(ImplSkipped, match="only the JSON codec"):
        node.decode("msgpack", b"\x93")
