"""``symphony-ipc serve`` (a bus node, or an echo endpoint) and ``symphony-ipc ping`` (round trips).

``serve --listen ADDRESS`` runs a bus node (spec/bus.md section 14, :mod:`symphony_ipc.bus._node`)
on ``unix:PATH``, ``fifo:DIR`` or ``stdio``; ``serve --echo`` echoes every frame back instead. Both
run until SIGINT/SIGTERM (or, on stdio, the end of its stdin), then close cleanly and remove their
socket file or FIFO. ``ping ADDRESS`` builds a message with a payload of ``--size`` bytes and, ``-n``
times, encodes, frames, sends, receives and decodes it, then prints min/median/p99/max in
microseconds; ``ping 'stdio:COMMAND ...'`` spawns the server as its child. Bad addresses, refused
connections and version mismatches exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .security import RateLimit, SecurityPolicy
    from .transport import Listener, Transport

EXIT_USAGE = 2


def _version(text: str) -> tuple[int, int]:
    try:
        major, minor = (int(p) for p in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MAJOR.MINOR, got {text!r}") from None
    return major, minor


def _codecs(text: str) -> tuple[str, ...]:
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in names if c not in ("json", "msgpack")]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"codecs are json and msgpack, got {text!r}")
    return names


def add_commands(sub: Any) -> None:
    """Add the ``serve`` and ``ping`` subcommands to the CLI's subparsers."""
    p = sub.add_parser("serve", help="run a bus node, or an echo endpoint (unix:PATH, fifo:DIR or stdio)")
    p.add_argument("--listen", required=True, metavar="ADDRESS", help="unix:PATH, fifo:DIR or stdio")
    p.add_argument("--echo", action="store_true", help="echo every frame back (an echo endpoint)")
    p.add_argument("--codecs", type=_codecs, default=("msgpack", "json"), help="codecs served (msgpack,json)")
    p.add_argument("--protocol-version", type=_version, default=(1, 0), help=argparse.SUPPRESS)
    from .bus._cli import add_node_options
    from .security._cli import add_client_options, add_serve_options

    add_node_options(p)
    add_serve_options(p)
    p = sub.add_parser("ping", help="measure message round trips against an endpoint")
    p.add_argument("address", metavar="ADDRESS", help="unix:PATH, fifo:DIR or 'stdio:COMMAND ...'")
    p.add_argument("-n", type=int, default=1000, help="round trips to time (default 1000)")
    p.add_argument("--size", type=int, default=200, help="payload bytes per message (default 200)")
    p.add_argument("--codec", choices=("json", "msgpack"), default="msgpack")
    p.add_argument(
        "--io",
        choices=("blocking", "asyncio"),
        default="blocking",
        help="the client's I/O (default blocking)",
    )
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed round trips first (default n/10, <= 1000)"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer")
    p.add_argument(
        "--frames-only",
        action="store_true",
        help="send the encoded message as is and skip decoding: the transport's share alone",
    )
    p.add_argument("--protocol-version", type=_version, default=(1, 0), help=argparse.SUPPRESS)
    add_client_options(p)


def run_command(args: argparse.Namespace) -> int:
    """Run ``serve`` or ``ping``; transport errors become one line on stderr and exit status 2."""
    from .security import _cli as sec
    from .transport import TransportError

    try:
        sec.load_plugins(args.plugin)
        if args.command == "serve" and not args.echo:
            from .bus._cli import node_from_args

            return node_from_args(args)
        if args.command == "serve":
            return serve(
                args.listen,
                codecs=args.codecs,
                version=args.protocol_version,
                security=sec.policy_from_args(args),
                handshake_timeout=sec.handshake_timeout_from_args(args),
                rate=sec.rate_from_args(args),
            )
        return ping(args)
    except (TransportError, OSError, ValueError) as e:
        print(f"symphony-ipc {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


# ---------------------------------------------------------------- serve


async def echo(conn: Transport, rate: RateLimit | None = None) -> None:
    """Echo frames until the peer leaves, then close.

    A :class:`StreamConnection` over file descriptors is served by a thread of its own with
    blocking system calls (:meth:`StreamConnection.serve_in_thread`: no event-loop iteration per
    frame); while the peer does not read, reading stops (TRN-013). With ``rate`` a frame over the
    connection's limit is answered with a ``RATE_LIMITED`` error message instead (spec/security.md
    ROB-007).
    """
    from .security import rate_limited_reply
    from .transport import StreamConnection, TransportError

    bucket = rate.bucket() if rate is not None else None

    def answer(payload: bytes) -> bytes:
        if bucket is None or bucket.take():
            return payload
        return rate_limited_reply(payload, conn.codec, bucket.retry_after())

    try:
        if isinstance(conn, StreamConnection):
            await conn.serve_in_thread(answer)
        else:
            while True:
                await conn.send_frame(answer(await conn.recv_frame()))
    except TransportError:
        pass
    finally:
        await conn.close()


async def serve_echo(listener: Listener, *, once: bool = False, rate: RateLimit | None = None) -> None:
    """Accept and echo until the listener closes (or after one connection with ``once``)."""
    import asyncio

    from .transport import TransportError

    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            try:
                conn = await listener.accept()
            except TransportError:
                return
            task = asyncio.create_task(echo(conn, rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if once:
                await task
                return
    finally:
        for t in list(tasks):
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def serve(
    address: str,
    *,
    codecs: tuple[str, ...] = ("msgpack", "json"),
    version: tuple[int, int] = (1, 0),
    security: SecurityPolicy | None = None,
    handshake_timeout: float | None = 5.0,
    rate: RateLimit | None = None,
) -> int:
    import asyncio
    import signal

    from .transport import listen, parse_address

    scheme, _ = parse_address(address)  # a bad address fails before anything starts

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener = await listen(
            address, codecs=codecs, version=version, security=security, handshake_timeout=handshake_timeout
        )
        if scheme.name != "stdio":  # a stdio child's stderr is its parent's: stay quiet there
            print(f"symphony-ipc serve: echo on {address}", file=sys.stderr, flush=True)
        worker = asyncio.create_task(serve_echo(listener, once=scheme.name == "stdio", rate=rate))
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await listener.close()
            for t in (worker, stopper):
                t.cancel()
            await asyncio.gather(worker, stopper, return_exceptions=True)
            stats = getattr(listener, "security_stats", None)
            if stats is not None and stats.refused + stats.handshake_timeouts and scheme.name != "stdio":
                print(f"symphony-ipc serve: security {stats.to_dict()}", file=sys.stderr, flush=True)

    asyncio.run(main())
    return 0


# ---------------------------------------------------------------- ping


def _stats(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    n = len(s)

    def pick(q: float) -> float:
        return s[min(n - 1, int(q * n))] / 1000.0

    return {"min": s[0] / 1000.0, "median": pick(0.5), "p99": pick(0.99), "max": s[-1] / 1000.0}


def ping(args: argparse.Namespace) -> int:
    from . import MessageType, encode, new_message

    if args.n < 1 or args.size < 0:
        print("symphony-ipc ping: error: -n must be >= 1 and --size >= 0", file=sys.stderr)
        return EXIT_USAGE
    # A control ping to bus:system: an echo endpoint sends it back, a bus node answers it with a
    # Response correlated to it (spec/bus.md section 14); either is one message round trip.
    msg = new_message(MessageType.REQUEST, "ping", "bus:system", {"op": "ping", "pad": "x" * args.size})
    frame_size = len(encode(msg, args.codec))
    warmup = args.warmup if args.warmup is not None else min(1000, args.n // 10)
    if getattr(args, "secret_file", None):
        args.io = "asyncio"  # the blocking client has no secret handshake (spec/security.md section 2)
    samples = _ping_blocking(args, msg, warmup) if args.io == "blocking" else _ping_asyncio(args, msg, warmup)
    st = _stats(samples)
    print(
        f"ping {args.address}: n={args.n} payload={args.size} B frame={frame_size} B codec={args.codec} "
        f"io={args.io}{' frames-only' if args.frames_only else ''}: "
        f"min {st['min']:.1f} us, median {st['median']:.1f} us, "
        f"p99 {st['p99']:.1f} us, max {st['max']:.1f} us"
    )
    return 0


def _answers(got: Any, sent: Any) -> bool:
    """The echo of ``sent``, or a bus node's answer to it."""
    h = got.header
    return bool(h.id == sent.header.id or h.correlation_id == sent.header.id)


def _ping_blocking(args: argparse.Namespace, msg: Any, warmup: int) -> list[int]:
    from time import perf_counter_ns

    from . import decode, encode
    from .transport import PeerBroken, connect_blocking

    codec = args.codec
    samples: list[int] = []
    with connect_blocking(
        args.address, codecs=(codec,), version=args.protocol_version, timeout=args.timeout
    ) as c:
        frame = encode(msg, codec)
        for i in range(warmup + args.n):
            if args.frames_only:
                t0 = perf_counter_ns()
                c.send_frame(frame)
                ok = c.recv_frame(args.timeout) == frame
                t1 = perf_counter_ns()
            else:
                t0 = perf_counter_ns()
                c.send_frame(encode(msg, codec))
                ok = _answers(decode(c.recv_frame(args.timeout), codec), msg)
                t1 = perf_counter_ns()
            if not ok:
                raise PeerBroken("the endpoint answered with another message")
            if i >= warmup:
                samples.append(t1 - t0)
    return samples


def _ping_asyncio(args: argparse.Namespace, msg: Any, warmup: int) -> list[int]:
    import asyncio
    from time import perf_counter_ns

    from . import decode, encode
    from .transport import PeerBroken, connect

    codec = args.codec

    async def main() -> list[int]:
        samples: list[int] = []
        from .security._cli import secret_from_args

        conn = await connect(
            args.address,
            codecs=(codec,),
            version=args.protocol_version,
            timeout=args.timeout,
            secret=secret_from_args(args),
        )
        async with conn:
            frame = encode(msg, codec)
            for i in range(warmup + args.n):
                if args.frames_only:
                    t0 = perf_counter_ns()
                    await conn.send_frame(frame)
                    ok = await conn.recv_frame(args.timeout) == frame
                    t1 = perf_counter_ns()
                else:
                    t0 = perf_counter_ns()
                    await conn.send_frame(encode(msg, codec))
                    ok = _answers(decode(await conn.recv_frame(args.timeout), codec), msg)
                    t1 = perf_counter_ns()
                if not ok:
                    raise PeerBroken("the endpoint answered with another message")
                if i >= warmup:
                    samples.append(t1 - t0)
        return samples

    return asyncio.run(main())
