"""A bus-node soak participant (run as a script by test_soak.py), logging unbuffered.

    python soak_bus_client.py send ADDRESS ENDPOINT COUNT LOG    # COUNT events to the endpoint "sink"
    python soak_bus_client.py sink ADDRESS EXPECTED LOG          # receive until EXPECTED or idle 10 s

Sender lines: ``s SEQ`` before each send, ``refused SEQ CODE`` for each refusal the node reported,
``done``. Sink lines: ``r SENDER SEQ`` per message received (acknowledged), ``done``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from symphony_ipc.bus import BusClient


def _logger(path: str) -> tuple[int, Callable[[str], None]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def log(line: str) -> None:
        os.write(fd, line.encode() + b"\n")

    return fd, log


async def send(address: str, endpoint: str, count: int, path: str) -> None:
    fd, log = _logger(path)
    client = await BusClient.connect(address, endpoint)
    try:
        for seq in range(count):
            log(f"s {seq}")
            await client.send(client.message("sink", {"seq": seq}))
        await client.ping()  # the node has taken every frame before this one
        await asyncio.sleep(0.2)
        for msg in list(client.refused):
            payload = msg.payload if isinstance(msg.payload, dict) else {}
            log(f"refused {msg.header.correlation_id} {payload.get('code')}")
        log("done")
    finally:
        await client.close()
        os.close(fd)


async def sink(address: str, expected: int, path: str) -> None:
    fd, log = _logger(path)
    client = await BusClient.connect(address, "sink", prefetch=256)
    got = 0
    try:
        while got < expected:
            try:
                msg = await client.receive(timeout=10.0)
            except TimeoutError:
                break
            log(f"r {msg.header.source} {msg.payload['seq']}")
            got += 1
        log("done")
    finally:
        await client.close()
        os.close(fd)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "send":
        asyncio.run(send(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
    else:
        asyncio.run(sink(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
