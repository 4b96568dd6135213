"""ExecImplementation against ``symphony-ipc driver`` gives what the reference gives in process."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import symphony_ipc as ref
from symphony_conformance._driver_client import (
    DriverError,
    DriverStartError,
    ExecImplementation,
    HarnessError,
    format_timestamp,
)
from symphony_conformance._impl import Implementation, ImplError
from symphony_ipc._driver import Driver, serve

REFERENCE = [sys.executable, "-m", "symphony_ipc.cli", "driver"]
NOW = 1_735_787_045_123_456_789  # 2025-01-02T03:04:05.123456789Z
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

GOLDEN = (
    b'{"header":{"id":"550e8400-e29b-41d4-a716-446655440000","correlation_id":null,'
    b'"message_type":"Request","source":"client/1","target":"svc@host:9000",'
    b'"timestamp":"2025-01-02T03:04:05.123456789Z","ttl":{"secs":30,"nanos":5},"priority":100,'
    b'"version":{"major":1,"minor":0}},"payload":{"n":18446744073709551615,"s":"h\\u00e9",'
    b'"f":1.5,"l":[null,true]},"metadata":{"trace.id":"abc","_x":[1]}}'
)


def children() -> list[tuple[int, str]]:
    """(pid, state) of this process's children, zombies included, read from /proc."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == me:
                out.append((int(entry), fields[0]))
    return out


@pytest.fixture(scope="module")
def impl() -> Iterator[ExecImplementation]:
    with ExecImplementation(REFERENCE, timeout=20) as driver:
        yield driver


def ref_code(fn: object, *args: object) -> str:
    with pytest.raises(ref.ProtocolError) as info:
        fn(*args)  # type: ignore[operator]
    return str(info.value.code)


def test_handshake_info(impl: ExecImplementation) -> None:
    assert isinstance(impl, Implementation)
    info = impl.info
    assert (info.name, info.language, info.spec_version) == ("symphony-ipc", "python", "1.0.0")
    assert info.capabilities.codecs == {"json", "msgpack"}
    assert "codec-msgpack" in info.capabilities.profiles


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_decode_golden_matches_reference(impl: ExecImplementation, codec: str) -> None:
    data = GOLDEN if codec == "json" else ref.encode(ref.decode(GOLDEN), "msgpack")
    expected = ref.message_to_data(ref.decode(data, codec))  # type: ignore[arg-type]
    got = impl.decode(codec, data)
    assert got == expected
    assert got["header"]["timestamp"] == "2025-01-02T03:04:05.123456789Z"
    assert got["payload"]["n"] == 2**64 - 1
    exchange = impl.last_exchange
    assert [e["request"]["cmd"] for e in exchange] == ["decode"]
    assert exchange[0]["response"]["result"]["message"] == expected


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_encode_matches_reference(impl: ExecImplementation, codec: str) -> None:
    msg = ref.decode(GOLDEN)
    assert impl.encode(codec, ref.message_to_data(msg)) == ref.encode(msg, codec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        b"{",
        b'{"header": 1, "payload": null, "metadata": {}}',
        GOLDEN.replace(b'"Request"', b'"Query"'),
        GOLDEN.replace(b'"client/1"', b'"client 1"'),
        GOLDEN.replace(b'"priority":100', b'"priority":1001'),
        GOLDEN.replace(b'"550e8400', b'"zz0e8400'),
        GOLDEN.replace(b'"trace.id"', b'"9trace"'),
        GOLDEN + b"x",
    ],
)
def test_decode_errors_match_reference(impl: ExecImplementation, data: bytes) -> None:
    code = ref_code(ref.decode, data, "json")
    with pytest.raises(ImplError) as info:
        impl.decode("json", data)
    assert info.value.code == code
    assert isinstance(info.value, DriverError)
    assert (info.value.category, info.value.recoverable) == ref.ERROR_TABLE[ref.ErrorCode(code)]
    assert impl.last_exchange[-1]["response"]["error"]["code"] == code


def test_build_uses_the_clock(impl: ExecImplementation) -> None:
    impl.set_clock(NOW)
    fields = {"message_type": "Request", "source": "a", "target": "b", "payload": [1], "priority": -100}
    msg = impl.build(fields)
    assert UUID4.match(msg["header"]["id"])
    assert msg["header"]["timestamp"] == format_timestamp(NOW) == "2025-01-02T03:04:05.123456789Z"
    assert msg["header"]["priority"] == -100
    assert msg["payload"] == [1]
    assert msg["header"]["version"] == {"major": 1, "minor": 0}
    assert impl.build(fields)["header"]["id"] != msg["header"]["id"]


EVENT = {"message_type": "Event", "source": "a", "target": "b"}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"source": "a", "target": "b"}, "MISSING_FIELD"),
        ({"message_type": "Response", "source": "a", "target": "b"}, "MISSING_FIELD"),
        ({"message_type": "Event", "source": "a", "target": "b", "priority": 5000}, "INVALID_PRIORITY"),
        ({"message_type": "Event", "source": "", "target": "b"}, "INVALID_ENDPOINT_ID"),
        (
            {"message_type": "Event", "source": "a", "target": "b", "metadata": {"": 1}},
            "INVALID_METADATA_KEY",
        ),
        ({**EVENT, "priority": 1.5}, "SERIALIZATION"),
        ({**EVENT, "ttl": {"secs": 1}}, "MISSING_FIELD"),
        ({**EVENT, "ttl": {"secs": -1, "nanos": 0}}, "SERIALIZATION"),
        ({**EVENT, "metadata": [1]}, "SERIALIZATION"),
    ],
)
def test_build_errors(impl: ExecImplementation, fields: dict[str, object], code: str) -> None:
    with pytest.raises(ImplError) as info:
        impl.build(fields)
    assert info.value.code == code


def test_receive_checks_version_then_ttl(impl: ExecImplementation) -> None:
    impl.set_clock(NOW)
    msg = ref.decode(GOLDEN)  # sent at NOW, ttl 30 s + 5 ns
    data = ref.encode(msg)
    assert impl.receive("json", data, (1, 7)) == ref.message_to_data(msg)
    with pytest.raises(ImplError, match="INVALID_PROTOCOL_VERSION"):
        impl.receive("json", data, (2, 0))
    impl.set_clock(msg.header.timestamp.ns + 30 * 10**9 + 5)
    assert impl.receive("msgpack", ref.encode(msg, "msgpack"), (1, 0))["header"]["ttl"]["nanos"] == 5
    impl.set_clock(msg.header.timestamp.ns + 30 * 10**9 + 6)
    with pytest.raises(ImplError, match="TTL_EXPIRED"):
        impl.receive("json", data, (1, 0))


def test_order_expiry_versions_types(impl: ExecImplementation) -> None:
    base = ref.message_to_data(ref.decode(GOLDEN))
    prios = [0, 100, -100, 100, 1000]
    msgs = [{**base, "header": {**base["header"], "priority": p}} for p in prios]
    assert impl.order(msgs) == [4, 1, 3, 0, 2]
    ts = ref.decode(GOLDEN).header.timestamp.ns
    assert impl.is_expired(base, ts + 30 * 10**9 + 5) is False
    assert impl.is_expired(base, ts + 30 * 10**9 + 6) is True
    assert impl.is_compatible((1, 0), (1, 9)) is True
    assert impl.is_compatible((1, 0), (2, 0)) is False
    assert impl.expects_response("Request") is True
    assert impl.expects_response("Heartbeat") is False
    with pytest.raises(ImplError, match="INVALID_MESSAGE_TYPE"):
        impl.expects_response("request")


def test_encode_of_invalid_message_is_a_protocol_error(impl: ExecImplementation) -> None:
    base = ref.message_to_data(ref.decode(GOLDEN))
    bad = {**base, "header": {**base["header"], "target": "no spaces"}}
    with pytest.raises(ImplError, match="INVALID_ENDPOINT_ID"):
        impl.encode("json", bad)


def test_invalid_request_is_a_harness_error(impl: ExecImplementation) -> None:
    with pytest.raises(HarnessError, match="invalid decode request"):
        impl.decode("xml", b"{}")
    with pytest.raises(HarnessError, match="outside years"):
        impl.set_clock(-(10**20))
    assert impl.expects_response("Event") is False  # the process is still in step


def test_close_twice_reaps_the_process() -> None:
    before = {pid for pid, _ in children()}
    impl = ExecImplementation(REFERENCE, timeout=20)
    pid = impl.pid
    assert pid is not None
    assert pid in {p for p, _ in children()}
    impl.close()
    impl.close()
    assert impl.closed
    assert impl.pid is None
    assert {p for p, _ in children()} <= before
    assert [e["request"]["cmd"] for e in impl.last_exchange] == ["shutdown"]
    with pytest.raises(HarnessError, match="after close"):
        impl.decode("json", GOLDEN)


def test_missing_command_is_a_harness_error() -> None:
    with pytest.raises(DriverStartError, match="no-such-driver-binary") as info:
        ExecImplementation(["no-such-driver-binary", "--flag"])
    assert info.value.argv == ["no-such-driver-binary", "--flag"]
    assert isinstance(info.value, HarnessError)


def test_not_executable_is_a_harness_error(tmp_path: Path) -> None:
    script = tmp_path / "driver.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(DriverStartError, match="permission denied"):
        ExecImplementation([str(script)])


# ---------------------------------------------------------------- the reference driver in process


def run_serve(*requests: object, raw: bytes = b"") -> tuple[int, list[dict[str, object]]]:
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in requests) + raw
    out = io.BytesIO()
    status = serve(io.BytesIO(lines), out, Driver())
    return status, [json.loads(line) for line in out.getvalue().splitlines()]


HELLO = {
    "cmd": "hello",
    "seq": 0,
    "harness": {"name": "t", "version": "0"},
    "driver_protocol": 1,
    "spec_version": "1.0.0",
}


def test_serve_requires_hello_and_reports_unknown_commands() -> None:
    status, out = run_serve(
        {"cmd": "decode", "seq": 0, "codec": "json", "data_b64": ""}, HELLO, {"cmd": "x", "seq": 1}
    )
    assert status == 0  # end of input
    assert "hello" in out[0]["errored"]["message"]  # type: ignore[index]
    assert out[1]["ok"] is True
    assert out[2] == {"seq": 1, "errored": {"message": "unknown command 'x'"}}


def test_serve_reports_its_own_failures_and_stops_at_shutdown() -> None:
    status, out = run_serve(
        HELLO,
        {"cmd": "decode", "seq": 1, "codec": "json"},  # no data_b64: the driver's KeyError
        {"cmd": "decode", "seq": 2, "codec": "json", "data_b64": "e30"},  # not padded
        {"cmd": "shutdown", "seq": 3},
        {"cmd": "never-read", "seq": 4},
    )
    assert status == 0
    assert out[1]["errored"]["message"].startswith("KeyError")  # type: ignore[index]
    assert "traceback" in out[1]["errored"]["context"]  # type: ignore[index]
    assert "base64" in out[2]["errored"]["message"]  # type: ignore[index]
    assert out[3] == {"seq": 3, "ok": True, "result": {}}
    assert len(out) == 4


def test_serve_exits_2_on_a_line_that_is_not_json() -> None:
    status, out = run_serve(HELLO, raw=b"not json\n")
    assert status == 2
    assert len(out) == 1


def test_serve_refuses_another_driver_protocol() -> None:
    _, out = run_serve({**HELLO, "driver_protocol": 2})
    assert "driver_protocol" in out[0]["errored"]["message"]  # type: ignore[index]
