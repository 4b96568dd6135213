"""In-process publish -> deliver throughput of the reference bus (not a test: run it by hand).

    python tests/bus/bench_throughput.py [--n 200000] [--repeat 5]

Messages are built beforehand (building one costs about as much as routing and delivering it,
see perf/bench_envelope.py); each figure is the best of ``--repeat`` runs, in messages delivered
per second, so a busy shared machine shows the least disturbed run.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

import symphony_ipc as s
from symphony_ipc.bus import BusConfig, BusCore, MessageBus

PAYLOAD = {"event": "data_ready", "value": 42}


def _messages(n: int, target: str) -> list[s.Message]:
    return [s.new_message(s.MessageType.EVENT, "pub", target, PAYLOAD) for _ in range(n)]


def core_run(n: int, subscribers: int, target: str, batch: int = 256) -> tuple[int, float]:
    core = BusCore(BusConfig(max_pending=batch, history_max=1000))
    core.register("pub")
    count = [0]

    def handler(msg: s.Message, attempt: int) -> None:
        count[0] += 1

    for i in range(subscribers):
        core.register(f"sub{i}", handler)
        core.subscribe(f"sub{i}", "events")
    msgs = _messages(n, target)
    eps = [f"sub{i}" for i in range(subscribers)]
    submit, deliver = core.submit, core.deliver
    t0 = time.perf_counter()
    for j in range(0, n, batch):
        for m in msgs[j : j + batch]:
            submit(m)
        for e in eps:
            deliver(e)
    dt = time.perf_counter() - t0
    assert count[0] == n * subscribers == core.stats().delivered
    return count[0], dt


def asyncio_run(n: int) -> tuple[int, float]:
    async def main() -> tuple[int, float]:
        count = [0]

        def handler(msg: s.Message) -> None:
            count[0] += 1

        async with MessageBus(BusConfig(max_pending=1024, history_max=1000)) as bus:
            bus.register("pub")
            bus.register("sub0", handler)
            bus.subscribe("sub0", "events")
            msgs = _messages(n, "topic:events")
            send = bus.send
            t0 = time.perf_counter()
            for m in msgs:
                await send(m)  # waits (backpressure) whenever the consumer is 1024 behind
            await bus.join()
            dt = time.perf_counter() - t0
            assert count[0] == n
            return count[0], dt

    return asyncio.run(main())


def best(fn: Callable[[], tuple[int, float]], repeat: int) -> float:
    return max(d / dt for d, dt in (fn() for _ in range(repeat)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    n, r = a.n, a.repeat
    rows = [
        ("core, direct, 1 recipient", lambda: core_run(n, 1, "sub0")),
        ("core, publish, 1 subscriber", lambda: core_run(n, 1, "topic:events")),
        ("core, publish, 4 subscribers", lambda: core_run(n // 4, 4, "topic:events")),
        ("asyncio MessageBus, await send, 1 subscriber", lambda: asyncio_run(n)),
    ]
    for name, fn in rows:
        print(f"{name:48s} {best(fn, r):>12,.0f} deliveries/s")


if __name__ == "__main__":
    main()
