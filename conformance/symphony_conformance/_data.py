"""Comparing messages as JSON data, and the timestamp arithmetic the suite needs.

Kept independent of the reference implementation: the harness grades the reference too.

Equality is that of the JSON data model: object member order does not matter, ``true`` is not
``1``, numbers compare by value (``1`` equals ``1.0``: JSON does not tell them apart, and a driver
in another language may not either), strings exactly. Timestamps in a message header are compared
as canonical strings, i.e. to the nanosecond, whatever RFC 3339 spelling either side used.
"""

from __future__ import annotations

import calendar
import re
from typing import Any, Final

NS: Final = 1_000_000_000
MIN_SECONDS: Final = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS: Final = 253_402_300_799  # 9999-12-31T23:59:59Z

CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
V4_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CANONICAL_TIMESTAMP: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(?:\d{3}|\d{6}|\d{9}))?Z", re.ASCII
)
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def timestamp_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 date-time (canonical or a COD-006 variant).

    Raises :class:`ValueError` for anything else.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    y, mo, d, hh, mi, ss, frac, sign, oh, om = m.groups()
    year, month, day = int(y), int(mo), int(d)
    if not (year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise ValueError(f"{text!r} has no such date")
    if int(hh) > 23 or int(mi) > 59 or int(ss) > 60:
        raise ValueError(f"{text!r} has no such time of day")
    secs = calendar.timegm((year, month, day, int(hh), int(mi), 0, 0, 0, 0)) + int(ss)
    if sign is not None:
        offset = int(oh) * 3600 + int(om) * 60
        secs -= offset if sign == "+" else -offset
    if not MIN_SECONDS <= secs <= MAX_SECONDS:
        raise ValueError(f"{text!r} is outside years 0001-9999")
    return secs * NS + (int(frac.ljust(9, "0")) if frac else 0)


def canonical_timestamp(ns: int) -> str:
    """The canonical form (COD-001): ``Z`` and the shortest of 0, 3, 6 or 9 exact fraction digits."""
    secs, frac = divmod(ns, NS)
    if not MIN_SECONDS <= secs <= MAX_SECONDS:
        raise ValueError(f"{ns} ns is outside years 0001-9999")
    days, rem = divmod(secs, 86_400)
    hh, rem = divmod(rem, 3600)
    mi, ss = divmod(rem, 60)
    year, month, day = _civil_from_days(days)
    base = f"{year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mi:02d}:{ss:02d}"
    if frac == 0:
        return base + "Z"
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:06d}Z"
    return f"{base}.{frac:09d}Z"


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """Proleptic Gregorian date of day ``z`` since 1970-01-01 (H. Hinnant's algorithm)."""
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def canonicalize_timestamp(value: Any) -> Any:
    """``value`` in canonical form if it is a parseable timestamp string, else unchanged."""
    if isinstance(value, str):
        try:
            return canonical_timestamp(timestamp_ns(value))
        except ValueError:
            return value
    return value


def _pointer(path: str, key: object) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def data_diff(expected: Any, actual: Any, path: str = "", *, subset: bool = False) -> list[str]:
    """Differences between two JSON values, each naming its JSON pointer; empty when equal.

    With ``subset``, objects in ``actual`` may have members ``expected`` does not mention.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '/'}: expected an object, got {_short(actual)}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{_pointer(path, key)}: missing (expected {_short(value)})")
            else:
                out.extend(data_diff(value, actual[key], _pointer(path, key), subset=subset))
        if not subset:
            out.extend(f"{_pointer(path, key)}: unexpected member" for key in actual if key not in expected)
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path or '/'}: expected an array, got {_short(actual)}"]
        if len(expected) != len(actual):
            return [f"{path or '/'}: expected {len(expected)} items, got {len(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out.extend(data_diff(e, a, _pointer(path, i), subset=subset))
        return out
    if not _same_scalar(expected, actual):
        return [f"{path or '/'}: expected {_short(expected)}, got {_short(actual)}"]
    return []


def _with_canonical_timestamp(message: Any) -> Any:
    if isinstance(message, dict) and isinstance(message.get("header"), dict):
        header = dict(message["header"])
        if "timestamp" in header:
            header["timestamp"] = canonicalize_timestamp(header["timestamp"])
        return {**message, "header": header}
    return message


def message_diff(expected: Any, actual: Any, *, subset: bool = False) -> list[str]:
    """:func:`data_diff` of two messages, their header timestamps compared as canonical strings."""
    return data_diff(_with_canonical_timestamp(expected), _with_canonical_timestamp(actual), subset=subset)


def format_diff(diffs: list[str], limit: int = 12) -> str:
    shown = diffs[:limit]
    more = f"\n  ... and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "\n  " + "\n  ".join(shown) + more
