"""Build a message from the language-neutral field set of the driver's ``build`` command.

The in-process adapter, the reference driver and the vector tests all build this way, so they
report the same error for the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._codec import U64
from ._errors import MissingField, SerializationError
from ._model import Message, MessageBuilder, Ttl
from ._time import NS, Clock


def ttl_from_data(value: object) -> Ttl | None:
    """A ttl in its data form (``null`` or ``{"secs", "nanos"}``), range-checked (TTL-007)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SerializationError(f"ttl: expected null or an object, got {type(value).__name__}")
    for key in ("secs", "nanos"):
        if key not in value:
            raise MissingField(f"ttl.{key}")
    secs, nanos = value["secs"], value["nanos"]
    if type(secs) is not int or not 0 <= secs <= U64:
        raise SerializationError(f"ttl.secs: expected a u64, got {secs!r}")
    if type(nanos) is not int or not 0 <= nanos < NS:
        raise SerializationError(f"ttl.nanos: expected an integer in [0, 999999999], got {nanos!r}")
    return Ttl(secs, nanos)


def build_from_fields(fields: Mapping[str, Any], clock: Clock) -> Message:
    """Apply ``fields`` to a :class:`MessageBuilder` and build (ENV-011, ENV-012).

    Setters check eagerly, so they run in wire order: with several faults the first reported is
    ERR-002's. Absent fields are not set; values are used as given (copy them first if needed).
    """
    b = MessageBuilder(clock)
    if "correlation_id" in fields:
        b.correlation_id(fields["correlation_id"])
    if "message_type" in fields:
        b.message_type(fields["message_type"])
    if "source" in fields:
        b.source(fields["source"])
    if "target" in fields:
        b.target(fields["target"])
    if "ttl" in fields:
        b.ttl(ttl_from_data(fields["ttl"]))
    if "priority" in fields:
        prio = fields["priority"]
        if type(prio) is not int:
            raise SerializationError(f"priority: expected an integer, got {prio!r}")
        b.priority(prio)
    if "payload" in fields:
        b.payload(fields["payload"])
    if "metadata" in fields:
        meta = fields["metadata"]
        if not isinstance(meta, Mapping):
            raise SerializationError(f"metadata: expected an object, got {meta!r}")
        for key, value in meta.items():
            b.metadata(key, value)
    return b.build()
