"""Transports of the Symphony IPC protocol (spec/transport.md).

``connect(address)`` and ``listen(address)`` work for ``unix:PATH``, ``fifo:DIR``, ``stdio`` /
``stdio:COMMAND``, and the in-process ``memory:NAME`` and ``pipe:NAME``; :func:`register_scheme`
plugs another transport in. :mod:`.sansio` is the protocol core, free of I/O.
"""

from __future__ import annotations

from . import sansio
from ._base import (
    ConnectOptions,
    FdPipe,
    Listener,
    ListenOptions,
    Pipe,
    PipeListener,
    PipeServer,
    PipeSink,
    Scheme,
    StreamConnection,
    Transport,
    connect,
    listen,
    parse_address,
    register_scheme,
    schemes,
)
from ._blocking import BlockingConnection, connect_blocking
from ._errors import (
    AddressError,
    AddressInUse,
    ConnectionRefused,
    FrameTooLarge,
    HandshakeFailed,
    PeerBroken,
    PeerClosed,
    TransportClosed,
    TransportError,
    TransportTimeout,
)
from ._fifo import FifoScheme
from ._memory import MemoryPipe, MemoryScheme, PipeScheme, fd_pipe_pair
from ._pool import ConnectionPool, PoolStats
from ._reconnect import Backoff, ReconnectingClient, ReconnectStats
from ._stdio import StdioScheme
from ._unix import UnixScheme
from .sansio import MAX_FRAME_SIZE, MAX_HELLO_SIZE, Mode

for _scheme in (UnixScheme(), FifoScheme(), StdioScheme(), MemoryScheme(), PipeScheme()):
    register_scheme(_scheme, replace=True)

__all__ = [
    "MAX_FRAME_SIZE",
    "MAX_HELLO_SIZE",
    "AddressError",
    "AddressInUse",
    "Backoff",
    "BlockingConnection",
    "ConnectOptions",
    "ConnectionPool",
    "ConnectionRefused",
    "FdPipe",
    "FifoScheme",
    "FrameTooLarge",
    "HandshakeFailed",
    "ListenOptions",
    "Listener",
    "MemoryPipe",
    "MemoryScheme",
    "Mode",
    "PeerBroken",
    "PeerClosed",
    "Pipe",
    "PipeListener",
    "PipeScheme",
    "PipeServer",
    "PipeSink",
    "PoolStats",
    "ReconnectStats",
    "ReconnectingClient",
    "Scheme",
    "StdioScheme",
    "StreamConnection",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
    "UnixScheme",
    "connect",
    "connect_blocking",
    "fd_pipe_pair",
    "listen",
    "parse_address",
    "register_scheme",
    "sansio",
    "schemes",
]
