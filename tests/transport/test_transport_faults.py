"""Seeded faults: each broken transport, reconnector or pool must make its check fail, with a
message naming the requirement. This is what shows the checks can bite, on other transports than
the Unix socket ``selftest`` runs them on (the broken connections are the catalogue's own, from
symphony_conformance.transport_mutants)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from symphony_conformance import transport_checks as tc
from symphony_conformance.transport_checks import AddressMaker
from symphony_conformance.transport_mutants import (
    DropsAByte,
    NeverReuses,
    NoBackoff,
    NoBackPressure,
    ReordersTwo,
)
from symphony_ipc.transport import (
    Backoff,
    ConnectionPool,
    Listener,
    Pipe,
    ReconnectingClient,
    Transport,
)


def LeaksAnFd(inner: Transport) -> Transport:
    _leaked.append(os.open(os.devnull, os.O_RDONLY))  # open until the test's end (see _close_leaked)
    return inner


_leaked: list[int] = []


@pytest.fixture(autouse=True)
def _close_leaked() -> Iterator[None]:
    yield
    while _leaked:
        os.close(_leaked.pop())


class FaultyMaker:
    def __init__(self, inner: AddressMaker, wrap: Callable[[Transport], Transport]) -> None:
        self.inner, self.wrap, self.name = inner, wrap, f"faulty-{inner.name}"

    def fresh_address(self) -> str:
        return self.inner.fresh_address()

    async def listen(self, address: str) -> Listener:
        return await self.inner.listen(address)

    async def connect(self, address: str, **options: Any) -> Transport:
        return self.wrap(await self.inner.connect(address, **options))

    async def open_raw(self, address: str) -> Pipe:
        return await self.inner.open_raw(address)


def _faulty(short_dir: str, scheme: str, wrap: Callable[[Transport], Transport]) -> FaultyMaker:
    return FaultyMaker(AddressMaker(scheme, short_dir), wrap)


def test_dropped_byte_fails_echo(short_dir: str) -> None:
    with pytest.raises(AssertionError, match=r"\[FRM-007\]"):
        tc.check_echo(_faulty(short_dir, "memory", DropsAByte))


def test_dropped_byte_fails_ordering(short_dir: str) -> None:
    with pytest.raises(AssertionError, match=r"\[FRM-007\]"):
        tc.check_ordering(_faulty(short_dir, "unix", DropsAByte), frames=100)


def test_reordered_frames_fail_ordering(short_dir: str) -> None:
    with pytest.raises(AssertionError, match=r"\[FRM-007\].*frame 9"):
        tc.check_ordering(_faulty(short_dir, "memory", ReordersTwo), frames=100)


def test_leaked_fd_fails_no_leaks(short_dir: str) -> None:
    with pytest.raises(AssertionError, match=r"\[TRN-016\].*file descriptors leaked"):
        tc.check_no_leaks(_faulty(short_dir, "unix", LeaksAnFd), cycles=50)


def test_missing_back_pressure_fails_slow_reader(short_dir: str) -> None:
    with pytest.raises(AssertionError, match=r"\[TRN-013\]"):
        tc.check_slow_reader(_faulty(short_dir, "memory", NoBackPressure), frames=32)


def _no_backoff(
    connect: Callable[[], Awaitable[Transport]], sleep: Callable[[float], Awaitable[None]]
) -> ReconnectingClient:
    return ReconnectingClient(connect, NoBackoff(max_retries=12), sleep=sleep)


def _constant_delay(
    connect: Callable[[], Awaitable[Transport]], sleep: Callable[[float], Awaitable[None]]
) -> ReconnectingClient:
    return ReconnectingClient(
        connect, Backoff(base=0.004, factor=1.0, max_delay=0.004, jitter=0, max_retries=50), sleep=sleep
    )


def test_reconnector_without_backoff_fails(short_dir: str) -> None:
    with pytest.raises(AssertionError, match=r"\[TRN-03[03]\]"):
        tc.check_reconnection(AddressMaker("unix", short_dir), restarts=5, reconnector=_no_backoff)


def test_reconnector_with_constant_delay_fails(short_dir: str) -> None:
    with pytest.raises(AssertionError, match=r"\[TRN-030\].*do not grow"):
        tc.check_reconnection(AddressMaker("memory", short_dir), restarts=5, reconnector=_constant_delay)


def test_pool_that_never_reuses_fails(short_dir: str) -> None:
    def pool(connect: Callable[[], Awaitable[Transport]], max_size: int) -> ConnectionPool:
        return NeverReuses(connect, max_size=max_size)

    with pytest.raises(AssertionError, match=r"\[TRN-023\].*reuse rate"):
        tc.check_pool_reuse(AddressMaker("memory", short_dir), acquisitions=100, pool=pool)


class AlwaysOpensNew(ConnectionPool):
    """Ignores its idle connections and its maximum: opens a connection for every acquire."""

    async def acquire(self, timeout: float | None = None) -> Transport:
        return self._hand_out(await self._new(), reused=False)


def test_pool_that_grows_past_its_maximum_fails(short_dir: str) -> None:
    def pool(connect: Callable[[], Awaitable[Transport]], max_size: int) -> ConnectionPool:
        return AlwaysOpensNew(connect, max_size=max_size)

    with pytest.raises(AssertionError, match=r"\[TRN-020\]"):
        tc.check_pool_reuse(AddressMaker("memory", short_dir), acquisitions=200, workers=4, pool=pool)
