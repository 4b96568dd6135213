"""Unix domain stream sockets: ``unix:PATH`` (spec/transport.md TRN-002)."""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import socket
import stat
from collections.abc import Callable
from typing import Final

from ._base import FdPipe, ListenOptions, Pipe, PipeServer, Scheme
from ._errors import AddressError, AddressInUse, ConnectionRefused

MAX_PATH: Final = 107  #: sun_path is 108 bytes on Linux, one for the terminating NUL


class UnixServer(PipeServer):
    def __init__(self, path: str, sock: socket.socket, on_pipe: Callable[[Pipe], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._path = path
        self._sock = sock
        st = os.stat(path)
        self._ident = (st.st_dev, st.st_ino)
        self._on_pipe = on_pipe
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._on_accept)

    def _on_accept(self) -> None:
        for _ in range(64):  # a burst of clients, without starving the loop
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and friends: leave them in the backlog
                return
            fd = conn.detach()
            self._on_pipe(FdPipe(fd, fd, loop=self._loop))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        try:
            st = os.stat(self._path)
            if (st.st_dev, st.st_ino) == self._ident:  # only the file we created (TRN-002)
                os.unlink(self._path)
        except OSError:
            pass


def _live(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except OSError:
            return False
        return True


class UnixScheme(Scheme):
    name = "unix"

    def check_target(self, target: str) -> None:
        super().check_target(target)
        if "\0" in target:
            raise AddressError(f"unix:{target!r}: a path cannot contain NUL")
        if len(os.fsencode(target)) > MAX_PATH:
            raise AddressError(f"unix:{target}: the path is longer than {MAX_PATH} bytes (TRN-001)")

    async def open(self, target: str, timeout: float | None) -> Pipe:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, target)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as e:
            sock.close()
            raise ConnectionRefused(f"nobody listens at unix:{target} ({e.strerror})") from None
        except BaseException:
            sock.close()
            raise
        fd = sock.detach()
        return FdPipe(fd, fd, loop=loop)

    async def serve(self, target: str, on_pipe: Callable[[Pipe], None], options: ListenOptions) -> PipeServer:
        from ..security import SecurityPolicy, check_directory

        policy = options.security or SecurityPolicy()
        if policy.check_directory:  # SEC-002
            check_directory(os.path.dirname(os.path.abspath(target)))
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise AddressInUse(f"unix:{target} exists and is not a socket; not replacing it")
            if _live(target):
                raise AddressInUse(f"a server already listens at unix:{target}")
            os.unlink(target)  # stale: nobody answers
        # Bind and listen under a private name, then link it into place: the path appears only
        # once connects can succeed (no refused window between bind and listen), and link(2)
        # fails rather than replace a socket another server put there meanwhile.
        staging = os.path.join(os.path.dirname(target) or ".", f".sy{os.getpid()}-{secrets.token_hex(3)}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(staging)
            try:
                os.chmod(staging, policy.socket_mode)  # SEC-001: before the path appears
                sock.listen(options.backlog)
                sock.setblocking(False)
                os.link(staging, target)
            finally:
                os.unlink(staging)
        except OSError as e:
            sock.close()
            if e.errno in (errno.EADDRINUSE, errno.EEXIST):  # lost a race with another server
                raise AddressInUse(f"unix:{target}: {e.strerror}") from None
            raise AddressError(f"cannot listen at unix:{target}: {e.strerror}") from None
        return UnixServer(target, sock, on_pipe)
