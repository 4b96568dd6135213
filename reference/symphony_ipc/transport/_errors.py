"""Typed transport errors (spec/transport.md TRN-012).

Every failure a transport reports is one of these; :class:`FrameTooLarge` is also a
:class:`symphony_ipc.MessageTooLarge`, so code that catches the protocol's size error catches it too.
"""

from __future__ import annotations

from typing import Any

from .._errors import ErrorCode, MessageTooLarge


class TransportError(Exception):
    """Base of every transport failure; :class:`HandshakeFailed` and :class:`FrameTooLarge` carry a code."""


class TransportClosed(TransportError):
    """The connection or listener was closed by us (use after ``close``)."""


class PeerClosed(TransportError):
    """The peer closed the connection cleanly, at a frame boundary: no more frames will come."""


class PeerBroken(TransportError):
    """The peer vanished: end of stream inside a frame, a reset or a broken pipe (FRM-006)."""


class TransportTimeout(TransportError, TimeoutError):
    """An operation did not complete in time (connect, handshake, recv, acquire)."""


class ConnectionRefused(TransportError):
    """Nobody is listening at the address."""


class AddressInUse(TransportError):
    """A live server already listens at the address (TRN-002)."""


class AddressError(TransportError, ValueError):
    """The address does not parse (TRN-001); raised before any I/O."""


class HandshakeFailed(TransportError):
    """The handshake failed; ``code`` is INVALID_PROTOCOL_VERSION or SERIALIZATION (FRM-012/013/016)."""

    code: ErrorCode

    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})


class FrameTooLarge(TransportError, MessageTooLarge):
    """A frame above the 16 MiB maximum, refused by the sender (FRM-002) or the receiver (FRM-003)."""

    code = ErrorCode.MESSAGE_TOO_LARGE

    def __init__(self, size: int, limit: int, *, received: bool = False) -> None:
        what = "received a frame length of" if received else "frame payload is"
        MessageTooLarge.__init__(
            self, f"{what} {size} bytes, over the maximum of {limit}", size=size, limit=limit
        )
        self.size = size
        self.limit = limit
        self.received = received


__all__ = [
    "AddressError",
    "AddressInUse",
    "ConnectionRefused",
    "FrameTooLarge",
    "HandshakeFailed",
    "PeerBroken",
    "PeerClosed",
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
]
