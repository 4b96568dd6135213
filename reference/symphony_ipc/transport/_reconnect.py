"""Automatic reconnection with exponential backoff and jitter (spec/transport.md section 7).

The schedule is a pure function of the attempt number and an injected random source, and the
client sleeps through an injected ``sleep``, so tests run the schedule without waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ._base import Transport
from ._errors import (
    AddressError,
    ConnectionRefused,
    HandshakeFailed,
    PeerBroken,
    PeerClosed,
    TransportClosed,
    TransportError,
    TransportTimeout,
)

Connector = Callable[[], Awaitable[Transport]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Retry ``n`` (from 0) waits a delay in ``[d * (1 - jitter), d]`` with
    ``d = min(max_delay, base * factor**n)`` (TRN-030); after ``max_retries`` failed retries the
    operation fails (TRN-031)."""

    base: float = 0.005
    factor: float = 2.0
    max_delay: float = 1.0
    jitter: float = 0.5
    max_retries: int = 10

    def __post_init__(self) -> None:
        if self.base <= 0 or self.factor < 1 or self.max_delay < self.base:
            raise ValueError("need base > 0, factor >= 1 and max_delay >= base")
        if not 0 <= self.jitter <= 1 or self.max_retries < 0:
            raise ValueError("need 0 <= jitter <= 1 and max_retries >= 0")

    def ceiling(self, attempt: int) -> float:
        return min(self.max_delay, self.base * self.factor ** min(attempt, 1024))

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = self.ceiling(attempt)
        return d * (1.0 - self.jitter * rng.random())

    def schedule(self, rng: random.Random) -> list[float]:
        """Every delay of one full schedule, in order."""
        return [self.delay(n, rng) for n in range(self.max_retries)]


#: errors after which connecting again may help
RETRYABLE: tuple[type[TransportError], ...] = (ConnectionRefused, TransportTimeout, PeerBroken, PeerClosed)


@dataclass
class ReconnectStats:
    connects: int = 0  #: successful connections, the first included
    reconnects: int = 0  #: successful connections after a lost one
    failed_attempts: int = 0
    gave_up: int = 0  #: operations failed after max_retries
    delays: list[float] = field(default_factory=list)  #: every delay slept, in order


class ReconnectingClient:
    """A client that reconnects on demand. At most once (TRN-032): a frame handed to a connection
    is never sent again; :meth:`request` returns the answer or raises, exactly once per call."""

    def __init__(
        self,
        connect: Connector,
        backoff: Backoff | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._connect = connect
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._conn: Transport | None = None
        self._ever_connected = False
        self._closed = False
        self._lock = asyncio.Lock()
        self.stats = ReconnectStats()

    @property
    def connection(self) -> Transport | None:
        return self._conn

    async def ensure_connected(self) -> Transport:
        """The live connection, connecting with backoff if needed (TRN-030, TRN-031, TRN-033)."""
        if self._closed:
            raise TransportClosed("the client is closed")
        if self._conn is not None and self._conn.is_open:
            return self._conn
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        attempt = 0
        while True:
            try:
                conn = await self._connect()
            except (AddressError, HandshakeFailed):
                raise  # connecting again cannot help
            except RETRYABLE as e:
                self.stats.failed_attempts += 1
                if attempt >= self.backoff.max_retries:
                    self.stats.gave_up += 1
                    raise e
                d = self.backoff.delay(attempt, self._rng)
                self.stats.delays.append(d)
                attempt += 1
                await self._sleep(d)
                if self._closed:
                    raise TransportClosed("the client was closed while reconnecting") from None
                continue
            if self._closed:
                await conn.close()
                raise TransportClosed("the client was closed while connecting")
            self.stats.connects += 1
            if self._ever_connected:
                self.stats.reconnects += 1
            self._ever_connected = True
            self._conn = conn
            return conn

    async def send_frame(self, payload: bytes) -> None:
        """Send on the live connection (connecting first if there is none). If sending fails the
        frame is reported failed, not resent: it may have reached the peer (TRN-032)."""
        conn = await self.ensure_connected()
        try:
            await conn.send_frame(payload)
        except TransportError:
            await self._drop()
            raise

    async def recv_frame(self, timeout: float | None = None) -> bytes:
        if self._conn is None:
            raise TransportClosed("not connected")
        try:
            return await self._conn.recv_frame(timeout)
        except (PeerBroken, PeerClosed, TransportClosed):
            await self._drop()
            raise

    async def request(self, payload: bytes, timeout: float | None = None) -> bytes:
        """Send one frame and return the next frame received: answered once or reported failed."""
        async with self._lock:
            await self.send_frame(payload)
            try:
                return await self.recv_frame(timeout)
            except TransportError:
                await self._drop()  # a late answer must not be taken for the next request's
                raise

    async def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def close(self) -> None:
        self._closed = True
        await self._drop()

    async def __aenter__(self) -> ReconnectingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
