"""Fast, fork-safe UUIDv4 generation and UUID parsing.

``uuid.uuid4()`` costs ~4 us, mostly a syscall and the UUID object; we draw 16 bytes at a time
from a pool of ``os.urandom`` output (still a CSPRNG) and format the canonical string directly.
The pool is dropped in a forked child so parent and child never share ids.
"""

from __future__ import annotations

import os
import re

from ._errors import UuidParseError

_POOL_SIZE = 16 * 256
_pool = b""
_pos = _POOL_SIZE


def _reset_pool() -> None:
    global _pool, _pos
    _pool = b""
    _pos = _POOL_SIZE


os.register_at_fork(after_in_child=_reset_pool)


def new_id() -> str:
    """Return a fresh random (version 4) UUID as a canonical lower-case hyphenated string."""
    global _pool, _pos
    pos = _pos
    if pos >= _POOL_SIZE:
        _pool = os.urandom(_POOL_SIZE)
        pos = 0
    _pos = pos + 16
    h = _pool[pos : pos + 16].hex()
    # version nibble 4, variant 10xx
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


CANONICAL_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_canonical = re.compile(CANONICAL_UUID[1:-1]).fullmatch  # fullmatch: "$" would let a final "\n" in
_lenient = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
).fullmatch


def parse_uuid(value: object, field: str = "id") -> str:
    """Return the canonical form of a UUID string, accepting upper case and no hyphens (COD-006)."""
    if not isinstance(value, str):
        raise UuidParseError(f"{field}: expected a UUID string, got {type(value).__name__}", field=field)
    if _canonical(value):
        return value
    if _lenient(value):
        h = value.replace("-", "").lower()
        if len(h) == 32 and (len(value) == 32 or value.count("-") == 4):
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    raise UuidParseError(f"{field}: {value!r} is not a UUID", field=field)


def uuid_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value.replace("-", ""))


def uuid_from_bytes(value: bytes) -> str:
    h = value.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
