"""Fuzzing the framing and handshake state machine (spec/security.md ROB-005, spec/transport.md
FRM-005) and the secret handshake (SEC-007): random bytes and mutations of the golden framing
vectors, fed whole and cut at random points. The only outcomes are the events of the spec, the
same whatever the cuts; nothing raises; nothing buffers beyond one frame plus one read."""

# ruff: noqa: PT017  (a fuzz oracle inspects the typed error it caught)
from __future__ import annotations

import atexit
import json
import struct

from fuzz_support import FUZZ, Tally, any_bytes, framing_corpus, mutated, watchdog
from hypothesis import given
from hypothesis import strategies as st

from symphony_ipc.security import SecretHandshake
from symphony_ipc.transport import sansio
from symphony_ipc.transport.sansio import (
    MAX_FRAME_SIZE,
    MAX_HELLO_SIZE,
    Connection,
    ConnectionClosed,
    Frame,
    HandshakeDone,
    Mode,
    ProtocolViolation,
    Role,
    run_handshake_vector,
)

SEEDS = tuple(bytes.fromhex(v["input"]["hex"]) for v in framing_corpus())
HELLO = sansio.frame_bytes(sansio.make_hello((1, 0), ("json",)))
STREAMS = tuple(HELLO + s for s in SEEDS) + SEEDS  # past the handshake too
CODES = {"MESSAGE_TOO_LARGE", "SERIALIZATION", "INVALID_PROTOCOL_VERSION"}
TALLY = Tally("framing")
atexit.register(lambda: print(TALLY.report()) if TALLY.total > 1000 else None)


@st.composite
def cuts(draw: st.DrawFn, data: bytes) -> list[bytes]:
    points = sorted(draw(st.sets(st.integers(0, len(data)), max_size=8)))
    out, last = [], 0
    for p in [*points, len(data)]:
        if p > last:
            out.append(data[last:p])
            last = p
    return out


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(any_bytes(STREAMS))
    return data, draw(cuts(data))


def _feed(conn: Connection, chunks: list[bytes], eof: bool) -> list[sansio.Event]:
    events: list[sansio.Event] = []
    for chunk in chunks:
        events += conn.receive_data(chunk)
        dec = conn._decoder
        if dec is not None:  # ROB-005: at most one maximum frame plus one read unparsed
            assert dec.buffered <= MAX_FRAME_SIZE + 4 + len(chunk)
    if eof:
        events += conn.receive_eof()
    return events


def _check_events(conn: Connection, events: list[sansio.Event]) -> None:
    kinds = [type(e) for e in events]
    assert set(kinds) <= {HandshakeDone, Frame, ConnectionClosed, ProtocolViolation}
    assert kinds.count(HandshakeDone) <= 1
    for e in events:
        if isinstance(e, ProtocolViolation):
            assert e.code.value in CODES, e
        if isinstance(e, Frame):
            assert e.payload
            assert len(e.payload) <= MAX_FRAME_SIZE
    terminal = [i for i, k in enumerate(kinds) if k in (ConnectionClosed, ProtocolViolation)]
    assert len(terminal) <= 1, kinds
    assert not terminal or terminal[0] == len(kinds) - 1, kinds
    if conn.must_close:
        assert conn.receive_data(b"\0\0\0\1x") == []  # a terminal state stays put
        assert conn.terminal_error() is not None


def _replies(data: bytes, mode: Mode | None) -> list[dict[str, object]]:
    """The server's own frames: each a JSON object of at most 4,096 bytes (welcome or error)."""
    out: list[dict[str, object]] = []
    if mode is Mode.NDJSON:
        lines = data.split(b"\n")
        assert lines[-1] == b""
        frames = lines[:-1]
    else:
        frames = []
        while data:
            (n,) = struct.unpack(">I", data[:4])
            frames.append(data[4 : 4 + n])
            data = data[4 + n :]
    for f in frames:
        assert len(f) <= MAX_HELLO_SIZE
        obj = json.loads(f)
        assert isinstance(obj, dict)
        assert "codec" in obj or obj["error"]["code"] in CODES
        out.append(obj)
    return out


@FUZZ
@given(stream=streams(), eof=st.booleans())
def test_server_state_machine(stream: tuple[bytes, list[bytes]], eof: bool) -> None:
    _data, chunks = stream
    with watchdog():
        conn = Connection(Role.SERVER, codecs=("msgpack", "json"))
        events = _feed(conn, chunks, eof)
        _check_events(conn, events)
        replies = _replies(conn.data_to_send(), conn.mode)
    assert len(replies) <= 1
    TALLY.add(f"server {conn.state.value}")


@FUZZ
@given(stream=streams(), eof=st.booleans(), codecs=st.sampled_from([("json",), ("msgpack", "json")]))
def test_client_state_machine(stream: tuple[bytes, list[bytes]], eof: bool, codecs: tuple[str, ...]) -> None:
    _data, chunks = stream
    with watchdog():
        conn = Connection(Role.CLIENT, codecs=codecs)
        conn.initiate()
        events = _feed(conn, chunks, eof)
        _check_events(conn, events)
        assert conn.data_to_send() == b""  # a client answers nothing (FRM-016)
    TALLY.add(f"client {conn.state.value}")


@FUZZ
@given(
    data=any_bytes(SEEDS), role=st.sampled_from(["server", "client"]), eof=st.booleans(), seed=st.randoms()
)
def test_cuts_do_not_change_the_outcome(data: bytes, role: str, eof: bool, seed: object) -> None:
    """FRM-005 under fuzzing: the outcome of a stream is the same fed whole or cut anywhere."""
    import random

    rng = seed if isinstance(seed, random.Random) else random.Random(0)
    points = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, 6)))
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]
    inp = {"role": role, "hex": data.hex(), "eof": eof}
    with watchdog():
        whole = run_handshake_vector(inp)
        cut = run_handshake_vector(inp, chunks)
    assert whole == cut


@FUZZ
@given(data=any_bytes(SEEDS), limit=st.sampled_from([16, MAX_HELLO_SIZE, MAX_FRAME_SIZE]))
def test_frame_decoders(data: bytes, limit: int) -> None:
    for dec in (sansio.FrameDecoder(limit), sansio.NdjsonDecoder(limit)):
        dec.receive_data(data)
        try:
            while (p := dec.next_frame()) is not None:
                assert len(p) <= limit
        except sansio._Violation as v:
            assert v.code.value == "MESSAGE_TOO_LARGE"
        assert dec.buffered <= len(data)


SECRET = b"0123456789abcdef0123456789abcdef"


def _auth_frames() -> tuple[bytes, ...]:
    client = SecretHandshake(Role.CLIENT, SECRET, nonce=b"\1" * 32)
    server = SecretHandshake(Role.SERVER, SECRET, nonce=b"\2" * 32)
    first = client.initiate()
    server.receive_data(first)
    challenge = server.data_to_send()
    client.receive_data(challenge)
    answer = client.data_to_send()
    return (first, challenge, answer, first + answer + HELLO)


AUTH = _auth_frames()


@FUZZ
@given(
    data=st.one_of(mutated(AUTH), st.binary(max_size=600)), role=st.sampled_from([Role.SERVER, Role.CLIENT])
)
def test_secret_handshake_never_raises(data: bytes, role: Role) -> None:
    """SEC-007: any bytes leave the secret handshake waiting, done (only with the right proof) or
    failed with a reason; a server's only reply besides the challenge is PEER_NOT_ALLOWED."""
    hs = SecretHandshake(role, SECRET, nonce=b"\2" * 32 if role is Role.SERVER else b"\1" * 32)
    if role is Role.CLIENT:
        hs.initiate()
    with watchdog():
        for i in range(0, len(data), 7):
            hs.receive_data(data[i : i + 7])
    out = hs.data_to_send()
    if hs.failed and role is Role.SERVER:
        assert b"PEER_NOT_ALLOWED" in out
    if hs.done and role is Role.SERVER:
        assert AUTH[2] in data  # done only after the right proof
    TALLY.add("auth " + ("done" if hs.done else "failed" if hs.failed else "waiting"))


def test_secret_handshake_takes_lower_case_hex_only() -> None:
    """Regression (found by the thorough fuzz run): the right proof spelled with an upper-case
    digit was accepted; section 2 has lower-case hex only, so it is refused like any bad proof."""
    first, _, answer, _ = AUTH
    proof = json.loads(answer[4:])["proof"]
    upper = next(i for i, c in enumerate(proof) if c.isalpha())
    bad = proof[:upper] + proof[upper].upper() + proof[upper + 1 :]
    server = SecretHandshake(Role.SERVER, SECRET, nonce=b"\2" * 32)
    server.receive_data(first + sansio.frame_bytes(json.dumps({"proof": bad}).encode()) + HELLO)
    assert server.failed
    assert not server.done
    assert b"PEER_NOT_ALLOWED" in server.data_to_send()


def test_secret_handshake_happy_path_and_proof_labels() -> None:
    first, challenge, answer, _ = AUTH
    server = SecretHandshake(Role.SERVER, SECRET, nonce=b"\2" * 32)
    server.receive_data(first + answer + HELLO)
    server.data_to_send()
    assert server.done
    assert server.leftover == HELLO
    reflected = SecretHandshake(Role.SERVER, SECRET, nonce=b"\2" * 32)  # the server's proof as ours
    obj = json.loads(challenge[4:])
    reflected.receive_data(first + sansio.frame_bytes(json.dumps({"proof": obj["proof"]}).encode()))
    assert reflected.failed
    assert not reflected.done
    assert SecretHandshake(Role.CLIENT, SECRET).initiate() != SecretHandshake(Role.CLIENT, SECRET).initiate()
