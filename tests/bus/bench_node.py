"""Cross-process figures of the bus node: request/response latency and pipelined throughput.

Run: ``python tests/bus/bench_node.py [-n 5000] [--pipelined 50000] [--window 256] [--inflight 256]``

It starts ``symphony-ipc serve`` on a Unix socket in a temporary directory, a responder process
(``svc``: a :class:`BusClient` whose handler returns the request's payload) and, in this process,
a requester ``cli``. Every request travels requester -> node -> responder -> node -> requester as
envelope messages (MessagePack); the response acknowledges the request (NODE-010). Printed:

* latency: one request at a time (after a warm-up), median and p99 in microseconds;
* pipelined: ``--inflight`` requests outstanding at once, completed pairs per second;
* events: ``--events`` published events to a subscriber process, deliveries per second.

Not a test: numbers depend on the machine and its load (the development machine has 2 shared
cores for the node, both clients and everything else).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from symphony_ipc.bus import BusClient

CLI = [sys.executable, "-m", "symphony_ipc.cli"]


async def responder(address: str, window: int) -> None:
    client = await BusClient.connect(address, "svc", prefetch=window)
    print("ready", flush=True)
    await client.serve(lambda m: m.payload)


async def subscriber(address: str, count: int, window: int) -> None:
    client = await BusClient.connect(address, "sink", prefetch=window)
    await client.subscribe("bench")
    await client.set_window(window)
    print("ready", flush=True)
    first = None
    for i in range(count):
        await client.receive()
        if i == 0:
            first = time.perf_counter()
    assert first is not None
    print(json.dumps({"after_first_s": time.perf_counter() - first}), flush=True)
    await client.close()


def _pctl(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    address: str, n: int, pipelined: int, inflight: int, pids: tuple[int, ...] = ()
) -> dict[str, float]:
    cli = await BusClient.connect(address, "cli")
    payload = {"x": "y" * 100}
    for _ in range(200):  # warm-up
        await cli.request("svc", payload, timeout=10)
    lat: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await cli.request("svc", payload, timeout=10)
        lat.append((time.perf_counter_ns() - t0) / 1000)
    share, extra = divmod(pipelined, inflight)

    async def worker(k: int) -> None:  # ``inflight`` requesters, one request outstanding each
        for _ in range(share + (k < extra)):
            await cli.request("svc", payload, timeout=60)

    cpu0 = [cpu_seconds(p) for p in pids] + [time.process_time()]
    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(inflight)))
    pairs = pipelined / (time.perf_counter() - start)
    cpu = [b - a for a, b in zip(cpu0, [cpu_seconds(p) for p in pids] + [time.process_time()], strict=True)]
    await cli.close()
    out = {
        "latency_median_us": statistics.median(lat),
        "latency_p99_us": _pctl(lat, 0.99),
        "pipelined_pairs_per_s": pairs,
    }
    # CPU per pair, by process (node, responder, requester): what the load of the machine hides
    for name, seconds in zip(("node", "responder", "requester")[-len(cpu) :], cpu, strict=True):
        out[f"cpu_us_per_pair_{name}"] = seconds / pipelined * 1e6
    return out


async def publish(address: str, count: int) -> float:
    pub = await BusClient.connect(address, "pub")
    t0 = time.perf_counter()
    for i in range(count):
        await pub.publish("bench", i)
    await pub.ping()
    dt = time.perf_counter() - t0
    await pub.close()
    return dt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", nargs="?", default="bench", choices=("bench", "responder", "subscriber"))
    p.add_argument("address", nargs="?")
    p.add_argument("-n", type=int, default=5000, help="sequential requests timed (default 5000)")
    p.add_argument("--pipelined", type=int, default=50_000, help="pipelined requests (default 50000)")
    p.add_argument("--inflight", type=int, default=256, help="requests outstanding (default 256)")
    p.add_argument("--window", type=int, default=256, help="the responder's window (default 256)")
    p.add_argument("--events", type=int, default=50_000, help="events published (default 50000)")
    args = p.parse_args()
    if args.role == "responder":
        asyncio.run(responder(args.address, args.window))
        return 0
    if args.role == "subscriber":
        asyncio.run(subscriber(args.address, args.events, args.window))
        return 0
    directory = tempfile.mkdtemp(prefix="sy-bench-", dir="/tmp")
    address = f"unix:{directory}/bench.sock"
    procs: list[subprocess.Popen[str]] = []
    try:
        node = subprocess.Popen(
            [*CLI, "serve", "--listen", address, "--max-pending", "100000"], stderr=subprocess.PIPE, text=True
        )
        procs.append(node)
        assert node.stderr is not None
        node.stderr.readline()  # "symphony-ipc serve: bus node on ..."
        me = [sys.executable, os.path.abspath(__file__)]
        resp = subprocess.Popen(
            [*me, "responder", address, "--window", str(args.window)], stdout=subprocess.PIPE, text=True
        )
        procs.append(resp)
        assert resp.stdout is not None
        assert resp.stdout.readline().strip() == "ready"
        figures = asyncio.run(measure(address, args.n, args.pipelined, args.inflight, (node.pid, resp.pid)))
        sub = subprocess.Popen(
            [*me, "subscriber", address, "--events", str(args.events), "--window", str(args.window)],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(sub)
        assert sub.stdout is not None
        assert sub.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        sent_s = asyncio.run(publish(address, args.events))
        done = json.loads(sub.stdout.readline())
        total = time.perf_counter() - t0
        figures["events_published_per_s"] = args.events / sent_s
        figures["events_delivered_per_s"] = args.events / total
        del done
        print(json.dumps({k: round(v, 1) for k, v in figures.items()}))
        print(
            "bus node over unix (msgpack): request/response latency median "
            f"{figures['latency_median_us']:.0f} us, p99 {figures['latency_p99_us']:.0f} us; "
            f"pipelined ({args.inflight} in flight) "
            f"{figures['pipelined_pairs_per_s']:,.0f} pairs/s; events to another process "
            f"{figures['events_delivered_per_s']:,.0f}/s"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
