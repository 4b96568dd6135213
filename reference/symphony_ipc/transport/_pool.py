"""A connection pool (spec/transport.md section 6, TRN-020 to TRN-024).

Time comes from an injectable ``clock`` (monotonic seconds), so the idle and lifetime rules are
testable without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ._base import Transport
from ._errors import TransportClosed, TransportError, TransportTimeout

Connector = Callable[[], Awaitable[Transport]]
HealthCheck = Callable[[Transport], Awaitable[bool]]


@dataclass
class PoolStats:
    """Counters since the pool started (TRN-023)."""

    created: int = 0
    acquired: int = 0
    reused: int = 0
    released: int = 0
    closed_idle: int = 0
    closed_lifetime: int = 0
    closed_unhealthy: int = 0
    closed_broken: int = 0
    closed_dirty: int = 0
    waits: int = 0
    timeouts: int = 0

    @property
    def reuse_rate(self) -> float:
        """Share of acquisitions served by a connection that was already open."""
        return self.reused / self.acquired if self.acquired else 0.0


@dataclass
class _Entry:
    conn: Transport
    created_at: float
    idle_since: float = 0.0
    uses: int = field(default=0)


class ConnectionPool:
    """Hands out connections to one address and takes them back for reuse.

    ``connect`` opens a new connection (e.g. ``lambda: connect("unix:/run/s.sock")``).
    ``health_check`` (optional) is awaited before a connection is reused; a closed or ended
    connection is never handed out whatever it says.
    """

    def __init__(
        self,
        connect: Connector,
        *,
        min_size: int = 0,
        max_size: int = 8,
        idle_timeout: float | None = 60.0,
        max_lifetime: float | None = 600.0,
        health_check: HealthCheck | None = None,
        acquire_timeout: float | None = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1 or not 0 <= min_size <= max_size:
            raise ValueError("need 0 <= min_size <= max_size and max_size >= 1")
        self._connect = connect
        self.min_size, self.max_size = min_size, max_size
        self.idle_timeout, self.max_lifetime = idle_timeout, max_lifetime
        self._health_check = health_check
        self.acquire_timeout = acquire_timeout
        self._clock = clock
        self._idle: deque[_Entry] = deque()  # most recently released last
        self._busy: dict[int, _Entry] = {}
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.stats = PoolStats()

    @property
    def size(self) -> int:
        """Connections open or being opened, idle and in use."""
        return len(self._idle) + len(self._busy) + self._opening

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        return len(self._busy)

    async def start(self) -> None:
        """Open ``min_size`` connections now."""
        await self._fill()

    async def _new(self) -> _Entry:
        self._opening += 1
        try:
            conn = await self._connect()
        finally:
            self._opening -= 1
        self.stats.created += 1
        return _Entry(conn, self._clock())

    async def _fill(self) -> None:
        while not self._closed and self.size < self.min_size:
            entry = await self._new()
            entry.idle_since = self._clock()
            self._idle.append(entry)
            self._wake()

    def _expired(self, e: _Entry, now: float) -> str | None:
        if not e.conn.is_open:
            return "broken"
        if self.max_lifetime is not None and now - e.created_at > self.max_lifetime:
            return "lifetime"
        if self.idle_timeout is not None and now - e.idle_since > self.idle_timeout:
            return "idle"
        return None

    async def _discard(self, e: _Entry, why: str) -> None:
        setattr(self.stats, f"closed_{why}", getattr(self.stats, f"closed_{why}") + 1)
        await e.conn.close()
        self._wake()
        if not self._closed and self.size < self.min_size:
            with contextlib.suppress(TransportError):  # the server may be down: prune() retries
                await self._fill()

    async def prune(self) -> None:
        """Close idle connections past their idle timeout or lifetime; top up to ``min_size`` (TRN-021)."""
        now = self._clock()
        keep: deque[_Entry] = deque()
        while self._idle:
            e = self._idle.popleft()
            why = self._expired(e, now)
            if why is None:
                keep.append(e)
            else:
                await self._discard(e, why)
        self._idle.extend(keep)
        await self._fill()

    async def acquire(self, timeout: float | None = None) -> Transport:
        """A connection for the caller alone, until :meth:`release` (TRN-020, TRN-021)."""
        if timeout is None:
            timeout = self.acquire_timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._closed:
                raise TransportClosed("the pool is closed")
            now = self._clock()
            while self._idle:
                e = self._idle.pop()  # the most recently used: keeps the others idle, to expire
                why = self._expired(e, now)
                if why is None and self._health_check is not None and not await self._healthy(e.conn):
                    why = "unhealthy"
                if why is not None:
                    await self._discard(e, why)
                    continue
                return self._hand_out(e, reused=True)
            if self.size < self.max_size:
                e = await self._new()
                if self._closed:
                    await e.conn.close()
                    raise TransportClosed("the pool is closed")
                return self._hand_out(e, reused=False)
            self.stats.waits += 1
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                self.stats.timeouts += 1
                raise TransportTimeout(f"no pooled connection free within {timeout} s") from None
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)

    async def _healthy(self, conn: Transport) -> bool:
        assert self._health_check is not None
        try:
            return bool(await self._health_check(conn))
        except TransportError:
            return False

    def _hand_out(self, e: _Entry, *, reused: bool) -> Transport:
        e.uses += 1
        self._busy[id(e.conn)] = e
        self.stats.acquired += 1
        if reused:
            self.stats.reused += 1
        return e.conn

    async def release(self, conn: Transport, *, broken: bool = False) -> None:
        """Give a connection back; closed instead of kept when broken or dirty (TRN-022)."""
        if self._closed:  # the pool closed while the caller held it: close(), which is idempotent
            await conn.close()
            return
        e = self._busy.pop(id(conn), None)
        if e is None:
            raise ValueError("this connection does not belong to the pool (or was released twice)")
        self.stats.released += 1
        if broken or not conn.is_open:
            await self._discard(e, "broken")
        elif conn.pending_frames:
            await self._discard(e, "dirty")
        elif self.max_lifetime is not None and self._clock() - e.created_at > self.max_lifetime:
            await self._discard(e, "lifetime")
        else:
            e.idle_since = self._clock()
            self._idle.append(e)
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Transport]:
        """``async with pool.connection() as conn``: released on exit, as broken on a transport error."""
        conn = await self.acquire(timeout)
        broken = False
        try:
            yield conn
        except TransportError:
            broken = True
            raise
        finally:
            await self.release(conn, broken=broken)

    async def close(self) -> None:
        """Close every connection and wake waiters with TransportClosed; idempotent (TRN-024)."""
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
        entries = list(self._idle) + list(self._busy.values())
        self._idle.clear()
        self._busy.clear()
        for e in entries:
            await e.conn.close()

    async def __aenter__(self) -> ConnectionPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
