"""Seeded transport faults: the reference's Unix-socket transport with one behaviour broken.

Each mutant is a factory registered in :data:`CATALOGUE` with the requirement ids it breaks. A
conformance run of the profile ``transport`` against it must exit 1 and name them::

    symphony-conformance run --profile transport \\
        --transport python:symphony_conformance.transport_mutants:drop_byte

Transport mutants are *makers* (``--transport``): they break a connection (a dropped byte, two
frames swapped, a leaked descriptor, no back-pressure) or hand the checks a broken reconnecting
client or pool. One mutant is an implementation (``--impl``) whose frame decoder accepts an
oversized length. tests/harness/test_transport_profile.py runs them all; the broken connections,
backoff and pool are public so tests can wrap other transports with them
(tests/transport/test_transport_faults.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeVar

from symphony_ipc.transport import Backoff, ConnectionPool, ReconnectingClient, Transport

from ._adapters import ReferenceImplementation
from ._impl import Implementation, ImplError, ImplInfo
from .transport_checks import AddressMaker

__all__ = [
    "CATALOGUE",
    "DropsAByte",
    "NeverReuses",
    "NoBackPressure",
    "NoBackoff",
    "ReordersTwo",
    "TransportMutant",
    "WrappedTransport",
    "accepts_oversize_length",
    "drop_byte",
    "leak_fd",
    "never_reuse",
    "no_backoff",
    "no_back_pressure",
    "reorder_frames",
]

Kind = Literal["transport", "impl"]


@dataclass(frozen=True)
class TransportMutant:
    """One seeded fault: what it breaks and how to load it."""

    name: str
    kind: Kind
    """``transport``: a maker for ``--transport``; ``impl``: an implementation for ``--impl``."""
    breaks: tuple[str, ...]
    """The requirement ids a run of the profile ``transport`` must report as failed."""
    description: str
    factory: Callable[[], Any] = field(compare=False, repr=False)
    profile: ClassVar[str] = "transport"
    """The profile whose checks must catch it."""

    @property
    def spec(self) -> str:
        return f"python:{__name__}:{self.name}"

    @property
    def args(self) -> list[str]:
        """The ``symphony-conformance run`` options that load it."""
        return ["--transport" if self.kind == "transport" else "--impl", self.spec, "--profile", "transport"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "breaks": list(self.breaks),
            "description": self.description,
            "args": self.args,
        }


CATALOGUE: dict[str, TransportMutant] = {}
"""Every registered transport mutant, by name."""

F = TypeVar("F", bound=Callable[[], Any])


def _mutant(kind: Kind, breaks: Sequence[str], description: str) -> Callable[[F], F]:
    def register(factory: F) -> F:
        name = factory.__name__
        if name in CATALOGUE:
            raise ValueError(f"transport mutant {name!r} is registered twice")
        CATALOGUE[name] = TransportMutant(name, kind, tuple(breaks), description, factory)
        return factory

    return register


# ---------------------------------------------------------------- broken connections


class WrappedTransport(Transport):
    """A real connection behind the interface; subclasses break one thing."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.address = inner.address
        self.codec = inner.codec
        self.peer_version = inner.peer_version
        self.mode = inner.mode
        self.sent = 0

    async def send_frame(self, payload: bytes) -> None:
        await self.inner.send_frame(payload)

    async def recv_frame(self, timeout: float | None = None) -> bytes:
        return await self.inner.recv_frame(timeout)

    async def close(self) -> None:
        await self.inner.close()

    def abort(self) -> None:
        self.inner.abort()

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    @property
    def pending_frames(self) -> int:
        return self.inner.pending_frames


class DropsAByte(WrappedTransport):
    """The third frame a connection sends loses its last byte (the length is written for what is
    sent, so the stream stays in step and the fault is only the lost byte)."""

    async def send_frame(self, payload: bytes) -> None:
        self.sent += 1
        await self.inner.send_frame(payload[:-1] if self.sent == 3 and len(payload) > 1 else payload)


class ReordersTwo(WrappedTransport):
    """The tenth frame is held back until the eleventh is sent (or 50 ms pass): pipelined frames
    10 and 11 arrive swapped, a lone request is only delayed."""

    held: bytes | None = None
    _timer: asyncio.TimerHandle | None = None
    _late: asyncio.Future[None] | None = None

    async def send_frame(self, payload: bytes) -> None:
        self.sent += 1
        if self.sent == 10:
            self.held = payload
            self._timer = asyncio.get_running_loop().call_later(0.05, self._release)
            return
        await self.inner.send_frame(payload)
        if self.held is not None:
            held, self.held = self.held, None
            if self._timer is not None:
                self._timer.cancel()
            await self.inner.send_frame(held)

    def _release(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self._late = asyncio.ensure_future(self.inner.send_frame(held))


class NoBackPressure(WrappedTransport):
    """send_frame never waits: it queues the frame for a background task, whatever the peer does."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self.tasks: set[asyncio.Future[None]] = set()
        self._chain: asyncio.Future[None] | None = None

    async def send_frame(self, payload: bytes) -> None:
        prev = self._chain

        async def later() -> None:
            if prev is not None:
                await prev
            await self.inner.send_frame(payload)

        task = asyncio.ensure_future(later())
        self._chain = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.inner.close()


class MutantMaker(AddressMaker):
    """The reference's Unix sockets in a private short directory, connections wrapped by ``wrap``.

    ``close()`` (called by the harness at the end of the run) removes the directory and releases
    what a leaking mutant kept.
    """

    def __init__(self, name: str, wrap: Callable[[MutantMaker, Transport], Transport] | None = None) -> None:
        super().__init__("unix", tempfile.mkdtemp(prefix="sy-m-", dir="/tmp"))
        self.mutant_name = name
        self._wrap = wrap
        self.leaked: list[int] = []

    async def connect(self, address: str, **options: Any) -> Transport:
        conn = await super().connect(address, **options)
        return conn if self._wrap is None else self._wrap(self, conn)

    def close(self) -> None:
        while self.leaked:
            os.close(self.leaked.pop())
        shutil.rmtree(self.directory, ignore_errors=True)


def _leak(maker: MutantMaker, conn: Transport) -> Transport:
    maker.leaked.append(os.open(os.devnull, os.O_RDONLY))  # never closed while the run lasts
    return conn


@_mutant("transport", ["FRM-007"], "the third frame of every connection loses its last byte")
def drop_byte() -> MutantMaker:
    return MutantMaker("drop_byte", lambda _m, c: DropsAByte(c))


@_mutant("transport", ["FRM-007"], "the tenth frame of a connection is sent after the eleventh")
def reorder_frames() -> MutantMaker:
    return MutantMaker("reorder_frames", lambda _m, c: ReordersTwo(c))


@_mutant("transport", ["TRN-016"], "every connection opens a file descriptor it never closes")
def leak_fd() -> MutantMaker:
    return MutantMaker("leak_fd", _leak)


@_mutant("transport", ["TRN-013"], "a sender never waits for a peer that does not read")
def no_back_pressure() -> MutantMaker:
    return MutantMaker("no_back_pressure", lambda _m, c: NoBackPressure(c))


# ---------------------------------------------------------------- broken reconnection and pooling


class NoBackoff(Backoff):
    def delay(self, attempt: int, rng: Any) -> float:
        return 0.0


class _NoBackoffMaker(MutantMaker):
    """Its reconnecting client retries at once, again and again (no backoff)."""

    def reconnector(
        self, connect: Callable[[], Awaitable[Transport]], sleep: Callable[[float], Awaitable[None]]
    ) -> ReconnectingClient:
        return ReconnectingClient(connect, NoBackoff(max_retries=12), sleep=sleep)


@_mutant("transport", ["TRN-030"], "the reconnecting client retries without waiting (no backoff)")
def no_backoff() -> MutantMaker:
    return _NoBackoffMaker("no_backoff")


class NeverReuses(ConnectionPool):
    async def release(self, conn: Transport, *, broken: bool = False) -> None:
        await super().release(conn, broken=True)


class _NeverReusesMaker(MutantMaker):
    """Its pool closes every connection on release: each acquisition opens a new one."""

    def pool(self, connect: Callable[[], Awaitable[Transport]], max_size: int) -> ConnectionPool:
        return NeverReuses(connect, max_size=max_size)


@_mutant("transport", ["TRN-023"], "the pool closes every released connection instead of reusing it")
def never_reuse() -> MutantMaker:
    return _NeverReusesMaker("never_reuse")


# ---------------------------------------------------------------- a broken frame decoder (--impl)

_OVERSIZE: Final = "MESSAGE_TOO_LARGE"


class _AcceptsOversizeLength(ReferenceImplementation):
    """The reference whose frame decoder does not refuse a length above 16 MiB: it waits for the
    payload instead (the stream stays open, nothing is delivered)."""

    @property
    def info(self) -> ImplInfo:
        from dataclasses import replace

        return replace(super().info, name="mutant accepts_oversize_length (of the reference)")

    def frames(self, data: bytes, *, eof: bool, mode: str) -> dict[str, Any]:
        try:
            return super().frames(data, eof=eof, mode=mode)
        except ImplError as e:
            if e.code != _OVERSIZE:
                raise
        delivered: list[bytes] = []
        rest = memoryview(data)
        while len(rest) >= 4 and mode == "frames":
            n = int.from_bytes(rest[:4], "big")
            if len(rest) < 4 + n:
                break
            if n:
                delivered.append(bytes(rest[4 : 4 + n]))
            rest = rest[4 + n :]
        return {"frames": delivered, "state": "broken" if eof else "open"}


@_mutant("impl", ["FRM-003"], "the frame decoder waits for the payload of a length above 16 MiB")
def accepts_oversize_length() -> Implementation:
    return _AcceptsOversizeLength()
