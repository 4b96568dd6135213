"""Transports of the Symphony IPC protocol (spec/transport.md).

``connect(address)`` and ``listen(address)`` work for ``unix:PATH``, ``fifo:DIR``, ``stdio`` /
``stdio:COMMAND``, and the in-process ``memory:NAME`` and ``pipe:NAME``; :func:`register_scheme`
plugs another transport in. :mod:`.sansio` is the protocol core, free of I/O.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import sansio
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
from .sansio import MAX_FRAME_SIZE, MAX_HELLO_SIZE, Mode

if TYPE_CHECKING:
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
    from ._fifo import FifoScheme
    from ._memory import MemoryPipe, MemoryScheme, PipeScheme, fd_pipe_pair
    from ._pool import ConnectionPool, PoolStats
    from ._reconnect import Backoff, ReconnectingClient, ReconnectStats
    from ._stdio import StdioScheme
    from ._unix import UnixScheme

# The I/O layers import asyncio and subprocess: load them on first use, so that importing the
# errors (re-exported by ``symphony_ipc``) or the sans-I/O core stays cheap.
_LAZY: dict[str, str] = {
    "Backoff": "._reconnect",
    "BlockingConnection": "._blocking",
    "ConnectOptions": "._base",
    "ConnectionPool": "._pool",
    "FdPipe": "._base",
    "FifoScheme": "._fifo",
    "ListenOptions": "._base",
    "Listener": "._base",
    "MemoryPipe": "._memory",
    "MemoryScheme": "._memory",
    "Pipe": "._base",
    "PipeListener": "._base",
    "PipeScheme": "._memory",
    "PipeServer": "._base",
    "PipeSink": "._base",
    "PoolStats": "._pool",
    "ReconnectStats": "._reconnect",
    "ReconnectingClient": "._reconnect",
    "Scheme": "._base",
    "StdioScheme": "._stdio",
    "StreamConnection": "._base",
    "Transport": "._base",
    "UnixScheme": "._unix",
    "connect": "._base",
    "connect_blocking": "._blocking",
    "fd_pipe_pair": "._memory",
    "listen": "._base",
    "parse_address": "._base",
    "register_scheme": "._base",
    "schemes": "._base",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
