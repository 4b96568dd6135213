"""The blocking client (connect_blocking): its fast path (one read, one frame) and everything around
it: frames split over reads, several frames in one read, timeouts on a socket (SO_RCVTIMEO) and on
pipes (poll), large frames written with writev, the peer's end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from symphony_ipc.transport import PeerClosed, TransportTimeout, connect_blocking, listen, sansio

LEN = struct.Struct(">I")


def _frame(payload: bytes) -> bytes:
    return LEN.pack(len(payload)) + payload


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        assert chunk, "the client closed"
        out += chunk
    return bytes(out)


@contextlib.contextmanager
def raw_server(path: str, script: Callable[[socket.socket], None]) -> Iterator[threading.Thread]:
    """A scripted Unix socket server in a thread: the handshake by the sans-I/O core, then
    ``script(conn)``."""
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            conn, _ = ls.accept()
            with conn:
                core = sansio.Connection(sansio.Role.SERVER)
                while core.state is sansio.State.AWAIT_HELLO:
                    core.receive_data(conn.recv(4096))
                conn.sendall(core.data_to_send())
                script(conn)
        except BaseException as e:
            failures.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield t
    finally:
        t.join(10)
        ls.close()
    assert not failures, failures


def test_a_frame_split_over_reads_and_frames_sharing_a_read(short_dir: str) -> None:
    path = f"{short_dir}/s.sock"

    def script(conn: socket.socket) -> None:
        f = _frame(b"split" * 1000)
        conn.sendall(f[:3])
        time.sleep(0.05)
        conn.sendall(f[3:2000])
        time.sleep(0.05)
        conn.sendall(f[2000:])
        conn.sendall(_frame(b"one") + _frame(b"two") + LEN.pack(0) + _frame(b"three"))  # and a keep-alive
        _recv_exact(conn, 1)  # until the client is done

    with raw_server(path, script), connect_blocking(f"unix:{path}") as c:
        assert c.recv_frame(5) == b"split" * 1000
        assert [c.recv_frame(5), c.recv_frame(None), c.recv_frame(5)] == [b"one", b"two", b"three"]
        c.send_frame(b"x")


def test_socket_timeouts_change_between_calls(short_dir: str) -> None:
    """A timeout expires on a silent socket; a later read without a timeout waits for as long as it
    takes (the kernel's receive timeout is cleared), and a timeout applies again after it."""
    path = f"{short_dir}/s.sock"

    def script(conn: socket.socket) -> None:
        _recv_exact(conn, 4 + 2)  # "go": the first timeout has expired
        time.sleep(0.4)  # longer than the first timeout
        conn.sendall(_frame(b"late"))
        _recv_exact(conn, 4 + 4)

    with raw_server(path, script), connect_blocking(f"unix:{path}") as c:
        t0 = time.monotonic()
        with pytest.raises(TransportTimeout):
            c.recv_frame(0.2)
        assert time.monotonic() - t0 >= 0.19
        c.send_frame(b"go")
        assert c.recv_frame(None) == b"late"
        with pytest.raises(TransportTimeout):
            c.recv_frame(0.1)
        c.send_frame(b"done")


def test_a_stalled_frame_times_out_within_the_timeout(short_dir: str) -> None:
    """The first read holds part of a frame and then nothing comes: the timeout counts from the
    call, not again from that first read (on the fast path too: the same timeout as the last call)."""
    path = f"{short_dir}/s.sock"
    timeout = 0.6

    def script(conn: socket.socket) -> None:
        _recv_exact(conn, 4 + 2)
        time.sleep(timeout / 2)
        conn.sendall(LEN.pack(100) + b"only part")
        _recv_exact(conn, 1)  # until the client is done

    with raw_server(path, script), connect_blocking(f"unix:{path}") as c:
        with pytest.raises(TransportTimeout):
            c.recv_frame(timeout)  # sets the kernel's receive timeout: the next call is the fast path
        c.send_frame(b"go")
        t0 = time.monotonic()
        with pytest.raises(TransportTimeout):
            c.recv_frame(timeout)
        elapsed = time.monotonic() - t0
        assert timeout * 0.95 <= elapsed < timeout * 4 / 3  # not timeout / 2 + timeout
        c.send_frame(b"x")


def test_large_frames_are_written_whole_while_the_peer_reads_slowly(short_dir: str) -> None:
    """Frames over WRITEV_MIN go out as prefix + payload in one writev; a peer reading slowly
    makes the writes partial, and the bytes on the wire are still exactly the frames."""
    path = f"{short_dir}/s.sock"
    payloads = [bytes([i]) * n for i, n in enumerate((9000, 1 << 20, 200, 3 << 20), 1)]
    got: list[bytes] = []

    def script(conn: socket.socket) -> None:
        time.sleep(0.2)  # the client's socket buffer fills: its writes are partial
        for _ in payloads:
            (n,) = LEN.unpack(_recv_exact(conn, 4))
            got.append(_recv_exact(conn, n))
        conn.sendall(b"".join(_frame(p) for p in payloads))

    with raw_server(path, script), connect_blocking(f"unix:{path}") as c:
        for p in payloads:
            c.send_frame(p)
        assert [c.recv_frame(10) for _ in payloads] == payloads
    assert got == payloads


def test_the_peer_closing_is_reported(short_dir: str) -> None:
    path = f"{short_dir}/s.sock"

    def script(conn: socket.socket) -> None:
        conn.sendall(_frame(b"bye"))

    with raw_server(path, script), connect_blocking(f"unix:{path}") as c:
        assert c.recv_frame(5) == b"bye"
        with pytest.raises(PeerClosed):
            c.recv_frame(5)
        with pytest.raises(PeerClosed):
            c.recv_frame(None)


@pytest.fixture
def fifo_echo(short_dir: str) -> Iterator[str]:
    """``serve_echo`` at a FIFO address, in a thread's event loop."""
    from symphony_ipc._serve import serve_echo

    address = f"fifo:{short_dir}/f"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: list[Callable[[], None]] = []

    async def main() -> None:
        lst = await listen(address)
        server = asyncio.ensure_future(serve_echo(lst))
        done = asyncio.Event()
        stop.append(done.set)
        started.set()
        await done.wait()
        await lst.close()
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)

    t = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    t.start()
    assert started.wait(10)
    try:
        yield address
    finally:
        loop.call_soon_threadsafe(stop[0])
        t.join(10)
        loop.close()


def test_pipes_large_frames_and_timeouts(fifo_echo: str) -> None:
    """Over FIFOs (a timeout is a poll before the read): frames past the pipe's capacity both
    ways, then a timeout on a silent peer, then frames again."""
    with connect_blocking(fifo_echo) as c:
        for n in (100, 70_000, 1 << 20, 5):
            p = os.urandom(n)
            c.send_frame(p)
            assert c.recv_frame(10) == p
        t0 = time.monotonic()
        with pytest.raises(TransportTimeout):
            c.recv_frame(0.2)
        assert time.monotonic() - t0 >= 0.19
        c.send_frame(b"again")
        assert c.recv_frame(None) == b"again"
