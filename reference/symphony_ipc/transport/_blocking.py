"""A blocking client over the same sans-I/O core, for tools (``symphony-ipc ping``) and scripts.

It opens ``unix:``, ``fifo:`` and ``stdio:COMMAND`` addresses with plain blocking system calls: the
lowest-latency path in Python (no event loop between the kernel and the caller).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import secrets
import select
import socket
import stat
import struct
import subprocess
import time
from collections import deque
from types import TracebackType
from typing import Self

from . import sansio
from ._base import PIPE_GROW_MAX, WRITEV_MIN, _read_buffer_view, grow_pipe, parse_address, pipe_capacity
from ._errors import ConnectionRefused, PeerBroken, TransportClosed, TransportError, TransportTimeout
from ._fifo import RENDEZVOUS, pair_paths
from ._stdio import EXIT_GRACE, spawn, split_command
from .sansio import DEFAULT_CODECS, PROTOCOL_VERSION, Mode, Role, State

_OPEN = State.OPEN


class BlockingConnection:
    """One client connection, handshake done; ``send_frame``/``recv_frame``/``close`` block."""

    def __init__(
        self, rfd: int, wfd: int, core: sansio.Connection, address: str, proc: subprocess.Popen[bytes] | None
    ) -> None:
        self._rfd, self._wfd = rfd, wfd
        os.set_blocking(rfd, True)
        os.set_blocking(wfd, True)
        self._core = core
        self.address = address
        self.process = proc
        self._frames: deque[bytes] = deque()
        self._closed = False
        self._poll = select.poll()  # for timeouts: cheaper per call than select.select
        self._poll.register(rfd, select.POLLIN)
        self._pipe_cap = pipe_capacity(wfd)
        # On a socket the kernel times a blocking read out itself (SO_RCVTIMEO): no poll call
        # before each read (~5 us of a ~60 us round trip). 0.0: no receive timeout is set.
        self._is_socket = rfd == wfd and stat.S_ISSOCK(os.fstat(rfd).st_mode)
        self._rcvtimeo = 0.0
        # the ``timeout`` of recv_frame that a plain read honours as it is: None (no timeout, a
        # blocking read), or on a socket the timeout its SO_RCVTIMEO is set to
        self._plain_read_timeout: float | None = None
        self.codec = ""
        self.peer_version = (0, 0)

    def _write_all(self, data: bytes | memoryview) -> None:
        if len(data) > self._pipe_cap and self._pipe_cap < PIPE_GROW_MAX:
            self._pipe_cap = grow_pipe(self._wfd, len(data))
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._wfd, view)
            except InterruptedError:
                continue
            except OSError as e:
                raise self._write_failed(e) from None
            view = view[n:]

    def _write_failed(self, e: OSError) -> PeerBroken:
        self._core.receive_reset()
        return PeerBroken(f"write failed: {e.strerror}")

    def _write_iov(self, head: bytes, tail: bytes) -> None:
        """Write two buffers with one ``writev``: a large frame is not copied to be framed."""
        total = len(head) + len(tail)
        if total > self._pipe_cap and self._pipe_cap < PIPE_GROW_MAX:
            self._pipe_cap = grow_pipe(self._wfd, total)
        try:
            n = os.writev(self._wfd, (head, tail))
        except InterruptedError:
            n = 0
        except OSError as e:
            raise self._write_failed(e) from None
        if n < len(head):
            self._write_all(memoryview(head)[n:])
            n = len(head)
        if n < total:
            self._write_all(memoryview(tail)[n - len(head) :])

    def _set_rcvtimeo(self, seconds: float) -> None:
        usec = math.ceil(seconds * 1e6)
        sock = socket.socket(fileno=self._rfd)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", *divmod(usec, 10**6)))
        finally:
            sock.detach()
            os.set_blocking(self._rfd, True)  # a socket object may have changed it (setdefaulttimeout)
        self._rcvtimeo = seconds
        self._plain_read_timeout = seconds or None

    def _fill(self, deadline: float | None, socket_timeout: float | None = None) -> bytes | None:
        """Read once: the payload when the read is exactly one frame (the usual case), else None
        with the frames it completed queued. ``socket_timeout``: on a socket, the whole timeout of
        this read (the first of a ``recv_frame``), left to the kernel; else ``deadline`` is waited
        for with poll."""
        if deadline is not None:
            if socket_timeout is not None:
                if socket_timeout != self._rcvtimeo:
                    self._set_rcvtimeo(socket_timeout)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poll.poll(math.ceil(remaining * 1000)):
                    raise TransportTimeout("timed out waiting for the peer")
        elif self._rcvtimeo:
            self._set_rcvtimeo(0.0)  # a read without a deadline must not time out
        return self._read()

    def _read(self) -> bytes | None:
        """One read, then as :meth:`_fill`."""
        buf, mv = _read_buffer_view()  # os.read(fd, 256 KiB) would cost an mmap per call (~15 us)
        try:
            n = os.readv(self._rfd, [buf])
        except BlockingIOError:  # SO_RCVTIMEO expired
            raise TransportTimeout("timed out waiting for the peer") from None
        except InterruptedError:
            return None
        except OSError:
            events = self._core.receive_reset()
        else:
            if n:
                chunk = mv[:n]
                payload = self._core.receive_single(chunk)
                if payload is not None:  # the usual read: one whole frame
                    return payload
                events = self._core.receive_data(chunk)
            else:
                events = self._core.receive_eof()
        out = self._core.data_to_send()
        if out:
            self._write_all(out)
        for ev in events:
            if isinstance(ev, sansio.Frame):
                self._frames.append(ev.payload)
        return None

    def handshake(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._write_all(self._core.initiate())
        while self._core.state is sansio.State.AWAIT_WELCOME:
            self._fill(deadline)
        err = self._core.terminal_error()
        if err is not None:
            raise err
        assert self._core.codec is not None
        assert self._core.peer_version is not None
        self.codec, self.peer_version = self._core.codec, self._core.peer_version

    def send_frame(self, payload: bytes) -> None:
        if self._closed:
            raise TransportClosed("send_frame on a closed connection")
        if len(payload) >= WRITEV_MIN:
            self._write_iov(*self._core.send_frame_iov(payload))
            return
        data = self._core.send_frame(payload)
        if len(data) > self._pipe_cap:
            self._write_all(data)
            return
        try:
            n = os.write(self._wfd, data)
        except InterruptedError:
            n = 0
        except OSError as e:
            raise self._write_failed(e) from None
        if n < len(data):
            self._write_all(memoryview(data)[n:])

    def recv_frame(self, timeout: float | None = None) -> bytes:
        if self._closed:
            raise TransportClosed("recv_frame on a closed connection")
        if self._frames:
            return self._frames.popleft()
        if timeout == self._plain_read_timeout and self._core.state is _OPEN:
            # the usual call: the same timeout as the last one, which the kernel already applies
            deadline = None if timeout is None else time.monotonic() + timeout
            payload = self._read()
            if payload is not None:
                return payload
            if self._frames:
                return self._frames.popleft()
            socket_timeout = None  # a frame in several reads: the rest waits for what remains
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            on_socket = self._is_socket and timeout is not None and 0 < timeout < 1e6
            socket_timeout = timeout if on_socket else None
        while True:
            err = self._core.terminal_error()
            if err is not None:
                raise err
            payload = self._fill(deadline, socket_timeout)
            if payload is not None:
                return payload
            if self._frames:
                return self._frames.popleft()
            socket_timeout = None  # a frame in several reads: the rest waits for what remains

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._core.close()
        for fd in {self._rfd, self._wfd}:
            with contextlib.suppress(OSError):
                os.close(fd)
        proc = self.process
        if proc is not None:
            try:
                proc.wait(EXIT_GRACE)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(EXIT_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _open_unix(path: str, timeout: float | None) -> tuple[int, int]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as e:
        sock.close()
        raise ConnectionRefused(f"nobody listens at unix:{path} ({e.strerror})") from None
    except TimeoutError:
        sock.close()
        raise TransportTimeout(f"connecting to unix:{path} timed out") from None
    fd = sock.detach()
    return fd, fd


def _open_fifo(directory: str, timeout: float | None) -> tuple[int, int]:
    if not os.path.isdir(directory):
        raise ConnectionRefused(f"nobody listens at fifo:{directory} (no such directory)")
    ident = secrets.token_hex(8)
    c2s, s2c = pair_paths(directory, ident)
    rfd = wfd = -1
    try:
        try:
            os.mkfifo(c2s, 0o600)
            os.mkfifo(s2c, 0o600)
        except OSError as e:
            raise ConnectionRefused(f"cannot create FIFOs in {directory}: {e.strerror}") from None
        rfd = os.open(s2c, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            cfd = os.open(os.path.join(directory, RENDEZVOUS), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise ConnectionRefused(f"nobody listens at fifo:{directory} ({e.strerror})") from None
        try:
            os.write(cfd, f"{ident}\n".encode())
        finally:
            os.close(cfd)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 50e-6
        while True:
            try:
                wfd = os.open(c2s, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                break
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise ConnectionRefused(f"fifo:{directory}: {e.strerror}") from None
            if deadline is not None and time.monotonic() > deadline:
                raise TransportTimeout(f"fifo:{directory}: the server did not open the connection")
            time.sleep(delay)
            delay = min(delay * 2, 0.005)
    except BaseException:
        for fd in (rfd, wfd):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for p in (c2s, s2c):
            with contextlib.suppress(OSError):
                os.unlink(p)
    return rfd, wfd


def connect_blocking(
    address: str,
    *,
    codecs: tuple[str, ...] = DEFAULT_CODECS,
    mode: Mode = Mode.FRAMES,
    version: tuple[int, int] = PROTOCOL_VERSION,
    timeout: float | None = 5.0,
) -> BlockingConnection:
    """Connect to ``unix:``, ``fifo:`` or ``stdio:COMMAND`` and run the handshake."""
    scheme, target = parse_address(address)
    proc = None
    if scheme.name == "unix":
        rfd, wfd = _open_unix(target, timeout)
    elif scheme.name == "fifo":
        rfd, wfd = _open_fifo(target, timeout)
    elif scheme.name == "stdio":
        proc = spawn(split_command(target))
        assert proc.stdin is not None
        assert proc.stdout is not None
        rfd, wfd = os.dup(proc.stdout.fileno()), os.dup(proc.stdin.fileno())
        proc.stdout.close()
        proc.stdin.close()
    else:
        raise ConnectionRefused(f"the blocking client cannot open {scheme.name}: addresses")
    core = sansio.Connection(Role.CLIENT, codecs=codecs, version=version, mode=mode)
    conn = BlockingConnection(rfd, wfd, core, address, proc)
    try:
        conn.handshake(timeout)
    except (TransportError, OSError):
        conn.close()
        raise
    return conn
