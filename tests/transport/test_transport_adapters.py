"""What each adapter does with files, permissions, processes and bad addresses (TRN-001..005)."""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import stat
import sys

import pytest

from symphony_conformance.transport_checks import RawPeer, child_processes
from symphony_ipc.transport import (
    AddressError,
    AddressInUse,
    ConnectionRefused,
    Mode,
    PeerClosed,
    StreamConnection,
    TransportTimeout,
    connect,
    fd_pipe_pair,
    listen,
    parse_address,
)

SERVE_STDIO = "stdio:" + shlex.join(
    [sys.executable, "-m", "symphony_ipc.cli", "serve", "--echo", "--listen", "stdio"]
)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "nope:x",
        "unix:",
        "fifo:",
        "memory:",
        "unix:/" + "x" * 200,
        "unix:/tmp/a\0b",
        "stdio:'unterminated",
    ],
)
def test_bad_addresses_fail_before_io(address: str) -> None:
    with pytest.raises(AddressError):
        parse_address(address)


def test_unix_socket_file_lifecycle(short_dir: str) -> None:
    path = os.path.join(short_dir, "a.sock")

    async def body() -> None:
        lst = await listen(f"unix:{path}")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(AddressInUse, match="already listens"):
            await listen(f"unix:{path}")
        await lst.close()
        assert not os.path.exists(path)

    asyncio.run(body())


def test_unix_stale_socket_is_replaced_other_files_are_not(short_dir: str) -> None:
    path = os.path.join(short_dir, "stale.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)  # bound, never listening, closed: a stale socket file
    plain = os.path.join(short_dir, "plain")
    with open(plain, "w") as f:
        f.write("keep me")

    async def body() -> None:
        lst = await listen(f"unix:{path}")
        await lst.close()
        with pytest.raises(AddressInUse, match="not a socket"):
            await listen(f"unix:{plain}")

    asyncio.run(body())
    with open(plain) as f:
        assert f.read() == "keep me"


def test_unix_close_leaves_a_replaced_file_alone(short_dir: str) -> None:
    path = os.path.join(short_dir, "r.sock")

    async def body() -> None:
        lst = await listen(f"unix:{path}")
        os.unlink(path)
        with socket.socket(socket.AF_UNIX) as other:
            other.bind(path)  # someone else's socket now
            await lst.close()
            assert os.path.exists(path)

    asyncio.run(body())


def test_fifo_files_and_permissions(short_dir: str) -> None:
    d = os.path.join(short_dir, "ff")

    async def body() -> None:
        lst = await listen(f"fifo:{d}")
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        st = os.stat(os.path.join(d, "connect"))
        assert stat.S_ISFIFO(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        accepting = asyncio.ensure_future(lst.accept())
        client = await connect(f"fifo:{d}")
        server = await accepting
        assert os.listdir(d) == ["connect"]  # the pair was unlinked once open on both sides
        await client.send_frame(b"hi")
        assert await server.recv_frame() == b"hi"
        await client.close()
        with pytest.raises(PeerClosed):
            await server.recv_frame()
        await server.close()
        with pytest.raises(AddressInUse):
            await listen(f"fifo:{d}")
        await lst.close()
        assert not os.path.exists(d)  # created by the listener, removed by it

    asyncio.run(body())


def test_fifo_refusals(short_dir: str) -> None:
    async def body() -> None:
        with pytest.raises(ConnectionRefused):
            await connect(f"fifo:{short_dir}/missing")
        with pytest.raises(ConnectionRefused):
            await connect(f"fifo:{short_dir}")  # a directory without a server
        assert os.listdir(short_dir) == []  # the refused client removed its FIFOs
        os.mkfifo(os.path.join(short_dir, "connect"))  # stale: nobody reads it
        lst = await listen(f"fifo:{short_dir}")
        await lst.close()
        assert os.path.isdir(short_dir)  # not created by the listener: kept
        with open(os.path.join(short_dir, "connect"), "w") as f:
            f.write("a regular file")
        with pytest.raises(AddressInUse, match="not a FIFO"):
            await listen(f"fifo:{short_dir}")

    asyncio.run(body())


def test_stdio_child_echo_close_reaps() -> None:
    async def body() -> None:
        conn = await connect(SERVE_STDIO)
        assert isinstance(conn, StreamConnection)
        await conn.send_frame(b'{"x":1}')
        assert await conn.recv_frame(timeout=30) == b'{"x":1}'
        proc = conn._pipe.process  # type: ignore[attr-defined]
        await conn.close()
        await conn.close()
        assert proc.returncode == 0

    asyncio.run(body())
    assert child_processes() == []


def test_stdio_silent_child_times_out_and_is_reaped() -> None:
    async def body() -> None:
        with pytest.raises(TransportTimeout):
            await connect("stdio:sleep 60", timeout=0.3)

    asyncio.run(body())
    assert child_processes() == []


def test_stdio_missing_command_is_refused() -> None:
    async def body() -> None:
        with pytest.raises(ConnectionRefused, match="cannot run"):
            await connect("stdio:/nonexistent/command --flag")

    asyncio.run(body())


def test_ndjson_client_over_a_socket(short_dir: str) -> None:
    """FRM-023: the reference serves NDJSON on every transport, detected by the first byte."""
    path = f"unix:{short_dir}/nd.sock"

    async def body() -> None:
        lst = await listen(path)
        accepting = asyncio.ensure_future(lst.accept())
        client = await connect(path, codecs=("json",), mode=Mode.NDJSON)
        server = await accepting
        assert client.mode is server.mode is Mode.NDJSON
        await server.send_frame(b'{"a":1}')
        assert await client.recv_frame() == b'{"a":1}'
        for c in (client, server, lst):
            await c.close()

    asyncio.run(body())


def test_silent_client_does_not_block_accept(short_dir: str) -> None:
    """TRN-010: handshakes run concurrently; a silent client is dropped after the timeout."""
    address = f"memory:{short_dir}"

    async def body() -> None:
        lst = await listen(address, handshake_timeout=1.0)
        scheme, target = parse_address(address)
        silent = RawPeer(await scheme.open(target, 1.0))
        accepting = asyncio.ensure_future(lst.accept())
        good = await connect(address)
        server = await accepting
        await good.send_frame(b"served")
        assert await server.recv_frame() == b"served"
        await silent.wait_eof()  # dropped by the handshake timeout
        assert lst.rejected == 1
        for c in (good, server, lst):
            await c.close()
        silent.close()

    asyncio.run(body())


def test_fd_pipe_pair_moves_bytes_both_ways() -> None:
    async def body() -> None:
        a, b = fd_pipe_pair()
        pa, pb = RawPeer(a), RawPeer(b)
        await pa.send(b"\0\0\0\x02hi")
        assert await pb.read_frame() == b"hi"
        await pb.send(b"\0\0\0\x02yo")
        assert await pa.read_frame() == b"yo"
        pa.close()
        await pb.wait_eof()
        pb.close()

    asyncio.run(body())


@pytest.mark.parametrize("scheme", ["memory", "unix"])
def test_callback_echo_applies_back_pressure(scheme: str, short_dir: str) -> None:
    """The serve command's echo (a thread of its own over a socket, the reader callback over the
    in-process pipe); a client that does not read makes it stop reading (TRN-013) and nothing is
    lost."""
    from symphony_ipc._serve import serve_echo

    address = f"unix:{short_dir}/bp.sock" if scheme == "unix" else f"memory:{short_dir}"

    async def body() -> None:
        lst = await listen(address)
        server = asyncio.ensure_future(serve_echo(lst))
        client = await connect(address)
        frames = [bytes([i]) * (256 << 10) for i in range(48)]
        sent = 0

        async def send_all() -> None:
            nonlocal sent
            for f in frames:
                await client.send_frame(f)
                sent += 1

        sender = asyncio.ensure_future(send_all())
        last, stalled = -1, 0
        while not sender.done() and stalled < 5:
            await asyncio.sleep(0.02)
            stalled, last = (stalled + 1 if sent == last else 0), sent
        assert not sender.done(), "12 MiB echoed into a client that reads nothing: no back-pressure"
        for f in frames:
            assert await client.recv_frame() == f
        await sender
        await client.close()
        await lst.close()
        await server

    asyncio.run(body())
