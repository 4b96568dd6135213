"""In-process transports for tests: ``memory:NAME`` (no file descriptors) and ``pipe:NAME``.

``pipe:`` connects the two sides through two anonymous OS pipes, one per direction: the data path
of a child's stdio (``stdio:``) without the child process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ._base import FdPipe, ListenOptions, Pipe, PipeServer, PipeSink, Scheme
from ._errors import AddressInUse, ConnectionRefused, PeerBroken, TransportClosed

if TYPE_CHECKING:
    from ..security import PeerCredentials


class MemoryPipe(Pipe):
    """One end of an in-memory byte pipe: bytes are delivered on a later loop iteration, like I/O."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.peer: MemoryPipe | None = None
        self._inbox = bytearray()  # written by the peer, not yet delivered to our sink
        self._sink: PipeSink | None = None
        self._reading = False
        self._scheduled = False
        self._peer_eof = False
        self._eof_sent = False
        self._closed = False
        self._drainers: list[tuple[int, asyncio.Future[None]]] = []

    @classmethod
    def pair(cls) -> tuple[MemoryPipe, MemoryPipe]:
        loop = asyncio.get_running_loop()
        a, b = cls(loop), cls(loop)
        a.peer, b.peer = b, a
        return a, b

    def start(self, sink: PipeSink) -> None:
        self._sink = sink
        self.resume_reading()

    def peer_credentials(self) -> PeerCredentials:
        """The peer is this very process (spec/security.md SEC-004)."""
        from ..security import own_credentials

        return own_credentials()

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._closed and self._sink is not None:
            self._reading = True
            self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and self._reading and (self._inbox or (self._peer_eof and not self._eof_sent)):
            self._scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        if not self._reading or self._closed or self._sink is None:
            return
        if self._inbox:
            data = bytes(self._inbox)
            self._inbox.clear()
            if self.peer is not None:
                self.peer._wake_drainers()
            self._sink.data_received(data)
        if self._peer_eof and not self._inbox and not self._eof_sent and self._reading and not self._closed:
            self._eof_sent = True
            self._sink.eof_received()

    def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosed("the pipe is closed")
        peer = self.peer
        if peer is None or peer._closed:
            raise PeerBroken("the peer closed its end")
        peer._inbox += data
        peer._schedule()

    def write_buffer_size(self) -> int:
        return len(self.peer._inbox) if self.peer is not None and not self.peer._closed else 0

    async def drain(self, low: int) -> None:
        if self._closed:
            raise TransportClosed("the pipe is closed")
        if self.write_buffer_size() <= low:
            return
        if self.peer is None or self.peer._closed:
            raise PeerBroken("the peer closed its end")
        fut: asyncio.Future[None] = self._loop.create_future()
        self._drainers.append((low, fut))
        await fut

    def _wake_drainers(self) -> None:
        keep = []
        for low, fut in self._drainers:
            if fut.done():
                continue
            if self._closed:
                fut.set_exception(TransportClosed("the pipe was closed"))
            elif self.peer is None or self.peer._closed:
                fut.set_exception(PeerBroken("the peer closed its end"))
            elif self.write_buffer_size() <= low:
                fut.set_result(None)
            else:
                keep.append((low, fut))
        self._drainers = keep

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reading = False
        self._inbox.clear()
        self._wake_drainers()
        peer = self.peer
        if peer is not None:
            peer._peer_eof = True
            peer._wake_drainers()
            peer._schedule()


class _Registry(PipeServer):
    """A name served in process; connecting looks the name up."""

    servers: ClassVar[dict[str, dict[str, _Registry]]] = {"memory": {}, "pipe": {}}

    def __init__(self, kind: str, name: str, on_pipe: Callable[[Pipe], None]) -> None:
        self._kind, self._name, self.on_pipe = kind, name, on_pipe
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.servers[self._kind].get(self._name) is self:
                del self.servers[self._kind][self._name]


def fd_pipe_pair() -> tuple[FdPipe, FdPipe]:
    """Two connected :class:`FdPipe`\\ s over two anonymous pipes (client end, server end)."""
    r1, w1 = os.pipe()  # client -> server
    r2, w2 = os.pipe()  # server -> client
    return FdPipe(r2, w1), FdPipe(r1, w2)


class _InProcessScheme(Scheme):
    def _pair(self) -> tuple[Pipe, Pipe]:
        raise NotImplementedError

    async def open(self, target: str, timeout: float | None) -> Pipe:
        server = _Registry.servers[self.name].get(target)
        if server is None:
            raise ConnectionRefused(f"nothing listens at {self.name}:{target}")
        client, served = self._pair()
        server.on_pipe(served)
        return client

    async def serve(self, target: str, on_pipe: Callable[[Pipe], None], options: ListenOptions) -> PipeServer:
        if target in _Registry.servers[self.name]:
            raise AddressInUse(f"{self.name}:{target} is already served")
        reg = _Registry(self.name, target, on_pipe)
        _Registry.servers[self.name][target] = reg
        return reg


class MemoryScheme(_InProcessScheme):
    name = "memory"

    def _pair(self) -> tuple[Pipe, Pipe]:
        return MemoryPipe.pair()


class PipeScheme(_InProcessScheme):
    name = "pipe"

    def _pair(self) -> tuple[Pipe, Pipe]:
        return fd_pipe_pair()
