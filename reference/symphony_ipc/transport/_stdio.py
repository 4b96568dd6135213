"""stdio: a parent speaking to a child over its stdin/stdout (``stdio:COMMAND ARGS...``), or a
process serving one connection on its own stdin/stdout (``stdio``). spec/transport.md TRN-005.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from typing import Final

from ._base import FdPipe, ListenOptions, Pipe, PipeServer, Scheme
from ._errors import AddressError, ConnectionRefused

EXIT_GRACE: Final = 2.0  #: seconds a child gets to exit after its stdin closes (TRN-005)


class ChildPipe(FdPipe):
    """The parent's end: the child's stdout to read, its stdin to write; closing reaps the child."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self.process = proc
        # the pipe owns the descriptors from now on; the file objects must not close them again
        rfd, wfd = os.dup(proc.stdout.fileno()), os.dup(proc.stdin.fileno())
        proc.stdout.close()
        proc.stdin.close()
        super().__init__(rfd, wfd)

    async def wait_closed(self) -> None:
        """Wait for the child to exit (its stdin is closed), then terminate, then kill; always reap."""
        proc = self.process
        for action in (None, proc.terminate, proc.kill):
            if action is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    action()
            if await _wait_exit(proc, EXIT_GRACE if action is not proc.kill else 30.0):
                return


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait without blocking the loop: a pidfd where the kernel has one, else polling."""
    if proc.poll() is not None:
        return True
    loop = asyncio.get_running_loop()
    pidfd = -1
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(proc.pid)
    if pidfd >= 0:
        fut: asyncio.Future[None] = loop.create_future()

        def exited() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(pidfd, exited)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return proc.poll() is not None
    deadline = loop.time() + timeout
    delay = 0.001
    while proc.poll() is None:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
    except OSError as e:
        raise ConnectionRefused(f"cannot run {shlex.join(argv)}: {e.strerror}") from None


def split_command(target: str) -> list[str]:
    try:
        argv = shlex.split(target)
    except ValueError as e:
        raise AddressError(f"stdio:{target}: {e}") from None
    if not argv:
        raise AddressError("stdio: needs a command to spawn (stdio:COMMAND ARGS...)")
    return argv


def take_stdio() -> tuple[int, int]:
    """Serve on our own stdin/stdout: keep private copies and point fd 1 at stderr, so a stray print
    cannot corrupt the frames (TRN-005). Returns (read fd, write fd)."""
    sys.stdout.flush()
    rfd, wfd = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # nobody else reads our stdin
    os.close(devnull)
    return rfd, wfd


class _OneShot(PipeServer):
    one_shot = True

    def __init__(self, pipe: FdPipe) -> None:
        self._pipe = pipe

    def close(self) -> None:
        """The one connection is the caller's; nothing else to free."""


class StdioScheme(Scheme):
    name = "stdio"

    def check_target(self, target: str) -> None:
        if target:
            split_command(target)

    async def open(self, target: str, timeout: float | None) -> Pipe:
        return ChildPipe(spawn(split_command(target)))

    async def serve(self, target: str, on_pipe: Callable[[Pipe], None], options: ListenOptions) -> PipeServer:
        if target:
            raise AddressError("a stdio server serves on its own stdin/stdout: listen at 'stdio'")
        rfd, wfd = take_stdio()
        pipe = FdPipe(rfd, wfd)
        pipe.peer_trusted = True  # the parent that spawned us holds our stdin (spec/security.md)
        on_pipe(pipe)
        return _OneShot(pipe)
