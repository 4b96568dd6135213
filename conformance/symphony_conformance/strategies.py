"""Hypothesis strategies for Symphony IPC messages in their JSON data-model form.

Everything here generates plain Python data: the parsed canonical JSON wire form of
``spec/protocol.md`` (dicts, lists, str, int, float, bool, None), so the strategies work for any
implementation, in any language, behind the conformance harness. Nothing here imports the
reference implementation.

Typical use::

    from hypothesis import given
    from symphony_conformance import strategies as sst

    @given(sst.messages())
    def test_round_trip(message): ...

    @given(sst.invalid_messages())
    def test_rejects(case):
        message_or_bytes, code = case
        ...

:func:`invalid_messages` pairs each input with the one error code the spec determines for it
(ERR-002, ERR-003): every case has exactly one fault.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

__all__ = [
    "ENDPOINT_ALPHABET",
    "MAX_TIMESTAMP_NS",
    "MESSAGE_TYPES",
    "METADATA_KEY_ALPHABET",
    "MIN_TIMESTAMP_NS",
    "NAMED_PRIORITIES",
    "builder_fields",
    "canonical_timestamp",
    "endpoint_ids",
    "invalid_messages",
    "json_bytes",
    "json_values",
    "message_ids",
    "message_types",
    "messages",
    "metadata",
    "metadata_keys",
    "priorities",
    "timestamps",
    "timestamps_ns",
    "ttls",
    "versions",
]

MessageData = dict[str, Any]
"""A message in its JSON data-model form: ``{"header": {...}, "payload": ..., "metadata": {...}}``."""

NS: Final = 1_000_000_000
MIN_SECONDS: Final = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS: Final = 253_402_300_799  # 9999-12-31T23:59:59Z
MIN_TIMESTAMP_NS: Final = MIN_SECONDS * NS
MAX_TIMESTAMP_NS: Final = MAX_SECONDS * NS + NS - 1
U16: Final = 0xFFFF
U64: Final = 2**64 - 1
I64_MIN: Final = -(2**63)

MESSAGE_TYPES: Final = ("Request", "Response", "Event", "Error", "Heartbeat")
NAMED_PRIORITIES: Final = {"CRITICAL": 1000, "HIGH": 100, "NORMAL": 0, "LOW": -100, "BACKGROUND": -1000}

_LETTERS_DIGITS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
ENDPOINT_ALPHABET: Final = _LETTERS_DIGITS + "-_.:/@"  # ENV-005, all but the first character
METADATA_KEY_ALPHABET: Final = _LETTERS_DIGITS + "_.-"  # ENV-009, all but the first character
_METADATA_KEY_FIRST: Final = _LETTERS_DIGITS[:52] + "_"

_EPOCH: Final = datetime(1970, 1, 1)


# ---------------------------------------------------------------- pure helpers


def canonical_timestamp(ns: int) -> str:
    """The canonical RFC 3339 form (COD-001) of ``ns`` nanoseconds since the Unix epoch, UTC.

    The fraction has the fewest of 0, 3, 6 or 9 digits that represent the instant exactly
    (chrono's ``SecondsFormat::AutoSi``). Raises :class:`ValueError` outside years 0001-9999.
    """
    if type(ns) is not int:
        raise TypeError(f"expected an int, got {type(ns).__name__}")
    secs, frac = divmod(ns, NS)
    if not MIN_SECONDS <= secs <= MAX_SECONDS:
        raise ValueError(f"{ns} ns is outside years 0001-9999")
    t = _EPOCH + timedelta(seconds=secs)
    base = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if frac == 0:
        return base + "Z"
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}Z"
    if frac % 1_000 == 0:
        return f"{base}.{frac // 1_000:06d}Z"
    return f"{base}.{frac:09d}Z"


def json_bytes(message: Any) -> bytes:
    """UTF-8 JSON text of a data-model value (non-ASCII kept raw, as most encoders write it)."""
    return json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8")


# ---------------------------------------------------------------- header members


@cache
def message_ids() -> SearchStrategy[str]:
    """Canonical (lower-case, hyphenated) UUID strings of any version: decoders take any UUID."""
    edge = st.sampled_from(["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"])
    return st.one_of(st.uuids().map(str), st.uuids(version=4).map(str), edge)


@cache
def endpoint_ids() -> SearchStrategy[str]:
    """Endpoint ids per ENV-005, lengths 1 to 128 (both ends drawn often)."""
    first = st.sampled_from(_LETTERS_DIGITS)

    def rest(min_size: int, max_size: int) -> SearchStrategy[str]:
        return st.text(st.sampled_from(ENDPOINT_ALPHABET), min_size=min_size, max_size=max_size)

    return st.one_of(
        first,  # length 1
        st.builds(str.__add__, first, rest(0, 40)),
        st.builds(str.__add__, first, rest(127, 127)),  # length 128
        st.builds(str.__add__, first, rest(100, 127)),
        st.sampled_from(["svc/worker-1@host:8080", "a.b_c-d", "0", "Z" * 128]),
    )


@cache
def metadata_keys() -> SearchStrategy[str]:
    """Metadata keys per ENV-009, lengths 1 to 64."""
    first = st.sampled_from(_METADATA_KEY_FIRST)
    rest = st.text(st.sampled_from(METADATA_KEY_ALPHABET), max_size=63)
    return st.one_of(
        st.builds(str.__add__, first, rest),
        st.builds(
            str.__add__, first, st.text(st.sampled_from(METADATA_KEY_ALPHABET), min_size=63, max_size=63)
        ),
        st.sampled_from(["trace_id", "_", "content-type", "x.y.z"]),
    )


@cache
def message_types() -> SearchStrategy[str]:
    return st.sampled_from(MESSAGE_TYPES)


@cache
def priorities() -> SearchStrategy[int]:
    """Priorities in [-1000, 1000], about half of them the named levels and range edges."""
    edges = [*NAMED_PRIORITIES.values(), -999, 999, 1, -1, 101, 99, -101, -99]
    return st.one_of(st.sampled_from(edges), st.integers(-1000, 1000))


@cache
def ttls() -> SearchStrategy[dict[str, int] | None]:
    """``None`` or ``{"secs": u64, "nanos": [0, 999999999]}``, edges included."""
    secs = st.one_of(st.sampled_from([0, 1, 2**32, 2**63, U64]), st.integers(0, 10**6), st.integers(0, U64))
    nanos = st.one_of(st.sampled_from([0, 1, 999_999_999, 500_000_000]), st.integers(0, NS - 1))
    return st.one_of(st.none(), st.builds(lambda s, n: {"secs": s, "nanos": n}, secs, nanos))


_SECONDS_EDGES: Final = [
    MIN_SECONDS,
    MAX_SECONDS,
    0,
    -1,
    951_782_400,  # 2000-02-29 (leap day of a century leap year)
    2**32 - 1,  # MessagePack timestamp 32 / 64 boundary (COD-102)
    2**32,
    2**34 - 1,  # timestamp 64 / 96 boundary
    2**34,
    1_704_067_199,  # 2023-12-31T23:59:59Z
]


@cache
def timestamps_ns() -> SearchStrategy[int]:
    """Nanoseconds since the epoch in years 0001-9999, spread over all four canonical precisions."""
    secs = st.one_of(st.sampled_from(_SECONDS_EDGES), st.integers(MIN_SECONDS, MAX_SECONDS))
    frac = st.one_of(
        st.just(0),
        st.integers(0, 999).map(lambda ms: ms * 1_000_000),
        st.integers(0, 999_999).map(lambda us: us * 1_000),
        st.integers(0, NS - 1),
        st.sampled_from([1, NS - 1]),
    )
    return st.builds(lambda s, f: s * NS + f, secs, frac)


@cache
def timestamps() -> SearchStrategy[str]:
    """Canonical RFC 3339 timestamps (COD-001): ``Z``, the shortest exact 0/3/6/9 fraction digits."""
    return timestamps_ns().map(canonical_timestamp)


@cache
def versions() -> SearchStrategy[dict[str, int]]:
    """``{"major": u16, "minor": u16}``, mostly major 1 (the current protocol)."""
    u16 = st.one_of(st.sampled_from([0, 1, U16]), st.integers(0, U16))
    return st.one_of(
        st.just({"major": 1, "minor": 0}),
        st.builds(lambda m: {"major": 1, "minor": m}, u16),
        st.builds(lambda a, b: {"major": a, "minor": b}, u16, u16),
    )


# ---------------------------------------------------------------- values


@cache
def _scalars() -> SearchStrategy[Any]:
    ints = st.one_of(
        st.integers(-1000, 1000),
        st.integers(I64_MIN, U64),
        st.sampled_from([I64_MIN, U64, 2**63 - 1, 2**63, -1, 2**53 + 1]),
    )
    floats = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([0.5, -0.0, 1.0, 1e300, 5e-324, 2.0**64, 0.1]),
    )
    text = st.one_of(
        st.text(),  # any code point but surrogates: non-ASCII and control characters included
        st.sampled_from(['"', "\\", "\n", "\u2028", "\x00", "é", "日本", "\U0001f600", "</script>"]),
    )
    return st.one_of(st.none(), st.booleans(), ints, floats, text)


@cache
def json_values(max_depth: int = 3, max_size: int = 4) -> SearchStrategy[Any]:
    """Values of the JSON data model, nested at most ``max_depth`` containers deep.

    Integers are in [-2^63, 2^64 - 1] (COD-008), floats finite, strings any Unicode text without
    surrogates, object keys any string.
    """
    if max_depth < 0:
        raise ValueError("max_depth must be >= 0")
    scalars = _scalars()
    level: SearchStrategy[Any] = scalars
    for _ in range(max_depth):
        level = st.one_of(
            scalars,
            st.lists(level, max_size=max_size),
            st.dictionaries(st.text(max_size=8), level, max_size=max_size),
        )
    return level


@cache
def metadata(max_depth: int = 2, max_size: int = 4) -> SearchStrategy[dict[str, Any]]:
    """A metadata object: valid keys (ENV-009), any JSON values."""
    return st.dictionaries(metadata_keys(), json_values(max_depth), max_size=max_size)


_metadata = metadata  # messages() has a keyword argument of the same name

# ---------------------------------------------------------------- messages


@st.composite
def _messages(
    draw: st.DrawFn,
    message_type: SearchStrategy[str],
    payload: SearchStrategy[Any],
    meta: SearchStrategy[dict[str, Any]],
    ttl: SearchStrategy[dict[str, int] | None],
    version: SearchStrategy[dict[str, int]],
    timestamp: SearchStrategy[str],
    priority: SearchStrategy[int],
    correlation_id: SearchStrategy[str | None],
) -> MessageData:
    mtype = draw(message_type)
    cid = draw(message_ids()) if mtype == "Response" else draw(correlation_id)
    return {
        "header": {
            "id": draw(message_ids()),
            "correlation_id": cid,
            "message_type": mtype,
            "source": draw(endpoint_ids()),
            "target": draw(endpoint_ids()),
            "timestamp": draw(timestamp),
            "ttl": draw(ttl),
            "priority": draw(priority),
            "version": draw(version),
        },
        "payload": draw(payload),
        "metadata": draw(meta),
    }


@cache
def messages(
    *,
    message_type: SearchStrategy[str] | None = None,
    payload: SearchStrategy[Any] | None = None,
    metadata: SearchStrategy[dict[str, Any]] | None = None,
    ttl: SearchStrategy[dict[str, int] | None] | None = None,
    version: SearchStrategy[dict[str, int]] | None = None,
    timestamp: SearchStrategy[str] | None = None,
    priority: SearchStrategy[int] | None = None,
    correlation_id: SearchStrategy[str | None] | None = None,
    max_depth: int = 3,
) -> SearchStrategy[MessageData]:
    """Canonical messages (every header member present, canonical forms only).

    Each keyword replaces the strategy of one member, e.g. ``payload=st.none()`` or
    ``version=st.just({"major": 1, "minor": 0})``. A ``Response`` always gets a correlation id
    (ENV-007) whatever ``correlation_id`` says. ``max_depth`` bounds payload nesting when
    ``payload`` and ``metadata`` are not given.
    """
    return _messages(
        message_type if message_type is not None else message_types(),
        payload if payload is not None else json_values(max_depth),
        metadata if metadata is not None else _metadata(max(0, max_depth - 1)),
        ttl if ttl is not None else ttls(),
        version if version is not None else versions(),
        timestamp if timestamp is not None else timestamps(),
        priority if priority is not None else priorities(),
        correlation_id if correlation_id is not None else st.one_of(st.none(), message_ids()),
    )


@st.composite
def _builder_fields(draw: st.DrawFn) -> dict[str, Any]:
    mtype = draw(message_types())
    fields: dict[str, Any] = {
        "message_type": mtype,
        "source": draw(endpoint_ids()),
        "target": draw(endpoint_ids()),
    }
    if draw(st.booleans()):
        fields["payload"] = draw(json_values(2))
    if draw(st.booleans()):
        fields["priority"] = draw(priorities())
    if draw(st.booleans()):
        fields["ttl"] = draw(ttls())
    if mtype == "Response" or draw(st.booleans()):
        fields["correlation_id"] = draw(message_ids())
    if draw(st.booleans()):
        fields["metadata"] = draw(metadata(1))
    return fields


@cache
def builder_fields() -> SearchStrategy[dict[str, Any]]:
    """Fields for the harness's ``build`` operation that must build successfully.

    ``message_type``, ``source`` and ``target`` are always present; ``payload``, ``priority``,
    ``ttl``, ``correlation_id`` and ``metadata`` each only sometimes (absent means "not set", so
    the builder's default applies: ENV-011). A ``Response`` always has a ``correlation_id``.
    """
    return _builder_fields()


# ---------------------------------------------------------------- invalid messages

_Mutation = Callable[[MessageData], "MessageData | bytes"]
_Fault = tuple[_Mutation, str]

_NOT_STRINGS: Final = [0, 1.5, True, [], {}]
_GOOD_UUID: Final = "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"
_BAD_UUIDS: Final = [
    "",
    _GOOD_UUID[:-1],  # 35 characters
    _GOOD_UUID + "0",  # 13 digits in the last group
    _GOOD_UUID.replace("-", "", 1),  # one hyphen missing
    _GOOD_UUID[:-1] + "g",  # not hex
    " " + _GOOD_UUID,
    _GOOD_UUID + "\n",
    _GOOD_UUID.replace("-", "")[:-1],  # 31 hex digits
    "not-a-uuid",
    _GOOD_UUID[:-1] + "\u0661",  # a non-ASCII digit
    *_NOT_STRINGS,
]
_BAD_TIMESTAMPS: Final = [
    "2024-13-01T00:00:00Z",  # month 13
    "2024-00-10T00:00:00Z",  # month 0
    "2024-01-32T00:00:00Z",  # day 32
    "2024-01-00T00:00:00Z",  # day 0
    "2023-02-29T00:00:00Z",  # not a leap year
    "1900-02-29T00:00:00Z",  # century, not a leap year
    "2024-04-31T00:00:00Z",
    "2024-01-01T24:00:00Z",  # hour 24
    "2024-01-01T00:60:00Z",  # minute 60
    "2024-01-01T00:00:61Z",
    "2024-01-01T00:00:00",  # no time zone
    "2024-01-01T00:00Z",  # missing seconds
    "2024-01-01",
    "2024-01-01T00:00:00.Z",  # empty fraction
    "\u0662\u0660\u0662\u0664-01-01T00:00:00Z",  # non-ASCII digits
    "",
    "yesterday",
    0,
    1_700_000_000,
    None,
    [],
    {},
]
_BAD_TTLS: Final = [
    {"secs": 1, "nanos": -1},
    {"secs": 0, "nanos": "5"},
    {"secs": -1, "nanos": 0},
    {"secs": 2**64, "nanos": 0},
    {"secs": "10", "nanos": 0},
    {"secs": 1.5, "nanos": 0},
    {"secs": 1, "nanos": 0.5},
    {"secs": 1, "nanos": None},
    "PT10S",
    10,
    True,
    # not [10, 0]: serde's derive reads a struct from a JSON array too, so that one is ambiguous
]
_BAD_VERSIONS: Final = [
    {"major": 65536, "minor": 0},
    {"major": 1, "minor": 65536},
    {"major": -1, "minor": 0},
    {"major": 1, "minor": -1},
    {"major": "1", "minor": 0},
    {"major": 1.5, "minor": 0},
    {"major": 1, "minor": None},
    "1.0",
    1,
    None,
]
_REQUIRED: Final = [
    ("header",),
    ("payload",),
    ("metadata",),
    ("header", "id"),
    ("header", "message_type"),
    ("header", "source"),
    ("header", "target"),
    ("header", "timestamp"),
    ("header", "priority"),
    ("header", "version"),
    ("header", "version", "major"),
    ("header", "version", "minor"),
]
_MARK: Final = "\u2603MARK\u2603"  # never in a header (ASCII only), so its first occurrence is the payload


def _set(path: tuple[str, ...], value: Any) -> _Mutation:
    def mutate(msg: MessageData) -> MessageData | bytes:
        out = copy.deepcopy(msg)
        obj = out
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
        return out

    return mutate


def _delete(path: tuple[str, ...]) -> _Mutation:
    def mutate(msg: MessageData) -> MessageData | bytes:
        out = copy.deepcopy(msg)
        obj = out
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
        return out

    return mutate


def _setting(path: tuple[str, ...], values: SearchStrategy[Any], code: str) -> SearchStrategy[_Fault]:
    return values.map(lambda v: (_set(path, v), code))


def _bad_uuids() -> SearchStrategy[Any]:
    """Values that are not a UUID in any form a decoder may tolerate (COD-006)."""
    few_hex_digits = st.text(max_size=40).filter(lambda s: sum(c in "0123456789abcdefABCDEF" for c in s) < 32)
    return st.one_of(st.sampled_from(_BAD_UUIDS), few_hex_digits)


def _bad_endpoints() -> SearchStrategy[str]:
    starts = st.sampled_from(["-", "_", ".", ":", "/", "@", " ", "é", "\t"])
    return st.one_of(
        st.sampled_from(
            ["", "a" * 129, "a b", "a\n", "é", "svc\u00a0x", "svc#1", "a,b", "\uff53\uff56\uff43", "a\x00"]
        ),
        st.builds(str.__add__, starts, st.text(st.sampled_from(ENDPOINT_ALPHABET), max_size=10)),
        st.text(st.sampled_from(ENDPOINT_ALPHABET), min_size=129, max_size=200).map(lambda s: "a" + s[1:]),
        # a valid id with one character outside the set
        st.builds(
            lambda head, bad, tail: head + bad + tail,
            endpoint_ids().map(lambda s: s[:60]),
            st.characters(codec="utf-8").filter(lambda c: c not in ENDPOINT_ALPHABET),
            st.text(st.sampled_from(ENDPOINT_ALPHABET), max_size=5),
        ),
    )


def _bad_metadata_keys() -> SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", "1abc", "-a", ".a", "a b", "é", "a" * 65, "a/b", "a:b", "a@b", "ключ", "a\n"]),
        st.builds(
            lambda head, bad: head + bad,
            metadata_keys().map(lambda s: s[:30]),
            st.characters(codec="utf-8").filter(lambda c: c not in METADATA_KEY_ALPHABET),
        ),
        st.text(st.sampled_from(METADATA_KEY_ALPHABET), min_size=65, max_size=80).map(lambda s: "k" + s[1:]),
    )


def _response_without_correlation_id(absent: bool) -> _Fault:
    """ENV-007: a Response whose correlation_id is null, or absent (then null by COD-010)."""

    def mutate(msg: MessageData) -> MessageData | bytes:
        out = copy.deepcopy(msg)
        out["header"]["message_type"] = "Response"
        if absent:
            del out["header"]["correlation_id"]
        else:
            out["header"]["correlation_id"] = None
        return out

    return mutate, "MISSING_FIELD"


def _malformed_json(choice: str, n: int) -> _Fault:
    """Bytes that are not one well-formed JSON object (COD-004): always SERIALIZATION."""

    def mutate(msg: MessageData) -> MessageData | bytes:
        marked = {**msg, "payload": _MARK}
        text = json_bytes(marked)
        mark = json.dumps(_MARK, ensure_ascii=False).encode("utf-8")
        if choice == "truncate":
            return text[: n % len(text)]
        if choice == "trailing":
            return text + [b"x", b"{}", b"1", b",", b"\x00", b" }"][n % 6]
        if choice == "utf8":
            return text.replace(mark, b'"\xff\xfe"', 1)
        if choice == "surrogate":
            return text.replace(mark, b'"\\ud800"', 1)
        if choice == "nan":
            return text.replace(mark, [b"NaN", b"Infinity", b"-Infinity"][n % 3], 1)
        return b"[" + json_bytes(msg) + b"]"  # a top level that is not an object

    return mutate, "SERIALIZATION"


@cache
def _faults() -> tuple[SearchStrategy[_Fault], ...]:
    """One strategy per kind of fault; each yields a mutation of a valid message and its code."""
    endpoint_member = st.sampled_from(["source", "target"])
    return (
        _setting(("header", "id"), st.one_of(_bad_uuids(), st.none()), "UUID_PARSE"),  # null: not a UUID
        _setting(("header", "correlation_id"), _bad_uuids(), "UUID_PARSE"),
        _setting(
            ("header", "message_type"),
            st.one_of(
                st.sampled_from(
                    ["request", "REQUEST", " Event", "Event ", "Response\n", "", "Notification", "Évent"]
                ),
                st.text(max_size=12).filter(lambda s: s not in MESSAGE_TYPES),
            ),
            "INVALID_MESSAGE_TYPE",
        ),
        _setting(("header", "message_type"), st.sampled_from([0, True, None, [], {}]), "SERIALIZATION"),
        st.tuples(endpoint_member, _bad_endpoints()).map(
            lambda mv: (_set(("header", mv[0]), mv[1]), "INVALID_ENDPOINT_ID")
        ),
        st.tuples(endpoint_member, st.sampled_from([*_NOT_STRINGS, None])).map(
            lambda mv: (_set(("header", mv[0]), mv[1]), "SERIALIZATION")
        ),
        _setting(
            ("header", "priority"),
            st.one_of(
                st.sampled_from([1001, -1001, 10_000, 2**31, -(2**31), 2**63 - 1, I64_MIN, U64]),
                st.integers(1001, 2**63 - 1),
                st.integers(I64_MIN, -1001),
            ),
            "INVALID_PRIORITY",
        ),
        _setting(
            ("header", "priority"),
            st.sampled_from(["0", "HIGH", 1.5, -0.5, 100.25, True, False, None, [], {}]),
            "SERIALIZATION",
        ),
        st.tuples(_bad_metadata_keys(), json_values(1)).map(
            lambda kv: (_set(("metadata", kv[0]), kv[1]), "INVALID_METADATA_KEY")
        ),
        st.sampled_from(_REQUIRED).map(lambda path: (_delete(path), "MISSING_FIELD")),
        st.tuples(st.sampled_from(["secs", "nanos"]), st.integers(0, 100)).map(
            lambda kv: (_set(("header", "ttl"), {kv[0]: kv[1]}), "MISSING_FIELD")
        ),
        st.booleans().map(_response_without_correlation_id),
        _setting(("header", "ttl"), st.sampled_from(_BAD_TTLS), "SERIALIZATION"),
        _setting(("header", "version"), st.sampled_from(_BAD_VERSIONS), "SERIALIZATION"),
        _setting(("header", "timestamp"), st.sampled_from(_BAD_TIMESTAMPS), "SERIALIZATION"),
        st.builds(
            _malformed_json,
            st.sampled_from(["truncate", "trailing", "utf8", "surrogate", "nan", "array"]),
            st.integers(0, 2**16),
        ),
    )


@st.composite
def _invalid_messages(draw: st.DrawFn) -> tuple[MessageData | bytes, str]:
    faults = _faults()
    # the kind first: drawn after a large message, Hypothesis's choices skew to the first kind
    mutate, code = draw(faults[draw(st.integers(0, len(faults) - 1))])
    return mutate(draw(messages(max_depth=2))), code


@cache
def invalid_messages() -> SearchStrategy[tuple[MessageData | bytes, str]]:
    """``(message_or_bytes, code)``: a canonical message with exactly one fault, and the code a
    JSON decoder must reject it with.

    A ``dict`` is to be serialised as JSON (e.g. with :func:`json_bytes`); ``bytes`` are the exact
    input. Only faults whose code the spec fixes are generated: tolerated variants (COD-006,
    COD-010: absent ``correlation_id`` or ``ttl`` on a non-Response, upper-case UUIDs, second 60,
    offsets) and "acceptable" vectors' inputs (e.g. ``ttl.nanos`` >= 10^9) never appear.
    """
    return _invalid_messages()
