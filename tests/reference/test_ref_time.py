"""RFC 3339 timestamps: the canonical form (COD-001), tolerated variants (COD-006), invalid ones
(COD-005) and the 0001-9999 bounds."""

from __future__ import annotations

import pytest

import symphony_ipc as s

NS = 1_000_000_000
MIN_NS = -62_135_596_800 * NS
MAX_NS = 253_402_300_799 * NS + NS - 1


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (100_000_000, "1970-01-01T00:00:00.100Z"),  # 3 digits, not ".1"
        (123_000_000, "1970-01-01T00:00:00.123Z"),
        (1_000, "1970-01-01T00:00:00.000001Z"),
        (123_456_000, "1970-01-01T00:00:00.123456Z"),
        (123_456_700, "1970-01-01T00:00:00.123456700Z"),
        (999_999_999, "1970-01-01T00:00:00.999999999Z"),
        (1_700_000_000 * NS, "2023-11-14T22:13:20Z"),
        (951_782_400 * NS, "2000-02-29T00:00:00Z"),
        (MIN_NS, "0001-01-01T00:00:00Z"),
        (MAX_NS, "9999-12-31T23:59:59.999999999Z"),
        (MAX_NS - 999_999_999, "9999-12-31T23:59:59Z"),
        (-62_135_596_800 * NS + 86_400 * 365 * NS, "0002-01-01T00:00:00Z"),
    ],
)
def test_canonical_form_round_trips(ns: int, text: str) -> None:
    assert s.format_rfc3339(ns) == text
    assert s.parse_rfc3339(text) == ns
    assert s.parse_rfc3339(text, lenient=False) == ns
    assert str(s.Timestamp(ns)) == text


@pytest.mark.parametrize("ns", [MIN_NS - 1, MAX_NS + 1, MIN_NS - 10**20, MAX_NS + 10**20])
def test_format_outside_the_years_is_refused(ns: int) -> None:
    with pytest.raises(s.SerializationError):
        s.format_rfc3339(ns)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z"),
        ("2023-12-31T18:30:00-05:30", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00Z"),
        ("2024-01-01t00:00:00z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00.500Z"),
        ("2024-01-01T00:00:00.1234Z", "2024-01-01T00:00:00.123400Z"),
        ("2024-01-01T00:00:00.12345678Z", "2024-01-01T00:00:00.123456780Z"),
        ("2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00.120000Z", "2024-01-01T00:00:00.120Z"),
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"),
    ],
)
def test_tolerated_variants_parse_to_the_same_instant(text: str, canonical: str) -> None:
    assert s.format_rfc3339(s.parse_rfc3339(text)) == canonical


@pytest.mark.parametrize(
    "text",
    ["2024-01-01T02:00:00+02:00", "2024-01-01t00:00:00z", "2024-01-01T00:00:00.5Z", "2016-12-31T23:59:60Z"],
)
def test_strict_mode_refuses_variants(text: str) -> None:
    s.parse_rfc3339(text)  # lenient: accepted
    with pytest.raises(s.SerializationError):
        s.parse_rfc3339(text, lenient=False)


def test_leap_second_is_tolerated() -> None:
    leap = s.parse_rfc3339("2016-12-31T23:59:60Z")
    before = s.parse_rfc3339("2016-12-31T23:59:59Z")
    assert before < leap <= before + NS


@pytest.mark.parametrize(
    "text",
    [
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:61Z",
        "2024-01-01T00:00:00",
        "2024-01-01T00:00Z",
        "2024-01-01",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567890Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+02:60",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",  # before 0001 in UTC
        "9999-12-31T23:59:59-00:01",  # after 9999 in UTC
        "10000-01-01T00:00:00Z",
        "\u0662\u0660\u0662\u0664-01-01T00:00:00Z",  # Arabic-Indic digits
        "2024-01-01T00:00:00Z\n",
        " 2024-01-01T00:00:00Z",
        "",
    ],
)
def test_invalid_timestamps(text: str) -> None:
    with pytest.raises(s.SerializationError):
        s.parse_rfc3339(text)
    with pytest.raises(s.SerializationError):
        s.parse_rfc3339(text, lenient=False)


@pytest.mark.parametrize("value", [None, 0, 1.5, b"2024-01-01T00:00:00Z", ["2024-01-01T00:00:00Z"]])
def test_non_string_timestamp(value: object) -> None:
    with pytest.raises(s.SerializationError):
        s.parse_rfc3339(value)


def test_leap_days() -> None:
    assert s.format_rfc3339(s.parse_rfc3339("2000-02-29T12:00:00Z")) == "2000-02-29T12:00:00Z"
    assert s.format_rfc3339(s.parse_rfc3339("2024-02-29T12:00:00Z")) == "2024-02-29T12:00:00Z"
    assert (
        s.parse_rfc3339("2024-03-01T00:00:00Z") - s.parse_rfc3339("2024-02-28T00:00:00Z") == 2 * 86_400 * NS
    )


def test_timestamp_value_semantics() -> None:
    a, b = s.Timestamp(5), s.Timestamp(5)
    assert a == b
    assert hash(a) == hash(b)
    assert s.Timestamp(4) < a
    five: object = 5
    assert a != five
    assert a.isoformat() == "1970-01-01T00:00:00.000000005Z"
    assert "1970-01-01T00:00:00.000000005Z" in repr(a)


def test_timestamp_is_an_immutable_value() -> None:
    a = s.Timestamp(5)
    with pytest.raises(AttributeError):
        a.ns = 6  # type: ignore[misc]
    assert sorted([s.Timestamp(3), s.Timestamp(1), s.Timestamp(2)]) == [s.Timestamp(i) for i in (1, 2, 3)]
    assert {s.Timestamp(5): "x"}[s.Timestamp(5)] == "x"
    assert s.Timestamp(ns=7).ns == 7


def test_the_per_second_caches_never_mix_a_leap_second_with_the_next() -> None:
    # 23:59:60 is the same second count as the next day's 00:00:00; only the latter is canonical
    leap = s.parse_rfc3339("2016-12-31T23:59:60.500000001Z")
    assert s.format_rfc3339(leap) == "2017-01-01T00:00:00.500000001Z"
    assert s.parse_rfc3339("2017-01-01T00:00:00.500000001Z", lenient=False) == leap
    with pytest.raises(s.ProtocolError):
        s.parse_rfc3339("2016-12-31T23:59:60.500000001Z", lenient=False)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05.12345678\u0669Z",  # a non-ASCII digit
        "2026-01-02T03:04:05.+12345678Z",
        "2026-01-02T03:04:05.1234_5678Z",
        "2026-01-02T03:04:05.123456789z",
        "2026-01-02T03:04:05.123456789+00:00",
    ],
)
def test_the_parse_cache_takes_only_the_canonical_form(text: str) -> None:
    s.format_rfc3339(s.parse_rfc3339("2026-01-02T03:04:05.123456789Z"))  # the second is cached now
    with pytest.raises(s.ProtocolError):
        s.parse_rfc3339(text, lenient=False)
