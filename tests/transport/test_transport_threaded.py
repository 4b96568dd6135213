"""StreamConnection.serve_in_thread: a connection answered by a thread of its own with blocking
system calls (the echo server's path), and its fallback on pipes without file descriptors.

What must hold as on the event loop: every frame answered in order, the clean end returned and the
others raised, close flushes and frees within its bound even while the thread is blocked in a read
or in a write to a peer that does not read (TRN-011, TRN-013), abort frees everything.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Awaitable, Callable

import pytest

from symphony_ipc.transport import (
    MAX_FRAME_SIZE,
    FrameTooLarge,
    PeerClosed,
    StreamConnection,
    TransportError,
    connect,
    listen,
)
from symphony_ipc.transport._base import CLOSE_FLUSH_TIMEOUT

THREADED = ("unix", "fifo")


def _address(scheme: str, d: str) -> str:
    return {"unix": f"unix:{d}/t.sock", "fifo": f"fifo:{d}/f", "memory": f"memory:{d}"}[scheme]


def _serving_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("symphony-serve")]


async def _threads_ended() -> bool:
    """The serving threads have ended (one may still be returning right after it handed over)."""
    for _ in range(200):
        if not _serving_threads():
            return True
        await asyncio.sleep(0.01)
    return False


async def _pair(address: str) -> tuple[object, StreamConnection, StreamConnection]:
    lst = await listen(address)
    client = await connect(address)
    server = await lst.accept(timeout=10)
    assert isinstance(server, StreamConnection)
    return lst, client, server


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 60))


@pytest.mark.parametrize("scheme", [*THREADED, "memory"])
def test_answers_every_frame_in_order_and_returns_at_the_clean_end(scheme: str, short_dir: str) -> None:
    """Small and large frames (over the thread's first read buffer, over a pipe's capacity, written
    with writev) come back in order; a None answer sends nothing; the peer's close ends it."""
    sizes = [1, 200, 5000, 70_000, 300_000, 16 << 10, 3]

    def handler(p: bytes) -> bytes | None:
        return None if p == b"skip" else p[::-1]

    async def body() -> None:
        lst, client, server = await _pair(_address(scheme, short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(handler))
        await asyncio.sleep(0.05)
        assert bool(_serving_threads()) == (scheme in THREADED)
        for i, n in enumerate(sizes):
            frame = bytes([i + 1]) * (n - 1) + b"!"
            await client.send_frame(frame)
            if i == 2:
                await client.send_frame(b"skip")
            assert await client.recv_frame(10) == frame[::-1]
        for i in range(20):  # a burst: several frames in one read
            await client.send_frame(b"burst %d" % i)
        for i in range(20):
            assert await client.recv_frame(10) == (b"burst %d" % i)[::-1]
        await client.close()
        await asyncio.wait_for(task, 10)  # the clean end is returned, not raised
        assert task.exception() is None
        await server.close()
        assert await _threads_ended()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


@pytest.mark.parametrize("scheme", THREADED)
def test_frames_queued_before_the_handover_are_answered_first(scheme: str, short_dir: str) -> None:
    async def body() -> None:
        lst, client, server = await _pair(_address(scheme, short_dir))
        for i in range(3):
            await client.send_frame(b"early %d" % i)
        while server.pending_frames < 3:
            await asyncio.sleep(0.01)
        task = asyncio.ensure_future(server.serve_in_thread(lambda p: p.upper()))
        await client.send_frame(b"late")
        got = [await client.recv_frame(10) for _ in range(4)]
        assert got == [b"EARLY 0", b"EARLY 1", b"EARLY 2", b"LATE"]
        await client.close()
        await asyncio.wait_for(task, 10)
        await server.close()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


@pytest.mark.parametrize("scheme", THREADED)
def test_close_stops_a_thread_blocked_in_a_read(scheme: str, short_dir: str) -> None:
    """Our close while the peer is silent: the thread wakes, the descriptors are closed (the peer
    sees the end), the listener's slot is freed."""

    async def body() -> None:
        lst, client, server = await _pair(_address(scheme, short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(lambda p: p))
        await client.send_frame(b"ping")
        assert await client.recv_frame(10) == b"ping"
        task.cancel()
        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(server.close(), 5)
        assert asyncio.get_running_loop().time() - t0 < CLOSE_FLUSH_TIMEOUT  # no flush to wait for
        assert server.closed
        assert server._pipe.fileno_count() == 0
        assert await _threads_ended()
        with pytest.raises(PeerClosed):
            await client.recv_frame(10)
        assert lst.security_stats.live == 0  # type: ignore[attr-defined]
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


@pytest.mark.parametrize("scheme", THREADED)
def test_close_is_bounded_while_the_thread_is_blocked_in_a_write(scheme: str, short_dir: str) -> None:
    """A peer that sends and never reads: the thread blocks writing answers (and so stops
    reading, TRN-013); close waits for that flush at most CLOSE_FLUSH_TIMEOUT, then stops it."""

    async def body() -> None:
        lst, client, server = await _pair(_address(scheme, short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(lambda p: p))
        frame = b"x" * (1 << 20)
        sent = 0

        async def flood() -> None:
            nonlocal sent
            for _ in range(64):
                await client.send_frame(frame)
                sent += 1

        sender = asyncio.ensure_future(flood())
        last, stalled = -1, 0
        while not sender.done() and stalled < 5:
            await asyncio.sleep(0.05)
            stalled, last = (stalled + 1 if sent == last else 0), sent
        assert not sender.done(), "64 MiB answered to a peer that reads nothing: no back-pressure"
        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(server.close(), 3 * CLOSE_FLUSH_TIMEOUT + 2)
        assert asyncio.get_running_loop().time() - t0 < 2 * CLOSE_FLUSH_TIMEOUT + 1
        assert server._pipe.fileno_count() == 0
        assert await _threads_ended()
        with pytest.raises(TransportError):
            await task
        client.abort()
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


@pytest.mark.parametrize("scheme", THREADED)
def test_abort_frees_everything_once_the_thread_has_ended(scheme: str, short_dir: str) -> None:
    async def body() -> None:
        lst, client, server = await _pair(_address(scheme, short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(lambda p: p))
        await client.send_frame(b"ping")
        assert await client.recv_frame(10) == b"ping"
        server.abort()
        assert server.closed
        with pytest.raises(TransportError):
            await asyncio.wait_for(task, 5)
        assert await _threads_ended()
        for _ in range(100):
            if server._pipe.fileno_count() == 0:
                break
            await asyncio.sleep(0.01)
        assert server._pipe.fileno_count() == 0
        with pytest.raises(PeerClosed):
            await client.recv_frame(10)
        await client.close()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


@pytest.mark.parametrize("scheme", THREADED)
def test_an_oversized_frame_is_refused_before_allocation(scheme: str, short_dir: str) -> None:
    """FRM-003 in the thread too: the length alone ends the connection with FrameTooLarge."""

    async def body() -> None:
        lst, client, server = await _pair(_address(scheme, short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(lambda p: p))
        await client.send_frame(b"ok")
        assert await client.recv_frame(10) == b"ok"
        client._pipe.write(struct.pack(">I", MAX_FRAME_SIZE + 1) + b"xx")
        with pytest.raises(FrameTooLarge):
            await asyncio.wait_for(task, 10)
        await server.close()
        with pytest.raises(TransportError):
            await client.recv_frame(10)
        await client.close()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


@pytest.mark.parametrize("scheme", THREADED)
def test_a_handler_error_closes_the_connection_and_is_raised(scheme: str, short_dir: str) -> None:
    def handler(p: bytes) -> bytes:
        if p == b"boom":
            raise ValueError("the handler failed")
        return p

    async def body() -> None:
        lst, client, server = await _pair(_address(scheme, short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(handler))
        await client.send_frame(b"fine")
        assert await client.recv_frame(10) == b"fine"
        await client.send_frame(b"boom")
        with pytest.raises(ValueError, match="the handler failed"):
            await asyncio.wait_for(task, 10)
        assert server.closed
        with pytest.raises(TransportError):
            await client.recv_frame(10)
        await client.close()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


def test_the_loop_api_refuses_while_a_thread_serves(short_dir: str) -> None:
    async def body() -> None:
        lst, client, server = await _pair(_address("unix", short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(lambda p: p))
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError):
            await server.recv_frame(1)
        with pytest.raises(RuntimeError):
            await server.send_frame(b"not from the loop")
        await client.close()
        await asyncio.wait_for(task, 10)
        await server.close()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)


def test_a_pipe_without_proc_is_read_behind_poll(short_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a pipe cannot be reopened to wake its reader, the thread reads behind poll and still
    answers, ends and stops on close."""
    from symphony_ipc.transport import _threaded

    monkeypatch.setattr(_threaded, "_reopen_for_writing", lambda fd: -1)

    async def body() -> None:
        lst, client, server = await _pair(_address("fifo", short_dir))
        task = asyncio.ensure_future(server.serve_in_thread(lambda p: p))
        await asyncio.sleep(0.05)
        assert server._worker is not None
        assert server._worker._rpoll is not None
        for n in (10, 100_000):
            await client.send_frame(b"p" * n)
            assert await client.recv_frame(10) == b"p" * n
        task.cancel()
        await asyncio.wait_for(server.close(), 5)
        assert await _threads_ended()
        with pytest.raises(PeerClosed):
            await client.recv_frame(10)
        await client.close()
        await lst.close()  # type: ignore[attr-defined]

    _run(body)
