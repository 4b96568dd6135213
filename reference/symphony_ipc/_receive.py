"""What a receiver does with bytes: decode, then version check, then TTL check (ERR-002)."""

from __future__ import annotations

from ._codec import Codec, decode
from ._errors import TtlExpired
from ._model import CURRENT_VERSION, Message, ProtocolVersion
from ._time import SYSTEM_CLOCK, Clock, format_rfc3339


def receive(
    data: bytes,
    codec: Codec = "json",
    *,
    now_ns: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
    version: ProtocolVersion = CURRENT_VERSION,
) -> Message:
    """Decode and accept a message as a receiver at protocol ``version`` (VER-003, TTL-006)."""
    msg = decode(data, codec)
    msg.check_version(version)
    now = clock.now_ns() if now_ns is None else now_ns
    if msg.is_expired(now):
        h = msg.header
        raise TtlExpired(
            f"message {h.id} expired (sent {format_rfc3339(h.timestamp.ns)}, ttl {h.ttl})",
            id=h.id,
        )
    return msg
