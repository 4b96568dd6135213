"""A client process of tests/bus/test_node_processes.py (run as ``python node_client.py ROLE ...``).

``sub ADDRESS N M``: register ``sub``, subscribe to ``t``, print ``ready``; on the line ``go``
receive N messages (one JSON line each: seq and priority), print ``received``, then answer M
requests (the answer's payload: the request's ``n``, doubled) and exit.

``pub ADDRESS N M``: register ``pub``, publish N events to ``t`` with mixed priorities (payload
``{"seq": i}``), confirm with a ping, print ``published``; on the line ``go`` send M requests to
``sub``, 64 at a time, print one JSON line per answer (``n`` and the answer) and exit.

Every line goes to stdout, flushed; protocol errors end the process with status 1.
"""

from __future__ import annotations

import asyncio
import json
import sys

from symphony_ipc.bus import BusClient

PRIORITIES = (0, 100, -100, 1000, 0, -1000, 100, 0, -100, 1000, 0, 0)


def say(obj: object) -> None:
    print(obj if isinstance(obj, str) else json.dumps(obj), flush=True)


async def wait_for_go() -> None:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(f"expected go, got {line!r}")


async def sub(address: str, n: int, m: int) -> None:
    client = await BusClient.connect(address, "sub", prefetch=32)
    await client.subscribe("t")
    say("ready")
    await wait_for_go()
    for _ in range(n):
        msg = await client.receive(timeout=30)
        say({"seq": msg.payload["seq"], "priority": msg.header.priority})
    say("received")
    await client.serve(lambda req: {"n": req.payload["n"], "twice": 2 * req.payload["n"]}, count=m)
    await client.close()


async def pub(address: str, n: int, m: int) -> None:
    client = await BusClient.connect(address, "pub")
    for i in range(n):
        await client.publish("t", {"seq": i}, priority=PRIORITIES[i % len(PRIORITIES)])
    await client.ping()
    if client.refused:
        raise SystemExit(f"refused: {list(client.refused)}")
    say("published")
    await wait_for_go()
    window = asyncio.Semaphore(64)

    async def one(k: int) -> None:
        async with window:
            answer = await client.request("sub", {"n": k}, timeout=30)
        say({"n": k, "answer": answer.payload, "correlation_id": answer.header.correlation_id})

    await asyncio.gather(*(one(k) for k in range(m)))
    await client.close()


def main() -> int:
    role, address, n, m = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    asyncio.run((sub if role == "sub" else pub)(address, n, m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
