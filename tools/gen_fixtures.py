"""Generate the golden vectors, ``fixtures/*.json`` (format: ``spec/vectors.schema.json``).

The vectors are data written out below, one function per area; nothing is random, so the output is
byte-for-byte reproducible. Run ``python tools/gen_fixtures.py`` after editing; ``--check`` exits 1
when a file on disk differs from what would be written.

Expected values come from spec/protocol.md, not from the reference implementation: timestamps are
formatted and MessagePack bytes encoded by the small independent helpers here (section 6.2 says
what the bytes are), so tests that compare the reference with the vectors check something real.
"""

from __future__ import annotations

import calendar
import copy
import json
import re
import struct
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

NS = 1_000_000_000
U64 = 2**64 - 1

# ------------------------------------------------------------------------------------------- time

_CANON_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}|\d{6}|\d{9}))?Z", re.ASCII
)


def ts_ns(text: str) -> int:
    """Nanoseconds since the epoch of a canonical timestamp (only canonical text is written here)."""
    m = _CANON_TS.fullmatch(text)
    if m is None:
        raise ValueError(f"not a canonical timestamp: {text!r}")
    y, mo, d, hh, mm, ss, frac = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(hh), int(mm), int(ss), 0, 0, 0))
    ns = secs * NS + (int(frac.ljust(9, "0")) if frac else 0)
    if ts_text(ns) != text:
        raise ValueError(f"{text!r} is not canonical (or not a real date)")
    return ns


def ts_text(ns: int) -> str:
    """The canonical form (COD-001): ``Z`` and the shortest of 0, 3, 6 or 9 exact fraction digits."""
    secs, frac = divmod(ns, NS)
    days, sod = divmod(secs, 86400)
    # proleptic Gregorian date from days since 1970-01-01 (Howard Hinnant's civil_from_days)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    if not 1 <= year <= 9999:
        raise ValueError(f"{ns} ns is outside years 0001-9999")
    text = f"{year:04d}-{month:02d}-{day:02d}T{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}"
    if frac == 0:
        return text + "Z"
    digits = f"{frac:09d}"
    while digits.endswith("000"):
        digits = digits[:-3]
    return f"{text}.{digits}Z"


def ts_add(text: str, ns: int) -> str:
    return ts_text(ts_ns(text) + ns)


# ------------------------------------------------------------------------------------- messagepack


class Raw:
    """Bytes (MessagePack) or text (JSON) spliced verbatim into an encoding."""

    def __init__(self, value: bytes | str) -> None:
        self.value = value


class Ts:
    """A timestamp, encoded as the MessagePack timestamp extension (type -1)."""

    def __init__(self, ns: int) -> None:
        self.ns = ns


def ts_ext(ns: int) -> bytes:
    """COD-102: timestamp 32 if nanoseconds are 0 and seconds fit u32, else 64 if seconds fit 34 bits,
    else 96."""
    secs, nsec = divmod(ns, NS)
    if nsec == 0 and 0 <= secs < 2**32:
        return b"\xd6\xff" + secs.to_bytes(4, "big")
    if 0 <= secs < 2**34:
        return b"\xd7\xff" + ((nsec << 34) | secs).to_bytes(8, "big")
    return b"\xc7\x0c\xff" + nsec.to_bytes(4, "big") + secs.to_bytes(8, "big", signed=True)


def _mp_len(n: int, fixed: tuple[int, int] | None, forms: tuple[tuple[int, int], ...]) -> bytes:
    """The smallest length prefix: the fixed form ``(first byte, max)`` or a ``(tag, size)`` form."""
    if fixed is not None and n <= fixed[1]:
        return bytes([fixed[0] | n])
    for tag, size in forms:
        if n < 256**size:
            return bytes([tag]) + n.to_bytes(size, "big")
    raise ValueError("too long")


def mp(value: Any) -> bytes:
    """MessagePack as COD-101 wants it: smallest integer forms, float 64, str for strings."""
    if isinstance(value, Raw):
        assert isinstance(value.value, bytes)
        return value.value
    if isinstance(value, Ts):
        return ts_ext(value.ns)
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value <= 127 or -32 <= value < 0:
            return (value & 0xFF).to_bytes(1, "big")
        if value > 0:
            for tag, size in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
                if value < 256**size:
                    return bytes([tag]) + value.to_bytes(size, "big")
            raise ValueError(f"{value} is beyond u64")
        for tag, size in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
            if value >= -(2 ** (8 * size - 1)):
                return bytes([tag]) + value.to_bytes(size, "big", signed=True)
        raise ValueError(f"{value} is beyond i64")
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _mp_len(len(raw), (0xA0, 31), ((0xD9, 1), (0xDA, 2), (0xDB, 4))) + raw
    if isinstance(value, bytes):
        return _mp_len(len(value), None, ((0xC4, 1), (0xC5, 2), (0xC6, 4))) + value
    if isinstance(value, list):
        return _mp_len(len(value), (0x90, 15), ((0xDC, 2), (0xDD, 4))) + b"".join(mp(v) for v in value)
    if isinstance(value, dict):
        body = b"".join(mp(k) + mp(v) for k, v in value.items())
        return _mp_len(len(value), (0x80, 15), ((0xDE, 2), (0xDF, 4))) + body
    raise TypeError(f"cannot encode {value!r}")


def uuid_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", ""))


def layout(m: dict[str, Any]) -> list[Any]:
    """The positional MessagePack layout (section 6.2) of a canonical data-form message."""
    h = m["header"]
    ttl = h["ttl"]
    return [
        [
            uuid_bytes(h["id"]),
            None if h["correlation_id"] is None else uuid_bytes(h["correlation_id"]),
            h["message_type"],
            h["source"],
            h["target"],
            Ts(ts_ns(h["timestamp"])),
            None if ttl is None else [ttl["secs"], ttl["nanos"]],
            h["priority"],
            [h["version"]["major"], h["version"]["minor"]],
        ],
        m["payload"],
        m["metadata"],
    ]


# --------------------------------------------------------------------------------------- messages

ID = "6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
CID = "0b0e3c9a-1f2e-4d3c-9b8a-7f6e5d4c3b2a"
TS = "2025-12-25T09:18:21.123456789Z"
DROP = object()  # a member to leave out

RUST_REQUEST = (
    '{"header":{"id":"6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b","correlation_id":null,"message_type":"Request",'
    '"source":"conductor","target":"pool-manager","timestamp":"2025-12-25T09:18:21.123456789Z","ttl":null,'
    '"priority":0,"version":{"major":1,"minor":0}},"payload":"Hello, World!","metadata":{}}'
)
RUST_EVENT = (
    '{"header":{"id":"6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b","correlation_id":"0b0e3c9a-1f2e-4d3c-9b8a-'
    '7f6e5d4c3b2a","message_type":"Event","source":"conductor","target":"pool-manager","timestamp":'
    '"2025-12-25T09:18:21.123456789Z","ttl":{"secs":30,"nanos":500000000},"priority":100,"version":'
    '{"major":1,"minor":0}},"payload":{"a":[1.5,null,true],"b":1},"metadata":{"request_id":"req-123"}}'
)
RUST_HEARTBEAT = (
    '{"header":{"id":"6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b","correlation_id":null,"message_type":"Heartbeat",'
    '"source":"monitor","target":"health-check","timestamp":"2025-12-25T09:18:21Z","ttl":null,"priority":-7,'
    '"version":{"major":2,"minor":3}},"payload":null,"metadata":{}}'
)

HEADER_KEYS = (
    "id",
    "correlation_id",
    "message_type",
    "source",
    "target",
    "timestamp",
    "ttl",
    "priority",
    "version",
)


def msg(**kw: Any) -> dict[str, Any]:
    """The Rust crate's first message with members replaced (``DROP`` leaves one out).

    Keyword names are header members, ``payload``, ``metadata``, or ``extra_header`` /
    ``extra`` (dicts of unknown members to add)."""
    header: dict[str, Any] = {
        "id": ID,
        "correlation_id": None,
        "message_type": "Request",
        "source": "conductor",
        "target": "pool-manager",
        "timestamp": TS,
        "ttl": None,
        "priority": 0,
        "version": {"major": 1, "minor": 0},
    }
    out: dict[str, Any] = {"header": header, "payload": "Hello, World!", "metadata": {}}
    for key, value in kw.items():
        if key == "extra_header":
            header.update(value)
        elif key == "extra":
            out.update(value)
        elif key in HEADER_KEYS:
            header[key] = value
        elif key in ("payload", "metadata", "header"):
            out[key] = value
        else:
            raise KeyError(key)
    for d in (header, out):
        for key in [k for k, v in d.items() if v is DROP]:
            del d[key]
    return out


def ttl(secs: int, nanos: int = 0) -> dict[str, int]:
    return {"secs": secs, "nanos": nanos}


def ver(major: int, minor: int) -> dict[str, int]:
    return {"major": major, "minor": minor}


def jtxt(data: Any) -> str:
    """Compact JSON text; :class:`Raw` values are spliced in verbatim."""
    raws: list[str] = []

    def walk(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(str(v.value))
            return f"\x00RAW{len(raws) - 1}\x00"
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    text = json.dumps(walk(data), ensure_ascii=False, separators=(",", ":"))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00RAW{i}\x00"), raw)
    return text


def canon(m: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(m)


def nest(depth: int, leaf: Any = 0) -> Any:
    """``depth`` levels of alternating arrays and objects around ``leaf``."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 == 0 else {"k": value}
    return value


# ---------------------------------------------------------------------------------------- vectors


def vec(
    vid: str,
    description: str,
    requirements: Iterable[str],
    operation: str,
    result: str,
    inp: dict[str, Any],
    *,
    codec: str | None = None,
    expected: dict[str, Any] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    flags: Iterable[str] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": vid,
        "description": description,
        "requirements": list(requirements),
        "operation": operation,
    }
    if codec is not None:
        out["codec"] = codec
    out["result"] = result
    if flags:
        out["flags"] = list(flags)
    out["input"] = inp
    if expected is not None:
        out["expected"] = expected
    if error is not None:
        out["error"] = error
    if error_field is not None:
        out["error_field"] = error_field
    return out


def _input(data: Any, codec: str) -> dict[str, Any]:
    if isinstance(data, bytes):
        return {"hex": data.hex()}
    if codec == "msgpack":
        return {"hex": mp(data).hex()}
    return {"json": data if isinstance(data, str) else jtxt(data)}


def decode(
    vid: str,
    description: str,
    requirements: Iterable[str],
    data: Any,
    result: str = "valid",
    *,
    codec: str = "json",
    expected: Any = None,
    error: str | None = None,
    error_field: str | None = None,
    flags: Iterable[str] = (),
) -> dict[str, Any]:
    """A decode vector. ``data``: JSON text, a message (JSON: serialised; MessagePack: a layout to
    encode), or bytes. A valid vector whose ``expected`` is omitted expects ``data`` itself."""
    if result == "valid" and expected is None:
        expected = canon(data) if isinstance(data, dict) else json.loads(data)
    return vec(
        vid,
        description,
        requirements,
        "decode",
        result,
        _input(data, codec),
        codec=codec,
        expected=None if expected is None else {"message": expected},
        error=error,
        error_field=error_field,
        flags=flags,
    )


def receive(
    vid: str,
    description: str,
    requirements: Iterable[str],
    data: Any,
    now: str,
    result: str = "valid",
    *,
    receiver: tuple[int, int] = (1, 0),
    codec: str = "json",
    error: str | None = None,
    flags: Iterable[str] = (),
) -> dict[str, Any]:
    inp = _input(layout(data) if codec == "msgpack" else data, codec)
    inp["receiver"] = {"version": ver(*receiver), "now": now}
    expected = None
    if result == "valid":
        expected = {"message": canon(data) if isinstance(data, dict) else json.loads(data)}
    return vec(
        vid,
        description,
        requirements,
        "receive",
        result,
        inp,
        codec=codec,
        expected=expected,
        error=error,
        flags=flags,
    )


# ------------------------------------------------------------------------------------------ areas

BUILD_NOW = "2025-12-25T09:18:21.123456789Z"


def build(
    vid: str,
    description: str,
    requirements: Iterable[str],
    fields: dict[str, Any],
    result: str = "valid",
    *,
    match: dict[str, Any] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    now: str = BUILD_NOW,
) -> dict[str, Any]:
    return vec(
        vid,
        description,
        requirements,
        "build",
        result,
        {"fields": fields, "now": now},
        expected=None if match is None else {"match": match},
        error=error,
        error_field=error_field,
    )


def envelope() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []
    value: Any  # each loop below has values of several JSON types
    # message types (ENV-004)
    for t in ("Request", "Event", "Error", "Heartbeat"):
        v.append(
            decode(
                f"envelope/type-{t.lower()}", f"message_type {t} decodes", ["ENV-004"], msg(message_type=t)
            )
        )
    v.append(
        decode(
            "envelope/type-response",
            "a Response with its correlation_id decodes",
            ["ENV-004", "ENV-006", "ENV-007"],
            msg(message_type="Response", correlation_id=CID),
        )
    )
    for slug, value, why in (
        ("reply", "Reply", "a type that does not exist"),
        ("lower-case", "request", "the right name in the wrong case"),
        ("upper-case", "REQUEST", "the right name in the wrong case"),
        ("empty", "", "the empty string"),
        ("trailing-space", "Request ", "a name with a trailing space"),
    ):
        v.append(
            decode(
                f"envelope/type-{slug}",
                f"message_type {value!r}: {why}",
                ["ENV-004"],
                msg(message_type=value),
                "invalid",
                error="INVALID_MESSAGE_TYPE",
            )
        )
    for slug, value in (("number", 1), ("null", None), ("array", ["Request"])):
        v.append(
            decode(
                f"envelope/type-{slug}",
                f"message_type of the wrong JSON type ({json.dumps(value)}) is a serialization error",
                ["ENV-004", "ERR-003"],
                msg(message_type=value),
                "invalid",
                error="SERIALIZATION",
            )
        )
    # correlation (ENV-006, ENV-007)
    v.append(
        decode(
            "envelope/request-with-correlation-id",
            "a non-Response may carry a correlation_id",
            ["ENV-006"],
            msg(correlation_id=CID),
        )
    )
    for t in ("Event", "Error"):
        v.append(
            decode(
                f"envelope/{t.lower()}-with-correlation-id",
                f"an {t} answering a request carries its correlation_id",
                ["ENV-006"],
                msg(message_type=t, correlation_id=CID, payload={"ok": False}),
            )
        )
    v.append(
        decode(
            "envelope/response-null-correlation-id",
            "a Response whose correlation_id is null is rejected naming correlation_id",
            ["ENV-007"],
            msg(message_type="Response"),
            "invalid",
            error="MISSING_FIELD",
            error_field="correlation_id",
        )
    )
    v.append(
        decode(
            "envelope/response-absent-correlation-id",
            "a Response without a correlation_id member is rejected naming correlation_id, as if null",
            ["ENV-007", "COD-010"],
            msg(message_type="Response", correlation_id=DROP),
            "invalid",
            error="MISSING_FIELD",
            error_field="correlation_id",
        )
    )
    # ids (ENV-002, ENV-006)
    for slug, value in (
        ("nil", "00000000-0000-0000-0000-000000000000"),
        ("max", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
        ("version-1", "c232ab00-9414-11ec-b3c8-9f6bdeced846"),
        ("version-7", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"),
    ):
        v.append(
            decode(
                f"envelope/id-{slug}-uuid",
                f"a {slug} UUID is a valid id: decoders do not check the version (only generated ids are v4)",
                ["ENV-002", "ENV-006"],
                msg(id=value),
                flags=["nasty"],
            )
        )
    bad_ids: list[tuple[str, Any, str]] = [
        ("short", "6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5", "35 hex digits"),
        ("long", "6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b0", "33 hex digits"),
        ("non-hex", "6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5g", "a non-hex digit"),
        ("three-hyphens", "6f1c2b7e-3a4d-4e5f-8a9b0c1d2e3f4a5b", "a hyphen missing"),
        ("misplaced-hyphens", "6f1c2b7e3-a4d-4e5f-8a9b-0c1d2e3f4a5b", "hyphens in the wrong places"),
        ("empty", "", "the empty string"),
        ("spaces", " 6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b ", "surrounding spaces"),
        ("trailing-newline", "6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b\n", "a trailing newline"),
        ("number", 42, "a number"),
        ("null", None, "null"),
        ("object", {"uuid": ID}, "an object"),
    ]
    for slug, value, why in bad_ids:
        reqs = ["ENV-006", "ERR-003"] if not isinstance(value, str) else ["ENV-006"]
        v.append(
            decode(
                f"envelope/id-{slug}",
                f"an id that is {why} is a UUID parse error",
                reqs,
                msg(id=value),
                "invalid",
                error="UUID_PARSE",
            )
        )
    for slug, value, why in (
        ("malformed", "not-a-uuid", "not a UUID"),
        ("number", 7, "a number"),
        ("short", "0b0e3c9a-1f2e-4d3c-9b8a-7f6e5d4c3b2", "35 hex digits"),
    ):
        v.append(
            decode(
                f"envelope/correlation-id-{slug}",
                f"a correlation_id that is {why} is a UUID parse error",
                ["ENV-006", "ERR-003"] if not isinstance(value, str) else ["ENV-006"],
                msg(correlation_id=value),
                "invalid",
                error="UUID_PARSE",
            )
        )
    # endpoint ids (ENV-005)
    ep128 = "a" + ("b-c.d_e:f/g@h0" * 10)[:127]
    for slug, src, tgt, why in (
        ("all-characters", "svc_A-1.b:c/d@host", "Z9", "every allowed character"),
        ("single-letter", "a", "b", "one character each"),
        ("digit-first", "7svc", "0", "a digit first"),
        (
            "shape",
            "pool-manager/worker-3@host-1:9000",
            "conductor.main",
            "a service/instance@host:port shape",
        ),
        ("length-128", ep128, ep128, "128 characters, the maximum"),
    ):
        v.append(
            decode(
                f"envelope/endpoint-{slug}",
                f"endpoint ids with {why} are valid",
                ["ENV-005"],
                msg(source=src, target=tgt),
                flags=["boundary"] if slug == "length-128" else [],
            )
        )
    bad_eps: list[tuple[str, str, str]] = [
        ("length-129", ep128 + "x", "129 characters, one too many"),
        ("empty", "", "empty"),
        ("leading-dash", "-svc", "starting with '-'"),
        ("leading-underscore", "_svc", "starting with '_'"),
        ("leading-dot", ".svc", "starting with '.'"),
        ("space", "pool manager", "with a space"),
        ("trailing-newline", "conductor\n", "with a trailing newline"),
        ("tab", "pool\tmanager", "with a tab"),
        ("nul", "pool\u0000manager", "with a NUL character"),
        ("non-ascii-letter", "conductör", "with a non-ASCII letter"),
        ("non-ascii-digit", "\uff11svc", "starting with a full-width digit"),
        ("arabic-indic-digit", "svc\u0663", "with an Arabic-Indic digit"),
        ("comma", "a,b", "with a comma"),
        ("hash", "a#b", "with '#'"),
        ("backslash", "a\\b", "with a backslash"),
        ("emoji", "svc-\U0001f600", "with an emoji"),
    ]
    for slug, value, why in bad_eps:
        v.append(
            decode(
                f"envelope/source-{slug}",
                f"a source endpoint id {why} is rejected",
                ["ENV-005"],
                msg(source=value),
                "invalid",
                error="INVALID_ENDPOINT_ID",
                flags=["boundary"] if slug == "length-129" else ["nasty"],
            )
        )
    v.append(
        decode(
            "envelope/target-space",
            "a target endpoint id with a space is rejected",
            ["ENV-005"],
            msg(target="pool manager"),
            "invalid",
            error="INVALID_ENDPOINT_ID",
        )
    )
    v.append(
        decode(
            "envelope/target-length-129",
            "a target endpoint id of 129 characters is rejected",
            ["ENV-005"],
            msg(target=ep128 + "y"),
            "invalid",
            error="INVALID_ENDPOINT_ID",
            flags=["boundary"],
        )
    )
    for slug, value in (("number", 42), ("null", None)):
        v.append(
            decode(
                f"envelope/source-{slug}",
                f"a source of the wrong JSON type ({json.dumps(value)}) is a serialization error",
                ["ENV-005", "ERR-003"],
                msg(source=value),
                "invalid",
                error="SERIALIZATION",
            )
        )
    # metadata keys (ENV-009)
    k64 = "k" + ("_.-aZ9" * 11)[:63]
    v.append(
        decode(
            "envelope/metadata-key-shapes",
            "metadata keys starting with a letter or '_' and using letters, digits, '_', '.', '-' are valid",
            ["ENV-009"],
            msg(metadata={"_private": 1, "a.b-c_d": 2, "A9": 3, "x": 4, "trace-id": "t", "Z_": 5}),
        )
    )
    v.append(
        decode(
            "envelope/metadata-key-length-64",
            "a metadata key of 64 characters, the maximum, is valid",
            ["ENV-009"],
            msg(metadata={k64: True}),
            flags=["boundary"],
        )
    )
    bad_keys: list[tuple[str, str, str]] = [
        ("length-65", k64 + "y", "65 characters long"),
        ("empty", "", "empty"),
        ("digit-first", "1abc", "starting with a digit"),
        ("dash-first", "-abc", "starting with '-'"),
        ("dot-first", ".abc", "starting with '.'"),
        ("colon", "a:b", "containing ':'"),
        ("slash", "a/b", "containing '/'"),
        ("at", "a@b", "containing '@'"),
        ("space", "request id", "containing a space"),
        ("non-ascii", "clé", "containing a non-ASCII letter"),
        ("trailing-newline", "key\n", "ending with a newline"),
    ]
    for slug, key, why in bad_keys:
        v.append(
            decode(
                f"envelope/metadata-key-{slug}",
                f"a metadata key {why} is rejected",
                ["ENV-009"],
                msg(metadata={"ok": 1, key: "v"}),
                "invalid",
                error="INVALID_METADATA_KEY",
                flags=["boundary"] if slug == "length-65" else [],
            )
        )
    v.append(
        decode(
            "envelope/metadata-values-any-json",
            "metadata values are any JSON value",
            ["ENV-009"],
            msg(
                metadata={
                    "null": None,
                    "bool": False,
                    "int": -12,
                    "float": 0.25,
                    "str": "x",
                    "arr": [1, "two", [3]],
                    "obj": {"nested": {"deeper": [None]}},
                }
            ),
        )
    )
    for slug, value in (("array", [["k", "v"]]), ("null", None), ("string", "k=v")):
        v.append(
            decode(
                f"envelope/metadata-{slug}",
                f"metadata that is not an object ({slug}) is a serialization error",
                ["ENV-009", "ERR-003"],
                msg(metadata=value),
                "invalid",
                error="SERIALIZATION",
            )
        )
    # payload (ENV-010) and nesting (ENV-014)
    payloads: list[tuple[str, Any]] = [
        ("null", None),
        ("true", True),
        ("false", False),
        ("zero", 0),
        ("negative-integer", -42),
        ("float", 3.25),
        ("empty-string", ""),
        ("empty-array", []),
        ("empty-object", {}),
        ("array-mixed", [1, "a", None, True, 2.5, {"k": []}]),
        ("object", {"task": "render", "frames": [1, 2, 3], "opts": {"hq": True}}),
        ("object-unicode-keys", {"ключ": 1, "鍵": 2, "": 3, "with space": 4}),
    ]
    for slug, value in payloads:
        v.append(
            decode(f"envelope/payload-{slug}", f"payload {slug} is valid", ["ENV-010"], msg(payload=value))
        )
    v.append(
        decode(
            "envelope/payload-depth-32",
            "a payload nested 32 levels deep (arrays and objects) must be accepted",
            ["ENV-014", "ENV-010"],
            msg(payload=nest(32)),
            flags=["boundary"],
        )
    )
    v.append(
        decode(
            "envelope/metadata-depth-32",
            "a metadata value nested 32 levels deep must be accepted",
            ["ENV-014", "ENV-009"],
            msg(metadata={"deep": nest(32, "leaf")}),
            flags=["boundary"],
        )
    )
    v.append(
        decode(
            "envelope/payload-depth-100000",
            "a payload nested 100000 arrays deep may be rejected, then only with SERIALIZATION; no crash",
            ["ENV-014", "COD-004"],
            msg(payload=Raw("[" * 100_000 + "]" * 100_000)),
            "acceptable",
            error="SERIALIZATION",
            flags=["nasty"],
        )
    )
    v.append(
        decode(
            "envelope/metadata-depth-10000",
            "a metadata value nested 10000 objects deep may be rejected, then only with SERIALIZATION",
            ["ENV-014", "COD-004"],
            msg(metadata=Raw('{"k":' * 10_000 + "0" + "}" * 10_000)),
            "acceptable",
            error="SERIALIZATION",
            flags=["nasty"],
        )
    )
    # expects_response (ENV-008)
    for t in ("Request", "Response", "Event", "Error", "Heartbeat"):
        v.append(
            vec(
                f"envelope/expects-response-{t.lower()}",
                f"{t} {'expects' if t == 'Request' else 'does not expect'} a response",
                ["ENV-008"],
                "expects_response",
                "valid",
                {"message_type": t},
                expected={"expects_response": t == "Request"},
            )
        )
    v.extend(envelope_builds())
    return v


def _built(**header: Any) -> dict[str, Any]:
    """The match of a built message: the builder's defaults (ENV-011, ENV-012) with overrides."""
    out: dict[str, Any] = {
        "header": {
            "correlation_id": None,
            "timestamp": BUILD_NOW,
            "ttl": None,
            "priority": 0,
            "version": ver(1, 0),
        },
        "payload": None,
        "metadata": {},
    }
    for key, value in header.items():
        if key in ("payload", "metadata"):
            out[key] = value
        else:
            out["header"][key] = value
    return out


def envelope_builds() -> list[dict[str, Any]]:
    rst = {"message_type": "Request", "source": "conductor", "target": "pool-manager"}
    v = [
        build(
            "envelope/build-defaults",
            "the builder with only type, source and target: null payload, NORMAL priority, no ttl, no "
            "correlation_id, empty metadata, version 1.0, the clock's now, a fresh random v4 id",
            ["ENV-011", "ENV-012", "ENV-002", "ENV-003", "PRI-005", "VER-001", "ENV-001"],
            dict(rst),
            match=_built(message_type="Request", source="conductor", target="pool-manager"),
        ),
        build(
            "envelope/build-all-fields",
            "every builder field is carried into the message",
            ["ENV-011", "ENV-012", "ENV-002"],
            {
                "message_type": "Event",
                "source": "monitor",
                "target": "health-check",
                "payload": {"cpu": 0.5, "ok": True},
                "priority": 100,
                "ttl": ttl(30, 500_000_000),
                "correlation_id": CID,
                "metadata": {"request_id": "req-123", "attempt": 2},
            },
            match=_built(
                message_type="Event",
                source="monitor",
                target="health-check",
                priority=100,
                ttl=ttl(30, 500_000_000),
                correlation_id=CID,
                payload={"cpu": 0.5, "ok": True},
                metadata={"request_id": "req-123", "attempt": 2},
            ),
        ),
        build(
            "envelope/build-timestamp-whole-second",
            "the timestamp is the clock's now at a whole second",
            ["ENV-012"],
            dict(rst),
            match=_built(timestamp="2030-01-01T00:00:00Z"),
            now="2030-01-01T00:00:00Z",
        ),
        build(
            "envelope/build-response",
            "a Response with a correlation_id builds",
            ["ENV-007", "ENV-011"],
            {**rst, "message_type": "Response", "correlation_id": CID},
            match=_built(message_type="Response", correlation_id=CID),
        ),
        build(
            "envelope/build-response-without-correlation-id",
            "building a Response without a correlation_id fails naming correlation_id",
            ["ENV-007"],
            {**rst, "message_type": "Response"},
            "invalid",
            error="MISSING_FIELD",
            error_field="correlation_id",
        ),
        build(
            "envelope/build-heartbeat-null-payload",
            "a Heartbeat with an explicit null payload",
            ["ENV-010", "ENV-011"],
            {**rst, "message_type": "Heartbeat", "payload": None},
            match=_built(message_type="Heartbeat", payload=None),
        ),
        build(
            "envelope/build-bad-message-type",
            "an unknown message type given to the builder is rejected",
            ["ENV-004"],
            {**rst, "message_type": "Reply"},
            "invalid",
            error="INVALID_MESSAGE_TYPE",
        ),
        build(
            "envelope/build-bad-source",
            "an invalid source given to the builder is rejected",
            ["ENV-005"],
            {**rst, "source": "pool manager"},
            "invalid",
            error="INVALID_ENDPOINT_ID",
        ),
        build(
            "envelope/build-bad-target",
            "an invalid target given to the builder is rejected",
            ["ENV-005"],
            {**rst, "target": ""},
            "invalid",
            error="INVALID_ENDPOINT_ID",
        ),
        build(
            "envelope/build-bad-metadata-key",
            "an invalid metadata key given to the builder is rejected",
            ["ENV-009"],
            {**rst, "metadata": {"1bad": "x"}},
            "invalid",
            error="INVALID_METADATA_KEY",
        ),
        build(
            "envelope/build-bad-correlation-id",
            "a malformed correlation_id given to the builder is rejected",
            ["ENV-006"],
            {**rst, "correlation_id": "not-a-uuid"},
            "invalid",
            error="UUID_PARSE",
        ),
    ]
    missing: list[tuple[str, tuple[str, ...], str]] = [
        ("message-type", ("message_type",), "message_type"),
        ("source", ("source",), "source"),
        ("target", ("target",), "target"),
        ("all", ("message_type", "source", "target"), "message_type"),
        ("source-and-target", ("source", "target"), "source"),
        ("type-and-target", ("message_type", "target"), "message_type"),
    ]
    for slug, gone, first in missing:
        fields = {k: val for k, val in rst.items() if k not in gone}
        fields["payload"] = "x"
        v.append(
            build(
                f"envelope/build-missing-{slug}",
                f"the builder without {', '.join(gone)} reports {first} (message_type, source, target order)",
                ["ENV-011", "ERR-004"],
                fields,
                "invalid",
                error="MISSING_FIELD",
                error_field=first,
            )
        )
    return v


def codec_json() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []
    golden = ["encode-golden"]
    core = ["COD-001", "COD-002", "COD-003"]
    v.append(
        decode(
            "codec-json/rust-request",
            "a Request exactly as the Rust crate writes it",
            ["ENV-001", *core, "ENV-010"],
            RUST_REQUEST,
            flags=["from-rust-crate", *golden],
        )
    )
    v.append(
        decode(
            "codec-json/rust-event",
            "an Event with correlation_id, ttl, priority, object payload, metadata, as the crate writes it",
            ["ENV-001", *core, "ENV-006", "ENV-009", "TTL-007"],
            RUST_EVENT,
            flags=["from-rust-crate", *golden],
        )
    )
    v.append(
        decode(
            "codec-json/rust-heartbeat-version-2-3",
            "a 2.3 Heartbeat with a whole-second timestamp, as the crate writes it: decoding succeeds",
            ["ENV-001", *core, "VER-003"],
            RUST_HEARTBEAT,
            flags=["from-rust-crate", *golden],
        )
    )
    v.append(
        decode(
            "codec-json/reordered-members",
            "member order is not significant",
            ["COD-002"],
            '{"metadata":{},"payload":"Hello, World!","header":{"version":{"minor":0,"major":1},"priority":0,'
            '"ttl":null,"timestamp":"2025-12-25T09:18:21.123456789Z","target":"pool-manager","source":"conductor",'
            '"message_type":"Request","correlation_id":null,"id":"6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"}}',
            flags=golden,
        )
    )
    v.append(
        decode(
            "codec-json/pretty-printed",
            "insignificant whitespace between tokens and around the value is allowed",
            ["COD-002", "COD-004"],
            "\n  " + json.dumps(json.loads(RUST_EVENT), indent=4) + "\r\n\t ",
            flags=golden,
        )
    )
    # timestamps
    for slug, text in (
        ("fraction-9", "2025-12-25T09:18:21.000000001Z"),
        ("fraction-6", "2025-12-25T09:18:21.123456Z"),
        ("fraction-3", "2025-12-25T09:18:21.120Z"),
        ("fraction-0", "2025-12-25T09:18:21Z"),
        ("year-0001", "0001-01-01T00:00:00Z"),
        ("year-9999", "9999-12-31T23:59:59.999999999Z"),
        ("epoch", "1970-01-01T00:00:00Z"),
        ("before-epoch", "1969-12-31T23:59:59.999999999Z"),
        ("leap-day", "2024-02-29T12:00:00.500Z"),
        ("leap-day-2000", "2000-02-29T23:59:59.999Z"),
    ):
        v.append(
            decode(
                f"codec-json/timestamp-{slug}",
                f"canonical timestamp {text}",
                ["COD-001", "COD-002", "COD-003"],
                msg(timestamp=text),
                flags=[*golden, "boundary"],
            )
        )
    tolerated_ts: list[tuple[str, str, str]] = [
        ("fraction-1", "2025-12-25T09:18:21.1Z", "2025-12-25T09:18:21.100Z"),
        ("fraction-2", "2025-12-25T09:18:21.12Z", "2025-12-25T09:18:21.120Z"),
        ("fraction-4", "2025-12-25T09:18:21.1234Z", "2025-12-25T09:18:21.123400Z"),
        ("fraction-5", "2025-12-25T09:18:21.12345Z", "2025-12-25T09:18:21.123450Z"),
        ("fraction-7", "2025-12-25T09:18:21.1234567Z", "2025-12-25T09:18:21.123456700Z"),
        ("fraction-8", "2025-12-25T09:18:21.12345678Z", "2025-12-25T09:18:21.123456780Z"),
        ("offset-plus-0200", "2025-12-25T11:18:21.123456789+02:00", TS),
        ("offset-minus-0530-previous-day", "2025-12-24T23:48:21.5-09:30", "2025-12-25T09:18:21.500Z"),
        ("offset-plus-0000", "2025-12-25T09:18:21+00:00", "2025-12-25T09:18:21Z"),
        ("offset-minus-0000", "2025-12-25T09:18:21-00:00", "2025-12-25T09:18:21Z"),
        ("lower-case-t", "2025-12-25t09:18:21.123456789Z", TS),
        ("lower-case-z", "2025-12-25T09:18:21.123456789z", TS),
        ("lower-case-t-and-z", "2025-12-25t09:18:21z", "2025-12-25T09:18:21Z"),
    ]
    for slug, text, canonical in tolerated_ts:
        v.append(
            decode(
                f"codec-json/timestamp-{slug}",
                f"tolerated timestamp {text}: a decoder that accepts it yields {canonical}",
                ["COD-006"],
                msg(timestamp=text),
                "acceptable",
                expected=msg(timestamp=canonical),
                error="SERIALIZATION",
                flags=["tolerated"],
            )
        )
    for slug, text, canonical in (
        ("fraction-3-zeros", "2025-12-25T09:18:21.000Z", "2025-12-25T09:18:21Z"),
        ("fraction-6-not-shortest", "2025-12-25T09:18:21.123000Z", "2025-12-25T09:18:21.123Z"),
        ("fraction-9-not-shortest", "2025-12-25T09:18:21.123456000Z", "2025-12-25T09:18:21.123456Z"),
    ):
        v.append(
            decode(
                f"codec-json/timestamp-{slug}",
                f"{text} has a digit count of the canonical form but is not the shortest: a decoder that "
                f"accepts it yields {canonical}",
                ["COD-006", "COD-001"],
                msg(timestamp=text),
                "acceptable",
                expected=msg(timestamp=canonical),
                error="SERIALIZATION",
                flags=["tolerated"],
            )
        )
    # Accepting these is outside COD-006; where the instant is unambiguous, an accepting decoder
    # must yield it. A leap second has no agreed instant (chrono folds it into the next second,
    # others into :59), nor have 10 digits (rounded or truncated), nor year 0000.
    for slug, text, why, instant in (
        ("leap-second", "2016-12-31T23:59:60Z", "a leap second (second 60)", None),
        ("fraction-10", "2025-12-25T09:18:21.1234567891Z", "10 fraction digits", None),
        ("fraction-12", "2025-12-25T09:18:21.123456789000Z", "12 fraction digits, 3 of them 0", TS),
        (
            "space-separator",
            "2025-12-25 09:18:21Z",
            "a space for T, which RFC 3339 section 5.6 allows by note",
            "2025-12-25T09:18:21Z",
        ),
        ("year-0000", "0000-12-31T23:59:59Z", "year 0000, outside the canonical 0001-9999", None),
        ("offset-below-year-1", "0001-01-01T00:30:00+01:00", "an offset that puts it in year 0000", None),
    ):
        v.append(
            decode(
                f"codec-json/timestamp-{slug}",
                f"a timestamp with {why} may be accepted or rejected (then with SERIALIZATION)",
                ["COD-005", "COD-006"],
                msg(timestamp=text),
                "acceptable",
                expected=None if instant is None else msg(timestamp=instant),
                error="SERIALIZATION",
                flags=["tolerated", "nasty"],
            )
        )
    bad_ts: list[tuple[str, Any, str, bool]] = [
        ("month-13", "2025-13-01T00:00:00Z", "month 13", False),
        ("month-00", "2025-00-10T00:00:00Z", "month 00", False),
        ("day-32", "2025-01-32T00:00:00Z", "day 32", False),
        ("day-00", "2025-01-00T00:00:00Z", "day 00", False),
        ("february-30", "2025-02-30T00:00:00Z", "February 30", True),
        ("february-29-not-leap", "2025-02-29T00:00:00Z", "February 29 of a common year", True),
        ("february-29-1900", "1900-02-29T00:00:00Z", "February 29 of 1900 (not a leap year)", True),
        ("april-31", "2025-04-31T12:00:00Z", "April 31", True),
        ("hour-24", "2025-12-25T24:00:00Z", "hour 24", False),
        ("minute-60", "2025-12-25T09:60:00Z", "minute 60", False),
        ("second-61", "2025-12-25T09:18:61Z", "second 61", False),
        ("no-zone", "2025-12-25T09:18:21", "no time zone", False),
        ("no-seconds", "2025-12-25T09:18Z", "no seconds", False),
        ("date-only", "2025-12-25", "a date only", False),
        ("empty", "", "the empty string", False),
        ("fraction-no-digits", "2025-12-25T09:18:21.Z", "a decimal point without digits", False),
        (
            "comma-fraction",
            "2025-12-25T09:18:21,5Z",
            "a comma for the decimal point (ISO 8601, not RFC 3339)",
            False,
        ),
        ("offset-hour-24", "2025-12-25T09:18:21+24:00", "offset +24:00", False),
        ("offset-no-colon", "2025-12-25T09:18:21+0200", "offset +0200 without a colon", False),
        ("two-digit-year", "25-12-25T09:18:21Z", "a two-digit year", False),
        ("extended-year", "+12025-12-25T09:18:21Z", "a five-digit signed year", False),
        ("single-digit-fields", "2025-1-5T9:18:21Z", "single-digit fields", False),
        ("unix-seconds-string", "1766654301", "Unix seconds as a string", False),
        ("trailing-newline", "2025-12-25T09:18:21Z\n", "a trailing newline", False),
        ("non-ascii-digit", "2025-12-25T09:18:2\u0661Z", "an Arabic-Indic digit", False),
        ("number", 1766654301, "a number", False),
        ("null", None, "null", False),
    ]
    for slug, value, why, blind in bad_ts:
        v.append(
            decode(
                f"codec-json/timestamp-{slug}",
                f"a timestamp with {why} is rejected",
                ["COD-005"] if isinstance(value, str) else ["COD-005", "ERR-003"],
                msg(timestamp=value),
                "invalid",
                error="SERIALIZATION",
                flags=["schema-blind"] if blind else [],
            )
        )
    # tolerated UUID spellings (COD-006), absent members (COD-010)
    for slug, member, text, canonical in (
        ("id-upper-case", "id", ID.upper(), ID),
        ("id-mixed-case", "id", "6F1c2B7e-3A4d-4E5f-8A9b-0C1d2E3f4A5b", ID),
        ("id-unhyphenated", "id", ID.replace("-", ""), ID),
        ("id-upper-unhyphenated", "id", ID.replace("-", "").upper(), ID),
        ("correlation-id-upper-case", "correlation_id", CID.upper(), CID),
        ("correlation-id-unhyphenated", "correlation_id", CID.replace("-", ""), CID),
    ):
        v.append(
            decode(
                f"codec-json/{slug}",
                f"a tolerated UUID spelling {text}: a decoder that accepts it yields the canonical form",
                ["COD-006", "ENV-006"],
                msg(**{member: text}),
                "acceptable",
                expected=msg(**{member: canonical}),
                error="UUID_PARSE",
                flags=["tolerated"],
            )
        )
    for slug, text in (("braced", "{" + ID + "}"), ("urn", "urn:uuid:" + ID)):
        v.append(
            decode(
                f"codec-json/id-{slug}",
                f"the {slug} UUID form (which the uuid crate parses) may be accepted, then yielding the "
                "canonical form, or rejected with UUID_PARSE",
                ["ENV-006", "COD-006"],
                msg(id=text),
                "acceptable",
                expected=msg(),
                error="UUID_PARSE",
                flags=["nasty"],
            )
        )
    for member in ("correlation_id", "ttl"):
        v.append(
            decode(
                f"codec-json/absent-{member.replace('_', '-')}",
                f"a header without {member} may be accepted as if it were null",
                ["COD-010"],
                msg(**{member: DROP}),
                "acceptable",
                expected=msg(),
                error="MISSING_FIELD",
                flags=["tolerated"],
            )
        )
    v.append(
        decode(
            "codec-json/absent-correlation-id-and-ttl",
            "a header with only the seven members the crate requires may be accepted",
            ["COD-010"],
            msg(correlation_id=DROP, ttl=DROP),
            "acceptable",
            expected=msg(),
            error="MISSING_FIELD",
            flags=["tolerated"],
        )
    )
    # well-formedness (COD-004)
    base = RUST_REQUEST
    malformed: list[tuple[str, str | bytes, str]] = [
        ("truncated-half", base[: len(base) // 2], "JSON cut in the middle"),
        ("truncated-last-brace", base[:-1], "JSON missing its last brace"),
        ("empty", "", "empty input"),
        ("whitespace-only", " \n\t", "whitespace only"),
        ("trailing-garbage", base + "x", "a stray byte after the object"),
        ("trailing-second-object", base + "{}", "a second object after the first"),
        ("trailing-nul", base + "\u0000", "a NUL byte after the object"),
        ("trailing-comma", base[:-1] + ",}", "a trailing comma"),
        (
            "single-quotes",
            base.replace('"payload":"Hello, World!"', "\"payload\":'Hello, World!'"),
            "a single-quoted string",
        ),
        ("unquoted-key", base.replace('"payload":', "payload:"), "an unquoted member name"),
        ("comment", base.replace('"metadata":{}', '"metadata":{/* none */}'), "a comment"),
        ("leading-zero", base.replace('"priority":0', '"priority":00'), "a number with a leading zero"),
        ("plus-sign", base.replace('"priority":0', '"priority":+0'), "a number with a plus sign"),
        ("nan", base.replace('"Hello, World!"', "NaN"), "NaN"),
        ("infinity", base.replace('"Hello, World!"', "Infinity"), "Infinity"),
        ("negative-infinity", base.replace('"Hello, World!"', "-Infinity"), "-Infinity"),
        ("bare-word", base.replace('"Hello, World!"', "undefined"), "a bare word"),
        ("invalid-escape", base.replace("Hello, World!", "Hello\\q"), "an invalid escape \\q"),
        ("hex-escape", base.replace("Hello, World!", "\\x41"), "a \\x escape"),
        ("short-unicode-escape", base.replace("Hello, World!", "\\u12"), "a truncated \\u escape"),
        (
            "raw-tab-in-string",
            base.replace("Hello, World!", "Hello,\tWorld!"),
            "an unescaped tab in a string",
        ),
        (
            "raw-newline-in-string",
            base.replace("Hello, World!", "Hello,\nWorld!"),
            "an unescaped newline in a string",
        ),
        ("lone-high-surrogate", base.replace("Hello, World!", "\\ud800"), "a lone high surrogate escape"),
        ("lone-low-surrogate", base.replace("Hello, World!", "x\\udc00y"), "a lone low surrogate escape"),
        (
            "reversed-surrogates",
            base.replace("Hello, World!", "\\ude00\\ud83d"),
            "a surrogate pair in the wrong order",
        ),
        ("top-level-array", "[" + base + "]", "a top level that is an array"),
        ("top-level-string", json.dumps(base), "a top level that is a string"),
        ("top-level-null", "null", "a top level that is null"),
        ("top-level-number", "42", "a top level that is a number"),
        ("two-values", "{} {}", "two values"),
        ("invalid-utf8", base.encode().replace(b"Hello", b"H\xffllo"), "a byte that is never UTF-8 (0xFF)"),
        ("overlong-utf8", base.encode().replace(b"Hello", b"H\xc1\xa5llo"), "an overlong UTF-8 encoding"),
        (
            "utf8-encoded-surrogate",
            base.encode().replace(b"Hello", b"H\xed\xa0\x80llo"),
            "a UTF-8 encoded surrogate",
        ),
        (
            "truncated-utf8",
            base.encode().replace(b"Hello", b"H\xe2\x82llo"),
            "a truncated multi-byte sequence",
        ),
        ("utf16le", b"\xff\xfe" + base.encode("utf-16-le"), "UTF-16 text with a BOM"),
    ]
    for slug, data, why in malformed:
        blind = slug in ("lone-high-surrogate", "lone-low-surrogate", "reversed-surrogates")
        v.append(
            decode(
                f"codec-json/malformed-{slug}",
                f"{why} is a serialization error",
                ["COD-004"],
                data,
                "invalid",
                error="SERIALIZATION",
                flags=["nasty", "schema-blind"] if blind else ["nasty"],
            )
        )
    v.append(
        decode(
            "codec-json/byte-order-mark",
            "a UTF-8 byte order mark before the object is not canonical: it may be skipped or rejected",
            ["COD-004"],
            b"\xef\xbb\xbf" + base.encode(),
            "acceptable",
            expected=json.loads(base),
            error="SERIALIZATION",
            flags=["nasty"],
        )
    )
    v.append(
        decode(
            "codec-json/trailing-newline",
            "a trailing newline is whitespace, not a trailing byte",
            ["COD-004", "COD-002"],
            base + "\n",
        )
    )
    # duplicates (COD-007)
    for slug, text, expected, where in (
        (
            "priority",
            base.replace('"priority":0', '"priority":5,"priority":7'),
            msg(priority=7),
            "header.priority",
        ),
        (
            "payload-member",
            base.replace('"Hello, World!"', '{"a":1,"a":2}'),
            msg(payload={"a": 2}),
            "a payload object",
        ),
        (
            "metadata-key",
            base.replace('"metadata":{}', '"metadata":{"k":"first","k":"last"}'),
            msg(metadata={"k": "last"}),
            "metadata",
        ),
        (
            "payload-top-level",
            base.replace('"payload":"Hello, World!"', '"payload":"first","payload":"last"'),
            msg(payload="last"),
            "the message",
        ),
    ):
        v.append(
            decode(
                f"codec-json/duplicate-{slug}",
                f"a duplicated member name in {where}: rejected with SERIALIZATION, or the last one wins",
                ["COD-007"],
                text,
                "acceptable",
                expected=expected,
                error="SERIALIZATION",
                flags=["nasty"],
            )
        )
    # numbers (COD-008)
    v.append(
        decode(
            "codec-json/integers-exact",
            "integers in [-2^63, 2^64 - 1] in payload and metadata are preserved exactly",
            ["COD-008"],
            msg(
                payload=[2**63 - 1, -(2**63), U64, 2**53 + 1, -(2**53) - 1, 0, -1],
                metadata={"u64max": U64, "i64min": -(2**63)},
            ),
            flags=[*golden, "boundary"],
        )
    )
    v.append(
        decode(
            "codec-json/floats",
            "non-integers are IEEE 754 doubles: 1.5, -0.0, 0.1, extremes, a subnormal",
            ["COD-008"],
            msg(payload=[1.5, -0.0, 0.1, 1.7976931348623157e308, -2.2250738585072014e-308, 5e-324, 1.0]),
            flags=[*golden, "boundary"],
        )
    )
    v.append(
        decode(
            "codec-json/float-exponent-forms",
            "exponent forms are doubles: 1E2 is 100.0, 2.5e-3 is 0.0025",
            ["COD-008"],
            base.replace('"Hello, World!"', "[1E2,2.5e-3,-1e+1,0.0]"),
            expected=msg(payload=[100.0, 0.0025, -10.0, 0.0]),
        )
    )
    for slug, number in (("2-pow-64", 2**64), ("minus-2-pow-63-minus-1", -(2**63) - 1)):
        v.append(
            decode(
                f"codec-json/integer-{slug}",
                f"the integer {number} is outside [-2^63, 2^64 - 1]: rejected (SERIALIZATION) or a double",
                ["COD-008"],
                base.replace('"Hello, World!"', str(number)),
                "acceptable",
                expected=msg(payload=float(number)),
                error="SERIALIZATION",
                flags=["boundary", "nasty", "schema-blind"],
            )
        )
    v.append(
        decode(
            "codec-json/number-out-of-double-range",
            "1e400 is beyond the largest double: a decoder may reject it (then with SERIALIZATION)",
            ["COD-008"],
            base.replace('"Hello, World!"', "1e400"),
            "acceptable",
            error="SERIALIZATION",
            flags=["nasty", "schema-blind"],
        )
    )
    # strings (COD-009)
    v.append(
        decode(
            "codec-json/strings-non-ascii",
            "non-ASCII strings are preserved exactly (2-, 3- and 4-byte UTF-8)",
            ["COD-009"],
            msg(payload="héllo wörld ✓ 日本語 😀 \u00a0 \u2028", metadata={"note": "ünïcödé"}),
            flags=golden,
        )
    )
    v.append(
        decode(
            "codec-json/strings-escapes",
            "escaped characters decode to the characters they name",
            ["COD-009"],
            base.replace(
                "Hello, World!", '\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\u20ac\\ud83d\\ude00\\u001f'
            ),
            expected=msg(payload='"\\/\b\f\n\r\t\u0000é€😀\u001f'),
        )
    )
    v.append(
        decode(
            "codec-json/strings-escaped-equals-raw",
            "an escaped non-ASCII character equals the raw one",
            ["COD-009"],
            base.replace('"metadata":{}', '"metadata":{"\\u006bey":"caf\\u00e9"}').replace(
                "Hello, World!", "caf\\u00e9"
            ),
            expected=msg(payload="café", metadata={"key": "café"}),
        )
    )
    v.append(
        decode(
            "codec-json/strings-control-characters",
            "every control character, escaped, round-trips",
            ["COD-009", "COD-003"],
            msg(payload="".join(chr(c) for c in range(32)) + "\u007f"),
            flags=golden,
        )
    )
    v.append(
        decode(
            "codec-json/payload-large-string",
            "an 8 KiB string payload",
            ["COD-009", "ENV-010"],
            msg(payload="0123456789abcdef" * 512),
            flags=golden,
        )
    )
    return v


def codec_msgpack() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []
    gold = ["COD-101", "COD-103", "COD-104", "COD-106"]

    def golden(
        vid: str, description: str, m: dict[str, Any], reqs: Iterable[str] = (), flags: Iterable[str] = ()
    ) -> dict[str, Any]:
        return decode(
            f"codec-msgpack/{vid}",
            description,
            [*gold, *reqs],
            layout(m),
            codec="msgpack",
            expected=canon(m),
            flags=["encode-golden", *flags],
        )

    v.append(
        golden(
            "rust-request",
            "the crate's Request (timestamp 64: nanoseconds set)",
            json.loads(RUST_REQUEST),
            ["COD-102"],
        )
    )
    v.append(
        golden(
            "rust-event",
            "the crate's Event: correlation id, ttl, float, nil, bool, metadata",
            json.loads(RUST_EVENT),
            ["COD-102"],
        )
    )
    v.append(
        golden(
            "rust-heartbeat",
            "the crate's Heartbeat of version 2.3 (timestamp 32, negative fixint priority)",
            json.loads(RUST_HEARTBEAT),
            ["COD-102", "VER-003"],
        )
    )
    for slug, text, form in (
        ("ts32-epoch", "1970-01-01T00:00:00Z", "timestamp 32"),
        ("ts32-max", "2106-02-07T06:28:15Z", "timestamp 32 (seconds 2^32 - 1)"),
        ("ts64-seconds-2-pow-32", "2106-02-07T06:28:16Z", "timestamp 64 (seconds 2^32, nanoseconds 0)"),
        ("ts64-year-2200", "2200-01-01T00:00:00Z", "timestamp 64 (whole second beyond 32 bits)"),
        ("ts64-one-nanosecond", "1970-01-01T00:00:00.000000001Z", "timestamp 64 (1 ns)"),
        ("ts64-max", "2514-05-30T01:53:03.999999999Z", "timestamp 64 (seconds 2^34 - 1)"),
        ("ts96-seconds-2-pow-34", "2514-05-30T01:53:04Z", "timestamp 96 (seconds 2^34)"),
        ("ts96-year-2600", "2600-06-01T12:00:00.000001Z", "timestamp 96"),
        ("ts96-year-0001", "0001-01-01T00:00:00Z", "timestamp 96 (negative seconds)"),
        (
            "ts96-before-epoch",
            "1969-12-31T23:59:59.999999999Z",
            "timestamp 96 (one nanosecond before the epoch)",
        ),
        ("ts96-year-9999", "9999-12-31T23:59:59.999999999Z", "timestamp 96 (the last instant)"),
    ):
        v.append(golden(slug, f"{text} is encoded as {form}", msg(timestamp=text), ["COD-102"], ["boundary"]))
    ints = [
        0,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2**32 - 1,
        2**32,
        U64,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
    ]
    ints += [-(2**31), -(2**31) - 1, -(2**63)]
    v.append(
        golden(
            "integer-forms",
            "every integer in its smallest form, u64 max and i64 min included",
            msg(payload=ints),
            ["COD-008"],
            ["boundary"],
        )
    )
    for p in (1000, -1000, 127, 128, -32, -33, 100, -100):
        name = f"priority-minus-{-p}" if p < 0 else f"priority-{p}"
        v.append(golden(name, f"priority {p} in its smallest form", msg(priority=p), ["PRI-002"]))
    v.append(
        golden(
            "floats",
            "floats are float 64, -0.0 and a subnormal included",
            msg(payload=[1.5, -0.0, 0.1, 1e308, 5e-324, 2.0]),
            ["COD-008"],
        )
    )
    v.append(
        golden(
            "string-forms",
            "fixstr, str 8, str 16 and non-ASCII strings",
            msg(
                payload=["", "a" * 31, "b" * 32, "c" * 255, "d" * 256, "é😀日本"],
                source="s" * 31,
                target="t" * 128,
            ),
            ["COD-009"],
            ["boundary"],
        )
    )
    v.append(
        golden(
            "container-forms",
            "fixarray/array 16 and fixmap/map 16; map key order is kept as given",
            msg(
                payload={
                    "z": list(range(15)),
                    "y": list(range(16)),
                    "a": {f"k{i:02d}": i for i in range(16)},
                },
                metadata={f"m{i}": i for i in range(15, 0, -1)},
            ),
            ["ENV-009", "ENV-010"],
            ["boundary"],
        )
    )
    v.append(
        golden(
            "ttl-max",
            "ttl secs u64 max and nanos 999999999",
            msg(ttl=ttl(U64, 999_999_999)),
            ["TTL-005", "TTL-007"],
            ["boundary"],
        )
    )
    v.append(golden("ttl-zero", "a zero ttl", msg(ttl=ttl(0, 0)), ["TTL-007"]))
    v.append(
        golden(
            "version-max", "version 65535.65535", msg(version=ver(65535, 65535)), ["VER-001"], ["boundary"]
        )
    )
    v.append(
        golden(
            "response",
            "a Response with its correlation id",
            msg(message_type="Response", correlation_id=CID, payload={"result": [1, 2]}),
            ["ENV-006", "ENV-007"],
        )
    )
    v.append(
        golden(
            "payload-depth-32",
            "a payload nested 32 levels deep",
            msg(payload=nest(32)),
            ["ENV-014"],
            ["boundary"],
        )
    )
    # non-smallest but accepted timestamp forms (COD-102: all three forms)
    m = msg(timestamp="2025-12-25T09:18:21Z")
    lay = layout(m)
    secs = ts_ns("2025-12-25T09:18:21Z") // NS
    for slug, raw in (
        ("ts64-for-ts32-instant", b"\xd7\xff" + secs.to_bytes(8, "big")),
        ("ts96-for-ts32-instant", b"\xc7\x0c\xff" + b"\x00" * 4 + secs.to_bytes(8, "big", signed=True)),
    ):
        lay2 = copy.deepcopy(lay)
        lay2[0][5] = Raw(raw)
        v.append(
            decode(
                f"codec-msgpack/{slug}",
                f"a decoder accepts every timestamp form, not only the smallest ({slug})",
                ["COD-102"],
                lay2,
                codec="msgpack",
                expected=m,
            )
        )
    # non-canonical but decodable encodings
    base = json.loads(RUST_REQUEST)
    bl = layout(base)

    def edit(pos: tuple[int, ...], value: Any, src: list[Any] | None = None) -> list[Any]:
        out = copy.deepcopy(src if src is not None else bl)
        target: Any = out
        for p in pos[:-1]:
            target = target[p]
        target[pos[-1]] = value
        return out

    for slug, pos, raw, expected, why in (
        ("priority-int64", (0, 7), b"\xd3" + b"\x00" * 8, base, "priority 0 as int 64"),
        ("priority-uint16", (0, 7), b"\xcd\x00\x05", msg(priority=5), "priority 5 as uint 16"),
        ("float32-payload", (1,), b"\xca\x3f\xc0\x00\x00", msg(payload=1.5), "payload 1.5 as float 32"),
        ("str16-type", (0, 2), b"\xda\x00\x07Request", base, "message_type as str 16"),
        (
            "map16-metadata",
            (2,),
            b"\xde\x00\x01\xa1k\x01",
            msg(metadata={"k": 1}),
            "metadata as map 16 of one entry",
        ),
    ):
        v.append(
            decode(
                f"codec-msgpack/noncanonical-{slug}",
                f"{why} is not the smallest form: a decoder may accept it (yielding the same message)",
                ["COD-101", "COD-103"],
                edit(pos, Raw(raw)),
                "acceptable",
                codec="msgpack",
                expected=expected,
                error="SERIALIZATION",
                flags=["nasty"],
            )
        )
    # invalid
    full = mp(bl)
    bad: list[tuple[str, Any, str, str, list[str]]] = [
        ("truncated-last-byte", full[:-1], "truncated by one byte", "SERIALIZATION", ["COD-105"]),
        ("truncated-in-header", full[:20], "truncated inside the header", "SERIALIZATION", ["COD-105"]),
        ("empty", b"", "empty input", "SERIALIZATION", ["COD-105"]),
        ("trailing-byte", full + b"\xc0", "a trailing nil after the message", "SERIALIZATION", ["COD-105"]),
        ("reserved-byte", b"\xc1", "the reserved byte 0xc1", "SERIALIZATION", ["COD-105"]),
        (
            "top-level-map",
            mp({"header": 1, "payload": None, "metadata": {}}),
            "a map at the top level",
            "SERIALIZATION",
            ["COD-105"],
        ),
        ("top-level-nil", b"\xc0", "nil at the top level", "SERIALIZATION", ["COD-105"]),
        ("message-array-4", mp([*bl, None]), "a message array of 4", "SERIALIZATION", ["COD-105"]),
        ("header-array-10", edit((0,), [*bl[0], 0]), "a header array of 10", "SERIALIZATION", ["COD-105"]),
        (
            "header-map",
            edit((0,), {"id": uuid_bytes(ID)}),
            "a header that is a map",
            "SERIALIZATION",
            ["COD-105"],
        ),
        ("id-str", edit((0, 0), ID), "an id that is the UUID's text", "UUID_PARSE", ["COD-105", "ENV-006"]),
        (
            "id-15-bytes",
            edit((0, 0), uuid_bytes(ID)[:15]),
            "an id of 15 bytes",
            "UUID_PARSE",
            ["COD-105", "ENV-006"],
        ),
        (
            "id-17-bytes",
            edit((0, 0), uuid_bytes(ID) + b"\x00"),
            "an id of 17 bytes",
            "UUID_PARSE",
            ["COD-105", "ENV-006"],
        ),
        ("id-nil", edit((0, 0), None), "a nil id", "UUID_PARSE", ["COD-105", "ENV-006", "ERR-003"]),
        (
            "correlation-id-15-bytes",
            edit((0, 1), uuid_bytes(CID)[:15]),
            "a correlation id of 15 bytes",
            "UUID_PARSE",
            ["COD-105", "ENV-006"],
        ),
        (
            "type-unknown",
            edit((0, 2), "Reply"),
            "an unknown message type",
            "INVALID_MESSAGE_TYPE",
            ["COD-105", "ENV-004"],
        ),
        (
            "type-bin",
            edit((0, 2), b"Request"),
            "a message type as bin",
            "SERIALIZATION",
            ["COD-105", "ERR-003"],
        ),
        (
            "type-int",
            edit((0, 2), 0),
            "a message type as an integer",
            "SERIALIZATION",
            ["COD-105", "ERR-003"],
        ),
        ("source-empty", edit((0, 3), ""), "an empty source", "INVALID_ENDPOINT_ID", ["COD-105", "ENV-005"]),
        (
            "target-int",
            edit((0, 4), 7),
            "a target that is an integer",
            "SERIALIZATION",
            ["COD-105", "ERR-003"],
        ),
        ("timestamp-str", edit((0, 5), TS), "a timestamp that is a string", "SERIALIZATION", ["COD-105"]),
        (
            "timestamp-int",
            edit((0, 5), 1766654301),
            "a timestamp that is an integer",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "timestamp-ext-length-5",
            edit((0, 5), Raw(b"\xc7\x05\xff" + b"\x00" * 5)),
            "a timestamp extension of length 5",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "timestamp-wrong-ext-type",
            edit((0, 5), Raw(b"\xd6\x01" + b"\x00" * 4)),
            "extension type 1 where the timestamp is",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "timestamp-ext-minus-2",
            edit((0, 5), Raw(b"\xd6\xfe" + b"\x00" * 4)),
            "extension type -2 where the timestamp is",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "timestamp64-nanos-1e9",
            edit((0, 5), Raw(b"\xd7\xff" + ((NS << 34) | 5).to_bytes(8, "big"))),
            "a timestamp 64 with nanoseconds 10^9",
            "SERIALIZATION",
            ["COD-105", "COD-102"],
        ),
        (
            "timestamp96-nanos-1e9",
            edit((0, 5), Raw(b"\xc7\x0c\xff" + NS.to_bytes(4, "big") + (5).to_bytes(8, "big"))),
            "a timestamp 96 with nanoseconds 10^9",
            "SERIALIZATION",
            ["COD-105", "COD-102"],
        ),
        (
            "ttl-map",
            edit((0, 6), {"secs": 1, "nanos": 0}),
            "a ttl that is a map",
            "SERIALIZATION",
            ["COD-105"],
        ),
        ("ttl-array-3", edit((0, 6), [1, 0, 0]), "a ttl array of 3", "SERIALIZATION", ["COD-105"]),
        (
            "ttl-negative-secs",
            edit((0, 6), [-1, 0]),
            "a ttl with secs -1",
            "SERIALIZATION",
            ["COD-105", "TTL-005"],
        ),
        (
            "ttl-float-secs",
            edit((0, 6), [1.0, 0]),
            "a ttl with secs 1.0",
            "SERIALIZATION",
            ["COD-105", "ERR-003"],
        ),
        ("priority-1001", edit((0, 7), 1001), "priority 1001", "INVALID_PRIORITY", ["PRI-002"]),
        (
            "priority-2-pow-32",
            edit((0, 7), 2**32),
            "priority 2^32",
            "INVALID_PRIORITY",
            ["PRI-002", "ERR-003"],
        ),
        (
            "priority-float",
            edit((0, 7), 1.0),
            "priority 1.0 (a float)",
            "SERIALIZATION",
            ["PRI-002", "ERR-003"],
        ),
        (
            "priority-str",
            edit((0, 7), "HIGH"),
            "priority 'HIGH' (a string)",
            "SERIALIZATION",
            ["PRI-002", "ERR-003"],
        ),
        (
            "version-major-65536",
            edit((0, 8), [65536, 0]),
            "version major 65536",
            "SERIALIZATION",
            ["VER-001", "ERR-003"],
        ),
        (
            "version-negative",
            edit((0, 8), [-1, 0]),
            "version major -1",
            "SERIALIZATION",
            ["VER-001", "ERR-003"],
        ),
        ("version-array-3", edit((0, 8), [1, 0, 0]), "a version array of 3", "SERIALIZATION", ["COD-105"]),
        (
            "version-map",
            edit((0, 8), {"major": 1, "minor": 0}),
            "a version that is a map",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "metadata-int-key",
            edit((2,), {1: "x"}),
            "a metadata map with an integer key",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "metadata-bin-key",
            edit((2,), {b"k": "x"}),
            "a metadata map with a bin key",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "metadata-bad-key",
            edit((2,), {"1bad": "x"}),
            "a metadata key starting with a digit",
            "INVALID_METADATA_KEY",
            ["COD-105", "ENV-009"],
        ),
        (
            "metadata-array",
            edit((2,), [["k", "v"]]),
            "metadata that is an array",
            "SERIALIZATION",
            ["COD-105"],
        ),
        ("metadata-nil", edit((2,), None), "metadata that is nil", "SERIALIZATION", ["COD-105"]),
        (
            "metadata-bin-value",
            edit((2,), {"k": b"\x00"}),
            "a bin metadata value",
            "SERIALIZATION",
            ["COD-105"],
        ),
        ("payload-bin", edit((1,), b"\x00\x01"), "a bin payload", "SERIALIZATION", ["COD-105"]),
        (
            "payload-nested-bin",
            edit((1,), {"a": [1, b"\x00"]}),
            "bin nested inside the payload",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "payload-ext-5",
            edit((1,), Raw(b"\xd4\x05\x00")),
            "an extension of type 5 in the payload",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "payload-timestamp-ext",
            edit((1,), Ts(0)),
            "a timestamp extension inside the payload",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "payload-int-key",
            edit((1,), {1: "x"}),
            "a payload map with an integer key",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "payload-nil-key",
            edit((1,), Raw(b"\x81\xc0\x01")),
            "a payload map with a nil key",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "payload-nan",
            edit((1,), Raw(b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00")),
            "a NaN payload (not in the JSON data model)",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "payload-infinity",
            edit((1,), Raw(b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00")),
            "an infinite payload",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "invalid-utf8-str",
            edit((1,), Raw(b"\xa2\xff\xfe")),
            "a str that is not UTF-8",
            "SERIALIZATION",
            ["COD-105"],
        ),
        (
            "response-without-correlation-id",
            edit((0, 2), "Response"),
            "a Response with a nil correlation id",
            "MISSING_FIELD",
            ["ENV-007"],
        ),
    ]
    for slug, data, why, code, reqs in bad:
        v.append(
            decode(
                f"codec-msgpack/invalid-{slug}",
                f"{why} is rejected with {code}",
                reqs,
                data,
                "invalid",
                codec="msgpack",
                error=code,
                flags=["nasty"],
            )
        )
    for slug, data, what in (
        ("header-array-8", edit((0,), bl[0][:8]), "a header array of 8 (version missing)"),
        ("message-array-2", bl[:2], "a message array of 2 (metadata missing)"),
        ("ttl-array-1", edit((0, 6), [30]), "a ttl array of 1 (nanos missing)"),
        ("version-array-1", edit((0, 8), [1]), "a version array of 1 (minor missing)"),
    ):
        v.append(
            decode(
                f"codec-msgpack/invalid-{slug}",
                f"{what}: a missing member is MISSING_FIELD (ERR-004); too long an array is SERIALIZATION",
                ["COD-105", "ERR-004"],
                data,
                "invalid",
                codec="msgpack",
                error="MISSING_FIELD",
            )
        )
    for slug, data, why, expected, code in (
        (
            "ttl-nanos-1e9",
            edit((0, 6), [30, NS]),
            "a ttl with nanos 10^9: rejected with SERIALIZATION or normalized to 31 s",
            msg(ttl=ttl(31, 0)),
            "SERIALIZATION",
        ),
        (
            "timestamp-year-10000",
            edit((0, 5), Ts(253402300800 * NS)),
            "a timestamp in year 10000, outside the JSON form's range",
            None,
            "SERIALIZATION",
        ),
        (
            "payload-depth-10000",
            edit((1,), Raw(b"\x91" * 10_000 + b"\xc0")),
            "a payload nested 10000 arrays deep",
            None,
            "SERIALIZATION",
        ),
    ):
        v.append(
            decode(
                f"codec-msgpack/{slug}",
                f"{why} may be accepted or rejected (then with {code})",
                ["COD-105", "TTL-007"] if slug.startswith("ttl") else ["COD-105", "ENV-014"],
                data,
                "acceptable",
                codec="msgpack",
                expected=expected,
                error=code,
                flags=["nasty"],
            )
        )
    return v


def priority() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []
    for p, flags in (
        (-1000, ["boundary"]),
        (1000, ["boundary"]),
        (0, []),
        (100, []),
        (-100, []),
        (999, []),
        (-7, []),
    ):
        name = f"minus-{-p}" if p < 0 else str(p)
        v.append(
            decode(
                f"priority/decode-{name}",
                f"priority {p} is in range",
                ["PRI-002"],
                msg(priority=p),
                flags=flags,
            )
        )
    for p in (-1001, 1001, 2**31, -(2**31) - 1, 2**31 - 1, 2**63 - 1, U64, -(2**63)):
        name = f"minus-{-p}" if p < 0 else str(p)
        v.append(
            decode(
                f"priority/decode-{name}",
                f"priority {p} is outside [-1000, 1000]",
                ["PRI-002", "ERR-003"],
                msg(priority=p),
                "invalid",
                error="INVALID_PRIORITY",
                flags=["boundary"],
            )
        )
    for slug, raw, blind in (
        ("1.5", "1.5", False),
        ("1.0", "1.0", True),
        ("1e2", "1e2", True),
        ("string-high", '"high"', False),
        ("string-number", '"100"', False),
        ("true", "true", False),
        ("null", "null", False),
        ("array", "[0]", False),
    ):
        v.append(
            decode(
                f"priority/decode-{slug}",
                f"priority {raw} is not an integer: a serialization error",
                ["PRI-002", "ERR-003"],
                RUST_REQUEST.replace('"priority":0', f'"priority":{raw}'),
                "invalid",
                error="SERIALIZATION",
                flags=["schema-blind"] if blind else [],
            )
        )
    v.append(
        decode(
            "priority/decode-minus-zero",
            "priority -0 is the integer 0 to some parsers and the double -0.0 to others (serde_json)",
            ["PRI-002"],
            RUST_REQUEST.replace('"priority":0', '"priority":-0'),
            "acceptable",
            expected=msg(),
            error="SERIALIZATION",
            flags=["nasty"],
        )
    )
    # build
    rst = {"message_type": "Request", "source": "conductor", "target": "pool-manager"}
    for p in (1000, -1000, 100, -100, 1):
        name = f"minus-{-p}" if p < 0 else str(p)
        v.append(
            build(
                f"priority/build-{name}",
                f"the builder takes priority {p}",
                ["PRI-002", "PRI-001"] if abs(p) in (1000, 100) else ["PRI-002"],
                {**rst, "priority": p},
                match=_built(priority=p),
            )
        )
    for p in (1001, -1001, 2**31 - 1):
        name = f"minus-{-p}" if p < 0 else str(p)
        v.append(
            build(
                f"priority/build-{name}",
                f"the builder rejects priority {p}",
                ["PRI-002"],
                {**rst, "priority": p},
                "invalid",
                error="INVALID_PRIORITY",
            )
        )
    v.append(
        build(
            "priority/build-default",
            "a message whose priority was not set has priority NORMAL (0)",
            ["PRI-005"],
            dict(rst),
            match=_built(priority=0),
        )
    )

    # order
    def ordered(vid: str, description: str, reqs: list[str], prios: list[int], **kw: Any) -> dict[str, Any]:
        msgs = []
        for i, p in enumerate(prios):
            m = msg(id=f"00000000-0000-4000-8000-{i:012x}", priority=p, payload=i)
            for key, values in kw.items():
                m["header"][key] = values[i]
            msgs.append(m)
        expected = sorted(range(len(prios)), key=lambda i: (-prios[i], i))
        return vec(
            f"priority/order-{vid}",
            description,
            reqs,
            "order",
            "valid",
            {"messages": msgs},
            expected={"order": expected},
        )

    v += [
        ordered("mixed", "highest priority first", ["PRI-003", "PRI-004"], [0, 1000, -100, 100, -1000, 7]),
        ordered("fifo-equal", "equal priorities keep arrival order", ["PRI-004"], [0, 0, 0, 0, 0]),
        ordered("all-critical", "all CRITICAL: arrival order", ["PRI-004", "PRI-001"], [1000] * 4),
        ordered("already-sorted", "already in processing order", ["PRI-003"], [1000, 100, 0, -100, -1000]),
        ordered("reverse", "arrived lowest first", ["PRI-003"], [-1000, -100, 0, 100, 1000]),
        ordered(
            "named-levels",
            "the named levels in mixed arrival order",
            ["PRI-001", "PRI-003"],
            [0, -1000, 1000, -100, 100],
        ),
        ordered(
            "ties-interleaved",
            "ties interleaved with other levels stay FIFO",
            ["PRI-003", "PRI-004"],
            [0, 100, 0, 100, -100, 100, 0],
        ),
        ordered("single", "one message", ["PRI-003"], [5]),
        ordered("empty", "no messages", ["PRI-003"], []),
        ordered(
            "adjacent-levels",
            "custom levels one apart",
            ["PRI-002", "PRI-003"],
            [1, -1, 0, 999, -999, 1000, -1000],
        ),
        ordered(
            "fifo-not-timestamp",
            "equal priorities are processed in arrival order, not timestamp order",
            ["PRI-004"],
            [50, 50, 50],
            timestamp=["2025-12-25T09:18:23Z", "2025-12-25T09:18:22Z", "2025-12-25T09:18:21Z"],
        ),
        ordered(
            "fifo-not-id",
            "equal priorities are processed in arrival order, not id order",
            ["PRI-004"],
            [0, 0, 0],
            id=[
                "ffffffff-0000-4000-8000-000000000000",
                "88888888-0000-4000-8000-000000000000",
                "00000000-0000-4000-8000-000000000001",
            ],
        ),
        ordered(
            "ttl-does-not-matter",
            "a ttl does not change the order",
            ["PRI-003", "PRI-004"],
            [0, 0, 100],
            ttl=[ttl(0, 1), None, ttl(U64, 0)],
        ),
        ordered(
            "type-does-not-matter",
            "the message type does not change the order",
            ["PRI-003", "PRI-004"],
            [0, 0, 0, 10],
            message_type=["Heartbeat", "Error", "Event", "Request"],
        ),
        ordered(
            "many",
            "20 messages over 4 levels",
            ["PRI-003", "PRI-004"],
            [(i * 7) % 4 * 100 - 100 for i in range(20)],
        ),
    ]
    return v


def ttl_area() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []
    for slug, value, reqs, flags in (
        ("null", None, ["TTL-001"], []),
        ("zero", ttl(0, 0), ["TTL-007"], ["boundary"]),
        ("nanos-max", ttl(30, 999_999_999), ["TTL-007"], ["boundary"]),
        ("secs-u64-max", ttl(U64, 0), ["TTL-005"], ["boundary"]),
        ("u64-max-and-nanos-max", ttl(U64, 999_999_999), ["TTL-005", "TTL-007"], ["boundary"]),
        ("one-nanosecond", ttl(0, 1), ["TTL-007"], []),
    ):
        v.append(
            decode(
                f"ttl/decode-{slug}",
                f"ttl {json.dumps(value)} is valid",
                reqs,
                msg(ttl=value),
                flags=["encode-golden", *flags],
            )
        )
    for slug, raw, why, reqs in (
        ("nanos-minus-1", '{"secs":30,"nanos":-1}', "negative nanos", ["TTL-007", "ERR-003"]),
        ("secs-minus-1", '{"secs":-1,"nanos":0}', "negative secs", ["TTL-005", "ERR-003"]),
        (
            "secs-2-pow-64",
            '{"secs":18446744073709551616,"nanos":0}',
            "secs 2^64, beyond u64",
            ["TTL-005", "ERR-003"],
        ),
        ("nanos-2-pow-32", '{"secs":0,"nanos":4294967296}', "nanos 2^32, beyond u32", ["TTL-007", "ERR-003"]),
        ("secs-float", '{"secs":1.5,"nanos":0}', "secs 1.5", ["ERR-003"]),
        ("secs-string", '{"secs":"30","nanos":0}', "secs as a string", ["ERR-003"]),
        ("number", "30", "a ttl that is a number", ["ERR-003"]),
        ("string", '"30s"', "a ttl that is a string", ["ERR-003"]),
        ("array", "[30,0]", "a ttl that is an array", ["ERR-003"]),
        ("boolean", "false", "a ttl that is a boolean", ["ERR-003"]),
    ):
        v.append(
            decode(
                f"ttl/decode-{slug}",
                f"{why} is a serialization error",
                reqs,
                RUST_REQUEST.replace('"ttl":null', f'"ttl":{raw}'),
                "invalid",
                error="SERIALIZATION",
                flags=["boundary"],
            )
        )
    v.append(
        decode(
            "ttl/decode-secs-float-integral",
            "secs 30.0 is a float, not an integer: a serialization error",
            ["ERR-003"],
            RUST_REQUEST.replace('"ttl":null', '"ttl":{"secs":30.0,"nanos":0}'),
            "invalid",
            error="SERIALIZATION",
            flags=["schema-blind"],
        )
    )
    for slug, raw, field in (
        ("missing-nanos", '{"secs":30}', "nanos"),
        ("missing-secs", '{"nanos":0}', "secs"),
        ("empty-object", "{}", "secs"),
    ):
        v.append(
            decode(
                f"ttl/decode-{slug}",
                f"a ttl object without {'members' if slug == 'empty-object' else field} is MISSING_FIELD",
                ["ERR-004"],
                RUST_REQUEST.replace('"ttl":null', f'"ttl":{raw}'),
                "invalid",
                error="MISSING_FIELD",
                error_field=field,
            )
        )
    v.append(
        decode(
            "ttl/decode-nanos-1e9",
            "nanos 10^9: rejected with SERIALIZATION, or normalized into secs (the crate does)",
            ["TTL-007"],
            RUST_REQUEST.replace('"ttl":null', '"ttl":{"secs":30,"nanos":1000000000}'),
            "acceptable",
            expected=msg(ttl=ttl(31, 0)),
            error="SERIALIZATION",
            flags=["boundary", "nasty"],
        )
    )
    v.append(
        decode(
            "ttl/decode-unknown-member",
            "an unknown member inside ttl may be ignored",
            ["VER-005"],
            RUST_REQUEST.replace('"ttl":null', '"ttl":{"secs":30,"nanos":0,"millis":5}'),
            "acceptable",
            expected=msg(ttl=ttl(30, 0)),
            error="SERIALIZATION",
        )
    )

    # expiry
    def expiry(
        vid: str, description: str, reqs: list[str], m: dict[str, Any], now: str, expired: bool
    ) -> dict[str, Any]:
        return vec(
            f"ttl/expiry-{vid}",
            description,
            reqs,
            "expiry",
            "valid",
            {"message": m, "now": now},
            expected={"expired": expired},
        )

    t30 = msg(ttl=ttl(30, 500_000_000))
    at = ts_add(TS, 30 * NS + 500_000_000)
    v += [
        expiry(
            "null-far-future",
            "no ttl: never expires, even in year 9999",
            ["TTL-001"],
            msg(),
            "9999-12-31T23:59:59.999999999Z",
            False,
        ),
        expiry("null-at-timestamp", "no ttl, now = timestamp", ["TTL-001"], msg(), TS, False),
        expiry("before", "10 s into a 30.5 s ttl", ["TTL-002"], t30, ts_add(TS, 10 * NS), False),
        expiry("exactly-ttl", "age exactly equal to the ttl is not yet expired", ["TTL-002"], t30, at, False),
        expiry(
            "ttl-plus-1ns",
            "age one nanosecond over the ttl is expired",
            ["TTL-002"],
            t30,
            ts_add(at, 1),
            True,
        ),
        expiry(
            "ttl-minus-1ns",
            "age one nanosecond under the ttl is not expired",
            ["TTL-002"],
            t30,
            ts_add(at, -1),
            False,
        ),
        expiry(
            "ttl-plus-1s",
            "one second after expiry: still expired (monotonic)",
            ["TTL-003"],
            t30,
            ts_add(at, NS),
            True,
        ),
        expiry(
            "ttl-plus-1-year",
            "a year after expiry: still expired (monotonic)",
            ["TTL-003"],
            t30,
            "2026-12-25T09:18:21Z",
            True,
        ),
        expiry(
            "far-future",
            "in year 9999: still expired (monotonic)",
            ["TTL-003", "TTL-002"],
            t30,
            "9999-12-31T23:59:59.999999999Z",
            True,
        ),
        expiry(
            "zero-at-timestamp",
            "a zero ttl at now = timestamp is not expired",
            ["TTL-007", "TTL-002"],
            msg(ttl=ttl(0, 0)),
            TS,
            False,
        ),
        expiry(
            "zero-plus-1ns",
            "a zero ttl expires one nanosecond after the timestamp",
            ["TTL-007", "TTL-002"],
            msg(ttl=ttl(0, 0)),
            ts_add(TS, 1),
            True,
        ),
        expiry(
            "future-timestamp",
            "a timestamp an hour after now (clock skew): negative age, not expired",
            ["TTL-004"],
            msg(ttl=ttl(0, 0)),
            ts_add(TS, -3600 * NS),
            False,
        ),
        expiry(
            "future-timestamp-1ns",
            "a timestamp 1 ns after now with a zero ttl: not expired",
            ["TTL-004"],
            msg(ttl=ttl(0, 0)),
            ts_add(TS, -1),
            False,
        ),
        expiry(
            "huge-ttl",
            "ttl secs u64 max from year 0001: never expires, no overflow",
            ["TTL-005"],
            msg(timestamp="0001-01-01T00:00:00Z", ttl=ttl(U64, 999_999_999)),
            "9999-12-31T23:59:59.999999999Z",
            False,
        ),
        expiry(
            "huge-ttl-late-timestamp",
            "ttl secs u64 max from year 9999: timestamp + ttl overflows i64 ns and u64 s; not expired",
            ["TTL-005"],
            msg(timestamp="9999-12-31T23:59:59.999999999Z", ttl=ttl(U64, 999_999_999)),
            "9999-12-31T23:59:59.999999999Z",
            False,
        ),
        expiry(
            "i64-nanosecond-overflow",
            "ttl 2^63 / 10^9 + 1 s: the ttl in ns overflows i64, not expired",
            ["TTL-005"],
            msg(ttl=ttl(9_223_372_037, 0)),
            "2100-01-01T00:00:00Z",
            False,
        ),
        expiry(
            "large-ttl-expired",
            "a 100-year ttl, 101 years later: expired",
            ["TTL-002", "TTL-005"],
            msg(timestamp="1900-01-01T00:00:00Z", ttl=ttl(100 * 365 * 86400 + 24 * 86400, 0)),
            "2001-01-01T00:00:00Z",
            True,
        ),
        expiry(
            "nanos-carry-exactly",
            "timestamp .999999999 + 1 ns ttl, now the next whole second: exactly the ttl",
            ["TTL-002"],
            msg(timestamp="2025-12-25T09:18:21.999999999Z", ttl=ttl(0, 1)),
            "2025-12-25T09:18:22Z",
            False,
        ),
        expiry(
            "nanos-carry-over",
            "timestamp .999999999 + 1 ns ttl, 1 ns after the next whole second: expired",
            ["TTL-002"],
            msg(timestamp="2025-12-25T09:18:21.999999999Z", ttl=ttl(0, 1)),
            "2025-12-25T09:18:22.000000001Z",
            True,
        ),
        expiry(
            "before-epoch-exactly",
            "a timestamp before the epoch, age exactly the ttl across the epoch",
            ["TTL-002"],
            msg(timestamp="1969-12-31T23:59:59.500Z", ttl=ttl(1, 0)),
            "1970-01-01T00:00:00.500Z",
            False,
        ),
        expiry(
            "before-epoch-over",
            "a timestamp before the epoch, 1 ns over the ttl",
            ["TTL-002"],
            msg(timestamp="1969-12-31T23:59:59.500Z", ttl=ttl(1, 0)),
            "1970-01-01T00:00:00.500000001Z",
            True,
        ),
        expiry(
            "year-0001-expired",
            "a message from year 0001 with a one-day ttl, now in 2025",
            ["TTL-002"],
            msg(timestamp="0001-01-01T00:00:00Z", ttl=ttl(86400, 0)),
            TS,
            True,
        ),
        expiry(
            "nanos-only-ttl",
            "a 999999999 ns ttl at exactly its age",
            ["TTL-002", "TTL-007"],
            msg(ttl=ttl(0, 999_999_999)),
            ts_add(TS, 999_999_999),
            False,
        ),
        expiry(
            "nanos-only-ttl-over",
            "a 999999999 ns ttl 1 ns over",
            ["TTL-002", "TTL-007"],
            msg(ttl=ttl(0, 999_999_999)),
            ts_add(TS, NS),
            True,
        ),
    ]
    # receive
    v += [
        receive(
            "ttl/receive-not-expired",
            "a receiver accepts a message 10 s into a 30.5 s ttl",
            ["TTL-006", "TTL-002"],
            t30,
            ts_add(TS, 10 * NS),
        ),
        receive(
            "ttl/receive-exactly-ttl",
            "a receiver accepts a message whose age is exactly its ttl",
            ["TTL-006", "TTL-002"],
            t30,
            at,
            flags=["boundary"],
        ),
        receive(
            "ttl/receive-ttl-plus-1ns",
            "a receiver rejects a message 1 ns past its ttl",
            ["TTL-006", "TTL-002"],
            t30,
            ts_add(at, 1),
            "invalid",
            error="TTL_EXPIRED",
            flags=["boundary"],
        ),
        receive(
            "ttl/receive-long-expired",
            "a receiver rejects a message expired a day ago",
            ["TTL-006"],
            t30,
            ts_add(at, 86400 * NS),
            "invalid",
            error="TTL_EXPIRED",
        ),
        receive(
            "ttl/receive-null-ttl",
            "a message without ttl is never expired on receipt",
            ["TTL-001", "TTL-006"],
            msg(),
            "9999-12-31T23:59:59.999999999Z",
        ),
        receive(
            "ttl/receive-future-timestamp",
            "a receiver whose clock is behind the sender's accepts the message",
            ["TTL-004", "TTL-006"],
            msg(ttl=ttl(0, 0)),
            ts_add(TS, -60 * NS),
        ),
        receive(
            "ttl/receive-huge-ttl",
            "ttl secs u64 max never expires on receipt",
            ["TTL-005", "TTL-006"],
            msg(timestamp="0001-01-01T00:00:00Z", ttl=ttl(U64, 0)),
            "9999-12-31T23:59:59.999999999Z",
        ),
        receive(
            "ttl/receive-zero-ttl-same-instant",
            "a zero ttl received at its own timestamp is accepted",
            ["TTL-006", "TTL-007"],
            msg(ttl=ttl(0, 0)),
            TS,
        ),
        receive(
            "ttl/receive-zero-ttl-1ns-later",
            "a zero ttl received 1 ns later is expired",
            ["TTL-006", "TTL-007"],
            msg(ttl=ttl(0, 0)),
            ts_add(TS, 1),
            "invalid",
            error="TTL_EXPIRED",
        ),
        receive(
            "ttl/receive-msgpack-expired",
            "a MessagePack message past its ttl is rejected",
            ["TTL-006"],
            t30,
            ts_add(at, 1),
            "invalid",
            codec="msgpack",
            error="TTL_EXPIRED",
        ),
        receive(
            "ttl/receive-msgpack-not-expired",
            "a MessagePack message at exactly its ttl is accepted",
            ["TTL-006", "TTL-002"],
            t30,
            at,
            codec="msgpack",
        ),
    ]
    return v


def versioning() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []

    def compat(
        a: tuple[int, int], b: tuple[int, int], expected: bool, reqs: list[str] | None = None
    ) -> dict[str, Any]:
        return vec(
            f"versioning/compatible-{a[0]}.{a[1]}-{b[0]}.{b[1]}",
            f"{a[0]}.{a[1]} and {b[0]}.{b[1]} are {'compatible' if expected else 'not compatible'}",
            reqs or ["VER-002"],
            "compatible",
            "valid",
            {"a": ver(*a), "b": ver(*b)},
            expected={"compatible": expected},
        )

    v += [
        compat((1, 0), (1, 0), True, ["VER-002", "VER-001"]),
        compat((1, 0), (1, 9), True),
        compat((1, 9), (1, 0), True),
        compat((1, 65535), (1, 0), True),
        compat((1, 0), (2, 0), False),
        compat((2, 5), (1, 5), False),
        compat((0, 9), (1, 0), False),
        compat((0, 0), (0, 1), True),
        compat((65535, 0), (65535, 65535), True),
        compat((65535, 0), (0, 0), False),
        compat((1, 0), (65535, 0), False),
        compat((2, 3), (2, 0), True),
    ]
    for slug, version, flags in (
        ("2.0", ver(2, 0), []),
        ("0.0", ver(0, 0), ["boundary"]),
        ("0.9", ver(0, 9), []),
        ("1.65535", ver(1, 65535), ["boundary"]),
        ("65535.65535", ver(65535, 65535), ["boundary"]),
    ):
        v.append(
            decode(
                f"versioning/decode-{slug}",
                f"decoding a message of version {slug} succeeds (refusing it is the receiver's job)",
                ["VER-003", "VER-001", "COD-002"],
                msg(version=version),
                flags=["encode-golden", *flags],
            )
        )
    for slug, raw, why in (
        ("major-65536", '{"major":65536,"minor":0}', "major 65536, beyond u16"),
        ("minor-65536", '{"major":1,"minor":65536}', "minor 65536, beyond u16"),
        ("major-minus-1", '{"major":-1,"minor":0}', "major -1"),
        ("major-float", '{"major":1.5,"minor":0}', "major 1.5"),
        ("string", '"1.0"', "a version that is a string"),
        ("array", "[1,0]", "a version that is an array"),
        ("null", "null", "a null version"),
        ("number", "1", "a version that is a number"),
    ):
        v.append(
            decode(
                f"versioning/decode-{slug}",
                f"{why} is a serialization error",
                ["VER-001", "ERR-003"],
                RUST_REQUEST.replace('"version":{"major":1,"minor":0}', f'"version":{raw}'),
                "invalid",
                error="SERIALIZATION",
                flags=["boundary"],
            )
        )
    for slug, raw, field in (
        ("missing-minor", '{"major":1}', "minor"),
        ("missing-major", '{"minor":0}', "major"),
    ):
        v.append(
            decode(
                f"versioning/decode-{slug}",
                f"a version without {field} is MISSING_FIELD",
                ["ERR-004", "VER-001"],
                RUST_REQUEST.replace('"version":{"major":1,"minor":0}', f'"version":{raw}'),
                "invalid",
                error="MISSING_FIELD",
                error_field=field,
            )
        )
    # unknown members (VER-005)
    v += [
        decode(
            "versioning/unknown-header-member",
            "an unknown header member is ignored and not carried over",
            ["VER-005"],
            msg(extra_header={"route": "fast", "hops": [1, 2]}),
            expected=msg(),
        ),
        decode(
            "versioning/unknown-message-member",
            "an unknown top-level member is ignored and not carried over",
            ["VER-005"],
            msg(extra={"signature": "c2lnbmF0dXJl", "trace": {"span": 7}}),
            expected=msg(),
        ),
        decode(
            "versioning/unknown-members-everywhere",
            "unknown members in the message and header, from a later minor (1.4)",
            ["VER-005", "VER-003"],
            msg(version=ver(1, 4), extra_header={"deadline": None, "z": {}}, extra={"a": [], "zz": False}),
            expected=msg(version=ver(1, 4)),
        ),
        decode(
            "versioning/unknown-member-named-like-metadata",
            "an unknown header member whose name is not a valid metadata key is still just ignored",
            ["VER-005"],
            msg(extra_header={"1 weird name!": 1, "": 2}),
            expected=msg(),
            flags=["nasty"],
        ),
        decode(
            "versioning/unknown-member-in-version",
            "an unknown member inside version may be ignored",
            ["VER-005"],
            msg(version={"major": 1, "minor": 2, "patch": 3}),
            "acceptable",
            expected=msg(version=ver(1, 2)),
            error="SERIALIZATION",
        ),
    ]
    # receive
    heartbeat = json.loads(RUST_HEARTBEAT)
    now = "2025-12-25T09:18:22Z"
    v += [
        receive(
            "versioning/receive-1.0-at-1.0", "a receiver accepts its own version", ["VER-004"], msg(), now
        ),
        receive(
            "versioning/receive-1.7-at-1.0",
            "a receiver at 1.0 accepts 1.7 (higher minor)",
            ["VER-004"],
            msg(version=ver(1, 7)),
            now,
        ),
        receive(
            "versioning/receive-1.0-at-1.7",
            "a receiver at 1.7 accepts 1.0 (lower minor)",
            ["VER-004"],
            msg(),
            now,
            receiver=(1, 7),
        ),
        receive(
            "versioning/receive-1.65535-at-1.0",
            "a receiver at 1.0 accepts minor 65535",
            ["VER-004"],
            msg(version=ver(1, 65535)),
            now,
            flags=["boundary"],
        ),
        receive(
            "versioning/receive-0.9-at-1.0",
            "a receiver at 1.0 rejects 0.9",
            ["VER-003"],
            msg(version=ver(0, 9)),
            now,
            "invalid",
            error="INVALID_PROTOCOL_VERSION",
        ),
        receive(
            "versioning/receive-2.0-at-1.0",
            "a receiver at 1.0 rejects 2.0",
            ["VER-003"],
            msg(version=ver(2, 0)),
            now,
            "invalid",
            error="INVALID_PROTOCOL_VERSION",
        ),
        receive(
            "versioning/receive-65535.0-at-1.0",
            "a receiver at 1.0 rejects 65535.0",
            ["VER-003"],
            msg(version=ver(65535, 0)),
            now,
            "invalid",
            error="INVALID_PROTOCOL_VERSION",
            flags=["boundary"],
        ),
        receive(
            "versioning/receive-1.0-at-2.0",
            "a receiver at 2.0 rejects 1.0",
            ["VER-003"],
            msg(),
            now,
            "invalid",
            receiver=(2, 0),
            error="INVALID_PROTOCOL_VERSION",
        ),
        receive(
            "versioning/receive-rust-heartbeat-at-1.0",
            "the crate's 2.3 Heartbeat decodes, but a 1.0 receiver rejects it",
            ["VER-003"],
            RUST_HEARTBEAT,
            now,
            "invalid",
            error="INVALID_PROTOCOL_VERSION",
            flags=["from-rust-crate"],
        ),
        receive(
            "versioning/receive-rust-heartbeat-at-2.0",
            "a 2.0 receiver accepts the crate's 2.3 Heartbeat",
            ["VER-004"],
            RUST_HEARTBEAT,
            now,
            receiver=(2, 0),
            flags=["from-rust-crate"],
        ),
        receive(
            "versioning/receive-msgpack-2.0-at-1.0",
            "a receiver at 1.0 rejects a MessagePack message of 2.0",
            ["VER-003"],
            msg(version=ver(2, 0)),
            now,
            "invalid",
            codec="msgpack",
            error="INVALID_PROTOCOL_VERSION",
        ),
        receive(
            "versioning/receive-msgpack-heartbeat-at-2.1",
            "a receiver at 2.1 accepts a MessagePack 2.3 Heartbeat",
            ["VER-004"],
            heartbeat,
            now,
            receiver=(2, 1),
            codec="msgpack",
        ),
    ]
    return v


def errors() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []
    now = "2025-12-25T09:18:22Z"
    expired = msg(ttl=ttl(0, 0))
    # one vector per code, for ERR-001 (the harness checks category and recoverable when reported)
    v += [
        decode(
            "errors/code-invalid-message-type",
            "INVALID_MESSAGE_TYPE: category validation, recoverable",
            ["ERR-001", "ENV-004"],
            msg(message_type="Notify"),
            "invalid",
            error="INVALID_MESSAGE_TYPE",
        ),
        decode(
            "errors/code-missing-field",
            "MISSING_FIELD: category validation, recoverable",
            ["ERR-001", "ERR-004"],
            msg(target=DROP),
            "invalid",
            error="MISSING_FIELD",
            error_field="target",
        ),
        decode(
            "errors/code-invalid-endpoint-id",
            "INVALID_ENDPOINT_ID: category validation, recoverable",
            ["ERR-001", "ENV-005"],
            msg(target="a b"),
            "invalid",
            error="INVALID_ENDPOINT_ID",
        ),
        decode(
            "errors/code-invalid-priority",
            "INVALID_PRIORITY: category validation, recoverable",
            ["ERR-001", "PRI-002"],
            msg(priority=5000),
            "invalid",
            error="INVALID_PRIORITY",
        ),
        receive(
            "errors/code-ttl-expired",
            "TTL_EXPIRED: category expiry, recoverable",
            ["ERR-001", "TTL-006"],
            expired,
            now,
            "invalid",
            error="TTL_EXPIRED",
        ),
        receive(
            "errors/code-invalid-protocol-version",
            "INVALID_PROTOCOL_VERSION: category version, not recoverable",
            ["ERR-001", "VER-003"],
            msg(version=ver(3, 0)),
            now,
            "invalid",
            error="INVALID_PROTOCOL_VERSION",
        ),
        decode(
            "errors/code-invalid-metadata-key",
            "INVALID_METADATA_KEY: category validation, recoverable",
            ["ERR-001", "ENV-009"],
            msg(metadata={"a b": 1}),
            "invalid",
            error="INVALID_METADATA_KEY",
        ),
        decode(
            "errors/code-serialization",
            "SERIALIZATION: category serialization, recoverable",
            ["ERR-001", "COD-004"],
            "{",
            "invalid",
            error="SERIALIZATION",
        ),
        decode(
            "errors/code-uuid-parse",
            "UUID_PARSE: category serialization, recoverable",
            ["ERR-001", "ENV-006"],
            msg(id="xyz"),
            "invalid",
            error="UUID_PARSE",
        ),
    ]
    # missing members (ERR-004, ENV-001)
    for member in ("header", "payload", "metadata"):
        v.append(
            decode(
                f"errors/missing-{member}",
                f"a message without {member} is MISSING_FIELD naming {member}",
                ["ERR-004", "ENV-001"],
                msg(**{member: DROP}),
                "invalid",
                error="MISSING_FIELD",
                error_field=member,
            )
        )
    for member in ("id", "message_type", "source", "target", "timestamp", "priority", "version"):
        v.append(
            decode(
                f"errors/missing-{member.replace('_', '-')}",
                f"a header without {member} is MISSING_FIELD naming {member}",
                ["ERR-004", "ENV-001"],
                msg(**{member: DROP}),
                "invalid",
                error="MISSING_FIELD",
                error_field=member,
            )
        )
    v.append(
        decode(
            "errors/header-empty-object",
            "an empty header reports its first member, id",
            ["ERR-004", "ERR-002"],
            msg(header={}),
            "invalid",
            error="MISSING_FIELD",
            error_field="id",
            flags=["multiple-faults"],
        )
    )
    for slug, value in (("array", []), ("null", None), ("string", "header")):
        v.append(
            decode(
                f"errors/header-{slug}",
                f"a header that is not an object ({slug}) is a serialization error",
                ["ERR-003"],
                msg(header=value),
                "invalid",
                error="SERIALIZATION",
            )
        )
    # several faults (ERR-002): first size, bytes, members in wire order, cross-member, receiver
    multi: list[tuple[str, Any, str, str]] = [
        (
            "bad-id-and-bad-type",
            msg(id="nope", message_type="Reply"),
            "UUID_PARSE",
            "id comes before message_type",
        ),
        (
            "bad-correlation-and-bad-type",
            msg(correlation_id="nope", message_type="Reply"),
            "UUID_PARSE",
            "correlation_id comes before message_type",
        ),
        (
            "bad-type-and-bad-source",
            msg(message_type="Reply", source=""),
            "INVALID_MESSAGE_TYPE",
            "message_type comes before source",
        ),
        (
            "bad-type-and-missing-source",
            msg(message_type="Reply", source=DROP),
            "INVALID_MESSAGE_TYPE",
            "message_type comes before source",
        ),
        (
            "bad-source-and-bad-timestamp",
            msg(source="a b", timestamp="2025-13-01T00:00:00Z"),
            "INVALID_ENDPOINT_ID",
            "source comes before timestamp",
        ),
        (
            "bad-target-and-bad-priority",
            msg(target="", priority=5000),
            "INVALID_ENDPOINT_ID",
            "target comes before priority",
        ),
        (
            "bad-timestamp-and-bad-priority",
            msg(timestamp="yesterday", priority=5000),
            "SERIALIZATION",
            "timestamp comes before priority",
        ),
        (
            "bad-ttl-and-bad-priority",
            msg(ttl=ttl(-1, 0), priority=5000),
            "SERIALIZATION",
            "ttl comes before priority",
        ),
        (
            "bad-priority-and-bad-version",
            msg(priority=5000, version=ver(70000, 0)),
            "INVALID_PRIORITY",
            "priority comes before version",
        ),
        (
            "bad-version-and-bad-metadata-key",
            msg(version=ver(70000, 0), metadata={"bad key": 1}),
            "SERIALIZATION",
            "version comes before metadata",
        ),
        (
            "missing-source-and-bad-priority",
            msg(source=DROP, priority=5000),
            "MISSING_FIELD",
            "source comes before priority",
        ),
        (
            "bad-source-and-missing-priority",
            msg(source="a b", priority=DROP),
            "INVALID_ENDPOINT_ID",
            "source comes before priority",
        ),
        (
            "missing-id-and-bad-type",
            msg(id=DROP, message_type="Reply"),
            "MISSING_FIELD",
            "id comes before message_type",
        ),
        (
            "bad-metadata-key-and-response-rule",
            msg(message_type="Response", metadata={"bad key": 1}),
            "INVALID_METADATA_KEY",
            "members come before the Response rule (ENV-007)",
        ),
        (
            "bad-priority-and-response-rule",
            msg(message_type="Response", priority=-5000),
            "INVALID_PRIORITY",
            "members come before the Response rule (ENV-007)",
        ),
    ]
    for slug, m, code, why in multi:
        v.append(
            decode(
                f"errors/order-{slug}",
                f"several faults: {why}, so {code}",
                ["ERR-002"],
                m,
                "invalid",
                error=code,
                error_field=("id" if slug.startswith("missing-id") else "source")
                if code == "MISSING_FIELD"
                else None,
                flags=["multiple-faults"],
            )
        )
    v.append(
        decode(
            "errors/order-malformed-and-bad-id",
            "several faults: bytes that are not JSON come before any member, so SERIALIZATION",
            ["ERR-002", "COD-004"],
            jtxt(msg(id="nope")) + "}",
            "invalid",
            error="SERIALIZATION",
            flags=["multiple-faults"],
        )
    )
    v.append(
        decode(
            "errors/order-msgpack-trailing-and-bad-id",
            "several faults in MessagePack: a trailing byte makes the bytes malformed before the 15-byte id",
            ["ERR-002", "COD-105"],
            mp(
                [
                    [
                        uuid_bytes(ID)[:15],
                        None,
                        "Request",
                        "conductor",
                        "pool-manager",
                        Ts(0),
                        None,
                        0,
                        [1, 0],
                    ],
                    None,
                    {},
                ]
            )
            + b"\x00",
            "invalid",
            codec="msgpack",
            error="SERIALIZATION",
            flags=["multiple-faults"],
        )
    )
    v.append(
        decode(
            "errors/order-msgpack-bad-type-and-bad-priority",
            "several faults in MessagePack: message_type comes before priority",
            ["ERR-002", "COD-105"],
            mp(
                [
                    [uuid_bytes(ID), None, "Reply", "conductor", "pool-manager", Ts(0), None, 5000, [1, 0]],
                    None,
                    {},
                ]
            ),
            "invalid",
            codec="msgpack",
            error="INVALID_MESSAGE_TYPE",
            flags=["multiple-faults"],
        )
    )
    v += [
        receive(
            "errors/order-receive-version-before-ttl",
            "a receiver checks the version before the ttl",
            ["ERR-002", "VER-003", "TTL-006"],
            msg(version=ver(2, 0), ttl=ttl(0, 0)),
            now,
            "invalid",
            error="INVALID_PROTOCOL_VERSION",
            flags=["multiple-faults"],
        ),
        receive(
            "errors/order-receive-decode-before-version",
            "decoding faults come before the receiver's checks",
            ["ERR-002", "VER-003"],
            msg(version=ver(2, 0), source="a b"),
            now,
            "invalid",
            error="INVALID_ENDPOINT_ID",
            flags=["multiple-faults"],
        ),
        receive(
            "errors/order-receive-response-rule-before-ttl",
            "the Response rule comes before the ttl check",
            ["ERR-002", "ENV-007", "TTL-006"],
            msg(message_type="Response", ttl=ttl(0, 0)),
            now,
            "invalid",
            error="MISSING_FIELD",
            flags=["multiple-faults"],
        ),
    ]
    # wrong types (ERR-003)
    for slug, m, code in (
        ("correlation-id-bool", msg(correlation_id=True), "UUID_PARSE"),
        ("id-array", msg(id=[ID]), "UUID_PARSE"),
        ("metadata-bool", msg(metadata=True), "SERIALIZATION"),
        ("ttl-string", msg(ttl="30"), "SERIALIZATION"),
        ("priority-object", msg(priority={"level": 1}), "SERIALIZATION"),
        ("message-type-object", msg(message_type={"Request": None}), "SERIALIZATION"),
    ):
        v.append(
            decode(
                f"errors/type-{slug}",
                f"a member of the wrong JSON type is {code}",
                ["ERR-003"],
                m,
                "invalid",
                error=code,
            )
        )
    return v


AREAS: dict[str, tuple[str, Callable[[], list[dict[str, Any]]]]] = {
    "envelope": (
        "The data model: message types, ids, endpoints, metadata, payload, nesting, the builder.",
        envelope,
    ),
    "codec-json": (
        "The JSON wire form: canonical messages, timestamps, tolerated variants, well-formedness.",
        codec_json,
    ),
    "codec-msgpack": (
        "The MessagePack layout: golden bytes, timestamp forms, malformed and mistyped input.",
        codec_msgpack,
    ),
    "priority": ("Priority range, defaults and processing order.", priority),
    "ttl": ("Time to live: the ttl member, expiry boundaries and receivers.", ttl_area),
    "versioning": ("Protocol versions: compatibility, receivers, unknown members.", versioning),
    "errors": ("Error codes, their order when several faults meet, missing and mistyped members.", errors),
}


def _render_vector(vector: dict[str, Any]) -> str:
    """One member per line, each value on one line: readable, and diffs stay small."""
    lines = [f"      {json.dumps(k)}: {json.dumps(val, ensure_ascii=False)}" for k, val in vector.items()]
    return "    {\n" + ",\n".join(lines) + "\n    }"


def render(area: str) -> str:
    description, make = AREAS[area]
    vectors = make()
    for vector in vectors:
        if not vector["id"].startswith(area + "/"):
            raise ValueError(f"{vector['id']} is not in area {area}")
    head = (
        "{\n"
        f'  "$schema": "../spec/vectors.schema.json",\n'
        f'  "area": {json.dumps(area)},\n'
        f'  "description": {json.dumps(description, ensure_ascii=False)},\n'
        '  "vectors": [\n'
    )
    return head + ",\n".join(_render_vector(x) for x in vectors) + "\n  ]\n}\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    texts = {area: render(area) for area in AREAS}
    ids: dict[str, str] = {}
    for area, text in texts.items():
        for vector in json.loads(text)["vectors"]:
            if vector["id"] in ids:
                raise SystemExit(f"duplicate vector id {vector['id']}")
            ids[vector["id"]] = area
    stale = []
    for area, text in texts.items():
        path = FIXTURES / f"{area}.json"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            FIXTURES.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check:
        if stale:
            print(f"stale fixtures: {', '.join(stale)}: run python tools/gen_fixtures.py")
            return 1
        return 0
    print(f"wrote {len(texts)} files, {len(ids)} vectors, to {FIXTURES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
