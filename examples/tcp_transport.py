"""A transport plugged into the reference: TCP on the loopback interface (``tcp:127.0.0.1:PORT``).

It shows the plug-in point of docs/transports.md: a :class:`~symphony_ipc.transport.Scheme` opens
and serves byte pipes, and the reference's connection (handshake, framing, back-pressure, errors,
close) is inherited. ``make()`` returns the *maker* the conformance harness drives, so the whole
transport profile runs on it unmodified::

    symphony-conformance run --profile transport --transport python:examples/tcp_transport.py:make

Only 127.0.0.1 is accepted: Symphony IPC is local IPC, and this example must never listen on or
connect to anything else. Not a supported transport of the spec (section 4 lists the built-in
ones); an example of how one is added.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from symphony_conformance.transport_checks import AddressMaker
from symphony_ipc.security import AuthenticatedPipe, SecurityPolicy
from symphony_ipc.transport import (
    AddressError,
    AddressInUse,
    ConnectionRefused,
    FdPipe,
    Listener,
    ListenOptions,
    Pipe,
    PipeServer,
    Scheme,
    Transport,
    connect,
    listen,
    register_scheme,
)
from symphony_ipc.transport.sansio import Role

HOST = "127.0.0.1"


def _port(target: str) -> int:
    host, sep, port = target.rpartition(":")
    if not sep or host != HOST or not port.isdigit() or not 0 < int(port) < 65536:
        raise AddressError(f"tcp:{target}: expected tcp:{HOST}:PORT (loopback only, PORT in 1..65535)")
    return int(port)


def _tuned(sock: socket.socket) -> int:
    """Detach a connected socket as a file descriptor, without Nagle's delay (small frames)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock.detach()


class TcpServer(PipeServer):
    """Accepts on a listening socket from the event loop; every connection becomes an FdPipe."""

    def __init__(self, sock: socket.socket, on_pipe: Callable[[Pipe], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
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
            fd = _tuned(conn)
            self._on_pipe(FdPipe(fd, fd, loop=self._loop))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


class TcpScheme(Scheme):
    name = "tcp"

    def check_target(self, target: str) -> None:
        super().check_target(target)
        _port(target)

    async def open(self, target: str, timeout: float | None) -> Pipe:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (HOST, _port(target)))
        except ConnectionRefusedError:
            sock.close()
            raise ConnectionRefused(f"nobody listens at tcp:{target}") from None
        except BaseException:
            sock.close()
            raise
        return FdPipe(*(2 * (_tuned(sock),)), loop=loop)

    async def serve(self, target: str, on_pipe: Callable[[Pipe], None], options: ListenOptions) -> PipeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # SO_REUSEADDR: a restarted server may bind again while old connections linger in
        # TIME_WAIT; on Linux it still refuses a port another socket listens on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, _port(target)))
            sock.listen(options.backlog)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            if e.errno == errno.EADDRINUSE:
                raise AddressInUse(f"tcp:{target}: {e.strerror}") from None
            raise AddressError(f"cannot listen at tcp:{target}: {e.strerror}") from None
        return TcpServer(sock, on_pipe)


class TcpMaker(AddressMaker):
    """The conformance harness's maker: fresh loopback ports; listen, connect and raw pipes go
    through the scheme registry like any built-in transport.

    TCP carries no peer credentials, so a listener refuses every peer by default
    (spec/security.md SEC-006): without ``secret`` this maker says explicitly that it accepts
    unverified peers; with ``secret`` (``make_secret``) every connection runs the shared-secret
    handshake first (SEC-007).
    """

    def __init__(self, secret: bytes | None = None) -> None:
        super().__init__("tcp")
        self.secret = secret

    def policy(self, **limits: Any) -> SecurityPolicy:
        if self.secret is None:
            return SecurityPolicy(allow_unverified=True, **limits)
        return SecurityPolicy(secret=self.secret, **limits)

    async def listen(self, address: str, security: SecurityPolicy | None = None) -> Listener:
        """Listen with ``security`` (e.g. the limits the security profile asks for), completed with
        this maker's way of admitting peers that carry no credentials."""
        if security is None:
            security = self.policy()
        elif security.secret is None:
            security = replace(security, secret=self.secret, allow_unverified=self.secret is None)
        return await listen(address, security=security)

    async def connect(self, address: str, **options: Any) -> Transport:
        if self.secret is not None:
            options.setdefault("secret", self.secret)
        return await connect(address, **options)

    async def open_raw(self, address: str) -> Pipe:
        pipe = await super().open_raw(address)
        return pipe if self.secret is None else AuthenticatedPipe(pipe, self.secret, Role.CLIENT)

    def fresh_address(self) -> str:
        """A port nobody listens at now (the kernel's pick for an ephemeral bind)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
        return f"tcp:{HOST}:{port}"


def make(**_: Any) -> TcpMaker:
    """Register the ``tcp`` scheme (once) and return the maker (``--transport ...:make``)."""
    register_scheme(TcpScheme(), replace=True)
    return TcpMaker()


def make_secret(**_: Any) -> TcpMaker:
    """As :func:`make`, every connection authenticated by a fresh shared secret (SEC-007)."""
    import secrets

    register_scheme(TcpScheme(), replace=True)
    return TcpMaker(secret=secrets.token_bytes(32))


if __name__ == "__main__":  # a quick round trip: python examples/tcp_transport.py

    async def main() -> None:
        maker = make_secret()
        address = maker.fresh_address()
        async with await maker.listen(address) as listener:
            client_task = asyncio.ensure_future(maker.connect(address))
            server = await listener.accept()
            client = await client_task
            await client.send_frame(b'{"hello":"tcp"}')
            print(address, client.codec, await server.recv_frame())
            await client.close()
            await server.close()

    asyncio.run(main())
