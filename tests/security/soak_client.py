"""A soak client (run as a script by test_soak.py): sends COUNT requests one after the other through
a reconnecting client and logs every outcome, unbuffered, so that a SIGKILL loses nothing logged.

    python soak_client.py ADDRESS CLIENT_ID COUNT LOG_PATH

Log lines: ``s SEQ`` before a request is handed over, then ``ok SEQ`` (answered with its own bytes),
``bad SEQ`` (answered with other bytes: a duplicate or a misdelivery) or ``fail SEQ REASON``
(reported failed: the transport error's class). The last line is ``done``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from symphony_ipc import MessageType, encode, new_message
from symphony_ipc.transport import Backoff, ReconnectingClient, TransportError, connect


async def main(address: str, client: int, count: int, log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def log(line: str) -> None:
        os.write(fd, line.encode() + b"\n")

    rc = ReconnectingClient(
        lambda: connect(address, codecs=("msgpack",), timeout=5.0),
        Backoff(base=0.005, factor=2.0, max_delay=0.25, jitter=0.5, max_retries=60),
    )
    try:
        for seq in range(count):
            frame = encode(
                new_message(MessageType.REQUEST, f"soak-{client}", "echo", {"seq": seq}), "msgpack"
            )
            log(f"s {seq}")
            try:
                answer = await rc.request(frame, timeout=10.0)
            except TransportError as e:
                log(f"fail {seq} {type(e).__name__}")
                continue
            log(f"ok {seq}" if answer == frame else f"bad {seq}")
        log("done")
    finally:
        await rc.close()
        os.close(fd)


if __name__ == "__main__":
    address, client, count, log_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    asyncio.run(main(address, client, count, log_path))
