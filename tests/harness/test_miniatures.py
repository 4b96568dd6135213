"""Every misbehaving miniature driver gets the outcome it deserves, and no process is left behind."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import symphony_ipc as ref
from symphony_conformance._driver_client import (
    STDERR_BYTES,
    STDERR_LINES,
    DriverProtocolMismatch,
    ExecImplementation,
)
from symphony_conformance._impl import ImplBroken, ImplError
from symphony_conformance.miniatures import MODES, command

NOW = 1_735_787_045_000_000_000
MSG = ref.message_to_data(
    ref.Message.builder().message_type("Event").source("a").target("b").payload({"k": [1, 2]}).build()
)
JSON = ref.encode(ref.message_from_data(MSG), "json")
MSGPACK = ref.encode(ref.message_from_data(MSG), "msgpack")


def children() -> set[int]:
    """Pids of this process's children (zombies included), from /proc."""
    out = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                out.add(int(entry))
    return out


def driver_threads() -> int:
    return sum(t.name == "driver-stderr" and t.is_alive() for t in threading.enumerate())


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    before, fds, threads = children(), len(os.listdir("/proc/self/fd")), driver_threads()
    yield
    assert children() <= before, "a driver process (or zombie) was left behind"
    assert len(os.listdir("/proc/self/fd")) <= fds, "a pipe was left open"
    assert driver_threads() <= threads, "a stderr reader thread was left running"


def start(mode: str, *args: object, **kw: Any) -> ExecImplementation:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("shutdown_grace", 0.5)
    return ExecImplementation(command(mode, *args), **kw)


def broken(fn: Any, *args: Any) -> ImplBroken:
    with pytest.raises(ImplBroken) as info:
        fn(*args)
    ev = info.value.evidence
    assert {"reason", "command", "request", "stderr_tail"} <= ev.keys()
    return info.value


def test_honest_miniature_is_the_reference() -> None:
    with start("honest") as impl:
        assert impl.decode("msgpack", MSGPACK) == MSG
        assert impl.encode("json", MSG) == JSON


def test_wrong_data_is_a_wrong_answer_not_a_broken_driver() -> None:
    with start("wrong-data") as impl:
        got = impl.decode("json", JSON)
        assert got != MSG
        assert got["payload"] == "wrong"
        assert got["header"] == MSG["header"]


def test_wrong_seq_is_broken_and_the_process_replaced() -> None:
    with start("wrong-seq") as impl:
        first = impl.pid
        err = broken(impl.decode, "json", JSON)
        assert err.evidence["reason"] == "wrong-seq"
        assert err.evidence["response"]["seq"] == err.evidence["request"]["seq"] + 1
        assert impl.pid is None  # killed: the stream is out of step
        assert first not in children()
        assert broken(impl.expects_response, "Event").evidence["reason"] == "wrong-seq"
        assert impl.restarts == 1


def test_hang_is_cut_by_the_timeout_then_restart_works() -> None:
    with start("hang", 2, timeout=0.5) as impl:
        assert impl.expects_response("Request") is True
        t0 = time.monotonic()
        err = broken(impl.decode, "json", JSON)
        assert time.monotonic() - t0 < 4.5  # cut, not the miniature's own 60 s
        assert err.evidence["reason"] == "timeout"
        assert err.evidence["request"]["cmd"] == "decode"
        assert err.evidence["response"] is None
        assert impl.decode("json", JSON) == MSG  # a fresh process: request 1 is answered
        assert impl.restarts == 1


def test_a_write_to_a_process_that_stopped_reading_times_out() -> None:
    big = ref.encode(ref.message_from_data({**MSG, "payload": "x" * 2_000_000}), "json")
    with start("hang", 1, timeout=0.5) as impl:
        err = broken(impl.decode, "json", big)
        assert err.evidence["reason"] == "timeout"
        assert "writing" in str(err)
        assert len(err.evidence["request"]["data_b64"]) < 3000  # evidence is cut to size


def test_crash_is_broken_with_stderr_and_the_restart_restores_the_clock() -> None:
    with start("crash", 2) as impl:
        impl.set_clock(NOW)  # request 1
        fields = {"message_type": "Event", "source": "a", "target": "b"}
        assert impl.build(fields)["header"]["timestamp"] == "2025-01-02T03:04:05Z"  # request 2
        err = broken(impl.build, fields)  # request 3: crash
        assert err.evidence["reason"] == "exited"
        assert err.evidence["returncode"] == 3
        assert "crashing on request 3" in err.evidence["stderr_tail"]
        # restart: hello, then the clock again (request 1), then the build (request 2)
        assert impl.build(fields)["header"]["timestamp"] == "2025-01-02T03:04:05Z"
        assert [e["request"]["cmd"] for e in impl.last_exchange] == ["hello", "clock", "build"]
        assert impl.restarts == 1


def test_restart_disabled() -> None:
    with start("crash", 0, restart=False) as impl:
        assert broken(impl.decode, "json", JSON).evidence["reason"] == "exited"
        err = broken(impl.decode, "json", JSON)
        assert err.evidence["reason"] == "restart-disabled"
        assert impl.restarts == 0


def test_garbage_is_broken_and_restarts_are_capped() -> None:
    with start("garbage", max_restarts=2) as impl:
        err = broken(impl.decode, "json", JSON)
        assert err.evidence["reason"] == "garbage"
        assert err.evidence["raw_line"].startswith("panic: something went wrong")
        assert broken(impl.decode, "json", JSON).evidence["reason"] == "garbage"
        assert broken(impl.decode, "json", JSON).evidence["reason"] == "garbage"
        assert impl.restarts == 2
        err = broken(impl.decode, "json", JSON)
        assert err.evidence["reason"] == "gave-up-restarting"
        assert "gave up restarting after 2 restarts" in str(err)
        assert impl.restarts == 2


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage-hello", "garbage"),
        ("unknown-capability", "unknown-capability"),
        ("inconsistent-capabilities", "inconsistent-capabilities"),
        ("refuse-hello", "handshake-refused"),
        ("exit-at-start", "exited"),
    ],
)
def test_bad_handshakes(mode: str, reason: str) -> None:
    with pytest.raises(ImplBroken) as info:
        start(mode)
    ev = info.value.evidence
    assert ev["reason"] == reason
    assert ev["request"]["cmd"] == "hello"
    if mode == "unknown-capability":
        assert "telepathy" in str(info.value)
    if mode == "exit-at-start":
        assert "cannot load libsymphony.so" in ev["stderr_tail"]
        assert ev["returncode"] == 1


def test_protocol_mismatch_is_a_harness_error() -> None:
    with pytest.raises(DriverProtocolMismatch, match=r"speaks driver protocol 2; .* speaks 1"):
        start("protocol-mismatch")


def test_schema_invalid_answers_keep_the_process() -> None:
    with start("schema-invalid") as impl:
        pid = impl.pid
        err = broken(impl.encode, "json", MSG)
        assert err.evidence["reason"] == "schema-invalid-response"
        assert any("data_b64" in e["message"] for e in err.evidence["schema_errors"])
        err = broken(impl.decode, "json", JSON)
        assert err.evidence["reason"] == "not-a-message"
        assert err.evidence["response"]["result"]["message"] == "not a message"
        assert impl.expects_response("Request") is True
        assert (impl.pid, impl.restarts) == (pid, 0)


def test_liar_is_caught() -> None:
    with start("liar") as impl:
        assert "codec-msgpack" in impl.info.capabilities.profiles
        err = broken(impl.decode, "msgpack", MSGPACK)
        assert err.evidence["reason"] == "capability-lie"
        err = broken(impl.encode, "msgpack", MSG)
        assert err.evidence["reason"] == "errored"
        assert "NotImplementedError" in str(err)
        assert impl.decode("json", JSON) == MSG
        with pytest.raises(ImplError, match="SERIALIZATION"):
            impl.decode("json", b"[]")


def test_slow_start_within_the_startup_timeout() -> None:
    with start("slow-start", 0.3, timeout=0.1, startup_timeout=10) as impl:
        assert impl.expects_response("Request") is True


@pytest.mark.parametrize(("mode", "args"), [("slow-start", (5,)), ("deaf", ())])
def test_no_handshake_in_time(mode: str, args: tuple[object, ...]) -> None:
    t0 = time.monotonic()
    with pytest.raises(ImplBroken) as info:
        start(mode, *args, startup_timeout=0.5)
    assert info.value.evidence["reason"] == "timeout"
    assert time.monotonic() - t0 < 4.5


def test_close_kills_a_process_that_ignores_shutdown_and_sigterm() -> None:
    impl = start("stubborn", shutdown_grace=0.2)
    assert impl.expects_response("Event") is False
    pid = impl.pid
    impl.close()
    impl.close()
    assert pid not in children()
    assert impl.last_exchange[0]["response"] == {"seq": 2, "ok": True, "result": {}}


def test_stderr_tail_is_bounded() -> None:
    with start("noisy") as impl:
        impl.expects_response("Event")
        impl.expects_response("Event")
        time.sleep(0.2)  # let the reader thread catch up
        tail = impl.stderr_tail
        assert len(tail) <= STDERR_BYTES
        assert len(tail.splitlines()) <= STDERR_LINES
        assert tail.endswith("noisy log line 199 for request 2\n")


def test_every_mode_is_known() -> None:
    with pytest.raises(ValueError, match="unknown miniature"):
        command("nope")
    assert len(set(MODES)) == len(MODES)


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry))
    return out


@pytest.mark.parametrize("how", ["close", "timeout"])
def test_children_of_the_driver_are_killed_too(how: str) -> None:
    argv = [
        "sh",
        "-c",
        f"sleep 30 & exec {shlex.quote(sys.executable)} -m symphony_conformance.miniatures hang 2",
    ]
    impl = ExecImplementation(argv, timeout=0.5, shutdown_grace=0.5)
    pid = impl.pid
    assert pid is not None
    assert len(group_members(pid)) == 2  # the driver and its sleep
    if how == "timeout":
        impl.expects_response("Event")
        assert broken(impl.expects_response, "Event").evidence["reason"] == "timeout"
    impl.close()
    deadline = time.monotonic() + 5
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(pid) == []
