"""Bus benchmarks: in-process throughput and request latency; request/response through a bus node.

Run: ``python perf/bench_bus.py -o results/bus.json`` (pyperf options apply).

Each value is the time per message, so ``1 / median`` is messages per second:

* ``bus.inproc.publish_deliver``: ``await bus.publish(msg)`` to ``topic:events``, one subscriber with
  a plain-function handler, until the subscriber has handled every message (``await bus.join()``).
  Messages are built beforehand (building one costs about as much again: see
  ``envelope.create``).
* ``bus.inproc.send_deliver``: the same through ``await bus.send(msg)`` (the target decides the
  pattern; the core's fast path).
* ``bus.inproc.request_rt``: one request/response round trip in process: create a ``Request``,
  ``await bus.request(msg)``, a responder endpoint answers with ``await bus.respond(...)``.
* ``floor.asyncio.queue_put_get``: an ``asyncio.Queue`` and a consumer task moving the same
  objects, the least any asyncio bus could do.

Cross-process, through a ``symphony-ipc serve`` bus node on a Unix socket (MessagePack): a
requester here, the node and a responder (perf/_bus_responder.py, window 256) in two child
processes, started once per pyperf worker process. Every pair travels requester -> node ->
responder -> node -> requester; the response acknowledges the request (NODE-010):

* ``bus.node.request_rt``: one request at a time (``await client.request("svc", payload)``, a
  payload of 200 bytes of JSON as in bench_transport.py);
* ``bus.node.pipelined``: 256 requests outstanding at once; the time per completed pair, so
  ``1 / median`` is pairs per second.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import symphony_ipc as s
from _common import CPU_CLOCK, CPU_CLOCK_NAME, HERE, WALL_CLOCK_NAME, Skips, make_runner, payload_of_size
from symphony_ipc.bus import BusClient, BusConfig, MessageBus

POOL = 4096  # distinct messages, reused cyclically (the bus keys nothing on ids for events)
PAYLOAD = {"event": "data_ready", "value": 42}


def _events(target: str) -> list[s.Message]:
    return [s.new_message(s.MessageType.EVENT, "pub", target, PAYLOAD) for _ in range(POOL)]


class BusRig:
    """One event loop and one bus per worker process, reused by every call of the time function."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._setup())

    async def _setup(self) -> None:
        self.count = 0

        def on_event(msg: s.Message) -> None:
            self.count += 1

        self.bus = MessageBus(BusConfig(max_pending=1024, history_max=1000))
        self.bus.register("pub")
        self.bus.register("sub", on_event)
        self.bus.subscribe("sub", "events")

        async def answer(msg: s.Message) -> None:
            await self.bus.respond(msg, {"ok": True})

        self.bus.register("client")
        self.bus.register("server", answer)
        self.topic_msgs = _events("topic:events")

    def close(self) -> None:
        self.loop.run_until_complete(self.bus.close())
        self.loop.close()

    def publish(self, loops: int, via_send: bool) -> float:
        return self.loop.run_until_complete(self._publish(loops, via_send))

    async def _publish(self, loops: int, via_send: bool) -> float:
        bus, msgs = self.bus, self.topic_msgs
        submit = bus.send if via_send else bus.publish
        start = self.count
        t0 = CPU_CLOCK()
        for i in range(loops):
            await submit(msgs[i % POOL])
        await bus.join()
        dt = CPU_CLOCK() - t0
        if self.count - start != loops:
            raise RuntimeError(f"delivered {self.count - start} of {loops}")
        return dt

    def request(self, loops: int) -> float:
        return self.loop.run_until_complete(self._request(loops))

    async def _request(self, loops: int) -> float:
        bus, new_message, req = self.bus, s.new_message, s.MessageType.REQUEST
        t0 = CPU_CLOCK()
        for _ in range(loops):
            msg = new_message(req, "client", "server", PAYLOAD)
            answer = await bus.request(msg)
            if answer.header.correlation_id != msg.header.id:
                raise RuntimeError("answered with another message")
        return CPU_CLOCK() - t0


class QueueRig:
    """The floor: an asyncio.Queue and a consumer task, same objects, same handler shape."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.items = _events("sub")
        self.loop.run_until_complete(self._setup())

    async def _setup(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)
        self.count = 0
        self.consumer = asyncio.get_running_loop().create_task(self._consume())

    async def _consume(self) -> None:
        q = self.queue
        while True:
            await q.get()
            self.count += 1
            q.task_done()

    def close(self) -> None:
        self.consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self.consumer)
        self.loop.close()

    def run(self, loops: int) -> float:
        return self.loop.run_until_complete(self._run(loops))

    async def _run(self, loops: int) -> float:
        put, items = self.queue.put, self.items
        start = self.count
        t0 = CPU_CLOCK()
        for i in range(loops):
            await put(items[i % POOL])
        await self.queue.join()
        dt = CPU_CLOCK() - t0
        if self.count - start != loops:
            raise RuntimeError("the queue lost items")
        return dt


class NodeRig:
    """A bus node and a responder in child processes; the requester in this process's loop."""

    WINDOW = 256
    INFLIGHT = 256

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="sy-perf-bus-", dir="/tmp")
        self.address = f"unix:{self.tmp}/bus.sock"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.payload = payload_of_size(200)
        try:
            node = subprocess.Popen(
                [sys.executable, "-m", "symphony_ipc.cli", "serve", "--listen", self.address],
                stderr=subprocess.PIPE,
            )
            self.procs.append(node)
            assert node.stderr is not None
            if b"bus node" not in node.stderr.readline():  # "symphony-ipc serve: bus node on ..."
                raise RuntimeError(f"the bus node did not start (exit {node.poll()})")
            resp = subprocess.Popen(
                [sys.executable, str(HERE / "_bus_responder.py"), self.address, str(self.WINDOW)],
                stdout=subprocess.PIPE,
            )
            self.procs.append(resp)
            assert resp.stdout is not None
            if resp.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"the responder did not start (exit {resp.poll()})")
            self.loop = asyncio.new_event_loop()
            self.client = self.loop.run_until_complete(BusClient.connect(self.address, "cli"))
            self.request(100)  # warm-up
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(client.close())
        if hasattr(self, "loop"):
            self.loop.close()
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def request(self, loops: int) -> float:
        return self.loop.run_until_complete(self._request(loops))

    async def _request(self, loops: int) -> float:
        request, payload = self.client.request, self.payload
        t0 = time.perf_counter()
        for _ in range(loops):
            answer = await request("svc", payload, timeout=10)
            if answer.payload != payload:
                raise RuntimeError("the responder answered another payload")
        return time.perf_counter() - t0

    def pipelined(self, loops: int) -> float:
        return self.loop.run_until_complete(self._pipelined(loops))

    async def _pipelined(self, loops: int) -> float:
        request, payload = self.client.request, self.payload
        share, extra = divmod(loops, self.INFLIGHT)

        async def worker(k: int) -> None:  # one request outstanding per worker
            for _ in range(share + (k < extra)):
                await request("svc", payload, timeout=60)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(min(loops, self.INFLIGHT))))
        return time.perf_counter() - t0


_rigs: dict[str, Any] = {}


@atexit.register
def _close_rigs() -> None:
    while _rigs:
        _rigs.popitem()[1].close()


def _rig(kind: type[Any]) -> Any:
    rig = _rigs.get(kind.__name__)
    if rig is None:
        rig = _rigs[kind.__name__] = kind()
    return rig


def add_benchmarks(runner: Any, skips: Skips) -> None:
    meta = {"transport": "in-process", "subscribers": 1, "prebuilt_messages": 1, "clock": CPU_CLOCK_NAME}
    runner.bench_time_func(
        "bus.inproc.publish_deliver",
        lambda loops: _rig(BusRig).publish(loops, via_send=False),
        metadata={**meta, "api": "await MessageBus.publish"},
    )
    runner.bench_time_func(
        "bus.inproc.send_deliver",
        lambda loops: _rig(BusRig).publish(loops, via_send=True),
        metadata={**meta, "api": "await MessageBus.send"},
    )
    runner.bench_time_func(
        "bus.inproc.request_rt",
        lambda loops: _rig(BusRig).request(loops),
        metadata={
            "transport": "in-process",
            "api": "await MessageBus.request",
            "prebuilt_messages": 0,
            "clock": CPU_CLOCK_NAME,
        },
    )
    runner.bench_time_func(
        "floor.asyncio.queue_put_get",
        lambda loops: _rig(QueueRig).run(loops),
        metadata={**meta, "api": "await asyncio.Queue.put"},
    )
    node = {
        "transport": "unix",
        "codec": "msgpack",
        "payload_bytes": 200,
        "processes": "requester, node, responder",
        "responder_window": NodeRig.WINDOW,
        "clock": WALL_CLOCK_NAME,
    }
    runner.bench_time_func(
        "bus.node.request_rt",
        lambda loops: _rig(NodeRig).request(loops),
        metadata={**node, "api": "await BusClient.request", "inflight": 1},
    )
    runner.bench_time_func(
        "bus.node.pipelined",
        lambda loops: _rig(NodeRig).pipelined(loops),
        metadata={**node, "api": "await BusClient.request", "inflight": NodeRig.INFLIGHT},
    )


def main() -> None:
    runner = make_runner("bus")
    runner.parse_args()
    add_benchmarks(runner, Skips(runner))


if __name__ == "__main__":
    main()
