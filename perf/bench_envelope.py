"""Envelope benchmarks: ids, creation, builder, codecs, ordering; with same-run floors and peers.

Run: ``python perf/bench_envelope.py -o results/envelope.json`` (pyperf options apply: ``--fast``,
``--rigorous``, ``--debug-single-value``). Names: ``envelope.*`` for the reference, ``floor.*`` for
what the same work costs with nothing of ours in it (the message's wire form as a bare dict or
array, encoded and decoded with msgspec, the fastest codec library installed here), ``peer.*`` for
other libraries doing the job (``uuid.uuid4``; the CloudEvents SDK, skipped when not installed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import msgspec

import symphony_ipc as s
from _common import CPU_CLOCK_NAME, PERF_EXTRA, Skips, make_runner, timed

PAYLOAD = {"action": "start", "args": ["--fast", 3], "ok": True}


def _sample() -> s.Message:
    return (
        s.Message.builder()
        .message_type(s.MessageType.REQUEST)
        .source("conductor")
        .target("pool-manager")
        .payload(PAYLOAD)
        .metadata("request_id", "req-123")
        .build()
    )


def _build() -> s.Message:
    return (
        s.Message.builder()
        .message_type(s.MessageType.REQUEST)
        .source("conductor")
        .target("pool-manager")
        .payload(PAYLOAD)
        .build()
    )


def _create() -> s.Message:
    return s.new_message(s.MessageType.REQUEST, "conductor", "pool-manager", PAYLOAD)


def _roundtrip_json() -> s.Message:
    return s.decode_json(s.encode_json(_build()))


def _roundtrip_msgpack() -> s.Message:
    return s.decode_msgpack(s.encode_msgpack(_build()))


def _queue_push_pop() -> None:
    q = s.PriorityQueue()
    for m in _QUEUE_MSGS:
        q.push(m)
    while q:
        q.pop()


_QUEUE_MSGS = [
    s.new_message(s.MessageType.EVENT, "a", "b", i, priority=p)
    for i, p in enumerate([0, 100, -100, 1000, 0, -1000, 100, 0] * 4)
]


def _cloudevents() -> tuple[Callable[[], Any], Callable[[Any], bytes], Callable[[bytes], Any], str] | None:
    """Create, to JSON, from JSON with the CloudEvents SDK: its core API (2.x), else the 1.x one.

    The SDK's create stamps a fresh id and time, as ``new_message`` does.
    """
    attrs = {"type": "Request", "source": "conductor"}
    try:
        from cloudevents.core.formats.json import JSONFormat  # type: ignore[import-not-found]
        from cloudevents.core.v1.event import CloudEvent  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        fmt = JSONFormat()
        return (
            lambda: CloudEvent(dict(attrs), PAYLOAD),
            fmt.write,
            lambda data: fmt.read(CloudEvent, data),
            "core",
        )
    try:
        from cloudevents.conversion import to_json  # type: ignore[import-not-found]
        from cloudevents.http import CloudEvent, from_json  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lambda: CloudEvent(dict(attrs), PAYLOAD), to_json, from_json, "http"


def add_benchmarks(runner: Any, skips: Skips) -> None:
    msg = _sample()
    as_json = s.encode_json(msg)
    as_mp = s.encode_msgpack(msg)
    wire_dict = msgspec.json.decode(as_json)
    wire_array = msgspec.msgpack.decode(as_mp, type=list[Any])  # the timestamp as a datetime: close enough
    bare_enc, bare_dec = msgspec.json.Encoder(), msgspec.json.Decoder()
    mp_enc, mp_dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    ce = _cloudevents()
    if ce is None:
        for name in ("create", "json_encode", "json_decode"):
            skips.add(f"peer.cloudevents_{name}", f"cloudevents is not installed ({PERF_EXTRA})")

    json_meta = {"codec": "json", "message_bytes": len(as_json)}
    mp_meta = {"codec": "msgpack", "message_bytes": len(as_mp)}
    benches: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
        "envelope.id": (s.new_id, {}),
        "envelope.create": (_create, {}),
        "envelope.builder": (_build, {}),
        # the pairs a ratio target compares run back to back: a shared machine's load drifts
        "envelope.json_encode": (lambda: s.encode_json(msg), json_meta),
        "envelope.msgpack_encode": (lambda: s.encode_msgpack(msg), mp_meta),
        "envelope.json_decode": (lambda: s.decode_json(as_json), json_meta),
        "envelope.msgpack_decode": (lambda: s.decode_msgpack(as_mp), mp_meta),
        "envelope.build_json_roundtrip": (_roundtrip_json, json_meta),
        "envelope.build_msgpack_roundtrip": (_roundtrip_msgpack, mp_meta),
        "envelope.validate": (lambda: s.message_from_data(wire_dict), {}),
        "ordering.push_pop_32": (_queue_push_pop, {"messages": len(_QUEUE_MSGS)}),
        # floors: the same work with nothing of ours in it
        "floor.json_encode_dict": (lambda: bare_enc.encode(wire_dict), json_meta),
        "floor.json_decode_dict": (lambda: bare_dec.decode(as_json), json_meta),
        "floor.msgpack_encode_array": (lambda: mp_enc.encode(wire_array), mp_meta),
        "floor.msgpack_decode_array": (lambda: mp_dec.decode(as_mp), mp_meta),
        # peers
        "peer.uuid4": (uuid.uuid4, {}),
    }
    if ce is not None:
        create, to_json, from_json, api = ce
        event = create()
        ce_json = to_json(event)
        ce_meta = {"codec": "json", "cloudevents_api": api}
        benches["peer.cloudevents_create"] = (create, {"cloudevents_api": api})
        benches["peer.cloudevents_json_encode"] = (lambda: to_json(event), ce_meta)
        benches["peer.cloudevents_json_decode"] = (lambda: from_json(ce_json), ce_meta)
    for name, (fn, meta) in benches.items():
        runner.bench_time_func(name, timed(fn), metadata={**meta, "clock": CPU_CLOCK_NAME})


def main() -> None:
    runner = make_runner("envelope")
    runner.parse_args()
    add_benchmarks(runner, Skips(runner))


if __name__ == "__main__":
    main()
