"""The transport interface (spec/transport.md section 5) and its one asyncio implementation.

Layers, bottom up:

* a :class:`Pipe` moves bytes and nothing else (:class:`FdPipe` for anything with file
  descriptors: sockets, FIFOs, a child's stdio; ``_memory.MemoryPipe`` in process);
* :class:`StreamConnection` runs the sans-I/O core (:mod:`.sansio`) over a pipe and is the
  :class:`Transport` every adapter returns: the handshake, framing, back-pressure, errors, close;
* a :class:`Scheme` opens pipes to an address and serves pipes at one; :func:`connect` and
  :func:`listen` turn them into connections through the registry of schemes.

Why asyncio with ``add_reader`` + ``os.read``/``os.write`` rather than streams: it is the fastest
asyncio path measured here (34-50 us per round trip against 135-156 us for StreamReader), and a
pipe delivers bytes to the core straight from the reader callback, with no task switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self

from . import sansio
from ._errors import (
    AddressError,
    PeerBroken,
    PeerClosed,
    TransportClosed,
    TransportError,
    TransportTimeout,
)
from .sansio import DEFAULT_CODECS, PROTOCOL_VERSION, Mode, Role

if TYPE_CHECKING:
    from ..security import ListenerGuard, PeerCredentials, SecurityPolicy, SecurityStats
    from ._threaded import FrameWorker

SEND_HIGH_WATER: Final = 1 << 20  #: a sender waits above this many buffered bytes (TRN-013)
SEND_LOW_WATER: Final = 256 << 10
RECV_HIGH_WATER: Final = 1 << 20  #: reading pauses above this many queued, unread bytes (TRN-013)
RECV_LOW_WATER: Final = 256 << 10
HANDSHAKE_TIMEOUT: Final = 5.0  #: FRM-017
CLOSE_FLUSH_TIMEOUT: Final = 1.0  #: TRN-011: close flushes within this bound
READ_SIZE: Final = 256 << 10
#: From this payload size a frame is written as two buffers with one ``writev`` (the length prefix,
#: the payload) rather than concatenated first: a copy of the payload saved, worth more than
#: ``writev``'s cost over ``write`` above a few KiB.
WRITEV_MIN: Final = 8 << 10


# ---------------------------------------------------------------- pipes: bytes only


class PipeSink(Protocol):
    """What a pipe reports to (a :class:`StreamConnection`). ``data`` is valid only during the call
    (it may be a view of a reused read buffer): copy what you keep."""

    def data_received(self, data: bytes | memoryview) -> None: ...

    def eof_received(self) -> None: ...

    def pipe_broken(self, exc: BaseException) -> None: ...


class Pipe(ABC):
    """A bidirectional byte pipe. Thin by design: no framing, no protocol (plug-ins implement this)."""

    @abstractmethod
    def start(self, sink: PipeSink) -> None:
        """Begin delivering received bytes to ``sink`` (from the event loop's callbacks)."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Write or buffer ``data``; raise :class:`PeerBroken` if the peer is gone."""

    def writev(self, parts: tuple[bytes, bytes]) -> None:
        """:meth:`write` of the two buffers one after the other (a pipe over file descriptors writes
        them with one ``writev``, without joining them)."""
        self.write(parts[0] + parts[1])

    @abstractmethod
    def write_buffer_size(self) -> int:
        """Bytes written but not yet handed to the peer."""

    @abstractmethod
    async def drain(self, low: int) -> None:
        """Wait until at most ``low`` bytes are buffered; PeerBroken or TransportClosed meanwhile."""

    @abstractmethod
    def pause_reading(self) -> None: ...

    @abstractmethod
    def resume_reading(self) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Stop, close the file descriptors, remove files: idempotent, never raises."""

    async def wait_closed(self) -> None:  # noqa: B027 - optional hook
        """Finish closing (a child process is reaped here)."""

    def fileno_count(self) -> int:
        """How many file descriptors this pipe holds (for diagnostics)."""
        return 0

    #: The peer is trusted by construction (a stdio server's parent): no credential check.
    peer_trusted: bool = False

    def peer_credentials(self) -> PeerCredentials | None:
        """Who is at the other end, as the kernel says; None when the transport cannot tell
        (spec/security.md SEC-004, SEC-006)."""
        return None


_tls = threading.local()


def _read_buffer() -> bytearray:
    return _read_buffer_view()[0]


def _read_buffer_view() -> tuple[bytearray, memoryview]:
    """This thread's read buffer and a view of it (never resized, so the view stays valid)."""
    bv: tuple[bytearray, memoryview] | None = getattr(_tls, "bv", None)
    if bv is None:
        buf = bytearray(READ_SIZE)
        bv = _tls.bv = (buf, memoryview(buf))
    return bv


try:
    import fcntl as _fcntl
except ImportError:  # not POSIX
    _fcntl = None  # type: ignore[assignment]
F_GETPIPE_SZ: int | None = getattr(_fcntl, "F_GETPIPE_SZ", None)  # Linux only
F_SETPIPE_SZ: int | None = getattr(_fcntl, "F_SETPIPE_SZ", None)

PIPE_GROW_MAX: Final = 1 << 20  #: Linux's default /proc/sys/fs/pipe-max-size
NOT_A_PIPE: Final = 1 << 62  #: the capacity of what is not a pipe (or will not grow): never grow


def pipe_capacity(fd: int) -> int:
    """The capacity of the pipe or FIFO ``fd`` (Linux), else :data:`NOT_A_PIPE`."""
    if F_GETPIPE_SZ is None:
        return NOT_A_PIPE
    try:
        return int(_fcntl.fcntl(fd, F_GETPIPE_SZ))
    except OSError:  # a socket, or a system without pipe sizes
        return NOT_A_PIPE


def grow_pipe(fd: int, frame_size: int) -> int:
    """Grow the pipe ``fd`` to hold a frame of ``frame_size`` bytes (up to 1 MiB) and return its new
    capacity (:data:`NOT_A_PIPE` when it cannot grow: then it is never tried again).

    A frame larger than the pipe (64 KiB by default) crosses it in several wake-ups of both sides;
    one write and one read measured ~35% faster for 64 KiB messages on FIFOs and stdio. Pipes grow
    only when a frame needs it, since the kernel counts pipe memory per user (pipe-user-pages-soft).
    """
    if F_SETPIPE_SZ is None:
        return NOT_A_PIPE
    try:
        return int(_fcntl.fcntl(fd, F_SETPIPE_SZ, min(PIPE_GROW_MAX, 1 << (frame_size - 1).bit_length())))
    except OSError:
        return NOT_A_PIPE


class FdPipe(Pipe):
    """A pipe over one file descriptor (a socket) or two (FIFOs, a child's stdio).

    Reads go through one per-thread buffer (``os.readv``), so an idle connection holds no read
    buffer; writes are tried at once and buffered only when the kernel's buffer is full.
    """

    def __init__(
        self,
        rfd: int,
        wfd: int,
        *,
        on_close: Callable[[], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._rfd, self._wfd = rfd, wfd
        os.set_blocking(rfd, False)
        if wfd != rfd:
            os.set_blocking(wfd, False)
        self._on_close = on_close
        self._sink: PipeSink | None = None
        self._reading = False
        self._wbuf = bytearray()
        self._writing = False
        self._write_exc: BaseException | None = None
        self._drainers: list[tuple[int, asyncio.Future[None]]] = []
        self._closed = False
        self._lent = False  # the descriptors are a thread's (StreamConnection.serve_in_thread)
        self._pipe_cap = pipe_capacity(wfd)

    def start(self, sink: PipeSink) -> None:
        self._sink = sink
        self.resume_reading()

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._rfd)

    def resume_reading(self) -> None:
        if self._reading or self._closed or self._lent:
            return
        if self._sink is not None and self._rfd >= 0:
            self._reading = True
            self._loop.add_reader(self._rfd, self._on_readable)

    def _on_readable(self) -> None:
        buf, mv = _read_buffer_view()
        try:
            n = os.readv(self._rfd, [buf])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.pause_reading()
            assert self._sink is not None
            self._sink.pipe_broken(e)
            return
        assert self._sink is not None
        if n == 0:
            self.pause_reading()
            self._sink.eof_received()
            return
        with mv[:n] as chunk:  # released after the call: a sink keeps no view of the reused buffer
            self._sink.data_received(chunk)

    def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosed("the pipe is closed")
        if self._lent:
            raise RuntimeError("the pipe's descriptors belong to the thread serving it")
        if self._write_exc is not None:
            raise PeerBroken(f"write failed: {self._write_exc}")
        if self._wbuf:
            self._wbuf += data
            return
        if len(data) > self._pipe_cap and self._pipe_cap < PIPE_GROW_MAX:
            self._pipe_cap = grow_pipe(self._wfd, len(data))
        try:
            n = os.write(self._wfd, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as e:
            self._write_failed(e)
            raise PeerBroken(f"write failed: {e}") from None
        if n < len(data):
            self._wbuf += memoryview(data)[n:]
            self._writing = True
            self._loop.add_writer(self._wfd, self._on_writable)

    def writev(self, parts: tuple[bytes, bytes]) -> None:
        if self._wbuf or self._closed or self._lent or self._write_exc is not None:
            self.write(parts[0] + parts[1])
            return
        head, tail = parts
        total = len(head) + len(tail)
        if total > self._pipe_cap and self._pipe_cap < PIPE_GROW_MAX:
            self._pipe_cap = grow_pipe(self._wfd, total)
        try:
            n = os.writev(self._wfd, parts)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as e:
            self._write_failed(e)
            raise PeerBroken(f"write failed: {e}") from None
        if n < total:
            if n < len(head):
                self._wbuf += memoryview(head)[n:]
                self._wbuf += tail
            else:
                self._wbuf += memoryview(tail)[n - len(head) :]
            self._writing = True
            self._loop.add_writer(self._wfd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            n = os.write(self._wfd, self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._write_failed(e)
            return
        del self._wbuf[:n]
        if not self._wbuf:
            self._loop.remove_writer(self._wfd)
            self._writing = False
        self._wake_drainers()

    def _write_failed(self, exc: BaseException) -> None:
        self._write_exc = exc
        self._wbuf.clear()
        if self._writing:
            self._loop.remove_writer(self._wfd)
            self._writing = False
        self._wake_drainers()
        if self._sink is not None:
            self._sink.pipe_broken(exc)

    def _wake_drainers(self) -> None:
        size = len(self._wbuf)
        keep = []
        for low, fut in self._drainers:
            if fut.done():
                continue
            if self._closed:
                fut.set_exception(TransportClosed("the pipe was closed"))
            elif self._write_exc is not None:
                fut.set_exception(PeerBroken(f"write failed: {self._write_exc}"))
            elif size <= low:
                fut.set_result(None)
            else:
                keep.append((low, fut))
        self._drainers = keep

    def write_buffer_size(self) -> int:
        return len(self._wbuf)

    async def drain(self, low: int) -> None:
        if self._write_exc is not None:
            raise PeerBroken(f"write failed: {self._write_exc}")
        if self._closed:
            raise TransportClosed("the pipe is closed")
        if len(self._wbuf) <= low:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._drainers.append((low, fut))
        await fut

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.pause_reading()
        if self._writing:
            self._loop.remove_writer(self._wfd)
            self._writing = False
        for fd in {self._rfd, self._wfd}:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._rfd = self._wfd = -1
        self._wbuf.clear()
        self._wake_drainers()
        if self._on_close is not None:
            with contextlib.suppress(OSError):
                self._on_close()

    def fileno_count(self) -> int:
        return 0 if self._closed else len({self._rfd, self._wfd})

    def lend(self) -> tuple[int, int]:
        """Stop the loop's reading and writing for good and give the descriptors (read, write) to
        a thread; the pipe still closes them (:meth:`close`), once that thread has ended."""
        if self._closed or self._wbuf:
            raise RuntimeError("only an open pipe with nothing left to write can be lent")
        self.pause_reading()
        self._lent = True
        return self._rfd, self._wfd

    def peer_credentials(self) -> PeerCredentials | None:
        from ..security import peer_credentials_of_fd

        return None if self._closed else peer_credentials_of_fd(self._rfd)


# ---------------------------------------------------------------- the interface


class Transport(ABC):
    """One connection, handshake done (TRN-010). Every method raises only :class:`TransportError`s."""

    address: str
    codec: str
    peer_version: tuple[int, int]
    mode: Mode

    @abstractmethod
    async def send_frame(self, payload: bytes) -> None:
        """Send one frame; waits while the peer does not read (TRN-013)."""

    @abstractmethod
    async def recv_frame(self, timeout: float | None = None) -> bytes:
        """The next frame; PeerClosed at a clean end, PeerBroken, FrameTooLarge, TransportTimeout."""

    @abstractmethod
    async def close(self) -> None:
        """Flush, then free everything; idempotent (TRN-011)."""

    @abstractmethod
    def abort(self) -> None:
        """Free everything now, without flushing; idempotent."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`abort` was called."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """True while frames can be sent and received (not closed, not ended by the peer)."""

    @property
    @abstractmethod
    def pending_frames(self) -> int:
        """Frames received and not yet read (a pool does not reuse such a connection, TRN-022)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Listener(ABC):
    """Accepts connections at one address (TRN-010, TRN-015)."""

    address: str

    @abstractmethod
    async def accept(self, timeout: float | None = None) -> Transport:
        """The next connection whose handshake succeeded; TransportClosed once closed."""

    @abstractmethod
    async def close(self) -> None:
        """Stop listening, free the address (unlink), drop unaccepted connections; idempotent."""

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


# ---------------------------------------------------------------- the connection over a pipe


class StreamConnection(Transport):
    """A :class:`Transport` made of a :class:`Pipe` and the sans-I/O core."""

    def __init__(self, pipe: Pipe, core: sansio.Connection, address: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._pipe = pipe
        self._core = core
        self.address = address
        self._frames: deque[bytes] = deque()
        self._queued = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._closer: asyncio.Task[None] | None = None  # flushes an error frame, then closes
        self._handler: Callable[[bytes], None] | None = None
        self._on_shut: list[Callable[[], None]] = []  # the listener's connection count (ROB-006)
        self._worker: FrameWorker | None = None  # the thread of serve_in_thread
        self._worker_done: asyncio.Future[None] | None = None

    # -- setup

    async def start(self, timeout: float | None = HANDSHAKE_TIMEOUT) -> None:
        """Run the handshake; on failure the connection is closed and the error raised."""
        self._ready = self._loop.create_future()
        self._pipe.start(self)
        try:
            if self._core.role is Role.CLIENT:
                self._pipe.write(self._core.initiate())
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            if self._core.role is Role.SERVER:
                await self._send_timeout_error()
            await self._close_failed()
            raise TransportTimeout(f"handshake with {self.address} timed out after {timeout} s") from None
        except BaseException:
            if self._pipe.write_buffer_size():
                with contextlib.suppress(TimeoutError, TransportError):
                    await asyncio.wait_for(self._pipe.drain(0), CLOSE_FLUSH_TIMEOUT)
            await self._close_failed()
            raise
        assert self._core.codec is not None
        assert self._core.peer_version is not None
        self.codec = self._core.codec
        self.peer_version = self._core.peer_version
        self.mode = self._core.mode or Mode.FRAMES

    async def _send_timeout_error(self) -> None:
        """A server's handshake timed out: the error frame HANDSHAKE_TIMEOUT first (ROB-002)."""
        self._core.handshake_timeout()
        out = self._core.data_to_send()
        if out and not self._closed:
            with contextlib.suppress(TimeoutError, TransportError):
                self._pipe.write(out)
                await asyncio.wait_for(self._pipe.drain(0), CLOSE_FLUSH_TIMEOUT)

    async def _close_failed(self) -> None:
        """Close after a failed handshake, waiting for the pipe (a child is reaped, TRN-011)."""
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)
        self._shut()
        if self._closing is None:
            self._closing = self._loop.create_future()
            self._closing.set_result(None)
            await self._pipe.wait_closed()

    # -- the pipe's callbacks

    def data_received(self, data: bytes | memoryview) -> None:
        payload = self._core.receive_single(data)
        if payload is not None:  # the hot path: the read is one whole frame
            self._push(payload)
            return
        events = self._core.receive_data(data)
        out = self._core.data_to_send()
        if out:
            with contextlib.suppress(TransportError):
                self._pipe.write(out)
        if len(events) == 1 and type(events[0]) is sansio.Frame:  # the hot path
            self._push(events[0].payload)
            return
        self._handle(events)

    def eof_received(self) -> None:
        self._handle(self._core.receive_eof())

    def pipe_broken(self, exc: BaseException) -> None:
        self._handle(self._core.receive_reset())

    def _push(self, payload: bytes) -> None:
        if self._handler is not None:
            self._handler(payload)
            return
        self._frames.append(payload)
        self._queued += len(payload)
        if self._queued > RECV_HIGH_WATER and not self._paused:
            self._paused = True
            self._pipe.pause_reading()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _handle(self, events: list[sansio.Event]) -> None:
        for ev in events:
            if type(ev) is sansio.Frame:
                self._push(ev.payload)
            elif type(ev) is sansio.HandshakeDone and self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        if self._core.must_close:
            err = self._core.terminal_error()
            if self._ready is not None and not self._ready.done() and err is not None:
                self._ready.set_exception(err)
                self._ready.exception()  # retrieved: the handshake waiter re-raises it
            w = self._waiter
            if w is not None and not w.done():
                w.set_result(None)
            if self._core.state is sansio.State.FAILED and self._core.role is Role.CLIENT:
                self._pipe.close()  # FRM-016: close without sending anything more
            elif self._core.state is sansio.State.FAILED and self._closer is None:
                self._closer = self._loop.create_task(self._flush_and_close())

    async def _flush_and_close(self) -> None:
        """After a violation: flush an error frame, then close (FRM-003, FRM-013)."""
        with contextlib.suppress(TimeoutError, TransportError):
            await asyncio.wait_for(self._pipe.drain(0), CLOSE_FLUSH_TIMEOUT)
        self._pipe.close()

    # -- the interface

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_open(self) -> bool:
        return not self._closed and self._core.state is sansio.State.OPEN

    @property
    def pending_frames(self) -> int:
        return len(self._frames)

    @property
    def state(self) -> sansio.State:
        return self._core.state

    async def send_frame(self, payload: bytes) -> None:
        if self._closed:
            raise TransportClosed("send_frame on a closed connection")
        try:
            if len(payload) >= WRITEV_MIN:
                self._pipe.writev(self._core.send_frame_iov(payload))
            else:
                self._pipe.write(self._core.send_frame(payload))
        except PeerBroken:
            self._core.receive_reset()
            raise
        if self._pipe.write_buffer_size() > SEND_HIGH_WATER:
            try:
                await self._pipe.drain(SEND_LOW_WATER)
            except PeerBroken:
                self._core.receive_reset()
                raise
            if self._closed:
                raise TransportClosed("closed while sending")

    # -- the callback style, for servers that answer from the reader callback

    def set_frame_handler(self, handler: Callable[[bytes], None] | None) -> None:
        """Deliver frames by calling ``handler(payload)`` from the reader callback instead of
        queueing them for :meth:`recv_frame`: no task switch per frame, the lowest latency.
        Frames already queued are handed over first; :meth:`recv_frame` still reports the end."""
        self._handler = handler
        while handler is not None and self._frames:
            payload = self._frames.popleft()
            self._queued -= len(payload)
            handler(payload)

    def send_frame_nowait(self, payload: bytes) -> bool:
        """Write one frame without waiting; False when over the high-water mark: then stop producing
        (e.g. :meth:`pause_reading`) until ``await drain()`` returns (TRN-013)."""
        if self._closed:
            raise TransportClosed("send_frame on a closed connection")
        try:
            if len(payload) >= WRITEV_MIN:
                self._pipe.writev(self._core.send_frame_iov(payload))
            else:
                self._pipe.write(self._core.send_frame(payload))
        except PeerBroken:
            self._core.receive_reset()
            raise
        return self._pipe.write_buffer_size() <= SEND_HIGH_WATER

    def send_frames_nowait(self, payloads: list[bytes]) -> bool:
        """:meth:`send_frame_nowait` for several frames at once, in one write (one system call
        for a batch: the bus node's output)."""
        if self._closed:
            raise TransportClosed("send_frame on a closed connection")
        frame = self._core.send_frame
        try:
            self._pipe.write(b"".join([frame(p) for p in payloads]))
        except PeerBroken:
            self._core.receive_reset()
            raise
        return self._pipe.write_buffer_size() <= SEND_HIGH_WATER

    async def drain(self) -> None:
        """Wait until the output buffer is under the low-water mark."""
        await self._pipe.drain(SEND_LOW_WATER)

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self._pipe.pause_reading()

    def resume_reading(self) -> None:
        if self._paused and self._queued <= RECV_LOW_WATER:
            self._paused = False
            self._pipe.resume_reading()

    async def serve_in_thread(self, handler: Callable[[bytes], bytes | None]) -> None:
        """Answer every frame with ``handler(payload)`` (None: no answer) until the connection
        ends: returns at the peer's clean end, raises as :meth:`recv_frame` otherwise.

        Over file descriptors (:class:`FdPipe`) a dedicated thread does it with blocking system
        calls, with no event-loop iteration per frame (half the echo server's CPU per round trip,
        see :mod:`._threaded`): ``handler`` then runs in that thread and must not
        touch the loop; meanwhile only :meth:`close` and :meth:`abort` may be called. Reading stops
        while an answer cannot be written (TRN-013). Other pipes are served from the reader
        callback instead, with the same results.
        """
        pipe = self._pipe
        if not isinstance(pipe, FdPipe) or self._handler is not None or self._worker is not None:
            await self._serve_on_loop(handler)
            return
        pipe.pause_reading()
        while self._frames:  # what arrived before: answered first, in order
            payload = self._frames.popleft()
            self._queued -= len(payload)
            answer = handler(payload)
            if answer is not None:
                await self.send_frame(answer)
        if self._closed:
            raise TransportClosed("serve_in_thread on a closed connection")
        if pipe.write_buffer_size():
            try:
                await pipe.drain(0)
            except PeerBroken:
                self._core.receive_reset()
                raise
        err = self._core.terminal_error()
        if err is not None:
            if isinstance(err, PeerClosed):
                return
            raise err
        from ._threaded import FrameWorker

        rfd, wfd = pipe.lend()
        worker = self._worker = FrameWorker(rfd, wfd, self._core, handler)
        done = self._worker_done = self._loop.create_future()
        loop = self._loop

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        def run() -> None:
            try:
                worker.run()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(finished)

        threading.Thread(target=run, name=f"symphony-serve {self.address}", daemon=True).start()
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            if not done.done():
                worker.stop(hard=False)  # close() waits for the write in progress
            raise
        if worker.error is not None:
            self._shut()
            raise worker.error
        if self._closed or worker.soft:  # stopped by our close or abort
            raise TransportClosed("the connection was closed while serving")
        err = self._core.terminal_error()
        if err is not None and not isinstance(err, PeerClosed):
            raise err

    async def _serve_on_loop(self, handler: Callable[[bytes], bytes | None]) -> None:
        """:meth:`serve_in_thread` from the reader callback: no task switch per frame; when the
        peer does not read, reading pauses until the output drains (TRN-013)."""
        draining: set[asyncio.Task[None]] = set()

        async def drain_then_resume() -> None:
            try:
                await self.drain()
            except TransportError:
                return
            self.resume_reading()

        def on_frame(payload: bytes) -> None:
            answer = handler(payload)
            if answer is None:
                return
            try:
                if not self.send_frame_nowait(answer) and not draining:
                    self.pause_reading()
                    task = asyncio.create_task(drain_then_resume())
                    draining.add(task)
                    task.add_done_callback(draining.discard)
            except TransportError:
                pass  # the end is reported by recv_frame below

        self.set_frame_handler(on_frame)
        try:
            while True:  # frames go to on_frame: recv_frame returns only by raising at the end
                on_frame(await self.recv_frame())
        except PeerClosed:
            return
        finally:
            for t in draining:
                t.cancel()

    async def send_keepalive(self) -> None:
        """Send a keep-alive frame (FRM-004): a write that fails if the peer is gone."""
        if self._closed:
            raise TransportClosed("send_keepalive on a closed connection")
        try:
            self._pipe.write(self._core.keepalive())
        except PeerBroken:
            self._core.receive_reset()
            raise

    async def recv_frame(self, timeout: float | None = None) -> bytes:
        while True:
            if self._frames:
                payload = self._frames.popleft()
                self._queued -= len(payload)
                if self._paused and self._queued <= RECV_LOW_WATER:
                    self._paused = False
                    self._pipe.resume_reading()
                return payload
            if self._closed:
                raise TransportClosed("recv_frame on a closed connection")
            err = self._core.terminal_error()
            if err is not None:
                raise err
            if self._waiter is not None:
                raise RuntimeError("another task is already waiting in recv_frame")
            if self._worker_done is not None and not self._worker_done.done():
                raise RuntimeError("the frames go to the thread serving the connection")
            fut = self._waiter = self._loop.create_future()
            try:
                if timeout is None:
                    await fut
                else:
                    await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise TransportTimeout(f"no frame within {timeout} s") from None
            finally:
                self._waiter = None

    async def close(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closing = self._loop.create_future()
        try:
            await self._stop_worker()
            if not self._closed and self._pipe.write_buffer_size() and self._core.state is sansio.State.OPEN:
                with contextlib.suppress(TimeoutError, TransportError):
                    await asyncio.wait_for(self._pipe.drain(0), CLOSE_FLUSH_TIMEOUT)
            if self._closer is not None:
                await self._closer  # bounded by CLOSE_FLUSH_TIMEOUT
            self._shut()
            await self._pipe.wait_closed()
        finally:
            self._shut()
            if not self._closing.done():
                self._closing.set_result(None)

    def abort(self) -> None:
        self._shut()
        if self._closing is None:
            self._closing = self._loop.create_future()
            self._closing.set_result(None)
            self._loop.create_task(self._pipe.wait_closed())

    async def _stop_worker(self) -> None:
        """Close: the serving thread stops reading and finishes its write (the flush), within
        CLOSE_FLUSH_TIMEOUT; then it is stopped hard."""
        done, worker = self._worker_done, self._worker
        if done is None or done.done() or worker is None:
            return
        worker.stop(hard=False)
        try:
            await asyncio.wait_for(asyncio.shield(done), CLOSE_FLUSH_TIMEOUT)
            return
        except TimeoutError:
            worker.stop(hard=True)
        with contextlib.suppress(TimeoutError):  # a handler stuck for good: _shut frees later
            await asyncio.wait_for(asyncio.shield(done), CLOSE_FLUSH_TIMEOUT)

    def _shut(self) -> None:
        if self._closed:
            return
        self._closed = True
        done, worker = self._worker_done, self._worker
        if done is not None and not done.done() and worker is not None:
            # the thread still uses the descriptors and the core: free them once it has ended
            worker.stop(hard=True)
            done.add_done_callback(lambda _f: self._release())
            return
        self._release()

    def _release(self) -> None:
        self._core.close()
        self._pipe.close()
        self._frames.clear()
        self._queued = 0
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(TransportClosed("closed during the handshake"))
            self._ready.exception()
        callbacks, self._on_shut = self._on_shut, []
        for callback in callbacks:
            callback()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} {self._core.role} {self._core.state}>"


# ---------------------------------------------------------------- schemes, listeners, the registry


@dataclass(frozen=True)
class ConnectOptions:
    codecs: tuple[str, ...] = DEFAULT_CODECS
    version: tuple[int, int] = PROTOCOL_VERSION
    mode: Mode = Mode.FRAMES
    timeout: float | None = HANDSHAKE_TIMEOUT


@dataclass(frozen=True)
class ListenOptions:
    codecs: tuple[str, ...] = ("msgpack", "json")
    version: tuple[int, int] = PROTOCOL_VERSION
    accept_ndjson: bool = True
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT
    backlog: int = 128
    security: SecurityPolicy | None = None  #: None: the default policy (spec/security.md)


class PipeServer(ABC):
    """What a scheme's ``serve`` returns: it calls ``on_pipe`` for every incoming pipe."""

    #: True when the server has exactly one pipe (stdio): once its handshake fails, accept ends.
    one_shot: bool = False

    @abstractmethod
    def close(self) -> None:
        """Stop accepting and free the address (unlink files); idempotent."""


class Scheme(ABC):
    """A transport family under one address scheme: the plug-in point (docs/transports.md)."""

    name: str

    def check_target(self, target: str) -> None:
        """Raise :class:`AddressError` if ``target`` cannot be an address of this scheme (TRN-001)."""
        if not target:
            raise AddressError(f"{self.name}: needs a target after the colon")

    @abstractmethod
    async def open(self, target: str, timeout: float | None) -> Pipe:
        """Open a client pipe; ConnectionRefused when nobody listens."""

    @abstractmethod
    async def serve(self, target: str, on_pipe: Callable[[Pipe], None], options: ListenOptions) -> PipeServer:
        """Start serving at ``target``; AddressInUse when a live server is there."""


class PipeListener(Listener):
    """A listener over a scheme's pipe server: handshakes run concurrently, one task each (TRN-010)."""

    def __init__(self, address: str, options: ListenOptions) -> None:
        self.address = address
        self._options = options
        self._loop = asyncio.get_running_loop()
        self._queue: deque[StreamConnection] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._server: PipeServer | None = None
        self._closed = False
        self._exhausted = False
        self.accepted = 0
        self.rejected = 0
        from ..security import ListenerGuard, SecurityPolicy

        self.guard: ListenerGuard = ListenerGuard(options.security or SecurityPolicy(), address)

    @property
    def security_stats(self) -> SecurityStats:
        """Admissions and refusals per reason (spec/security.md SEC-008)."""
        return self.guard.stats

    def _attach(self, server: PipeServer) -> None:
        self._server = server

    def on_pipe(self, pipe: Pipe) -> None:
        if self._closed:
            pipe.close()
            return
        o = self._options
        refusal = self.guard.admit(pipe)  # before a byte is read (SEC-004, ROB-006)
        if refusal is not None:
            self.guard.refuse(pipe, *refusal)
            return
        secret = self.guard.policy.secret
        if secret is not None:
            from ..security import AuthenticatedPipe

            pipe = AuthenticatedPipe(
                pipe, secret, Role.SERVER, on_failure=self.guard.auth_failed, linger=self.guard.policy.linger
            )
        core = sansio.Connection(
            Role.SERVER, codecs=o.codecs, version=o.version, accept_ndjson=o.accept_ndjson
        )
        conn = StreamConnection(pipe, core, self.address)
        conn._on_shut.append(self.guard.opened())
        task = self._loop.create_task(self._handshake(conn))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, conn: StreamConnection) -> None:
        try:
            await conn.start(self._options.handshake_timeout)
        except (TransportError, asyncio.CancelledError) as e:
            self.rejected += 1
            if isinstance(e, TransportTimeout):
                self.guard.handshake_timed_out()
            elif isinstance(e, TransportError):
                self.guard.handshake_failed(e)
            conn.abort()
            if self._server is not None and self._server.one_shot:
                self._exhausted = True
                self._wake()
            return
        if self._closed:
            conn.abort()
            return
        self._queue.append(conn)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def accept(self, timeout: float | None = None) -> Transport:
        while True:
            if self._queue:
                self.accepted += 1
                return self._queue.popleft()
            if self._closed:
                raise TransportClosed(f"listener {self.address} is closed")
            if self._exhausted:
                raise TransportClosed(f"the one connection of {self.address} failed its handshake")
            if self._waiter is not None:
                raise RuntimeError("another task is already waiting in accept")
            fut = self._waiter = self._loop.create_future()
            try:
                await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise TransportTimeout(f"no connection within {timeout} s") from None
            finally:
                self._waiter = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        self.guard.close()
        tasks = list(self._handshakes)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        while self._queue:
            await self._queue.popleft().close()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address}>"


_SCHEMES: dict[str, Scheme] = {}


def register_scheme(scheme: Scheme, *, replace: bool = False) -> None:
    """Plug a transport in under ``scheme.name`` (``name:target`` addresses)."""
    if scheme.name in _SCHEMES and not replace:
        raise ValueError(f"scheme {scheme.name!r} is already registered")
    _SCHEMES[scheme.name] = scheme


def schemes() -> dict[str, Scheme]:
    if not _BUILTINS:
        _load_builtin_schemes()
    return dict(_SCHEMES)


def _load_builtin_schemes() -> None:
    """Register the built-in schemes (once; a plug-in registered under the same name wins)."""
    from ._fifo import FifoScheme
    from ._memory import MemoryScheme, PipeScheme
    from ._stdio import StdioScheme
    from ._unix import UnixScheme

    for scheme in (UnixScheme(), FifoScheme(), StdioScheme(), MemoryScheme(), PipeScheme()):
        _SCHEMES.setdefault(scheme.name, scheme)
    _BUILTINS.append(True)


_BUILTINS: list[bool] = []


def parse_address(address: str) -> tuple[Scheme, str]:
    """Split and check an address before any I/O (TRN-001)."""
    if not _BUILTINS:
        _load_builtin_schemes()
    if not isinstance(address, str) or not address:
        raise AddressError(f"not an address: {address!r}")
    name, _sep, target = address.partition(":")
    scheme = _SCHEMES.get(name)
    if scheme is None:
        known = ", ".join(f"{n}:" for n in sorted(_SCHEMES))
        raise AddressError(f"unknown transport in address {address!r} (known: {known})")
    scheme.check_target(target)
    return scheme, target


async def connect(
    address: str,
    *,
    codecs: tuple[str, ...] = DEFAULT_CODECS,
    mode: Mode = Mode.FRAMES,
    version: tuple[int, int] = PROTOCOL_VERSION,
    timeout: float | None = HANDSHAKE_TIMEOUT,
    secret: bytes | None = None,
) -> StreamConnection:
    """Connect to ``address`` and run the handshake (TRN-010); with ``secret``, the shared-secret
    handshake first (spec/security.md SEC-007)."""
    scheme, target = parse_address(address)
    try:
        pipe = await asyncio.wait_for(scheme.open(target, timeout), timeout)
    except TimeoutError:
        raise TransportTimeout(f"connecting to {address} timed out after {timeout} s") from None
    if secret is not None:
        from ..security import AuthenticatedPipe

        pipe = AuthenticatedPipe(pipe, secret, Role.CLIENT)
    core = sansio.Connection(Role.CLIENT, codecs=codecs, version=version, mode=mode)
    conn = StreamConnection(pipe, core, address)
    await conn.start(timeout)
    return conn


async def listen(
    address: str,
    *,
    codecs: tuple[str, ...] = ("msgpack", "json"),
    version: tuple[int, int] = PROTOCOL_VERSION,
    accept_ndjson: bool = True,
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
    security: SecurityPolicy | None = None,
) -> PipeListener:
    """Listen at ``address``; :meth:`Listener.accept` gives connections after their handshake.

    ``security``: who may connect and the limits (spec/security.md); None: the default policy
    (peers of our own user only, at most 512 connections, owner-only socket in a safe directory).
    """
    scheme, target = parse_address(address)
    options = ListenOptions(codecs, version, accept_ndjson, handshake_timeout, security=security)
    listener = PipeListener(address, options)
    server = await scheme.serve(target, listener.on_pipe, options)
    listener._attach(server)
    return listener
