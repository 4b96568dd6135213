"""Envelope benchmarks: ids, creation, builder, codecs, ordering; with same-run floors and peers.

Run: ``python perf/bench_envelope.py -o results/envelope.json`` (pyperf options apply: ``--fast``,
``--rigorous``, ``--debug-single-value``). Names: ``envelope.*`` for the reference, ``floor.*`` for
what the same work costs with nothing of ours in it, ``peer.*`` for other libraries doing the job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import pyperf

import symphony_ipc as s

PAYLOAD = {"action": "start", "args": ["--fast", 3], "ok": True}


def _timed(fn: Callable[[], Any]) -> Callable[[int], float]:
    def run(loops: int) -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        return time.perf_counter() - t0

    return run


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


def add_benchmarks(runner: pyperf.Runner) -> None:
    msg = _sample()
    as_json = s.encode_json(msg)
    as_mp = s.encode_msgpack(msg)
    wire_dict = msgspec.json.decode(as_json)
    bare_enc = msgspec.json.Encoder()
    bare_dec = msgspec.json.Decoder()

    benches: dict[str, Callable[[], Any]] = {
        "envelope.id": s.new_id,
        "envelope.create": _create,
        "envelope.builder": _build,
        "envelope.json_encode": lambda: s.encode_json(msg),
        "envelope.json_decode": lambda: s.decode_json(as_json),
        "envelope.msgpack_encode": lambda: s.encode_msgpack(msg),
        "envelope.msgpack_decode": lambda: s.decode_msgpack(as_mp),
        "envelope.build_json_roundtrip": _roundtrip_json,
        "envelope.validate": lambda: s.message_from_data(wire_dict),
        "ordering.push_pop_32": _queue_push_pop,
        # floors: the same work with nothing of ours in it
        "floor.json_encode_dict": lambda: bare_enc.encode(wire_dict),
        "floor.json_decode_dict": lambda: bare_dec.decode(as_json),
        # peers
        "peer.uuid4": uuid.uuid4,
    }
    try:
        from cloudevents.conversion import to_json  # type: ignore[import-not-found]
        from cloudevents.http import CloudEvent  # type: ignore[import-not-found]

        attrs = {"type": "Request", "source": "conductor"}
        benches["peer.cloudevents_create"] = lambda: CloudEvent(attrs, PAYLOAD)
        ce = CloudEvent(attrs, PAYLOAD)
        benches["peer.cloudevents_json_encode"] = lambda: to_json(ce)
    except ImportError:
        pass
    for name, fn in benches.items():
        runner.bench_time_func(name, _timed(fn))


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["symphony_ipc_version"] = s.__version__
    runner.metadata["spec_version"] = s.SPEC_VERSION
    runner.metadata["msgspec_version"] = msgspec.__version__
    add_benchmarks(runner)


if __name__ == "__main__":
    main()
