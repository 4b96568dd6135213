"""Hand-written checks of single requirements, at their boundaries: the error table, the
builder's required fields, the size and nesting limits, versions, priorities, numbers, strings
and MessagePack timestamps."""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Final

import pytest

from .. import _spec
from .._case import SuiteCase
from .._data import NS, timestamp_ns
from .._impl import Implementation, ImplError, MessageData
from ._support import (
    UUID_B,
    base_message,
    case,
    expect_error,
    expect_ok,
    expect_same_message,
    fail,
    json_bytes,
    names_field,
)

MAX_SIZE: Final = 16 * 1024 * 1024


def _without(message: MessageData, *path: str) -> MessageData:
    out: MessageData = json.loads(json.dumps(message))
    obj = out
    for key in path[:-1]:
        obj = obj[key]
    del obj[path[-1]]
    return out


def _expired_data() -> bytes:
    return json_bytes(base_message(ttl={"secs": 1, "nanos": 0}))


# ---------------------------------------------------------------- ERR-001


def _error_input(code: str) -> tuple[str, Any]:
    """(operation, input) that must fail with ``code``."""
    if code == "INVALID_MESSAGE_TYPE":
        return "decode", json_bytes(base_message(message_type="Notification"))
    if code == "MISSING_FIELD":
        return "decode", json_bytes(_without(base_message(), "payload"))
    if code == "INVALID_ENDPOINT_ID":
        return "decode", json_bytes(base_message(source="no spaces"))
    if code == "INVALID_PRIORITY":
        return "decode", json_bytes(base_message(priority=5000))
    if code == "TTL_EXPIRED":
        return "receive", _expired_data()
    if code == "INVALID_PROTOCOL_VERSION":
        return "receive", json_bytes(base_message(version={"major": 2, "minor": 0}))
    if code == "INVALID_METADATA_KEY":
        return "decode", json_bytes({**base_message(), "metadata": {"1st": True}})
    if code == "SERIALIZATION":
        return "decode", b'{"header": '
    if code == "UUID_PARSE":
        return "decode", json_bytes(base_message(id="not-a-uuid"))
    if code == "MESSAGE_TOO_LARGE":
        return "decode", _json_of_size(MAX_SIZE + 1)
    raise AssertionError(code)


_EXTRA_REQS: Final = {"TTL_EXPIRED": ("TTL-006",), "INVALID_PROTOCOL_VERSION": ("VER-003",)}


@pytest.mark.parametrize(
    "code",
    [
        case(code, reqs=("ERR-001", *_EXTRA_REQS.get(code, ())), codec="json", name=code)
        for code in _spec.ERROR_TABLE
    ],
)
def test_error_table(symphony_case: SuiteCase, code: str) -> None:
    """Each error reports its code and, when the implementation reports them, the category and
    recoverable flag of the spec's table."""
    impl = symphony_case.impl
    op, data = _error_input(code)
    if op == "receive":
        impl.set_clock(timestamp_ns(base_message()["header"]["timestamp"]) + 5 * NS)
        err = expect_error(code, "receiving (json)", lambda: impl.receive("json", data, (1, 0)))
    else:
        err = expect_error(code, "decoding (json)", lambda: impl.decode("json", data))
    category, recoverable = _spec.ERROR_TABLE[code]
    if err.category is not None and err.category != category:
        fail(f"{code} reports category {err.category!r}; the spec's table says {category!r}")
    if err.recoverable is not None and err.recoverable is not recoverable:
        fail(f"{code} reports recoverable={err.recoverable!r}; the spec's table says {recoverable}")


# ---------------------------------------------------------------- builder and envelope


@pytest.mark.parametrize(
    "where",
    [
        case("build", reqs=("ENV-007",), name="build"),
        case("json-null", reqs=("ENV-007",), codec="json", name="null"),
        case("json-absent", reqs=("ENV-007",), codec="json", name="absent"),
    ],
)
def test_response_requires_correlation_id(symphony_case: SuiteCase, where: str) -> None:
    impl = symphony_case.impl
    if where == "build":
        fields = {"message_type": "Response", "source": "a", "target": "b"}
        err = expect_error(
            "MISSING_FIELD", "building a Response without correlation_id", lambda: impl.build(fields)
        )
    else:
        msg = base_message(message_type="Response")
        if where == "json-absent":
            msg = _without(msg, "header", "correlation_id")
        data = json_bytes(msg)
        err = expect_error(
            "MISSING_FIELD", f"decoding a Response ({where})", lambda: impl.decode("json", data)
        )
    if not names_field(err, "correlation_id"):
        fail(f"MISSING_FIELD must name correlation_id in details.field, got {err.message!r} {err.details!r}")
    # With the correlation id it is fine.
    ok = {"message_type": "Response", "source": "a", "target": "b", "correlation_id": UUID_B}
    built = expect_ok("building a Response with a correlation_id", lambda: impl.build(ok))
    expect_same_message("building a Response", {"header": {"correlation_id": UUID_B}}, built, subset=True)


@pytest.mark.parametrize("name", [case("expects-response", reqs=("ENV-008",))])
def test_only_requests_expect_a_response(symphony_case: SuiteCase, name: str) -> None:
    for mtype in ("Request", "Response", "Event", "Error", "Heartbeat"):
        got = expect_ok(f"expects_response({mtype!r})", partial(symphony_case.impl.expects_response, mtype))
        if got is not (mtype == "Request"):
            fail(f"expects_response({mtype!r}) is {got!r}")


@pytest.mark.parametrize("name", [case("first-missing", reqs=("ENV-011",))])
def test_builder_reports_first_missing_field(symphony_case: SuiteCase, name: str) -> None:
    impl = symphony_case.impl
    steps: list[tuple[dict[str, Any], str]] = [
        ({}, "message_type"),
        ({"source": "a", "target": "b"}, "message_type"),
        ({"message_type": "Event"}, "source"),
        ({"message_type": "Event", "target": "b"}, "source"),
        ({"message_type": "Event", "source": "a"}, "target"),
    ]
    for fields, missing in steps:
        err = expect_error("MISSING_FIELD", f"building from {fields}", partial(impl.build, fields))
        if not names_field(err, missing):
            fail(
                f"building from {fields}: MISSING_FIELD must name {missing!r} in details.field, "
                f"got {err.message!r} {err.details!r}"
            )


# ---------------------------------------------------------------- size and nesting


def _json_of_size(size: int) -> bytes:
    """A valid JSON message of exactly ``size`` bytes (its payload a long string)."""
    head = json_bytes({**base_message(), "payload": ""})
    pad = size - len(head)
    assert pad >= 0
    return head.replace(b'"payload": ""', b'"payload": "' + b"x" * pad + b'"', 1)


def _msgpack_with_payload(ref: Implementation, payload: bytes) -> bytes:
    """A MessagePack message whose payload is the raw MessagePack value ``payload``."""
    base = ref.encode("msgpack", {**base_message(), "payload": None, "metadata": {}})
    assert base.endswith(b"\xc0\x80")
    return base[:-2] + payload + b"\x80"


def _msgpack_of_size(ref: Implementation, size: int) -> bytes:
    head = _msgpack_with_payload(ref, b"")
    n = size - len(head) - 5  # str 32: 0xdb + 4 length bytes
    return _msgpack_with_payload(ref, b"\xdb" + n.to_bytes(4, "big") + b"x" * n)


@pytest.mark.parametrize(
    "codec",
    [case("json", reqs=("ENV-013",), codec="json"), case("msgpack", reqs=("ENV-013",), codec="msgpack")],
)
def test_message_size_limit(symphony_case: SuiteCase, codec: str) -> None:
    """16 MiB is accepted, one byte more is MESSAGE_TOO_LARGE; an encoder refuses to exceed it."""
    impl, ref = symphony_case.impl, symphony_case.reference
    if codec == "json":
        at, over = _json_of_size(MAX_SIZE), _json_of_size(MAX_SIZE + 1)
    else:
        at, over = _msgpack_of_size(ref, MAX_SIZE), _msgpack_of_size(ref, MAX_SIZE + 1)
    assert len(at) == MAX_SIZE
    assert len(over) == MAX_SIZE + 1
    expect_ok(f"decoding a {codec} message of exactly 16 MiB", lambda: impl.decode(codec, at))
    expect_error(
        "MESSAGE_TOO_LARGE",
        f"decoding a {codec} message of 16 MiB + 1 byte",
        lambda: impl.decode(codec, over),
    )
    big = {**base_message(), "payload": "x" * MAX_SIZE}
    expect_error(
        "MESSAGE_TOO_LARGE",
        f"encoding ({codec}) a message with a 16 MiB payload",
        lambda: impl.encode(codec, big),
    )


def _nested(depth: int) -> Any:
    value: Any = 0
    for i in range(depth):
        value = [value] if i % 2 == 0 else {"k": value}
    return value


@pytest.mark.parametrize(
    "codec",
    [case("json", reqs=("ENV-014",), codec="json"), case("msgpack", reqs=("ENV-014",), codec="msgpack")],
)
def test_nesting(symphony_case: SuiteCase, codec: str) -> None:
    """Payload and metadata values nested 32 deep are accepted; much deeper input is accepted or
    rejected with SERIALIZATION, and never crashes the implementation."""
    impl, ref = symphony_case.impl, symphony_case.reference
    message = {**base_message(), "payload": _nested(32), "metadata": {"deep": _nested(31)}}
    data = json_bytes(message) if codec == "json" else ref.encode(codec, message)
    decoded = expect_ok(
        f"decoding ({codec}) a payload nested 32 levels deep", lambda: impl.decode(codec, data)
    )
    expect_same_message("decoding a deeply nested message", message, decoded)
    depth = 100_000
    if codec == "json":
        head = json_bytes({**base_message(), "payload": None})
        deep = head.replace(b'"payload": null', b'"payload": ' + b"[" * depth + b"]" * depth, 1)
    else:
        deep = _msgpack_with_payload(ref, b"\x91" * depth + b"\xc0")
    try:
        impl.decode(codec, deep)
    except ImplError as e:
        if e.code != "SERIALIZATION":
            fail(f"a payload nested {depth} deep may be rejected only with SERIALIZATION, got {e.code}")


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize("name", [case("unknown-members", reqs=("VER-005",), codec="json")])
def test_unknown_members_are_ignored(symphony_case: SuiteCase, name: str) -> None:
    impl = symphony_case.impl
    message = base_message()
    extended = json.loads(json.dumps(message))
    extended["trace"] = {"span": 1}
    extended["header"]["hops"] = 3
    extended["header"]["version"]["patch"] = 1
    decoded = expect_ok(
        "decoding a message with unknown members", lambda: impl.decode("json", json_bytes(extended))
    )
    expect_same_message("decoding a message with unknown members (they must be dropped)", message, decoded)
    encoded = expect_ok("re-encoding it", lambda: impl.encode("json", decoded))
    again = json.loads(encoded)
    for where, obj, known in (("message", again, 3), ("header", again.get("header", {}), 9)):
        if len(obj) != known:
            fail(f"re-encoding carried unknown members over into the {where}: {sorted(obj)}")


@pytest.mark.parametrize(
    "law",
    [
        case("other-major", reqs=("VER-003",), codec="json"),
        case("any-minor", reqs=("VER-004",), codec="json"),
        case("current-1.0-u16", reqs=("VER-001",), codec="json"),
    ],
)
def test_versions(symphony_case: SuiteCase, law: str) -> None:
    impl = symphony_case.impl
    impl.set_clock(timestamp_ns(base_message()["header"]["timestamp"]))
    if law == "other-major":
        for major, minor, receiver in ((2, 5, (1, 0)), (0, 9, (1, 0)), (1, 0, (2, 0))):
            data = json_bytes(base_message(version={"major": major, "minor": minor}))
            expect_ok(f"decoding a message of version {major}.{minor}", partial(impl.decode, "json", data))
            err = expect_error(
                "INVALID_PROTOCOL_VERSION",
                f"receiving version {major}.{minor} at {receiver[0]}.{receiver[1]}",
                partial(impl.receive, "json", data, receiver),
            )
            for key, want in (("major", major), ("minor", minor)):
                if key in err.details and err.details[key] != want:
                    fail(
                        f"INVALID_PROTOCOL_VERSION reports {key} {err.details[key]!r}, the message has {want}"
                    )
    elif law == "any-minor":
        for minor, receiver in ((7, (1, 0)), (0xFFFF, (1, 0)), (0, (1, 3))):
            data = json_bytes(base_message(version={"major": 1, "minor": minor}))
            got = expect_ok(
                f"receiving version 1.{minor} at {receiver[0]}.{receiver[1]}",
                partial(impl.receive, "json", data, receiver),
            )
            expect_same_message(
                "receiving a higher minor",
                {"header": {"version": {"major": 1, "minor": minor}}},
                got,
                subset=True,
            )
    else:
        built = expect_ok(
            "building", lambda: impl.build({"message_type": "Event", "source": "a", "target": "b"})
        )
        expect_same_message("building", {"header": {"version": {"major": 1, "minor": 0}}}, built, subset=True)
        top = json_bytes(base_message(version={"major": 0xFFFF, "minor": 0xFFFF}))
        expect_ok("decoding version 65535.65535", lambda: impl.decode("json", top))
        for bad in ({"major": 0x10000, "minor": 0}, {"major": 1, "minor": 0x10000}):
            data = json_bytes(base_message(version=bad))
            expect_error(
                "SERIALIZATION", f"decoding version {bad} (beyond u16)", partial(impl.decode, "json", data)
            )


# ---------------------------------------------------------------- priorities and ttl

_NAMED: Final = {"CRITICAL": 1000, "HIGH": 100, "NORMAL": 0, "LOW": -100, "BACKGROUND": -1000}


@pytest.mark.parametrize("name", [case("named-levels", reqs=("PRI-001",))])
def test_named_priority_levels(symphony_case: SuiteCase, name: str) -> None:
    impl = symphony_case.impl
    arrival = ["NORMAL", "BACKGROUND", "CRITICAL", "LOW", "HIGH"]
    messages = []
    for level in arrival:
        fields = {"message_type": "Event", "source": "a", "target": "b", "priority": _NAMED[level]}
        built = expect_ok(f"building with priority {level}", partial(impl.build, fields))
        expect_same_message(
            f"building with priority {level}", {"header": {"priority": _NAMED[level]}}, built, subset=True
        )
        messages.append(built)
    got = expect_ok("ordering the five named levels", lambda: impl.order(messages))
    want = [arrival.index(n) for n in ("CRITICAL", "HIGH", "NORMAL", "LOW", "BACKGROUND")]
    if got != want:
        fail(f"the named levels {arrival} (arrival order) are processed as {got}, expected {want}")


@pytest.mark.parametrize("name", [case("custom-range", reqs=("PRI-002",))])
def test_priority_range(symphony_case: SuiteCase, name: str) -> None:
    impl = symphony_case.impl
    base = {"message_type": "Event", "source": "a", "target": "b"}
    for prio in (-1000, -999, 999, 1000):
        expect_ok(f"building with priority {prio}", partial(impl.build, {**base, "priority": prio}))
    for prio in (-1001, 1001, 2**31, -(2**31) - 1):
        expect_error(
            "INVALID_PRIORITY",
            f"building with priority {prio}",
            partial(impl.build, {**base, "priority": prio}),
        )
    expect_error("SERIALIZATION", "building with priority 1.5", lambda: impl.build({**base, "priority": 1.5}))


@pytest.mark.parametrize("name", [case("nanos-range-zero-ttl", reqs=("TTL-007",), codec="json")])
def test_ttl_range(symphony_case: SuiteCase, name: str) -> None:
    impl = symphony_case.impl
    for ttl in ({"secs": 0, "nanos": 999_999_999}, {"secs": 2**64 - 1, "nanos": 0}, {"secs": 0, "nanos": 0}):
        message = base_message(ttl=ttl)
        got = expect_ok(f"decoding ttl {ttl}", partial(impl.decode, "json", json_bytes(message)))
        expect_same_message(f"decoding ttl {ttl}", message, got)
    zero = base_message(ttl={"secs": 0, "nanos": 0})
    ts = timestamp_ns(zero["header"]["timestamp"])
    if expect_ok("is_expired", lambda: impl.is_expired(zero, ts)) is not False:
        fail("a ttl of zero is expired at its own timestamp")
    if expect_ok("is_expired", lambda: impl.is_expired(zero, ts + 1)) is not True:
        fail("a ttl of zero is not expired one nanosecond after its timestamp")
    for bad in ({"secs": 0, "nanos": -1}, {"secs": -1, "nanos": 0}):
        data = json_bytes(base_message(ttl=bad))
        expect_error("SERIALIZATION", f"decoding ttl {bad}", partial(impl.decode, "json", data))


# ---------------------------------------------------------------- JSON values


@pytest.mark.parametrize("name", [case("integers-doubles", reqs=("COD-008",), codec="json")])
def test_json_numbers(symphony_case: SuiteCase, name: str) -> None:
    values = [
        -(2**63),
        2**64 - 1,
        2**53 + 1,
        -(2**53) - 1,
        0,
        -1,
        0.1,
        1e308,
        -2.5e-300,
        5e-324,
        123456.789,
    ]
    message = {**base_message(), "payload": values, "metadata": {"n": 2**63 - 1, "x": 0.5}}
    got = expect_ok("decoding numbers", lambda: symphony_case.impl.decode("json", json_bytes(message)))
    expect_same_message("decoding integers at the edges of [-2^63, 2^64-1] and doubles", message, got)


@pytest.mark.parametrize("name", [case("exact-strings", reqs=("COD-009",), codec="json")])
def test_json_strings(symphony_case: SuiteCase, name: str) -> None:
    escaped = r'"caf\u00e9 \u4e2d\ud83d\ude00 \\ \" \/ \b\f\n\r\t \u0000\u001f \u2028\u2029"'
    raw = "naïve 日本語 😀 \u2028"
    text = json_bytes({**base_message(), "payload": "@@"}).replace(b'"@@"', escaped.encode())
    want = json.loads(escaped)
    got = expect_ok("decoding escaped strings", lambda: symphony_case.impl.decode("json", text))
    expect_same_message("decoding escaped strings", {"payload": want}, got, subset=True)
    message = {**base_message(), "payload": [raw, want], "metadata": {"k": raw}}
    got = expect_ok(
        "decoding raw UTF-8 strings", lambda: symphony_case.impl.decode("json", json_bytes(message))
    )
    expect_same_message("decoding raw UTF-8 strings", message, got)


# ---------------------------------------------------------------- MessagePack timestamps


def _ts_forms(ns: int) -> dict[str, bytes]:
    secs, nanos = divmod(ns, NS)
    forms = {"96": b"\xc7\x0c\xff" + nanos.to_bytes(4, "big") + secs.to_bytes(8, "big", signed=True)}
    if 0 <= secs < 2**34:
        forms["64"] = b"\xd7\xff" + ((nanos << 34) | secs).to_bytes(8, "big")
    if nanos == 0 and 0 <= secs < 2**32:
        forms["32"] = b"\xd6\xff" + secs.to_bytes(4, "big")
    return forms


@pytest.mark.parametrize("name", [case("timestamp-forms", reqs=("COD-102",), codec="msgpack")])
def test_msgpack_timestamps(symphony_case: SuiteCase, name: str) -> None:
    """A decoder accepts timestamp 32, 64 and 96; an encoder writes the smallest exact one."""
    impl, ref = symphony_case.impl, symphony_case.reference
    cases = {
        "2024-05-17T10:30:21Z": "32",
        "2024-05-17T10:30:21.5Z": "64",
        "2242-03-16T12:56:32Z": "64",  # seconds need 34 bits
        "1969-12-31T23:59:59Z": "96",  # negative seconds
        "2600-01-01T00:00:00.000000001Z": "96",
    }
    for ts, smallest in cases.items():
        message = base_message(timestamp=ts)
        ns = timestamp_ns(ts)
        canonical = ref.encode("msgpack", message)
        forms = _ts_forms(ns)
        assert forms[smallest] in canonical, (ts, smallest)
        for form, ext in forms.items():
            data = canonical.replace(forms[smallest], ext, 1)
            got = expect_ok(
                f"decoding timestamp {ts} as timestamp {form}", partial(impl.decode, "msgpack", data)
            )
            expect_same_message(f"decoding timestamp {ts} as timestamp {form}", message, got)
        encoded = expect_ok(f"encoding timestamp {ts}", partial(impl.encode, "msgpack", message))
        if forms[smallest] not in encoded:
            fail(
                f"timestamp {ts}: the encoding does not hold timestamp {smallest} ({forms[smallest].hex()}), "
                f"the smallest exact form: {encoded.hex()}"
            )
