"""Nanosecond UTC timestamps, their RFC 3339 forms, and injectable clocks."""

from __future__ import annotations

import calendar
import re
import time
from typing import Final, Protocol

import msgspec

from ._errors import SerializationError

NS = 1_000_000_000
_MIN_S = -62135596800  # 0001-01-01T00:00:00Z
_MAX_S = 253402300799  # 9999-12-31T23:59:59Z


class Timestamp(msgspec.Struct, frozen=True, order=True, gc=False):
    """An instant in UTC as integer nanoseconds since the Unix epoch (years 0001 to 9999).

    A frozen msgspec struct: made in C (a Python ``__init__`` cost as much again as the rest of
    a message's header), compared and hashed by ``ns``. The codecs write it as RFC 3339 text
    (JSON) or the timestamp extension (MessagePack), never as a msgspec object.
    """

    ns: int

    @classmethod
    def now(cls) -> Timestamp:
        return cls(time.time_ns())

    def __repr__(self) -> str:
        return f"Timestamp({format_rfc3339(self.ns)!r})"

    def __str__(self) -> str:
        return format_rfc3339(self.ns)

    def isoformat(self) -> str:
        return format_rfc3339(self.ns)


_prefix_cache: dict[int, str] = {}
# The hot paths' caches, per second: "YYYY-MM-DDTHH:MM:SS." for formatting, and the reverse (that
# text -> the second's first nanosecond) for the JSON decoder, which takes a canonical 9-digit
# timestamp as that key, 9 ASCII digits and "Z". Only valid, in-range, non-leap seconds are ever
# keys of _canon_base.
_frac_prefix: dict[int, str] = {}
_canon_base: dict[str, int] = {}


def _remember(secs: int, prefix: str) -> None:
    """Cache a valid, in-range, non-leap second and its canonical text ``prefix``."""
    if len(_frac_prefix) > 4096:
        _frac_prefix.clear()
    if len(_canon_base) > 4096:
        _canon_base.clear()
    _frac_prefix[secs] = dotted = prefix + "."
    _canon_base[dotted] = secs * NS


def format_rfc3339(ns: int) -> str:
    """The canonical form (COD-001): ``Z`` and the shortest of 0, 3, 6 or 9 exact fraction digits."""
    secs, frac = divmod(ns, NS)
    if frac % 1000 and (dotted := _frac_prefix.get(secs)) is not None:
        return dotted + str(NS + frac)[1:] + "Z"  # the usual case: str(NS + frac) is "1" + 9 digits
    prefix = _prefix_cache.get(secs)
    if prefix is None:
        if not _MIN_S <= secs <= _MAX_S:
            raise SerializationError(f"timestamp {ns} ns is outside years 0001-9999")
        t = time.gmtime(secs)
        prefix = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
        if len(_prefix_cache) > 4096:
            _prefix_cache.clear()
        _prefix_cache[secs] = prefix
    if secs not in _frac_prefix:
        _remember(secs, prefix)
    if frac % 1000:
        return f"{prefix}.{frac:09d}Z"
    if frac == 0:
        return prefix + "Z"
    if frac % 1_000_000 == 0:
        return f"{prefix}.{frac // 1_000_000:03d}Z"
    return f"{prefix}.{frac // 1000:06d}Z"


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # RFC 3339 digits are ASCII; "\d" alone also takes e.g. Arabic-Indic digits
)
_CANON = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(?:\d{3}|\d{6}|\d{9}))?Z", re.ASCII).fullmatch
_sec_cache: dict[str, int] = {}


def _seconds(text: str, y: str, mo: str, d: str, hh: str, mm: str, ss: str) -> int:
    """Seconds since the epoch of the date and time fields (cached per second: the hot path)."""
    key = text[:19]
    secs = _sec_cache.get(key)
    if secs is None:
        year, month, mday, h, mi, s = int(y), int(mo), int(d), int(hh), int(mm), int(ss)
        if not (year >= 1 and 1 <= month <= 12 and 1 <= mday <= calendar.monthrange(year, month)[1]):
            raise SerializationError(f"timestamp: {text!r} has no such date")
        if h > 23 or mi > 59 or s > 60:
            raise SerializationError(f"timestamp: {text!r} has no such time of day")
        secs = calendar.timegm((year, month, mday, h, mi, 0, 0, 0, 0)) + s
        if len(_sec_cache) > 4096:
            _sec_cache.clear()
        _sec_cache[key] = secs
    return secs


def parse_rfc3339(text: object, *, lenient: bool = True) -> int:
    """Parse an RFC 3339 date-time into nanoseconds since the epoch.

    Strict mode takes only the canonical shape; lenient mode also takes the variants of COD-006
    (offsets, lower-case ``t``/``z``, 1-9 fraction digits, second 60).
    """
    # The hot path: a canonical timestamp in a second seen before. Every key of _sec_cache is a
    # checked "YYYY-MM-DDTHH:MM:SS" (second 60 included), so only the rest needs a look.
    if type(text) is str:
        secs = _sec_cache.get(text[:19])
        if secs is not None and text[-1] == "Z" and text[17:19] != "60":
            n = len(text)
            if n == 20:
                return secs * NS
            if n in _FRAC_LENGTHS and text[19] == "." and (frac := text[20:-1]).isdigit() and frac.isascii():
                return secs * NS + int(frac) * _FRAC_LENGTHS[n]
    if not isinstance(text, str):
        raise SerializationError(f"timestamp: expected a string, got {type(text).__name__}")
    if _CANON(text) is not None:
        cached = _sec_cache.get(text[:19])
        secs = (
            cached
            if cached is not None
            else _seconds(text, text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
        )
        if not lenient and text[17:19] == "60":
            raise SerializationError(f"timestamp: {text!r} has a leap second")
        if secs not in _frac_prefix and text[17:19] != "60" and _MIN_S <= secs <= _MAX_S:
            _remember(secs, text[:19])
        frac = text[20:-1]
    else:
        m = _RFC3339.fullmatch(text) if lenient else None
        if m is None:
            raise SerializationError(f"timestamp: {text!r} is not an RFC 3339 date-time")
        y, mo, d, hh, mm, ss, frac, _z, sign, oh, om = m.groups()
        secs = _seconds(text.upper(), y, mo, d, hh, mm, ss)
        if frac is not None and len(frac) > 9:
            raise SerializationError(f"timestamp: {text!r} has more than 9 fraction digits")
        if sign is not None:
            if int(oh) > 23 or int(om) > 59:
                raise SerializationError(f"timestamp: {text!r} has an invalid offset")
            offset = int(oh) * 3600 + int(om) * 60
            secs -= offset if sign == "+" else -offset
        frac = frac or ""
    if not _MIN_S <= secs <= _MAX_S:
        raise SerializationError(f"timestamp: {text!r} is outside years 0001-9999 in UTC")
    if not frac:
        return secs * NS
    ns: int = secs * NS + int(frac) * _SCALE[len(frac)]
    return ns


_SCALE: Final = {n: 10 ** (9 - n) for n in range(1, 10)}
_FRAC_LENGTHS: Final = {24: 1_000_000, 27: 1000, 30: 1}  # canonical length -> ns per fraction unit


class Clock(Protocol):
    """Where "now" comes from; inject a :class:`ManualClock` for deterministic TTL checks."""

    def now_ns(self) -> int: ...


class SystemClock:
    __slots__ = ()

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that only moves when told to."""

    __slots__ = ("ns",)

    def __init__(self, ns: int = 0) -> None:
        self.ns = ns

    def now_ns(self) -> int:
        return self.ns

    def set(self, ns: int) -> None:
        self.ns = ns

    def advance(self, ns: int) -> None:
        self.ns += ns


SYSTEM_CLOCK = SystemClock()
