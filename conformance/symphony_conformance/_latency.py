"""``symphony-conformance latency``: message round trips against an implementation's echo endpoint.

The method is perf/bench_transport.py's, so the figures compare: one round trip creates a message
(a payload whose JSON is ``--size`` bytes), encodes it (``--codec``), frames and sends it with the
reference's blocking client, receives the echo, decodes it and checks its id. Each *run* opens a
fresh connection, warms it up, then times ``--warmups`` + ``--values`` values of a calibrated number
of loops (at least ``--min-time`` seconds each); the result is written as pyperf JSON (``-o``) with
the benchmark names perf/ uses (``transport.SCHEME.message_rt.SIZE``), so ``python -m pyperf stats``,
``hist`` and ``compare_to`` (against perf/'s results for the reference) read it.

The endpoint comes from ``--impl`` (the driver's ``listen`` command, spec/driver/README.md: one
endpoint per ``--transport``, default every scheme the implementation declares) or from
``--endpoint ADDRESS`` (a server already running). An endpoint served by the harness's own process
(an in-process ``python:`` implementation) is refused: its latency would include this process's
GIL; the default ``--impl reference`` therefore runs the reference's driver as a child.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__

if TYPE_CHECKING:
    from symphony_ipc import Codec

EXIT_OK = 0
EXIT_HARNESS = 2
SEED_TARGET_US = {"unix": 100.0, "fifo": 200.0, "stdio": 1000.0}  # seed 004, for 200-byte messages
SCHEMES = ("unix", "fifo", "stdio")


class LatencyError(Exception):
    """A usage problem or an endpoint that cannot be measured: one line, exit 2."""


def add_latency_options(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--impl",
        default=None,
        metavar="SPEC",
        help="reference (default; its driver runs as a child) | exec:COMMAND ARGS... | "
        "python:package.module:factory (its endpoints must run in another process)",
    )
    who.add_argument(
        "--endpoint",
        default=None,
        metavar="ADDRESS",
        help="a running echo server: unix:PATH, fifo:DIR, 'stdio:CMD'",
    )
    p.add_argument(
        "--transport",
        action="append",
        choices=SCHEMES,
        default=[],
        metavar="SCHEME",
        help="with --impl: unix, fifo or stdio (repeatable; default: every scheme it declares)",
    )
    p.add_argument(
        "--size",
        action="append",
        type=int,
        default=[],
        metavar="BYTES",
        help="payload size as JSON, in bytes (repeatable; default 200 and 65536, as perf/)",
    )
    p.add_argument("--codec", choices=("msgpack", "json"), default="msgpack", help="default: msgpack")
    p.add_argument("--runs", type=int, default=5, help="connections, each timed anew (default 5)")
    p.add_argument("--values", type=int, default=3, help="timed values per run (default 3)")
    p.add_argument("--warmups", type=int, default=1, help="untimed values per run (default 1)")
    p.add_argument("--min-time", type=float, default=0.1, help="seconds per value at least (default 0.1)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer or a driver")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="FILE.json", help="pyperf JSON out")


# ---------------------------------------------------------------- the measurement


def payload_of_size(json_size: int) -> dict[str, Any]:
    """A payload whose JSON is exactly ``json_size`` bytes: a small edit (op, path, range, text)
    below 1 KiB, a blob (op, path, data) above (perf/ uses the same)."""
    import msgspec

    if json_size >= 1024:
        base: dict[str, Any] = {"op": "write", "path": "/workspace/build/output.bin", "data": ""}
        key = "data"
    else:
        base = {"op": "update", "path": "/workspace/src/main.rs", "range": [120, 4, 120, 17], "text": ""}
        key = "text"
    fill = json_size - len(msgspec.json.encode(base))
    if fill < 0:
        raise LatencyError(f"--size {json_size}: at least {json_size - fill} bytes")
    base[key] = "x" * fill
    return base


def size_label(json_size: int) -> str:
    if json_size % 1024 == 0:
        return f"{json_size // 1024}KiB"
    return f"{json_size}B"


@dataclass
class Measured:
    name: str
    runs: list[tuple[int, list[float], list[float]]]  # (loops, warmup values, values) per run
    metadata: dict[str, Any]


def _round_trips(conn: Any, payload: Any, codec: Codec, timeout: float) -> Callable[[int], float]:
    import symphony_ipc as s

    new_message, encode, decode, req = s.new_message, s.encode, s.decode, s.MessageType.REQUEST

    def run(loops: int) -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            msg = new_message(req, "perf-client", "perf-echo", payload)
            conn.send_frame(encode(msg, codec))
            if decode(conn.recv_frame(timeout), codec).header.id != msg.header.id:
                raise LatencyError("the endpoint answered with another message")
        return time.perf_counter() - t0

    return run


def measure(
    address: str,
    json_size: int,
    args: argparse.Namespace,
    connect: Callable[[], Any],
    log: Callable[[str], None],
) -> Measured:
    """``--runs`` fresh connections to ``address``; loops calibrated on the first (perf/'s method)."""
    import symphony_ipc as s

    payload = payload_of_size(json_size)
    frame_bytes = 4 + len(s.encode(s.new_message(s.MessageType.REQUEST, "a", "b", payload), args.codec))
    scheme = address.partition(":")[0]
    name = f"transport.{scheme}.message_rt.{size_label(json_size)}"
    loops = 0
    runs = []
    for _ in range(args.runs):
        conn = connect()
        try:
            timed = _round_trips(conn, payload, args.codec, args.timeout)
            timed(100)  # warm both sides up
            if loops == 0:
                loops = 1
                while timed(loops) < args.min_time and loops < 2**24:
                    loops *= 2
            warm = [timed(loops) / loops for _ in range(args.warmups)]
            values = [timed(loops) / loops for _ in range(args.values)]
        finally:
            conn.close()
        runs.append((loops, warm, values))
        log(".")
    metadata = {
        "transport": scheme,
        "address": address,
        "payload_bytes": json_size,
        "frame_bytes": frame_bytes,
        "codec": args.codec,
        "client": "symphony_ipc connect_blocking",
        "symphony-conformance_version": __version__,
    }
    return Measured(name, runs, metadata)


def to_suite(measured: list[Measured], common: dict[str, Any]) -> Any:
    import pyperf  # type: ignore[import-untyped]

    benches = []
    for m in measured:
        runs = [
            pyperf.Run(
                values,
                warmups=[(loops, w) for w in warm] or None,
                metadata={**common, **m.metadata, "name": m.name, "loops": loops},
            )
            for loops, warm, values in m.runs
        ]
        benches.append(pyperf.Benchmark(runs))
    return pyperf.BenchmarkSuite(benches)


# ---------------------------------------------------------------- endpoints


def _endpoints(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[list[str], dict[str, Any]]:
    """The addresses to measure and what the results' metadata says about the implementation."""
    if args.endpoint:
        if args.transport:
            raise LatencyError("--transport goes with --impl; --endpoint names its scheme itself")
        scheme, _, rest = args.endpoint.partition(":")
        if scheme not in SCHEMES or not rest:
            raise LatencyError(
                f"--endpoint {args.endpoint!r}: expected unix:PATH, fifo:DIR or 'stdio:COMMAND'"
            )
        return [args.endpoint], {"implementation": f"endpoint {args.endpoint}"}
    from ._adapters import DEFAULT_IMPL, ImplementationLoadError, load_implementation
    from ._impl import ImplBroken, ImplError, ImplSkipped

    spec = args.impl or DEFAULT_IMPL
    if spec.strip() == DEFAULT_IMPL:  # the in-process reference would serve from this process
        spec = "exec:" + shlex.join([sys.executable, "-m", "symphony_ipc.cli", "driver"])
    try:
        impl = load_implementation(spec, timeout=args.timeout)
    except ImplementationLoadError as e:
        raise LatencyError(str(e)) from None
    stack.callback(impl.close)
    try:
        info = impl.info
    except ImplBroken as e:
        raise LatencyError(f"--impl {spec!r}: the implementation did not start: {e}") from None
    declared = info.capabilities.transports
    if "transport" not in info.capabilities.profiles or not declared or not hasattr(impl, "listen"):
        raise LatencyError(f"--impl {spec!r}: the implementation declares no transport to listen on")
    wanted = args.transport or [t for t in SCHEMES if t in declared]
    missing = [t for t in wanted if t not in declared]
    if missing:
        raise LatencyError(
            f"--impl {spec!r} does not listen on {', '.join(missing)} (declared: {sorted(declared)})"
        )
    addresses = []
    for scheme in wanted:
        try:
            ep = impl.listen(scheme)
        except (ImplError, ImplSkipped, ImplBroken) as e:
            raise LatencyError(f"--impl {spec!r}: listen {scheme}: {e}") from None
        if ep.pid == os.getpid():
            raise LatencyError(
                f"--impl {spec!r}: the {scheme} endpoint runs in the harness's own process, so its "
                "latency would include this process's GIL: give an exec: driver instead"
            )
        addresses.append(ep.address)
    return addresses, {
        "implementation": f"{info.name} {info.version} ({info.language})",
        "impl_spec": spec,
    }


def _connector(address: str, args: argparse.Namespace) -> Callable[[], Any]:
    from symphony_ipc.transport import connect_blocking

    def connect() -> Any:
        return connect_blocking(address, codecs=(args.codec,), timeout=args.timeout)

    return connect


# ---------------------------------------------------------------- the command


def _check_args(args: argparse.Namespace) -> None:
    for opt in ("runs", "values"):
        if getattr(args, opt) < 1:
            raise LatencyError(f"--{opt} must be at least 1")
    if args.warmups < 0 or not args.min_time > 0 or not args.timeout > 0:
        raise LatencyError("--warmups must be >= 0, --min-time and --timeout > 0")
    if args.output is not None and args.output.exists():
        raise LatencyError(f"{args.output} exists: pyperf does not overwrite results, nor do we")
    if any(n < 1 for n in args.size):
        raise LatencyError("--size must be positive")


def latency_command(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import pyperf  # noqa: F401  (the output format)
    except ImportError:
        print("symphony-conformance latency: error: needs pyperf (pip install pyperf)", file=sys.stderr)
        return EXIT_HARNESS
    from symphony_ipc.transport import TransportError

    def log(text: str) -> None:
        out.write(text)
        out.flush()

    try:
        _check_args(args)
        sizes = args.size or [200, 65536]
        measured = []
        with contextlib.ExitStack() as stack:
            addresses, common = _endpoints(args, stack)
            for address in addresses:
                for size in sizes:
                    log(f"{address} {size_label(size)} ")
                    try:
                        m = measure(address, size, args, _connector(address, args), log)
                    except (TransportError, OSError) as e:
                        raise LatencyError(f"{address}: {e}") from None
                    measured.append(m)
                    log("\n")
    except LatencyError as e:
        print(f"symphony-conformance latency: error: {e}", file=sys.stderr)
        return EXIT_HARNESS
    suite = to_suite(measured, common)
    if args.output is not None:
        suite.dump(str(args.output))
    out.write(summary(suite))
    if args.output is not None:
        out.write(f"\nwritten to {args.output} (python -m pyperf stats {args.output})\n")
    return EXIT_OK


def summary(suite: Any) -> str:
    lines = [f"{'benchmark':36s} {'median':>10s} {'mean':>10s} {'stdev':>9s}  seed target (200 B)"]
    for b in suite.get_benchmarks():
        values = b.get_values()
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        scheme = b.get_metadata().get("transport", "")
        target = SEED_TARGET_US.get(scheme) if b.get_metadata().get("payload_bytes") == 200 else None
        med = b.median() * 1e6
        verdict = "-" if target is None else f"< {target:g} us: {'met' if med < target else 'missed'}"
        lines.append(f"{b.get_name():36s} {med:8.1f}us {b.mean() * 1e6:8.1f}us {sd * 1e6:7.1f}us  {verdict}")
    return "\n".join(lines) + "\n"
