"""Pool and reconnection logic with an injected clock, random source and sleep: no waiting."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from symphony_ipc import ErrorCode
from symphony_ipc.transport import (
    Backoff,
    ConnectionPool,
    ConnectionRefused,
    HandshakeFailed,
    PeerBroken,
    ReconnectingClient,
    Transport,
    TransportClosed,
    TransportTimeout,
)


class FakeConn(Transport):
    """A connection that records what happens to it."""

    made = 0

    def __init__(self, fail_send: bool = False) -> None:
        FakeConn.made += 1
        self.n = FakeConn.made
        self.address, self.codec, self.peer_version = "fake:", "json", (1, 0)
        self.open = True
        self.pending = 0
        self.sent: list[bytes] = []
        self.closes = 0
        self.fail_send = fail_send

    async def send_frame(self, payload: bytes) -> None:
        if self.fail_send:
            self.open = False
            raise PeerBroken("gone")
        self.sent.append(payload)

    async def recv_frame(self, timeout: float | None = None) -> bytes:
        if not self.sent:
            raise PeerBroken("nothing")
        return self.sent.pop(0)

    async def close(self) -> None:
        self.closes += 1
        self.open = False

    def abort(self) -> None:
        self.open = False

    @property
    def closed(self) -> bool:
        return self.closes > 0

    @property
    def is_open(self) -> bool:
        return self.open

    @property
    def pending_frames(self) -> int:
        return self.pending


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------- backoff


def test_backoff_schedule_is_reproducible_and_bounded() -> None:
    b = Backoff(base=0.01, factor=2.0, max_delay=0.5, jitter=0.5, max_retries=10)
    one, two = b.schedule(random.Random(42)), b.schedule(random.Random(42))
    assert one == two
    for n, d in enumerate(one):
        ceiling = min(0.5, 0.01 * 2**n)
        assert ceiling * 0.5 <= d <= ceiling
    assert b.schedule(random.Random(1)) != one


def test_backoff_without_jitter_is_exact() -> None:
    b = Backoff(base=0.1, factor=3.0, max_delay=1.0, jitter=0.0, max_retries=4)
    assert b.schedule(random.Random(0)) == pytest.approx([0.1, 0.3, 0.9, 1.0])


@pytest.mark.parametrize(
    "kwargs", [{"base": 0}, {"factor": 0.5}, {"max_delay": 0.0001}, {"jitter": 1.5}, {"max_retries": -1}]
)
def test_backoff_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="need"):
        Backoff(**kwargs)


# ---------------------------------------------------------------- reconnection


def _flaky(failures: int, exc: Exception | None = None) -> Any:
    state = {"left": failures, "calls": 0}

    async def connect() -> Transport:
        state["calls"] += 1
        if state["left"] > 0:
            state["left"] -= 1
            raise exc or ConnectionRefused("down")
        return FakeConn()

    return connect, state


def test_reconnect_follows_the_schedule() -> None:
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)

    connect, state = _flaky(4)
    backoff = Backoff(base=0.01, max_delay=1.0, jitter=0.5, max_retries=6)
    client = ReconnectingClient(connect, backoff, rng=random.Random(7), sleep=sleep)
    conn = run(client.ensure_connected())
    assert isinstance(conn, FakeConn)
    assert slept == backoff.schedule(random.Random(7))[:4]
    assert state["calls"] == 5
    assert client.stats.failed_attempts == 4
    assert client.stats.connects == 1


def test_reconnect_gives_up_after_max_retries_then_starts_over() -> None:
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)

    connect, state = _flaky(100)
    backoff = Backoff(base=0.01, jitter=0.0, max_retries=3)
    client = ReconnectingClient(connect, backoff, sleep=sleep)
    with pytest.raises(ConnectionRefused):
        run(client.ensure_connected())
    assert state["calls"] == 4  # the first attempt and three retries
    assert slept == pytest.approx([0.01, 0.02, 0.04])
    with pytest.raises(ConnectionRefused):
        run(client.ensure_connected())
    assert slept[3:] == pytest.approx([0.01, 0.02, 0.04])  # a new schedule
    assert client.stats.gave_up == 2


def test_handshake_failure_is_not_retried() -> None:
    connect, state = _flaky(5, HandshakeFailed(ErrorCode.INVALID_PROTOCOL_VERSION, "v2"))
    client = ReconnectingClient(connect, sleep=lambda d: asyncio.sleep(0))
    with pytest.raises(HandshakeFailed):
        run(client.ensure_connected())
    assert state["calls"] == 1


def test_a_failed_send_is_reported_not_resent() -> None:
    """TRN-032: at most once."""
    conns: list[FakeConn] = []

    async def connect() -> Transport:
        conns.append(FakeConn(fail_send=not conns))
        return conns[-1]

    async def body() -> None:
        client = ReconnectingClient(connect, sleep=lambda d: asyncio.sleep(0))
        with pytest.raises(PeerBroken):
            await client.request(b"once")
        assert await client.request(b"next") == b"next"
        await client.close()

    run(body())
    assert len(conns) == 2
    assert conns[1].sent == []  # "once" was never sent again; "next" was answered
    assert conns[0].closes == 1


def test_closed_client_refuses() -> None:
    async def body() -> None:
        client = ReconnectingClient(_flaky(0)[0])
        await client.close()
        with pytest.raises(TransportClosed):
            await client.request(b"x")

    run(body())


# ---------------------------------------------------------------- pool


async def _conn() -> Transport:
    return FakeConn()


def test_pool_reuses_and_counts() -> None:
    async def body() -> ConnectionPool:
        pool = ConnectionPool(_conn, max_size=2, clock=Clock())
        for _ in range(100):
            c = await pool.acquire()
            await pool.release(c)
        return pool

    pool = run(body())
    assert pool.stats.created == 1
    assert pool.stats.acquired == 100
    assert pool.stats.reuse_rate == pytest.approx(0.99)


def test_pool_waits_at_max_then_times_out() -> None:
    async def body() -> None:
        pool = ConnectionPool(_conn, max_size=1, acquire_timeout=0.01)
        held = await pool.acquire()
        with pytest.raises(TransportTimeout):
            await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire(timeout=5))
        await asyncio.sleep(0)
        await pool.release(held)
        assert await waiter is held
        assert pool.size == 1
        assert pool.stats.timeouts == 1

    run(body())


def test_pool_idle_timeout_and_lifetime_with_a_clock() -> None:
    clock = Clock()

    async def body() -> ConnectionPool:
        pool = ConnectionPool(_conn, max_size=4, idle_timeout=60, max_lifetime=600, clock=clock)
        first = await pool.acquire()
        await pool.release(first)
        clock.now = 59
        assert await pool.acquire() is first  # idle 59 s: reused
        await pool.release(first)
        clock.now = 59 + 61
        second = await pool.acquire()  # idle 61 s: closed, a new one
        assert second is not first
        assert first.closed
        clock.now = 59 + 61 + 601
        await pool.release(second)  # older than max_lifetime: not kept
        assert second.closed
        return pool

    pool = run(body())
    assert pool.stats.closed_idle == 1
    assert pool.stats.closed_lifetime == 1
    assert pool.idle == 0


def test_pool_never_hands_out_unhealthy_broken_or_dirty() -> None:
    verdicts = [False, True]

    async def health(conn: Transport) -> bool:
        return verdicts.pop(0)

    async def body() -> ConnectionPool:
        pool = ConnectionPool(_conn, max_size=4, health_check=health, clock=Clock())
        a = await pool.acquire()
        await pool.release(a)
        b = await pool.acquire()  # a fails its health check
        assert b is not a
        assert a.closed
        await pool.release(b)
        c = await pool.acquire()  # b passes
        assert c is b
        assert isinstance(c, FakeConn)
        c.pending = 1
        await pool.release(c)  # unread frames: dirty
        d = await pool.acquire()
        await pool.release(d, broken=True)
        e = await pool.acquire()
        assert isinstance(e, FakeConn)
        e.open = False  # the peer left while it was idle
        await pool.release(e)
        return pool

    pool = run(body())
    assert (pool.stats.closed_unhealthy, pool.stats.closed_dirty, pool.stats.closed_broken) == (1, 1, 2)


def test_pool_min_size_and_prune() -> None:
    clock = Clock()

    async def body() -> ConnectionPool:
        pool = ConnectionPool(_conn, min_size=2, max_size=4, idle_timeout=10, clock=clock)
        await pool.start()
        assert pool.idle == 2
        clock.now = 11
        await pool.prune()  # both idle too long: closed, then topped up to min_size
        assert pool.idle == 2
        return pool

    pool = run(body())
    assert pool.stats.created == 4
    assert pool.stats.closed_idle == 2


def test_pool_close_wakes_waiters_and_is_idempotent() -> None:
    async def body() -> None:
        pool = ConnectionPool(_conn, max_size=1)
        held = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire(timeout=5))
        await asyncio.sleep(0)
        await pool.close()
        await pool.close()
        with pytest.raises(TransportClosed):
            await waiter
        assert held.closed
        with pytest.raises(TransportClosed):
            await pool.acquire()
        await pool.release(held)  # after close: just closed again, no error

    run(body())


def test_pool_rejects_foreign_connections_and_bad_sizes() -> None:
    async def body() -> None:
        pool = ConnectionPool(_conn)
        with pytest.raises(ValueError, match="belong"):
            await pool.release(FakeConn())

    run(body())
    with pytest.raises(ValueError, match="min_size"):
        ConnectionPool(_conn, min_size=5, max_size=2)
