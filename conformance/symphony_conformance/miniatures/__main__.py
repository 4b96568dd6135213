"""``python -m symphony_conformance.miniatures MODE [ARG]``: see the package docstring."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any, NoReturn

from symphony_ipc._driver import Driver, dumps

from . import MODES


def _sleep_forever() -> NoReturn:
    time.sleep(60)
    os._exit(4)


def _hello(mode: str, resp: dict[str, Any]) -> bytes:
    result = resp.get("result", {})
    caps = result.get("capabilities", {})
    if mode == "garbage-hello":
        return b"Hello! I am a driver.\n"
    if mode == "unknown-capability":
        caps["profiles"].append("telepathy")
    elif mode == "inconsistent-capabilities":
        caps["profiles"].remove("codec-msgpack")
    elif mode == "protocol-mismatch":
        result["driver_protocol"] = 2
    elif mode == "refuse-hello":
        return dumps({"seq": resp["seq"], "errored": {"message": "not today"}})
    return dumps(resp)


def _answer(mode: str, req: dict[str, Any], resp: dict[str, Any]) -> bytes:
    cmd, seq = req.get("cmd"), req.get("seq")
    if mode == "wrong-seq":
        resp["seq"] = seq + 1 if isinstance(seq, int) else 0
    elif mode == "garbage":
        return b"panic: something went wrong, here is a stack trace on stdout\n"
    elif mode == "wrong-data" and cmd == "decode" and resp.get("ok"):
        resp["result"]["message"]["payload"] = "wrong"
    elif mode == "schema-invalid" and cmd == "encode":
        resp = {"seq": seq, "ok": True, "result": {"bytes": "AAAA"}}
    elif mode == "schema-invalid" and cmd == "decode":
        resp = {"seq": seq, "ok": True, "result": {"message": "not a message"}}
    elif mode == "liar" and req.get("codec") == "msgpack" and cmd == "decode":
        resp = {"seq": seq, "skipped": {"reason": "msgpack is not implemented"}}
    elif mode == "liar" and req.get("codec") == "msgpack" and cmd == "encode":
        resp = {"seq": seq, "errored": {"message": "NotImplementedError: msgpack"}}
    elif mode == "noisy":
        for i in range(200):
            print(f"noisy log line {i} for request {seq}", file=sys.stderr)
    return dumps(resp)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in MODES:
        print(
            f"usage: python -m symphony_conformance.miniatures {{{','.join(MODES)}}} [ARG]", file=sys.stderr
        )
        return 2
    mode = argv[0]
    arg = argv[1] if len(argv) > 1 else None
    n = int(arg) if arg is not None and mode in ("hang", "crash") else 1
    out = sys.stdout.buffer
    sys.stdout = sys.stderr
    if mode == "exit-at-start":
        print("fatal: cannot load libsymphony.so", file=sys.stderr)
        return 1
    if mode == "slow-start":
        time.sleep(float(arg or 1))
    if mode == "deaf":
        _sleep_forever()
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    driver = Driver()
    count = 0
    for line in sys.stdin.buffer:
        req = json.loads(line)
        if req.get("cmd") == "hello":
            out.write(_hello(mode, driver.handle(req)))
            out.flush()
            if mode == "hang" and n <= 1:
                _sleep_forever()
            continue
        count += 1
        if mode == "crash" and count > n:
            print(f"crashing on request {req.get('seq')}", file=sys.stderr, flush=True)
            return 3
        resp = driver.handle(req)
        out.write(_answer(mode, req, resp))
        out.flush()
        if req.get("cmd") == "shutdown" and mode != "stubborn":
            return 0
        if mode == "hang" and count + 1 >= n:
            _sleep_forever()  # without reading request N: a large one then blocks the harness's write
    if mode == "stubborn":
        _sleep_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
