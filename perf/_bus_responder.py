"""The responder of perf/bench_bus.py's bus-node benchmarks, run as a child process.

    python perf/_bus_responder.py ADDRESS WINDOW

Registers the endpoint ``svc`` at the bus node at ADDRESS, prints "ready", then answers every
request with its payload (a :class:`symphony_ipc.bus.BusClient` with a window of WINDOW copies)
until the node or the parent goes away.
"""

from __future__ import annotations

import asyncio
import sys

from symphony_ipc.bus import BusClient


async def main(address: str, window: int) -> None:
    client = await BusClient.connect(address, "svc", prefetch=window)
    print("ready", flush=True)
    await client.serve(lambda m: m.payload)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
