"""One connection served by a dedicated thread with blocking system calls (see
:meth:`StreamConnection.serve_in_thread`).

An event loop costs a server an iteration per frame: ``epoll_wait``, the selector's and the loop's
Python code, a handle, before the read even starts. A thread blocked in ``read`` on the connection
itself wakes straight into it: the echo server's CPU per round trip measured 16 us against 30 on
a Unix socket, 12 against 27 on pipes (200-byte messages, a loaded 2-core machine). The thread owns
the file descriptors and the sans-I/O core while it runs; the loop only asks it to stop:

* softly (``close``): stop reading, finish the write in progress (the flush of TRN-011);
* hard (``abort``, or ``close`` after :data:`CLOSE_FLUSH_TIMEOUT`): stop now.

How a blocked thread is woken: a socket by ``shutdown`` (a blocked ``read`` returns, a blocked
``write`` fails); a pipe's blocked ``read`` by a byte written into that pipe through a second write
end (``/proc/self/fd``, opened only then: a writer held open would hide the peer's end of stream).
A pipe's writes are non-blocking, and a full pipe is waited for with ``poll`` in slices that look at
the stop flag. Without ``/proc``, a pipe is read behind ``poll`` in the same slices. The descriptors
are closed by the loop once the thread has ended, never under it.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
from collections.abc import Callable
from typing import Final

from . import sansio
from ._base import PIPE_GROW_MAX, READ_SIZE, WRITEV_MIN, grow_pipe, pipe_capacity

FIRST_READ_SIZE: Final = 16 << 10  #: a thread's first read buffer; it doubles up to READ_SIZE when filled
STOP_POLL_MS: Final = 50  #: how often a thread waiting with poll looks at the stop flags

Handler = Callable[[bytes], bytes | None]


class _Stop(Exception):
    """The loop asked the thread to stop now."""


def _reopen_for_writing(fd: int) -> int:
    """A new write end of the pipe or FIFO whose read end is ``fd`` (Linux), or -1."""
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return -1


class FrameWorker:
    """The thread's side: read, decode, ``handler``, frame, write; until the end or a stop."""

    def __init__(self, rfd: int, wfd: int, core: sansio.Connection, handler: Handler) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.core = core
        self.handler = handler
        self.is_socket = rfd == wfd and stat.S_ISSOCK(os.fstat(rfd).st_mode)
        self.soft = False  #: stop reading (written by the loop's thread)
        self.hard = False  #: stop writing too
        self.error: BaseException | None = None  #: what the handler (or a bug) raised
        self.pipe_cap = pipe_capacity(wfd)
        self._wpoll = select.poll()
        self._wpoll.register(wfd, select.POLLOUT)
        self._rpoll: select.poll | None = None  # a pipe that cannot be woken: read behind poll
        if self.is_socket:
            os.set_blocking(rfd, True)
            return
        os.set_blocking(wfd, False)
        wake = _reopen_for_writing(rfd) if stat.S_ISFIFO(os.fstat(rfd).st_mode) else -1
        if wake >= 0:
            os.close(wake)  # it can be done: done again to wake the thread, not held open
            os.set_blocking(rfd, True)
        else:
            os.set_blocking(rfd, False)
            self._rpoll = select.poll()
            self._rpoll.register(rfd, select.POLLIN)

    # -- the loop's side

    def stop(self, *, hard: bool) -> None:
        """Ask the thread to stop (from the loop's thread; idempotent)."""
        self.soft = True
        if hard:
            self.hard = True
        if self.is_socket:
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=self.rfd)
                try:
                    sock.shutdown(socket.SHUT_RDWR if hard else socket.SHUT_RD)
                finally:
                    sock.detach()
        elif self._rpoll is None:
            wake = _reopen_for_writing(self.rfd)
            if wake >= 0:
                with contextlib.suppress(OSError):  # full: the thread is not blocked in a read
                    os.write(wake, b"\0")
                os.close(wake)

    # -- the thread's side

    def run(self) -> None:
        try:
            self._serve()
        except _Stop:
            pass
        except BaseException as e:  # handed to the loop, which re-raises it
            self.error = e

    def _serve(self) -> None:
        rfd, core, handler = self.rfd, self.core, self.handler
        buf = bytearray(FIRST_READ_SIZE)
        mv = memoryview(buf)
        polled = self._rpoll is not None
        while not self.soft:
            if polled and not self._wait_readable():
                return
            try:
                n = os.readv(rfd, [buf])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                if not self.soft:
                    core.receive_reset()
                return
            if self.soft:  # woken to stop (a shut-down socket reads as the end)
                return
            if not n:
                core.receive_eof()
                return
            chunk = mv[:n]
            payload = core.receive_single(chunk)
            if payload is not None:  # the usual read: one whole frame
                answer = handler(payload)
                if answer is not None and not self._send(answer):
                    return
            else:
                events = core.receive_data(chunk)
                out = core.data_to_send()
                if out and not self._write(out):
                    return
                for ev in events:
                    if type(ev) is sansio.Frame:
                        answer = handler(ev.payload)
                        if answer is not None and not self._send(answer):
                            return
                if core.must_close:
                    return
            if n == len(buf) and n < READ_SIZE:  # a burst or a large frame: read more at once
                buf = bytearray(2 * n)
                mv = memoryview(buf)

    def _wait_readable(self) -> bool:
        """Wait for the pipe to have bytes (or its end); False when asked to stop."""
        assert self._rpoll is not None
        while not self.soft:
            if self._rpoll.poll(STOP_POLL_MS):
                return True
        return False

    def _send(self, payload: bytes) -> bool:
        if len(payload) >= WRITEV_MIN:
            head, tail = self.core.send_frame_iov(payload)
            return self._write(head, tail)
        return self._write(self.core.send_frame(payload))

    def _write(self, head: bytes, tail: bytes = b"") -> bool:
        """Write everything (blocking until the peer reads); False when the connection broke."""
        wfd = self.wfd
        total = len(head) + len(tail)
        if total > self.pipe_cap and self.pipe_cap < PIPE_GROW_MAX:
            self.pipe_cap = grow_pipe(wfd, total)
        try:
            n = os.writev(wfd, (head, tail)) if tail else os.write(wfd, head)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            return self._broken()
        if n == total:
            return True
        for part in (head, tail):
            if n >= len(part):
                n -= len(part)
                continue
            view = memoryview(part)[n:]
            n = 0
            while view:
                if self.hard:
                    raise _Stop
                try:
                    k = os.write(wfd, view)
                except (BlockingIOError, InterruptedError):
                    self._wait_writable()
                    continue
                except OSError:
                    return self._broken()
                view = view[k:]
        return True

    def _wait_writable(self) -> None:
        """The peer does not read: wait until it does, or for a hard stop (a soft one lets the write
        finish: the flush of a close)."""
        while not self._wpoll.poll(STOP_POLL_MS):
            if self.hard:
                raise _Stop
        if self.hard:
            raise _Stop

    def _broken(self) -> bool:
        if self.hard:  # our own shutdown failed the write
            raise _Stop
        self.core.receive_reset()
        return False
