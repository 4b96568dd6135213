"""The sans-I/O core against the golden framing vectors, at every split, and under Hypothesis."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony_conformance.transport_checks import compare_framing_outcome
from symphony_ipc import ErrorCode, MessageTooLarge
from symphony_ipc.transport import (
    FrameTooLarge,
    HandshakeFailed,
    PeerBroken,
    PeerClosed,
    TransportClosed,
    sansio,
)
from symphony_ipc.transport.sansio import (
    MAX_FRAME_SIZE,
    TRANSITIONS,
    Connection,
    FrameDecoder,
    LocalProtocolError,
    Mode,
    NdjsonDecoder,
    Role,
    State,
    Trigger,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS: list[dict[str, Any]] = json.loads((ROOT / "fixtures" / "framing.json").read_text())["vectors"]
LEN = struct.Struct(">I")


def run(vector: dict[str, Any], chunks: list[bytes] | None = None) -> dict[str, Any]:
    inp = vector["input"]
    if vector["operation"] == "frames":
        if chunks is None:
            return sansio.run_frames_vector(inp)
        return _frames_chunked(inp, chunks)
    return sansio.run_handshake_vector(inp, chunks)


def _frames_chunked(inp: dict[str, Any], chunks: list[bytes]) -> dict[str, Any]:
    dec: FrameDecoder | NdjsonDecoder = NdjsonDecoder() if inp.get("mode") == "ndjson" else FrameDecoder()
    frames: list[str] = []
    try:
        for chunk in chunks:
            dec.receive_data(chunk)
            while (p := dec.next_frame()) is not None:
                if p:
                    frames.append(p.hex())
    except sansio._Violation as v:
        return {"error": v.code.value}
    state = "open" if not inp.get("eof", True) else ("clean-eof" if dec.buffered == 0 else "broken")
    return {"frames": frames, "state": state}


def test_enough_vectors() -> None:
    assert len(VECTORS) >= 25
    assert {v["operation"] for v in VECTORS} == {"frames", "handshake"}
    assert len({v["id"] for v in VECTORS}) == len(VECTORS)


def test_vectors_are_generated() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "tools/gen_framing_fixtures.py", "--check"], cwd=ROOT, check=False)
    assert done.returncode == 0, "fixtures/framing.json differs from tools/gen_framing_fixtures.py"


def test_vector_requirements_exist() -> None:
    known = {r["id"] for r in json.loads((ROOT / "spec" / "requirements.json").read_text())["requirements"]}
    for v in VECTORS:
        assert set(v["requirements"]) <= known, v["id"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    compare_framing_outcome(vector, run(vector))


SMALL = [v for v in VECTORS if len(v["input"]["hex"]) <= 2 * 1200]


@pytest.mark.parametrize("vector", SMALL, ids=[v["id"] for v in SMALL])
def test_vector_at_every_split(vector: dict[str, Any]) -> None:
    """FRM-005: two chunks split at every boundary, and one byte per chunk, give the same outcome."""
    data = bytes.fromhex(vector["input"]["hex"])
    whole = run(vector)
    for i in range(len(data) + 1):
        assert run(vector, [data[:i], data[i:]]) == whole, f"split at {i}"
    assert run(vector, [data[i : i + 1] for i in range(len(data))]) == whole


def test_big_vectors_at_sampled_splits() -> None:
    for vector in VECTORS:
        data = bytes.fromhex(vector["input"]["hex"])
        if len(data) <= 1200:
            continue
        whole = run(vector)
        for i in sorted({0, 1, 2, 3, 4, 5, 100, len(data) // 2, len(data) - 1, len(data)}):
            assert run(vector, [data[:i], data[i:]]) == whole, (vector["id"], i)


def test_compare_outcome_bites() -> None:
    v = next(v for v in VECTORS if v["id"] == "framing/three-frames-one-read")
    with pytest.raises(AssertionError, match=r"FRM-001"):
        compare_framing_outcome(v, {"frames": v["expected"]["frames"][:2], "state": "clean-eof"})
    bad = next(v for v in VECTORS if v["id"] == "handshake/server-major-2")
    with pytest.raises(AssertionError, match=r"FRM-012"):
        compare_framing_outcome(bad, {"error": "INVALID_PROTOCOL_VERSION", "sent": [{"symphony": "1.0"}]})


# ---------------------------------------------------------------- Hypothesis: any split, any frames

payloads = st.lists(st.binary(min_size=0, max_size=300), max_size=12)


def _stream(ps: list[bytes]) -> bytes:
    return b"".join(LEN.pack(len(p)) + p for p in ps)


def _cuts(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({min(p, len(data)) for p in points})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@settings(max_examples=150, deadline=None)
@given(payloads, st.lists(st.integers(0, 4000), max_size=20))
def test_frames_any_split(ps: list[bytes], points: list[int]) -> None:
    data = _stream(ps)
    dec = FrameDecoder()
    out = []
    for chunk in _cuts(data, points):
        dec.receive_data(chunk)
        while (p := dec.next_frame()) is not None:
            out.append(p)
    assert [p for p in out if p] == [p for p in ps if p]  # zero-length frames are keep-alives
    assert dec.buffered == 0


@settings(max_examples=100, deadline=None)
@given(payloads.filter(lambda ps: any(ps)), st.data())
def test_truncation_is_broken_never_partial(ps: list[bytes], data: st.DataObject) -> None:
    """FRM-006: cutting the stream anywhere inside a frame gives only complete frames, then broken."""
    stream = _stream(ps)
    cut = data.draw(st.integers(1, len(stream) - 1)) if len(stream) > 1 else 0
    conn = _open_client()
    events = conn.receive_data(stream[:cut]) + conn.receive_eof()
    frames = [e.payload for e in events if isinstance(e, sansio.Frame)]
    assert frames == [p for p in ps if p][: len(frames)]
    closed = events[-1]
    assert isinstance(closed, sansio.ConnectionClosed)
    boundaries = {0}
    pos = 0
    for p in ps:
        pos += 4 + len(p)
        boundaries.add(pos)
    assert closed.clean == (cut in boundaries)
    assert isinstance(conn.terminal_error(), PeerClosed if closed.clean else PeerBroken)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")), max_size=10),
    st.lists(st.integers(0, 900)),
)
def test_ndjson_any_split(lines: list[bytes], points: list[int]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    dec = NdjsonDecoder()
    out = []
    for chunk in _cuts(data, points):
        dec.receive_data(chunk)
        while (p := dec.next_frame()) is not None:
            out.append(p)
    assert [p for p in out if p] == [p for p in lines if p]


# ---------------------------------------------------------------- the size limit, before allocating


def test_oversize_refused_on_the_length_alone() -> None:
    dec = FrameDecoder()
    dec.receive_data(LEN.pack(MAX_FRAME_SIZE + 1))
    with pytest.raises(sansio._Violation) as e:
        dec.next_frame()
    assert e.value.code is ErrorCode.MESSAGE_TOO_LARGE


def test_max_length_allocates_nothing_ahead() -> None:
    """FRM-003: a 16 MiB length does not make the decoder allocate 16 MiB before the bytes come."""
    dec = FrameDecoder()
    tracemalloc.start()
    try:
        dec.receive_data(LEN.pack(MAX_FRAME_SIZE) + b"x" * 1000)
        assert dec.next_frame() is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_ndjson_line_over_limit() -> None:
    dec = NdjsonDecoder(limit=10)
    dec.receive_data(b"0123456789")
    assert dec.next_frame() is None  # exactly the limit: still waiting for the LF
    dec.receive_data(b"\n")
    assert dec.next_frame() == b"0123456789"
    dec.receive_data(b"0123456789A")
    with pytest.raises(sansio._Violation):
        dec.next_frame()


def test_send_side_limit_keeps_the_connection() -> None:
    """FRM-002: the sender refuses with FrameTooLarge, a MessageTooLarge, and stays open."""
    conn = _open_client()
    with pytest.raises(FrameTooLarge) as e:
        conn.send_frame(b"x" * (MAX_FRAME_SIZE + 1))
    assert isinstance(e.value, MessageTooLarge)
    assert e.value.to_dict()["code"] == "MESSAGE_TOO_LARGE"
    assert conn.state is State.OPEN
    assert conn.send_frame(b"ok") == LEN.pack(2) + b"ok"
    with pytest.raises(ValueError, match="keep-alive"):
        conn.send_frame(b"")
    assert conn.keepalive() == b"\0\0\0\0"


def test_received_oversize_after_handshake() -> None:
    conn = _open_client()
    events = conn.receive_data(LEN.pack(3) + b"abc" + LEN.pack(MAX_FRAME_SIZE + 1))
    assert [type(e) for e in events] == [sansio.Frame, sansio.ProtocolViolation]
    assert conn.state is State.FAILED
    assert conn.data_to_send() == b""  # no error frame after the handshake
    err = conn.terminal_error()
    assert isinstance(err, FrameTooLarge)
    assert err.received


# ---------------------------------------------------------------- the state table


def _open_client() -> Connection:
    conn = Connection(Role.CLIENT, codecs=("json",))
    conn.initiate()
    body = b'{"symphony":"1.0","codec":"json"}'
    conn.receive_data(LEN.pack(len(body)) + body)
    assert conn.state is State.OPEN
    return conn


def test_table_targets_are_states() -> None:
    for (role, state, trigger), target in TRANSITIONS.items():
        assert isinstance(role, Role)
        assert isinstance(state, State)
        assert isinstance(trigger, Trigger)
        assert isinstance(target, State)
        if state in sansio.TERMINAL:
            assert trigger is Trigger.LOCAL_CLOSE  # nothing but our close leaves a terminal state


def test_unlisted_transition_is_a_local_error() -> None:
    conn = Connection(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        conn.initiate()
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"\0")  # before its hello


def test_close_is_idempotent_and_final() -> None:
    conn = _open_client()
    conn.close()
    conn.close()
    assert conn.state is State.CLOSED_LOCAL
    assert isinstance(conn.terminal_error(), TransportClosed)
    assert conn.receive_data(b"anything") == []
    with pytest.raises(TransportClosed):
        conn.send_frame(b"x")


def test_client_reports_server_error_frame() -> None:
    conn = Connection(Role.CLIENT)
    conn.initiate()
    err = sansio.make_error(ErrorCode.INVALID_PROTOCOL_VERSION, "nope", {"major": 1, "minor": 0})
    events = conn.receive_data(LEN.pack(len(err)) + err)
    assert isinstance(events[0], sansio.ProtocolViolation)
    assert not events[0].local
    exc = conn.terminal_error()
    assert isinstance(exc, HandshakeFailed)
    assert exc.code is ErrorCode.INVALID_PROTOCOL_VERSION


def test_server_error_frame_is_small_and_wellformed() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"\xff" * 10)
    out = conn.data_to_send()
    n = LEN.unpack_from(out)[0]
    assert n == len(out) - 4 <= sansio.MAX_HELLO_SIZE
    err = json.loads(out[4:])["error"]
    assert err == {**err, "code": "SERIALIZATION", "category": "serialization", "recoverable": True}


def test_ndjson_client_frames_are_lines() -> None:
    conn = Connection(Role.CLIENT, codecs=("json",), mode=Mode.NDJSON)
    assert conn.initiate().endswith(b"}\n")
    conn.receive_data(b'{"symphony":"1.0","codec":"json"}\n')
    assert conn.send_frame(b'{"a":1}') == b'{"a":1}\n'
    with pytest.raises(ValueError, match="newline"):
        conn.send_frame(b"a\nb")
