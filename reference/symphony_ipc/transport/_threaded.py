"""One connection served by a dedicated thread with blocking system calls (see
:meth:`StreamConnection.serve_in_thread`).

An event loop costs a server an iteration per frame: ``epoll_wait``, the selector's and the loop's
Python code, a handle, before the read even starts. A thread blocked in ``read`` on the connection
itself wakes straight into it: an echo round trip over a Unix socket measured ~8 us faster here
(~20 us against ~28 us of the server's CPU per round trip). The thread owns the file descriptors and
the sans-I/O core while it runs; the loop only asks it to stop:

* softly (``close``): stop reading, finish the write in progress (the flush of TRN-011);
* hard (``abort``, or ``close`` after :data:`CLOSE_FLUSH_TIMEOUT`): stop now.

A socket is woken by ``shutdown`` (a blocked ``read`` returns, a blocked ``write`` fails); a pipe,
which cannot be, is read and written non-blocking behind ``poll`` on it and on a wake-up pipe.
The descriptors are closed by the loop once the thread has ended, never under it.
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

Handler = Callable[[bytes], bytes | None]


class _Stop(Exception):
    """The loop asked the thread to stop now."""


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
        self._wake_r = self._wake_w = -1
        if self.is_socket:
            os.set_blocking(rfd, True)
            self._wpoll = select.poll()  # only if someone made the socket non-blocking meanwhile
            self._wpoll.register(wfd, select.POLLOUT)
        else:
            os.set_blocking(rfd, False)
            os.set_blocking(wfd, False)
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._rpoll = select.poll()
            self._rpoll.register(rfd, select.POLLIN)
            self._rpoll.register(self._wake_r, select.POLLIN)
            self._wpoll = select.poll()
            self._wpoll.register(wfd, select.POLLOUT)
            self._wpoll.register(self._wake_r, select.POLLIN)

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
        elif self._wake_w >= 0:
            with contextlib.suppress(OSError):  # full: the thread is already woken
                os.write(self._wake_w, b"\0")

    def release(self) -> None:
        """Free the wake-up pipe once the thread has ended (from the loop's thread)."""
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

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
        is_socket = self.is_socket
        while not self.soft:
            if not is_socket and not self._wait_readable():
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
        """Wait for the pipe to have bytes (or its end); False when woken to stop."""
        while True:
            for fd, _ in self._rpoll.poll():
                if fd == self.rfd:
                    return True
            if self.soft:
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
        """A pipe is full: wait until the peer reads, or for a hard stop (a soft one lets the write
        finish: the flush of a close)."""
        for fd, _ in self._wpoll.poll(None if not self.soft else 20):
            if fd == self._wake_r:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 64)
        if self.hard:
            raise _Stop

    def _broken(self) -> bool:
        if self.hard:  # our own shutdown failed the write
            raise _Stop
        self.core.receive_reset()
        return False
