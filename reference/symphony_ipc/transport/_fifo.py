"""POSIX FIFOs: ``fifo:DIR`` (spec/transport.md TRN-003, TRN-004).

A server owns the rendezvous FIFO ``DIR/connect``. Each client makes its own pair of FIFOs,
``DIR/ID.c2s`` and ``DIR/ID.s2c``, announces ``ID`` on the rendezvous FIFO, and both sides unlink
the pair's names as soon as both ends are open, so a crash leaves no file behind. Many clients may
be connected at once; nothing is shared between connections but the rendezvous FIFO, whose
announcements are single atomic writes (shorter than ``PIPE_BUF``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from typing import Final

from ._base import FdPipe, ListenOptions, Pipe, PipeServer, Scheme
from ._errors import AddressError, AddressInUse, ConnectionRefused, TransportTimeout

RENDEZVOUS: Final = "connect"
_ID = re.compile(rb"[0-9a-f]{16}")
_NONBLOCK_RD: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_NONBLOCK_WR: Final = os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def pair_paths(directory: str, ident: str) -> tuple[str, str]:
    return os.path.join(directory, f"{ident}.c2s"), os.path.join(directory, f"{ident}.s2c")


def _unlink(*paths: str) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)


def _own_fifo(fd: int) -> bool:
    st = os.fstat(fd)
    return stat.S_ISFIFO(st.st_mode) and st.st_uid == os.geteuid()


class FifoServer(PipeServer):
    def __init__(self, directory: str, created_dir: bool, on_pipe: Callable[[Pipe], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._dir = directory
        self._created_dir = created_dir
        self._path = os.path.join(directory, RENDEZVOUS)
        # Create and open the rendezvous under a private name, then link it into place: a client
        # that sees the path always finds a reader (no ENXIO window), and link(2) never replaces.
        staging = f"{self._path}.{os.getpid()}.new"
        os.mkfifo(staging, 0o600)
        try:
            os.chmod(staging, 0o600)
            self._ident = os.stat(staging).st_ino
            self._rfd = os.open(staging, _NONBLOCK_RD)
            # our own writer keeps the FIFO from signalling end of stream each time a client is done
            self._keep = os.open(staging, _NONBLOCK_WR)
            try:
                os.link(staging, self._path)
            except OSError:
                os.close(self._rfd)
                os.close(self._keep)
                raise
        finally:
            os.unlink(staging)
        self._buf = b""
        self._on_pipe = on_pipe
        self._closed = False
        self._loop.add_reader(self._rfd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._rfd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        lines = (self._buf + data).split(b"\n")
        self._buf = lines.pop()[-64:]
        for line in lines:
            if _ID.fullmatch(line):
                self._open_pair(line.decode())

    def _open_pair(self, ident: str) -> None:
        c2s, s2c = pair_paths(self._dir, ident)
        wfd = rfd = -1
        try:
            wfd = os.open(s2c, _NONBLOCK_WR)  # the client reads it already; ENXIO: it left
            rfd = os.open(c2s, _NONBLOCK_RD)
            if not (_own_fifo(wfd) and _own_fifo(rfd)):  # TRN-004
                raise PermissionError(f"{c2s}, {s2c}: not FIFOs of this user")
        except OSError:
            for fd in (rfd, wfd):
                if fd >= 0:
                    os.close(fd)
            for p in (c2s, s2c):
                try:
                    if stat.S_ISFIFO(os.lstat(p).st_mode):
                        os.unlink(p)
                except OSError:
                    pass
            return
        self._on_pipe(FdPipe(rfd, wfd, loop=self._loop))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._rfd)
        os.close(self._rfd)
        os.close(self._keep)
        try:
            if os.stat(self._path).st_ino == self._ident:
                os.unlink(self._path)
        except OSError:
            pass
        if self._created_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self._dir)


def _live(path: str) -> bool:
    try:
        fd = os.open(path, _NONBLOCK_WR)
    except OSError:
        return False
    os.close(fd)
    return True


class FifoScheme(Scheme):
    name = "fifo"

    async def serve(self, target: str, on_pipe: Callable[[Pipe], None], options: ListenOptions) -> PipeServer:
        created = False
        try:
            os.mkdir(target, 0o700)
            created = True
        except FileExistsError:
            st = os.lstat(target)
            if not stat.S_ISDIR(st.st_mode):
                raise AddressError(f"fifo:{target} is not a directory") from None
        except OSError as e:
            raise AddressError(f"fifo:{target}: {e.strerror}") from None
        from ..security import SecurityPolicy, check_directory

        if (options.security or SecurityPolicy()).check_directory:  # SEC-002
            try:
                check_directory(target)
            except AddressError:
                if created:
                    os.rmdir(target)
                raise
        path = os.path.join(target, RENDEZVOUS)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISFIFO(st.st_mode):
                raise AddressInUse(f"{path} exists and is not a FIFO; not replacing it")
            if _live(path):
                raise AddressInUse(f"a server already listens at fifo:{target}")
            os.unlink(path)  # stale
        return FifoServer(target, created, on_pipe)

    async def open(self, target: str, timeout: float | None) -> Pipe:
        if not os.path.isdir(target):
            raise ConnectionRefused(f"nobody listens at fifo:{target} (no such directory)")
        ident = secrets.token_hex(8)
        c2s, s2c = pair_paths(target, ident)
        rfd = wfd = -1
        try:
            try:
                os.mkfifo(c2s, 0o600)
                os.mkfifo(s2c, 0o600)
            except OSError as e:
                raise ConnectionRefused(f"cannot create FIFOs in {target}: {e.strerror}") from None
            rfd = os.open(s2c, _NONBLOCK_RD)
            try:
                cfd = os.open(os.path.join(target, RENDEZVOUS), _NONBLOCK_WR)
            except OSError as e:  # ENXIO: no reader; ENOENT: no server
                raise ConnectionRefused(f"nobody listens at fifo:{target} ({e.strerror})") from None
            try:
                os.write(cfd, f"{ident}\n".encode())
            except BlockingIOError:
                raise ConnectionRefused(f"fifo:{target}: the server's rendezvous FIFO is full") from None
            finally:
                os.close(cfd)
            deadline = None if timeout is None else time.monotonic() + timeout
            delay = 50e-6
            while True:  # the server opens c2s for reading right after it read our announcement
                try:
                    wfd = os.open(c2s, _NONBLOCK_WR)
                    break
                except OSError as e:
                    if e.errno != errno.ENXIO:
                        raise ConnectionRefused(f"fifo:{target}: {e.strerror}") from None
                if deadline is not None and time.monotonic() > deadline:
                    raise TransportTimeout(f"fifo:{target}: the server did not open the connection")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.005)
        except BaseException:
            for fd in (rfd, wfd):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            _unlink(c2s, s2c)  # open on both sides, or abandoned: no file stays behind
        return FdPipe(rfd, wfd)
