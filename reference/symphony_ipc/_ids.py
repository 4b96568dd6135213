"""Fast, fork-safe, thread-safe UUIDv4 generation and UUID parsing.

``uuid.uuid4()`` costs ~4 us, mostly a syscall and the UUID object; formatting one id from 16 bytes
of a pooled ``os.urandom`` (still a CSPRNG) costs ~0.7 us, mostly the slicing and the f-string. So
ids are made :data:`_BATCH` at a time, with no per-id Python work: the version and variant bits of
the whole batch are set with two big-integer operations, the batch is hex-encoded in one call with
a hyphen every 4 digits, four strided copies mark the hyphens to drop and the separators, one
``translate`` drops them and one ``split`` cuts the ids;
:func:`new_id` then takes the next one through a list iterator, whose ``__next__`` is atomic under
the GIL (two threads never get the same id). A forked child drops the batch, so parent and child never
share ids.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from ._errors import UuidParseError

_BATCH = 256
_MASK = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * _BATCH)
_SET = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * _BATCH)  # version 4, variant 10


def _make_batch() -> list[str]:
    raw = (int.from_bytes(os.urandom(16 * _BATCH)) & _MASK) | _SET
    # a hyphen after every 4 hex digits: AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH- per id (40 bytes);
    # the 1st, 6th and 7th are marked and deleted, the 8th separates the ids
    out = bytearray(raw.to_bytes(16 * _BATCH).hex("-", 2).encode("ascii"))
    out += b"-"
    out[4::40] = out[29::40] = out[34::40] = _MARKS
    out[39::40] = _SPACES
    return out.translate(None, b"x").decode("ascii").split()


_MARKS = b"x" * _BATCH
_SPACES = b" " * _BATCH


def _exhausted() -> str:
    raise StopIteration


_next: Callable[[], str] = _exhausted


def _reset_pool() -> None:
    global _next
    _next = _exhausted


os.register_at_fork(after_in_child=_reset_pool)


def new_id() -> str:
    """Return a fresh random (version 4) UUID as a canonical lower-case hyphenated string."""
    global _next
    try:
        return _next()
    except StopIteration:
        nxt = iter(_make_batch()).__next__
        _next = nxt
        return nxt()


CANONICAL_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_canonical = re.compile(CANONICAL_UUID[1:-1]).fullmatch  # fullmatch: "$" would let a final "\n" in
is_canonical_uuid = _canonical  #: truthy exactly for a canonical (lower-case, hyphenated) UUID string
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
    """The canonical string of 16 bytes (bytes.hex puts the three middle hyphens itself)."""
    return f"{value[:4].hex()}-{value[4:10].hex('-', 2)}-{value[10:].hex()}"
