"""Transports of the Symphony IPC protocol (spec/transport.md)."""

from __future__ import annotations

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
from .sansio import MAX_FRAME_SIZE, MAX_HELLO_SIZE

__all__ = [
    "MAX_FRAME_SIZE",
    "MAX_HELLO_SIZE",
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
    "sansio",
]
