"""Expiry (TTL-001..TTL-007), versions (VER-001..VER-004) and the receiver's order of checks
(ERR-002: decoding, then version, then TTL)."""

from __future__ import annotations

import pytest

import symphony_ipc as s

NS = 1_000_000_000
T0 = 1_700_000_000 * NS + 250_000_000
MAX_NS = 253_402_300_799 * NS + NS - 1


def msg(ttl: s.Ttl | None, ts: int = T0, version: s.ProtocolVersion = s.CURRENT_VERSION) -> s.Message:
    return (
        s.MessageBuilder()
        .message_type("Event")
        .source("a")
        .target("b")
        .ttl(ttl)
        .timestamp(ts)
        .version(version)
        .build()
    )


@pytest.mark.parametrize(
    "ttl", [s.Ttl(0, 0), s.Ttl(0, 1), s.Ttl(1, 0), s.Ttl(30, 999_999_999), s.Ttl(86_400 * 365, 5)]
)
def test_expiry_boundary_is_exact(ttl: s.Ttl) -> None:
    m = msg(ttl)
    limit = T0 + ttl.secs * NS + ttl.nanos
    assert m.header.expires_at_ns == limit
    assert not m.is_expired(T0)
    assert not m.is_expired(limit)  # age == ttl: not yet expired
    assert m.is_expired(limit + 1)  # one nanosecond later it is
    assert m.is_expired(limit + 10**18)


def test_null_ttl_never_expires() -> None:
    m = msg(None)
    assert m.header.expires_at_ns is None
    for now in (T0, T0 + 1, MAX_NS, 10**30):
        assert not m.is_expired(now)


def test_future_timestamp_is_not_expired() -> None:
    m = msg(s.Ttl(0, 0), ts=T0 + 5 * NS)  # clock skew: the message is from the future
    assert not m.is_expired(T0)
    assert not m.is_expired(T0 + 5 * NS)
    assert m.is_expired(T0 + 5 * NS + 1)


def test_huge_ttl_never_expires() -> None:
    m = msg(s.Ttl(2**64 - 1, 999_999_999), ts=0)
    assert not m.is_expired(MAX_NS)
    m = msg(s.Ttl(2**64 - 1, 999_999_999), ts=MAX_NS)
    for now in (MAX_NS + 1, 2**63, 2**64, 2**64 * NS):  # beyond i64 / u64 nanoseconds: no overflow
        assert not m.is_expired(now)
    assert m.is_expired(MAX_NS + (2**64 - 1) * NS + 999_999_999 + 1)  # exact, even out there


def test_expiry_uses_the_injected_clock() -> None:
    clock = s.ManualClock(T0)
    m = msg(s.Ttl(1, 0))
    assert not m.is_expired(clock=clock)
    clock.advance(NS)
    assert not m.is_expired(clock=clock)
    clock.advance(1)
    assert m.is_expired(clock=clock)
    assert m.is_expired(clock=clock)  # same now, same answer


def test_version_compatibility() -> None:
    v10 = s.ProtocolVersion(1, 0)
    assert v10 == s.CURRENT_VERSION
    assert str(s.CURRENT_VERSION) == "1.0"
    assert v10.is_compatible(s.ProtocolVersion(1, 65535))
    assert s.ProtocolVersion(1, 65535).is_compatible(v10)
    assert not v10.is_compatible(s.ProtocolVersion(2, 0))
    assert not v10.is_compatible(s.ProtocolVersion(0, 0))
    assert s.ProtocolVersion(0, 3).is_compatible(s.ProtocolVersion(0, 0))
    assert s.ProtocolVersion(65535, 1).is_compatible(s.ProtocolVersion(65535, 0))


def test_check_version() -> None:
    msg(None, version=s.ProtocolVersion(1, 9)).check_version()  # higher minor: accepted (VER-004)
    msg(None, version=s.ProtocolVersion(1, 0)).check_version(s.ProtocolVersion(1, 7))
    with pytest.raises(s.InvalidProtocolVersion) as info:
        msg(None, version=s.ProtocolVersion(2, 3)).check_version()
    assert (info.value.major, info.value.minor) == (2, 3)
    assert info.value.recoverable is False
    assert info.value.category == "version"
    with pytest.raises(s.InvalidProtocolVersion):
        msg(None, version=s.ProtocolVersion(1, 0)).check_version(s.ProtocolVersion(2, 0))


@pytest.mark.parametrize("codec", s.CODECS)
def test_receive_checks_version_before_ttl(codec: s.Codec) -> None:
    expired_now = T0 + 2 * NS
    wrong_major = s.encode(msg(s.Ttl(1, 0), version=s.ProtocolVersion(2, 0)), codec)
    with pytest.raises(s.InvalidProtocolVersion):
        s.receive(wrong_major, codec, now_ns=expired_now)
    higher_minor = s.encode(msg(s.Ttl(1, 0), version=s.ProtocolVersion(1, 4)), codec)
    with pytest.raises(s.TtlExpired) as info:
        s.receive(higher_minor, codec, now_ns=expired_now)
    assert info.value.code is s.ErrorCode.TTL_EXPIRED
    assert info.value.recoverable is True
    got = s.receive(higher_minor, codec, now_ns=T0 + NS)
    assert got.header.version == s.ProtocolVersion(1, 4)
    # a receiver at another major accepts that major
    assert s.receive(wrong_major, codec, now_ns=T0, version=s.ProtocolVersion(2, 5)).header.version.major == 2


@pytest.mark.parametrize("codec", s.CODECS)
def test_receive_uses_the_clock(codec: s.Codec) -> None:
    data = s.encode(msg(s.Ttl(0, 10)), codec)
    clock = s.ManualClock(T0 + 10)
    assert s.receive(data, codec, clock=clock).header.ttl == s.Ttl(0, 10)
    clock.advance(1)
    with pytest.raises(s.TtlExpired):
        s.receive(data, codec, clock=clock)


def test_receive_reports_decoding_faults_first() -> None:
    text = s.encode_json(msg(s.Ttl(0, 0), version=s.ProtocolVersion(3, 0)))
    bad = text.replace(b'"priority":0', b'"priority":5000')
    assert bad != text
    with pytest.raises(s.InvalidPriority):
        s.receive(bad, "json", now_ns=T0 + 10 * NS)
