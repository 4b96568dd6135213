"""What the wire-level checks (transport, security, bus-node) share: the frame prefix and how a
check fails, with the requirement ids first in the message (``[FRM-007] ...``), which is how a
failure is matched to the requirements it breaks."""

from __future__ import annotations

import struct
from typing import Final

LEN: Final = struct.Struct(">I")
"""The frame prefix: the payload's length, 4 bytes, big-endian (FRM-001)."""


def fail(reqs: str, message: str) -> AssertionError:
    return AssertionError(f"[{reqs}] {message}")


def check(cond: object, reqs: str, message: str) -> None:
    if not cond:
        raise fail(reqs, message)


def frame(payload: bytes) -> bytes:
    return LEN.pack(len(payload)) + payload
