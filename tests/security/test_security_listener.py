"""A listener's security in process: refused peers, unverified peers, the connection limit, the
handshake timeout, the shared secret, socket modes and directories, refusal counts
(spec/security.md SEC-001..SEC-008, ROB-002, ROB-003, ROB-006)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from symphony_ipc.security import SecurityPolicy, UnsafeDirectory
from symphony_ipc.transport import HandshakeFailed, PeerBroken, PeerClosed, TransportTimeout, connect, listen

T = TypeVar("T")
LEN = struct.Struct(">I")
ROOT_DIR = Path(__file__).resolve().parents[2]


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def sdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-l-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _frame(payload: bytes) -> bytes:
    return LEN.pack(len(payload)) + payload


def _hello(codecs: tuple[str, ...] = ("json",), version: str = "1.0") -> bytes:
    return _frame(json.dumps({"symphony": version, "codecs": list(codecs)}).encode())


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readexactly(4)
        return await reader.readexactly(LEN.unpack(head)[0])
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def _error_code(reader: asyncio.StreamReader) -> str | None:
    frame = await _read_frame(reader)
    if frame is None:
        return None
    err = json.loads(frame).get("error")
    return err["code"] if isinstance(err, dict) else None


async def _at_eof(reader: asyncio.StreamReader) -> bool:
    try:
        return await reader.read(1) == b""
    except ConnectionError:
        return True


def test_peer_not_on_the_allow_list_is_refused_before_a_byte_is_read(sdir: str) -> None:
    """SEC-004, SEC-005, SEC-008: another uid on the allow list only: our own connection gets
    PEER_NOT_ALLOWED through the client API, the raw wire sees the error frame then the end, and
    the refusals are counted."""
    address = f"unix:{sdir}/s.sock"

    async def body() -> None:
        policy = SecurityPolicy(allow_uids=frozenset({os.geteuid() + 1}), linger=0.2)
        async with await listen(address, security=policy) as listener:
            with pytest.raises(HandshakeFailed) as info:
                await connect(address)
            assert info.value.code.value == "PEER_NOT_ALLOWED"
            assert "allow list" in info.value.message
            reader, writer = await asyncio.open_unix_connection(f"{sdir}/s.sock")
            writer.write(b"GET / HTTP/1.1\r\n\r\n" * 100)  # parsed, it would be a SERIALIZATION refusal
            assert await _error_code(reader) == "PEER_NOT_ALLOWED"
            assert await _at_eof(reader)
            writer.close()
            st = listener.security_stats
            assert (st.refused_peer, st.admitted, st.handshake_failures, st.live) == (2, 0, 0, 0)

    run(body())


def test_unverified_peers_are_refused_unless_allowed(sdir: str) -> None:
    """SEC-006: TCP loopback has no credentials: refused by default, admitted when allowed."""
    spec = importlib.util.spec_from_file_location("tcp_transport", ROOT_DIR / "examples" / "tcp_transport.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tcp_transport"] = module
    spec.loader.exec_module(module)
    maker = module.make()
    address = maker.fresh_address()

    async def body() -> None:
        async with await listen(address) as listener:
            with pytest.raises(HandshakeFailed) as info:
                await connect(address)
            assert info.value.code.value == "PEER_NOT_ALLOWED"
            assert "SEC-006" in info.value.message
            assert listener.security_stats.refused_unverified == 1
        address2 = maker.fresh_address()
        async with await listen(address2, security=SecurityPolicy(allow_unverified=True)) as listener:
            accepting = asyncio.ensure_future(listener.accept())
            async with await connect(address2) as c, await accepting as s:
                await c.send_frame(b"tcp")
                assert await s.recv_frame() == b"tcp"

    run(body())


def test_connection_limit(sdir: str) -> None:
    """ROB-006: handshaking connections count; the one beyond the limit gets CONNECTION_LIMIT and a
    close; a slot frees as soon as a connection closes."""
    address = f"unix:{sdir}/s.sock"

    async def body() -> None:
        async with await listen(address, security=SecurityPolicy(max_connections=2, linger=0.2)) as listener:
            accepting = asyncio.ensure_future(listener.accept())
            first = await connect(address)
            server_first = await accepting
            _silent_r, silent_w = await asyncio.open_unix_connection(f"{sdir}/s.sock")  # handshaking
            await asyncio.sleep(0.05)
            with pytest.raises(HandshakeFailed) as info:
                await connect(address)
            assert info.value.code.value == "CONNECTION_LIMIT"
            r, w = await asyncio.open_unix_connection(f"{sdir}/s.sock")
            assert await _error_code(r) == "CONNECTION_LIMIT"
            w.close()
            assert listener.security_stats.refused_limit == 2
            silent_w.close()  # the silent one leaves: its slot frees
            for _ in range(100):
                if listener.security_stats.live < 2:
                    break
                await asyncio.sleep(0.01)
            accepting = asyncio.ensure_future(listener.accept())
            again = await connect(address)
            server_again = await accepting
            await again.send_frame(b"in")
            assert await server_again.recv_frame() == b"in"
            for c in (first, server_first, again, server_again):
                await c.close()
            assert listener.security_stats.peak_live == 2
            assert listener.security_stats.live == 0

    run(body())


def test_handshake_timeout_cuts_off_silent_and_trickling_clients(sdir: str) -> None:
    """ROB-002: a silent client and one trickling its hello get HANDSHAKE_TIMEOUT and a close after
    the timeout; a normal client connecting meanwhile is not delayed; timeouts are counted."""
    address = f"unix:{sdir}/s.sock"

    async def body() -> None:
        async with await listen(address, handshake_timeout=0.3) as listener:
            silent_r, silent_w = await asyncio.open_unix_connection(f"{sdir}/s.sock")
            trickle_r, trickle_w = await asyncio.open_unix_connection(f"{sdir}/s.sock")
            t0 = time.monotonic()

            async def trickle() -> None:
                for b in _hello():
                    if trickle_w.is_closing():
                        return
                    trickle_w.write(bytes([b]))
                    await asyncio.sleep(0.05)

            trickling = asyncio.ensure_future(trickle())
            accepting = asyncio.ensure_future(listener.accept())
            normal = await connect(address)
            server = await accepting
            await normal.send_frame(b"not delayed")
            assert await server.recv_frame() == b"not delayed"
            assert await _error_code(silent_r) == "HANDSHAKE_TIMEOUT"
            assert await _error_code(trickle_r) == "HANDSHAKE_TIMEOUT"
            assert time.monotonic() - t0 >= 0.25
            assert await _at_eof(silent_r)
            trickling.cancel()
            for w in (silent_w, trickle_w):
                w.close()
            await normal.close()
            await server.close()
            for _ in range(200):  # counted once the error frame is flushed and the pipe closed
                if listener.security_stats.handshake_timeouts == 2:
                    break
                await asyncio.sleep(0.01)
            assert listener.security_stats.handshake_timeouts == 2

    run(body())


def test_client_sees_the_timeout_as_a_typed_error(sdir: str) -> None:
    """ROB-002 from the client's side: a server that never answers is a TransportTimeout."""
    path = f"{sdir}/mute.sock"
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(path)
    mute.listen()

    async def body() -> None:
        with pytest.raises(TransportTimeout):
            await connect(f"unix:{path}", timeout=0.2)

    try:
        run(body())
    finally:
        mute.close()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "SERIALIZATION"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "SERIALIZATION"),  # a TLS ClientHello
        (LEN.pack(0xFFFFFFFF), "SERIALIZATION"),
        (_frame(b"\xff\xfe not utf-8"), "SERIALIZATION"),
        (_frame(b"[" * 3000 + b"]" * 3000), "SERIALIZATION"),
        (_frame(b'{"symphony":"1.0","codecs":' + b"[" * 1000 + b"]" * 1000 + b"}"), "SERIALIZATION"),
        (_hello(version="99.0"), "INVALID_PROTOCOL_VERSION"),
        (_hello(version="1.99999"), "SERIALIZATION"),
        (_hello(codecs=("cbor",)), "SERIALIZATION"),
    ],
    ids=["http", "tls", "huge-length", "utf8", "nested", "nested-codecs", "major-99", "bad-minor", "codec"],
)
def test_bad_input_before_the_handshake_gets_a_typed_error_and_others_are_served(
    sdir: str, data: bytes, code: str
) -> None:
    """ROB-001, ROB-003: each bad first frame gets its typed error frame and a close, at once; the
    listener goes on serving."""
    address = f"unix:{sdir}/s.sock"

    async def body() -> None:
        async with await listen(address) as listener:
            r, w = await asyncio.open_unix_connection(f"{sdir}/s.sock")
            w.write(data)
            assert await asyncio.wait_for(_error_code(r), 5) == code
            assert await _at_eof(r)
            w.close()
            accepting = asyncio.ensure_future(listener.accept())
            async with await connect(address) as c, await accepting as s:
                await c.send_frame(b"still serving")
                assert await s.recv_frame() == b"still serving"
            assert listener.security_stats.handshake_failures == 1

    run(body())


def test_truncated_hello_then_end_of_stream_closes_quietly(sdir: str) -> None:
    """ROB-003: a stream that ends inside the hello is closed without an error frame."""
    address = f"unix:{sdir}/s.sock"

    async def body() -> None:
        async with await listen(address):
            r, w = await asyncio.open_unix_connection(f"{sdir}/s.sock")
            w.write(_hello()[:10])
            w.write_eof()
            assert await asyncio.wait_for(r.read(), 5) == b""
            w.close()

    run(body())


def test_shared_secret_handshake(sdir: str) -> None:
    """SEC-007: the right secret connects; no secret, a wrong secret (either side) is refused with
    PEER_NOT_ALLOWED on both sides; failures are counted."""
    address = f"unix:{sdir}/s.sock"
    secret = os.urandom(32)

    async def body() -> None:
        policy = SecurityPolicy(secret=secret, linger=0.2)
        async with await listen(address, security=policy) as listener:
            accepting = asyncio.ensure_future(listener.accept())
            async with await connect(address, secret=secret, codecs=("json",)) as c, await accepting as s:
                assert c.codec == s.codec == "json"
                for payload in (b"after auth", b"x" * 100_000):
                    await c.send_frame(payload)
                    assert await s.recv_frame() == payload
                    await s.send_frame(payload[::-1])
                    assert await c.recv_frame() == payload[::-1]
            for kwargs in ({}, {"secret": os.urandom(32)}):
                with pytest.raises(HandshakeFailed) as info:
                    await connect(address, **kwargs)
                assert info.value.code.value == "PEER_NOT_ALLOWED", kwargs
            # no secret: the server refuses; a wrong one: the client finds out first and leaves
            st = listener.security_stats
            assert (st.auth_failures, st.handshake_failures) == (1, 1)
        # a client with the secret refuses a server that does not know it
        async with await listen(address, security=SecurityPolicy(secret=os.urandom(32), linger=0.2)):
            with pytest.raises(HandshakeFailed) as info:
                await connect(address, secret=secret)
            assert info.value.code.value == "PEER_NOT_ALLOWED"

    run(body())


def test_socket_mode_and_unsafe_directories(sdir: str) -> None:
    """SEC-001, SEC-002, SEC-003: owner-only socket by default, the configured mode otherwise; no
    listening in a world-writable directory without the sticky bit (unix and fifo)."""

    async def body() -> None:
        path = f"{sdir}/a.sock"
        async with await listen(f"unix:{path}"):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        async with await listen(f"unix:{path}", security=SecurityPolicy(socket_mode=0o660)):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        fifo_dir = f"{sdir}/ff"
        async with await listen(f"fifo:{fifo_dir}"):
            assert stat.S_IMODE(os.stat(fifo_dir).st_mode) == 0o700
            assert stat.S_IMODE(os.stat(f"{fifo_dir}/connect").st_mode) == 0o600
        unsafe = f"{sdir}/open"
        os.mkdir(unsafe)
        os.chmod(unsafe, 0o777)
        with pytest.raises(UnsafeDirectory, match="writable by group and others"):
            await listen(f"unix:{unsafe}/s.sock")
        with pytest.raises(UnsafeDirectory):
            await listen(f"fifo:{unsafe}/fifos")
        assert os.listdir(unsafe) == []  # nothing created, nothing left
        async with await listen(f"unix:{unsafe}/s.sock", security=SecurityPolicy(check_directory=False)):
            pass

    run(body())


_FOREIGN_CLIENT = r"""
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect": e.strerror})); sys.exit(0)
body = b'{"symphony":"1.0","codecs":["json"]}'
s.sendall(struct.pack(">I", len(body)) + body)
s.settimeout(10)
data = b""
while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps({"uid": os.geteuid(), "answer": data[4:].decode(errors="replace")}))
"""


#: a Python another user can run (a venv's may live under root's home): the system's
FOREIGN_PYTHON = shutil.which("python3", path="/usr/bin:/usr/local/bin:/bin") or sys.executable


@pytest.mark.skipif(os.geteuid() != 0, reason="running a client as another user needs root")
def test_a_peer_of_another_user_is_refused(sdir: str) -> None:
    """SEC-004, SEC-005: a client running as nobody, on a socket everybody may connect to (mode
    0666 in a traversable directory), gets PEER_NOT_ALLOWED; with its uid allowed it is welcome."""
    os.chmod(sdir, 0o711)
    address = f"unix:{sdir}/s.sock"

    def foreign() -> dict[str, Any]:
        out = subprocess.run(
            [FOREIGN_PYTHON, "-I", "-S", "-c", _FOREIGN_CLIENT, f"{sdir}/s.sock"],
            user=65534,
            group=65534,
            extra_groups=[],
            capture_output=True,
            timeout=20,
            check=True,
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    async def body() -> None:
        policy = SecurityPolicy(socket_mode=0o666, linger=0.5)
        async with await listen(address, security=policy) as listener:
            answer = await asyncio.to_thread(foreign)
            assert answer["uid"] == 65534
            assert json.loads(answer["answer"])["error"]["code"] == "PEER_NOT_ALLOWED"
            assert listener.security_stats.refused_peer == 1
        allowed = SecurityPolicy(socket_mode=0o666, allow_uids=frozenset({0, 65534}))
        async with await listen(address, security=allowed):
            answer = await asyncio.to_thread(foreign)
            assert json.loads(answer["answer"])["codec"] == "json"
        async with await listen(address):  # the default mode 0600: nobody cannot even connect
            answer = await asyncio.to_thread(foreign)
            assert answer == {"connect": "Permission denied"}

    run(body())


_DIES_MID_FRAME = r"""
import json, os, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
body = b'{"symphony":"1.0","codecs":["json"]}'
s.sendall(struct.pack(">I", len(body)) + body)
s.recv(4096)
s.sendall(struct.pack(">I", 1 << 20) + b"x" * 1000)  # a frame begun, never finished
print("ready", flush=True)
time.sleep(60)
"""


def test_a_client_killed_mid_frame_disturbs_no_other(sdir: str) -> None:
    """ROB-008: while one client streams frames, others are SIGKILLed mid-handshake and mid-frame:
    every frame of the live client comes back in order, the dead ones' connections are freed."""
    address = f"unix:{sdir}/s.sock"
    from symphony_ipc._serve import serve_echo

    async def body() -> None:
        listener = await listen(address)
        server = asyncio.ensure_future(serve_echo(listener))
        try:
            live = await connect(address)
            victims = [
                await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _DIES_MID_FRAME, f"{sdir}/s.sock", stdout=subprocess.PIPE
                )
                for _ in range(3)
            ]
            for v in victims:
                assert v.stdout is not None
                assert await v.stdout.readline() == b"ready\n"
            payloads = [b"frame %d" % i for i in range(500)]
            for i, p in enumerate(payloads):
                await live.send_frame(p)
                if i == 250:
                    for v in victims:
                        v.kill()
            got = [await live.recv_frame(10) for _ in payloads]
            assert got == payloads
            for v in victims:
                await v.wait()
            for _ in range(200):
                if listener.security_stats.live == 1:
                    break
                await asyncio.sleep(0.01)
            assert listener.security_stats.live == 1
            await live.close()
        finally:
            await listener.close()
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)

    run(body())


def test_closed_peer_reports_are_distinct(sdir: str) -> None:
    """ROB-003: after a refusal the client API reports the code, never a bare broken pipe, even
    when the refused client sends more right after its hello."""
    address = f"unix:{sdir}/s.sock"

    async def body() -> None:
        policy = SecurityPolicy(allow_uids=frozenset(), linger=0.5)
        async with await listen(address, security=policy):
            codes = []
            for _ in range(20):
                try:
                    await connect(address, codecs=("json",))
                except HandshakeFailed as e:
                    codes.append(e.code.value)
                except (PeerBroken, PeerClosed) as e:  # pragma: no cover - the failure this guards
                    raise AssertionError(f"a refusal surfaced as {type(e).__name__}") from e
            assert codes == ["PEER_NOT_ALLOWED"] * 20

    run(body())
