"""The checks added for the requirements the suite did not reach (SEC-002, SEC-006, SEC-008,
TRN-001, TRN-004, TRN-021, TRN-022, TRN-024, TRN-031) fail on a seeded fault, naming the
requirement: each is run on a small faulty variant of the reference."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from symphony_conformance import security_checks as sc
from symphony_conformance import transport_checks as tc
from symphony_ipc.security import SecurityPolicy, SecurityStats
from symphony_ipc.transport import (
    Backoff,
    ConnectionPool,
    ConnectionRefused,
    Listener,
    ReconnectingClient,
    Transport,
    TransportError,
    connect,
    listen,
)


@pytest.fixture
def short_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-g-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class LongPathMaker(tc.AddressMaker):
    """Fault: a unix address too long for the platform is shortened instead of refused."""

    def _short(self, address: str) -> str:
        if address.startswith("unix:") and len(address) > 110:
            return f"unix:{self.directory}/shortened.sock"
        return address

    async def listen(self, address: str) -> Listener:
        return await super().listen(self._short(address))

    async def connect(self, address: str, **options: Any) -> Transport:
        return await super().connect(self._short(address), **options)


class RefusalHidingMaker(tc.AddressMaker):
    """Fault: a FIFO client finding no reader reports a generic transport error."""

    async def connect(self, address: str, **options: Any) -> Transport:
        try:
            return await super().connect(address, **options)
        except ConnectionRefused as e:
            raise TransportError(f"something went wrong: {e}") from None


class StaleIdlePool(ConnectionPool):
    """Fault: a pool that reuses an idle-expired connection."""

    def _expired(self, e: Any, now: float) -> str | None:
        why = super()._expired(e, now)
        return None if why == "idle" else why


class BrokenReusingPool(ConnectionPool):
    """Fault: a pool that keeps a connection released as broken."""

    async def release(self, conn: Transport, *, broken: bool = False) -> None:
        await super().release(conn, broken=False)


class DeafClosePool(ConnectionPool):
    """Fault: closing the pool does not wake waiting acquirers."""

    async def close(self) -> None:
        waiters, self._waiters = self._waiters, type(self._waiters)()
        await super().close()
        self._waiters = waiters


class StubbornClient(ReconnectingClient):
    """Fault: a reconnector that keeps going after max_retries (twice the schedule)."""

    async def ensure_connected(self) -> Transport:
        try:
            return await super().ensure_connected()
        except ConnectionRefused:
            return await super().ensure_connected()


def _fails(reqs: str, check: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(AssertionError, match=reqs):
        check(*args, **kwargs)


def test_addresses_fails_on_a_parser_accepting_a_long_unix_path(short_dir: str) -> None:
    tc.check_addresses(tc.AddressMaker("unix", short_dir))  # the reference passes
    _fails("TRN-001", tc.check_addresses, LongPathMaker("unix", short_dir))


def test_fifo_files_fails_when_no_reader_is_not_refused(short_dir: str) -> None:
    tc.check_fifo_files(tc.AddressMaker("fifo", short_dir), settle=0.1)
    _fails("TRN-004", tc.check_fifo_files, RefusalHidingMaker("fifo", short_dir), settle=0.1)
    with pytest.raises(tc.NotApplicable):
        tc.check_fifo_files(tc.AddressMaker("unix", short_dir))


@pytest.mark.parametrize(
    ("check", "pool", "reqs"),
    [
        (tc.check_pool_expiry, StaleIdlePool, "TRN-021"),
        (tc.check_pool_release, BrokenReusingPool, "TRN-022"),
        (tc.check_pool_close, DeafClosePool, "TRN-024"),
    ],
)
def test_pool_checks_fail_on_faulty_pools(check: Any, pool: Any, reqs: str, short_dir: str) -> None:
    maker = tc.AddressMaker("unix", short_dir)
    check(maker, pool=ConnectionPool)
    if check is tc.check_pool_close:
        _fails(reqs, check, maker, pool=pool, patience=0.2)
    else:
        _fails(reqs, check, maker, pool=pool)


def test_reconnect_gives_up_fails_on_a_stubborn_reconnector() -> None:
    maker = tc.AddressMaker("memory")

    def stubborn(connect: Any, sleep: Any, max_retries: int) -> ReconnectingClient:
        return StubbornClient(
            connect, Backoff(base=0.001, max_delay=0.002, max_retries=max_retries), sleep=sleep
        )

    tc.check_reconnect_gives_up(maker)
    _fails("TRN-031", tc.check_reconnect_gives_up, maker, reconnector=stubborn)


# ---------------------------------------------------------------- security (a listener in process)


async def _open_dirs_listen(address: str, **options: Any) -> Any:
    """Fault: a server that listens in any directory (no SEC-002 check)."""
    policy = options.pop("security", None) or SecurityPolicy()
    return await listen(address, security=replace(policy, check_directory=False), **options)


async def _trusting_listen(address: str, **options: Any) -> Any:
    """Fault: a server that accepts unverified peers without being told to."""
    policy = options.pop("security", None) or SecurityPolicy()
    return await listen(address, security=replace(policy, allow_unverified=True), **options)


class _Uncounted:
    """Fault: a listener whose refusals are not counted (its statistics stay at zero)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.address = inner.address
        self.security_stats = SecurityStats()

    async def accept(self) -> Any:
        return await self._inner.accept()

    async def close(self) -> None:
        await self._inner.close()


async def _uncounted_listen(address: str, **options: Any) -> Any:
    return _Uncounted(await listen(address, **options))


@pytest.mark.parametrize(
    ("check", "faulty", "reqs"),
    [
        (sc.check_unsafe_directory, _open_dirs_listen, "SEC-002"),
        (sc.check_unverified_peers, _trusting_listen, "SEC-006"),
        (sc.check_refusals_counted, _uncounted_listen, "SEC-008"),
    ],
)
def test_listener_checks_fail_on_faulty_servers(check: Any, faulty: Any, reqs: str, short_dir: str) -> None:
    check(listen, connect, short_dir)  # the reference passes
    _fails(reqs, check, faulty, connect, short_dir)
