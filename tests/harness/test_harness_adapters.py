"""The reference adapter and ``--impl`` loading."""

from __future__ import annotations

import sys

import pytest

from symphony_conformance import (
    Implementation,
    ImplementationLoadError,
    ImplError,
    ImplSkipped,
    ReferenceImplementation,
    load_implementation,
)
from symphony_conformance._adapters import driven_profiles
from symphony_conformance.mutants import CATALOGUE

MESSAGE = {
    "header": {
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "correlation_id": None,
        "message_type": "Event",
        "source": "a",
        "target": "b",
        "timestamp": "2025-01-02T03:04:05.500Z",
        "ttl": {"secs": 1, "nanos": 0},
        "priority": 0,
        "version": {"major": 1, "minor": 0},
    },
    "payload": [1, "x"],
    "metadata": {},
}


def test_reference_declares_every_testable_profile_and_both_codecs() -> None:
    impl = load_implementation()
    assert isinstance(impl, ReferenceImplementation)
    assert isinstance(impl, Implementation)
    caps = impl.info.capabilities
    assert sorted(caps.profiles) == sorted(driven_profiles())
    assert {"envelope", "codec-json", "codec-msgpack", "priority", "ttl", "versioning"} <= caps.profiles
    assert caps.codecs == frozenset({"json", "msgpack"})


def test_reference_adapter_round_trips_and_maps_errors() -> None:
    impl = ReferenceImplementation()
    for codec in ("json", "msgpack"):
        assert impl.decode(codec, impl.encode(codec, MESSAGE)) == MESSAGE
    with pytest.raises(ImplError) as info:
        impl.decode("json", b"{")
    assert info.value.code == "SERIALIZATION"
    assert (info.value.category, info.value.recoverable) == ("serialization", True)
    with pytest.raises(ImplError) as info:
        impl.receive("json", impl.encode("json", MESSAGE), (2, 0))
    assert info.value.code == "INVALID_PROTOCOL_VERSION"
    assert info.value.recoverable is False
    with pytest.raises(ImplError) as info:
        impl.build({"message_type": "Response", "source": "a", "target": "b"})
    assert info.value.code == "MISSING_FIELD"
    assert info.value.details["field"] == "correlation_id"
    with pytest.raises(ImplSkipped):
        impl.decode("cbor", b"")


def test_reference_adapter_clock_order_expiry() -> None:
    impl = ReferenceImplementation()
    impl.set_clock(1_735_787_045_500_000_000)  # 2025-01-02T03:04:05.5Z
    built = impl.build({"message_type": "Request", "source": "a", "target": "b", "priority": 100})
    assert built["header"]["timestamp"] == "2025-01-02T03:04:05.500Z"
    low = {**MESSAGE, "header": {**MESSAGE["header"], "priority": -5}}
    assert impl.order([low, MESSAGE, built, MESSAGE]) == [2, 1, 3, 0]
    assert impl.is_expired(MESSAGE, 1_735_787_046_500_000_000) is False
    assert impl.is_expired(MESSAGE, 1_735_787_046_500_000_001) is True
    assert impl.is_compatible((1, 0), (1, 9)) is True
    assert impl.expects_response("Request") is True


def test_python_factory() -> None:
    impl = load_implementation("python:symphony_conformance.mutants:lifo_within_priority")
    assert isinstance(impl, Implementation)
    assert "lifo_within_priority" in impl.info.name
    assert impl.order([MESSAGE, MESSAGE]) == [1, 0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cobol:thing", "unknown form"),
        ("python:", "expected python:package.module:factory"),
        ("python:just_a_module", "expected python:package.module:factory"),
        ("python:no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
        ("python:json:no_such_factory", "has no attribute 'no_such_factory'"),
        ("python:json:__doc__", "is not callable"),
        ("python:json:dumps", "raised TypeError"),
        ("python:builtins:object", "not a symphony_conformance.Implementation (missing: info, set_clock"),
        ("exec:", "expected exec:COMMAND ARGS"),
        ("exec:'unterminated", "cannot split the command"),
        ("exec:/no/such/program --flag", "cannot start '/no/such/program'"),
        (f"exec:{sys.executable} -c 'import sys; sys.exit(3)'", "cannot start"),
    ],
)
def test_load_errors_are_clear(spec: str, message: str) -> None:
    with pytest.raises(ImplementationLoadError) as info:
        load_implementation(spec, timeout=5)
    assert message in str(info.value)
    assert spec.strip() in str(info.value)


def test_mutant_catalogue_is_well_formed() -> None:
    assert {
        "lifo_within_priority",
        "ttl_expired_at_boundary",
        "response_without_correlation_id",
        "uppercase_uuids_in_json",
    } <= set(CATALOGUE)
    for mutant in CATALOGUE.values():
        impl = load_implementation(mutant.impl_spec)
        assert mutant.profile in impl.info.capabilities.profiles
        assert all(rid[:3] in ("ENV", "ERR", "PRI", "TTL", "VER", "COD", "BUS") for rid in mutant.breaks)
        assert mutant.to_dict()["impl"] == mutant.impl_spec
