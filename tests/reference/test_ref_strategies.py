"""The public strategies generate what they promise (checked against the spec's syntax, written
here independently), and reach their edge cases."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis.strategies import SearchStrategy

from symphony_conformance import strategies as sst

ENDPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")
META_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
CANON_TS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.([0-9]{3}|[0-9]{6}|[0-9]{9}))?Z"
)
CANON_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
U64 = 2**64 - 1


def reach(strategy: SearchStrategy[Any], condition: Any) -> Any:
    """An example satisfying ``condition`` (fails the test if the strategy never produces one)."""
    # no shrinking: any example will do, and shrinking whole messages is slow
    return find(
        strategy,
        condition,
        settings=settings(
            max_examples=5000, database=None, phases=[Phase.generate], report_multiple_bugs=False
        ),
    )


@given(sst.messages())
def test_messages_are_canonical(data: dict[str, Any]) -> None:
    assert set(data) == {"header", "payload", "metadata"}
    h = data["header"]
    assert list(h) == [
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
    assert CANON_UUID.fullmatch(h["id"])
    assert h["correlation_id"] is None or CANON_UUID.fullmatch(h["correlation_id"])
    if h["message_type"] == "Response":
        assert h["correlation_id"] is not None
    assert h["message_type"] in ("Request", "Response", "Event", "Error", "Heartbeat")
    assert ENDPOINT.fullmatch(h["source"])
    assert ENDPOINT.fullmatch(h["target"])
    assert CANON_TS.fullmatch(h["timestamp"])
    assert -1000 <= h["priority"] <= 1000
    if h["ttl"] is not None:
        assert 0 <= h["ttl"]["secs"] <= U64
        assert 0 <= h["ttl"]["nanos"] < 10**9
    assert all(0 <= h["version"][k] <= 0xFFFF for k in ("major", "minor"))
    assert all(META_KEY.fullmatch(k) for k in data["metadata"])


def test_edges_are_reached() -> None:
    reach(sst.endpoint_ids(), lambda s: len(s) == 1)
    reach(sst.endpoint_ids(), lambda s: len(s) == 128)
    reach(sst.metadata_keys(), lambda s: len(s) == 64)
    reach(sst.priorities(), lambda p: p == -1000)
    reach(sst.priorities(), lambda p: p == 1000)
    reach(sst.ttls(), lambda t: t is None)
    reach(sst.ttls(), lambda t: t is not None and t["secs"] == U64 and t["nanos"] == 999_999_999)
    reach(sst.ttls(), lambda t: t is not None and t == {"secs": 0, "nanos": 0})
    reach(sst.versions(), lambda v: v["major"] == 0xFFFF)
    reach(sst.message_ids(), lambda i: uuid.UUID(i).version != 4)
    reach(sst.timestamps(), lambda t: t.startswith("0001-01-01T00:00:00"))
    reach(sst.timestamps(), lambda t: t.startswith("9999-12-31T23:59:59"))
    reach(sst.json_values(), lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 2**63)
    reach(sst.json_values(), lambda v: isinstance(v, str) and any(ord(c) > 0xFFFF for c in v))


@pytest.mark.parametrize("digits", [0, 3, 6, 9])
def test_every_canonical_precision_is_reached(digits: int) -> None:
    text = reach(sst.timestamps(), lambda t: len(t) == 20 + (digits + 1 if digits else 0))
    assert CANON_TS.fullmatch(text)


@pytest.mark.parametrize(
    "code",
    [
        "UUID_PARSE",
        "INVALID_MESSAGE_TYPE",
        "INVALID_ENDPOINT_ID",
        "INVALID_PRIORITY",
        "INVALID_METADATA_KEY",
        "MISSING_FIELD",
        "SERIALIZATION",
    ],
)
def test_invalid_messages_cover_every_decoder_code(code: str) -> None:
    reach(sst.invalid_messages(), lambda case: case[1] == code)


@given(sst.invalid_messages())
def test_invalid_cases_have_exactly_one_kind(case: tuple[Any, str]) -> None:
    message, code = case
    assert isinstance(message, bytes | dict)
    assert code in {
        "UUID_PARSE",
        "INVALID_MESSAGE_TYPE",
        "INVALID_ENDPOINT_ID",
        "INVALID_PRIORITY",
        "INVALID_METADATA_KEY",
        "MISSING_FIELD",
        "SERIALIZATION",
    }


@given(sst.json_values(max_depth=2))
def test_json_values_respect_max_depth(value: Any) -> None:
    def depth(v: Any) -> int:
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    assert depth(value) <= 2


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (5_000_000, "1970-01-01T00:00:00.005Z"),
        (5_000, "1970-01-01T00:00:00.000005Z"),
        (5, "1970-01-01T00:00:00.000000005Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (-62_135_596_800 * 10**9, "0001-01-01T00:00:00Z"),
        (253_402_300_799 * 10**9 + 10**9 - 1, "9999-12-31T23:59:59.999999999Z"),
    ],
)
def test_canonical_timestamp(ns: int, text: str) -> None:
    assert sst.canonical_timestamp(ns) == text


def test_canonical_timestamp_refuses() -> None:
    with pytest.raises(ValueError, match="0001-9999"):
        sst.canonical_timestamp(-62_135_596_800 * 10**9 - 1)
    with pytest.raises(ValueError, match="0001-9999"):
        sst.canonical_timestamp(253_402_300_800 * 10**9)
    with pytest.raises(TypeError):
        sst.canonical_timestamp(True)
