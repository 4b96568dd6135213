"""The seeded-fault catalogue: the reference with one behaviour broken on purpose.

Each mutant is a module-level factory registered in :data:`CATALOGUE` with the profile it
belongs to and the requirement ids it breaks. A conformance run against a mutant must not pass,
and must name those requirements: that is how the suite's power to catch faults is checked::

    symphony-conformance run --profile priority \\
        --impl python:symphony_conformance.mutants:lifo_within_priority

To add one: subclass :class:`MutantImplementation`, override one behaviour, and register a
factory with :func:`mutant`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

import msgpack

from ._adapters import ReferenceImplementation
from ._data import NS, timestamp_ns
from ._impl import Implementation, ImplError, ImplInfo, MessageData

__all__ = [
    "CATALOGUE",
    "Mutant",
    "MutantImplementation",
    "lifo_within_priority",
    "mutant",
    "response_without_correlation_id",
    "ttl_expired_at_boundary",
    "uppercase_uuids_in_json",
]


@dataclass(frozen=True)
class Mutant:
    """One seeded fault: what it breaks and how to build it."""

    name: str
    profile: str
    """The profile whose tests must catch it (run with ``--profile``)."""
    breaks: tuple[str, ...]
    """The requirement ids a run must report as failed."""
    description: str
    factory: Callable[[], Implementation] = field(compare=False, repr=False)

    @property
    def impl_spec(self) -> str:
        """The ``--impl`` that loads this mutant."""
        return f"python:{__name__}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profile": self.profile,
            "breaks": list(self.breaks),
            "description": self.description,
            "impl": self.impl_spec,
        }


CATALOGUE: dict[str, Mutant] = {}
"""Every registered mutant, by name."""

F = TypeVar("F", bound=Callable[[], Implementation])


def mutant(*, profile: str, breaks: Sequence[str], description: str) -> Callable[[F], F]:
    """Register a factory (named after the mutant) in :data:`CATALOGUE`."""

    def register(factory: F) -> F:
        name = factory.__name__
        if name in CATALOGUE:
            raise ValueError(f"mutant {name!r} is registered twice")
        CATALOGUE[name] = Mutant(name, profile, tuple(breaks), description, factory)
        return factory

    return register


class MutantImplementation(ReferenceImplementation):
    """The reference under another name; subclasses override exactly one behaviour."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.mutant_name = name

    @property
    def info(self) -> ImplInfo:
        base = super().info
        return replace(base, name=f"mutant {self.mutant_name} (of the reference)")


# ---------------------------------------------------------------- priority


class _LifoWithinPriority(MutantImplementation):
    def order(self, messages: Sequence[MessageData]) -> list[int]:
        prios = [self._message(m).header.priority for m in messages]
        return sorted(range(len(messages)), key=lambda i: (-prios[i], -i))


@mutant(
    profile="priority",
    breaks=["PRI-004"],
    description="messages of equal priority are processed last in, first out",
)
def lifo_within_priority() -> Implementation:
    return _LifoWithinPriority("lifo_within_priority")


# ---------------------------------------------------------------- ttl


def _at_boundary(message: MessageData, now_ns: int) -> bool:
    header = message["header"]
    ttl = header.get("ttl")
    if ttl is None:
        return False
    ttl_ns: int = ttl["secs"] * NS + ttl["nanos"]
    return now_ns - timestamp_ns(header["timestamp"]) == ttl_ns


class _TtlExpiredAtBoundary(MutantImplementation):
    def is_expired(self, message: MessageData, now_ns: int) -> bool:
        return super().is_expired(message, now_ns) or _at_boundary(message, now_ns)

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        got = super().receive(codec, data, receiver_version)
        if _at_boundary(got, self._clock.now_ns()):
            raise ImplError("TTL_EXPIRED", "expired (at the boundary)", category="expiry", recoverable=True)
        return got


@mutant(
    profile="ttl",
    breaks=["TTL-002"],
    description="a message is expired at exactly timestamp + ttl (>= instead of >)",
)
def ttl_expired_at_boundary() -> Implementation:
    return _TtlExpiredAtBoundary("ttl_expired_at_boundary")


# ---------------------------------------------------------------- envelope

_PLACEHOLDER: Final = "00000000-0000-4000-8000-000000000000"


def _missing_correlation_id(err: ImplError) -> bool:
    return err.code == "MISSING_FIELD" and str(err.details.get("field", "")).endswith("correlation_id")


def _with_placeholder(codec: str, data: bytes) -> bytes | None:
    """``data`` with a correlation id put in, or None when it cannot be parsed."""
    try:
        if codec == "json":
            obj = json.loads(data)
            obj["header"]["correlation_id"] = _PLACEHOLDER
            return json.dumps(obj, ensure_ascii=False).encode("utf-8")
        arr = msgpack.unpackb(data, raw=False, timestamp=0, strict_map_key=False)
        arr[0][1] = bytes(16)
        packed: bytes = msgpack.packb(arr, use_bin_type=True)
        return packed
    except Exception:
        return None


class _ResponseWithoutCorrelationId(MutantImplementation):
    def _lenient(self, codec: str, data: bytes, run: Callable[[bytes], MessageData]) -> MessageData:
        try:
            return run(data)
        except ImplError as e:
            patched = _with_placeholder(codec, data) if _missing_correlation_id(e) else None
            if patched is None:
                raise
        got = run(patched)
        got["header"]["correlation_id"] = None
        return got

    def decode(self, codec: str, data: bytes) -> MessageData:
        return self._lenient(codec, data, lambda d: ReferenceImplementation.decode(self, codec, d))

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        return self._lenient(
            codec, data, lambda d: ReferenceImplementation.receive(self, codec, d, receiver_version)
        )

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        if fields.get("message_type") == "Response" and fields.get("correlation_id") is None:
            got = super().build({**fields, "correlation_id": _PLACEHOLDER})
            got["header"]["correlation_id"] = None
            return got
        return super().build(fields)


@mutant(
    profile="envelope",
    breaks=["ENV-007"],
    description="a Response without correlation_id is accepted by the builder and the decoders",
)
def response_without_correlation_id() -> Implementation:
    return _ResponseWithoutCorrelationId("response_without_correlation_id")


# ---------------------------------------------------------------- codec-json


class _UppercaseUuidsInJson(MutantImplementation):
    def encode(self, codec: str, message: MessageData) -> bytes:
        out = super().encode(codec, message)
        if codec != "json":
            return out
        obj = json.loads(out)
        header = obj["header"]
        header["id"] = header["id"].upper()
        if header["correlation_id"] is not None:
            header["correlation_id"] = header["correlation_id"].upper()
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@mutant(
    profile="codec-json",
    breaks=["COD-001"],
    description="the JSON encoder writes upper-case UUIDs (a tolerated spelling, not the canonical one)",
)
def uppercase_uuids_in_json() -> Implementation:
    return _UppercaseUuidsInJson("uppercase_uuids_in_json")
