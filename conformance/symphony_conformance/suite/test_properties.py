"""Property tests of the implementation under test (Hypothesis, strategies of
:mod:`symphony_conformance.strategies`): codec round trips and canonical form, rejection codes,
ordering, expiry and builder laws.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import hypothesis
import msgpack
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st

from .. import strategies as sst
from .._case import SuiteCase
from .._data import (
    CANONICAL_TIMESTAMP,
    MAX_SECONDS,
    NS,
    V4_UUID,
    canonical_timestamp,
    data_diff,
    format_diff,
    timestamp_ns,
)
from .._hypothesis import run_property
from .._impl import ImplBroken, ImplError, MessageData
from .._results import PROP_FALSIFYING
from ._support import (
    CURRENT_VERSION,
    case,
    expect_error,
    expect_ok,
    expect_same_message,
    fail,
    json_bytes,
    parse_json_strict,
    schema_errors,
    short,
)

# ---------------------------------------------------------------- codecs


@pytest.mark.parametrize(
    "codec",
    [case("json", reqs=("COD-003",), codec="json"), case("msgpack", reqs=("COD-104",), codec="msgpack")],
)
def test_round_trip(symphony_case: SuiteCase, codec: str) -> None:
    """Decoding what the implementation encoded yields the original message."""
    impl = symphony_case.impl

    def check(message: MessageData) -> None:
        encoded = expect_ok(f"encoding ({codec})", lambda: impl.encode(codec, message))
        decoded = expect_ok(f"decoding its own encoding ({codec})", lambda: impl.decode(codec, encoded))
        expect_same_message(f"{codec} round trip", message, decoded)

    symphony_case.check_property(check, sst.messages())


@pytest.mark.parametrize(
    "codec",
    [case("json", reqs=("ENV-001",), codec="json"), case("msgpack", reqs=("ENV-001",), codec="msgpack")],
)
def test_encoder_writes_every_member(symphony_case: SuiteCase, codec: str) -> None:
    """An encoder never omits a member: 3 in the message, 9 in the header (JSON: by name;
    MessagePack: by position)."""
    impl = symphony_case.impl
    header_keys = [
        "id",
        "correlation_id",
        "message_type",
        "source",
        "target",
        "timestamp",
        "ttl",
        "priority",
        "version",
    ]

    def check(message: MessageData) -> None:
        encoded = expect_ok(f"encoding ({codec})", lambda: impl.encode(codec, message))
        if codec == "json":
            try:
                obj = parse_json_strict(encoded)
            except ValueError as e:
                fail(f"the JSON encoding is not JSON text: {e}")
            if not isinstance(obj, dict) or not isinstance(obj.get("header"), dict):
                fail(f"the JSON encoding is not a message object: {short(obj)}")
            missing = [k for k in ("header", "payload", "metadata") if k not in obj]
            missing += [f"header.{k}" for k in header_keys if k not in obj["header"]]
        else:
            try:
                obj = msgpack.unpackb(encoded, raw=False, timestamp=0, strict_map_key=False)
            except Exception as e:
                fail(f"the MessagePack encoding does not unpack: {type(e).__name__}: {e}")
            if not isinstance(obj, list) or not obj or not isinstance(obj[0], list):
                fail(f"the MessagePack encoding is not [header, payload, metadata]: {short(obj)}")
            missing = [] if len(obj) == 3 else [f"message has {len(obj)} items, not 3"]
            missing += [] if len(obj[0]) == 9 else [f"header has {len(obj[0])} items, not 9"]
        if missing:
            fail(f"the {codec} encoding omits members: {', '.join(missing)}")

    symphony_case.check_property(check, sst.messages(max_depth=1))


@pytest.mark.parametrize("codec", [case("json", reqs=("COD-001",), codec="json")])
def test_json_encoding_is_canonical(symphony_case: SuiteCase, codec: str) -> None:
    """Everything the implementation encodes is canonical JSON (COD-001): valid against
    spec/message.schema.json, and exactly the message's data (lower-case UUIDs, canonical
    timestamps, nothing added or dropped)."""
    impl = symphony_case.impl

    def check(message: MessageData) -> None:
        encoded = expect_ok("encoding (json)", lambda: impl.encode("json", message))
        try:
            obj = parse_json_strict(encoded)
        except (ValueError, UnicodeDecodeError) as e:
            fail(f"the JSON encoding is not canonical JSON text: {e}: {short(encoded)}")
        problems = schema_errors(obj)
        if problems:
            fail(f"the JSON encoding does not match spec/message.schema.json:{format_diff(problems)}")
        ts = obj["header"]["timestamp"]
        if CANONICAL_TIMESTAMP.fullmatch(ts) is None or ts != canonical_timestamp(timestamp_ns(ts)):
            fail(f"the timestamp {ts!r} is not in canonical form")
        diffs = data_diff(message, obj)  # exact: timestamps and UUIDs as canonical strings
        if diffs:
            fail(f"the JSON encoding is not the canonical form of the message:{format_diff(diffs)}")

    symphony_case.check_property(check, sst.messages())


@pytest.mark.parametrize("codec", [case("json", reqs=("ENV-010",), codec="json")])
def test_payload_is_any_json_value(symphony_case: SuiteCase, codec: str) -> None:
    """Any JSON value, null included, is a payload the decoder yields unchanged."""
    impl = symphony_case.impl

    def check(message: MessageData) -> None:
        decoded = expect_ok("decoding (json)", lambda: impl.decode("json", json_bytes(message)))
        expect_same_message("decoding a message with this payload", message, decoded)

    payloads = st.one_of(st.none(), sst.json_values(max_depth=4))
    symphony_case.check_property(check, sst.messages(payload=payloads))


@pytest.mark.parametrize("codec", [case("msgpack", reqs=("COD-105",), codec="msgpack")])
def test_msgpack_rejects_truncated_and_trailing_bytes(symphony_case: SuiteCase, codec: str) -> None:
    """A strict prefix of an encoding, or an encoding with a byte after it, is not one
    well-formed MessagePack message: SERIALIZATION."""
    impl, ref = symphony_case.impl, symphony_case.reference

    def check(args: tuple[MessageData, float, bytes]) -> None:
        message, cut, extra = args
        good = ref.encode("msgpack", message)
        truncated = good[: int(len(good) * cut)]
        expect_error(
            "SERIALIZATION",
            f"decoding {len(truncated)} of {len(good)} bytes",
            lambda: impl.decode("msgpack", truncated),
        )
        expect_error(
            "SERIALIZATION",
            f"decoding with trailing byte(s) {extra.hex()}",
            lambda: impl.decode("msgpack", good + extra),
        )

    strategy = st.tuples(sst.messages(max_depth=1), st.floats(0, 0.999), st.binary(min_size=1, max_size=3))
    symphony_case.check_property(check, strategy)


# ---------------------------------------------------------------- rejection codes


def _classify(case_: tuple[Any, str]) -> str:
    """The requirement an invalid case exercises (so a failure names the right one)."""
    message, code = case_
    if isinstance(message, bytes):
        return "COD-004"
    header = message.get("header") if isinstance(message, dict) else None
    header = header if isinstance(header, dict) else {}
    if code == "MISSING_FIELD":
        if header.get("message_type") == "Response" and header.get("correlation_id") is None:
            return "ENV-007"
        return "ERR-004"
    if code == "SERIALIZATION":
        ts = header.get("timestamp")
        if isinstance(ts, str) and CANONICAL_TIMESTAMP.fullmatch(ts) is None:
            return "COD-005"
        if isinstance(ts, str):
            try:
                timestamp_ns(ts)
            except ValueError:
                return "COD-005"
        return "ERR-003"
    return {
        "UUID_PARSE": "ENV-006",
        "INVALID_MESSAGE_TYPE": "ENV-004",
        "INVALID_ENDPOINT_ID": "ENV-005",
        "INVALID_METADATA_KEY": "ENV-009",
        "INVALID_PRIORITY": "PRI-002",
    }.get(code, "ERR-003")


_INVALID_CLASSES: Final = (
    "ENV-004",
    "ENV-005",
    "ENV-006",
    "ENV-007",
    "ENV-009",
    "ERR-003",
    "ERR-004",
    "PRI-002",
    "COD-004",
    "COD-005",
)


@dataclass
class _Sweep:
    """What the implementation did with the invalid messages of one class."""

    checked: int = 0
    failure: tuple[str, str] | None = None  # (the input, what went wrong), the shortest input seen
    broken: ImplBroken | None = None


def _is_class(rid: str, case_: tuple[Any, str]) -> bool:
    return _classify(case_) == rid


@pytest.fixture(scope="session")
def invalid_sweeps() -> dict[tuple[int, int, int], dict[str, _Sweep]]:
    """The sweeps of this session (an implementation object lives as long as the session)."""
    return {}


def _sweep(
    symphony_case: SuiteCase, sweeps: dict[tuple[int, int, int], dict[str, _Sweep]], requirement: str
) -> _Sweep:
    """Decode many single-fault messages once, filing each outcome under the requirement its fault
    belongs to (filtering the strategy per requirement would discard most of what it draws); a
    requirement the sweep drew nothing for gets a few targeted examples of its own."""
    impl, settings = symphony_case.impl, symphony_case.settings
    key = (id(impl), symphony_case.seed, settings.max_examples)
    fresh = key not in sweeps
    results = sweeps.setdefault(key, {rid: _Sweep() for rid in _INVALID_CLASSES})

    def check(case_: tuple[Any, str]) -> None:
        message, code = case_
        sweep = results[_classify(case_)]
        if sweep.broken is not None:
            return
        data = message if isinstance(message, bytes) else json_bytes(message)
        sweep.checked += 1
        try:
            got = impl.decode("json", data)
        except ImplError as e:
            if e.code == code:
                return
            problem = f"expected the error {code}, got {e.code} ({e.message})"
        except ImplBroken as e:
            sweep.broken = e
            e.evidence.setdefault("input", short(data, 2000))
            return
        else:
            problem = f"expected the error {code}, but it was accepted and returned {short(got)}"
        shown = short(data, 600)
        if sweep.failure is None or len(shown) < len(sweep.failure[0]):
            sweep.failure = (shown, problem)

    if fresh:
        sweep_settings = hypothesis.settings(settings, max_examples=settings.max_examples * 4)
        try:
            run_property(check, sst.invalid_messages(), settings=sweep_settings, seed=symphony_case.seed)
        except BaseException:
            del sweeps[key]  # e.g. the implementation declined: the next test asks again
            raise
    if results[requirement].checked == 0:
        few = hypothesis.settings(
            settings, max_examples=max(2, settings.max_examples // 5), suppress_health_check=list(HealthCheck)
        )
        strategy = sst.invalid_messages().filter(partial(_is_class, requirement))
        run_property(check, strategy, settings=few, seed=symphony_case.seed)
    return results[requirement]


@pytest.mark.parametrize("requirement", [case(rid, reqs=(rid,), codec="json") for rid in _INVALID_CLASSES])
def test_rejects_invalid_messages(
    symphony_case: SuiteCase, requirement: str, invalid_sweeps: dict[tuple[int, int, int], dict[str, _Sweep]]
) -> None:
    """Messages with exactly one fault are rejected with the code the spec fixes for it
    (ERR-002, ERR-003); each case is filed under the requirement its fault belongs to."""
    sweep = _sweep(symphony_case, invalid_sweeps, requirement)
    if sweep.broken is not None:
        raise sweep.broken
    if sweep.checked == 0:
        fail(f"the strategies produced no invalid message for {requirement} (a harness problem)")
    if sweep.failure is not None:
        example, problem = sweep.failure
        symphony_case.user_properties.append((PROP_FALSIFYING, f"decoding (json) {example}"))
        fail(f"decoding (json) {example}:\n  {problem}")


# ---------------------------------------------------------------- ordering

_LEVELS = st.sampled_from([1000, 100, 0, -100, -1000, 5, -5])


#: Two levels and at least three messages: every example has a tie (pigeonhole), so a FIFO fault
#: shows in the first example even with the harness's smallest profiles.
_TIED_LEVELS = st.sampled_from([0, 100])


def _queue(
    n_max: int = 12, levels: st.SearchStrategy[int] = _LEVELS, n_min: int = 0
) -> st.SearchStrategy[list[MessageData]]:
    """Messages in arrival order, with few distinct priorities so that ties are common."""

    def messages(levels: list[int]) -> list[MessageData]:
        out = []
        for i, level in enumerate(levels):
            m = _message_at(1_700_000_000 * NS + i, None)
            m["header"]["id"] = f"00000000-0000-4000-8000-{i:012x}"
            m["header"]["priority"] = level
            m["payload"] = i
            out.append(m)
        return out

    return st.lists(levels, min_size=n_min, max_size=n_max).map(messages)


def _order(symphony_case: SuiteCase, messages: list[MessageData]) -> list[int]:
    got = expect_ok("ordering", lambda: symphony_case.impl.order(messages))
    if sorted(got) != list(range(len(messages))):
        fail(f"ordering {len(messages)} messages: {got} is not a permutation of their indices")
    return list(got)


@pytest.mark.parametrize("law", [case("highest-first", reqs=("PRI-003",)), case("fifo", reqs=("PRI-004",))])
def test_ordering(symphony_case: SuiteCase, law: str) -> None:
    """Processing order is a stable total order: priority descending (PRI-003), then arrival (PRI-004)."""

    def check(messages: list[MessageData]) -> None:
        got = _order(symphony_case, messages)
        prios = [messages[i]["header"]["priority"] for i in got]
        if law == "highest-first":
            if any(a < b for a, b in itertools.pairwise(prios)):
                fail(f"ordering: priorities in processing order {prios} are not highest first")
        else:
            by_level: dict[int, list[int]] = {}
            for i in got:
                by_level.setdefault(messages[i]["header"]["priority"], []).append(i)
            for level, seq in by_level.items():
                if seq != sorted(seq):
                    fail(
                        f"ordering: messages of priority {level} arrived as {sorted(seq)} but are processed "
                        f"as {seq} (not first in, first out); whole order {got}"
                    )

    queues = _queue() if law == "highest-first" else _queue(levels=_TIED_LEVELS, n_min=3)
    symphony_case.check_property(check, queues)


# ---------------------------------------------------------------- expiry


def _message_at(ts_ns: int, ttl: dict[str, int] | None) -> MessageData:
    return {
        "header": {
            "id": "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a",
            "correlation_id": None,
            "message_type": "Event",
            "source": "a",
            "target": "b",
            "timestamp": canonical_timestamp(ts_ns),
            "ttl": ttl,
            "priority": 0,
            "version": dict(CURRENT_VERSION),
        },
        "payload": None,
        "metadata": {},
    }


def _expired(symphony_case: SuiteCase, message: MessageData, now: int) -> bool:
    got = expect_ok("is_expired", lambda: symphony_case.impl.is_expired(message, now))
    if not isinstance(got, bool):
        fail(f"is_expired returned {got!r}, not a boolean")
    return got


_MAX_NS = MAX_SECONDS * NS + NS - 1
_TS = st.integers(0, 4_102_444_800 * NS)  # 1970 to 2100
_SMALL_TTL = st.fixed_dictionaries({"secs": st.integers(0, 10**6), "nanos": st.integers(0, NS - 1)})


def _ttl_ns(ttl: dict[str, int]) -> int:
    return ttl["secs"] * NS + ttl["nanos"]


@pytest.mark.parametrize(
    "law",
    [
        case("null-never-expires", reqs=("TTL-001",)),
        case("exact-boundary", reqs=("TTL-002",)),
        case("deterministic-monotonic", reqs=("TTL-003",)),
        case("future-timestamp", reqs=("TTL-004",)),
        case("huge-ttl", reqs=("TTL-005",)),
    ],
)
def test_expiry(symphony_case: SuiteCase, law: str) -> None:
    """The laws of expiry against an injected now (spec/protocol.md section 4)."""

    def check(args: tuple[int, Any, int, int]) -> None:
        ts, ttl, d1, d2 = args
        if law == "null-never-expires":
            now = min(ts + d1 * 1_000_003, _MAX_NS)
            if _expired(symphony_case, _message_at(ts, None), now):
                fail(f"a message without ttl (timestamp {canonical_timestamp(ts)}) is expired at {now} ns")
        elif law == "exact-boundary":
            msg = _message_at(ts, ttl)
            at = ts + _ttl_ns(ttl)
            if _expired(symphony_case, msg, at):
                fail(f"ttl {ttl}: expired at exactly timestamp + ttl ({at} ns); it must expire only after")
            if not _expired(symphony_case, msg, at + 1):
                fail(f"ttl {ttl}: not expired one nanosecond after timestamp + ttl ({at + 1} ns)")
        elif law == "deterministic-monotonic":
            msg = _message_at(ts, ttl)
            n1 = ts + d1
            n2 = n1 + d2
            e1, e1_again, e2 = (
                _expired(symphony_case, msg, n1),
                _expired(symphony_case, msg, n1),
                _expired(symphony_case, msg, n2),
            )
            if e1 != e1_again:
                fail(f"ttl {ttl}: is_expired at {n1} ns answered {e1}, then {e1_again}")
            if e1 and not e2:
                fail(f"ttl {ttl}: expired at {n1} ns but not at the later {n2} ns")
        elif law == "future-timestamp":
            msg = _message_at(ts, ttl)
            now = ts - 1 - d1
            if _expired(symphony_case, msg, now):
                fail(f"ttl {ttl}: a message stamped after now ({now} ns < {ts} ns) is expired")
        else:
            huge = {"secs": 2**64 - 1 - (d2 % 1000), "nanos": NS - 1}
            msg = _message_at(ts, huge)
            now = min(ts + d1 * 10**9, _MAX_NS)
            if _expired(symphony_case, msg, now):
                fail(f"ttl {huge} (beyond any representable instant) is reported expired at {now} ns")

    delta = st.integers(0, 10**12)
    strategy = st.tuples(_TS, st.one_of(_SMALL_TTL, st.just({"secs": 0, "nanos": 0})), delta, delta)
    symphony_case.check_property(check, strategy)


@pytest.mark.parametrize("codec", [case("json", reqs=("TTL-006",), codec="json")])
def test_receiver_rejects_expired(symphony_case: SuiteCase, codec: str) -> None:
    """A receiver accepts a message at timestamp + ttl and rejects it one nanosecond later."""
    impl = symphony_case.impl

    def check(args: tuple[int, dict[str, int]]) -> None:
        ts, ttl = args
        data = json_bytes(_message_at(ts, ttl))
        at = ts + _ttl_ns(ttl)
        impl.set_clock(at)
        expect_ok(f"receiving at timestamp + ttl ({ttl})", lambda: impl.receive("json", data, (1, 0)))
        impl.set_clock(at + 1)
        expect_error(
            "TTL_EXPIRED",
            f"receiving 1 ns after timestamp + ttl ({ttl})",
            lambda: impl.receive("json", data, (1, 0)),
        )

    symphony_case.check_property(check, st.tuples(_TS, _SMALL_TTL))


# ---------------------------------------------------------------- builder


@pytest.mark.parametrize(
    "law",
    [
        case("v4-ids", reqs=("ENV-002",)),
        case("distinct-ids", reqs=("ENV-003",)),
        case("defaults", reqs=("ENV-011",)),
        case("stamps", reqs=("ENV-012",)),
        case("default-priority", reqs=("PRI-005",)),
    ],
)
def test_build(symphony_case: SuiteCase, law: str) -> None:
    """What the builder stamps and which defaults it applies."""
    impl = symphony_case.impl

    def check(args: tuple[dict[str, Any], int]) -> None:
        fields, now = args
        if law == "default-priority":
            fields = {k: v for k, v in fields.items() if k != "priority"}
        impl.set_clock(now)
        built = expect_ok(f"building from {short(fields)}", lambda: impl.build(fields))
        header = built.get("header", {}) if isinstance(built, dict) else {}
        if law == "v4-ids":
            if not isinstance(header.get("id"), str) or V4_UUID.fullmatch(header["id"]) is None:
                fail(f"the built id {header.get('id')!r} is not a canonical random (version 4) UUID")
        elif law == "distinct-ids":
            again = expect_ok("building a second message", lambda: impl.build(fields))
            if again.get("header", {}).get("id") == header.get("id"):
                fail(f"two messages built one after the other have the same id {header.get('id')!r}")
        elif law == "defaults":
            expected = {
                "header": {
                    "message_type": fields["message_type"],
                    "source": fields["source"],
                    "target": fields["target"],
                    "correlation_id": fields.get("correlation_id"),
                    "ttl": fields.get("ttl"),
                    "priority": fields.get("priority", 0),
                },
                "payload": fields.get("payload"),
                "metadata": fields.get("metadata", {}),
            }
            expect_same_message(f"building from {short(fields)}", expected, built, subset=True)
        elif law == "stamps":
            want = {"header": {"timestamp": canonical_timestamp(now), "version": dict(CURRENT_VERSION)}}
            expect_same_message(
                f"building with the clock at {canonical_timestamp(now)}", want, built, subset=True
            )
        elif header.get("priority") != 0 or isinstance(header.get("priority"), bool):
            fail(
                f"a message built without a priority has priority {header.get('priority')!r}, not NORMAL (0)"
            )

    symphony_case.check_property(check, st.tuples(sst.builder_fields(), sst.timestamps_ns()))


@pytest.mark.parametrize("law", [case("majors-equal", reqs=("VER-002",))])
def test_compatibility(symphony_case: SuiteCase, law: str) -> None:
    """Two versions are compatible exactly when their majors are equal."""
    u16 = st.integers(0, 0xFFFF)
    small = st.integers(0, 3)

    def check(args: tuple[int, int, int, int]) -> None:
        a = (args[0], args[1])
        b = (args[2], args[3])
        got = expect_ok("is_compatible", lambda: symphony_case.impl.is_compatible(a, b))
        if got is not (a[0] == b[0]):
            fail(f"is_compatible({a}, {b}) is {got!r}")

    symphony_case.check_property(check, st.tuples(st.one_of(small, u16), u16, st.one_of(small, u16), u16))
